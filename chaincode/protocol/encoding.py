"""Base64 as MIP's documents carry binary fields (keys, signatures, salts, sealed blobs)."""

from __future__ import annotations

import base64
import binascii
from typing import Any


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode()


def unb64(text: Any, what: str, error: type[Exception]) -> bytes:
    """Standard base64 of `text` (no stray characters), or `error` naming the field.

    Each side passes its own error class: the contract its `InvalidRequest`, the gateway's
    holder blobs (wrapped secrets, sealed shares) theirs."""
    if not isinstance(text, str):
        raise error(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc
