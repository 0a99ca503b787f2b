"""A full revocation registry rolls over to a new one of the same credential definition:
credentials of every registry present, and revoking one in either registry refuses exactly
that credential (the contract's verification, offline; the ledger path is in
tests/gateway/services/test_kyc_registries.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaincode.mip.errors import BadSignature
from chaincode.mip.kyc_credentials import (
    RevocationDocuments,
    check_issuer_documents,
    check_revocation_documents,
    verify_account_presentation,
)
from chaincode.protocol.kyc import account_nonce, rev_reg_id
from gateway.kyc.issuer import KycIssuer
from gateway.kyc.state import issuer_from_state, issuer_state
from gateway.kyc.wallet import KycHolder

KEY, PSEUDONYM = b"k" * 32, "ab" * 32


def _verify(issuer: KycIssuer, wallet: KycHolder) -> None:
    docs = check_issuer_documents(issuer.org, *issuer.public_documents())
    registries: dict[str, RevocationDocuments] = {}
    for identifier in issuer.registries:
        found = check_revocation_documents(docs, *issuer.revocation_documents(identifier))
        registries[found.rev_reg_id] = found
    verify_account_presentation(wallet.present(KEY, PSEUDONYM, 2),
                                account_nonce(KEY, PSEUDONYM), 2,
                                {docs.cred_def_id: docs}, registries)


def test_full_registry_rolls_over(tmp_path: Path) -> None:
    issuer = KycIssuer("HospitalMSP", "roll1", max_credentials=2, tails_dir=str(tmp_path))
    first = rev_reg_id("HospitalMSP", "roll1", "r1")
    second = rev_reg_id("HospitalMSP", "roll1", "r2")
    wallets = [KycHolder() for _ in range(3)]
    indexes = [wallet.obtain(issuer, kyc_level=2) for wallet in wallets]
    # Two fill r1; the third is index 1 of a fresh r2, unpublished until its owner says so.
    assert indexes == [1, 2, 1]
    assert [w.rev_reg_id(issuer.cred_def_id) for w in wallets] == [first, first, second]
    assert list(issuer.registries) == [first, second] and issuer.rev_reg_id == second
    assert [r.rev_reg_id for r in issuer.unpublished()] == [first, second]
    issuer.mark_published(first)
    assert [r.rev_reg_id for r in issuer.unpublished()] == [second]
    # Both registries' tails files sit in the issuer's tails directory.
    assert {Path(r.tails_path).parent for r in issuer.registries.values()} == {tmp_path}

    # Saved and loaded, the issuer keeps both registries and where each one stands.
    issuer = issuer_from_state(json.loads(json.dumps(issuer_state(issuer))))
    assert [(r.rev_reg_id, r.next_index, r.published) for r in issuer.registries.values()] == [
        (first, 3, True), (second, 2, False)]
    assert issuer.registry_size == 2
    for wallet in wallets:
        wallet._credentials = {cdid: (cred, issuer, index)
                               for cdid, (cred, _old, index) in wallet._credentials.items()}
        _verify(issuer, wallet)

    # Revoke the first credential (in r1) and the third (in r2): exactly those are refused.
    issuer.revoke(1, first)
    issuer.revoke(1, second)
    for wallet in (wallets[0], wallets[2]):
        with pytest.raises(BadSignature):
            _verify(issuer, wallet)
    _verify(issuer, wallets[1])
    with pytest.raises(ValueError):
        issuer.revoke(1, rev_reg_id("HospitalMSP", "roll1", "r9"))


def test_version_1_state_still_loads(tmp_path: Path) -> None:
    """An issuer saved before registries rolled over (one registry, r1) loads as r1."""
    issuer = KycIssuer("HospitalMSP", "old1", max_credentials=4, tails_dir=str(tmp_path))
    wallet = KycHolder()
    wallet.obtain(issuer, kyc_level=2)
    state = issuer_state(issuer)
    (registry,) = state.pop("registries")
    del state["registry_size"]
    state |= {"version": 1, "next_index": registry["next_index"],
              "rev_reg_def": registry["rev_reg_def"],
              "rev_reg_private": registry["rev_reg_private"],
              "status_list": registry["status_list"]}
    loaded = issuer_from_state(json.loads(json.dumps(state)))
    assert loaded.rev_reg_id == issuer.rev_reg_id and loaded.registry_size == 4
    assert loaded.current.next_index == 2 and not loaded.unpublished()
