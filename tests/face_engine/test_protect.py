"""Protected references: round trip, typed refusals, renewal/revocation, no raw leakage."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from face_engine import envelope
from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample
from face_engine.protect import (
    InvalidEmbedding,
    InvalidHolder,
    InvalidKey,
    MalformedReference,
    ProtectedReference,
    ReferenceMismatch,
    RevokedReference,
    StaleVersion,
    TamperedReference,
    TemplateProtector,
    WrongKey,
)
from face_engine.protect.keyed_rotation import KeyedRotation, haar_orthogonal

THRESHOLD = 0.36


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def protector() -> TemplateProtector:
    return TemplateProtector(os.urandom(32), os.urandom(32))


def _face(rng: np.random.Generator) -> np.ndarray:
    return FaceLikeDistribution.parametric(128, np.random.default_rng(1)).sample(1, rng)[0]


def test_round_trip_scores_equal_raw_cosine(protector: TemplateProtector,
                                            rng: np.random.Generator) -> None:
    enrolled = _face(rng)
    same = mated_sample(enrolled, 0.6, rng)[0]
    other = _face(rng)
    ref = protector.enrol(enrolled, "acct-1", "HospitalMSP")
    restored = ProtectedReference.from_bytes(ref.to_bytes())
    assert restored == ref and restored.commitment == ref.commitment
    match, score = protector.verify(restored, same, THRESHOLD, holder_account="acct-1")
    assert match and score == pytest.approx(float(np.dot(enrolled, same)), abs=1e-5)
    match, score = protector.verify(restored, other, THRESHOLD)
    assert not match and score == pytest.approx(float(np.dot(enrolled, other)), abs=1e-5)


def test_rotation_is_haar_distributed() -> None:
    # For Haar-random O(n): E[trace] = 0, Var[trace] = 1, Var[entry] = 1/n, det = +-1
    # equally often. 3,000 fixed seeds: the tolerances are > 4 standard errors.
    mats = [haar_orthogonal(i.to_bytes(32, "big"), 16) for i in range(3000)]
    traces = np.array([np.trace(m) for m in mats])
    assert abs(traces.mean()) < 0.08 and abs(traces.var() - 1.0) < 0.12
    assert abs(np.var([m[3, 11] for m in mats]) - 1 / 16) < 0.008
    assert 0.45 < np.mean([np.linalg.det(m) > 0 for m in mats]) < 0.55


def test_rotation_apply_matches_matrix() -> None:
    rotation = KeyedRotation(b"\x07" * 32, 128)
    vector = np.random.default_rng(2).standard_normal(128)
    assert np.allclose(rotation.apply(vector), rotation.matrix() @ vector, atol=1e-12)


def test_rotation_is_orthogonal_and_key_dependent() -> None:
    a = haar_orthogonal(b"\x01" * 32, 128)
    b = haar_orthogonal(b"\x02" * 32, 128)
    assert np.allclose(a @ a.T, np.eye(128), atol=1e-10)
    assert np.array_equal(a, haar_orthogonal(b"\x01" * 32, 128))
    assert not np.allclose(a, b)


def test_wrong_kek_is_refused(rng: np.random.Generator) -> None:
    transform = os.urandom(32)
    ref = TemplateProtector(os.urandom(32), transform).enrol(_face(rng), "a", "SchoolMSP")
    other = TemplateProtector(os.urandom(32), transform)
    with pytest.raises(WrongKey) as err:
        other.decrypt_transformed(ref)
    assert err.value.code == "wrong_key"


@pytest.mark.parametrize("field", ["ciphertext", "wrapped_key"])
@pytest.mark.parametrize("position", [0, 1, 5, 9, envelope.HEADER_BYTES, -1],
                         ids=["version", "purpose", "key-id", "nonce", "body", "tag"])
def test_tampered_bytes_are_refused(protector: TemplateProtector, rng: np.random.Generator,
                                    field: str, position: int) -> None:
    ref = protector.enrol(_face(rng), "acct", "HospitalMSP")
    raw = bytearray(getattr(ref, field))
    raw[position] ^= 0x01
    bad = dataclasses.replace(ref, **{field: bytes(raw)})
    with pytest.raises(TamperedReference) as err:
        protector.decrypt_transformed(bad)
    assert err.value.code == "reference_tampered"


@pytest.mark.parametrize("change", [{"version": 9}, {"institution": "SchoolMSP"},
                                    {"holder_pseudonym": "00" * 16}])
def test_wrong_associated_data_is_refused(protector: TemplateProtector,
                                          rng: np.random.Generator,
                                          change: dict[str, object]) -> None:
    ref = protector.enrol(_face(rng), "acct", "HospitalMSP")
    with pytest.raises(TamperedReference):
        protector.decrypt_transformed(dataclasses.replace(ref, **change))  # type: ignore[arg-type]
    # verify() refuses it before decrypting: the altered reference is not the current one
    with pytest.raises(RevokedReference):
        protector.verify(dataclasses.replace(ref, **change), _face(rng), THRESHOLD)  # type: ignore[arg-type]


def test_other_holder_is_refused(protector: TemplateProtector, rng: np.random.Generator) -> None:
    ref = protector.enrol(_face(rng), "alice", "HospitalMSP")
    with pytest.raises(ReferenceMismatch):
        protector.verify(ref, _face(rng), THRESHOLD, holder_account="bob")


def test_renewal_revokes_old_reference(protector: TemplateProtector,
                                       rng: np.random.Generator) -> None:
    face = _face(rng)
    old = protector.enrol(face, "acct", "PharmacyMSP")
    assert old.version == 1
    new = protector.renew(old, mated_sample(face, 0.7, rng)[0], "acct")
    assert new.version == 2 and new.commitment != old.commitment
    with pytest.raises(RevokedReference) as err:
        protector.verify(old, face, THRESHOLD)
    assert err.value.code == "reference_revoked"
    assert protector.verify(new, face, THRESHOLD)[0]
    # the renewed transform is unrelated to the old one
    cos = float(np.dot(protector.decrypt_transformed(old), protector.decrypt_transformed(new)))
    assert abs(cos) < 0.4
    with pytest.raises(StaleVersion):
        protector.enrol(face, "acct", "PharmacyMSP", version=2)
    assert protector.revoke(new)
    assert not protector.revoke(new)
    with pytest.raises(RevokedReference):
        protector.verify(new, face, THRESHOLD)
    # after revocation a fresh enrolment continues the version sequence
    assert protector.enrol(face, "acct", "PharmacyMSP").version == 3


def test_stored_bytes_do_not_contain_or_track_the_embedding(
        protector: TemplateProtector, rng: np.random.Generator) -> None:
    faces = FaceLikeDistribution.parametric(128, rng).sample(200, rng)
    refs = [protector.enrol(f, f"acct-{i}", "HospitalMSP") for i, f in enumerate(faces)]
    for face, ref in zip(faces[:20], refs[:20], strict=True):
        stored = ref.to_bytes() + ref.ciphertext + ref.wrapped_key
        for encoding in (face.astype("<f4").tobytes(), face.astype("<f2").tobytes(),
                         face.astype(">f4").tobytes(),
                         np.round(face * 127).astype(np.int8).tobytes()):
            assert encoding[:16] not in stored
    # the ciphertext read as numbers does not correlate with the embedding
    body = slice(envelope.HEADER_BYTES, envelope.HEADER_BYTES + 128)  # past the clear header
    cipher_vals = np.array([np.frombuffer(r.ciphertext[body], dtype=np.uint8)
                            for r in refs], dtype=np.float64)
    corr = [np.corrcoef(cipher_vals[:, k], faces[:, k])[0, 1] for k in range(128)]
    assert np.max(np.abs(corr)) < 0.35  # 200 samples: noise level ~ 1/sqrt(200)
    # even decrypted, the transformed template is unrelated to the raw embedding
    cos = np.array([np.dot(protector.decrypt_transformed(r), f)
                    for r, f in zip(refs, faces, strict=True)])
    assert abs(cos.mean()) < 0.03 and cos.std() < 0.15


def test_bad_inputs_raise_typed_errors(protector: TemplateProtector) -> None:
    with pytest.raises(InvalidEmbedding):
        protector.enrol(np.zeros(128), "a", "HospitalMSP")
    with pytest.raises(InvalidEmbedding):
        protector.enrol(np.ones(64), "a", "HospitalMSP")
    with pytest.raises(InvalidEmbedding):
        protector.enrol(np.full(128, np.nan), "a", "HospitalMSP")
    with pytest.raises(InvalidHolder):
        protector.enrol(np.ones(128), "", "HospitalMSP")
    with pytest.raises(InvalidKey):
        TemplateProtector(b"short", os.urandom(32))
    with pytest.raises(InvalidKey):
        TemplateProtector(os.urandom(32), b"short")
    with pytest.raises(MalformedReference):
        ProtectedReference.from_bytes(b"{not json")
    with pytest.raises(MalformedReference):
        ProtectedReference.from_bytes(b'{"format_version": 1}')
    with pytest.raises(MalformedReference):
        ProtectedReference.from_bytes(b'{"format_version": [2]}')


def test_kek_rotation_rewraps_without_touching_the_template(rng: np.random.Generator) -> None:
    transform = os.urandom(32)
    old_kek, new_kek = os.urandom(32), os.urandom(32)
    old = TemplateProtector(old_kek, transform)
    face = _face(rng)
    ref = old.enrol(face, "acct", "SchoolMSP")
    moved = old.rewrap(ref, new_kek)
    assert moved.ciphertext == ref.ciphertext and moved.kek_id != ref.kek_id
    new = TemplateProtector(new_kek, transform, registry=old.registry)
    assert new.verify(moved, face, THRESHOLD)[0]
    with pytest.raises(RevokedReference):  # the pre-rotation copy is no longer current
        new.verify(ref, face, THRESHOLD)
    with pytest.raises(WrongKey):
        old.decrypt_transformed(moved)


# --- format 1 (before face_engine.envelope): still read, commitment unchanged -----------
def _legacy_reference(protector: TemplateProtector, kek: bytes, face: np.ndarray,
                      account: str, institution: str) -> ProtectedReference:
    """A reference exactly as the format-1 code wrote it (raw AES-256-GCM, its AAD tags)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from face_engine.protect.keyed_rotation import derive_with, encode_context
    from face_engine.protect.protector import as_unit_vector
    from face_engine.protect.registry import RegistryEntry

    pseudonym = protector.holder_pseudonym(account, institution)
    version = protector.registry.highest_version((pseudonym, institution)) + 1
    seed = derive_with(protector._transform, "rotation", pseudonym, institution, version)
    template = KeyedRotation(seed, 128).apply(as_unit_vector(face, 128)).astype("<f4")
    data_key, nonce, wrap_nonce = AESGCM.generate_key(256), os.urandom(12), os.urandom(12)
    ref = ProtectedReference(
        holder_pseudonym=pseudonym, institution=institution, version=version,
        kek_id=protector.kek_id, salt=os.urandom(16), format_version=1, nonce=nonce,
        ciphertext=AESGCM(data_key).encrypt(nonce, template.tobytes(), encode_context(
            "mip/face-reference/v1", 1, pseudonym, institution, version)),
        wrapped_key=wrap_nonce + AESGCM(kek).encrypt(wrap_nonce, data_key, encode_context(
            "mip/face-reference-key-wrap/v1", 1, pseudonym, institution, version)))
    protector.registry.set_current(ref.slot, RegistryEntry(ref.commitment, version))
    return ref


def test_format_1_reference_still_verifies(rng: np.random.Generator) -> None:
    kek = os.urandom(32)
    protector = TemplateProtector(kek, os.urandom(32))
    face = _face(rng)
    old = _legacy_reference(protector, kek, face, "acct", "HospitalMSP")
    stored = old.to_bytes()
    assert b'"nonce"' in stored and b'"format_version":1' in stored
    parsed = ProtectedReference.from_bytes(stored)
    assert parsed == old and parsed.commitment == old.commitment  # the ledger's value
    assert protector.verify(parsed, face, THRESHOLD, holder_account="acct")[0]
    assert not protector.verify(parsed, _face(rng), THRESHOLD)[0]
    for field in ("nonce", "ciphertext", "wrapped_key"):
        raw = bytearray(getattr(old, field))
        raw[-1] ^= 0x01
        with pytest.raises(TamperedReference):
            protector.decrypt_transformed(dataclasses.replace(old, **{field: bytes(raw)}))
    with pytest.raises(TamperedReference):
        protector.decrypt_transformed(dataclasses.replace(old, version=9))


def test_format_1_reference_is_rewritten_as_format_2(rng: np.random.Generator) -> None:
    kek, new_kek, transform = os.urandom(32), os.urandom(32), os.urandom(32)
    protector = TemplateProtector(kek, transform)
    face = _face(rng)
    old = _legacy_reference(protector, kek, face, "acct", "SchoolMSP")
    moved = protector.rewrap(old, new_kek)
    assert moved.format_version == 2 and moved.nonce == b""
    assert envelope.is_envelope(moved.ciphertext) and envelope.is_envelope(moved.wrapped_key)
    assert b'"nonce"' not in moved.to_bytes()
    rotated = TemplateProtector(new_kek, transform, registry=protector.registry)
    assert rotated.verify(ProtectedReference.from_bytes(moved.to_bytes()), face, THRESHOLD)[0]
    renewed = protector.renew(old, face, "acct")
    assert renewed.format_version == 2 and renewed.version == old.version + 1


def test_new_references_are_format_2(protector: TemplateProtector,
                                     rng: np.random.Generator) -> None:
    ref = protector.enrol(_face(rng), "acct", "HospitalMSP")
    assert ref.format_version == 2 and ref.nonce == b""
    assert envelope.is_envelope(ref.ciphertext) and envelope.is_envelope(ref.wrapped_key)
    assert ProtectedReference.from_bytes(ref.to_bytes()) == ref


def test_held_keys_protect_like_key_bytes(rng: np.random.Generator) -> None:
    """The protector with a KEK and transform key held elsewhere (HeldKey over an AES-GCM,
    a KeyDeriver) enrols and verifies; the same key bytes given directly give the same
    pseudonyms and rotations, so the template opens under either."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from face_engine import envelope
    from face_engine.protect.keyed_rotation import SecretDeriver

    kek, transform = os.urandom(32), os.urandom(32)
    held = TemplateProtector(envelope.HeldKey(AESGCM(kek), b"held", "held-kek"),
                             SecretDeriver(transform))
    face = _face(rng)
    ref = held.enrol(face, "acct", "HospitalMSP")
    assert ref.kek_id == "held-kek"
    assert held.verify(ref, face, THRESHOLD, holder_account="acct")[0]
    assert held.holder_pseudonym("acct", "HospitalMSP") == \
        TemplateProtector(kek, transform).holder_pseudonym("acct", "HospitalMSP")
    with pytest.raises(InvalidKey):
        TemplateProtector("not a key", transform)  # type: ignore[arg-type]


def test_format_1_reference_needs_key_bytes(rng: np.random.Generator) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from face_engine import envelope
    from face_engine.protect.keyed_rotation import SecretDeriver

    kek, transform = os.urandom(32), os.urandom(32)
    protector = TemplateProtector(kek, transform)
    old = _legacy_reference(protector, kek, _face(rng), "acct", "HospitalMSP")
    held = TemplateProtector(envelope.HeldKey(AESGCM(kek), b"held", protector.kek_id),
                             SecretDeriver(transform), registry=protector.registry)
    with pytest.raises(WrongKey, match="format-1"):
        held.decrypt_transformed(old)


def test_open_embedding_gives_back_the_enrolled_embedding(
        protector: TemplateProtector, rng: np.random.Generator) -> None:
    """The enrolling org's portrait (face_engine/portrait.py) carries the embedding a current
    reference was enrolled from: the template with its rotation undone."""
    face = _face(rng)
    ref = protector.enrol(face, "acct", "HospitalMSP")
    opened = protector.open_embedding(ref, "acct")
    unit = face / np.linalg.norm(face)
    assert np.abs(opened - unit).max() < 1e-5
    with pytest.raises(ReferenceMismatch):
        protector.open_embedding(ref, "someone-else")
    protector.renew(ref, face, "acct")
    with pytest.raises(RevokedReference):
        protector.open_embedding(ref, "acct")
