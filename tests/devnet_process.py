"""Start `python -m network.devnet up` in a subprocess for end-to-end tests.

Shared by every suite that needs a devnet process (the Gateway client's, the MIP contract's,
the gateway service's): `running_devnet(tmp_path, extra_args, probe=...)` starts it on a free
port, waits until the chaincode answers a signed Evaluate of `probe`, and stops it. It serves
the asset-transfer sample (`--contract asset`) unless `extra_args` name a contract or
`contract=None` leaves `up`'s own default (the MIP contracts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90.0
# The asset contract's cheapest call; any chaincode answer (even an error) means it is up.
ASSET_PROBE: tuple[str, tuple[str, ...]] = ("AssetExists", ("readiness-probe",))


@dataclass
class Devnet:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    mutual_tls: bool = False

    @property
    def connection(self) -> Path:
        return self.data_dir / "connection.json"

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _answers(devnet: Devnet, probe: tuple[str, tuple[str, ...]]) -> bool:
    """True once a signed Evaluate gets an answer from the chaincode (any chaincode answer)."""
    from gateway.fabric import ChaincodeError, Deadlines, Gateway, GatewayError

    try:
        async with Gateway.from_connection(
            devnet.connection,
            "HospitalMSP",
            "User1",
            mutual_tls=devnet.mutual_tls,
            deadlines=Deadlines(evaluate=5),
        ) as gw:
            contract = gw.get_network("mipchannel").get_contract("mip")
            await contract.evaluate(probe[0], list(probe[1]))
    except ChaincodeError:
        return True
    except GatewayError:
        return False
    return True


def _probe(devnet: Devnet, probe: tuple[str, tuple[str, ...]]) -> bool:
    # A thread of its own, so the probe works from sync fixtures and async tests alike.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(_answers(devnet, probe))).result()


@contextmanager
def running_devnet(
    tmp_path: Path,
    extra_args: tuple[str, ...] = (),
    mutual_tls: bool = False,
    *,
    probe: tuple[str, tuple[str, ...]] = ASSET_PROBE,
    start_timeout: float = START_TIMEOUT_S,
    contract: str | None = "asset",
) -> Iterator[Devnet]:
    data_dir = tmp_path / "devnet"
    if contract is not None and "--contract" not in extra_args:
        extra_args = ("--contract", contract, *extra_args)
    port = free_port()
    log_path = tmp_path / "devnet.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "network.devnet",
                "up",
                "--data",
                str(data_dir),
                "--port",
                str(port),
                *extra_args,
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    devnet = Devnet(data_dir, port, process, log_path, mutual_tls)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"devnet exited with {process.returncode}:\n{devnet.log_tail()}")
            if devnet.connection.is_file() and _port_open(port) and _probe(devnet, probe):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"devnet not ready in {start_timeout:.0f} s:\n{devnet.log_tail()}")
            time.sleep(0.3)
        yield devnet
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
