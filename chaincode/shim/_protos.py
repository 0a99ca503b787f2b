"""The fabric_protos / google.protobuf modules the shim uses, typed as Any.

hyperledger-fabric-protos ships py.typed but no .pyi stubs and builds its message classes at
import time, so mypy sees modules without attributes; google.protobuf has no stubs unless
types-protobuf is installed. Importing through here keeps mypy strict elsewhere.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeAlias

from fabric_protos.common import common_pb2 as _common_pb2
from fabric_protos.common import policies_pb2 as _policies_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2 as _kv_query_result_pb2
from fabric_protos.msp import identities_pb2 as _identities_pb2
from fabric_protos.msp import msp_principal_pb2 as _msp_principal_pb2
from fabric_protos.peer import chaincode_event_pb2 as _chaincode_event_pb2
from fabric_protos.peer import chaincode_pb2 as _chaincode_pb2
from fabric_protos.peer import chaincode_shim_pb2 as _chaincode_shim_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc as _chaincode_shim_pb2_grpc
from fabric_protos.peer import proposal_pb2 as _proposal_pb2
from fabric_protos.peer import proposal_response_pb2 as _proposal_response_pb2

# A protobuf message instance (the generated classes carry no static types).
Message: TypeAlias = Any

common_pb2: Any = _common_pb2
policies_pb2: Any = _policies_pb2
kv_query_result_pb2: Any = _kv_query_result_pb2
identities_pb2: Any = _identities_pb2
msp_principal_pb2: Any = _msp_principal_pb2
chaincode_event_pb2: Any = _chaincode_event_pb2
chaincode_pb2: Any = _chaincode_pb2
shim_pb2: Any = _chaincode_shim_pb2
shim_pb2_grpc: Any = _chaincode_shim_pb2_grpc
proposal_pb2: Any = _proposal_pb2
proposal_response_pb2: Any = _proposal_response_pb2
timestamp_pb2: Any = importlib.import_module("google.protobuf.timestamp_pb2")
# Raised when bytes do not parse as the expected message.
DecodeError: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError
