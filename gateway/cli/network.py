"""`mip network up|down|status`: devnet by default, the real Fabric network with --fabric."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import ConfigOption, guarded, progress, say, settings_from
from .processes import POLICY, REPO_ROOT, devnet_process, start_devnet, stop_process

app = typer.Typer(help="Start, stop and inspect the ledger network.", no_args_is_help=True)

DataOption = Annotated[Path | None, typer.Option(
    "--data", help="network state dir (default: the dir of the configured connection.json)")]
FabricFlag = Annotated[bool, typer.Option(
    "--fabric", help="the real Fabric network of scripts/network.sh instead of devnet")]
NETWORK_SH = REPO_ROOT / "scripts" / "network.sh"


def _data_dir(config: Path | None, data: Path | None, fabric: bool) -> Path:
    if data is not None:
        return data
    if fabric:
        return Path(os.environ.get("MIP_FABRIC_DIR", REPO_ROOT / "var" / "fabric"))
    return settings_from(config).connection.parent


def _network_sh(command: str, data_dir: Path) -> None:
    from chaincode.protocol.deployment import CONTRACT_SPEC

    env = {**os.environ, "MIP_FABRIC_DIR": str(data_dir.resolve()),
           "MIP_CHAINCODE_CONTRACT": CONTRACT_SPEC, "MIP_CHAINCODE_POLICY": POLICY}
    result = subprocess.run(["bash", str(NETWORK_SH), command], cwd=REPO_ROOT, env=env,
                            check=False)
    if result.returncode != 0:
        from .common import CliError

        raise CliError(f"scripts/network.sh {command} failed with status {result.returncode}")


@app.command()
def up(config: ConfigOption = None, data: DataOption = None, fabric: FabricFlag = False,
       port: Annotated[int | None, typer.Option(help="devnet's Gateway port")] = None) -> None:
    """Start the network with the MIP contract and mint the gateway's service identities."""
    def run() -> None:
        from gateway.services.ledger import ensure_service_identities

        data_dir = _data_dir(config, data, fabric)
        if fabric:
            with progress("starting Fabric (scripts/network.sh up)"):
                _network_sh("up", data_dir)
            with progress("deploying the MIP chaincode"):
                _network_sh("deploy", data_dir)
            connection = data_dir / "connection.json"
        else:
            with progress(f"starting devnet in {data_dir}"):
                managed, connection = start_devnet(data_dir, port)
            say(f"devnet running (pid {managed.pid()}, log {managed.log_file})")
        # An org's gateway config (`org`) mints its own org's service identity only; the
        # other orgs' gateways mint theirs (`mip network up` again with their config).
        org = settings_from(config).org
        minted = ensure_service_identities(connection, [org] if org else None)
        if minted:
            say(f"gateway service identity minted in {', '.join(minted)}")
        say(f"connection profile: {connection.resolve()}")
        if fabric:
            say(f"set `connection: {connection.resolve()}` in the config file "
                "(or MIP_CONNECTION) to point the gateway at it")
    guarded(run)


@app.command()
def down(config: ConfigOption = None, data: DataOption = None,
         fabric: FabricFlag = False) -> None:
    """Stop the network (no process is left)."""
    def run() -> None:
        data_dir = _data_dir(config, data, fabric)
        if fabric:
            with progress("stopping Fabric"):
                _network_sh("down", data_dir)
            return
        with progress("stopping devnet"):
            stopped = stop_process(devnet_process(data_dir.resolve()))
        say("devnet stopped" if stopped else f"no devnet was running in {data_dir}")
    guarded(run)


@app.command()
def status(config: ConfigOption = None, data: DataOption = None,
           fabric: FabricFlag = False) -> None:
    """Ledger height, transaction counts and orgs."""
    def run() -> None:
        from .common import CliError

        data_dir = _data_dir(config, data, fabric)
        if fabric:
            _network_sh("status", data_dir)
            return
        managed = devnet_process(data_dir.resolve())
        running = f"running (pid {managed.pid()})" if managed.alive() else "not running"
        say(f"devnet in {data_dir}: {running}")
        if not (data_dir / "connection.json").is_file():
            raise CliError(f"no devnet state in {data_dir} (run `mip network up`)")
        result = subprocess.run([sys.executable, "-m", "network.devnet", "status", "--data",
                                 str(data_dir)], cwd=REPO_ROOT, check=False,
                                capture_output=True, text=True)
        say(result.stdout.rstrip())
        if result.returncode != 0:
            raise CliError(result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                           else "devnet status failed")
    guarded(run)
