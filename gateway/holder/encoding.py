"""Base64 fields of the holder blobs (wrapped secrets, sealed shares), decoded strictly.

Each blob format raises its own error type, so decoding takes the error class to raise.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from gateway.holder.errors import HolderError


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any, what: str, error: type[HolderError]) -> bytes:
    """Standard base64 of `text` (no stray characters), or `error` naming the field."""
    if not isinstance(text, str):
        raise error(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc
