"""The helper org's side of the vault's password hardening: its OPRF keys and the counted,
per-passport evaluation service (`POST /api/v1/oprf/evaluations`).

Keys. Each org's OPRF key for a vault is RFC 9497 DeriveKeyPair of a seed that the key
provider's `password-oprf` derivation key expands (HKDF-Expand; inside the token under
PKCS#11, like the other derivation keys) for (org, passport id, vault salt). A key per salt
matters: an evaluation asked for a made-up salt is worth nothing against the real vault, so
the only answers that help a guesser are for the real salt, and those are the counted ones.

Counting. Every evaluation for a passport counts as a failed guess until the enrolling org
shows the vault's confirm token for that (passport, salt) (vault_v3.py: derived from the
unwrapping key material, so only a caller that opened the vault has it); the first token
shown for a (passport, salt) is kept (as SHA-256, bound to the org that showed it: enrolment
is that first use), later ones must equal it. A confirmation clears the unconfirmed
evaluations of that salt. With `MAX_OPRF_FAILURES` unconfirmed evaluations within
`OPRF_FAILURE_WINDOW_S` the passport is locked here: 423 `oprf_locked`, until the oldest age
out. Nothing the caller reports can lower the count without the token, so an enrolling org
that wants to guess offline gets at most that many answers per window.

What this org learns: that the passport's holder is unlocking (or someone is guessing) at
the calling org, and when; the blinded element is a uniformly random group element to it,
so nothing about the password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.encoding import b64
from chaincode.protocol.orgs import MEMBER_ORGS
from gateway.core.errors import Conflict, Forbidden, InvalidRequest, Locked, NotFound
from gateway.core.keys import KeyProvider
from gateway.holder import oprf
from gateway.holder.vault_v3 import CONFIRM_BYTES, SALT_BYTES

from .peer_requests import peer_requests

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.password_oprf")

SCHEMA = """
CREATE TABLE IF NOT EXISTS oprf_evaluations (
    evaluation_id TEXT PRIMARY KEY,
    helper_org TEXT NOT NULL,
    caller_org TEXT NOT NULL,
    passport_id TEXT NOT NULL,
    salt TEXT NOT NULL,
    at REAL NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS oprf_evaluations_passport
    ON oprf_evaluations(helper_org, passport_id, at);
CREATE TABLE IF NOT EXISTS oprf_verifiers (
    helper_org TEXT NOT NULL,
    passport_id TEXT NOT NULL,
    salt TEXT NOT NULL,
    caller_org TEXT NOT NULL,
    verifier BLOB NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (helper_org, passport_id, salt)
);
"""

MAX_OPRF_FAILURES = 10
OPRF_FAILURE_WINDOW_S = 24 * 3600.0
_SEED_INFO = b"MIP-PASSWORD-OPRF-KEY-V1\x00"
_DERIVE_INFO = b"MIP-PASSWORD-OPRF-V1"
MAX_PASSPORT_ID_CHARS = 128


class OprfLocked(Locked):
    """Too many unconfirmed evaluations for this passport at this helper."""

    code = "oprf_locked"


class BadOprfRequest(InvalidRequest):
    code = "invalid_oprf_request"


class ConfirmationRefused(Forbidden):
    code = "oprf_confirmation_refused"


class OprfNotServed(Conflict):
    """An all-orgs gateway answers other orgs' gateways for no org (it helps in process)."""

    code = "oprf_not_served"


@dataclass(frozen=True)
class Evaluation:
    evaluation_id: str
    element: bytes
    remaining: int


def org_key(keys: KeyProvider, org: str, passport_id: str, salt: bytes) -> bytes:
    """`org`'s OPRF private scalar for one vault (passport id, salt)."""
    seed = keys.deriver("password-oprf").expand(
        _SEED_INFO + canonical_json({"org": org, "passport_id": passport_id,
                                     "salt": b64(salt)}), 32)
    return oprf.derive_key_pair(seed, _DERIVE_INFO)[0]


def own_output(keys: KeyProvider, org: str, passport_id: str, salt: bytes,
               data: bytes) -> bytes:
    """The enrolling org's own OPRF output: it holds the key, so no blinding is needed."""
    return oprf.evaluate_unblinded(org_key(keys, org, passport_id, salt), data)


def check_vault_ref(passport_id: object, salt: object) -> tuple[str, bytes]:
    if not isinstance(passport_id, str) or not 0 < len(passport_id) <= MAX_PASSPORT_ID_CHARS:
        raise BadOprfRequest("passport_id must be 1 to 128 characters")
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise BadOprfRequest(f"salt must be {SALT_BYTES} bytes")
    return passport_id, salt


class PasswordOprfService:
    """Evaluations this gateway answers as a helper org, counted per passport."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)

    # --- who is calling ------------------------------------------------------------------
    def own_org(self) -> str:
        org = self.state.settings.org
        if org is None:
            raise OprfNotServed("this gateway serves every org: it answers no other gateway")
        return org

    def authenticate(self, headers: Mapping[str, str], method: str, path: str,
                     body: bytes) -> str:
        """The calling org, once its gateway's signed request passes (peer_requests.py)."""
        return peer_requests(self.state).authenticate(self.own_org(), headers, method, path,
                                                      body)

    # --- evaluate ------------------------------------------------------------------------
    def evaluate(self, caller: str, helper: str, passport_id: str, salt: bytes,
                 blinded_element: bytes) -> Evaluation:
        """`helper`'s key applied to the blinded element, counted against the passport."""
        if caller not in MEMBER_ORGS or helper not in MEMBER_ORGS or caller == helper:
            raise BadOprfRequest("the caller must be another member org")
        passport_id, salt = check_vault_ref(passport_id, salt)
        key = org_key(self.state.keys, helper, passport_id, salt)
        try:
            element = oprf.evaluate(key, blinded_element)  # checks the element first
        except oprf.OprfError:
            raise BadOprfRequest("blinded_element is not a valid ristretto255 element") \
                from None
        now = time.time()
        evaluation_id = secrets.token_urlsafe(16)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM oprf_evaluations WHERE at <= ?",
                         (now - OPRF_FAILURE_WINDOW_S,))
            (pending,) = conn.execute(
                "SELECT COUNT(*) FROM oprf_evaluations WHERE helper_org = ? AND passport_id = ? "
                "AND confirmed = 0 AND at > ?",
                (helper, passport_id, now - OPRF_FAILURE_WINDOW_S)).fetchone()
            if pending >= MAX_OPRF_FAILURES:
                raise OprfLocked(f"too many unconfirmed password checks for this passport at "
                                 f"{helper}; try again later")
            conn.execute(
                "INSERT INTO oprf_evaluations (evaluation_id, helper_org, caller_org, "
                "passport_id, salt, at) VALUES (?, ?, ?, ?, ?, ?)",
                (evaluation_id, helper, caller, passport_id, b64(salt), now))
        log.info("password OPRF evaluated for %s (%d left)", caller,
                 MAX_OPRF_FAILURES - pending - 1)
        return Evaluation(evaluation_id, element, MAX_OPRF_FAILURES - pending - 1)

    def confirm(self, caller: str, helper: str, evaluation_id: str, token: bytes) -> None:
        """The vault opened: stop counting that salt's evaluations, given its confirm token."""
        if not isinstance(token, bytes) or len(token) != CONFIRM_BYTES:
            raise BadOprfRequest(f"token must be {CONFIRM_BYTES} bytes")
        row = self.db.query_one(
            "SELECT passport_id, salt, caller_org FROM oprf_evaluations WHERE evaluation_id = ? "
            "AND helper_org = ?", (evaluation_id, helper))
        if row is None or row["caller_org"] != caller:
            raise NotFound("no such evaluation of this caller", code="oprf_evaluation_not_found")
        digest = hashlib.sha256(token).digest()
        now = time.time()
        with self.db.transaction() as conn:
            stored = conn.execute(
                "SELECT verifier, caller_org FROM oprf_verifiers WHERE helper_org = ? AND "
                "passport_id = ? AND salt = ?", (helper, row["passport_id"], row["salt"])
            ).fetchone()
            if stored is None:
                conn.execute(
                    "INSERT INTO oprf_verifiers (helper_org, passport_id, salt, caller_org, "
                    "verifier, at) VALUES (?, ?, ?, ?, ?, ?)",
                    (helper, row["passport_id"], row["salt"], caller, digest, now))
            elif stored["caller_org"] != caller \
                    or not hmac.compare_digest(bytes(stored["verifier"]), digest):
                raise ConfirmationRefused("that is not this vault's confirm token")
            conn.execute(
                "UPDATE oprf_evaluations SET confirmed = 1 WHERE helper_org = ? AND "
                "passport_id = ? AND salt = ?", (helper, row["passport_id"], row["salt"]))

    def pending(self, helper: str, passport_id: str) -> int:
        """Unconfirmed evaluations for the passport within the window (tests, operators)."""
        row = self.db.query_one(
            "SELECT COUNT(*) AS n FROM oprf_evaluations WHERE helper_org = ? AND passport_id = ? "
            "AND confirmed = 0 AND at > ?",
            (helper, passport_id, time.time() - OPRF_FAILURE_WINDOW_S))
        return int(row["n"]) if row is not None else 0


def password_oprf_service(state: AppState) -> PasswordOprfService:
    return state.service("password_oprf", PasswordOprfService)

