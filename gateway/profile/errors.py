"""Typed errors of the smart profile store. Messages carry record ids at most, never content."""

from __future__ import annotations


class ProfileError(Exception):
    """Base class of every error raised by `gateway.profile`."""


class InvalidRecord(ProfileError, ValueError):
    """Bad input: a kind, source, metadata, size or key of the wrong type or out of range."""


class RecordNotFound(ProfileError, LookupError):
    """No record with this id."""


class AccessDenied(ProfileError):
    """This key holds no envelope for the record, or is not the record's owner."""


class RecordCorrupt(ProfileError):
    """A ciphertext or key envelope fails authentication: altered or substituted in the store."""
