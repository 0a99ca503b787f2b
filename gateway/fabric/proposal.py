"""Build the unsigned transaction proposal of a chaincode invocation (Fabric's wire format).

Mirrors fabric-gateway's proposalbuilder.go / transactioncontext.go: a 24-byte random nonce,
transaction id = hex(SHA-256(nonce + creator)), a ChannelHeader of type ENDORSER_TRANSACTION
whose extension names the chaincode, and a ChaincodeProposalPayload holding the invocation
spec and the transient map. The transient map travels to the endorsers only: it is not part
of the transaction that gets ordered, and it is never logged here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._protos import chaincode_pb2, common_pb2, proposal_pb2, timestamp_pb2
from .signing import sha256

NONCE_LENGTH = 24

Arg = str | bytes


class ProposalError(ValueError):
    """Bad input for a proposal (empty names, arguments of the wrong type...)."""


@dataclass(frozen=True)
class TransactionContext:
    """Nonce, creator and the transaction id derived from them."""

    nonce: bytes
    creator: bytes

    @classmethod
    def new(cls, creator: bytes) -> TransactionContext:
        return cls(nonce=os.urandom(NONCE_LENGTH), creator=creator)

    @property
    def transaction_id(self) -> str:
        return sha256(self.nonce + self.creator).hex()

    def signature_header(self) -> common_pb2.SignatureHeader:
        return common_pb2.SignatureHeader(creator=self.creator, nonce=self.nonce)


def _as_bytes(value: Arg, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ProposalError(f"{what} must be str or bytes, not {type(value).__name__}")


def chaincode_args(transaction_name: str, args: Sequence[Arg]) -> list[bytes]:
    """args[0] is the transaction name (the chaincode router dispatches on it)."""
    if isinstance(args, str | bytes):
        raise ProposalError("args must be a sequence of arguments, not a single str/bytes")
    return [_as_bytes(transaction_name, "transaction name")] + [
        _as_bytes(arg, f"argument {i}") for i, arg in enumerate(args)
    ]


def transient_map(transient: Mapping[str, Arg] | None) -> dict[str, bytes]:
    if not transient:
        return {}
    result: dict[str, bytes] = {}
    for key, value in transient.items():
        if not isinstance(key, str) or not key:
            raise ProposalError("transient keys must be non-empty strings")
        result[key] = _as_bytes(value, f"transient value {key!r}")
    return result


def build_proposal(
    *,
    channel: str,
    chaincode: str,
    transaction_name: str,
    args: Sequence[Arg],
    transient: Mapping[str, Arg] | None,
    context: TransactionContext,
    timestamp_ns: int | None = None,
) -> proposal_pb2.Proposal:
    """The Proposal message (unsigned); sign its serialized bytes to make a SignedProposal."""
    if not channel:
        raise ProposalError("channel name must not be empty")
    if not chaincode:
        raise ProposalError("chaincode name must not be empty")
    if not transaction_name:
        raise ProposalError("transaction name must not be empty")
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    now_ns = time.time_ns() if timestamp_ns is None else timestamp_ns
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=context.transaction_id,
        epoch=0,
        timestamp=timestamp_pb2.Timestamp(
            seconds=now_ns // 1_000_000_000, nanos=now_ns % 1_000_000_000
        ),
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_id
        ).SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=context.signature_header().SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            # Fabric's own clients leave the type unset (UNDEFINED); the peer does not use it
            # for installed chaincode, and it keeps our bytes identical to fabric-gateway's.
            chaincode_id=chaincode_id,
            input=chaincode_pb2.ChaincodeInput(args=chaincode_args(transaction_name, args)),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString(),
        TransientMap=transient_map(transient),
    )
    return proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
