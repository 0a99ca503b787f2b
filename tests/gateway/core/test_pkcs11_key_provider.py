"""The PKCS#11 key provider on SoftHSM2: keys made non-extractable at first start, nothing of
them in the data dir, the face path end to end through the token, and every refusal (wrong
or missing PIN, module, token; a data dir made under other keys)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pkcs11
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import AttributeSensitive, KeyUnextractable
from softhsm_kit import PlantedKeys, SoftHsmToken, fresh_prefix, plant_keys, token_session

from face_engine import envelope
from face_engine.engine import FaceEngine
from face_engine.models import ensure_models
from face_engine.protect import TemplateProtector
from face_engine.verify import operating_point
from gateway.core.config import Settings
from gateway.core.keys import KeyProviderError
from gateway.core.keys.names import DERIVER_NAMES, FACE_FACTOR_LABEL, KEK_NAMES
from gateway.core.keys.pkcs11_provider import Pkcs11Provider, deriver_label, kek_label
from gateway.core.secrets import DataDirMismatch
from gateway.demo.faces import demo_portrait
from gateway.services.counter_key import HKDF_INFO as COUNTER_INFO
from gateway.services.counter_key import derive_counter_key
from gateway.services.faces import VERIFY_POINT, LiveFace, face_service
from gateway.services.holder_sealing import PurposeKey, open_sealed, seal
from gateway.services.state import AppState, build_state, open_data_dir

REPO_ROOT = Path(__file__).resolve().parents[3]


def _settings(token: SoftHsmToken, data_dir: Path, prefix: str, **more: object) -> Settings:
    return Settings(**token.settings(data_dir, prefix, **more))  # type: ignore[arg-type]


class PlantedDeriver:
    """HKDF-Expand under a planted pseudorandom key, in this process (the test's reference)."""

    def __init__(self, prk: bytes) -> None:
        self._prk = prk

    def expand(self, info: bytes, length: int) -> bytes:
        return HKDFExpand(hashes.SHA256(), length, info).derive(self._prk)


def _planted_kek(planted: PlantedKeys, name: str) -> envelope.HeldKey:
    value, ident = planted.keks[name]
    return envelope.HeldKey(AESGCM(value), ident[:4], ident.hex())


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(ensure_models())


@pytest.fixture
async def planted_state(softhsm: SoftHsmToken, tmp_path: Path
                        ) -> AsyncIterator[tuple[AppState, PlantedKeys]]:
    prefix = fresh_prefix()
    planted = plant_keys(softhsm, prefix)  # before the gateway logs in (one login per process)
    state = build_state(_settings(softhsm, tmp_path / "gw", prefix,
                                  connection=tmp_path / "none.json"))
    try:
        yield state, planted
    finally:
        await state.close()


def test_keys_made_at_first_start_never_leave_the_token(softhsm: SoftHsmToken,
                                                        tmp_path: Path) -> None:
    prefix = fresh_prefix()
    db, provider = open_data_dir(_settings(softhsm, tmp_path / "gw", prefix))
    assert isinstance(provider, Pkcs11Provider)
    db.close()
    provider.close()
    assert not (tmp_path / "gw" / "secrets.json").exists()
    labels = [kek_label(prefix, n) for n in KEK_NAMES] + \
        [deriver_label(prefix, n) for n in DERIVER_NAMES]
    with token_session(softhsm) as session:
        thief = session.generate_key(KeyType.AES, 256, template={
            Attribute.TOKEN: False, Attribute.WRAP: True, Attribute.EXTRACTABLE: True})
        for label in labels:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE], label
            with pytest.raises(AttributeSensitive):  # C_GetAttributeValue(CKA_VALUE)
                key[Attribute.VALUE]
            with pytest.raises(KeyUnextractable):  # nor wrapped out under a key we hold
                thief.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)


@pytest.mark.timeout(300)
async def test_face_path_end_to_end_through_the_token_leaves_no_key_in_the_data_dir(
        planted_state: tuple[AppState, PlantedKeys], engine: FaceEngine) -> None:
    state, planted = planted_state
    data_dir = state.settings.data_dir
    faces = face_service(state)
    astronaut = engine.embed(demo_portrait("astronaut"))
    stranger = engine.embed(demo_portrait("grace_hopper"))

    faces.enrol_reference(LiveFace(astronaut), "acct-1", "HospitalMSP")
    stored = faces.reference("acct-1", "HospitalMSP")  # as read back from the database
    assert stored is not None
    assert stored.kek_id == planted.keks["face"][1].hex()
    assert faces.matches(stored, LiveFace(astronaut), "acct-1")
    assert not faces.matches(stored, LiveFace(stranger), "acct-1")
    assert faces.screen_and_add("P-1", LiveFace(astronaut)).added
    assert not faces.screen_and_add("P-2", LiveFace(astronaut)).added  # the same face
    assert faces.screen_and_add("P-3", LiveFace(stranger)).added

    # The token used exactly the planted keys: a protector built in this process from the
    # planted bytes opens and verifies the stored reference, with the same pseudonym.
    mirror = TemplateProtector(_planted_kek(planted, "face"),
                               PlantedDeriver(planted.derivers["face-transform"]),
                               registry=faces.protector.registry)
    assert mirror.holder_pseudonym("acct-1", "HospitalMSP") == stored.holder_pseudonym
    threshold = operating_point(VERIFY_POINT).threshold
    assert mirror.verify(stored, astronaut, threshold, holder_account="acct-1")[0]
    face_factor = PurposeKey(FACE_FACTOR_LABEL, state.keys.kek("face-factor"))
    blob = seal(face_factor, b"a holder's face-factor key", b"P-1")
    assert open_sealed(face_factor, blob, b"P-1") == b"a holder's face-factor key"
    assert _planted_kek(planted, "face-factor").open(
        blob, purpose=FACE_FACTOR_LABEL.decode(), context=b"P-1") == b"a holder's face-factor key"
    counter = derive_counter_key(state.keys.deriver("counter"))
    assert counter.key_id == derive_counter_key(PlantedDeriver(planted.derivers["counter"])).key_id
    assert state.keys.deriver("counter").expand(COUNTER_INFO, 48) == \
        PlantedDeriver(planted.derivers["counter"]).expand(COUNTER_INFO, 48)

    await face_service(state).aclose()  # dedup files flushed
    assert not (data_dir / "secrets.json").exists()
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "gateway.sqlite" for p in files) and any("dedup" in str(p)
                                                                  for p in files)
    for path in files:
        content = path.read_bytes()
        for value in planted.values():
            for form in (value, value.hex().encode(), value.hex().upper().encode(),
                         base64.b64encode(value), base64.urlsafe_b64encode(value)):
                assert form not in content, f"key bytes found in {path}"


def test_a_database_without_its_token_keys_is_refused(softhsm: SoftHsmToken,
                                                       tmp_path: Path) -> None:
    db, provider = open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix()))
    db.close()
    provider.close()
    # The same data dir under another label prefix (a mistyped one, another token...):
    with pytest.raises(DataDirMismatch, match="token lacks"):
        open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix()))


def test_a_data_dir_made_under_the_file_provider_is_refused(softhsm: SoftHsmToken,
                                                             tmp_path: Path) -> None:
    db, provider = open_data_dir(Settings(data_dir=tmp_path / "gw", mode="development"))
    db.close()
    provider.close()
    with pytest.raises(DataDirMismatch, match="file key provider"):
        open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix()))


def test_an_extractable_key_under_the_gateways_label_is_refused(softhsm: SoftHsmToken,
                                                                tmp_path: Path) -> None:
    prefix = fresh_prefix()
    with token_session(softhsm) as session:
        session.generate_key(KeyType.AES, 256, id=os.urandom(8), store=True,
                             label=kek_label(prefix, "face"), template={
                                 Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True,
                                 Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
    with pytest.raises(KeyProviderError, match="extractable"):
        open_data_dir(_settings(softhsm, tmp_path / "gw", prefix))


def test_pin_module_and_token_refusals_name_the_setting(softhsm: SoftHsmToken, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("not-the-pin\n")
    with pytest.raises(KeyProviderError, match=r"PIN of PKCS#11 token .* is wrong") as err:
        open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix(),
                                pkcs11_pin_file=wrong))
    assert softhsm.pin not in str(err.value) and "not-the-pin" not in str(err.value)
    monkeypatch.delenv("MIP_PKCS11_PIN", raising=False)
    with pytest.raises(KeyProviderError, match=r"pkcs11_pin_file or \$MIP_PKCS11_PIN"):
        open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix(), pkcs11_pin_file=None))
    monkeypatch.setenv("MIP_PKCS11_PIN", softhsm.pin)  # the variable serves as well
    db, provider = open_data_dir(_settings(softhsm, tmp_path / "gw", fresh_prefix(),
                                           pkcs11_pin_file=None))
    db.close()
    provider.close()
    with pytest.raises(KeyProviderError, match="apt-get install softhsm2"):
        open_data_dir(_settings(softhsm, tmp_path / "gw2", fresh_prefix(),
                                pkcs11_module=tmp_path / "no-such-module.so"))
    with pytest.raises(KeyProviderError, match="softhsm2-util --init-token"):
        open_data_dir(_settings(softhsm, tmp_path / "gw2", fresh_prefix(),
                                pkcs11_token_label="no-such-token"))
    assert not (tmp_path / "gw2" / "gateway.sqlite").exists()


def _mip_serve(tmp_path: Path, config: dict[str, object], *args: str
               ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "mip.yaml"
    path.write_text(yaml.safe_dump({"connection": str(tmp_path / "none.json"), **config}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIP_")}
    return subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(path),
                           *args], cwd=REPO_ROOT, env={**env, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=60, check=False)


def test_mip_serve_refuses_the_file_provider_outside_development_mode(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    result = _mip_serve(tmp_path, {"data_dir": str(data), "key_provider": "file"})
    assert result.returncode != 0
    assert result.stderr.startswith("error: refusing the file key provider outside "
                                    "development mode"), result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists()  # nothing made: no database, no secrets.json
    # Production is the default: with no PKCS#11 settings it names what is missing.
    result = _mip_serve(tmp_path, {"data_dir": str(data), "org": "HospitalMSP",
                                   "pkcs11_module": str(tmp_path / "no-module.so")})
    assert result.returncode != 0 and "pkcs11_module" in result.stderr, result.stderr
    assert not (data / "secrets.json").exists()


def test_settings_default_to_pkcs11_in_production() -> None:
    assert Settings().key_provider_kind == "pkcs11"
    assert Settings(mode="development").key_provider_kind == "file"
    assert Settings(mode="development", key_provider="pkcs11").key_provider_kind == "pkcs11"
    assert "pin" not in json.dumps(Settings().model_dump(mode="json")).replace(
        "pkcs11_pin_file", "")
    assert pkcs11  # the binding is a real dependency, imported at module level


def test_a_missing_softhsm_fails_naming_the_install_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where it could be installed (root with apt-get), a missing SoftHSM2 fails the tests;
    a skip is only for machines that cannot install it."""
    import softhsm_kit

    monkeypatch.setattr(softhsm_kit.shutil, "which",
                        lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(softhsm_kit.os, "geteuid", lambda: 0)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y softhsm2"):
        softhsm_kit.require_softhsm()
    monkeypatch.setattr(softhsm_kit.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="cannot install it"):
        softhsm_kit.require_softhsm()
