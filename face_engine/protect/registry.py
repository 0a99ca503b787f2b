"""Which reference is current for each (holder pseudonym, institution) slot.

Renewal and revocation are enforced here: the protector only matches against the
reference whose commitment is current. In MIP the authoritative copy of this state is the
ledger (it holds the commitment and version per holder and institution); the gateway
implements ``ReferenceRegistry`` over it. ``InMemoryReferenceRegistry`` is the
single-process implementation used by tests, the benchmark and the demo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RegistryEntry:
    commitment: str
    version: int


class ReferenceRegistry(Protocol):
    def current(self, slot: tuple[str, str]) -> RegistryEntry | None:
        """The current entry of a slot, or None when nothing is enrolled or it was revoked."""
        ...

    def highest_version(self, slot: tuple[str, str]) -> int:
        """Highest version ever enrolled in the slot (0 if none); revocation keeps it."""
        ...

    def set_current(self, slot: tuple[str, str], entry: RegistryEntry) -> None: ...

    def revoke(self, slot: tuple[str, str], commitment: str) -> bool:
        """Revoke the slot if ``commitment`` is current; True when something was revoked."""
        ...


class InMemoryReferenceRegistry:
    def __init__(self) -> None:
        self._current: dict[tuple[str, str], RegistryEntry] = {}
        self._highest: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def current(self, slot: tuple[str, str]) -> RegistryEntry | None:
        with self._lock:
            return self._current.get(slot)

    def highest_version(self, slot: tuple[str, str]) -> int:
        with self._lock:
            return self._highest.get(slot, 0)

    def set_current(self, slot: tuple[str, str], entry: RegistryEntry) -> None:
        with self._lock:
            self._current[slot] = entry
            self._highest[slot] = max(self._highest.get(slot, 0), entry.version)

    def revoke(self, slot: tuple[str, str], commitment: str) -> bool:
        with self._lock:
            entry = self._current.get(slot)
            if entry is None or entry.commitment != commitment:
                return False
            del self._current[slot]
            return True
