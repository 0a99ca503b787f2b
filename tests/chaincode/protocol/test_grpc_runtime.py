"""Every MIP package that speaks gRPC puts grpcio on its poller-thread transport before grpc loads.

Checked in fresh interpreters (the choice is read once, when grpc is first imported): the
environment each package leaves, the transport a real call then travels on (grpcio's tcp trace
comes from the iomgr endpoint, tcp_posix.cc, not from the EventEngine's), that grpcio knows the
experiment names (an unknown one is logged at every start), and that an operator's own setting
is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaincode.protocol.grpc_runtime import POLLER_TRANSPORT_EXPERIMENTS

REPO = Path(__file__).resolve().parents[3]

CALL = """
import asyncio, os, sys
import {package}
import grpc

async def main() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{{port}}") as channel:
        try:
            await channel.unary_unary("/mip.Test/Nothing")(b"", timeout=5)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNIMPLEMENTED, exc
    await server.stop(None)
    print("GRPC_EXPERIMENTS=" + os.environ.get("GRPC_EXPERIMENTS", ""))

asyncio.run(main())
"""


def _run(package: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", CALL.format(package=package)], cwd=REPO,
                          env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("package", ["chaincode.shim", "network.devnet", "gateway.fabric"])
def test_package_selects_the_poller_transport_before_grpc_loads(package: str) -> None:
    done = _run(package, GRPC_TRACE="tcp", GRPC_VERBOSITY="debug")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"GRPC_EXPERIMENTS={POLLER_TRANSPORT_EXPERIMENTS}" in done.stdout
    assert "Unknown experiment" not in done.stderr
    assert "tcp_posix.cc" in done.stderr  # the iomgr endpoint traced the call's reads and writes


def test_without_the_switch_grpc_uses_its_event_engine() -> None:
    # The control: the marker above does tell the two transports apart. (Which EventEngine
    # lines appear depends on timing; that the tcp trace ran at all does not: endpoint.cc.)
    done = _run("json", GRPC_TRACE="tcp", GRPC_VERBOSITY="debug")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "endpoint.cc" in done.stderr and "tcp_posix.cc" not in done.stderr


def test_an_operators_setting_is_kept() -> None:
    done = _run("gateway.fabric", GRPC_EXPERIMENTS="-event_engine_client")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GRPC_EXPERIMENTS=-event_engine_client\n" in done.stdout
