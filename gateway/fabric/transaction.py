"""The three steps of a transaction, as fabric-gateway splits them.

Proposal --endorse()--> Transaction --submit()--> SubmittedTransaction --status()--> Status

Each object signs lazily right before it is sent, so callers can inspect the result of
an endorsement (Transaction.result) before deciding to submit it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from ._protos import (
    DecodeError,
    common_pb2,
    gateway_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from .errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    GatewayError,
    SubmitError,
    from_rpc_error,
    validation_code_name,
)
from .session import Session

_log = logging.getLogger(__name__)


def _pick(timeout: float | None, default: float) -> float:
    return default if timeout is None else timeout


@dataclass(frozen=True)
class Status:
    """Outcome of a committed transaction."""

    code: int
    code_name: str
    block_number: int
    successful: bool
    transaction_id: str


class Proposal:
    """A transaction proposal, ready to evaluate or endorse."""

    def __init__(
        self,
        session: Session,
        channel: str,
        transaction_id: str,
        proposal: proposal_pb2.Proposal,
        endorsing_orgs: Sequence[str] = (),
    ) -> None:
        self._session = session
        self.channel = channel
        self.transaction_id = transaction_id
        self.endorsing_orgs = tuple(endorsing_orgs)
        self._signed = proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString())

    @property
    def proposal_bytes(self) -> bytes:
        return bytes(self._signed.proposal_bytes)

    def signed_proposal(self) -> proposal_pb2.SignedProposal:
        if not self._signed.signature:
            self._signed.signature = self._session.signer.sign(self._signed.proposal_bytes)
        return self._signed

    async def evaluate(self, *, timeout: float | None = None) -> bytes:
        """Run the transaction on one peer without ordering it; returns its result."""
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel,
            proposed_transaction=self.signed_proposal(),
            target_organizations=self.endorsing_orgs,
        )
        _log.debug("evaluate tx=%s", self.transaction_id)
        try:
            response = await self._session.stub.Evaluate(
                request, timeout=_pick(timeout, self._session.deadlines.evaluate)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, EvaluateError, self.transaction_id) from None
        return bytes(response.result.payload)

    async def endorse(self, *, timeout: float | None = None) -> Transaction:
        """Collect endorsements; returns the prepared (not yet submitted) transaction."""
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel,
            proposed_transaction=self.signed_proposal(),
            endorsing_organizations=self.endorsing_orgs,
        )
        _log.debug("endorse tx=%s", self.transaction_id)
        try:
            response = await self._session.stub.Endorse(
                request, timeout=_pick(timeout, self._session.deadlines.endorse)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, EndorseError, self.transaction_id) from None
        return Transaction(self._session, self.transaction_id, response.prepared_transaction)


def parse_prepared_transaction(
    envelope: common_pb2.Envelope, transaction_id: str
) -> tuple[str, bytes]:
    """Channel and chaincode result of a prepared transaction (fabric-gateway's
    transactionparser.go); checks the envelope is the one proposed."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        transaction = transaction_pb2.Transaction.FromString(payload.data)
    except DecodeError as exc:
        raise EndorseError(
            f"malformed prepared transaction: {exc}", transaction_id=transaction_id
        ) from None
    if channel_header.tx_id != transaction_id:
        raise EndorseError(
            "gateway returned a transaction for another id", transaction_id=transaction_id
        )
    for action in transaction.actions:
        try:
            action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
                action_payload.action.proposal_response_payload
            )
            chaincode_action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
        except DecodeError:
            continue
        return channel_header.channel_id, bytes(chaincode_action.response.payload)
    raise EndorseError(
        "prepared transaction holds no proposal response", transaction_id=transaction_id
    )


class Transaction:
    """An endorsed transaction: its result is known, it is not yet ordered."""

    def __init__(self, session: Session, transaction_id: str, envelope: common_pb2.Envelope):
        self._session = session
        self.transaction_id = transaction_id
        self.channel, self.result = parse_prepared_transaction(envelope, transaction_id)
        self._envelope = envelope

    @property
    def envelope(self) -> common_pb2.Envelope:
        return self._envelope

    def _sign(self) -> None:
        if not self._envelope.signature:
            self._envelope.signature = self._session.signer.sign(self._envelope.payload)

    async def submit(self, *, timeout: float | None = None) -> SubmittedTransaction:
        """Send the signed transaction to the orderer; returns without waiting for commit."""
        self._sign()
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel,
            prepared_transaction=self._envelope,
        )
        _log.debug("submit tx=%s", self.transaction_id)
        try:
            await self._session.stub.Submit(
                request, timeout=_pick(timeout, self._session.deadlines.submit)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, SubmitError, self.transaction_id) from None
        return SubmittedTransaction(self._session, self.channel, self.transaction_id, self.result)


class SubmittedTransaction:
    """A transaction handed to the orderer; ask for its commit status when needed."""

    def __init__(self, session: Session, channel: str, transaction_id: str, result: bytes) -> None:
        self._session = session
        self.channel = channel
        self.transaction_id = transaction_id
        self.result = result
        request = gateway_pb2.CommitStatusRequest(
            transaction_id=transaction_id,
            channel_id=channel,
            identity=session.identity.serialize(),
        ).SerializeToString()
        self._signed_request = gateway_pb2.SignedCommitStatusRequest(
            request=request, signature=session.signer.sign(request)
        )

    async def status(self, *, timeout: float | None = None) -> Status:
        """Wait until the transaction is committed (valid or not) and report how."""
        _log.debug("commit status tx=%s", self.transaction_id)
        try:
            response = await self._session.stub.CommitStatus(
                self._signed_request, timeout=_pick(timeout, self._session.deadlines.commit_status)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, CommitStatusError, self.transaction_id) from None
        code = int(response.result)
        return Status(
            code=code,
            code_name=validation_code_name(code),
            block_number=int(response.block_number),
            successful=code == transaction_pb2.TxValidationCode.VALID,
            transaction_id=self.transaction_id,
        )

    async def wait(self, *, timeout: float | None = None) -> bytes:
        """Wait for commit; returns the result, or raises CommitError if it was invalidated."""
        status = await self.status(timeout=timeout)
        if not status.successful:
            raise CommitError(self.transaction_id, status.code, status.block_number)
        return self.result


__all__ = [
    "GatewayError",
    "Proposal",
    "Status",
    "SubmittedTransaction",
    "Transaction",
    "parse_prepared_transaction",
]
