"""MIP chaincode: a chaincode-as-a-service shim over Fabric's protos, and the contracts."""

from chaincode.protocol.grpc_runtime import use_poller_transport

use_poller_transport()  # before any module of this package imports grpc
