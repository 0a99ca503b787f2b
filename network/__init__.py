"""MIP networks: devnet (embedded, Fabric wire protocols) and the real Fabric consortium."""

from chaincode.protocol.grpc_runtime import use_poller_transport

# Before any module of this package imports grpc (see chaincode/protocol/grpc_runtime.py).
use_poller_transport()
