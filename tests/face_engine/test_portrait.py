"""The portrait (face_engine/portrait.py): signed by the enrolling org, sealed to one pharmacy,
matched there with no key of the enrolling org. Real faces (LFW) through the real models."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable

import nacl.public
import numpy as np
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from face_engine import envelope
from face_engine import portrait as p
from face_engine.engine import FaceEngine
from face_engine.protect.errors import InvalidEmbedding

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
ACCOUNT, GRANT = "acct-7f3a", "g-portrait-1"
REFERENCE = "ab" * 32  # the account's face commitment on the ledger
NOW = int(time.time())


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclasses.dataclass
class Party:
    issuer: p.PortraitIssuer
    recipient: p.PortraitRecipient

    @property
    def signing_public(self) -> bytes:
        return raw_public(self.issuer.signing_key)

    @property
    def sealing_public(self) -> bytes:
        return bytes(self.recipient.sealing_key.public_key)


def party(org: str) -> Party:
    """One org's two portrait keys, as its gateway would hold them."""
    return Party(p.PortraitIssuer(org, Ed25519PrivateKey.generate(), f"{org}:sign-1"),
                 p.PortraitRecipient(org, nacl.public.PrivateKey.generate(), f"{org}:seal-1"))


@pytest.fixture
def orgs() -> dict[str, Party]:
    return {org: party(org) for org in (HOSPITAL, SCHOOL, PHARMACY)}


@pytest.fixture(scope="module")
def faces(engine: FaceEngine, lfw_image: Callable[[str, int], bytes]) -> dict[str, np.ndarray]:
    """Two photos of one person (a genuine pair of LFW's dev pairs) and one of another."""
    return {"enrolled": engine.embed(lfw_image("Abel_Pacheco", 1)),
            "same_person": engine.embed(lfw_image("Abel_Pacheco", 4)),
            "other_person": engine.embed(lfw_image("Akhmed_Zakayev", 3))}


def build(issuer: Party, recipient: Party, embedding: np.ndarray, *,
          account: str = ACCOUNT, grant_id: str = GRANT,
          expires: int = NOW + 3600) -> p.PortraitStatement:
    return issuer.issuer.build(
        embedding, account=account, grant_id=grant_id, recipient_org=recipient.recipient.org,
        recipient_key_id=recipient.recipient.key_id, reference_commitment=REFERENCE,
        issued_at=NOW - 60, expires=expires)


def expectation(issuer: Party, commitment: str, **changes: object) -> p.PortraitExpectation:
    """What the pharmacy reads from the ledger: the account's institution and its key record,
    the grant's portrait commitment, the account's face commitment."""
    return dataclasses.replace(p.PortraitExpectation(
        account=ACCOUNT, grant_id=GRANT, issuer_org=issuer.issuer.org,
        issuer_key=issuer.signing_public, issuer_key_id=issuer.issuer.signing_key_id,
        grant_commitment=commitment, reference_commitment=REFERENCE),
        **changes)  # type: ignore[arg-type]


def issue(issuer: Party, recipient: Party, embedding: np.ndarray,
          **kwargs: object) -> tuple[bytes, str]:
    statement = build(issuer, recipient, embedding, **kwargs)  # type: ignore[arg-type]
    return p.seal(issuer.issuer.sign(statement), recipient.sealing_public), statement.commitment


def test_genuine_face_is_accepted_and_impostor_refused(
    orgs: dict[str, Party], faces: dict[str, np.ndarray]
) -> None:
    hospital, pharmacy = orgs[HOSPITAL], orgs[PHARMACY]
    sealed, commitment = issue(hospital, pharmacy, faces["enrolled"])
    # The pharmacy holds only its own sealing key and the ledger's public records.
    verified = p.accept(pharmacy.recipient, sealed, expectation(hospital, commitment), NOW)
    assert verified.matches(faces["same_person"])
    assert verified.matches(faces["enrolled"])
    assert not verified.matches(faces["other_person"])
    assert verified.expires == NOW + 3600
    # The sealed form carries neither the embedding nor the salt in clear.
    raw = faces["enrolled"].astype("<f4").tobytes()
    assert base64.b64encode(raw[:48]) not in sealed and raw[:48] not in sealed


def test_each_portrait_has_its_own_commitment(orgs: dict[str, Party],
                                              faces: dict[str, np.ndarray]) -> None:
    one = build(orgs[HOSPITAL], orgs[PHARMACY], faces["enrolled"])
    two = build(orgs[HOSPITAL], orgs[PHARMACY], faces["enrolled"])
    assert one.commitment != two.commitment  # fresh salt: unlinkable on the ledger
    assert p.is_commitment(one.commitment)


def test_sealed_to_another_pharmacy_is_refused(orgs: dict[str, Party],
                                               faces: dict[str, np.ndarray]) -> None:
    hospital, pharmacy, school = orgs[HOSPITAL], orgs[PHARMACY], orgs[SCHOOL]
    sealed, _ = issue(hospital, school, faces["enrolled"])
    with pytest.raises(p.PortraitWrongRecipient):
        pharmacy.recipient.open(sealed)
    # A pharmacy's own rotated sealing key: the old portrait names the old key id.
    rotated = p.PortraitRecipient(PHARMACY, nacl.public.PrivateKey.generate(), "PharmacyMSP:2")
    sealed, _ = issue(hospital, pharmacy, faces["enrolled"])
    with pytest.raises(p.PortraitWrongRecipient):
        rotated.open(sealed)
    # Relabelled to name this pharmacy, yet sealed to another key: the box does not open.
    relabelled = json.loads(issue(hospital, school, faces["enrolled"])[0])
    relabelled.update(recipient_org=PHARMACY, recipient_key_id=pharmacy.recipient.key_id)
    with pytest.raises(p.PortraitWrongRecipient):
        pharmacy.recipient.open(rfc8785.dumps(relabelled))


def test_a_pharmacy_cannot_pass_its_portrait_on(orgs: dict[str, Party],
                                                faces: dict[str, np.ndarray]) -> None:
    """The first pharmacy opens a portrait and re-seals the signed statement to a second one
    (here the school): the statement names the first as its recipient."""
    hospital, pharmacy, school = orgs[HOSPITAL], orgs[PHARMACY], orgs[SCHOOL]
    sealed, _ = issue(hospital, pharmacy, faces["enrolled"])
    signed = pharmacy.recipient.open(sealed)
    data_key = envelope.Key.generate()
    header = p.PortraitHeader(SCHOOL, school.recipient.key_id, ACCOUNT, GRANT)
    forwarded = rfc8785.dumps({
        "v": 1, **dataclasses.asdict(header),
        "sealed_key": base64.b64encode(nacl.public.SealedBox(
            school.recipient.sealing_key.public_key).encrypt(data_key.raw_bytes())).decode(),
        "body": base64.b64encode(data_key.seal(signed.to_bytes(), purpose=p.ENVELOPE_PURPOSE,
                                               context=header.context())).decode()})
    with pytest.raises(p.PortraitTampered):
        school.recipient.open(forwarded)
    # Re-sealed as is, it still goes to the first pharmacy only.
    with pytest.raises(p.PortraitWrongRecipient):
        school.recipient.open(p.seal(signed, school.sealing_public))


def test_signed_by_another_org_or_key_is_refused(orgs: dict[str, Party],
                                                 faces: dict[str, np.ndarray]) -> None:
    hospital, pharmacy, school = orgs[HOSPITAL], orgs[PHARMACY], orgs[SCHOOL]
    # The school signs a portrait for a hospital account: the account's enrolling org (from
    # the ledger's account record) is the hospital, whatever the portrait says.
    sealed, commitment = issue(school, pharmacy, faces["other_person"])
    with pytest.raises(p.PortraitWrongIssuer):
        p.accept(pharmacy.recipient, sealed, expectation(hospital, commitment), NOW)
    # Another key claiming the hospital's key id: the signature does not verify.
    impostor = p.PortraitIssuer(HOSPITAL, Ed25519PrivateKey.generate(),
                                hospital.issuer.signing_key_id)
    statement = build(hospital, pharmacy, faces["other_person"])
    sealed = p.seal(impostor.sign(statement), pharmacy.sealing_public)
    with pytest.raises(p.PortraitBadSignature):
        p.accept(pharmacy.recipient, sealed, expectation(hospital, statement.commitment), NOW)
    # The hospital's key rotated since: the portrait names an old key id.
    sealed, commitment = issue(hospital, pharmacy, faces["enrolled"])
    with pytest.raises(p.PortraitWrongIssuer):
        p.accept(pharmacy.recipient, sealed, expectation(
            hospital, commitment, issuer_key_id="HospitalMSP:sign-2"), NOW)


def test_bound_to_another_account_grant_or_reference_is_refused(
    orgs: dict[str, Party], faces: dict[str, np.ndarray]
) -> None:
    hospital, pharmacy = orgs[HOSPITAL], orgs[PHARMACY]
    sealed, commitment = issue(hospital, pharmacy, faces["enrolled"])
    for changes in ({"account": "acct-other"}, {"grant_id": "g-other"},
                    {"reference_commitment": "cd" * 32}):
        with pytest.raises(p.PortraitBindingMismatch):
            p.accept(pharmacy.recipient, sealed, expectation(hospital, commitment, **changes),
                     NOW)


def test_expired_or_uncommitted_portrait_is_refused(orgs: dict[str, Party],
                                                    faces: dict[str, np.ndarray]) -> None:
    hospital, pharmacy = orgs[HOSPITAL], orgs[PHARMACY]
    sealed, commitment = issue(hospital, pharmacy, faces["enrolled"], expires=NOW + 10)
    with pytest.raises(p.PortraitExpired):
        p.accept(pharmacy.recipient, sealed, expectation(hospital, commitment), NOW + 10)
    # Signed and sealed correctly, but not the portrait the holder's grant commits to (the
    # enrolling org swapped it after the holder's consent).
    swapped, _ = issue(hospital, pharmacy, faces["other_person"])
    for ledger in (commitment, None, "not a commitment"):
        with pytest.raises(p.PortraitCommitmentMismatch):
            p.accept(pharmacy.recipient, swapped, expectation(hospital, ledger), NOW)  # type: ignore[arg-type]


def test_another_model_is_refused(orgs: dict[str, Party], faces: dict[str, np.ndarray]) -> None:
    hospital, pharmacy = orgs[HOSPITAL], orgs[PHARMACY]
    statement = dataclasses.replace(build(hospital, pharmacy, faces["enrolled"]),
                                    model="arcface-r100")
    sealed = p.seal(hospital.issuer.sign(statement), pharmacy.sealing_public)
    with pytest.raises(p.PortraitModelMismatch):
        p.accept(pharmacy.recipient, sealed, expectation(hospital, statement.commitment), NOW)


def test_tampered_or_malformed_portrait_is_refused(orgs: dict[str, Party],
                                                   faces: dict[str, np.ndarray]) -> None:
    hospital, pharmacy = orgs[HOSPITAL], orgs[PHARMACY]
    sealed, _ = issue(hospital, pharmacy, faces["enrolled"])
    doc = json.loads(sealed)
    body = bytearray(base64.b64decode(doc["body"]))
    body[-1] ^= 1
    with pytest.raises(p.PortraitTampered):
        pharmacy.recipient.open(rfc8785.dumps({**doc, "body": base64.b64encode(body).decode()}))
    # The grant id in the clear header is bound to the body.
    with pytest.raises(p.PortraitTampered):
        pharmacy.recipient.open(rfc8785.dumps({**doc, "grant_id": "g-other"}))
    for bad in (b"", b"[]", b"{}", b"\xff", sealed[:-5], b" " * (p.MAX_SEALED_BYTES + 1),
                rfc8785.dumps({**doc, "v": 2}), rfc8785.dumps({**doc, "sealed_key": "!"})):
        with pytest.raises(p.MalformedPortrait):
            pharmacy.recipient.open(bad)
    with pytest.raises(p.MalformedPortrait):
        p.seal(hospital.issuer.sign(build(hospital, pharmacy, faces["enrolled"])), b"short")
    with pytest.raises(InvalidEmbedding):
        build(hospital, pharmacy, np.zeros(128))
    with pytest.raises(p.MalformedPortrait):  # longer than a grant may live
        build(hospital, pharmacy, faces["enrolled"], expires=NOW + p.MAX_PORTRAIT_TTL_S + 60)
    with pytest.raises(p.PortraitWrongIssuer):  # an issuer signs only its own statements
        orgs[SCHOOL].issuer.sign(build(hospital, pharmacy, faces["enrolled"]))
    verified = p.accept(pharmacy.recipient, sealed,
                        expectation(hospital, pharmacy.recipient.open(sealed).statement.commitment),
                        NOW)
    with pytest.raises(InvalidEmbedding):
        verified.matches(np.ones(3))
