"""Saving and loading the off-chain KYC issuer and wallet (the gateway keeps them sealed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaincode.mip.kyc_credentials import (
    check_issuer_documents,
    check_revocation_documents,
    verify_account_presentation,
)
from chaincode.protocol.kyc import account_nonce
from gateway.kyc.issuer import KycIssuer
from gateway.kyc.state import (
    KycStateError,
    holder_from_state,
    holder_state,
    issuer_from_state,
    issuer_state,
)
from gateway.kyc.wallet import KycHolder


def test_issuer_and_wallet_round_trip(tmp_path: Path) -> None:
    issuer = KycIssuer("HospitalMSP", "persist1", max_credentials=8, tails_dir=str(tmp_path))
    loaded = issuer_from_state(json.loads(json.dumps(issuer_state(issuer))))
    assert loaded.cred_def_id == issuer.cred_def_id
    wallet = KycHolder()
    assert wallet.obtain(loaded, kyc_level=2) == 1
    assert issuer_state(loaded)["registries"][0]["next_index"] == 2
    again = holder_from_state(json.loads(json.dumps(holder_state(wallet))),
                              {loaded.cred_def_id: loaded})
    key, pseudonym = b"k" * 32, "ab" * 32
    presentation = again.present(key, pseudonym, 2)
    docs = check_issuer_documents("HospitalMSP", *issuer.public_documents())
    revocation = check_revocation_documents(docs, *loaded.revocation_documents())
    verified = verify_account_presentation(presentation, account_nonce(key, pseudonym), 2,
                                           {docs.cred_def_id: docs},
                                           {revocation.rev_reg_id: revocation})
    assert verified.cred_def_id == issuer.cred_def_id
    with pytest.raises(KycStateError):
        holder_from_state(holder_state(wallet), {})
    with pytest.raises(KycStateError):
        issuer_from_state({"version": 1})
    with pytest.raises(KycStateError):
        issuer_from_state(issuer_state(issuer) | {"version": 9})
