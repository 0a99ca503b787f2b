"""Holders at a desk: the gateway's record of each passport holder, and unlock sessions.

What the gateway stores per holder (table `holders`), nothing of it in clear:

- `wrapped_secret`: the master secret wrapped under the holder's password and a face-factor
  key (gateway/holder/vault.py); neither alone opens it. Version 3 (vault_v3.py) also needs
  this org's and a helper org's OPRF outputs of the password (password_hardening.py), so
  this database and this org's keys alone cannot test a password guess; older versions are
  wrapped again as version 3 at their next successful unlock.
- `face_key_sealed`: that face-factor key, sealed under a key derived from the gateway's
  the key provider's `face-factor` KEK (holder_sealing.py, gateway/core/keys); the gateway
  opens it only after a live face match.
- `state_sealed`: the holder's KYC wallet (link secret, credentials) and account directory,
  sealed under a key derived from the master secret: only an unlocked (level-2) session reads
  it, and nothing stored in clear links a holder's accounts to each other or to the passport.

A desk session (`start_session` -> `unlock`): a staff member of any role starts it and gets a
face challenge; the holder answers it, optionally with the password. A live face matching the
passport's protected reference (enrolled for (passport id, enrolling org), and first checked
against the passport's face commitment on the ledger: 409 `face_reference_mismatch` before
any face work, counted as no failure) gives level 1; with
the right password too, level 2: the master secret is unwrapped into the session, in memory
only, for `UNLOCKED_TTL_S`. Failures say `unlock_failed` and never which factor was wrong;
after `MAX_UNLOCK_FAILURES` within `UNLOCK_FAILURE_WINDOW_S` the passport refuses unlocks
(423 `unlock_locked`) until the window passes. Liveness failures (a bad capture) are not
counted: they are no evidence about the factors. Each unlock reserves an attempt before its
face work (face_attempts.py), counted with the failures in one transaction, so unlocks sent
together never get more than the budget's face and password checks.

Level 3 by vouches: `Passport:Vouch` raises the ledger's level; the holder's wallet gets a
level-3 KYC credential from the enrolling org's issuer at the next level-2 unlock, when the
gateway sees the ledger's level above the wallet's (it cannot issue earlier: the wallet is
sealed under the holder's master secret).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from nacl.public import PrivateKey

from gateway.core.errors import ApiError, Conflict, Forbidden, Gone, Locked, NotFound
from gateway.core.security import StaffMember
from gateway.holder import keys
from gateway.holder.keys import HolderKeyPair
from gateway.kyc.state import holder_from_state, holder_state
from gateway.kyc.wallet import KycHolder

from . import face_attempts
from .face_frames import challenge_frames
from .faces import IssuedChallenge, LiveFace, face_service
from .holder_sealing import (
    FACE_FACTOR_LABEL,
    HOLDER_STATE_LABEL,
    PurposeKey,
    derive_key,
    open_sealed,
    seal,
)
from .password_hardening import Opened, password_hardening

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.holders")

SCHEMA = """
CREATE TABLE IF NOT EXISTS holders (
    passport_id TEXT PRIMARY KEY,
    enrolling_org TEXT NOT NULL,
    status TEXT NOT NULL,
    wrapped_secret TEXT NOT NULL,
    face_key_sealed BLOB NOT NULL,
    state_sealed BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS holder_unlock_failures (
    passport_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS holder_unlock_failures_passport
    ON holder_unlock_failures(passport_id, at);
"""

UNLOCK_PURPOSE = "holder_unlock"
UNLOCKED_TTL_S = 300.0
MAX_UNLOCK_FAILURES = 5
UNLOCK_FAILURE_WINDOW_S = 600.0
HOLDER_STATE_VERSION = 1


# What a holder may still sign for a closed account: closing ended its grants, and these only
# look at or take away what is left (the ledger accepts them on a closed account).
CLOSED_ACCOUNT_ACTIONS = frozenset({"grant.list", "grant.revoke", "access.log",
                                    "credential.erase"})

class UnlockRefused(ApiError):
    """Face or password wrong: deliberately one code for both."""

    status, code = 401, "unlock_failed"


def holder_state_key(master: bytes) -> PurposeKey:
    return derive_key(master, HOLDER_STATE_LABEL)


@dataclass
class AccountEntry:
    """One account in the holder's (encrypted) directory."""

    pseudonym: str
    institution: str
    index: int
    status: str  # "open" or "closed"
    opened: int

    def to_dict(self) -> dict[str, Any]:
        return {"pseudonym": self.pseudonym, "institution": self.institution,
                "index": self.index, "status": self.status, "opened": self.opened}


@dataclass
class HolderState:
    """What only the unlocked holder opens: KYC wallet and account directory."""

    wallet: KycHolder
    kyc_level: int
    kyc_org: str
    accounts: list[AccountEntry] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "version": HOLDER_STATE_VERSION, "wallet": holder_state(self.wallet),
            "kyc_level": self.kyc_level, "kyc_org": self.kyc_org,
            "accounts": [a.to_dict() for a in self.accounts]}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, issuers: dict[str, Any]) -> HolderState:
        data = json.loads(raw)
        return cls(holder_from_state(data["wallet"], issuers), int(data["kyc_level"]),
                   str(data["kyc_org"]), [AccountEntry(**a) for a in data["accounts"]])

    def seal(self, master: bytes, passport_id: str) -> bytes:
        return seal(holder_state_key(master), self.to_bytes(), passport_id.encode())


@dataclass
class HolderRecord:
    passport_id: str
    enrolling_org: str
    wrapped_secret: str
    face_key_sealed: bytes
    state_sealed: bytes


@dataclass(eq=False)
class HolderSession:
    """One holder at a desk. Level 0 until unlocked, 1 with face, 2 with face and password.

    At level 2 it holds the master secret (memory only) and the opened HolderState; `live`
    is the unlock's live face (account opening enrols it as the new account's reference) and
    `face_commitment` the passport's commitment it was matched against.
    """

    session_id: str
    staff: StaffMember
    challenge_id: str
    expires: float
    service: HolderService
    passport_id: str | None = None
    enrolling_org: str | None = None
    level: int = 0
    live: LiveFace | None = field(default=None, repr=False)
    face_commitment: str | None = None
    _master: bytes | None = field(default=None, repr=False)
    _state: HolderState | None = field(default=None, repr=False)

    @property
    def expired(self) -> bool:
        return time.time() > self.expires

    def wipe(self) -> None:
        self._master, self._state, self.live, self.level = None, None, None, 0
        self.face_commitment = None

    def require_level(self, level: int) -> None:
        if self.level < level:
            raise Forbidden(f"this needs a level-{level} holder session (face and password)",
                            code="holder_level_too_low")

    @property
    def master(self) -> bytes:
        self.require_level(2)
        assert self._master is not None
        return self._master

    @property
    def state(self) -> HolderState:
        self.require_level(2)
        assert self._state is not None
        return self._state

    @property
    def pid(self) -> str:
        assert self.passport_id is not None
        return self.passport_id

    def accounts(self) -> list[AccountEntry]:
        """The holder's accounts (open and closed), from the encrypted directory."""
        return list(self.state.accounts)

    def account(self, pseudonym: str) -> AccountEntry:
        for entry in self.state.accounts:
            if entry.pseudonym == pseudonym:
                return entry
        raise NotFound("no such account of this holder", code="account_not_found")

    def account_key(self, pseudonym: str) -> HolderKeyPair:
        entry = self.account(pseudonym)
        return keys.account_key(self.master, entry.institution, entry.index)

    def sign(self, pseudonym: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """A holder request signed by the account's key (as mip_testkit's
        `HolderKey.sign_request`), ready to json.dumps into a transaction argument."""
        entry = self.account(pseudonym)
        if entry.status != "open" and action not in CLOSED_ACCOUNT_ACTIONS:
            raise Conflict("this account is closed", code="account_closed")
        return self.account_key(pseudonym).sign_request(
            action, body, self.service.state.settings.channel)

    def passport_key(self) -> HolderKeyPair:
        return keys.passport_key(self.master)

    def passport_sign(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.passport_key().sign_request(action, body, self.service.state.settings.channel)

    def profile_key(self) -> PrivateKey:
        return keys.profile_key(self.master)

    def save(self) -> None:
        """Seal the (changed) HolderState back into the database."""
        self.service.save_state(self)


class HolderService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        self.db.ensure(face_attempts.SCHEMA)
        self._face_factor_key = PurposeKey(FACE_FACTOR_LABEL, state.keys.kek("face-factor"))
        self._sessions: dict[str, HolderSession] = {}

    # --- the holder table ----------------------------------------------------------------
    def seal_face_key(self, face_key: bytes, passport_id: str) -> bytes:
        return seal(self._face_factor_key, face_key, passport_id.encode())

    def record(self, passport_id: str) -> HolderRecord | None:
        row = self.db.query_one(
            "SELECT * FROM holders WHERE passport_id = ? AND status = 'active'", (passport_id,))
        if row is None:
            return None
        return HolderRecord(row["passport_id"], row["enrolling_org"], row["wrapped_secret"],
                            bytes(row["face_key_sealed"]), bytes(row["state_sealed"]))

    def save_state(self, session: HolderSession) -> None:
        sealed = session.state.seal(session.master, session.pid)
        with self.db.transaction() as conn:
            conn.execute("UPDATE holders SET state_sealed = ? WHERE passport_id = ?",
                         (sealed, session.pid))

    # --- sessions ------------------------------------------------------------------------
    def start_session(self, staff: StaffMember) -> tuple[HolderSession, IssuedChallenge]:
        self._sweep()
        session_id = secrets.token_hex(32)
        challenge = face_service(self.state).issue_challenge(UNLOCK_PURPOSE, session_id)
        session = HolderSession(session_id, staff, challenge.challenge_id,
                                time.time() + self.state.settings.session_ttl_s, self)
        self._sessions[session_id] = session
        return session, challenge

    def session(self, session_id: str) -> HolderSession | None:
        """The live session, or None if unknown; raises Gone if it expired."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expired:
            session.wipe()
            self._sessions.pop(session_id, None)
            raise Gone("the holder session expired; unlock again", code="holder_session_expired")
        return session

    def end_session(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        session.wipe()
        return True

    def end_sessions_of(self, passport_id: str) -> int:
        """End every session unlocked for `passport_id` (e.g. the passport was revoked)."""
        ended = [sid for sid, s in self._sessions.items() if s.passport_id == passport_id]
        for sid in ended:
            self.end_session(sid)
        return len(ended)

    def _sweep(self) -> None:
        for sid, session in list(self._sessions.items()):
            if session.expired:
                session.wipe()
                self._sessions.pop(sid, None)

    # --- unlock --------------------------------------------------------------------------
    def _reserve_attempt(self, passport_id: str) -> int:
        """One of the passport's remaining unlock checks, taken before any face work in the
        transaction that counts its failures and the checks in flight (423 when none is
        left)."""
        now = time.time()
        since = now - UNLOCK_FAILURE_WINDOW_S
        with self.db.transaction() as conn:
            (failures,) = conn.execute(
                "SELECT COUNT(*) FROM holder_unlock_failures WHERE passport_id = ? AND at > ?",
                (passport_id, since)).fetchone()
            taken = failures + face_attempts.in_flight(conn, UNLOCK_PURPOSE, passport_id,
                                                       since)
            if taken < MAX_UNLOCK_FAILURES:
                return face_attempts.reserve(conn, UNLOCK_PURPOSE, passport_id, now, since)
        raise Locked("too many failed unlocks for this passport; try again later",
                     code="unlock_locked")

    def _release_attempt(self, attempt_id: int) -> None:
        with self.db.transaction() as conn:
            face_attempts.release(conn, attempt_id)

    def _fail(self, passport_id: str, attempt_id: int) -> UnlockRefused:
        with self.db.transaction() as conn:
            face_attempts.release(conn, attempt_id)
            conn.execute("DELETE FROM holder_unlock_failures WHERE at <= ?",
                         (time.time() - UNLOCK_FAILURE_WINDOW_S,))
            conn.execute("INSERT INTO holder_unlock_failures (passport_id, at) VALUES (?, ?)",
                         (passport_id, time.time()))
        return UnlockRefused("the face or the password did not match")

    async def unlock(self, session_id: str, passport_id: str, challenge_id: str,
                     frames: list[tuple[bytes, float]], password: str | None) -> HolderSession:
        session = self.session(session_id)
        if session is None:
            raise NotFound("no such holder session", code="holder_session_not_found")
        if session.level > 0:
            raise Conflict("this holder session is already unlocked", code="already_unlocked")
        if challenge_id != session.challenge_id:
            raise NotFound("no such face challenge for this flow", code="challenge_not_found")
        record = self.record(passport_id)
        if record is None:
            raise NotFound("no passport of that id is enrolled at this gateway",
                           code="passport_not_found")
        attempt = self._reserve_attempt(passport_id)
        try:
            return await self._unlock(session, record, challenge_id, frames, password,
                                      attempt)
        finally:
            # Settled already when it failed; otherwise (success, a bad capture, a server
            # fault) released uncounted.
            self._release_attempt(attempt)

    async def _unlock(self, session: HolderSession, record: HolderRecord, challenge_id: str,
                      frames: list[tuple[bytes, float]], password: str | None,
                      attempt: int) -> HolderSession:
        passport_id, session_id = record.passport_id, session.session_id
        ledger = json.loads(await self.state.ledger.carrier(record.enrolling_org).evaluate(
            "Passport:Get", [passport_id]))
        faces = face_service(self.state)
        # Before the challenge is spent: a reference the ledger does not name is never used.
        reference = faces.committed_reference(passport_id, record.enrolling_org,
                                              ledger.get("face_commitment"))
        live = await faces.check_live(challenge_id, UNLOCK_PURPOSE, session_id,
                                      challenge_frames(self.db, challenge_id, frames))
        face_ok = reference is not None and faces.matches(reference, live, passport_id)
        master: bytes | None = None
        opened: Opened | None = None
        hardening = password_hardening(self.state)
        if password is not None:
            face_key = open_sealed(self._face_factor_key, record.face_key_sealed,
                                   passport_id.encode())
            # Runs even when the face failed: the answer's timing must not say which factor
            # was wrong. A version-3 vault asks its helper org first
            # (password_hardening.py); a helper that refuses or is down (423/503) is no
            # evidence about the factors and is not counted here.
            opened = await hardening.unwrap(record.wrapped_secret, password, face_key,
                                            passport_id, record.enrolling_org)
            if not face_ok or opened is None:
                raise self._fail(passport_id, attempt)
            master = opened.master
        elif not face_ok:
            raise self._fail(passport_id, attempt)
        # Said only once both factors matched: the status is no hint to a stranger.
        if ledger.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        session.passport_id, session.enrolling_org = passport_id, record.enrolling_org
        session.live, session.level = live, 1
        session.face_commitment = ledger.get("face_commitment")
        if master is not None:
            from .kyc import kyc_service

            kyc = kyc_service(self.state)
            state = HolderState.from_bytes(
                open_sealed(holder_state_key(master), record.state_sealed, passport_id.encode()),
                await anyio.to_thread.run_sync(kyc.issuers_by_cred_def))
            session._master, session._state, session.level = master, state, 2
            ledger_level = int(ledger.get("kyc_level", 0))
            if ledger_level > state.kyc_level:
                # Vouched up to level 3 since the last unlock: a new credential (a fresh wallet
                # entry replaces the old one of the same issuer).
                await kyc.issue(record.enrolling_org, state.wallet, ledger_level, passport_id)
                state.kyc_level = ledger_level
                self.save_state(session)
        session.expires = time.time() + UNLOCKED_TTL_S
        upgraded: str | None = None
        if opened is not None:
            # Only now that both factors matched: the helper's confirmation, or an older
            # vault's upgrade to version 3 (password_hardening.py).
            assert password is not None
            upgraded = await hardening.settle(opened, password, face_key, passport_id,
                                              record.enrolling_org)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM holder_unlock_failures WHERE passport_id = ?",
                         (passport_id,))
            if upgraded is not None:
                # An older vault opened: from now on it is version 3 (the same factors).
                conn.execute("UPDATE holders SET wrapped_secret = ? WHERE passport_id = ? AND "
                             "wrapped_secret = ?", (upgraded, passport_id,
                                                    record.wrapped_secret))
        log.info("holder session unlocked at level %d", session.level)
        return session


def holder_service(state: AppState) -> HolderService:
    return state.service("holders", HolderService)
