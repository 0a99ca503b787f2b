"""`Settings.org`: an org's gateway gets its own data dir and key labels by default, is set by
the file, MIP_ORG or `--org` (the flag wins and its defaults follow it), is required in
production, and refuses (NotThisOrg) to act as any other org: staff tokens, Fabric
identities, `mip identity`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.cli.app import app
from gateway.core.config import ConfigError, Settings, load_settings
from gateway.core.errors import LedgerUnavailable
from gateway.core.org_scope import ORG_REQUIRED, NotThisOrg, require_own_org
from gateway.core.security import StaffRegistry
from gateway.services.ledger import Ledger
from gateway.services.state import open_data_dir
from gateway.store import open_database


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("MIP_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("MIP_HOME", str(home))
    return home


def test_an_orgs_gateway_has_its_own_data_dir_and_key_labels(clean_environment: Path) -> None:
    home = clean_environment
    assert (Settings().data_dir, Settings().key_label_prefix) == (home / "gateway", "mip")
    hospital, school = Settings(org=HOSPITAL), Settings(org=SCHOOL)
    assert hospital.data_dir == home / HOSPITAL / "gateway"
    assert school.data_dir == home / SCHOOL / "gateway"
    assert (hospital.key_label_prefix, school.key_label_prefix) == (
        f"mip/{HOSPITAL}", f"mip/{SCHOOL}")
    # Named explicitly, they stay as named.
    explicit = Settings(org=HOSPITAL, data_dir=home / "elsewhere", key_label_prefix="hosp")
    assert (explicit.data_dir, explicit.key_label_prefix) == (home / "elsewhere", "hosp")


def test_org_from_file_environment_and_flag(
    clean_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = clean_environment
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"org": PHARMACY, "port": 9000}))
    assert load_settings(config).data_dir == home / PHARMACY / "gateway"
    monkeypatch.setenv("MIP_ORG", HOSPITAL)
    from_env = load_settings(config)
    assert (from_env.org, from_env.data_dir, from_env.port) == (
        HOSPITAL, home / HOSPITAL / "gateway", 9000)
    # The flag wins over the environment, and the defaults it implies follow it.
    flagged = load_settings(config, org=SCHOOL)
    assert (flagged.org, flagged.data_dir, flagged.key_label_prefix, flagged.port) == (
        SCHOOL, home / SCHOOL / "gateway", f"mip/{SCHOOL}", 9000)
    assert type(flagged) is Settings
    # A data dir the operator named is kept whatever the flag.
    monkeypatch.setenv("MIP_DATA_DIR", str(tmp_path / "mine"))
    assert load_settings(config, org=SCHOOL).data_dir == tmp_path / "mine"
    with pytest.raises(ConfigError) as bad:
        load_settings(config, org="NopeMSP")
    assert "unknown org 'NopeMSP'" in str(bad.value)
    assert "default factory" not in str(bad.value)


def test_production_needs_an_org(clean_environment: Path, tmp_path: Path) -> None:
    data = tmp_path / "gw"
    with pytest.raises(ConfigError) as refused:
        open_data_dir(Settings(data_dir=data))
    assert str(refused.value) == ORG_REQUIRED
    assert not data.exists()  # refused before anything was made
    db, keys = open_data_dir(Settings(data_dir=data, mode="development"))  # all orgs: dev
    db.close()
    keys.close()


def test_mip_serve_refuses_production_without_an_org(tmp_path: Path) -> None:
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "gw"),
                                      "connection": str(tmp_path / "none.json")}))
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 1
    assert "error: no org configured" in result.output and "--org" in result.output
    assert not (tmp_path / "gw").exists()
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--org", "NopeMSP"])
    assert result.exit_code == 2 and "unknown org 'NopeMSP'" in result.output


def test_not_this_org_names_both() -> None:
    with pytest.raises(NotThisOrg) as refused:
        require_own_org(Settings(org=SCHOOL), HOSPITAL, "sign as 'registrar'")
    assert (refused.value.status, refused.value.code) == (403, "not_this_org")
    assert refused.value.details == {"gateway_org": SCHOOL, "requested_org": HOSPITAL}
    assert SCHOOL in refused.value.message and HOSPITAL in refused.value.message
    require_own_org(Settings(org=SCHOOL), SCHOOL, "sign")
    require_own_org(Settings(mode="development"), HOSPITAL, "sign")  # all-orgs gateway


def test_staff_tokens_of_another_org_are_refused(tmp_path: Path) -> None:
    db = open_database(tmp_path / "gw.sqlite")
    try:
        everyone = StaffRegistry(db)  # all orgs (development)
        school_token = everyone.issue(SCHOOL, "sam", "school_registrar")
        hospital = StaffRegistry(db, HOSPITAL)
        alice = hospital.issue(HOSPITAL, "alice", "registrar")
        assert hospital.authenticate(alice).org == HOSPITAL
        with pytest.raises(NotThisOrg):
            hospital.issue(SCHOOL, "sam", "school_registrar")
        with pytest.raises(NotThisOrg):  # a row of another org authenticates nobody here
            hospital.authenticate(school_token)
        with pytest.raises(NotThisOrg):
            hospital.revoke_member(SCHOOL, "sam")
        assert everyone.authenticate(school_token).org == SCHOOL  # untouched
    finally:
        db.close()


def test_ledger_loads_no_identity_of_another_org(tmp_path: Path) -> None:
    ledger = Ledger(Settings(org=HOSPITAL, mode="development",
                             connection=tmp_path / "none.json"))
    # Refused before the profile is even read ...
    with pytest.raises(NotThisOrg):
        ledger.contract(SCHOOL, "registrar")
    with pytest.raises(NotThisOrg):
        ledger.carrier(PHARMACY)
    # ... while its own org's identity gets as far as the (missing) profile.
    with pytest.raises(LedgerUnavailable):
        ledger.contract(HOSPITAL, "registrar")
    assert ledger.reader_org() == HOSPITAL


def test_identity_commands_act_for_the_configured_org(tmp_path: Path) -> None:
    (tmp_path / "connection.json").write_text("{}")
    def config(**values: object) -> str:
        path = tmp_path / "mip.yaml"
        path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "gw"), "connection": str(
            tmp_path / "connection.json"), **values}))
        return str(path)

    add = ["identity", "add", "--name", "x", "--role", "doctor", "--config"]
    result = CliRunner().invoke(app, [*add, config(org=HOSPITAL, mode="development"),
                                      "--org", SCHOOL])
    assert result.exit_code == 1
    assert f"this is {HOSPITAL}'s gateway" in result.output and SCHOOL in result.output
    result = CliRunner().invoke(app, ["identity", "revoke", "x", "--org", SCHOOL, "--config",
                                      config(org=HOSPITAL, mode="development")])
    assert result.exit_code == 1 and "not revoke identities" in result.output
    result = CliRunner().invoke(app, [*add, config(mode="development")])
    assert result.exit_code == 2 and "give --org" in result.output
    result = CliRunner().invoke(app, [*add, config(), "--org", HOSPITAL])
    assert result.exit_code == 1 and "no org configured" in result.output
    assert not (tmp_path / "gw").exists()  # no refusal made the gateway's state


def test_org_gateways_from_environment_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """`org_gateways` (MIP_ORG_GATEWAYS as JSON): member orgs only, http(s) base URLs, kept
    without a trailing slash (docs/gateway.md, "Holders at another org's desk")."""
    monkeypatch.setenv("MIP_ORG_GATEWAYS",
                       '{"SchoolMSP": "https://gw.school.example:8443/"}')
    assert Settings(org=HOSPITAL).org_gateways == {SCHOOL: "https://gw.school.example:8443"}
    for bad in ({"NowhereMSP": "https://x"}, {PHARMACY: "ftp://gw.pharmacy"}):
        with pytest.raises(ValueError, match="org_gateways"):
            Settings(org=HOSPITAL, org_gateways=bad)
