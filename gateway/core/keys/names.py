"""The gateway's keys by name: what each one does, and the labels its uses are bound to.

Key-encryption keys (wrap data keys and seal small secrets; `KeyProvider.kek`):

- `face`: wraps each protected face reference's data key and the dedup index's data key
  (face_engine.protect, face_engine.dedup).
- `face-factor`: seals each holder's face-factor key, released only after a live face match.
- `kyc-issuer`: seals each org's anoncreds (CL) issuer private key (gateway/services/kyc.py).

Derivation keys (HKDF-Expand under a held pseudorandom key; `KeyProvider.deriver`):

- `face-transform`: holder pseudonyms, per-reference rotations and the dedup domain.
- `counter`: the pharmacy counter's ECDSA P-256 attestation key.
- `linkage`: each org's X25519 linkage verifier key.
- `portrait`: each org's portrait keys (Ed25519 signing, X25519 sealing;
  gateway/services/portrait_keys.py).
- `password-oprf`: each org's OPRF keys for the vault's password hardening, one per (org,
  passport, vault salt) (gateway/services/password_oprf.py). Not in `STRANDING`: added after
  data dirs existed, so an existing database without it gets one made. Losing it later would
  strand this org's version-3 vaults (holders recover through their guardians) and the
  wraps that name this org as helper (unless the vault has a second wrap, `vault_helpers`);
  a wrong token or prefix is still refused, by the check on the `STRANDING` keys.
"""

from __future__ import annotations

from typing import Literal

KekName = Literal["face", "face-factor", "kyc-issuer"]
DeriverName = Literal["face-transform", "counter", "linkage", "portrait", "password-oprf"]
KEK_NAMES: tuple[KekName, ...] = ("face", "face-factor", "kyc-issuer")
DERIVER_NAMES: tuple[DeriverName, ...] = ("face-transform", "counter", "linkage",
                                          "portrait", "password-oprf")

# Keys whose loss strands stored data (face references, sealed rows): never made afresh
# beside an existing database. The counter, linkage and portrait keys can be made anew (and their
# public halves registered again), as they were added after data dirs existed.
STRANDING: frozenset[str] = frozenset({"face", "face-factor", "kyc-issuer", "face-transform"})

# Purpose labels of the gateway's sealed rows (HKDF info under the file provider's root,
# and the envelope purpose under every provider); one per kind of blob.
FACE_FACTOR_LABEL = b"MIP-gateway-face-factor-key-v1"
KYC_ISSUER_LABEL = b"MIP-gateway-kyc-issuer-v1"
