"""The cross-org story with one gateway per org, each with a profile naming its own org's
peer only, on devnet and (the `fabric` variant) on the real Fabric network.

The `fabric` variant: one network for the module, `scripts/network.sh up` + `deploy` (the MIP
contracts, MIP's policy and collections, as `network.sh deploy` does by default) on ports
shifted by $MIP_FABRIC_ORGS_TEST_PORT_OFFSET (default 800; the other fabric groups use 300,
400, 600 and 900), taken down at the end (failing if a process is left); or the network
MIP_CONNECTION names when it serves the MIP contracts. Skipped, naming the missing binaries,
where Fabric's are absent. The devnet variant runs the same code path on devnet's one process.

Then `running_org_gateways(network=...)`: three gateway processes, each with its own data dir,
settings, profile naming its own org's peer only and a copy of its own org's CAs, minting its
own service identity and staff there. Through the gateways' HTTP APIs (the steps of `mip
demo`, gateway/cli/demo_story.py): the holder enrols at the Hospital's desk (the consortium
screening runs between the three gateways), opens a Hospital account, opens a School account
at the School's desk (the School's gateway relays custody to the Hospital's), the Hospital's
doctor issues a prescription, both admins register their portrait keys, the holder grants the
prescription to the Pharmacy (the Hospital's gateway seals a portrait to it), the Pharmacy's
admin registers its counter key, and the pharmacist picks it up at the Pharmacy's counter by
the portrait, through the Pharmacy's own gateway; a second pickup is refused. On Fabric each
peer has its own ledger: after every step the test waits until every org's peer has the
newest block (docs/deploy.md, "commit visibility across orgs"), as a person walking to
another org's desk would.

Finally each gateway process's open TCP connections are read from /proc: to the peers, only
its own org's (on devnet every org's peer is the one process).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.demo_camera import SimulatedCamera
from gateway.cli.demo_story import STAFF, Story
from gateway.cli.environment import Environment, running_org_gateways
from gateway.core.config import load_settings

pytestmark = pytest.mark.timeout(1800)

TESTS = Path(__file__).resolve().parents[2]
for folder in (TESTS / "chaincode" / "mip", TESTS / "network" / "fabric"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))

from fabric_network import (  # noqa: E402
    fabric_profile_from_env,
    missing_fabric_binaries,
    session_network,
)
from mip_testkit import POLICY, available_contract_spec, running_mip_devnet  # noqa: E402

ORGS = ("HospitalMSP", "SchoolMSP", "PharmacyMSP")
PORT_OFFSET_ENV = "MIP_FABRIC_ORGS_TEST_PORT_OFFSET"
PEER_SYNC_TIMEOUT_S = 30.0


@pytest.fixture(scope="module",
                params=["devnet", pytest.param("fabric", marks=pytest.mark.fabric)])
def network(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The network's shared connection.json (the test's own view: each gateway gets a
    profile of its own)."""
    if request.param == "devnet":
        with running_mip_devnet(tmp_path_factory.mktemp("orgs-devnet")) as devnet:
            yield devnet.connection
        return
    spec = available_contract_spec()
    existing = fabric_profile_from_env(spec)
    if existing is not None:
        yield existing
        return
    reason = missing_fabric_binaries()
    if reason:
        pytest.skip(f"{reason} (needed by the per-org gateways on real Fabric)")
    state = tmp_path_factory.mktemp("orgs-fabric") / "state"
    settings = {"MIP_CHAINCODE_CONTRACT": spec, "MIP_CHAINCODE_POLICY": POLICY}
    with session_network(state, os.environ.get(PORT_OFFSET_ENV, "800"), settings) as net:
        yield net.connection


def heights(connection: Path) -> dict[str, int]:
    """Each org's peer's channel height (qscc GetChainInfo, as that org's User1)."""
    from gateway.fabric import Gateway

    ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")

    async def read() -> dict[str, int]:
        out = {}
        for org in ORGS:
            async with Gateway.from_connection(connection, org, "User1") as gateway:
                qscc = gateway.get_network("mipchannel").get_contract("qscc")
                info = ledger_pb2.BlockchainInfo.FromString(
                    await qscc.evaluate("GetChainInfo", ["mipchannel"]))
                out[org] = int(info.height)
        return out

    return asyncio.run(read())


def wait_all_peers(connection: Path) -> None:
    """Until every org's peer has the newest block any of them has (devnet: one ledger,
    nothing to wait for)."""
    if json.loads(connection.read_text(encoding="utf-8")).get("network") != "fabric":
        return
    deadline = time.monotonic() + PEER_SYNC_TIMEOUT_S
    target = max(heights(connection).values())
    while True:
        seen = heights(connection)
        if min(seen.values()) >= target:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the peers did not all reach height {target}: {seen}")
        time.sleep(0.1)


def peer_ports(connection: Path) -> dict[str, int]:
    raw = json.loads(connection.read_text(encoding="utf-8"))["organizations"]
    return {org: int(raw[org]["peerEndpoint"].rpartition(":")[2]) for org in ORGS}


def remote_ports(pid: int) -> list[int]:
    """The remote ports of `pid`'s established TCP connections (its socket inodes in
    /proc/PID/fd matched against /proc/PID/net/tcp and tcp6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                ports.append(int(fields[2].rpartition(":")[2], 16))
    return ports


def gateway_pid(env: Environment, org: str) -> int:
    pid = int((env.root / org / "gateway.pid").read_text().strip())
    os.kill(pid, 0)  # still running
    return pid


def test_cross_org_story_each_gateway_on_its_own_peer(
        network: Path, tmp_path: Path) -> None:
    from face_engine.engine import load_default_engine

    camera = SimulatedCamera(load_default_engine())
    camera.prepare("grace_hopper")
    timings: dict[str, float] = {}
    with running_org_gateways(tmp_path / "orgs", STAFF, {"argon2_profile": "interactive"},
                              network=network) as env:
        # Each gateway's profile names its own org's peer and no other; its identities were
        # minted in its own folder, by its own org's CA.
        ports = peer_ports(network)
        for org in ORGS:
            own = env.org_connections[org]
            assert own.parent == env.root / org / "fabric"
            orgs_raw = json.loads(own.read_text())["organizations"]
            assert orgs_raw[org]["peerEndpoint"].endswith(f":{ports[org]}")
            assert [o for o in orgs_raw if "peerEndpoint" in orgs_raw[o]] == [org]
            assert [o for o in orgs_raw if orgs_raw[o].get("users")] == [org]
            assert "mip-gateway" in orgs_raw[org]["users"]
            assert load_settings(env.org_configs[org]).connection == own
            # Its Fabric folder holds its own org's crypto only (its CAs, the identities it
            # minted), none of another org's.
            domain = f"/{org.removesuffix('MSP').lower()}."
            held = [p for p in (own.parent / "organizations").rglob("*") if p.is_file()]
            assert held and all(domain in str(p) for p in held), (org, held)
        story = Story(env, camera, lambda line: None)
        try:
            for name, step in (
                    ("enrolment at the Hospital's desk", story.enrol_grace),
                    ("Hospital account at the Hospital's desk", story.open_hospital_account),
                    ("School account at the School's desk (custody relay)",
                     story.cross_org_school_account),
                    ("prescription (Hospital doctor)", story.issue_prescription),
                    ("portrait keys (Hospital and Pharmacy admins)",
                     story.cross_org_portrait_keys),
                    ("pharmacy grant at the Hospital's desk (sealed portrait)",
                     story.hospital_grants),
                    ("counter key (Pharmacy admin)",
                     lambda: str(story.call("POST", "/admin/counter-key",
                                            staff="pharmacy_admin"))),
                    ("pickup at the Pharmacy's counter by the portrait", story.pickup_passes),
                    ("second pickup refused", story.pickup_used_up)):
                started = time.monotonic()
                story._acted = []
                step()
                timings[name] = time.monotonic() - started
                wait_all_peers(network)
            grace = story.holders["grace_hopper"]
            assert set(grace.accounts) == {"HospitalMSP", "SchoolMSP"}
            assert story.portrait is not None, "no sealed portrait came with the grant"

            # Which peers each gateway process is connected to: its own org's only (and at
            # least that one: it did its ledger work there).
            for org in ORGS:
                to_peers = {p for p in remote_ports(gateway_pid(env, org))
                            if p in ports.values()}
                assert to_peers == {ports[org]}, (org, to_peers, ports)
        finally:
            story.close()
    print("step timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))


def test_the_peer_ports_are_what_the_profile_says(network: Path) -> None:
    """The ports the connection check compares against are the live peers' (so the check
    above cannot pass by comparing against ports nobody listens on)."""
    raw = json.loads(network.read_text(encoding="utf-8"))["organizations"]
    for org, port in peer_ports(network).items():
        host = raw[org]["peerEndpoint"].rpartition(":")[0]
        with socket.create_connection((host, port), timeout=5):
            pass
