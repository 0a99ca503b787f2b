"""Background processes the CLI owns: devnet and the gateway server(s), with pid and log
files.

`start_devnet` runs `python -m network.devnet up` with the MIP contract, endorsement policy
and private data collections, detached in its own session (so `mip network up` can return),
writes `devnet.pid` and `devnet.log` in the data dir and waits until the chaincode answers a
signed evaluate (the same readiness test as tests/chaincode/mip's kit). `stop_process`
sends SIGTERM to the process group, waits, and kills what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chaincode.protocol.deployment import CHAINCODE_POLICY
from gateway.store.private_files import open_private_append

from .common import CliError

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO_ROOT / "network" / "fabric" / "collections_config.json"
POLICY = CHAINCODE_POLICY  # a majority of the member orgs (chaincode/protocol/deployment.py)
CHANNEL, CHAINCODE = "mipchannel", "mip"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Managed:
    """A process started by the CLI: its pid file and log."""

    name: str
    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child of ours counts as gone.
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return False
        return True


def devnet_process(data_dir: Path) -> Managed:
    return Managed("devnet", data_dir / "devnet.pid", data_dir / "devnet.log")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


async def _chaincode_answers(connection: Path) -> bool:
    """True once the MIP chaincode answers a signed evaluate (GetMetadata) on devnet."""
    from gateway.fabric import ChaincodeError, Deadlines, Gateway, GatewayError

    try:
        async with Gateway.from_connection(connection, "HospitalMSP", "User1",
                                           deadlines=Deadlines(evaluate=5)) as gw:
            contract = gw.get_network(CHANNEL).get_contract(CHAINCODE)
            await contract.evaluate("org.hyperledger.fabric:GetMetadata")
    except ChaincodeError:
        return True  # the chaincode answered (with a refusal): it is up
    except GatewayError:
        return False
    return True


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _spawn(args: list[str], log_file: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open_private_append(log_file) as log:  # the log names people's ids: 0600
        return subprocess.Popen(
            args, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True)


def start_devnet(data_dir: Path, port: int | None = None) -> tuple[Managed, Path]:
    """Start devnet in `data_dir` (if not already running there); returns it and its
    connection.json once the chaincode answers."""
    from chaincode.protocol.deployment import CONTRACT_SPEC

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    managed = devnet_process(data_dir)
    connection = data_dir / "connection.json"
    if managed.alive():
        return managed, connection
    args = [sys.executable, "-m", "network.devnet", "up", "--data", str(data_dir),
            "--contract", CONTRACT_SPEC, "--policy", POLICY, "--collections", str(COLLECTIONS)]
    if port is not None:
        args += ["--port", str(port)]
    process = _spawn(args, managed.log_file)
    managed.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            managed.pid_file.unlink(missing_ok=True)
            raise CliError(f"devnet exited with status {process.returncode}; see "
                           f"{managed.log_file}:\n{_log_tail(managed.log_file)}")
        if connection.is_file() and _endpoint_open(connection) and asyncio.run(
                _chaincode_answers(connection)):
            return managed, connection
        if time.monotonic() > deadline:
            stop_process(managed)
            raise CliError(f"devnet did not answer within {START_TIMEOUT_S:.0f} s; see "
                           f"{managed.log_file}")
        time.sleep(0.3)


def _endpoint_open(connection: Path) -> bool:
    from gateway.fabric import ConnectionProfile, ConnectionProfileError

    try:
        profile = ConnectionProfile.load(connection)
    except ConnectionProfileError:
        return False
    for org in profile.organizations.values():
        host, _, port = org.peer_endpoint.rpartition(":")
        return port_open(host or "127.0.0.1", int(port))
    return False


def start_gateway(config: Path, log_file: Path, pid_file: Path, base_url: str,
                  timeout_s: float = 60.0) -> Managed:
    """`python -m gateway serve --config CONFIG` in the background; waits for /health."""
    managed, process = spawn_gateway(config, log_file, pid_file)
    wait_for_gateway(managed, process, base_url, timeout_s)
    return managed


def spawn_gateway(config: Path, log_file: Path, pid_file: Path, name: str = "gateway"
                  ) -> tuple[Managed, subprocess.Popen[bytes]]:
    """Start `python -m gateway serve --config CONFIG` in the background, without waiting
    (several gateways start side by side, then `wait_for_gateway` each)."""
    managed = Managed(name, pid_file, log_file)
    process = _spawn([sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                     log_file)
    pid_file.write_text(str(process.pid))
    return managed, process


def wait_for_gateway(managed: Managed, process: subprocess.Popen[bytes], base_url: str,
                     timeout_s: float = 90.0) -> None:
    """Until the gateway answers /health; a CliError (with its log's tail) if it exits or
    does not answer in time (then it is stopped)."""
    import httpx

    what = "the gateway" if managed.name == "gateway" else f"{managed.name}'s gateway"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            managed.pid_file.unlink(missing_ok=True)
            raise CliError(f"{what} exited with status "
                           f"{process.returncode}; see {managed.log_file}:\n"
                           f"{_log_tail(managed.log_file)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            stop_process(managed)
            raise CliError(f"{what} did not answer within "
                           f"{timeout_s:.0f} s; see {managed.log_file}")
        time.sleep(0.2)


def stop_process(managed: Managed, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the process (and its group: devnet's chaincode server), wait, then SIGKILL.
    Returns False if it was not running."""
    pid = managed.pid()
    if pid is None or not managed.alive():
        managed.pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while managed.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if managed.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.2)
    # Children that outlived their leader (the chaincode server) go with the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    managed.pid_file.unlink(missing_ok=True)
    return True
