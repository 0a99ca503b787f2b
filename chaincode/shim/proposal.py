"""The parts of a SignedProposal a chaincode may read, parsed once per transaction.

The headers are parsed eagerly (as Go's shim does) because a bad header must fail the
transaction before the contract runs; the proposal payload (transient map) and the binding
are only computed when a contract asks for them, which keeps the common path lean.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

from chaincode.shim._protos import DecodeError, Message, common_pb2, proposal_pb2
from chaincode.shim.errors import ProposalError

_VALID_HEADER_TYPES = frozenset({common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG})


class ParsedProposal:
    """A SignedProposal with its channel header, creator and (lazily) transient map."""

    __slots__ = (
        "_binding",
        "_transient",
        "channel_header",
        "creator",
        "nonce",
        "proposal",
        "signed_proposal",
    )

    def __init__(self, signed_proposal: Message) -> None:
        self.signed_proposal = signed_proposal
        try:
            self.proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
            if not self.proposal.header:
                raise ProposalError("failed to extract Proposal fields: proposal header is nil")
            header = common_pb2.Header.FromString(self.proposal.header)
            self.channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
            sig_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        except DecodeError as exc:
            raise ProposalError(f"failed to parse the signed proposal: {exc}") from None
        if self.channel_header.type not in _VALID_HEADER_TYPES:
            raise ProposalError(
                "invalid channel header type. Expected ENDORSER_TRANSACTION or CONFIG, "
                f"received {self.channel_header.type}"
            )
        self.creator: bytes = sig_header.creator
        self.nonce: bytes = sig_header.nonce
        self._transient: dict[str, bytes] | None = None
        self._binding: bytes | None = None

    @property
    def transient(self) -> dict[str, bytes]:
        if self._transient is None:
            try:
                payload = proposal_pb2.ChaincodeProposalPayload.FromString(self.proposal.payload)
            except DecodeError as exc:
                raise ProposalError(f"failed to extract proposal payload: {exc}") from None
            self._transient = dict(payload.TransientMap)
        return self._transient

    @property
    def binding(self) -> bytes:
        # Fabric's binding: SHA-256(nonce || creator || little-endian uint64 epoch).
        if self._binding is None:
            epoch = struct.pack("<Q", self.channel_header.epoch)
            self._binding = hashlib.sha256(self.nonce + self.creator + epoch).digest()
        return self._binding

    @property
    def timestamp(self) -> Message:
        return self.channel_header.timestamp

    @property
    def utc_datetime(self) -> datetime:
        ts = self.channel_header.timestamp
        return datetime.fromtimestamp(ts.seconds, tz=UTC).replace(microsecond=ts.nanos // 1000)
