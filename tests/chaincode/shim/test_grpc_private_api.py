"""The private grpcio API the shim's server is built on is there, in the shape the shim uses.

chaincode/shim/completion_loop.py and chaincode/shim/server.py drive gRPC through
`grpc._cython.cygrpc`, grpcio's Cython layer (no public API lets the event loop's own thread
wait on the completion queue, docs/ledger.md). That layer may change in any grpcio release, so
pyproject.toml pins grpcio exactly and these tests fail, naming the attribute and the pin, on a
grpcio that differs: move the pin only once they pass on the new version.
"""

from __future__ import annotations

import ast
import re
import time
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc._cython import cygrpc

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("chaincode", "gateway", "network", "face_engine")
# Modules allowed to use grpcio's private API (each says why at its import).
PRIVATE_API_USERS = {"chaincode/shim/completion_loop.py", "chaincode/shim/server.py"}


def _pinned_grpcio() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.replace(" ", "").startswith("grpcio==")]
    assert len(pins) == 1, f"pyproject.toml must pin grpcio exactly (grpcio==X.Y.Z), found {pins}"
    return pins[0].split("==", 1)[1].strip()


PIN = _pinned_grpcio()
INSTALLED = metadata.version("grpcio")

# Every name the shim reaches through cygrpc, and the attributes it uses on each (class or
# enum members; instance attributes of Cython classes are descriptors on the class).
CYGRPC_USES: dict[str, tuple[str, ...]] = {
    "CompletionQueue": ("poll", "shutdown"),
    "CompletionType": ("queue_timeout", "queue_shutdown"),
    "Server": (
        "register_completion_queue",
        "add_http2_port",
        "start",
        "request_call",
        "shutdown",
        "cancel_all_calls",
        "destroy",
    ),
    "Call": ("start_server_batch",),
    "ReceiveCloseOnServerOperation": (),
    "ReceiveMessageOperation": ("message",),
    "SendInitialMetadataOperation": (),
    "SendMessageOperation": (),
    "SendStatusFromServerOperation": (),
    "StatusCode": ("ok", "unimplemented"),
    # What the completion queue hands to a tag: batch completions and new calls.
    "BatchOperationEvent": ("completion_type", "success", "tag", "batch_operations"),
    "RequestCallEvent": ("completion_type", "success", "tag", "call", "call_details"),
    "CallDetails": ("method",),
    "ServerCredentials": (),
}


def _missing(what: str) -> str:
    return (
        f"grpcio {INSTALLED} (pyproject.toml pins {PIN}) has no {what}, which the chaincode "
        "shim's server uses (chaincode/shim/completion_loop.py, server.py): port the shim to "
        "this grpcio or keep the pinned version"
    )


def test_installed_grpcio_is_the_pinned_version() -> None:
    assert INSTALLED == PIN == grpc.__version__, (
        f"grpcio {INSTALLED} is installed (grpc.__version__ {grpc.__version__}) but "
        f"pyproject.toml pins {PIN}: the shim uses grpcio's private cygrpc API, checked only "
        "for the pinned version (reinstall it with scripts/setup.sh)"
    )


@pytest.mark.parametrize("name", sorted(CYGRPC_USES))
def test_cygrpc_names_the_shim_uses_exist(name: str) -> None:
    target = getattr(cygrpc, name, None)
    assert target is not None, _missing(f"grpc._cython.cygrpc.{name}")
    for attribute in CYGRPC_USES[name]:
        assert hasattr(target, attribute), _missing(f"grpc._cython.cygrpc.{name}.{attribute}")


def _cygrpc_attributes(path: Path) -> set[str]:
    """The `cygrpc.X` names a module uses."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "cygrpc"
    }


def test_every_private_use_in_the_project_is_checked_here() -> None:
    # A new private name (or a new module reaching into grpc._*) must be added above, so that
    # a grpcio without it fails here with a clear message rather than deep inside a test.
    users: set[str] = set()
    used: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            source = path.read_text()
            if re.search(r"\bgrpc\._[a-z]|\bcygrpc\b", source):
                users.add(path.relative_to(REPO).as_posix())
                used |= _cygrpc_attributes(path)
    assert users == PRIVATE_API_USERS, f"grpcio private API used outside the shim: {users}"
    assert used <= set(CYGRPC_USES), f"unchecked cygrpc names: {sorted(used - set(CYGRPC_USES))}"


def test_operations_build_as_the_shim_builds_them() -> None:
    flags = 0
    try:
        cygrpc.ReceiveCloseOnServerOperation(flags)
        assert cygrpc.ReceiveMessageOperation(flags).message() is None
        cygrpc.SendInitialMetadataOperation(None, flags)
        cygrpc.SendMessageOperation(b"message", flags)
        cygrpc.SendStatusFromServerOperation(None, cygrpc.StatusCode.ok, b"", flags)
    except TypeError as exc:  # a changed constructor signature
        pytest.fail(_missing(f"cygrpc operation constructor of the shape the shim calls ({exc})"))


def test_grpc_server_credentials_wrap_cygrpc_credentials() -> None:
    # server.py passes `grpc.ssl_server_credentials(...)._credentials` to add_http2_port.
    credentials = grpc.insecure_server_credentials()
    inner = getattr(credentials, "_credentials", None)
    assert isinstance(inner, cygrpc.ServerCredentials), _missing(
        "grpc.ServerCredentials._credentials holding a cygrpc.ServerCredentials"
    )


def _poll(queue: Any, wait: float) -> Any:
    return queue.poll(time.time() + wait)


def test_completion_queue_times_out_and_shuts_down_as_the_loop_expects() -> None:
    queue = cygrpc.CompletionQueue()
    assert _poll(queue, 0.0).completion_type == cygrpc.CompletionType.queue_timeout, _missing(
        "CompletionQueue.poll(deadline) returning a queue_timeout event"
    )
    queue.shutdown()
    assert _poll(queue, 1.0).completion_type == cygrpc.CompletionType.queue_shutdown, _missing(
        "CompletionQueue.shutdown() followed by a queue_shutdown event"
    )


def test_server_listens_and_shuts_down_with_the_calls_the_shim_makes() -> None:
    queue = cygrpc.CompletionQueue()
    server = cygrpc.Server((("grpc.so_reuseport", 0),), False)
    server.register_completion_queue(queue)
    port = server.add_http2_port(
        b"127.0.0.1:0", grpc.insecure_server_credentials()._credentials
    )
    assert port > 0, _missing("Server.add_http2_port(address, credentials) returning the port")
    server.start()
    tags: list[str] = []
    server.request_call(queue, queue, "call")
    server.shutdown(queue, "shutdown")
    server.cancel_all_calls()
    deadline = time.time() + 5
    while len(tags) < 2 and time.time() < deadline:
        event = _poll(queue, 0.5)
        if event.completion_type == cygrpc.CompletionType.operation_complete:
            # The shim's tags are callables; the queue gives back whatever tag was passed.
            tags.append(event.tag)
    assert sorted(tags) == ["call", "shutdown"], _missing(
        "Server.request_call / shutdown completing on the registered queue with their tags"
    )
    server.destroy()
    queue.shutdown()
    while _poll(queue, 1.0).completion_type != cygrpc.CompletionType.queue_shutdown:
        pass
