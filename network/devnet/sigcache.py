"""Remember signatures already verified (or produced) by this process.

ECDSA verification is deterministic, so a (signer, message, signature) triple that verified
once verifies again: the committer need not re-verify the envelope signature the orderer just
checked, nor the endorsements devnet's own peers just produced. Entries are keyed by SHA-256
over all three parts, and the cache is a bounded LRU. A miss falls through to the real check.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from network.devnet.msp import verify_signature


def _key(signer: bytes, message: bytes, signature: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (signer, signature, message):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


class SignatureCache:
    def __init__(self, size: int = 65536) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._size = size

    def _add(self, key: bytes) -> None:
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def remember(self, signer: bytes, message: bytes, signature: bytes) -> None:
        """Record a signature this process made itself with `signer`'s key."""
        self._add(_key(signer, message, signature))

    def verify(self, identity: Any, message: bytes, signature: bytes) -> None:
        """msp.verify_signature, skipped for triples already known good (raises SignatureError)."""
        key = _key(identity.serialized, message, signature)
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        verify_signature(identity, message, signature)
        self._add(key)
