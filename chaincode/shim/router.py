"""Routes `args[0]` (`Tx` or `Contract:Tx`) to a contract's `@transaction` method.

Every failure becomes a status-500 `Response` with a clean message: a `ContractError` or a
shim error keeps its own message; any other exception gets a generic message with an error
id, and the log gets the id, the exception type and the stack (never the exception text or
argument values, which may hold private data).
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from chaincode.shim._protos import Message, proposal_response_pb2
from chaincode.shim.codec import decode_argument, encode_result, json_schema
from chaincode.shim.contract import Contract, TransactionInfo
from chaincode.shim.errors import ContractError, InvalidArgumentError, ShimError
from chaincode.shim.stub import ChaincodeStub
from chaincode.shim.txstate import short_txid

_log = logging.getLogger("chaincode.shim.router")
Response = proposal_response_pb2.Response

SYSTEM_CONTRACT = "org.hyperledger.fabric"
SCHEMA_URL = "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json"


class Router:
    """The `Chaincode` the stream handler runs: dispatch, argument decoding, responses."""

    def __init__(self, contracts: Sequence[Contract], title: str = "mip", version: str = "1.0"):
        if not contracts:
            raise ValueError("a router needs at least one contract")
        self._contracts: dict[str, Contract] = {}
        self._transactions: dict[str, dict[str, TransactionInfo]] = {}
        for contract in contracts:
            name = contract.contract_name()
            if name in self._contracts or name == SYSTEM_CONTRACT or ":" in name:
                raise ValueError(f"contract name {name!r} is duplicated or reserved")
            self._contracts[name] = contract
            self._transactions[name] = contract.transactions()
        # The first contract answers unqualified names, as in Fabric's contract APIs.
        self.default_contract = next(iter(self._contracts))
        self._metadata = json.dumps(
            self._build_metadata(title, version), separators=(",", ":"), sort_keys=True
        ).encode()

    @property
    def metadata_json(self) -> bytes:
        return self._metadata

    async def invoke(self, stub: ChaincodeStub) -> Message:
        args = stub.get_args()
        if not args:
            return Response(status=500, message="no transaction name given (args is empty)")
        try:
            function = args[0].decode("utf-8")
        except UnicodeDecodeError:
            return Response(status=500, message="transaction name is not valid UTF-8")
        contract_name, _, tx_name = function.rpartition(":")
        if not contract_name:
            contract_name = self.default_contract
        elif contract_name == SYSTEM_CONTRACT:
            if tx_name == "GetMetadata":
                return Response(status=200, payload=self._metadata)
            return Response(status=500, message=f"unknown transaction {function!r}")
        contract = self._contracts.get(contract_name)
        if contract is None:
            return Response(status=500, message=f"unknown contract {contract_name!r}")
        info = self._transactions[contract_name].get(tx_name)
        try:
            ctx = contract.create_context(stub)
            if info is None:
                result = await contract.unknown_transaction(ctx, function)
            else:
                result = await info.method(ctx, *self._decode(info, args))
            return Response(status=200, payload=encode_result(result))
        except asyncio.CancelledError:
            raise
        except ContractError as exc:
            return Response(status=exc.status, message=exc.message, payload=exc.payload)
        except ShimError as exc:
            return Response(status=500, message=str(exc))
        except Exception as exc:
            error_id = uuid.uuid4().hex[:12]
            _log.warning(
                "transaction %s [%s] failed: %s (error id %s)",
                function,
                short_txid(stub.tx_id),
                type(exc).__name__,
                error_id,
            )
            if _log.isEnabledFor(logging.DEBUG):
                # Stack frames only: the exception's text may quote private values.
                stack = "".join(traceback.format_tb(exc.__traceback__))
                _log.debug("error id %s stack:\n%s", error_id, stack)
            return Response(
                status=500, message=f"internal error in transaction {tx_name} (error id {error_id})"
            )

    @staticmethod
    def _decode(info: TransactionInfo, args: list[bytes]) -> list[Any]:
        given = len(args) - 1
        if given != len(info.parameters):
            raise InvalidArgumentError(
                f"invalid argument count for {info.name}: expected {len(info.parameters)}, "
                f"got {given}"
            )
        return [
            decode_argument(raw, param.annotation, param.name)
            for raw, param in zip(args[1:], info.parameters, strict=True)
        ]

    def _build_metadata(self, title: str, version: str) -> dict[str, Any]:
        components: dict[str, Any] = {}
        contracts: dict[str, Any] = {}
        for name, contract in self._contracts.items():
            transactions = []
            for tx in sorted(self._transactions[name].values(), key=lambda t: t.name):
                transactions.append(
                    {
                        "name": tx.name,
                        "tag": ["evaluate"] if tx.read_only else ["submit"],
                        "parameters": [
                            {"name": p.name, "schema": json_schema(p.annotation, components)}
                            for p in tx.parameters
                        ],
                        "returns": json_schema(tx.returns, components),
                    }
                )
            contracts[name] = {
                "name": name,
                "info": {"title": name, "version": contract.version},
                "default": name == self.default_contract,
                "transactions": transactions,
            }
        contracts[SYSTEM_CONTRACT] = {
            "name": SYSTEM_CONTRACT,
            "info": {"title": SYSTEM_CONTRACT, "version": "latest"},
            "default": False,
            "transactions": [
                {
                    "name": "GetMetadata",
                    "tag": ["evaluate"],
                    "parameters": [],
                    "returns": {"type": "string"},
                }
            ],
        }
        return {
            "$schema": SCHEMA_URL,
            "info": {"title": title, "version": version},
            "contracts": contracts,
            "components": {"schemas": components},
        }
