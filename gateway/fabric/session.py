"""What every request object needs from its Gateway: the stub, who signs, and deadlines."""

from __future__ import annotations

from dataclasses import dataclass

from ._protos import gateway_pb2_grpc
from .identity import Identity
from .signing import Signer


@dataclass(frozen=True)
class Deadlines:
    """Default per-call timeouts in seconds (fabric-gateway's recommended values).

    `chaincode_events` bounds the whole stream and is unset (no deadline) by default,
    since an event listener is meant to run for as long as its caller wants.
    """

    evaluate: float = 5.0
    endorse: float = 15.0
    submit: float = 5.0
    commit_status: float = 60.0
    chaincode_events: float | None = None

    def __post_init__(self) -> None:
        for name in ("evaluate", "endorse", "submit", "commit_status", "chaincode_events"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"deadline {name} must be positive, got {value!r}")


@dataclass(frozen=True)
class Session:
    stub: gateway_pb2_grpc.GatewayStub
    identity: Identity
    signer: Signer
    deadlines: Deadlines
