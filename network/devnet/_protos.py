"""The Fabric protobuf modules devnet uses, typed as Any.

protobuf builds the generated classes at import time, so mypy cannot see their attributes;
importing them through here keeps the rest of devnet type-checked without per-line ignores.
"""

from __future__ import annotations

import importlib
from typing import Any


def _load(name: str) -> Any:
    return importlib.import_module(name)


common_pb2: Any = _load("fabric_protos.common.common_pb2")
configtx_pb2: Any = _load("fabric_protos.common.configtx_pb2")
msp_config_pb2: Any = _load("fabric_protos.msp.msp_config_pb2")
identities_pb2: Any = _load("fabric_protos.msp.identities_pb2")
gateway_pb2: Any = _load("fabric_protos.gateway.gateway_pb2")
gateway_pb2_grpc: Any = _load("fabric_protos.gateway.gateway_pb2_grpc")
ab_pb2: Any = _load("fabric_protos.orderer.ab_pb2")
chaincode_pb2: Any = _load("fabric_protos.peer.chaincode_pb2")
chaincode_event_pb2: Any = _load("fabric_protos.peer.chaincode_event_pb2")
chaincode_shim_pb2: Any = _load("fabric_protos.peer.chaincode_shim_pb2")
chaincode_shim_pb2_grpc: Any = _load("fabric_protos.peer.chaincode_shim_pb2_grpc")
proposal_pb2: Any = _load("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = _load("fabric_protos.peer.proposal_response_pb2")
transaction_pb2: Any = _load("fabric_protos.peer.transaction_pb2")
rwset_pb2: Any = _load("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = _load("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")
kv_query_result_pb2: Any = _load("fabric_protos.ledger.queryresult.kv_query_result_pb2")
timestamp_pb2: Any = _load("google.protobuf.timestamp_pb2")
DecodeError: type[Exception] = _load("google.protobuf.message").DecodeError
