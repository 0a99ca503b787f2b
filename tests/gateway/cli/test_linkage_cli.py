"""`mip linkage ...` on a devnet: the verifier orgs register their keys, a self-custody holder
proves with key files, the verifier org's gateway operator checks the proof; every refusal is
one line on stderr and a non-zero exit.

The commands run in the test's process (tests/gateway/cli/cli_kit.py: a new `python -m
gateway` costs a second or more of imports each); one refusal and the proof's verification
run as a user runs them, as their own `python -m gateway` process."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
MIP_TESTS = REPO_ROOT / "tests" / "chaincode" / "mip"
if str(MIP_TESTS) not in sys.path:
    sys.path.append(str(MIP_TESTS))

from cli_kit import Ran, mip_in_process, mip_process  # noqa: E402
from mip_testkit import (  # noqa: E402
    Account,
    MipClients,
    MipNetwork,
    make_kyc_issuers,
    new_holder,
    open_account,
    running_mip_devnet,
)

from gateway.services.ledger import ensure_service_identities  # noqa: E402

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MipNetwork]:
    with running_mip_devnet(tmp_path_factory.mktemp("linkage-cli-devnet")) as net:
        ensure_service_identities(net.connection)
        yield net


def mip(config: Path, *args: str) -> Ran:
    return mip_in_process(*args, "--config", str(config))


def mip_as_process(config: Path, *args: str) -> Ran:
    return mip_process(*args, "--config", str(config))


def write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


def refused(r: Ran, text: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert text in r.stderr, r.stderr


async def accounts(devnet: MipNetwork) -> tuple[Account, Account, Account]:
    """A holder's accounts at the Hospital (a) and the School (b), another's at the School."""
    clients = MipClients(devnet)
    try:
        issuers = make_kyc_issuers()
        holder = await new_holder(clients, issuers, HOSPITAL)
        a = await open_account(clients, holder, HOSPITAL)
        b = await open_account(clients, holder, SCHOOL)
        stranger = await open_account(clients, await new_holder(clients, issuers, SCHOOL),
                                      SCHOOL)
    finally:
        await clients.close()
    return a, b, stranger


# Not async: each in-process command runs its own event loop (asyncio.run), as `mip` does.
@pytest.mark.timeout(400)
def test_prove_and_verify_from_the_command_line(devnet: MipNetwork, tmp_path: Path) -> None:
    # Each gateway has its own secrets, so its own verifier keys: two data dirs, two orgs.
    configs = {}
    for org in (PHARMACY, SCHOOL):
        configs[org] = tmp_path / f"{org}.yaml"
        configs[org].write_text(yaml.safe_dump({
            "data_dir": str(tmp_path / org), "connection": str(devnet.connection),
            "argon2_profile": "interactive", "mode": "development"}))
    pharmacy, school = configs[PHARMACY], configs[SCHOOL]

    a, b, stranger = asyncio.run(accounts(devnet))
    key_a = write_key(tmp_path / "a.pem", a.key.private)
    key_b = write_key(tmp_path / "b.pem", b.key.private)

    # As its own process: the one-line refusal and exit status a shell sees.
    refused(mip_as_process(pharmacy, "linkage", "key", PHARMACY),
            "registered no linkage verifier key")
    # The contract, not the CLI, knows the identity's role: a pharmacist is refused there.
    refused(mip(pharmacy, "linkage", "register-key", "--org", PHARMACY, "--as", "pharmacist"),
            "access_denied")
    refused(mip(pharmacy, "linkage", "key", PHARMACY), "registered no linkage verifier key")
    for org, config in configs.items():
        r = mip(config, "linkage", "register-key", "--org", org, "--as", "admin")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["newly_registered"] is True
    published = json.loads(mip(school, "linkage", "key", PHARMACY).stdout)
    assert published["org"] == PHARMACY

    proof_file = tmp_path / "proof.json"
    prove = ["linkage", "prove", "--account-a", a.pseudonym, "--key-a", str(key_a),
             "--account-b", b.pseudonym, "--key-b", str(key_b), "--verifier", PHARMACY]
    # The holder may use any gateway (here School's) to read the ledger: the key comes from
    # the ledger, not from that gateway's secrets.
    r = mip(school, *prove, "--nonce", "challenge-from-pharmacy", "--out", str(proof_file))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(proof_file.stat().st_mode) == 0o600
    proof = json.loads(proof_file.read_text())
    assert proof["verifier_id"] == published["verifier_id"]

    r = mip_as_process(pharmacy, "linkage", "verify", str(proof_file), "--org", PHARMACY,
                       "--nonce", "challenge-from-pharmacy")
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["linked"] is True
    assert [x["pseudonym"] for x in verdict["accounts"]] == [a.pseudonym, b.pseudonym]

    # Another org's gateway cannot check it, with its own key or by claiming to be Pharmacy.
    refused(mip(school, "linkage", "verify", str(proof_file), "--org", SCHOOL),
            "designated to another verifier")
    refused(mip(school, "linkage", "verify", str(proof_file), "--org", PHARMACY),
            "designated to another verifier")
    # A key file that is not the account's key on the ledger makes no proof.
    refused(mip(school, "linkage", "prove", "--account-a", a.pseudonym, "--key-a", str(key_a),
                "--account-b", stranger.pseudonym, "--key-b", str(key_b),
                "--verifier", PHARMACY), "not this account's key")
    refused(mip(school, "linkage", "prove", "--account-a", a.pseudonym, "--key-a", str(key_a),
                "--account-b", a.pseudonym, "--key-b", str(key_a), "--verifier", PHARMACY),
            "two different accounts")
    refused(mip(school, *prove, "--ttl", "999999"), "ttl_s must be")
    refused(mip(school, *prove[:-1], HOSPITAL), "registered no linkage verifier key")
    refused(mip(pharmacy, "linkage", "verify", str(tmp_path / "a.pem"), "--org", PHARMACY),
            "is not JSON")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**proof, "nonce": "x" * 32}))
    refused(mip(pharmacy, "linkage", "verify", str(tampered), "--org", PHARMACY),
            "does not verify")
