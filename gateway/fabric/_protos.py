"""The fabric_protos modules this package uses, typed as Any.

hyperledger-fabric-protos ships py.typed but no .pyi stubs, and its *_pb2 modules create their
message classes at import time (protobuf's builder), so mypy sees modules without attributes.
The same holds for google.protobuf when types-protobuf is absent. Importing them through
here keeps mypy strict everywhere else in the package.
"""

from __future__ import annotations

import importlib
from typing import Any

from fabric_protos.common import common_pb2 as _common_pb2
from fabric_protos.gateway import gateway_pb2 as _gateway_pb2
from fabric_protos.gateway import gateway_pb2_grpc as _gateway_pb2_grpc
from fabric_protos.msp import identities_pb2 as _identities_pb2
from fabric_protos.orderer import ab_pb2 as _ab_pb2
from fabric_protos.peer import chaincode_event_pb2 as _chaincode_event_pb2
from fabric_protos.peer import chaincode_pb2 as _chaincode_pb2
from fabric_protos.peer import proposal_pb2 as _proposal_pb2
from fabric_protos.peer import proposal_response_pb2 as _proposal_response_pb2
from fabric_protos.peer import transaction_pb2 as _transaction_pb2

ab_pb2: Any = _ab_pb2
chaincode_event_pb2: Any = _chaincode_event_pb2
chaincode_pb2: Any = _chaincode_pb2
common_pb2: Any = _common_pb2
gateway_pb2: Any = _gateway_pb2
gateway_pb2_grpc: Any = _gateway_pb2_grpc
identities_pb2: Any = _identities_pb2
proposal_pb2: Any = _proposal_pb2
proposal_response_pb2: Any = _proposal_response_pb2
transaction_pb2: Any = _transaction_pb2
# google.protobuf is imported by name so that mypy neither needs types-protobuf nor complains
# about an unused ignore once it is installed.
timestamp_pb2: Any = importlib.import_module("google.protobuf.timestamp_pb2")
# Raised when bytes do not parse as the expected message.
DecodeError: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError
