"""An org's KYC revocation registry rolls over when full (issue #16, "[harden]"): with
registries of 2 credentials, four credentials issued at HospitalMSP fill r1 and r2; the
gateway publishes r2 on the ledger itself (Account:PublishKycRevocation, as r1), every
credential opens an account, and revoking one credential of each registry refuses exactly
those two (each revocation published to the registry the credential came from). An account
whose registry's list changed re-proves with its holder's credential re-issued into a newer
registry of the same issuer."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anoncreds import AnoncredsError, AnoncredsErrorCode  # type: ignore[import-untyped]
from gateway_testkit import make_settings
from mip_testkit import MipNetwork

from chaincode.protocol.kyc import rev_reg_id
from gateway.core.errors import ApiError
from gateway.fabric import ChaincodeError
from gateway.holder import keys
from gateway.kyc.issuer import KycIssuer
from gateway.kyc.wallet import KycHolder
from gateway.services.kyc import kyc_service
from gateway.services.state import AppState, build_state

ORG = "HospitalMSP"


@pytest.fixture
async def small_registries(gw_network: MipNetwork, tmp_path: Path) -> AsyncIterator[AppState]:
    state = build_state(make_settings(tmp_path / "data", gw_network.connection,
                                      kyc_registry_size=2))
    try:
        yield state
    finally:
        await state.close()


@dataclass
class Opened:
    key: keys.HolderKeyPair
    pseudonym: str
    record: dict[str, Any]


async def _open(state: AppState, wallet: KycHolder) -> Opened:
    """Open an account at PharmacyMSP with `wallet`'s credential (as the gateway does)."""
    key = keys.account_key(keys.new_master_secret(), "PharmacyMSP", 0)
    pseudonym = keys.new_pseudonym()
    request = key.sign_request("account.open", {
        "pseudonym": pseudonym, "institution": "PharmacyMSP", "min_level": 2,
        "face_commitment": secrets.token_hex(32)}, state.settings.channel)
    presentation = wallet.present(key.public_raw, pseudonym, 2)
    record = json.loads(await state.ledger.carrier("PharmacyMSP").submit(
        "Account:Open", [json.dumps(request), json.dumps(presentation)]))
    return Opened(key, pseudonym, record)


async def _reprove(state: AppState, wallet: KycHolder, account: Opened) -> dict[str, Any]:
    presentation = wallet.present(account.key.public_raw, account.pseudonym, 2, reprove=True)
    request = account.key.sign_request("account.reprove", {"pseudonym": account.pseudonym},
                                       state.settings.channel)
    record: dict[str, Any] = json.loads(await state.ledger.carrier("PharmacyMSP").submit(
        "Account:Reprove", [account.pseudonym, json.dumps(request), json.dumps(presentation)]))
    return record


async def test_registries_roll_over_and_revoke_where_issued(
        small_registries: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    state = small_registries
    kyc = kyc_service(state)
    passports = [secrets.token_hex(32) for _ in range(4)]
    wallets = [KycHolder() for _ in passports]
    indexes = [await kyc.issue(ORG, wallet, 2, pid)
               for wallet, pid in zip(wallets, passports, strict=True)]
    issuer = kyc.loaded(ORG)
    assert issuer is not None
    first, second = (rev_reg_id(ORG, issuer.tag, tag) for tag in ("r1", "r2"))
    assert indexes == [1, 2, 1, 2]
    assert [w.rev_reg_id(issuer.cred_def_id) for w in wallets] == [first, first, second, second]
    # Each credential's registry is recorded with its index (revocation targets it).
    rows = state.db.query("SELECT passport_id, rev_reg_id, rev_index FROM kyc_credentials")
    assert {(r["passport_id"], r["rev_reg_id"], r["rev_index"]) for r in rows} == {
        (passports[0], first, 1), (passports[1], first, 2),
        (passports[2], second, 1), (passports[3], second, 2)}
    # The gateway published r2 itself, before handing its first credential over.
    assert not issuer.unpublished()
    carrier = state.ledger.carrier(ORG)
    for identifier in (first, second):
        published = json.loads(await carrier.evaluate("Account:GetKycRevocation",
                                                      [identifier]))
        assert published["cred_def_id"] == issuer.cred_def_id

    # Every credential opens an account, whichever registry it is in.
    accounts = [await _open(state, wallet) for wallet in wallets]
    assert [a.record["revocation"]["rev_reg_id"] for a in accounts] == [
        first, first, second, second]

    # Revoke one credential of r1 and one of r2: each registry's list is published.
    assert await kyc.revoke(ORG, passports[0]) == 1
    assert await kyc.revoke(ORG, passports[2]) == 1
    for identifier in (first, second):
        published = json.loads(await carrier.evaluate("Account:GetKycRevocation",
                                                      [identifier]))
        assert published["status_list"] == issuer.registry(identifier).status_list.to_dict()
    for revoked in (wallets[0], wallets[2]):
        with pytest.raises(ChaincodeError) as refused:
            await _open(state, revoked)
        assert refused.value.chaincode_message.startswith("bad_signature")
    for live in (wallets[1], wallets[3]):
        await _open(state, live)  # the others still open accounts

    # r1's list changed, so its live account re-proves; its holder's credential was since
    # re-issued (as after an upgrade) into r3, a newer registry of the same issuer: accepted.
    assert await kyc.issue(ORG, wallets[1], 2, passports[1]) == 1
    third = rev_reg_id(ORG, issuer.tag, "r3")
    assert wallets[1].rev_reg_id(issuer.cred_def_id) == third
    assert (await _reprove(state, wallets[1], accounts[1]))["revocation"]["rev_reg_id"] == third
    # Another org's credential does not re-prove a HospitalMSP-backed account.
    stranger = KycHolder()
    await kyc.issue("SchoolMSP", stranger, 2, secrets.token_hex(32))
    with pytest.raises(ChaincodeError) as refused:
        await _reprove(state, stranger, accounts[3])
    assert refused.value.chaincode_message.startswith("invalid_request")

    # A restarted gateway keeps the registries and issues on into r3.
    again = build_state(make_settings(state.settings.data_dir, state.settings.connection,
                                      kyc_registry_size=2))
    try:
        wallet = KycHolder()
        assert await kyc_service(again).issue(ORG, wallet, 2, secrets.token_hex(32)) == 2
        assert wallet.rev_reg_id(issuer.cred_def_id) == third
        await _open(again, wallet)
        # If opening a registry still fails, the caller gets a typed error and nothing is
        # recorded (r3 is full; r4 cannot be made).

        def broken(*_args: object, **_kwargs: object) -> None:
            raise AnoncredsError(AnoncredsErrorCode.IO_ERROR, "tails file not written")

        monkeypatch.setattr(KycIssuer, "open_registry", broken)
        before = again.db.query_one("SELECT COUNT(*) AS n FROM kyc_credentials")["n"]
        with pytest.raises(ApiError) as failed:
            await kyc_service(again).issue(ORG, KycHolder(), 2, secrets.token_hex(32))
        assert (failed.value.code, failed.value.status) == ("kyc_issuance_failed", 503)
        assert again.db.query_one("SELECT COUNT(*) AS n FROM kyc_credentials")["n"] == before
    finally:
        await again.close()
