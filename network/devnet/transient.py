"""The transient store: private write sets from endorsement, held until the block commits.

Kept in memory on purpose: after a crash every entry belongs to a transaction whose commit was
never acknowledged, so dropping them is safe (the client retries). Entries of transactions that
never reach a block are dropped after MAX_BLOCK_RETENTION blocks, like Fabric's
transientstoreMaxBlockRetention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_BLOCK_RETENTION = 1000


@dataclass
class TransientEntry:
    pvt_rwset: bytes
    height: int
    orgs: set[str] = field(default_factory=set)  # the endorsing peers' orgs that hold it


class TransientStore:
    def __init__(self) -> None:
        self._entries: dict[str, TransientEntry] = {}

    def put(self, txid: str, org: str, pvt_rwset: bytes, height: int) -> None:
        entry = self._entries.get(txid)
        if entry is None:
            entry = self._entries[txid] = TransientEntry(pvt_rwset, height)
        entry.orgs.add(org)

    def get(self, txid: str) -> TransientEntry | None:
        return self._entries.get(txid)

    def remove(self, txid: str) -> None:
        self._entries.pop(txid, None)

    def purge_below(self, height: int) -> None:
        cutoff = height - MAX_BLOCK_RETENTION
        if cutoff <= 0:
            return
        for txid in [t for t, e in self._entries.items() if e.height < cutoff]:
            del self._entries[txid]

    def __len__(self) -> int:
        return len(self._entries)
