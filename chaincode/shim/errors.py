"""Typed errors raised by the shim.

Every error a contract can see is a `ShimError`; the router turns a `ShimError` or a
`ContractError` into a status-500 response carrying only the error's own message.
"""

from __future__ import annotations


class ShimError(Exception):
    """Base class of every error the shim raises on purpose."""


class PeerError(ShimError):
    """The peer answered a stub call with an ERROR message; the text is the peer's message."""


class StreamClosedError(ShimError):
    """The stream to the peer ended while a stub call was waiting for its answer."""


class ProtocolError(ShimError):
    """The peer sent a message the protocol does not allow at this point."""


class InvalidKeyError(ShimError, ValueError):
    """A state key the peer would refuse (empty, or \\x00-prefixed outside composite-key use)."""


class EmptyKeyError(InvalidKeyError):
    """PutState/DelState with an empty key."""


class InvalidCompositeKeyError(InvalidKeyError):
    """A composite-key part containing U+0000 or U+10FFFF, or a malformed composite key."""


class InvalidCollectionError(ShimError, ValueError):
    """A private-data call with an empty collection name."""


class InvalidArgumentError(ShimError, ValueError):
    """A transaction argument that does not decode to its declared type, or a wrong count."""


class ProposalError(ShimError):
    """The SignedProposal of a transaction could not be parsed."""


class IdentityError(ShimError):
    """The creator identity is not an X.509 SerializedIdentity the shim can read."""


class AttributeAssertionError(ShimError):
    """`ClientIdentity.assert_attribute_value` found the attribute missing or different."""


class ContractError(Exception):
    """Raised by a contract to fail a transaction with a clean message (status 500 by default)."""

    def __init__(self, message: str, status: int = 500, payload: bytes = b"") -> None:
        super().__init__(message)
        if not 400 <= status <= 599:
            raise ValueError("a ContractError status must be in 400..599")
        self.message = message
        self.status = status
        self.payload = payload
