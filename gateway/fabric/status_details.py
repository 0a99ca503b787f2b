"""Decode (and, for servers and tests, encode) the rich gRPC status Fabric's gateway returns.

The gateway attaches `gateway.ErrorDetail` messages (endorser/orderer address, MSP id and the
message it returned) to its errors as a `google.rpc.Status` in the `grpc-status-details-bin`
trailer. `grpcio-status` / `googleapis-common-protos` are not dependencies of this project, so
when they are absent google.rpc.Status is defined here from a tiny descriptor in a private
descriptor pool (a private pool cannot clash with the real definition if it is installed later).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from ._protos import any_pb2, descriptor_pb2, descriptor_pool, gateway_pb2, message_factory

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "gateway.ErrorDetail"


def _local_status_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    status_file = descriptor_pb2.FileDescriptorProto(
        name="mip/google_rpc_status.proto",
        package="google.rpc",
        dependency=["google/protobuf/any.proto"],
        syntax="proto3",
    )
    message = status_file.message_type.add(name="Status")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    message.field.add(
        name="code", number=1, label=optional, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32
    )
    message.field.add(
        name="message",
        number=2,
        label=optional,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    )
    message.field.add(
        name="details",
        number=3,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".google.protobuf.Any",
    )
    pool.Add(status_file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


def _status_class() -> Any:
    try:
        status_pb2 = importlib.import_module("google.rpc.status_pb2")
    except ImportError:
        return _local_status_class()
    return status_pb2.Status


RpcStatus: Any = _status_class()


def decode_error_details(status_bytes: bytes) -> list[gateway_pb2.ErrorDetail]:
    """The `gateway.ErrorDetail` entries of a serialized google.rpc.Status (others ignored)."""
    status = RpcStatus()
    status.ParseFromString(status_bytes)
    details: list[gateway_pb2.ErrorDetail] = []
    for item in status.details:
        if item.type_url.rsplit("/", 1)[-1] != _ERROR_DETAIL_TYPE:
            continue
        detail = gateway_pb2.ErrorDetail()
        detail.ParseFromString(item.value)
        details.append(detail)
    return details


def details_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> list[gateway_pb2.ErrorDetail]:
    """Find `grpc-status-details-bin` in trailing metadata and decode its ErrorDetails."""
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return decode_error_details(value)
            except Exception:
                return []
    return []


def encode_status(
    code: int, message: str, details: Iterable[gateway_pb2.ErrorDetail] = ()
) -> bytes:
    """Serialize a google.rpc.Status carrying ErrorDetails, as Fabric's gateway sends it.

    Servers (devnet, test fakes) put the result in trailing metadata under STATUS_DETAILS_KEY.
    `code` is the numeric gRPC status code (grpc.StatusCode.X.value[0]).
    """
    status = RpcStatus(code=code, message=message)
    for detail in details:
        item = status.details.add()
        item.type_url = "type.googleapis.com/" + _ERROR_DETAIL_TYPE
        item.value = detail.SerializeToString()
    data: bytes = status.SerializeToString()
    return data
