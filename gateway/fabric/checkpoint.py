"""Checkpointers: remember how far an event listener got, so a restart resumes right after.

A checkpoint is (block number, transaction id) of the last event processed; resuming asks the
gateway for events from that block, after that transaction (ChaincodeEventsRequest's
start_position + after_transaction_id). Checkpointing a whole block stores (block + 1, "").
Same semantics and JSON file format as fabric-gateway's InMemoryCheckpointer/FileCheckpointer.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from .events import ChaincodeEvent


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or malformed."""


@runtime_checkable
class Checkpoint(Protocol):
    @property
    def block_number(self) -> int: ...

    @property
    def transaction_id(self) -> str: ...


class InMemoryCheckpointer:
    """Checkpoint held in memory (for a listener that reconnects within one process)."""

    def __init__(self, block_number: int = 0, transaction_id: str = "") -> None:
        self._block_number = block_number
        self._transaction_id = transaction_id

    @property
    def block_number(self) -> int:
        return self._block_number

    @property
    def transaction_id(self) -> str:
        return self._transaction_id

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        if block_number < 0:
            raise ValueError("block number must not be negative")
        self._block_number = block_number
        self._transaction_id = transaction_id
        self._saved()

    def checkpoint_block(self, block_number: int) -> None:
        """Every event of `block_number` is processed: resume at the next block."""
        self.checkpoint_transaction(block_number + 1, "")

    def checkpoint_event(self, event: ChaincodeEvent) -> None:
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def _saved(self) -> None:
        """Hook for persistent subclasses."""


class FileCheckpointer(InMemoryCheckpointer):
    """Checkpoint persisted as JSON {"blockNumber", "transactionId"}, written atomically.

    Each save writes a temporary file in the same folder, fsyncs it and renames it over the
    checkpoint, so a crash leaves either the old or the new checkpoint, never a torn one.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        block_number, transaction_id = 0, ""
        if self.path.exists():
            block_number, transaction_id = self._read()
        super().__init__(block_number, transaction_id)

    def _read(self) -> tuple[int, str]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read checkpoint {self.path}: {exc}") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"checkpoint {self.path} is not a JSON object")
        block_number = state.get("blockNumber", 0)
        transaction_id = state.get("transactionId", "")
        if not isinstance(block_number, int) or block_number < 0:
            raise CheckpointError(f"checkpoint {self.path}: bad blockNumber")
        if not isinstance(transaction_id, str):
            raise CheckpointError(f"checkpoint {self.path}: bad transactionId")
        return block_number, transaction_id

    def _saved(self) -> None:
        data = json.dumps(
            {"blockNumber": self.block_number, "transactionId": self.transaction_id}
        ).encode()
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # Make the rename itself durable.
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
