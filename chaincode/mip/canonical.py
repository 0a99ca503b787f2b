"""Canonical JSON: the exact bytes that holders sign and that hashes are computed over."""

from __future__ import annotations

import json
from typing import Any


def _reject_floats(value: Any) -> None:
    # Floats have several textual forms across languages; signed and hashed documents
    # therefore carry integers and strings only.
    if isinstance(value, float):
        raise ValueError("floats are not allowed in signed or hashed documents")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _reject_floats(item)
    elif isinstance(value, list):
        for item in value:
            _reject_floats(item)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no floats."""
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
