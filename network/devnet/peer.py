"""A logical Fabric peer: its signing identity, its chaincode stream, and transaction simulation.

Devnet dials the chaincode server as a Fabric peer does for chaincode-as-a-service: it opens
`protos.Chaincode/Connect`, answers the chaincode's REGISTER with REGISTERED and READY, then
sends TRANSACTION messages and services the chaincode's state requests (handler.go) against
committed state until COMPLETED or ERROR. Many transactions share the stream, told apart by
(channel_id, txid). Every read records its committed version in a SimulationRecord; writes are
buffered there and never visible to the simulation itself (Fabric has no read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from network.devnet._protos import (
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    kv_query_result_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from network.devnet.commit_lock import CommitLock
from network.devnet.rwset import RangeQuery, SimulationRecord, sha256
from network.devnet.store import Store

log = logging.getLogger(__name__)

CM: Any = chaincode_shim_pb2.ChaincodeMessage
QUERY_BATCH = 100  # Fabric's default totalQueryLimit batch handed to the shim per response
STREAM_TERMINATED = "chaincode stream terminated"


class ChaincodeUnavailable(RuntimeError):
    """No live chaincode stream on this peer (not yet connected, or the chaincode died)."""


class SimulationError(RuntimeError):
    """The chaincode sent ERROR, or the simulation could not run (endorser-side failure)."""


class CollectionPolicy(Protocol):
    """What simulation needs from a collection definition (network.devnet.collections)."""

    name: str
    member_only_read: bool
    member_only_write: bool

    def is_member(self, msp_id: str) -> bool: ...


@dataclass
class SimulationResult:
    response: Any
    event: Any | None
    record: SimulationRecord


@dataclass
class _Iterator:
    ns: str
    collection: str
    next_key: bytes
    end_key: bytes
    page_left: int | None  # None = not paginated
    query: RangeQuery | None  # public range queries are recorded for phantom detection


@dataclass
class _TxContext:
    txid: str
    channel: str
    creator_msp: str
    record: SimulationRecord
    done: asyncio.Future[tuple[Any, Any]]
    iterators: dict[str, _Iterator] = field(default_factory=dict)


def _cancel_call(call: Any, _writer: asyncio.Task[None]) -> None:
    call.cancel()


def _expire(done: asyncio.Future[Any], txid: str) -> None:
    if not done.done():
        done.set_exception(SimulationError(f"timeout expired while executing transaction {txid}"))


class _ChaincodeRequestError(Exception):
    """A chaincode request the peer refuses; the message goes back in an ERROR reply."""


class LogicalPeer:
    """One org's peer: its identity, its private data view and its stream to the chaincode."""

    def __init__(
        self,
        msp_id: str,
        address: str,
        signing_identity: Any,
        store: Store,
        lock: CommitLock,
        namespace: str,
        collections: Mapping[str, CollectionPolicy],
    ) -> None:
        self.msp_id = msp_id
        self.address = address
        self.signer = signing_identity
        self.store = store
        self.lock = lock
        self.namespace = namespace
        self.collections = collections
        self._call: Any = None
        self._outbox: deque[Any] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._txs: dict[tuple[str, str], _TxContext] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ---- stream lifecycle ------------------------------------------------------------
    def connect(self, chaincode_address: str) -> None:
        """Start (and keep re-establishing) the chaincode stream in the background."""
        self._task = asyncio.create_task(self._run(chaincode_address), name=f"cc-{self.msp_id}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def wait_ready(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def _send(self, msg: Any) -> None:
        """Queue one message for the stream's writer task.

        Writes happen only in that task: grpc.aio cancels the whole stream when a task is
        cancelled in the middle of a write, and Gateway handlers are cancelled whenever a
        client gives up. The writer drains everything queued per wake-up, so under load many
        messages share one task switch (a lock taken per write costs one per message)."""
        if self._call is None:
            raise ChaincodeUnavailable(STREAM_TERMINATED)
        self._outbox.append(msg)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _write_loop(self, call: Any) -> None:
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        write = call.write
        while True:
            while outbox:
                await write(outbox.popleft())
            self._wakeup = loop.create_future()
            await self._wakeup

    async def _run(self, address: str) -> None:
        delay = 0.05
        while not self._closing:
            try:
                async with grpc.aio.insecure_channel(address) as channel:
                    await asyncio.wait_for(channel.channel_ready(), 5.0)
                    stub = chaincode_shim_pb2_grpc.ChaincodeStub(channel)
                    call = self._call = stub.Connect()
                    delay = 0.05
                    writer = asyncio.create_task(self._write_loop(call),
                                                 name=f"cc-writer-{self.msp_id}")
                    # A failed write ends the stream, and with it the reader below.
                    writer.add_done_callback(functools.partial(_cancel_call, call))
                    try:
                        await self._serve(call)
                    finally:
                        writer.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("%s: chaincode stream to %s failed: %s", self.msp_id, address, exc)
            finally:
                self._call = None
                self._outbox.clear()
            self._ready.clear()
            self._fail_all(STREAM_TERMINATED)
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _serve(self, call: Any) -> None:
        read = call.read
        while (msg := await read()) is not grpc.aio.EOF:
            if msg.type == CM.REGISTER:
                self._send(CM(type=CM.REGISTERED))
                self._send(CM(type=CM.READY))
                self._ready.set()
            elif msg.type in (CM.COMPLETED, CM.ERROR):
                ctx = self._txs.get((msg.channel_id, msg.txid))
                if ctx is not None and not ctx.done.done():
                    if msg.type == CM.COMPLETED:
                        response = proposal_response_pb2.Response()
                        response.ParseFromString(msg.payload)
                        event = msg.chaincode_event if msg.HasField("chaincode_event") else None
                        ctx.done.set_result((response, event))
                    else:
                        ctx.done.set_exception(SimulationError(
                            "transaction returned with failure: "
                            + msg.payload.decode("utf-8", "replace")))
            elif msg.type == CM.KEEPALIVE:
                continue
            else:
                self._send(self._handle(msg))
        raise ConnectionError(STREAM_TERMINATED)

    def _fail_all(self, reason: str) -> None:
        for ctx in list(self._txs.values()):
            if not ctx.done.done():
                ctx.done.set_exception(ChaincodeUnavailable(reason))

    # ---- simulation --------------------------------------------------------------------
    async def simulate(
        self,
        *,
        txid: str,
        channel: str,
        creator_msp: str,
        signed_proposal: Any,
        chaincode_input: bytes,
        timeout: float = 30.0,
    ) -> SimulationResult:
        """Run one transaction on this peer's chaincode against committed state."""
        if not self._ready.is_set():
            raise ChaincodeUnavailable(f"chaincode is not connected to peer of {self.msp_id}")
        key = (channel, txid)
        if key in self._txs:
            raise SimulationError(f"transaction ID {txid} is already in use on this peer")
        record = SimulationRecord(self.namespace)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        ctx = _TxContext(txid, channel, creator_msp, record, done)
        await self.lock.acquire_read()
        self._txs[key] = ctx
        try:
            self._send(CM(type=CM.TRANSACTION, payload=chaincode_input, txid=txid,
                          channel_id=channel, proposal=signed_proposal))
            # A timer on the future itself: cheaper than asyncio.wait_for's extra waiter.
            timer = loop.call_later(timeout, _expire, done, txid)
            try:
                response, event = await done
            finally:
                timer.cancel()
            for it in ctx.iterators.values():  # iterators left open still count as read
                if it.query is not None:
                    record.range_queries.append(it.query)
            ctx.iterators.clear()
        finally:
            del self._txs[key]
            self.lock.release_read()
        return SimulationResult(response, event, record)

    # ---- chaincode requests (handler.go) ------------------------------------------------
    def _handle(self, msg: Any) -> Any:
        ctx = self._txs.get((msg.channel_id, msg.txid))
        if ctx is None:
            return CM(type=CM.ERROR, txid=msg.txid, channel_id=msg.channel_id,
                      payload=f"no ledger context for transaction {msg.txid}".encode())
        try:
            payload = self._dispatch(ctx, msg)
        except _ChaincodeRequestError as exc:
            return CM(type=CM.ERROR, txid=msg.txid, channel_id=msg.channel_id,
                      payload=str(exc).encode())
        except Exception as exc:
            return CM(type=CM.ERROR, txid=msg.txid, channel_id=msg.channel_id,
                      payload=f"{CM.Type.Name(msg.type)} failed: {exc}".encode())
        return CM(type=CM.RESPONSE, txid=msg.txid, channel_id=msg.channel_id, payload=payload)

    def _collection(self, ctx: _TxContext, name: str, *, write: bool = False,
                    read: bool = False) -> CollectionPolicy:
        coll = self.collections.get(name)
        if coll is None:
            raise _ChaincodeRequestError(
                f"collection {name} not found for chaincode {self.namespace}")
        # Fabric's handler checks the tx creator's membership for memberOnlyRead/Write.
        if read and coll.member_only_read and not coll.is_member(ctx.creator_msp):
            raise _ChaincodeRequestError(
                "tx creator does not have read access permission on privatedata in "
                f"chaincodeName:{self.namespace} collectionName: {name}")
        if write and coll.member_only_write and not coll.is_member(ctx.creator_msp):
            raise _ChaincodeRequestError(
                "tx creator does not have write access permission on privatedata in "
                f"chaincodeName:{self.namespace} collectionName: {name}")
        return coll

    def _dispatch(self, ctx: _TxContext, msg: Any) -> bytes:
        t = msg.type
        ns = self.namespace
        rec = ctx.record
        if t == CM.GET_STATE:
            req = chaincode_shim_pb2.GetState.FromString(msg.payload)
            key = req.key.encode()
            if req.collection:
                self._collection(ctx, req.collection, read=True)
                return self._private_value(ctx, req.collection, key)
            entry = self.store.get_state(ns, key)
            rec.read(key, None if entry is None else entry.version)
            return b"" if entry is None else entry.value
        if t == CM.PUT_STATE:
            put = chaincode_shim_pb2.PutState.FromString(msg.payload)
            key = put.key.encode()
            if put.collection:
                self._collection(ctx, put.collection, write=True)
                coll = rec.collection(put.collection)
                coll.purges.discard(key)
                coll.writes[key] = bytes(put.value)
            else:
                rec.writes[key] = bytes(put.value)
            return b""
        if t in (CM.DEL_STATE, CM.PURGE_PRIVATE_DATA):
            dreq = chaincode_shim_pb2.DelState.FromString(msg.payload)
            key = dreq.key.encode()
            if dreq.collection:
                self._collection(ctx, dreq.collection, write=True)
                coll = rec.collection(dreq.collection)
                if t == CM.PURGE_PRIVATE_DATA:
                    coll.writes.pop(key, None)
                    coll.purges.add(key)
                else:
                    coll.writes[key] = None
            elif t == CM.PURGE_PRIVATE_DATA:
                raise _ChaincodeRequestError("purge requires a collection name")
            else:
                rec.writes[key] = None
            return b""
        if t == CM.GET_PRIVATE_DATA_HASH:
            req = chaincode_shim_pb2.GetState.FromString(msg.payload)
            self._collection(ctx, req.collection)
            kh = sha256(req.key.encode())
            hentry = self.store.get_hashed(ns, req.collection, kh)
            rec.collection(req.collection).hashed_reads.setdefault(
                kh, None if hentry is None else hentry.version)
            return b"" if hentry is None else hentry.value_hash
        if t == CM.GET_STATE_METADATA:
            mreq = chaincode_shim_pb2.GetStateMetadata.FromString(msg.payload)
            key = mreq.key.encode()
            if mreq.collection:
                self._collection(ctx, mreq.collection, read=True)
                kh = sha256(key)
                hentry = self.store.get_hashed(ns, mreq.collection, kh)
                rec.collection(mreq.collection).hashed_reads.setdefault(
                    kh, None if hentry is None else hentry.version)
                raw = None if hentry is None else hentry.metadata
            else:
                entry = self.store.get_state(ns, key)
                rec.read(key, None if entry is None else entry.version)
                raw = None if entry is None else entry.metadata
            return metadata_result(raw)
        if t == CM.PUT_STATE_METADATA:
            pm = chaincode_shim_pb2.PutStateMetadata.FromString(msg.payload)
            key = pm.key.encode()
            entries = {pm.metadata.metakey: bytes(pm.metadata.value)}
            if pm.collection:
                self._collection(ctx, pm.collection, write=True)
                rec.collection(pm.collection).metadata_writes.setdefault(key, {}).update(entries)
            else:
                rec.metadata_writes.setdefault(key, {}).update(entries)
            return b""
        if t == CM.GET_STATE_BY_RANGE:
            rq = chaincode_shim_pb2.GetStateByRange.FromString(msg.payload)
            page: int | None = None
            start = rq.startKey.encode()
            if rq.metadata:
                qm = chaincode_shim_pb2.QueryMetadata.FromString(rq.metadata)
                page = max(qm.pageSize, 0)
                if qm.bookmark:
                    start = qm.bookmark.encode()
            if rq.collection:
                self._collection(ctx, rq.collection, read=True)
            query = None if rq.collection else RangeQuery(start, rq.endKey.encode())
            it_id = uuid.uuid4().hex
            ctx.iterators[it_id] = _Iterator(ns, rq.collection, start, rq.endKey.encode(), page,
                                             query)
            return self._next_batch(ctx, it_id)
        if t == CM.QUERY_STATE_NEXT:
            nreq = chaincode_shim_pb2.QueryStateNext.FromString(msg.payload)
            if nreq.id not in ctx.iterators:
                raise _ChaincodeRequestError(f"query iterator not found: {nreq.id}")
            return self._next_batch(ctx, nreq.id)
        if t == CM.QUERY_STATE_CLOSE:
            creq = chaincode_shim_pb2.QueryStateClose.FromString(msg.payload)
            self._close_iterator(ctx, creq.id)
            return chaincode_shim_pb2.QueryResponse(id=creq.id, has_more=False).SerializeToString()
        raise _ChaincodeRequestError(
            f"[{msg.txid[:8]}] devnet peer does not support {CM.Type.Name(t)}")

    def _private_value(self, ctx: _TxContext, coll: str, key: bytes) -> bytes:
        kh = sha256(key)
        hentry = self.store.get_hashed(self.namespace, coll, kh)
        ctx.record.collection(coll).hashed_reads.setdefault(
            kh, None if hentry is None else hentry.version)
        if hentry is None:
            return b""
        value = self.store.get_private(self.msp_id, self.namespace, coll, key)
        if value is None:
            member = self.collections[coll].is_member(self.msp_id)
            if not member:
                # A non-member peer simply has no cleartext (Fabric returns nil there).
                return b""
            raise _ChaincodeRequestError(
                "private data matching public hash version is not available")
        return value

    def _close_iterator(self, ctx: _TxContext, it_id: str) -> None:
        it = ctx.iterators.pop(it_id, None)
        if it is not None and it.query is not None:
            ctx.record.range_queries.append(it.query)

    def _next_batch(self, ctx: _TxContext, it_id: str) -> bytes:
        it = ctx.iterators[it_id]
        want = QUERY_BATCH if it.page_left is None else min(QUERY_BATCH, it.page_left)
        rows: list[tuple[bytes, bytes, Any]]
        if it.collection:
            rows = [(k, v, None) for k, v in self.store.private_range(
                self.msp_id, it.ns, it.collection, it.next_key, it.end_key, want + 1)]
        else:
            rows = [(k, v, ver) for k, v, ver in self.store.range(
                it.ns, it.next_key, it.end_key, limit=want + 1)]
        batch = rows[:want]
        more_rows = len(rows) > want
        resp = chaincode_shim_pb2.QueryResponse(id=it_id)
        for key, value, version in batch:
            kv = kv_query_result_pb2.KV(namespace=it.ns, key=key.decode("utf-8", "surrogateescape"),
                                        value=value)
            resp.results.add(resultBytes=kv.SerializeToString())
            if it.query is not None and version is not None:
                it.query.reads.append((key, version))
                it.query.end_key = key
        if it.page_left is not None:
            it.page_left -= len(batch)
        if more_rows:
            it.next_key = rows[want][0]
        page_full = it.page_left is not None and it.page_left <= 0
        if not more_rows and it.query is not None:
            it.query.exhausted = True
            it.query.end_key = it.end_key
        resp.has_more = more_rows and not page_full
        if it.page_left is not None:
            resp.metadata = chaincode_shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(batch),
                bookmark=it.next_key.decode("utf-8", "surrogateescape") if more_rows else "",
            ).SerializeToString()
        if not resp.has_more:
            self._close_iterator(ctx, it_id)
        return resp.SerializeToString()


def metadata_result(raw: bytes | None) -> bytes:
    """StateMetadataResult bytes from the stored metadata (name/value entries)."""
    out = chaincode_shim_pb2.StateMetadataResult()
    for name, value in decode_metadata(raw).items():
        out.entries.add(metakey=name, value=value)
    return out.SerializeToString()


def decode_metadata(raw: bytes | None) -> dict[str, bytes]:
    """Stored metadata is a StateMetadataResult (name/value entries)."""
    if not raw:
        return {}
    res = chaincode_shim_pb2.StateMetadataResult.FromString(raw)
    return {e.metakey: bytes(e.value) for e in res.entries}


def encode_metadata(entries: Mapping[str, bytes]) -> bytes | None:
    if not entries:
        return None
    out = chaincode_shim_pb2.StateMetadataResult()
    for name in sorted(entries):
        out.entries.add(metakey=name, value=entries[name])
    return out.SerializeToString()


def chaincode_input_from_proposal(proposal: Any) -> tuple[bytes, bool]:
    """(ChaincodeInput bytes, has transient data) from a proposal's payload."""
    from network.devnet._protos import chaincode_pb2

    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input)
    return spec.chaincode_spec.input.SerializeToString(), len(cpp.TransientMap) > 0
