"""Block validation as a Fabric committer does it (txvalidator + statebased VSCC + MVCC).

Per transaction, in this order: envelope and creator signature, tx id binding, duplicates,
endorsement signatures, endorsement policies (chaincode-level, key-level VALIDATION_PARAMETER
from committed metadata or set earlier in the same block, collection-level), then MVCC on
public reads, range queries (phantoms) and hashed private reads against committed state plus
the writes of earlier valid transactions in the block. Invalid transactions apply nothing.
The result is a BlockWrites for Store.commit_block.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from network.devnet import policy
from network.devnet._protos import (
    DecodeError,
    chaincode_event_pb2,
    kv_rwset_pb2,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
    transaction_pb2,
)
from network.devnet.messages import (
    ENDORSER_TRANSACTION,
    MalformedMessage,
    compute_txid,
    proposal_hash,
    unpack_envelope,
)
from network.devnet.msp import IdentityError, MSPManager, SignatureError
from network.devnet.peer import decode_metadata, encode_metadata
from network.devnet.rwset import ParsedNamespace, parse_rwset, sha256
from network.devnet.sigcache import SignatureCache
from network.devnet.store import BlockWrites, HashedEntry, StateEntry, Store
from network.devnet.transient import TransientStore

log = logging.getLogger(__name__)

Code = transaction_pb2.TxValidationCode
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"


class TxInvalid(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class CollectionRules:
    """What validation needs from a collection: members, blockToLive, its endorsement policy."""

    name: str
    members: frozenset[str]
    block_to_live: int
    endorsement_policy: Any | None  # SignaturePolicyEnvelope or None (chaincode policy applies)


class BlockValidator:
    def __init__(
        self,
        *,
        store: Store,
        msp: MSPManager,
        channel: str,
        chaincode: str,
        chaincode_policy: Any,
        collections: Mapping[str, CollectionRules],
        orgs: Sequence[str],
        transient: TransientStore,
        signatures: SignatureCache | None = None,
    ) -> None:
        self.signatures = signatures or SignatureCache()
        self.store = store
        self.msp = msp
        self.channel = channel
        self.chaincode = chaincode
        self.cc_policy = chaincode_policy
        self.collections = collections
        self.orgs = list(orgs)
        self.transient = transient
        self._policy_cache: dict[bytes, Any] = {}
        self._verdicts: dict[tuple[int, frozenset[Any]], tuple[Any, bool]] = {}
        # Committed state read while validating the current block. Nothing commits until the
        # block is validated, so a key's policy check, MVCC check and apply share one read.
        self._committed: dict[tuple[str, bytes], StateEntry | None] = {}

    # ---- overlay of committed state + earlier valid writes in this block ------------------
    def _committed_state(self, ns: str, key: bytes) -> StateEntry | None:
        k = (ns, key)
        try:
            return self._committed[k]
        except KeyError:
            entry = self._committed[k] = self.store.get_state(ns, key)
            return entry

    def _state(self, w: BlockWrites, ns: str, key: bytes) -> StateEntry | None:
        k = (ns, key)
        if k in w.state:
            return w.state[k]
        return self._committed_state(ns, key)

    def _hashed(self, w: BlockWrites, ns: str, coll: str, kh: bytes) -> HashedEntry | None:
        k = (ns, coll, kh)
        if k in w.hashed:
            return w.hashed[k]
        return self.store.get_hashed(ns, coll, kh)

    def _satisfied(self, pol: Any, signers: list[Any]) -> bool:
        """policy.evaluate, remembered per (policy, set of signers): endorsers are few peers.

        The entry holds the policy object, so its id() cannot be reused while cached.
        """
        key = (id(pol), frozenset(signers))
        hit = self._verdicts.get(key)
        if hit is not None:
            return hit[1]
        verdict = bool(policy.evaluate(pol, signers))
        if len(self._verdicts) < 4096:
            self._verdicts[key] = (pol, verdict)  # holding pol keeps its id() from being reused
        return verdict

    def _policy(self, raw: bytes) -> Any:
        pol = self._policy_cache.get(raw)
        if pol is None:
            pol = policy.from_bytes(raw)
            if len(self._policy_cache) < 4096:  # bounded: key-level policies are few in practice
                self._policy_cache[raw] = pol
        return pol

    # ---- block -----------------------------------------------------------------------
    def validate_block(self, block: Any, w: BlockWrites) -> list[tuple[str, int]]:
        """Validate every transaction, filling `w`; returns (txid, code) per transaction."""
        results: list[tuple[str, int]] = []
        seen: set[str] = set()
        self._committed.clear()
        try:
            for txnum, env_bytes in enumerate(block.data.data):
                results.append(self._validate_tx(w, txnum, env_bytes, seen))
        finally:
            self._committed.clear()  # the block commits next: these reads go stale
        return results

    def _validate_tx(self, w: BlockWrites, txnum: int, env_bytes: bytes,
                     seen: set[str]) -> tuple[str, int]:
        txid = ""
        try:
            txid, effects = self._check_tx(env_bytes, seen)
            self._check_policies(w, effects)
            self._check_reads(w, effects)
            self._apply(w, txnum, effects)
            code = Code.VALID
        except TxInvalid as exc:
            code = exc.code
            log.debug("tx %s invalid: %s (%s)", txid[:12], Code.Name(code), exc)
        if txid:
            seen.add(txid)
            w.txs.append((txid, txnum, code))
        return txid, code

    # ---- per transaction checks ----------------------------------------------------------
    def _check_tx(self, env_bytes: bytes, seen: set[str]) -> tuple[str, _Effects]:
        try:
            tx = unpack_envelope(env_bytes)
        except MalformedMessage as exc:
            raise TxInvalid(Code.BAD_PAYLOAD, str(exc)) from exc
        chdr, shdr = tx.channel_header, tx.signature_header
        txid = tx.txid
        if chdr.type != ENDORSER_TRANSACTION:
            raise TxInvalid(Code.UNKNOWN_TX_TYPE, f"header type {chdr.type}")
        if chdr.channel_id != self.channel:
            raise TxInvalid(Code.TARGET_CHAIN_NOT_FOUND, chdr.channel_id)
        try:
            creator = self.msp.validate(shdr.creator)
            self.signatures.verify(creator, tx.envelope.payload, tx.envelope.signature)
        except (IdentityError, SignatureError) as exc:
            raise TxInvalid(Code.BAD_CREATOR_SIGNATURE, str(exc)) from exc
        if compute_txid(shdr.nonce, shdr.creator) != txid:
            raise TxInvalid(Code.BAD_PROPOSAL_TXID, "tx id does not bind nonce and creator")
        if txid in seen or self.store.tx_block(txid) is not None:
            raise TxInvalid(Code.DUPLICATE_TXID, txid)
        try:
            trans = transaction_pb2.Transaction.FromString(tx.payload.data)
            if len(trans.actions) != 1:
                raise TxInvalid(Code.BAD_PAYLOAD, "exactly one action expected")
            cap = transaction_pb2.ChaincodeActionPayload.FromString(trans.actions[0].payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(
                cap.action.proposal_response_payload)
            action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
            rwsets = parse_rwset(action.results)
        except DecodeError as exc:
            raise TxInvalid(Code.BAD_PAYLOAD, str(exc)) from exc
        if trans.actions[0].header != tx.payload.header.signature_header:
            raise TxInvalid(Code.BAD_PAYLOAD, "action header differs from the payload header")
        expected = proposal_hash(tx.payload.header.channel_header,
                                 tx.payload.header.signature_header,
                                 cap.chaincode_proposal_payload)
        if prp.proposal_hash != expected:
            raise TxInvalid(Code.BAD_RESPONSE_PAYLOAD, "proposal hash does not match")
        if action.chaincode_id.name != self.chaincode:
            raise TxInvalid(Code.INVALID_CHAINCODE, action.chaincode_id.name)
        if action.response.status >= 400:
            raise TxInvalid(Code.ENDORSEMENT_POLICY_FAILURE, "endorsed response is an error")
        signers = []
        for e in cap.action.endorsements:
            try:
                ident = self.msp.validate(e.endorser)
                self.signatures.verify(ident, cap.action.proposal_response_payload + e.endorser,
                                       e.signature)
            except (IdentityError, SignatureError):
                continue  # an invalid endorsement simply does not count toward the policy
            signers.append(ident)
        ns_sets = [n for n in rwsets if n.namespace == self.chaincode]
        if any(n.namespace != self.chaincode and _has_writes(n) for n in rwsets):
            raise TxInvalid(Code.ILLEGAL_WRITESET, "writes outside the invoked chaincode")
        return txid, _Effects(txid, ns_sets, action, signers)

    # ---- endorsement policies (statebased validator, v2.0 semantics) ----------------------
    def _check_policies(self, w: BlockWrites, fx: _Effects) -> None:
        need_cc = True
        checked_any = False
        fell_back = False
        for ns in fx.namespaces:
            keys = [wr.key.encode() for wr in ns.kv.writes]
            keys += [mw.key.encode() for mw in ns.kv.metadata_writes]
            for key in keys:
                entry = self._state(w, ns.namespace, key)
                vp = decode_metadata(entry.metadata if entry else None).get(VALIDATION_PARAMETER)
                if vp:
                    checked_any = True
                    if not self._satisfied(self._policy(vp), fx.signers):
                        raise TxInvalid(Code.ENDORSEMENT_POLICY_FAILURE,
                                        "key-level endorsement policy not satisfied")
                else:
                    fell_back = True
            for coll in ns.collections:
                rules = self.collections.get(coll.name)
                if rules is None:
                    if coll.hashed.hashed_writes or coll.hashed.metadata_writes:
                        raise TxInvalid(Code.INVALID_WRITESET, f"unknown collection {coll.name}")
                    continue
                hkeys = [hw.key_hash for hw in coll.hashed.hashed_writes]
                hkeys += [mw.key_hash for mw in coll.hashed.metadata_writes]
                for kh in hkeys:
                    hentry = self._hashed(w, ns.namespace, coll.name, kh)
                    vp = decode_metadata(hentry.metadata if hentry else None).get(
                        VALIDATION_PARAMETER)
                    pol = self._policy(vp) if vp else rules.endorsement_policy
                    if pol is None:
                        fell_back = True
                        continue
                    checked_any = True
                    if not self._satisfied(pol, fx.signers):
                        raise TxInvalid(Code.ENDORSEMENT_POLICY_FAILURE,
                                        f"endorsement policy of {coll.name} not satisfied")
        need_cc = fell_back or not checked_any
        if need_cc and not self._satisfied(self.cc_policy, fx.signers):
            raise TxInvalid(Code.ENDORSEMENT_POLICY_FAILURE,
                            "chaincode endorsement policy not satisfied")

    # ---- MVCC ----------------------------------------------------------------------------
    def _check_reads(self, w: BlockWrites, fx: _Effects) -> None:
        for ns in fx.namespaces:
            name = ns.namespace
            for read in ns.kv.reads:
                key = read.key.encode()
                if (name, key) in w.state:
                    raise TxInvalid(Code.MVCC_READ_CONFLICT, "key updated earlier in block")
                entry = self._committed_state(name, key)
                if _version_of(read) != (None if entry is None else entry.version):
                    raise TxInvalid(Code.MVCC_READ_CONFLICT, "read version is stale")
            for rq in ns.kv.range_queries_info:
                if not self._range_still_valid(w, name, rq):
                    raise TxInvalid(Code.PHANTOM_READ_CONFLICT, "range query results changed")
            for coll in ns.collections:
                for hr in coll.hashed.hashed_reads:
                    k = (name, coll.name, bytes(hr.key_hash))
                    if k in w.hashed:
                        raise TxInvalid(Code.MVCC_READ_CONFLICT, "hashed key updated in block")
                    hentry = self.store.get_hashed(*k)
                    if _version_of(hr) != (None if hentry is None else hentry.version):
                        raise TxInvalid(Code.MVCC_READ_CONFLICT, "hashed read version is stale")

    def _range_still_valid(self, w: BlockWrites, ns: str, rq: Any) -> bool:
        start, end = rq.start_key.encode(), rq.end_key.encode()
        include_end = not rq.itr_exhausted
        current = {k: v for k, _, v in self.store.range(ns, start, end, include_end=include_end)}
        for (wns, key), entry in w.state.items():
            if wns != ns or key < start:
                continue
            if end and (key > end or (key == end and not include_end)):
                continue
            if entry is None:
                current.pop(key, None)
            else:
                current[key] = (-1, -1)  # updated in this block: never equals a recorded read
        expected = [(r.key.encode(), _version_of(r)) for r in rq.raw_reads.kv_reads]
        return sorted(current.items()) == expected

    # ---- apply a valid transaction ---------------------------------------------------------
    def _apply(self, w: BlockWrites, txnum: int, fx: _Effects) -> None:
        version = (w.number, txnum)
        for ns in fx.namespaces:
            name = ns.namespace
            meta_writes = {mw.key.encode(): {e.name: bytes(e.value) for e in mw.entries}
                           for mw in ns.kv.metadata_writes}
            for wr in ns.kv.writes:
                key = wr.key.encode()
                if wr.is_delete:
                    w.state[(name, key)] = None
                    continue
                if key in meta_writes:
                    metadata = encode_metadata(meta_writes.pop(key))
                else:
                    prev = self._state(w, name, key)
                    metadata = prev.metadata if prev else None
                w.state[(name, key)] = StateEntry(bytes(wr.value), version, metadata)
            for key, entries in meta_writes.items():
                prev = self._state(w, name, key)
                if prev is not None:  # metadata of a missing key is not kept (as in Fabric)
                    w.state[(name, key)] = StateEntry(prev.value, version, encode_metadata(entries))
            self._apply_private(w, version, fx, ns)
        if fx.action.events:
            try:
                event = chaincode_event_pb2.ChaincodeEvent.FromString(fx.action.events)
            except DecodeError:
                event = None
            if event is not None and event.event_name:
                w.events.append((txnum, fx.txid, event.chaincode_id or self.chaincode,
                                 event.event_name, bytes(event.payload)))

    def _apply_private(self, w: BlockWrites, version: tuple[int, int], fx: _Effects,
                       ns: ParsedNamespace) -> None:
        name = ns.namespace
        cleartext = self._cleartext(fx.txid, name)
        for coll in ns.collections:
            rules = self.collections.get(coll.name)
            if rules is None:
                continue
            meta = {bytes(mw.key_hash): {e.name: bytes(e.value) for e in mw.entries}
                    for mw in coll.hashed.metadata_writes}
            written: dict[bytes, bytes] = {}
            for hw in coll.hashed.hashed_writes:
                kh = bytes(hw.key_hash)
                hk = (name, coll.name, kh)
                if hw.is_delete or hw.is_purge:
                    w.hashed[hk] = None
                    w.private_deletes.add(hk)
                    w.expiries.pop(hk, None)
                    for pk in [pk for pk, v in w.private_puts.items()
                               if pk[1:3] == (name, coll.name) and v[0] == kh]:
                        del w.private_puts[pk]
                    continue
                if kh in meta:
                    metadata = encode_metadata(meta.pop(kh))
                else:
                    prev = self._hashed(w, name, coll.name, kh)
                    metadata = prev.metadata if prev else None
                w.hashed[hk] = HashedEntry(bytes(hw.value_hash), version, metadata)
                w.private_deletes.discard(hk)
                written[kh] = bytes(hw.value_hash)
                if rules.block_to_live > 0:
                    w.expiries[hk] = w.number + rules.block_to_live + 1
            for kh, entries in meta.items():
                prev = self._hashed(w, name, coll.name, kh)
                if prev is not None:
                    w.hashed[(name, coll.name, kh)] = HashedEntry(
                        prev.value_hash, version, encode_metadata(entries))
            pvt = cleartext.get(coll.name)
            if pvt is None or not written:
                continue  # no cleartext here (Fabric would record it as missing data)
            pvt_bytes, kv = pvt
            if sha256(pvt_bytes) != coll.pvt_rwset_hash:
                log.warning("tx %s: private rwset of %s does not match its hash; not stored",
                            fx.txid[:12], coll.name)
                continue
            for wr in kv.writes:
                key = wr.key.encode()
                kh = sha256(key)
                if wr.is_delete or written.get(kh) != sha256(bytes(wr.value)):
                    continue
                for org in self.orgs:
                    if org in rules.members:  # non-members never receive the cleartext
                        w.private_puts[(org, name, coll.name, key)] = (kh, bytes(wr.value),
                                                                       version)

    def _cleartext(self, txid: str, ns: str) -> dict[str, tuple[bytes, Any]]:
        entry = self.transient.get(txid)
        if entry is None:
            return {}
        out: dict[str, tuple[bytes, Any]] = {}
        try:
            pvt = rwset_pb2.TxPvtReadWriteSet.FromString(entry.pvt_rwset)
            for nsp in pvt.ns_pvt_rwset:
                if nsp.namespace != ns:
                    continue
                for c in nsp.collection_pvt_rwset:
                    out[c.collection_name] = (bytes(c.rwset), kv_rwset_pb2.KVRWSet.FromString(
                        c.rwset))
        except DecodeError:
            return {}
        return out


@dataclass
class _Effects:
    txid: str
    namespaces: list[ParsedNamespace]
    action: Any
    signers: list[Any]


def _version_of(read: Any) -> tuple[int, int] | None:
    if not read.HasField("version"):
        return None
    return (int(read.version.block_num), int(read.version.tx_num))


def _has_writes(ns: ParsedNamespace) -> bool:
    return bool(ns.kv.writes or ns.kv.metadata_writes or any(
        c.hashed.hashed_writes or c.hashed.metadata_writes for c in ns.collections))
