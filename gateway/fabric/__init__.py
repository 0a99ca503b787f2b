"""MIP's Fabric Gateway client: every ledger call goes through here.

Speaks Fabric 2.5's `gateway.Gateway` gRPC service (grpc.aio), the same against MIP's embedded
devnet and real Fabric peers. API and semantics follow hyperledger/fabric-gateway's Go client.
Hand-written because fabric-gateway ships Go, Node and Java clients only, and the old Python
SDK (fabric-sdk-py, last released 2020) predates the Gateway service.
"""

from .checkpoint import Checkpoint, CheckpointError, FileCheckpointer, InMemoryCheckpointer
from .client import Contract, Gateway, Network
from .connection import (
    ConnectionProfile,
    ConnectionProfileError,
    ConnectionSettings,
    from_connection,
)
from .errors import (
    AccessDenied,
    ChaincodeError,
    ChaincodeEventsError,
    ClockSkew,
    CommitError,
    CommitStatusError,
    DeadlineExceeded,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    SubmitError,
)
from .events import ChaincodeEvent, ChaincodeEventStream
from .identity import Identity, IdentityError, MspCredentials, credentials_from_pem, load_msp_folder
from .proposal import ProposalError
from .retry import RetryPolicy
from .session import Deadlines
from .signing import Signer, SigningKeyError, curve_order, is_low_s, to_low_s
from .transaction import Proposal, Status, SubmittedTransaction, Transaction

__all__ = [
    "AccessDenied",
    "ChaincodeError",
    "ChaincodeEvent",
    "ChaincodeEventStream",
    "ChaincodeEventsError",
    "Checkpoint",
    "CheckpointError",
    "ClockSkew",
    "CommitError",
    "CommitStatusError",
    "ConnectionProfile",
    "ConnectionProfileError",
    "ConnectionSettings",
    "Contract",
    "DeadlineExceeded",
    "Deadlines",
    "EndorseError",
    "ErrorDetail",
    "EvaluateError",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Identity",
    "IdentityError",
    "InMemoryCheckpointer",
    "MspCredentials",
    "Network",
    "Proposal",
    "ProposalError",
    "RetryPolicy",
    "Signer",
    "SigningKeyError",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "credentials_from_pem",
    "curve_order",
    "from_connection",
    "is_low_s",
    "load_msp_folder",
    "to_low_s",
]
