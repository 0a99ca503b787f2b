"""MIP gateway: the Fabric Gateway client, the HTTP service, the `mip` CLI and the counter page."""

from chaincode.protocol.grpc_runtime import use_poller_transport

# Before any module of this package imports grpc (see chaincode/protocol/grpc_runtime.py).
use_poller_transport()
