"""The per-org gateways' settings `mip demo` writes (gateway/cli/environment.py): each org's
YAML names its org and its own data dir, and is accepted by `Settings` as written; the other
orgs' gateway URLs (`org_gateways`) are in it exactly when `Settings` has that field (the
custody work adds it), never its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.cli.environment import ORG_GATEWAYS_SETTING, org_gateway_settings, write_org_config
from gateway.core.config import Settings, load_settings

URLS = {HOSPITAL: "http://127.0.0.1:8081", SCHOOL: "http://127.0.0.1:8082",
        PHARMACY: "http://127.0.0.1:8083"}


@pytest.mark.parametrize("org", [HOSPITAL, SCHOOL, PHARMACY])
def test_each_orgs_settings_are_its_own(tmp_path: Path, org: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIP_CONFIG", raising=False)
    connection = tmp_path / "devnet" / "connection.json"
    values = org_gateway_settings(tmp_path, org, connection, 8090, URLS,
                                  {"argon2_profile": "interactive"})
    assert values["org"] == org and values["mode"] == "development"
    assert Path(values["data_dir"]) == tmp_path / org / "gateway"
    if ORG_GATEWAYS_SETTING in Settings.model_fields:
        assert values[ORG_GATEWAYS_SETTING] == {o: u for o, u in URLS.items() if o != org}
    else:
        assert ORG_GATEWAYS_SETTING not in values

    settings = load_settings(write_org_config(tmp_path, org, values))
    assert settings.org == org and settings.port == 8090
    assert settings.data_dir == tmp_path / org / "gateway"
    assert settings.argon2_profile == "interactive"
    # No two orgs' gateways share a data dir.
    others = {Path(org_gateway_settings(tmp_path, o, connection, 1, URLS)["data_dir"])
              for o in URLS if o != org}
    assert settings.data_dir not in others
