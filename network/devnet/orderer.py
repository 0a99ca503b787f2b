"""The orderer (block cutting) and the committer (validate, persist, notify).

Envelopes accepted by Submit queue here; a block is cut when `batch_size` envelopes are waiting
or `batch_timeout` has passed since the first one arrived (Fabric's BatchSize.MaxMessageCount /
BatchTimeout). Blocks are validated and committed strictly in order; only after the block's
SQLite transaction is durable are CommitStatus waiters and event streams told about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from network.devnet._protos import common_pb2
from network.devnet.blocks import block_header_bytes, block_header_hash, new_block, set_tx_filter
from network.devnet.commit_lock import CommitLock
from network.devnet.store import BlockWrites, Store
from network.devnet.transient import TransientStore
from network.devnet.validator import BlockValidator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommittedBlock:
    number: int
    results: list[tuple[str, int]]  # (txid, validation code) in block order


def sign_block(block: Any, signer: Any) -> None:
    """Orderer SIGNATURES metadata: signature over value || signature_header || header bytes."""
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=0)).SerializeToString()
    sig_header = common_pb2.SignatureHeader(creator=signer.serialized,
                                            nonce=os.urandom(24)).SerializeToString()
    signature = signer.sign(value + sig_header + block_header_bytes(block.header))
    meta = common_pb2.Metadata(value=value, signatures=[common_pb2.MetadataSignature(
        signature_header=sig_header, signature=signature)])
    block.metadata.metadata[common_pb2.BlockMetadataIndex.SIGNATURES] = meta.SerializeToString()


class Orderer:
    """Cuts blocks from submitted envelopes and drives the committer."""

    def __init__(
        self,
        *,
        store: Store,
        validator: BlockValidator,
        lock: CommitLock,
        transient: TransientStore,
        signer: Any,
        batch_size: int,
        batch_timeout_s: float,
        on_commit: Callable[[CommittedBlock], None],
    ) -> None:
        self.store = store
        self.validator = validator
        self.lock = lock
        self.transient = transient
        self.signer = signer
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout_s
        self.on_commit = on_commit
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._blocks: asyncio.Queue[list[tuple[str, bytes]]] = asyncio.Queue(maxsize=4)
        self.pending: set[str] = set()  # submitted, not yet committed tx ids
        self.height = store.height()
        self._prev_hash = store.last_header_hash()
        self._tasks: list[asyncio.Task[None]] = []
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._cut(), name="orderer-cut"),
                       asyncio.create_task(self._commit_loop(), name="committer")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def broadcast(self, txid: str, envelope: bytes) -> None:
        if self.failed is not None:
            raise RuntimeError(f"committer stopped: {self.failed}")
        self.pending.add(txid)
        self._queue.put_nowait((txid, envelope))

    async def _cut(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_timeout
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._blocks.put(batch)

    async def _commit_loop(self) -> None:
        while True:
            batch = await self._blocks.get()
            # Blocks cut while the previous one committed are merged up to batch_size, so
            # the ledger catches up in fewer, larger SQLite transactions under load.
            while len(batch) < self.batch_size and not self._blocks.empty():
                batch.extend(self._blocks.get_nowait())
            try:
                committed = await self.commit_envelopes([env for _, env in batch])
            except BaseException as exc:
                self.failed = exc
                log.exception("committer failed; devnet can no longer commit")
                raise
            for txid, _ in batch:
                self.pending.discard(txid)
            self.on_commit(committed)

    async def commit_envelopes(self, envelopes: list[bytes]) -> CommittedBlock:
        """Build, validate and durably commit the next block (also used for the genesis block)."""
        number = self.height
        block = new_block(number, self._prev_hash, envelopes)
        sign_block(block, self.signer)
        w = BlockWrites(number=number, header_hash=block_header_hash(block.header),
                        block_bytes=b"")
        if number == 0:
            results: list[tuple[str, int]] = [("", 0)] * len(envelopes)
        else:
            results = self.validator.validate_block(block, w)
        set_tx_filter(block, [code for _, code in results])
        w.block_bytes = block.SerializeToString()
        await self.lock.acquire_write()
        try:
            await asyncio.to_thread(self.store.commit_block, w)
        finally:
            self.lock.release_write()
        self.height = number + 1
        self._prev_hash = w.header_hash
        for txid, _ in results:
            if txid:
                self.transient.remove(txid)
        self.transient.purge_below(self.height)
        return CommittedBlock(number, results)
