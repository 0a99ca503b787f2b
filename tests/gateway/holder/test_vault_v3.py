"""Vault version 3 (gateway/holder/vault_v3.py): wrap and unwrap under two OPRF outputs; any
wrong input, and a wrong helper output with the right password, fail alike."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.holder import oprf, vault, vault_v3
from gateway.holder.errors import InvalidKeyMaterial, MalformedBlob, UnlockFailed

PID = "passport-v3"
PASSWORD = "correct horse battery"
KDF = vault.INTERACTIVE_KDF


def shares_for(password: str, k_own: bytes, k_helper: bytes) -> vault_v3.Shares:
    data = vault_v3.oprf_input(vault.check_password(password), PID)
    blinded = oprf.blind(data)
    helper = oprf.finalize(data, blinded, oprf.evaluate(k_helper, blinded.element))
    return vault_v3.Shares(oprf.evaluate_unblinded(k_own, data), helper)


def keypair() -> bytes:
    return oprf.derive_key_pair(os.urandom(32), b"test")[0]


@dataclass(frozen=True)
class Setup:
    master: bytes
    face_key: bytes
    k_e: bytes
    k_h: bytes
    k_h2: bytes
    salt: bytes
    blob: vault_v3.HardenedSecret
    tokens: dict[str, bytes]


@pytest.fixture(scope="module")
def setup() -> Setup:
    master, face_key = os.urandom(32), os.urandom(32)
    k_e, k_h, k_h2 = keypair(), keypair(), keypair()
    salt = vault_v3.new_salt()
    pw_key = vault_v3.password_key(vault.check_password(PASSWORD), salt, KDF)
    blob, tokens = vault_v3.wrap(
        master, pw_key, face_key, PID, enrolling_org="HospitalMSP", salt=salt, kdf=KDF,
        shares={"SchoolMSP": shares_for(PASSWORD, k_e, k_h),
                "PharmacyMSP": shares_for(PASSWORD, k_e, k_h2)})
    return Setup(master, face_key, k_e, k_h, k_h2, salt, blob, tokens)


def test_round_trip_through_json_under_either_helper(setup: Setup) -> None:
    blob = vault_v3.HardenedSecret.from_json(setup.blob.to_json())
    assert blob == setup.blob and blob.helpers == ("SchoolMSP", "PharmacyMSP")
    assert vault_v3.blob_version(blob.to_json()) == 3
    pw_key = vault_v3.password_key(vault.check_password(PASSWORD), blob.salt, KDF)
    for helper, k in (("SchoolMSP", setup.k_h), ("PharmacyMSP", setup.k_h2)):
        master, token = vault_v3.unwrap(blob, pw_key, setup.face_key, PID,
                                        helper, shares_for(PASSWORD, setup.k_e, k))
        assert master == setup.master
        assert token == setup.tokens[helper]
    assert setup.tokens["SchoolMSP"] != setup.tokens["PharmacyMSP"]


def test_a_wrong_helper_output_fails_the_right_and_the_wrong_password_alike(
        setup: Setup) -> None:
    """What an attacker holding only the enrolling org's data and keys can compute: without
    the helper's real answer the right password is as wrong as any other."""
    blob = setup.blob
    impostor = keypair()  # the attacker's stand-in for the helper's key
    outcomes = []
    for password in (PASSWORD, "another password guess"):
        pw_key = vault_v3.password_key(vault.check_password(password), setup.salt, KDF)
        with pytest.raises(UnlockFailed) as caught:
            vault_v3.unwrap(blob, pw_key, setup.face_key, PID, "SchoolMSP",
                            shares_for(password, setup.k_e, impostor))
        outcomes.append((type(caught.value), str(caught.value)))
    assert outcomes[0] == outcomes[1]
    # ... and with the real answer, the same code path opens it (the control).
    pw_key = vault_v3.password_key(vault.check_password(PASSWORD), setup.salt, KDF)
    assert vault_v3.unwrap(blob, pw_key, setup.face_key, PID, "SchoolMSP",
                           shares_for(PASSWORD, setup.k_e, setup.k_h))[0] \
        == setup.master


@pytest.mark.parametrize("what", ["password", "face_key", "own", "passport"])
def test_each_wrong_factor_is_unlock_failed(setup: Setup, what: str) -> None:
    password = "wrong password guess" if what == "password" else PASSWORD
    pw_key = vault_v3.password_key(vault.check_password(password), setup.salt, KDF)
    face_key = os.urandom(32) if what == "face_key" else setup.face_key
    k_own = keypair() if what == "own" else setup.k_e
    pid = "another-passport" if what == "passport" else PID
    with pytest.raises(UnlockFailed):
        vault_v3.unwrap(setup.blob, pw_key, face_key, pid, "SchoolMSP",
                        shares_for(password, k_own, setup.k_h))


def test_malformed_blobs_are_refused(setup: Setup) -> None:
    good = setup.blob.to_dict()
    changes: list[dict[str, Any]] = [
        {"wraps": []}, {"enrolling_org": "EvilMSP"}, {"opslimit": 1},
        {"wraps": [{"helper": "HospitalMSP", "ciphertext": good["wraps"][0]["ciphertext"]}]},
        {"wraps": [good["wraps"][0], good["wraps"][0]]}, {"extra": 1}]
    for change in changes:
        with pytest.raises(MalformedBlob):
            vault_v3.HardenedSecret.from_dict({**good, **change})
    with pytest.raises(InvalidKeyMaterial):
        vault_v3.unwrap(setup.blob, os.urandom(32), setup.face_key, PID,
                        "EvilMSP", vault_v3.Shares(bytes(64), bytes(64)))
