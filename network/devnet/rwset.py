"""Read/write-set recording during simulation and its Fabric encoding (rwsetutil).

What a chaincode reads (with the committed version), the range queries it ran (with the raw
reads, for phantom detection), what it writes, and per private data collection the hashed
reads/writes that go into the public rwset plus the cleartext writes kept aside for the
transient store. Namespaces, collections and keys are emitted in sorted order as Fabric's
RWSetBuilder does, so two endorsers simulating the same thing produce identical bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from network.devnet._protos import kv_rwset_pb2, rwset_pb2

Version = tuple[int, int]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _version(v: Version | None, msg: Any | Any) -> None:
    if v is not None:
        msg.version.block_num = v[0]
        msg.version.tx_num = v[1]


def _metadata_entries(entries: dict[str, bytes]) -> list[Any]:
    return [kv_rwset_pb2.KVMetadataEntry(name=n, value=entries[n]) for n in sorted(entries)]


@dataclass
class RangeQuery:
    start_key: bytes
    end_key: bytes
    exhausted: bool = False
    reads: list[tuple[bytes, Version]] = field(default_factory=list)


@dataclass
class CollectionRecord:
    hashed_reads: dict[bytes, Version | None] = field(default_factory=dict)
    writes: dict[bytes, bytes | None] = field(default_factory=dict)  # None = delete
    purges: set[bytes] = field(default_factory=set)
    metadata_writes: dict[bytes, dict[str, bytes]] = field(default_factory=dict)


@dataclass
class SimulationRecord:
    """One transaction's reads and writes in one namespace (devnet runs one chaincode)."""

    namespace: str
    reads: dict[bytes, Version | None] = field(default_factory=dict)
    range_queries: list[RangeQuery] = field(default_factory=list)
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    metadata_writes: dict[bytes, dict[str, bytes]] = field(default_factory=dict)
    collections: dict[str, CollectionRecord] = field(default_factory=dict)

    def read(self, key: bytes, version: Version | None) -> None:
        # Only the first read counts: Fabric records the version the simulation saw first.
        self.reads.setdefault(key, version)

    def collection(self, name: str) -> CollectionRecord:
        rec = self.collections.get(name)
        if rec is None:
            rec = self.collections[name] = CollectionRecord()
        return rec

    @property
    def has_private_writes(self) -> bool:
        return any(c.writes or c.purges or c.metadata_writes for c in self.collections.values())

    def build(self) -> tuple[bytes, bytes | None]:
        """(TxReadWriteSet bytes, TxPvtReadWriteSet bytes or None when no private writes)."""
        kv = kv_rwset_pb2.KVRWSet()
        for key in sorted(self.reads):
            r = kv.reads.add(key=key.decode("utf-8", "surrogateescape"))
            _version(self.reads[key], r)
        for rq in self.range_queries:
            info = kv.range_queries_info.add(
                start_key=rq.start_key.decode("utf-8", "surrogateescape"),
                end_key=rq.end_key.decode("utf-8", "surrogateescape"),
                itr_exhausted=rq.exhausted)
            for key, version in rq.reads:
                r = info.raw_reads.kv_reads.add(key=key.decode("utf-8", "surrogateescape"))
                _version(version, r)
        for key in sorted(self.writes):
            value = self.writes[key]
            kv.writes.add(key=key.decode("utf-8", "surrogateescape"), is_delete=value is None,
                          value=value or b"")
        for key in sorted(self.metadata_writes):
            kv.metadata_writes.add(key=key.decode("utf-8", "surrogateescape"),
                                   entries=_metadata_entries(self.metadata_writes[key]))

        ns = rwset_pb2.NsReadWriteSet(namespace=self.namespace, rwset=kv.SerializeToString())
        pvt_ns = rwset_pb2.NsPvtReadWriteSet(namespace=self.namespace)
        for name in sorted(self.collections):
            coll = self.collections[name]
            pvt_kv = kv_rwset_pb2.KVRWSet()
            hashed = kv_rwset_pb2.HashedRWSet()
            for kh in sorted(coll.hashed_reads):
                r = hashed.hashed_reads.add(key_hash=kh)
                _version(coll.hashed_reads[kh], r)
            written = sorted(set(coll.writes) | coll.purges, key=sha256)
            for key in written:
                if key in coll.purges:
                    hashed.hashed_writes.add(key_hash=sha256(key), is_delete=True, is_purge=True)
                    continue
                value = coll.writes[key]
                hashed.hashed_writes.add(key_hash=sha256(key), is_delete=value is None,
                                         value_hash=b"" if value is None else sha256(value))
            for key in sorted(coll.writes):
                value = coll.writes[key]
                pvt_kv.writes.add(key=key.decode("utf-8", "surrogateescape"),
                                  is_delete=value is None, value=value or b"")
            for key in sorted(coll.metadata_writes, key=sha256):
                hashed.metadata_writes.add(key_hash=sha256(key),
                                           entries=_metadata_entries(coll.metadata_writes[key]))
            for key in sorted(coll.metadata_writes):
                pvt_kv.metadata_writes.add(key=key.decode("utf-8", "surrogateescape"),
                                           entries=_metadata_entries(coll.metadata_writes[key]))
            pvt_bytes = pvt_kv.SerializeToString()
            has_pvt = bool(pvt_kv.writes or pvt_kv.metadata_writes)
            ns.collection_hashed_rwset.add(
                collection_name=name, hashed_rwset=hashed.SerializeToString(),
                pvt_rwset_hash=sha256(pvt_bytes) if has_pvt else b"")
            if has_pvt:
                pvt_ns.collection_pvt_rwset.add(collection_name=name, rwset=pvt_bytes)
        tx = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV, ns_rwset=[ns])
        pvt: bytes | None = None
        if pvt_ns.collection_pvt_rwset:
            pvt = rwset_pb2.TxPvtReadWriteSet(
                data_model=rwset_pb2.TxReadWriteSet.KV, ns_pvt_rwset=[pvt_ns]).SerializeToString()
        return tx.SerializeToString(), pvt


@dataclass
class ParsedCollection:
    name: str
    hashed: Any
    pvt_rwset_hash: bytes


@dataclass
class ParsedNamespace:
    namespace: str
    kv: Any
    collections: list[ParsedCollection]


def parse_rwset(data: bytes) -> list[ParsedNamespace]:
    """Decode a TxReadWriteSet and its nested byte fields (raises DecodeError on bad bytes)."""
    tx = rwset_pb2.TxReadWriteSet()
    tx.ParseFromString(data)
    out: list[ParsedNamespace] = []
    for ns in tx.ns_rwset:
        kv = kv_rwset_pb2.KVRWSet()
        kv.ParseFromString(ns.rwset)
        colls: list[ParsedCollection] = []
        for ch in ns.collection_hashed_rwset:
            hashed = kv_rwset_pb2.HashedRWSet()
            hashed.ParseFromString(ch.hashed_rwset)
            colls.append(ParsedCollection(ch.collection_name, hashed, ch.pvt_rwset_hash))
        out.append(ParsedNamespace(ns.namespace, kv, colls))
    return out
