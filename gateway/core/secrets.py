"""The development key provider's secrets (gateway/core/keys/file_provider.py), generated at
first start, never committed, never logged. Production keeps the same keys in a PKCS#11
token instead (gateway/core/keys/pkcs11_provider.py); `mip serve` accepts this file only in
development mode.

- `face_kek`, `face_transform_key`: face_engine's template protection (docs/face.md 4.2).
- `face_factor_kek`: wraps each holder's face-factor key, which the gateway releases only
  after a live face match; alone it opens nothing (a holder's master secret also needs the
  password, gateway/holder/vault.py).
- `counter_key_seed`: nothing derived from it is on the ledger but the pharmacy counters'
  public keys.
- `linkage_key_seed`: each org's X25519 linkage verifier key is derived from it
  (gateway/services/linkage.py); only the public halves go on the ledger. Whoever holds it
  can check, and forge, linkage proofs designated to this gateway's orgs.
- `portrait_key_seed`: each org's portrait signing (Ed25519) and sealing (X25519) keys are
  derived from it (gateway/services/portrait_keys.py); only the public halves go on the
  ledger. Whoever holds it can sign portraits as this gateway's orgs and open portraits
  sealed to them.
- `password_oprf_seed`: each org's per-vault OPRF keys for the vault's password hardening
  are derived from it (gateway/services/password_oprf.py). Whoever holds it answers that
  org's OPRF queries without its rate limit, so it is half of what an offline guess needs.

They can be injected (`MIP_FACE_KEK` and `MIP_FACE_TRANSFORM_KEY` as face_engine reads them,
the others likewise as `MIP_FACE_FACTOR_KEK`, `MIP_COUNTER_KEY_SEED`, `MIP_LINKAGE_KEY_SEED`,
`MIP_PORTRAIT_KEY_SEED`, `MIP_PASSWORD_OPRF_SEED`);
for devnet and the demo they are generated into `<data_dir>/secrets.json` with mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from face_engine.protect.keys import decode_key
from gateway.core.config import ConfigError

_NAMES = ("face_kek", "face_transform_key", "face_factor_kek", "counter_key_seed",
          "linkage_key_seed", "portrait_key_seed", "password_oprf_seed")
# Secrets introduced after data dirs already existed: an existing file without one gains it.
# Any other name missing from an existing file means the file is damaged or not this
# database's (a fresh face KEK would strand every protected face reference), so it is
# refused like a missing file.
_ADDED_LATER = frozenset({"counter_key_seed", "linkage_key_seed", "portrait_key_seed",
                          "password_oprf_seed"})


@dataclass(frozen=True)
class GatewaySecrets:
    face_kek: bytes
    face_transform_key: bytes
    face_factor_kek: bytes
    counter_key_seed: bytes
    linkage_key_seed: bytes
    portrait_key_seed: bytes
    password_oprf_seed: bytes

    def __repr__(self) -> str:
        return "GatewaySecrets(<withheld>)"


def _env_name(name: str) -> str:
    return "MIP_" + name.upper()


class DataDirMismatch(ConfigError):
    """The data dir holds the gateway's database without its secrets, or the reverse."""


def check_data_dir(database: Path, path: Path) -> None:
    """Refuse a data dir holding one of the database and the secrets it was made under but
    not the other, before either is created.

    The database's protected face references, sealed holder state and counter and linkage
    keys are only usable under the secrets they were made with: generating fresh secrets
    beside an old database (a wrong or moved data_dir, a lost secrets file) would silently
    strand every holder. Secrets without their database mean the database is gone or
    elsewhere. Either way a person must look; nothing is created.

    A secrets file that lacks only secrets added later (`_ADDED_LATER`: one written before
    they existed) is completed by `load_or_create_secrets`; one that lacks any other is
    refused there."""
    unset = [n for n in _NAMES if not os.environ.get(_env_name(n))]
    if database.exists() and not path.exists() and unset:
        names = ", ".join(_env_name(n) for n in unset)
        raise DataDirMismatch(
            f"{database} exists but its secrets do not ({path} is missing and {names} "
            f"{'is' if len(unset) == 1 else 'are'} not set): refusing to generate fresh "
            "secrets beside a database made under other ones. Restore the secrets file "
            "(or set the variables), or point data_dir at the folder that holds both")
    if path.exists() and not database.exists():
        raise DataDirMismatch(
            f"{path} exists but the database {database} does not: refusing to start a new "
            "database under old secrets. Restore the database, or point data_dir at the "
            "folder that holds both (move the secrets file away to start afresh)")


def load_or_create_secrets(path: Path) -> GatewaySecrets:
    """Secrets from the environment where set, else from `path` (created if absent)."""
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    missing = [n for n in _NAMES if n not in stored and not os.environ.get(_env_name(n))]
    damaged = [n for n in missing if stored and n not in _ADDED_LATER]
    if damaged:
        names = ", ".join(_env_name(n) for n in damaged)
        raise DataDirMismatch(
            f"{path} lacks {names}, which every secrets file has had from the start: "
            "refusing to generate a fresh one beside data sealed under the lost one. "
            "Restore the secrets file (or set the variables)")
    if missing:
        for name in missing:
            stored[name] = secrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Created 0600 from the start: never world-readable, not even for an instant.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stored, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    values = {n: decode_key(os.environ.get(_env_name(n)) or stored[n], _env_name(n))
              for n in _NAMES}
    return GatewaySecrets(**values)
