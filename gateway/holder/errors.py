"""Typed errors of the holder key library (derivation, vault, guardian recovery).

Every error is a `HolderError`, so a service can map the whole family to one response.
Messages never contain key material, passwords, shares or secrets.
"""

from __future__ import annotations


class HolderError(Exception):
    """Base class of every error raised by `gateway.holder`."""


class InvalidKeyMaterial(HolderError, ValueError):
    """A secret, key, index or identifier has the wrong type, length or range."""


class WeakPassword(HolderError, ValueError):
    """The password does not meet the minimum (see `gateway.holder.vault.MIN_PASSWORD_CHARS`)."""


class UnlockFailed(HolderError):
    """The wrapped secret could not be opened.

    Deliberately one error for a wrong password, a wrong face-factor key, a wrong passport id
    or a ciphertext altered in place: telling them apart would let whoever holds one factor
    test guesses of the other.
    """

    def __init__(self) -> None:
        super().__init__("unlock failed")


class MalformedBlob(HolderError, ValueError):
    """A wrapped secret's serialised form is not a valid blob of a supported version."""


class RecoveryError(HolderError):
    """Base class of guardian-recovery errors."""


class InvalidGuardianKey(RecoveryError, ValueError):
    """A guardian key is not a usable Ed25519 key (wrong length, or not a valid point)."""


class ShareOpenFailed(RecoveryError):
    """A sealed share does not open with this guardian's key (not sealed to it, or altered)."""


class CorruptShare(RecoveryError, ValueError):
    """A share mnemonic (or a sealed share's serialised form) is malformed or fails its checksum."""


class MixedShares(RecoveryError, ValueError):
    """The shares come from different splits (or repeat one guardian's share with other content)."""


class TooFewShares(RecoveryError, ValueError):
    """Fewer distinct shares than the threshold the secret was split with."""
