"""The envelope module every sealing place uses, and its legacy (read-only) path."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from face_engine import envelope, envelope_legacy
from face_engine.envelope import Key

PURPOSE = "mip/test/record"


def test_round_trip_and_format() -> None:
    key = Key.generate()
    blob = key.seal(b"secret bytes", purpose=PURPOSE, context=b"row-1")
    assert key.open(blob, purpose=PURPOSE, context=b"row-1") == b"secret bytes"
    assert blob[0] == envelope.VERSION == 2
    assert blob[1:5] == envelope.purpose_id(PURPOSE)
    assert blob[5:9] == key.key_id
    assert len(blob) == len(b"secret bytes") + envelope.OVERHEAD
    assert b"secret bytes" not in blob
    assert envelope.is_envelope(blob)


def test_fresh_nonce_per_seal() -> None:
    key = Key.generate()
    one, two = (key.seal(b"same", purpose=PURPOSE) for _ in range(2))
    assert one != two
    assert one[9:21] != two[9:21]


@pytest.mark.parametrize("position", [0, 1, 5, 9, 21, -1])
def test_any_altered_byte_is_refused(position: int) -> None:
    key = Key.generate()
    blob = bytearray(key.seal(b"payload", purpose=PURPOSE, context=b"ctx"))
    blob[position] ^= 0x01
    with pytest.raises(envelope.EnvelopeError):
        key.open(bytes(blob), purpose=PURPOSE, context=b"ctx")


def test_body_tamper_is_typed() -> None:
    key = Key.generate()
    blob = bytearray(key.seal(b"payload", purpose=PURPOSE))
    blob[-1] ^= 0x80
    with pytest.raises(envelope.Tampered):
        key.open(bytes(blob), purpose=PURPOSE)


def test_wrong_key() -> None:
    blob = Key.generate().seal(b"payload", purpose=PURPOSE)
    with pytest.raises(envelope.WrongKey):
        Key.generate().open(blob, purpose=PURPOSE)


def test_wrong_purpose() -> None:
    key = Key.generate()
    blob = key.seal(b"payload", purpose=PURPOSE)
    with pytest.raises(envelope.WrongPurpose):
        key.open(blob, purpose="mip/test/other")


def test_forged_purpose_id_still_fails() -> None:
    """Rewriting the header's purpose id does not make a blob open for another purpose:
    the purpose label itself is in the associated data."""
    key = Key.generate()
    blob = key.seal(b"payload", purpose=PURPOSE)
    forged = blob[:1] + envelope.purpose_id("mip/test/other") + blob[5:]
    with pytest.raises(envelope.Tampered):
        key.open(forged, purpose="mip/test/other")


def test_wrong_context() -> None:
    key = Key.generate()
    blob = key.seal(b"payload", purpose=PURPOSE, context=b"passport-A")
    with pytest.raises(envelope.Tampered):
        key.open(blob, purpose=PURPOSE, context=b"passport-B")
    with pytest.raises(envelope.Tampered):
        key.open(blob, purpose=PURPOSE)


@pytest.mark.parametrize("blob", [b"", b"\x02" * (envelope.OVERHEAD - 1),
                                  b"\x01" + bytes(envelope.OVERHEAD)])
def test_malformed(blob: bytes) -> None:
    with pytest.raises(envelope.MalformedEnvelope):
        Key.generate().open(blob, purpose=PURPOSE)


def test_key_wrapping() -> None:
    kek, data_key = Key.generate(), Key.generate()
    wrapped = kek.wrap(data_key, purpose="mip/test/key-wrap", context=b"slot")
    assert data_key.raw_bytes() not in wrapped
    assert kek.unwrap(wrapped, purpose="mip/test/key-wrap", context=b"slot") == data_key
    with pytest.raises(envelope.WrongKey):
        Key.generate().unwrap(wrapped, purpose="mip/test/key-wrap", context=b"slot")
    with pytest.raises(envelope.Tampered):
        kek.unwrap(wrapped, purpose="mip/test/key-wrap", context=b"other slot")


def test_derive_separates_labels() -> None:
    root = os.urandom(32)
    one, same, other = (Key.derive(root, b"label-a"), Key.derive(root, b"label-a"),
                        Key.derive(root, b"label-b"))
    assert one == same and one != other
    with pytest.raises(envelope.InvalidKey):
        Key.derive(b"short", b"label-a")


# Named ids: random bytes in an id differ between pytest-xdist workers, which then refuse
# to run (each must collect the same tests).
@pytest.mark.parametrize("raw", [b"", os.urandom(16), os.urandom(33), "x" * 32],
                         ids=["empty", "16-bytes", "33-bytes", "str-32"])
def test_bad_key_bytes(raw: object) -> None:
    with pytest.raises(envelope.InvalidKey):
        Key(raw)  # type: ignore[arg-type]


def test_bad_purpose_or_context() -> None:
    key = Key.generate()
    with pytest.raises(envelope.InvalidKey):
        key.seal(b"x", purpose="")
    with pytest.raises(envelope.InvalidKey):
        key.seal(b"x", purpose=PURPOSE, context="text")  # type: ignore[arg-type]


def test_repr_hides_key() -> None:
    key = Key.generate()
    assert key.raw_bytes().hex() not in repr(key)
    assert key.key_id.hex() in repr(key)


# --- legacy formats: read, never written ---------------------------------------------------
def test_legacy_aes_gcm_reads_old_blobs() -> None:
    raw, nonce = os.urandom(32), os.urandom(12)
    old = AESGCM(raw).encrypt(nonce, b"old data", b"aad")
    assert envelope_legacy.open_aes_gcm(raw, nonce, old, b"aad") == b"old data"
    assert envelope_legacy.open_aes_gcm_prefixed(raw, nonce + old, b"aad") == b"old data"
    with pytest.raises(envelope.Tampered):
        envelope_legacy.open_aes_gcm(raw, nonce, old, b"other aad")
    with pytest.raises(envelope.Tampered):
        envelope_legacy.open_aes_gcm(os.urandom(32), nonce, old, b"aad")
    with pytest.raises(envelope.Tampered):
        envelope_legacy.open_aes_gcm_prefixed(raw, b"short", b"aad")


def test_legacy_xchacha_reads_old_blobs() -> None:
    raw, nonce = os.urandom(32), os.urandom(24)
    old = crypto_aead_xchacha20poly1305_ietf_encrypt(b"old data", b"aad", nonce, raw)
    assert envelope_legacy.open_xchacha20poly1305(raw, nonce, old, b"aad") == b"old data"
    with pytest.raises(envelope.Tampered):
        envelope_legacy.open_xchacha20poly1305(raw, nonce, old, b"other aad")
    with pytest.raises(envelope.Tampered):
        envelope_legacy.open_xchacha20poly1305(raw, nonce[:12], old, b"aad")


def test_held_key_seals_in_the_same_format_through_any_aead() -> None:
    """A HeldKey runs the envelope over an AES-GCM it does not hold the key of (a PKCS#11
    token's); the purpose, context and key-id checks are the same as a Key's."""
    raw = os.urandom(32)
    held = envelope.HeldKey(AESGCM(raw), b"\x01\x02\x03\x04", "0102030405060708")
    assert held.fingerprint == "0102030405060708" and raw.hex() not in repr(held)
    blob = held.seal(b"secret", purpose="p", context=b"row")
    assert envelope.is_envelope(blob) and blob[5:9] == b"\x01\x02\x03\x04"
    assert held.open(blob, purpose="p", context=b"row") == b"secret"
    with pytest.raises(envelope.WrongPurpose):
        held.open(blob, purpose="q", context=b"row")
    with pytest.raises(envelope.Tampered):
        held.open(blob, purpose="p", context=b"other row")
    other = envelope.HeldKey(AESGCM(raw), b"\x09\x09\x09\x09", "09")
    with pytest.raises(envelope.WrongKey):
        other.open(blob, purpose="p", context=b"row")
    data_key = Key.generate()
    assert held.unwrap(held.wrap(data_key, purpose="dk"), purpose="dk") == data_key
    with pytest.raises(envelope.InvalidKey):
        envelope.HeldKey(AESGCM(raw), b"\x01", "01")


def test_key_fingerprint_is_the_stored_kek_id() -> None:
    import hashlib
    import hmac

    raw = os.urandom(32)
    assert Key(raw).fingerprint == hmac.new(raw, b"mip/kek-id/v1",
                                            hashlib.sha256).hexdigest()[:16]
