"""Linkage of two accounts, proven to one designated verifier (keys fetched from devnet)."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mip_testkit import Account, Holder, MipClients, new_holder, open_account

from gateway.holder.linkage_proof import (
    LinkageError,
    LinkageProof,
    LinkedAccount,
    forge_linkage,
    prove_linkage,
    verify_linkage,
)
from gateway.kyc.issuer import KycIssuer


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


async def _from_ledger(mip: MipClients, pseudonym: str) -> LinkedAccount:
    record = json.loads(await (await mip.client("SchoolMSP", "registrar")).evaluate(
        "Account:Get", [pseudonym]))
    return LinkedAccount(record["pseudonym"], base64.b64decode(record["public_key"]))


def _prove(a: Account, b: Account, verifier_id: str, verifier: X25519PrivateKey,
           expires: int | None = None) -> LinkageProof:
    return prove_linkage(a.key.private, a.pseudonym, b.key.private, b.pseudonym, verifier_id,
                         _public(verifier), secrets.token_hex(16),
                         expires or int(time.time()) + 600)


async def test_linkage_to_one_verifier(mip: MipClients, holder: Holder) -> None:
    hospital_account = await open_account(mip, holder, "HospitalMSP")
    school_account = await open_account(mip, holder, "SchoolMSP")
    a = await _from_ledger(mip, hospital_account.pseudonym)
    b = await _from_ledger(mip, school_account.pseudonym)
    verifier, other_verifier = X25519PrivateKey.generate(), X25519PrivateKey.generate()

    proof = _prove(hospital_account, school_account, "employer-1", verifier)
    wire = LinkageProof.from_dict(json.loads(json.dumps(proof.to_dict())))
    verify_linkage(wire, "employer-1", verifier, a, b)

    # Another verifier cannot check it, under its own id or the designated one's.
    with pytest.raises(LinkageError):
        verify_linkage(proof, "employer-1", other_verifier, a, b)
    with pytest.raises(LinkageError):
        verify_linkage(proof, "employer-2", other_verifier, a, b)

    # Any alteration is refused.
    flipped = proof.tag[:-1] + ("0" if proof.tag[-1] != "0" else "1")
    for altered in (
        dataclasses.replace(proof, tag=flipped),
        dataclasses.replace(proof, nonce=secrets.token_hex(16)),
        dataclasses.replace(proof, expires=proof.expires + 1),
        dataclasses.replace(proof, pseudonym_a=proof.pseudonym_b, pseudonym_b=proof.pseudonym_a),
    ):
        with pytest.raises(LinkageError):
            verify_linkage(altered, "employer-1", verifier, a, b)
    with pytest.raises(LinkageError):  # same proof, a third account swapped in
        third = await open_account(mip, holder, "PharmacyMSP")
        verify_linkage(proof, "employer-1", verifier, a,
                       LinkedAccount(b.pseudonym, third.key.public_raw))
    expired = _prove(hospital_account, school_account, "employer-1", verifier,
                     expires=int(time.time()) - 1)
    with pytest.raises(LinkageError):
        verify_linkage(expired, "employer-1", verifier, a, b)


async def test_verifier_can_forge_so_proof_is_not_transferable(
    mip: MipClients, holder: Holder, kyc_issuers: dict[str, KycIssuer]
) -> None:
    one = await open_account(mip, holder, "HospitalMSP")
    two = await open_account(mip, holder, "PharmacyMSP")
    a, b = await _from_ledger(mip, one.pseudonym), await _from_ledger(mip, two.pseudonym)
    verifier = X25519PrivateKey.generate()
    proof = _prove(one, two, "bank", verifier)
    forged = forge_linkage(verifier, "bank", a, b, proof.nonce, proof.expires)
    # The verifier's own computation is the holder's proof, bit for bit...
    assert forged == proof
    # ...and it can "link" accounts of two different people just as well, so a proof shown
    # to a third party demonstrates nothing.
    someone_else = await new_holder(mip, kyc_issuers, org="SchoolMSP")
    their_account = await open_account(mip, someone_else, "SchoolMSP")
    c = await _from_ledger(mip, their_account.pseudonym)
    fake = forge_linkage(verifier, "bank", a, c, secrets.token_hex(16), int(time.time()) + 60)
    verify_linkage(fake, "bank", verifier, a, c)
    with pytest.raises(LinkageError):
        forge_linkage(verifier, "bank", a, a, secrets.token_hex(16), int(time.time()) + 60)
