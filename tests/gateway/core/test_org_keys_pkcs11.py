"""One gateway per org, PKCS#11 variant: two orgs' gateways in production mode keep their keys
under their own default labels (`mip/<org>`), and neither opens or derives the other's.

The two gateways share the session's SoftHSM2 token here (labels apart, as one operator's
replicas would); orgs run their own tokens in production (docs/deploy.md). The Hospital's key
values are planted (known to the test), the School's are made by its gateway at first start;
the School's data dir is scanned for the Hospital's values and nothing the School's provider
does opens a Hospital envelope or repeats a Hospital derivation.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from softhsm_kit import SoftHsmToken, plant_keys

from chaincode.protocol.orgs import HOSPITAL, SCHOOL
from face_engine.envelope import EnvelopeError
from gateway.core.config import Settings
from gateway.holder import oprf
from gateway.services.password_oprf import org_key
from gateway.services.state import open_data_dir

PURPOSE = "test-org-keys"


def _org_settings(token: SoftHsmToken, org: str, data_dir: Path) -> Settings:
    values = token.settings(data_dir, "unused", org=org)
    del values["key_label_prefix"]  # the org's default: mip/<org>
    return Settings(**values)  # type: ignore[arg-type]


def test_org_gateways_keep_apart_in_pkcs11(softhsm: SoftHsmToken, tmp_path: Path) -> None:
    hospital_settings = _org_settings(softhsm, HOSPITAL, tmp_path / "hospital")
    school_settings = _org_settings(softhsm, SCHOOL, tmp_path / "school")
    assert (hospital_settings.key_label_prefix, school_settings.key_label_prefix) == (
        f"mip/{HOSPITAL}", f"mip/{SCHOOL}")
    planted = plant_keys(softhsm, hospital_settings.key_label_prefix)  # before any login

    # One provider at a time: a PKCS#11 login is per process and token.
    db, keys = open_data_dir(hospital_settings)
    try:
        sealed = {name: keys.kek(name).seal(b"hospital-only", purpose=PURPOSE)
                  for name in ("face", "face-factor", "kyc-issuer")}
        derived = {name: keys.deriver(name).expand(b"probe", 32)
                   for name in ("face-transform", "counter", "linkage", "portrait",
                                "password-oprf")}
        # The vault-hardening OPRF key: a scalar from the token's password-oprf HMAC key.
        hospital_oprf = org_key(keys, HOSPITAL, "passport", bytes(16))
        assert oprf.evaluate(hospital_oprf, oprf.blind(b"probe").element)
    finally:
        db.close()
        keys.close()

    db, keys = open_data_dir(school_settings)
    try:
        for name, blob in sealed.items():
            with pytest.raises(EnvelopeError):
                keys.kek(name).open(blob, purpose=PURPOSE)  # type: ignore[arg-type]
        for name, value in derived.items():
            assert keys.deriver(name).expand(b"probe", 32) != value  # type: ignore[arg-type]
        # The School's token cannot answer as the Hospital's OPRF key.
        assert org_key(keys, HOSPITAL, "passport", bytes(16)) != hospital_oprf
    finally:
        db.close()
        keys.close()

    files = [p for p in (tmp_path / "school").rglob("*") if p.is_file()]
    assert any(p.name == "gateway.sqlite" for p in files)
    assert not (tmp_path / "school" / "secrets.json").exists()
    for path in files:
        content = path.read_bytes()
        for value in planted.values():
            for form in (value, value.hex().encode(), value.hex().upper().encode(),
                         base64.b64encode(value), base64.urlsafe_b64encode(value)):
                assert form not in content, f"a Hospital key's bytes found in {path}"
