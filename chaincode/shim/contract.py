"""Contract base class, the `@transaction` decorator and the per-transaction `Context`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, get_type_hints

from chaincode.shim.errors import ContractError
from chaincode.shim.identity import ClientIdentity
from chaincode.shim.stub import ChaincodeStub

_TX_ATTRIBUTE = "__mip_transaction__"
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Context:
    """What a transaction receives: the stub and the (lazily parsed) client identity.

    Contracts may subclass it to carry more per-transaction fields and return the subclass
    from `Contract.create_context`.
    """

    def __init__(self, stub: ChaincodeStub) -> None:
        self.stub = stub
        self._client_identity: ClientIdentity | None = None

    @property
    def client_identity(self) -> ClientIdentity:
        # Parsing the X.509 certificate costs more than a whole simple transaction, so it
        # only happens for transactions that look at the caller.
        if self._client_identity is None:
            self._client_identity = ClientIdentity(self.stub.get_creator())
        return self._client_identity


@dataclass(frozen=True)
class TransactionMarker:
    read_only: bool


def transaction(read_only: bool = False) -> Callable[[F], F]:
    """Mark an `async def Tx(self, ctx, ...)` method as a transaction.

    `read_only=True` tags it "evaluate" in the metadata (clients query rather than submit).
    """

    def mark(method: F) -> F:
        function: Callable[..., Any] = method
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"transaction {method.__name__} must be an async def")
        setattr(method, _TX_ATTRIBUTE, TransactionMarker(read_only=read_only))
        return method

    return mark


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any


@dataclass(frozen=True)
class TransactionInfo:
    """One `@transaction` method as the router sees it."""

    name: str
    read_only: bool
    parameters: tuple[Parameter, ...]
    returns: Any
    method: Callable[..., Awaitable[Any]]


class Contract:
    """Base class of contracts. `name` "" means "use the class name" for routing."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1.0"

    def contract_name(self) -> str:
        return self.name or type(self).__name__

    def create_context(self, stub: ChaincodeStub) -> Context:
        """Build the per-transaction context; override to use a Context subclass."""
        return Context(stub)

    async def unknown_transaction(self, ctx: Context, function: str) -> Any:
        """Called when args[0] names no transaction; raising here makes the 500."""
        raise ContractError(f"unknown transaction {function!r}")

    def transactions(self) -> dict[str, TransactionInfo]:
        """Every `@transaction` method by name, with its parameters and return hint."""
        found: dict[str, TransactionInfo] = {}
        for attr in dir(type(self)):
            function = getattr(type(self), attr, None)
            marker = getattr(function, _TX_ATTRIBUTE, None)
            if not isinstance(marker, TransactionMarker) or function is None:
                continue
            hints = get_type_hints(function)
            signature = inspect.signature(function)
            params = list(signature.parameters.values())
            if len(params) < 2:
                raise TypeError(f"transaction {attr} must take (self, ctx, ...)")
            parameters = []
            for param in params[2:]:
                if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                    raise TypeError(f"transaction {attr}: *args/**kwargs are not supported")
                if param.name not in hints:
                    raise TypeError(f"transaction {attr}: parameter {param.name} needs a type")
                parameters.append(Parameter(param.name, hints[param.name]))
            found[attr] = TransactionInfo(
                name=attr,
                read_only=marker.read_only,
                parameters=tuple(parameters),
                returns=hints.get("return", Any),
                method=getattr(self, attr),
            )
        return found
