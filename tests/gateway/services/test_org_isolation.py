"""One gateway per org (issue #15): no org's gateway holds or can derive another org's keys,
face references, holder secrets or Fabric identities.

Two org-scoped gateways (`Settings.org`), HospitalMSP's and SchoolMSP's, each with its own
data dir and file key provider (development mode), run over one devnet. Each gets its own
secrets: a staff token, its org's anoncreds KYC issuer (private key sealed in its database)
and, at the Hospital, an enrolled holder (protected face references, the wrapped master
secret, the face-factor key). Then every file under the OTHER gateway's data dir is scanned
for each canary, raw and encoded (hex, base64), and the other gateway is shown unable to
sign, mint, issue or load as the first org (403 `not_this_org` / 401), through the service
objects, the HTTP API and `mip identity add`.

A scan that finds nothing proves nothing unless it can find something: the canaries that sit
in their own org's files (the secrets file, sealed rows in the database) are found there
first, and those that must sit in no file at all (the KYC issuer's private key in clear,
tokens, the password) are checked absent from their own org's files too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from enrolment_kit import PASSWORDS, Enrolled, enrol, holder_headers
from gateway_testkit import GatewayClient, assert_error, make_settings
from mip_testkit import MipNetwork
from typer.testing import CliRunner

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from face_engine.envelope import EnvelopeError
from gateway.cli.app import app as mip_app
from gateway.core.ca import CAError, local_ca
from gateway.core.config import Settings
from gateway.core.keys.file_provider import FileProvider
from gateway.core.org_scope import NotThisOrg
from gateway.fabric import ConnectionProfile
from gateway.kyc.state import issuer_state
from gateway.main import create_app
from gateway.services.kyc import kyc_service
from gateway.services.state import build_state

MIN_CANARY = 16  # bytes: shorter values could match by chance
# A long row value is split over SQLite overflow pages, so it is looked for by its head: the
# first bytes (an envelope's header and random nonce: unique), which SQLite keeps in the
# row's own cell, contiguous. 48 bytes is a whole number of base64 groups, so the head's
# base64 is also the prefix of the whole value's.
HEAD = 48


@asynccontextmanager
async def org_gateway(settings: Settings, engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    state = build_state(settings)
    state._face = engine
    app = create_app(state=state)
    app.state.mip = state  # httpx's ASGI transport does not run the lifespan
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 timeout=120) as http:
        try:
            yield GatewayClient(state, http)
        finally:
            await state.close()


def encodings(value: bytes) -> set[bytes]:
    """The forms a secret could be written in: raw, hex, base64 (standard and URL-safe,
    with and without padding)."""
    forms = {value, value.hex().encode(), value.hex().upper().encode()}
    for encoded in (base64.b64encode(value), base64.urlsafe_b64encode(value)):
        forms |= {encoded, encoded.rstrip(b"=")}
    return forms


def private_numbers(document: object) -> list[bytes]:
    """The long integers of an anoncreds private document (its key material), as decimal
    text and as big-endian bytes."""
    out: list[bytes] = []
    for digits in re.findall(r"\d{40,}", json.dumps(document)):
        out.append(digits.encode())
        number = int(digits)
        out.append(number.to_bytes((number.bit_length() + 7) // 8, "big"))
    return out


def fabric_key_canaries(connection: Path, org: str) -> list[bytes]:
    """Every Fabric identity private key of `org` in the profile: the PEM file, its body on
    one line, DER and the scalar (the PEM file first: it is looked for beside the CA)."""
    out: list[bytes] = []
    for user in ConnectionProfile.load(connection).org(org).users.values():
        pem = user.key_path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        out += [pem, body, der, key.private_numbers().private_value.to_bytes(32, "big")]
    return out


def sealed_rows(gw: GatewayClient) -> list[bytes]:
    """Every sealed value in the gateway's database: BLOBs, face references, wrapped
    secrets, token hashes (what a copy of another org's database would show)."""
    out: list[bytes] = []
    text_columns = {("face_references", "reference"), ("holders", "wrapped_secret"),
                    ("staff_tokens", "token_hash")}
    tables = [str(r["name"]) for r in gw.state.db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in gw.state.db.query(f"SELECT * FROM {table}"):  # noqa: S608 (names from sqlite_master)
            for column in row.keys():
                value = row[column]
                if isinstance(value, bytes) and len(value) >= MIN_CANARY:
                    out.append(value[:HEAD])
                elif isinstance(value, str) and (table, column) in text_columns:
                    out.append(value.encode()[:HEAD])
    return out


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def found_in(files: dict[Path, bytes], canary: bytes) -> list[Path]:
    forms = encodings(canary)
    return [path for path, data in files.items() if any(form in data for form in forms)]


async def test_no_org_gateway_holds_or_derives_another_orgs_secrets(
    gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path
) -> None:
    connection = gw_network.connection
    hospital_dir, school_dir = tmp_path / "hospital" / "gateway", tmp_path / "school" / "gateway"
    hospital_settings = make_settings(hospital_dir, connection, org=HOSPITAL)
    school_settings = make_settings(school_dir, connection, org=SCHOOL)
    assert hospital_settings.key_label_prefix == f"mip/{HOSPITAL}"

    # Canaries that sit in their own org's files (found there first), and those that must
    # sit in no file of any gateway (clear private keys, tokens, the password).
    stored: dict[str, dict[str, bytes]] = {HOSPITAL: {}, SCHOOL: {}}
    nowhere: dict[str, dict[str, bytes]] = {HOSPITAL: {}, SCHOOL: {}}
    sealed_face_blob: bytes = b""

    async with org_gateway(hospital_settings, face_engine) as hospital, \
            org_gateway(school_settings, face_engine) as school:
        gateways = {HOSPITAL: hospital, SCHOOL: school}
        # Hospital: a holder enrolled at its desk (face references, wrapped master secret,
        # sealed face-factor key, KYC credential from the Hospital's issuer).
        enrolled = await enrol(hospital, "astronaut")
        assert enrolled["passport_id"]
        nowhere[HOSPITAL]["holder password"] = PASSWORDS["astronaut"].encode()
        # The holder, unlocked at the Hospital's desk, cannot have the Hospital's gateway open
        # an account at the School (the School's own gateway would carry that): refused
        # before any face reference is made.
        holder = await holder_headers(hospital, Enrolled(
            "astronaut", enrolled["passport_id"], PASSWORDS["astronaut"], enrolled))
        references = len(hospital.state.db.query("SELECT commitment FROM face_references"))
        opened = await hospital.http.post("/api/v1/accounts", headers=holder,
                                          json={"institution": SCHOOL})
        assert_error(opened, 403, "not_this_org")
        assert len(hospital.state.db.query(
            "SELECT commitment FROM face_references")) == references
        # School: its own KYC issuer (CL keys made, sealed, registered by School's admin).
        await kyc_service(school.state).ensure(SCHOOL)

        for org, gw in gateways.items():
            token = gw.token(org, "registrar")
            nowhere[org]["staff token"] = token.encode()
            stored[org]["staff token hash"] = hashlib.sha256(token.encode()).hexdigest().encode()
            keys = gw.state.keys
            assert isinstance(keys, FileProvider)
            for name in ("face_kek", "face_transform_key", "face_factor_kek",
                         "counter_key_seed", "linkage_key_seed", "portrait_key_seed",
                         "password_oprf_seed"):
                stored[org][f"secret {name}"] = getattr(keys.secrets, name)
            issuer = kyc_service(gw.state).loaded(org)
            assert issuer is not None
            state = issuer_state(issuer)
            numbers = (private_numbers(state["cred_def_private"])
                       + private_numbers(state.get("rev_reg_private")))
            assert len(numbers) >= 4, "no private key numbers found in the issuer's state"
            for i, number in enumerate(numbers):
                nowhere[org][f"KYC issuer private #{i}"] = number
            for i, blob in enumerate(sealed_rows(gw)):
                stored[org][f"sealed row #{i}"] = blob
        assert any(k.startswith("sealed row") for k in stored[SCHOOL])  # the KYC issuer's
        face_rows = hospital.state.db.query("SELECT reference FROM face_references")
        assert face_rows, "the enrolment stored no protected face reference"
        sealed_face_blob = hospital.state.keys.kek("face").seal(
            b"hospital-only", purpose="test-org-isolation")

        # The School's gateway cannot sign, load an issuer, or issue/accept tokens as the
        # Hospital; each refusal names both orgs.
        for attempt in (lambda: school.state.ledger.contract(HOSPITAL, "registrar"),
                        lambda: school.state.ledger.carrier(HOSPITAL),
                        lambda: kyc_service(school.state).loaded(HOSPITAL),
                        lambda: school.state.staff.issue(HOSPITAL, "registrar", "registrar")):
            with pytest.raises(NotThisOrg) as refused:
                attempt()
            assert refused.value.details == {"gateway_org": SCHOOL, "requested_org": HOSPITAL}
        with pytest.raises(NotThisOrg):
            await kyc_service(school.state).ensure(HOSPITAL)
        assert school.state.db.query_one(
            "SELECT org FROM kyc_issuers WHERE org = ?", (HOSPITAL,)) is None
        # A Hospital token is unknown to the School's gateway; a Hospital token row put into
        # the School's database (a copied row) authenticates nobody there.
        hospital_token = hospital.token(HOSPITAL, "registrar")
        assert_error(await school.http.post("/api/v1/enrolments", headers={
            "Authorization": f"Bearer {hospital_token}"}), 401, "unauthenticated")
        with school.state.db.transaction() as conn:
            conn.execute("INSERT INTO staff_tokens (token_hash, org, name, role, created) "
                         "VALUES (?, ?, 'registrar', 'registrar', 0)",
                         (hashlib.sha256(b"planted").hexdigest(), HOSPITAL))
        planted = await school.http.get("/api/v1/me", headers={"Authorization": "Bearer planted"})
        body = assert_error(planted, 403, "not_this_org")
        assert HOSPITAL in body["message"] and SCHOOL in body["message"]
        with school.state.db.transaction() as conn:
            conn.execute("DELETE FROM staff_tokens WHERE org = ?", (HOSPITAL,))
        # Nothing the School's key provider holds derives the Hospital's keys.
        with pytest.raises(EnvelopeError):
            school.state.keys.kek("face").open(sealed_face_blob, purpose="test-org-isolation")
        for name in ("face-transform", "counter", "linkage", "portrait", "password-oprf"):
            assert school.state.keys.deriver(name).expand(b"probe", 32) != \
                hospital.state.keys.deriver(name).expand(b"probe", 32)  # type: ignore[arg-type]
        # The Fabric identities' private keys live with their CA (devnet's folder), never in
        # a gateway's data dir.
        for org in gateways:
            for i, key in enumerate(fabric_key_canaries(connection, org)):
                nowhere[org][f"Fabric key #{i}"] = key

    files = {HOSPITAL: files_under(hospital_dir), SCHOOL: files_under(school_dir)}
    assert all(files.values())
    devnet_files = files_under(connection.parent)
    for org in (HOSPITAL, SCHOOL):
        for name, canary in stored[org].items():
            assert found_in(files[org], canary), f"{org}'s {name} not found in its own files"
        for name, canary in nowhere[org].items():
            assert not found_in(files[org], canary), f"{org}'s {name} in clear in its files"
        assert found_in(devnet_files, next(iter(
            v for k, v in nowhere[org].items() if k.startswith("Fabric key"))))
    for org, other in ((HOSPITAL, SCHOOL), (SCHOOL, HOSPITAL)):
        for name, canary in {**stored[org], **nowhere[org]}.items():
            leaked = found_in(files[other], canary)
            assert not leaked, f"{org}'s {name} found in {other}'s gateway files: {leaked}"
    assert len(stored[HOSPITAL]) + len(nowhere[HOSPITAL]) > 20

    # `mip identity add` at the School's gateway mints for the School only: the Hospital is
    # refused before anything is made, and --org defaults to the School.
    config = tmp_path / "school.yaml"
    config.write_text(yaml.safe_dump({
        "org": SCHOOL, "mode": "development", "data_dir": str(school_dir),
        "connection": str(connection), "argon2_profile": "interactive"}))
    tokens_before = _token_rows(school_settings)
    for org in (HOSPITAL, PHARMACY):
        result = CliRunner().invoke(mip_app, ["identity", "add", "--org", org, "--name",
                                              "intruder", "--role", "registrar",
                                              "--config", str(config)])
        assert result.exit_code == 1, result.output
        assert f"this is {SCHOOL}'s gateway" in result.output and org in result.output
        with pytest.raises(CAError):
            local_ca(connection).identity_attrs(org, "intruder")
    assert _token_rows(school_settings) == tokens_before
    clerk = f"clerk{secrets.token_hex(4)}"
    result = CliRunner().invoke(mip_app, ["identity", "add", "--name", clerk,
                                          "--role", "school_registrar", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"minted identity {clerk}@{SCHOOL}" in result.output
    assert local_ca(connection).identity_attrs(SCHOOL, clerk)["mip.role"] == "school_registrar"
    assert _token_rows(school_settings) == tokens_before + 1


def _token_rows(settings: Settings) -> int:
    from gateway.store import open_database

    db = open_database(settings.db_path)
    try:
        row = db.query_one("SELECT COUNT(*) AS n FROM staff_tokens")
        return int(row["n"]) if row is not None else 0
    finally:
        db.close()


def test_production_identity_add_reads_the_fabric_ca_identity(gw_network: MipNetwork) -> None:
    """In production `mip identity add` mints nothing (the org's Fabric CA enrolled the
    person): it reads `mip.role` from the certificate in the connection profile."""
    from mip_testkit import NO_ROLE_USER

    from gateway.cli.common import CliError
    from gateway.cli.identity import enrolled_role

    connection = gw_network.connection
    assert enrolled_role(connection, HOSPITAL, "doctor") == "doctor"
    assert enrolled_role(connection, SCHOOL, "school_registrar") == "school_registrar"
    assert enrolled_role(connection, HOSPITAL, NO_ROLE_USER) is None
    with pytest.raises(CliError, match="enrol it with the org's Fabric CA"):
        enrolled_role(connection, HOSPITAL, "nobody-enrolled")
