"""Field types for ids and values the contract checks, so bad input is a 422 before any call."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# Credential, grant, dataset and key ids: 1 to 128 characters, no NUL (contract limits).
LedgerId = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                            pattern=r"^[^\x00]+$")]
# An account pseudonym: 32 random bytes as 64 lowercase hex.
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Org = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,64}MSP$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Purpose = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=512)]
UnixTime = Annotated[int, Field(ge=0, le=2**53)]


def _b64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    return value


Base64 = Annotated[str, AfterValidator(_b64)]


def b64decode(value: str) -> bytes:
    """Decode a field already checked as Base64."""
    return base64.b64decode(value, validate=True)


def path_id(description: str) -> object:
    """A path parameter holding a ledger id (same limits as LedgerId)."""
    from fastapi import Path

    return Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$", description=description)
