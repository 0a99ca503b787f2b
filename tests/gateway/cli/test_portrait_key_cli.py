"""`mip portrait-key ...` as an org's operator runs it on a devnet: the Pharmacy's own gateway
registers its portrait keys (admin only, idempotent) and shows the ledger's record; every
refusal is one line on stderr and a non-zero exit.

The commands run in the test's process (tests/gateway/cli/cli_kit.py: a new `python -m
gateway` costs a second or more of imports each); the first refusal and the first
registration run as their own `python -m gateway` process, as a user runs them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
MIP_TESTS = REPO_ROOT / "tests" / "chaincode" / "mip"
if str(MIP_TESTS) not in sys.path:
    sys.path.append(str(MIP_TESTS))

from cli_kit import Ran, mip_in_process, mip_process  # noqa: E402
from mip_testkit import MipNetwork, running_mip_devnet  # noqa: E402

from gateway.services.ledger import ensure_service_identities  # noqa: E402

PHARMACY, HOSPITAL = "PharmacyMSP", "HospitalMSP"


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MipNetwork]:
    with running_mip_devnet(tmp_path_factory.mktemp("portrait-cli-devnet")) as net:
        ensure_service_identities(net.connection)
        yield net


def mip(config: Path, *args: str) -> Ran:
    return mip_in_process(*args, "--config", str(config))


def mip_as_process(config: Path, *args: str) -> Ran:
    return mip_process(*args, "--config", str(config))


def refused(r: Ran, text: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert text in r.stderr, r.stderr


@pytest.mark.timeout(300)
def test_register_and_show_portrait_keys(devnet: MipNetwork, tmp_path: Path) -> None:
    config = tmp_path / "pharmacy.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "pharmacy"), "connection": str(devnet.connection),
        "argon2_profile": "interactive", "mode": "development", "org": PHARMACY}))

    refused(mip_as_process(config, "portrait-key", "show", PHARMACY),
            "registered no portrait keys")
    # The contract, not the CLI, knows the identity's role: a pharmacist is refused there.
    refused(mip(config, "portrait-key", "register", "--org", PHARMACY, "--as", "pharmacist"),
            "access_denied")
    # The Pharmacy's gateway registers no other org's keys.
    refused(mip(config, "portrait-key", "register", "--org", HOSPITAL, "--as", "admin"),
            "does not sign or open portraits for HospitalMSP")
    first = mip_as_process(config, "portrait-key", "register", "--org", PHARMACY, "--as",
                           "admin")
    assert first.returncode == 0, first.stderr
    registered = json.loads(first.stdout)
    assert registered["newly_registered"] is True
    again = mip(config, "portrait-key", "register", "--org", PHARMACY, "--as", "admin")
    assert again.returncode == 0 and json.loads(again.stdout)["newly_registered"] is False
    shown = mip(config, "portrait-key", "show", PHARMACY)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    for name in ("signing_key", "signing_key_id", "sealing_key", "sealing_key_id"):
        assert record[name] == registered[name], name
