"""Unpack the rich gRPC status Fabric's gateway returns with its errors.

Fabric's gateway (internal/pkg/gateway/api.go, grpc-go's status.WithDetails) attaches
`gateway.ErrorDetail` messages (endorser/orderer address, MSP id and the message it returned)
to its errors as a `google.rpc.Status` in the `grpc-status-details-bin` trailer. grpcio-status
finds and parses that trailer (and checks it agrees with the call's own code and message);
google.rpc.Status comes from googleapis-common-protos, and protobuf's Any.Unpack checks each
detail's type. Servers (devnet, the test fakes) build the trailer with the same libraries.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from ._protos import DecodeError, gateway_pb2

log = logging.getLogger(__name__)


class _CallWithStatus(Protocol):
    """What grpcio-status reads from a failed call (grpc.Call, grpc.aio.AioRpcError)."""

    def code(self) -> grpc.StatusCode: ...

    def details(self) -> str | None: ...

    def trailing_metadata(self) -> Any: ...


def unpack_error_details(status: status_pb2.Status) -> list[Any]:
    """The `gateway.ErrorDetail` entries of a google.rpc.Status (other detail types ignored)."""
    details: list[Any] = []
    for item in status.details:
        detail = gateway_pb2.ErrorDetail()
        try:
            if item.Unpack(detail):
                details.append(detail)
        except DecodeError:
            log.debug("skipping an ErrorDetail that does not parse")
    return details


def decode_error_details(status_bytes: bytes) -> list[Any]:
    """The `gateway.ErrorDetail` entries of a serialized google.rpc.Status."""
    return unpack_error_details(status_pb2.Status.FromString(status_bytes))


def error_details(call: _CallWithStatus) -> list[Any]:
    """The `gateway.ErrorDetail` entries of a failed call; [] when it carries none.

    A trailer that does not parse, or that disagrees with the call's status code or message
    (which Fabric's gateway never sends), yields no details rather than a second error: the
    caller still reports the call's own code and message.
    """
    try:
        status = rpc_status.from_call(call)
    except (ValueError, DecodeError) as exc:
        log.debug("ignoring an unusable grpc-status-details-bin trailer: %s", exc)
        return []
    return [] if status is None else unpack_error_details(status)
