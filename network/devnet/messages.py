"""Unpacking and assembling Fabric's nested proposal / transaction messages (protoutil)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from network.devnet._protos import (
    DecodeError,
    chaincode_pb2,
    common_pb2,
    proposal_pb2,
    transaction_pb2,
)

ENDORSER_TRANSACTION = common_pb2.HeaderType.ENDORSER_TRANSACTION


class MalformedMessage(ValueError):
    """A proposal or envelope that does not unpack (gRPC InvalidArgument / BAD_PAYLOAD)."""


def compute_txid(nonce: bytes, creator: bytes) -> str:
    """protoutil.ComputeTxID: hex(SHA-256(nonce || creator))."""
    return hashlib.sha256(nonce + creator).hexdigest()


def cpp_without_transient(cpp: Any) -> bytes:
    return proposal_pb2.ChaincodeProposalPayload(input=cpp.input).SerializeToString()


def proposal_hash(channel_header: bytes, signature_header: bytes, cpp_no_transient: bytes) -> bytes:
    """protoutil.GetProposalHash1/2: what a ProposalResponsePayload binds the endorsement to."""
    digest = hashlib.sha256()
    digest.update(channel_header)
    digest.update(signature_header)
    digest.update(cpp_no_transient)
    return digest.digest()


@dataclass
class UnpackedProposal:
    signed: Any
    header: Any
    channel_header: Any
    signature_header: Any
    cpp: Any
    chaincode_name: str
    chaincode_input: bytes
    hash: bytes

    @property
    def txid(self) -> str:
        return str(self.channel_header.tx_id)

    @property
    def channel(self) -> str:
        return str(self.channel_header.channel_id)

    @property
    def creator(self) -> bytes:
        return bytes(self.signature_header.creator)

    @property
    def has_transient(self) -> bool:
        return len(self.cpp.TransientMap) > 0


def unpack_proposal(signed: Any) -> UnpackedProposal:
    if not signed.proposal_bytes:
        raise MalformedMessage("the proposed transaction must contain a signed proposal")
    try:
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        chdr = common_pb2.ChannelHeader.FromString(header.channel_header)
        shdr = common_pb2.SignatureHeader.FromString(header.signature_header)
        cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input)
        ext = proposal_pb2.ChaincodeHeaderExtension.FromString(chdr.extension)
    except DecodeError as exc:
        raise MalformedMessage(f"failed to unpack transaction proposal: {exc}") from exc
    if chdr.type != ENDORSER_TRANSACTION:
        raise MalformedMessage(f"invalid header type {chdr.type}")
    name = spec.chaincode_spec.chaincode_id.name or ext.chaincode_id.name
    if not name:
        raise MalformedMessage("no chaincode name in proposal")
    return UnpackedProposal(
        signed=signed,
        header=header,
        channel_header=chdr,
        signature_header=shdr,
        cpp=cpp,
        chaincode_name=name,
        chaincode_input=spec.chaincode_spec.input.SerializeToString(),
        hash=proposal_hash(header.channel_header, header.signature_header,
                           cpp_without_transient(cpp)),
    )


def prepare_transaction(
    up: UnpackedProposal,
    proposal_response_payload: bytes,
    endorsements: list[Any],
) -> Any:
    """The unsigned transaction Envelope, assembled exactly as Fabric's gateway does."""
    unique: list[Any] = []
    seen: set[bytes] = set()
    for e in endorsements:
        if e.endorser not in seen:
            seen.add(e.endorser)
            unique.append(e)
    cap = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=cpp_without_transient(up.cpp),
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=proposal_response_payload, endorsements=unique),
    )
    tx = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
        header=up.header.signature_header, payload=cap.SerializeToString())])
    payload = common_pb2.Payload(header=up.header, data=tx.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


@dataclass
class UnpackedTransaction:
    envelope: Any
    payload: Any
    channel_header: Any
    signature_header: Any

    @property
    def txid(self) -> str:
        return str(self.channel_header.tx_id)


def unpack_envelope(data: Any) -> UnpackedTransaction:
    try:
        env = (data if isinstance(data, common_pb2.Envelope)
               else common_pb2.Envelope.FromString(data))
        payload = common_pb2.Payload.FromString(env.payload)
        chdr = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    except DecodeError as exc:
        raise MalformedMessage(f"cannot unpack envelope: {exc}") from exc
    return UnpackedTransaction(env, payload, chdr, shdr)
