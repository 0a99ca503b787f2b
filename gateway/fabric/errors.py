"""Typed errors of the Gateway client.

Two axes: the phase that failed (EvaluateError, EndorseError, SubmitError, CommitStatusError,
ChaincodeEventsError) and, where it can be told, the kind of failure (ChaincodeError,
AccessDenied, DeadlineExceeded). A raised error is an instance of both, so callers catch
whichever axis they care about (`except ChaincodeError` or `except EndorseError`).
CommitError is different: the gRPC calls worked but the transaction was invalidated.

How Fabric 2.5's gateway reports failures (internal/pkg/gateway in hyperledger/fabric):
- Evaluate, chaincode returned status >= 400: UNKNOWN, "evaluate call to endorser returned
  error: chaincode response 500, <msg>", one ErrorDetail with "chaincode response 500, <msg>".
- Endorse, any endorser failure: ABORTED, "failed to endorse transaction, see attached details
  for more info" (or "failed to collect enough transaction endorsements ..."), ErrorDetails
  carry "chaincode response 500, <msg>" or the peer's own error.
- A proposal the peer refuses in preProcess (ACL, bad creator): FAILED_PRECONDITION for
  Evaluate / ABORTED for Endorse, message holding "access denied".
- CommitStatus / ChaincodeEvents for an unauthorised identity: PERMISSION_DENIED.
- Timeouts inside the gateway: DEADLINE_EXCEEDED ("... timeout expired ...").
- A proposal dated outside a Fabric 3.x peer's time window (its TimeWindowCheck auth filter,
  peer.authentication.timewindow, 15 minutes by default): the gateway takes the filter's error
  for an unavailable peer, so UNAVAILABLE "failed to evaluate transaction ..." on Evaluate and
  ABORTED on Endorse, each ErrorDetail "request unauthorized due to incorrect timestamp <ts>,
  peer time <ts>, peer.authentication.timewindow 15m0s" (ClockSkew).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from ._protos import gateway_pb2, transaction_pb2
from .status_details import error_details


@dataclass(frozen=True)
class ErrorDetail:
    """One endorser's or orderer's answer attached to a gateway error."""

    address: str
    msp_id: str
    message: str

    @classmethod
    def from_proto(cls, detail: gateway_pb2.ErrorDetail) -> ErrorDetail:
        return cls(address=detail.address, msp_id=detail.msp_id, message=detail.message)


class GatewayError(Exception):
    """A Gateway gRPC call failed; carries the gRPC status and the gateway's ErrorDetails."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: tuple[ErrorDetail, ...] = (),
        transaction_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
        self.transaction_id = transaction_id

    def __str__(self) -> str:
        text = self.message
        if self.code is not None:
            text = f"{self.code.name}: {text}"
        if self.transaction_id:
            text += f" (transaction {self.transaction_id})"
        for detail in self.details:
            text += f"\n  - {detail.address} ({detail.msp_id}): {detail.message}"
        return text


# Phases.
class EvaluateError(GatewayError):
    """Evaluate failed."""


class EndorseError(GatewayError):
    """Endorse failed: no endorsement, or not enough to satisfy the policy."""

    @property
    def endorsements_differ(self) -> bool:
        """The endorsers simulated on different states (a block committed between their
        simulations), so their results differ: the endorsement analogue of a read conflict,
        which endorsing again resolves. Fabric's gateway and devnet say so per org."""
        return any(ENDORSEMENTS_DIFFER in d.message for d in self.details)


# What Fabric's gateway (and devnet) put in an org's error detail when its endorsement's
# result differs from the others'.
ENDORSEMENTS_DIFFER = "ProposalResponsePayloads do not match"


class SubmitError(GatewayError):
    """Submit to the ordering service failed."""


class CommitStatusError(GatewayError):
    """Asking for the commit status failed (not the same as the transaction being invalid)."""


class ChaincodeEventsError(GatewayError):
    """The chaincode events stream failed."""


# Kinds.
class ChaincodeError(GatewayError):
    """The chaincode returned an error response (status >= 400)."""

    chaincode_status: int = 0
    chaincode_message: str = ""


class AccessDenied(GatewayError):
    """The peer or gateway refused the caller's identity."""


class DeadlineExceeded(GatewayError):
    """The call did not finish within its deadline (client- or gateway-side)."""


class ClockSkew(GatewayError):
    """The peers refused the proposal's timestamp: this machine's clock and the peers' differ
    by more than their time window. Retrying does not help; fix the clock (NTP)."""


class CommitError(GatewayError):
    """The transaction was ordered but invalidated at commit (MVCC conflict, policy failure...)."""

    def __init__(self, transaction_id: str, validation_code: int, block_number: int) -> None:
        self.validation_code = validation_code
        self.code_name = validation_code_name(validation_code)
        self.block_number = block_number
        super().__init__(
            f"transaction {transaction_id} failed to commit with status code "
            f"{validation_code} ({self.code_name})",
            transaction_id=transaction_id,
        )


def validation_code_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"UNKNOWN_VALIDATION_CODE_{code}"


# Fabric's chaincode error text, built by the gateway from the proposal response
# (apiutils.go: fmt.Sprintf("chaincode response %d, %s", status, message)).
_CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)
_ACCESS_DENIED = re.compile(r"access denied", re.IGNORECASE)
# core/handlers/auth/filter/timewindow.go's refusal.
_TIME_WINDOW = re.compile(r"request unauthorized due to incorrect timestamp")


_COMBINED: dict[tuple[str, str], type[GatewayError]] = {}


def _combined(phase: type[GatewayError], kind: type[GatewayError]) -> type[GatewayError]:
    """One class per (phase, kind) pair, so one exception answers both `except` clauses."""
    key = (phase.__name__, kind.__name__)
    if key not in _COMBINED:
        name = f"{kind.__name__}In{phase.__name__.removesuffix('Error')}"
        _COMBINED[key] = type(name, (kind, phase), {"__module__": __name__})
    return _COMBINED[key]


def _find_chaincode_response(texts: list[str]) -> tuple[int, str] | None:
    for text in texts:
        match = _CHAINCODE_RESPONSE.search(text)
        if match and int(match.group(1)) >= 400:
            return int(match.group(1)), match.group(2)
    return None


def from_rpc_error(
    error: grpc.RpcError, phase: type[GatewayError], transaction_id: str = ""
) -> GatewayError:
    """Map a failed gRPC call of `phase` to the most specific typed error."""
    code: grpc.StatusCode | None = None
    message = str(error)
    details: tuple[ErrorDetail, ...] = ()
    if isinstance(error, grpc.aio.AioRpcError) or hasattr(error, "code"):
        code = error.code()
        message = error.details() or ""
        details = tuple(ErrorDetail.from_proto(d) for d in error_details(error))
    texts = [d.message for d in details] + [message]

    kind: type[GatewayError] | None = None
    chaincode = _find_chaincode_response(texts)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        kind = DeadlineExceeded
    elif any(_TIME_WINDOW.search(t) for t in texts):
        kind = ClockSkew
    elif code == grpc.StatusCode.PERMISSION_DENIED or any(_ACCESS_DENIED.search(t) for t in texts):
        kind = AccessDenied
    elif chaincode is not None:
        kind = ChaincodeError

    cls = _combined(phase, kind) if kind is not None else phase
    result = cls(message, code=code, details=details, transaction_id=transaction_id)
    if chaincode is not None and isinstance(result, ChaincodeError):
        result.chaincode_status, result.chaincode_message = chaincode
    return result


def deadline_error(
    phase: type[GatewayError], message: str, transaction_id: str = ""
) -> GatewayError:
    """A client-side timeout (asyncio) reported like the gRPC one."""
    cls = _combined(phase, DeadlineExceeded)
    return cls(message, code=grpc.StatusCode.DEADLINE_EXCEEDED, transaction_id=transaction_id)
