"""The profile's cryptography: per-record data keys, AEAD with bound context, sealed envelopes.

* Each record has its own random data key (`face_engine.envelope.Key`). The record's data
  and its metadata are sealed separately with `face_engine.envelope` (AES-256-GCM, purpose
  "profile record"), each with a context naming the record id, the owner's key id, kind,
  source, creation time and which part it is, so the store's operator cannot move a
  ciphertext to another record, owner or label unnoticed. The envelope carries its own
  nonce; the store's `nonce` columns are empty for such rows.
* The data key reaches each reader in a key envelope: a libsodium sealed box to the reader's
  X25519 public key (anonymous sender; X25519 + XSalsa20-Poly1305 with an ephemeral key). That
  is public-key encryption, which `face_engine.envelope` (symmetric) does not do; libsodium's
  sealed box is the well-kept construction for it. A sealed box does not say who sealed it,
  which is why authenticity comes from the AEAD: a substituted key envelope yields a key that
  fails to open the record's ciphertext.

Rows written before the envelope module (a 24-byte nonce column, XChaCha20-Poly1305 under
the same data key and associated data) still open through `face_engine.envelope_legacy`;
`unshare` re-keys a record and so rewrites it as envelopes.
"""

from __future__ import annotations

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from chaincode.protocol.canonical import canonical_json
from face_engine import envelope, envelope_legacy
from gateway.profile.errors import RecordCorrupt

DATA_KEY_BYTES = envelope.KEY_BYTES
RECORD_PURPOSE = "mip/profile/record"
LEGACY_NONCE_BYTES = envelope_legacy.XCHACHA_NONCE_BYTES
_AAD_DOMAIN = b"MIP-PROFILE-RECORD-V1\n"


def new_data_key() -> envelope.Key:
    return envelope.Key.generate()


def record_aad(record_id: str, owner: str, kind: str, source: str, created: int,
               part: str) -> bytes:
    """The context binding one ciphertext (`part` "data" or "meta") to its record."""
    return _AAD_DOMAIN + canonical_json({
        "record": record_id, "owner": owner, "kind": kind, "source": source,
        "created": created, "part": part,
    })


def encrypt(data_key: envelope.Key, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce column, ciphertext) of `plaintext` under `data_key`: the nonce column is empty,
    the ciphertext an envelope."""
    return b"", data_key.seal(plaintext, purpose=RECORD_PURPOSE, context=aad)


def decrypt(data_key: envelope.Key, nonce: bytes, ciphertext: bytes, aad: bytes,
            record_id: str) -> bytes:
    try:
        if nonce == b"":
            return data_key.open(ciphertext, purpose=RECORD_PURPOSE, context=aad)
        if len(nonce) == LEGACY_NONCE_BYTES:
            return envelope_legacy.open_xchacha20poly1305(data_key.raw_bytes(), nonce,
                                                          ciphertext, aad)
    except envelope.EnvelopeError:
        pass
    raise RecordCorrupt(f"record {record_id} fails authentication")


def seal_key(data_key: envelope.Key, recipient: PublicKey) -> bytes:
    return SealedBox(recipient).encrypt(data_key.raw_bytes())


def open_key(sealed: bytes, recipient: PrivateKey, record_id: str) -> envelope.Key:
    try:
        data_key = SealedBox(recipient).decrypt(sealed)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        raise RecordCorrupt(f"the key envelope of record {record_id} does not open") from None
    if len(data_key) != DATA_KEY_BYTES:
        raise RecordCorrupt(f"the key envelope of record {record_id} is malformed")
    return envelope.Key(data_key)
