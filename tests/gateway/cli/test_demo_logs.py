"""`mip demo` as a user runs it: one gateway per org (HospitalMSP, SchoolMSP, PharmacyMSP),
each step at the org where it happens.

One run (module fixture) is checked for:

- every step gave its expected outcome, or (a cross-org step whose route between gateways
  this build has not got, and the steps that need it) said "not yet available in this
  build", exactly as the build's routes predict: once the custody relay or the portrait
  keys route is in, those steps must pass;
- each step acted at the right org's gateway: its printed `acted:` line, and the gateways'
  own access logs (enrolment only in the Hospital's, pickups only in the Pharmacy's, ...);
- no gateway's data dir holds another org's keys: each org's secrets (raw, hex, base64) are
  found in its own data dir and in no other org's, no Fabric private key is in any, and each
  database's staff tokens and KYC issuers are of its own org only;
- neither the output nor any log (devnet, chaincode, each gateway) holds a password,
  credential content, face image data, a private key or a staff token; the gateways' access
  lines name routes by template (no id or session id of a path), and every log file is 0600
  (each enrolment session id the gateways issued is looked for in every log and the
  output; each session id and token a flow issues is looked for in its log in
  tests/gateway/services/test_log_scan.py).

`mip demo --all-orgs` (one gateway for every org, as in development) is run too: there every
step passes, the cross-org ones included.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from demo_kit import (
    CUSTODY_ROUTE,
    HOSPITAL,
    ORGS,
    PORTRAIT_KEYS_ROUTE,
    Step,
    check_pages,
    check_steps,
    steps,
    this_build_has,
)

from gateway.cli.demo_story import CONTENT_CANARIES, NOT_YET, PASSWORDS
from gateway.core.config import Settings
from gateway.demo.faces import demo_portrait

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN = re.compile(r"mipst_[A-Za-z0-9_-]{20,}")
# A request line with a concrete id in its path (holder session ids, pickup ids: hex).
CONCRETE_PATH = re.compile(r"(?:GET|POST|PUT|DELETE|PATCH) /\S*[0-9a-f]{16}")


@dataclass
class DemoRun:
    work: Path
    stdout: str
    output: str
    returncode: int

    def steps(self) -> list[Step]:
        return steps(self.stdout)


def run_demo(work: Path, *extra: str) -> DemoRun:
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--dir", str(work), *extra], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=420)
    return DemoRun(work, run.stdout, run.stdout + run.stderr, run.returncode)


@pytest.fixture(scope="module")
def per_org(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    return run_demo(tmp_path_factory.mktemp("demo") / "demo")


def image_samples() -> list[str]:
    """Substrings of the base64 of each portrait (as sent in frames), at several offsets."""
    samples = []
    for name in ("astronaut", "grace_hopper"):
        encoded = base64.b64encode(demo_portrait(name)).decode()
        samples += [encoded[i:i + 40] for i in (400, len(encoded) // 2, len(encoded) - 400)]
    return samples


def enrolment_session_ids(work: Path) -> list[str]:
    """Every enrolment session id the run's gateways issued (from their databases)."""
    ids: list[str] = []
    for db_path in work.rglob("gateway.sqlite"):
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "enrolment_sessions" in tables:  # made at an org's first enrolment
                ids += [row[0] for row in db.execute(
                    "SELECT session_id FROM enrolment_sessions")]
        finally:
            db.close()
    return ids


def assert_leaks_nothing(run: DemoRun) -> None:
    logs = sorted(run.work.rglob("*.log"))
    # The enrolment session ids travel in X-MIP-Enrolment-Session, never a path or a line.
    sessions = enrolment_session_ids(run.work)
    assert len(sessions) >= 2, sessions  # the two Hospital enrolments (+ the School's try)
    canaries = [*PASSWORDS.values(), *CONTENT_CANARIES, *image_samples(),
                "PRIVATE KEY-----", *sessions]
    for source, text in [("output", run.output)] + [
            (str(p), p.read_text(errors="replace")) for p in logs]:
        for canary in canaries:
            assert canary not in text, f"{source} holds {canary[:24]!r}"
        assert not TOKEN.search(text), f"{source} holds a staff token"
        if source.endswith("gateway.log"):
            assert not CONCRETE_PATH.search(text), f"{source}: {CONCRETE_PATH.search(text)}"
    for path in logs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Nothing left running: the pid files are gone.
    assert not list(run.work.rglob("*.pid"))


@pytest.mark.slow
@pytest.mark.timeout(450)
def test_demo_runs_every_step_and_leaks_nothing(per_org: DemoRun) -> None:
    assert per_org.returncode == 0, per_org.output[-4000:]
    assert NOT_YET in per_org.stdout or (this_build_has(CUSTODY_ROUTE)
                                         and this_build_has(PORTRAIT_KEYS_ROUTE))
    assert "camera" in per_org.stdout and "public-domain portraits" in per_org.stdout
    assert "left/right turns because the camera is simulated" in per_org.stdout

    names = {p.relative_to(per_org.work).as_posix() for p in per_org.work.rglob("*.log")}
    assert {"devnet/devnet.log", "devnet/logs/chaincode.log",
            *(f"{org}/gateway.log" for org in ORGS)} <= names, names
    assert_leaks_nothing(per_org)


def gateway_urls(work: Path) -> dict[str, str]:
    """Each org's gateway URL, from the config the demo wrote for it."""
    config = {org: yaml.safe_load((work / org / "gateway.yaml").read_text()) for org in ORGS}
    return {org: f"http://{config[org]['host']}:{config[org]['port']}" for org in ORGS}


@pytest.mark.slow
@pytest.mark.timeout(450)
def test_demo_steps_act_at_their_orgs_gateway(per_org: DemoRun) -> None:
    assert per_org.returncode == 0, per_org.output[-4000:]
    check_steps(per_org.stdout)
    # Each role's page printed at its own org's gateway, /check/ and /wallet/ at all three.
    check_pages(per_org.stdout, gateway_urls(per_org.work))

    # The gateways' own access logs agree: each request reached the org it names.
    def requests(org: str) -> str:
        log = (per_org.work / org / "gateway.log").read_text(errors="replace")
        assert f"serving as {org}'s gateway" in log
        return "\n".join(line for line in log.splitlines() if "mip.access" in line)

    hospital, school, pharmacy = (requests(org) for org in ORGS)
    for only_at_hospital in ("/revoke ", "POST /api/v1/analytics/queries "):
        assert only_at_hospital in hospital, only_at_hospital
        assert only_at_hospital not in school + pharmacy, only_at_hospital
    # The prescription is issued at the Hospital; the diploma at the School, once the School
    # can open the holder's account there (the custody relay); never at the Pharmacy.
    issue = "POST /api/v1/credentials "
    assert issue in hospital and issue not in pharmacy
    assert (issue in school) == this_build_has(CUSTODY_ROUTE)
    # Enrolments at the Hospital's desk; the School's desk tried the same person once (the
    # consortium screening, in the background, sent it to review, the School's registrar
    # refused it); none at the Pharmacy. Each desk's enrolment ran the screening steps at
    # the two other gateways.
    assert "POST /api/v1/enrolments " in hospital and "POST /api/v1/enrolments " in school
    assert "POST /api/v1/enrolments " not in pharmacy
    # The School's frames request ends at its own (empty) index; the background screening
    # finds the Hospital's passport and the desk reads the review from the enrolment's state.
    assert "POST /api/v1/enrolments/current/frames 204" in school
    assert "GET /api/v1/enrolments/current 200" in school
    assert "POST /api/v1/reviews/{review_id}/decision 200" in school
    assert "/enrolments/current/finish 201" not in school
    for org_log in (hospital, school, pharmacy):
        assert "POST /api/v1/screening/score 200" in org_log
    # Only the Hospital's gallery holds anyone: its scores for the School's query go to the
    # third org, the Pharmacy, to decide (empty galleries answer without a key holder).
    assert "POST /api/v1/screening/decide 200" in pharmacy
    assert "/screening/decide" not in hospital + school
    assert "POST /api/v1/checks " in school and "POST /api/v1/checks " in pharmacy
    assert "/pharmacy/" not in hospital + school
    if this_build_has(PORTRAIT_KEYS_ROUTE):
        assert "POST /api/v1/pharmacy/pickups " in pharmacy
    else:
        assert "POST /api/v1/pharmacy/pickups " not in pharmacy
    if not this_build_has(CUSTODY_ROUTE):
        # The School's desk never unlocked (nor faked) a Hospital holder.
        assert "/holders/sessions" not in school and "/accounts" not in school


def secret_forms(value: str) -> list[bytes]:
    raw = bytes.fromhex(value)
    return [raw, value.lower().encode(), value.upper().encode(),
            base64.b64encode(raw), base64.b64encode(raw).rstrip(b"="),
            base64.urlsafe_b64encode(raw).rstrip(b"=")]


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.timeout(450)
def test_no_gateway_data_dir_holds_another_orgs_keys(per_org: DemoRun) -> None:
    assert per_org.returncode == 0, per_org.output[-4000:]
    work = per_org.work
    config = {org: yaml.safe_load((work / org / "gateway.yaml").read_text()) for org in ORGS}
    urls = {org: f"http://{config[org]['host']}:{config[org]['port']}" for org in ORGS}
    for org in ORGS:
        assert config[org]["org"] == org
        assert Path(config[org]["data_dir"]) == work.resolve() / org / "gateway"
        if "org_gateways" in Settings.model_fields:
            assert config[org]["org_gateways"] == {o: urls[o] for o in ORGS if o != org}
    assert len(set(urls.values())) == 3

    secrets = {org: json.loads((work / org / "gateway" / "secrets.json").read_text())
               for org in ORGS}
    files = {org: files_under(work / org) for org in ORGS}
    for org in ORGS:
        assert len(secrets[org]) >= 5
        for name, value in secrets[org].items():
            forms = secret_forms(value)
            # The scan can find what it looks for: the secret is in its own org's file.
            assert any(f in files[org][work / org / "gateway" / "secrets.json"]
                       for f in forms), name
            for other in (o for o in ORGS if o != org):
                for path, data in files[other].items():
                    assert not any(f in data for f in forms), (
                        f"{org}'s {name} found in {path.relative_to(work)}")
        for path, data in files[org].items():
            assert b"PRIVATE KEY" not in data, path  # Fabric keys stay with the org's MSP

        db = sqlite3.connect(f"file:{work / org / 'gateway' / 'gateway.sqlite'}?mode=ro",
                             uri=True)
        try:
            staff_orgs = {row[0] for row in db.execute("SELECT org FROM staff_tokens")}
            assert staff_orgs == {org}, (org, staff_orgs)
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            issuers = (set() if "kyc_issuers" not in tables else
                       {row[0] for row in db.execute("SELECT org FROM kyc_issuers")})
        finally:
            db.close()
        # Only the Hospital enrolled anyone, so only its gateway made a KYC issuer.
        assert issuers == ({HOSPITAL} if org == HOSPITAL else set()), (org, issuers)


@pytest.mark.slow
@pytest.mark.timeout(450)
def test_demo_all_orgs_gateway_runs_every_step(tmp_path: Path) -> None:
    run = run_demo(tmp_path / "demo", "--all-orgs")
    assert run.returncode == 0, run.output[-4000:]
    found = run.steps()
    assert len(found) == 17 and all(s.outcome == "ok" for s in found), found
    assert all(s.acted == "the all-orgs gateway" for s in found), found
    assert "17 of 17 steps gave their expected outcome" in run.stdout
    config = yaml.safe_load((run.work / "gateway.yaml").read_text())
    check_pages(run.stdout, dict.fromkeys(ORGS, f"http://{config['host']}:{config['port']}"))
    assert "gateway.log" in {p.name for p in run.work.rglob("*.log")}
    assert_leaks_nothing(run)
