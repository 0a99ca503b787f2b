"""Indexes from a holder key to what it speaks for, and the rule that a key speaks for one thing.

A passport key and each account key are distinct: if one key served two accounts, or an account
and a passport, the ledger would link them, and a leaked key would act for both. The indexes
hold sha256 of the key, so they add nothing beyond the public keys already in the records.
"""

from __future__ import annotations

import hashlib

from chaincode.shim import Context, create_composite_key

PASSPORT_KEY_OBJECT = "mip.passportkey"  # sha256(current passport key) -> passport id
ACCOUNT_KEY_OBJECT = "mip.accountkey"  # sha256(account key) -> pseudonym


def _digest(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def passport_key_index(public_key: bytes) -> str:
    return create_composite_key(PASSPORT_KEY_OBJECT, [_digest(public_key)])


def account_key_index(public_key: bytes) -> str:
    return create_composite_key(ACCOUNT_KEY_OBJECT, [_digest(public_key)])


async def key_in_use(ctx: Context, public_key: bytes) -> bool:
    """True if `public_key` is a passport's current key or any account's key."""
    for key in (passport_key_index(public_key), account_key_index(public_key)):
        if await ctx.stub.get_state(key) is not None:
            return True
    return False
