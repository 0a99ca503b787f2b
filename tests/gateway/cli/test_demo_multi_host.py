"""`mip demo`'s story with each org's gateway on a host of its own (tests/netns_kit.py), as
the three orgs run them: the desks reach each gateway over the desk LAN by its own address,
and only the gateways reach the ledger.

    desks ──(desk LAN)── hospital-gw, school-gw, pharmacy-gw ──(consortium LAN)── ledger

- `ledger` runs devnet on its consortium address;
- each `<org>-gw` runs `mip serve` with its org's YAML (`org`, its own data dir, its own
  secrets, `org_gateways` naming the others once `Settings` has the field) on its desk-LAN
  address over https (`--tls-self-signed` that address), its staff's tokens issued through
  its own settings;
- `desks` runs the story (tests/gateway/cli/demo_kit.py `story`), trusting the three
  gateways' certificates; the network admins set vouch_k from the ledger's host first.

Each step must act at its org's gateway (or, where this build lacks the route between
gateways, say "not yet available in this build" with nothing sent), and each gateway's access
log shows only the requests of its org's steps. Skipped, with the reason, only where the
machine cannot make namespaces.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from demo_kit import HOSPITAL, ORGS, PHARMACY, SCHOOL, check_steps
from netns_kit import Host, Lab, can_use_netns

from gateway.cli.demo_story import STAFF
from gateway.cli.environment import (
    Environment,
    mint_org_staff,
    org_gateway_settings,
    write_org_config,
)
from gateway.core import tls

REPO_ROOT = Path(__file__).resolve().parents[3]
KIT = Path(__file__).resolve().parent / "demo_kit.py"
DEVNET_PORT = 7051
GATEWAY_PORT = 8443
HOST_NAMES = {HOSPITAL: "hospital-gw", SCHOOL: "school-gw", PHARMACY: "pharmacy-gw"}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIP_")}
    return {**env, "MIP_HOME": str(home), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT)}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_story_with_each_orgs_gateway_on_its_own_host(tmp_path: Path) -> None:
    reason = can_use_netns()
    if reason is not None:
        pytest.skip(reason)
    env = _env(tmp_path / "home")
    with Lab(tmp_path / "logs") as lab:
        desk_lan = lab.segment("desks")
        consortium = lab.segment("consortium")
        ledger = lab.host("ledger", consortium)
        gateways: dict[str, Host] = {org: lab.host(HOST_NAMES[org], desk_lan, consortium)
                                     for org in ORGS}
        desks = lab.host("desks", desk_lan)

        devnet = ledger.start("devnet", [
            sys.executable, "-m", "network.devnet", "up", "--data", str(tmp_path / "devnet"),
            "--host", ledger.address(), "--port", str(DEVNET_PORT)], env=env, cwd=REPO_ROOT)
        devnet.wait_for_output("devnet ready on", timeout=120)
        connection = tmp_path / "devnet" / "connection.json"

        addresses = {org: gateways[org].address("desks") for org in ORGS}
        urls = {org: f"https://{addresses[org]}:{GATEWAY_PORT}" for org in ORGS}
        story_env = Environment(tmp_path, connection, urls[HOSPITAL],
                                tmp_path / HOSPITAL / "gateway.yaml", org_urls=urls,
                                per_org=True)
        # The gateways' self-signed certificates, gathered once all have started: the desks
        # trust them, and so does each gateway for its calls to the others (read per call).
        bundle = tmp_path / "gateways.pem"
        served = {}
        for org in ORGS:
            values = org_gateway_settings(tmp_path, org, connection, GATEWAY_PORT, urls, {
                "argon2_profile": "interactive", "host": addresses[org],
                "peer_ca_file": str(bundle)})
            config = write_org_config(tmp_path, org, values)
            # Files only (the CA keys beside connection.json): no network involved.
            mint_org_staff(story_env, connection, config, org, STAFF)
            served[org] = gateways[org].start("serve", [
                sys.executable, "-m", "gateway", "serve", "--config", str(config),
                "--tls-self-signed", addresses[org]], env=env, cwd=REPO_ROOT)
        for org in ORGS:
            gateways[org].wait_for_port(ledger.address(), DEVNET_PORT, timeout=30,
                                        process=devnet)
            desks.wait_for_port(addresses[org], GATEWAY_PORT, timeout=180,
                                process=served[org])
        # The desks reach the gateways, not the ledger; each gateway listens only on its
        # desk-LAN address.
        assert desks.connect_error(ledger.address(), DEVNET_PORT) == "ENETUNREACH"
        assert gateways[SCHOOL].connect_error(
            gateways[HOSPITAL].address("consortium"), GATEWAY_PORT) == "ECONNREFUSED"

        bundle.write_text("".join(
            (tmp_path / org / "gateway" / "tls" / tls.CERT_FILE).read_text() for org in ORGS))
        spec = tmp_path / "desks.json"
        spec.touch(mode=0o600)
        spec.write_text(json.dumps({
            "root": str(tmp_path), "connection": str(connection), "org_urls": urls,
            "ca_file": str(bundle),
            "staff": {key: [s.org, s.name, s.role, story_env.tokens[key]]
                      for key, s in story_env.staff.items()}}))

        admins = ledger.run([sys.executable, str(KIT), "vouch-k", str(connection)],
                            env=env, cwd=REPO_ROOT, timeout=120)
        assert admins.returncode == 0, admins.stderr[-3000:]
        story = desks.run([sys.executable, str(KIT), "story", str(spec)], env=env,
                          cwd=REPO_ROOT, timeout=400)
        assert story.returncode == 0, (story.stdout + story.stderr)[-4000:]
        check_steps(story.stdout)

        # Each gateway's own access log: the desks' requests for its org's steps came from
        # the desks' address (enrolments: below).
        desk_address = desks.address()
        for org in ORGS:
            log = served[org].log_path.read_text(errors="replace")
            assert f"serving as {org}'s gateway" in log
            assert f"mip.access: {desk_address} " in log
            # Enrolments at the Hospital's desk, and the School's desk's attempt with the
            # same person (sent to review by the consortium screening); none at the Pharmacy.
            assert ("POST /api/v1/enrolments " in log) == (org != PHARMACY), org
