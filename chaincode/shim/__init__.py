"""MIP's Python chaincode shim for Fabric 2.5 chaincode-as-a-service.

Hand-written because no maintained Python shim covers what the MIP contract needs: Hyperledger's
fabric-chaincode-python (2.5.x, young) declares but does not implement private data, transient
data and key-level endorsement, and its ClientIdentity reads no Fabric CA attributes.

Typical use::

    from chaincode.shim import Context, Contract, ContractError, transaction

    class Assets(Contract):
        @transaction(read_only=True)
        async def Read(self, ctx: Context, key: str) -> bytes:
            value = await ctx.stub.get_state(key)
            if value is None:
                raise ContractError(f"{key} does not exist")
            return value
"""

from chaincode.shim.config import ConfigError, ServerConfig, TLSConfig, load_contracts
from chaincode.shim.contract import Context, Contract, transaction
from chaincode.shim.errors import (
    AttributeAssertionError,
    ContractError,
    EmptyKeyError,
    IdentityError,
    InvalidArgumentError,
    InvalidCollectionError,
    InvalidCompositeKeyError,
    InvalidKeyError,
    PeerError,
    ProposalError,
    ProtocolError,
    ShimError,
    StreamClosedError,
)
from chaincode.shim.handler import StreamHandler
from chaincode.shim.identity import ClientIdentity
from chaincode.shim.iterators import QueryIterator, QueryPage
from chaincode.shim.keys import create_composite_key, split_composite_key
from chaincode.shim.router import Router
from chaincode.shim.server import ChaincodeServer
from chaincode.shim.statebased import KeyEndorsementPolicy, PolicyError, RoleType
from chaincode.shim.stub import ChaincodeStub

__all__ = [
    "AttributeAssertionError",
    "ChaincodeServer",
    "ChaincodeStub",
    "ClientIdentity",
    "ConfigError",
    "Context",
    "Contract",
    "ContractError",
    "EmptyKeyError",
    "IdentityError",
    "InvalidArgumentError",
    "InvalidCollectionError",
    "InvalidCompositeKeyError",
    "InvalidKeyError",
    "KeyEndorsementPolicy",
    "PeerError",
    "PolicyError",
    "ProposalError",
    "ProtocolError",
    "QueryIterator",
    "QueryPage",
    "RoleType",
    "Router",
    "ServerConfig",
    "ShimError",
    "StreamClosedError",
    "StreamHandler",
    "TLSConfig",
    "create_composite_key",
    "load_contracts",
    "split_composite_key",
    "transaction",
]
