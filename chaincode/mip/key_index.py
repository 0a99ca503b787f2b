"""Indexes from a holder key to what it speaks for, and the rule that a key speaks for one thing.

A passport key and each account key are distinct: if one key served two accounts, or an account
and a passport, the ledger would link them, and a leaked key would act for both. The indexes
hold sha256 of the key, so they add nothing beyond the public keys already in the records.

A key moved away from its record (`Account:RotateKey`, `Passport:MoveKey`: chaincode/mip/
key_moves.py) is *retired*: it speaks for nothing any more and never will again, so the
custodial copy of a moved key (the enrolling desk's vault) cannot open a new account or
register a passport with it either (which would also link the new record to the old one).
A passport key replaced by guardian recovery (`Passport:RotateKey`) is retired the same way,
and a retired key approves no guardian recovery (chaincode/mip/passports.py).
"""

from __future__ import annotations

import hashlib

from chaincode.shim import Context, create_composite_key

PASSPORT_KEY_OBJECT = "mip.passportkey"  # sha256(current passport key) -> passport id
ACCOUNT_KEY_OBJECT = "mip.accountkey"  # sha256(account key) -> pseudonym
RETIRED_KEY_OBJECT = "mip.retiredkey"  # sha256(a key moved away from its record) -> ""


def _digest(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def passport_key_index(public_key: bytes) -> str:
    return create_composite_key(PASSPORT_KEY_OBJECT, [_digest(public_key)])


def account_key_index(public_key: bytes) -> str:
    return create_composite_key(ACCOUNT_KEY_OBJECT, [_digest(public_key)])


def retired_key_index(public_key: bytes) -> str:
    return create_composite_key(RETIRED_KEY_OBJECT, [_digest(public_key)])


async def retire_key(ctx: Context, public_key: bytes) -> None:
    """Mark `public_key` retired for good (after a holder moved its record to another key)."""
    await ctx.stub.put_state(retired_key_index(public_key), b"\x00")


async def key_in_use(ctx: Context, public_key: bytes) -> bool:
    """True if `public_key` is a passport's current key, any account's key, or retired."""
    for key in (passport_key_index(public_key), account_key_index(public_key),
                retired_key_index(public_key)):
        if await ctx.stub.get_state(key) is not None:
            return True
    return False
