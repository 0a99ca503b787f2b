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
only, for `UNLOCKED_TTL_S`. Failures say `unlock_failed` and never which factor was wrong.
Failures are counted per (passport, desk): the staff member who started the session
(face_lockouts.py). After `MAX_UNLOCK_FAILURES` within `UNLOCK_FAILURE_WINDOW_S` that desk
refuses unlocks of the passport (423 `unlock_locked`, `retry_after_s`) for
`UNLOCK_LOCKOUT_S`, doubled at each further lock up to `UNLOCK_LOCKOUT_MAX_S`; a success
there clears it. Other desks are not locked, so no one staff member with a passport id can
lock the holder out, and the holder can always unlock with face and password once the
backoff has passed. A face that did not perform the challenge counts too; a bad capture
(no face, two faces, an unreadable image, frames out of protocol), a late answer and a
stored reference the ledger does not name are not counted: they are no evidence about the
person (face_refusals.py). Each
unlock reserves an attempt before its face work, counted with the failures in one
transaction, so unlocks sent together never get more than the budget's face and password
checks.

A session is bound to its desk: the staff token that started it (`Desk`, core/security.py:
the member and the token's digest). Every later request naming the session must carry that
same token; a session id with another token (another staff member, another org's, or another
token of the same member) or with none is refused as unknown (404
`holder_session_not_found`, before expiry or level are looked at), so the id alone is no
credential and a refusal does not say whether the session exists. The id travels only in the
`X-MIP-Holder-Session` header, never in a URL (routes/passports.py).

Level 3 by vouches: `Passport:Vouch` raises the ledger's level; the holder's wallet gets a
level-3 KYC credential from the enrolling org's issuer at the next level-2 unlock, when the
gateway sees the ledger's level above the wallet's (it cannot issue earlier: the wallet is
sealed under the holder's master secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from nacl.public import PrivateKey

from face_engine.errors import LivenessFailed
from gateway.core.errors import ApiError, Conflict, Forbidden, Gone, NotFound
from gateway.core.security import Desk, StaffMember
from gateway.holder import keys
from gateway.holder.keys import HolderKeyPair
from gateway.kyc.state import holder_from_state, holder_state
from gateway.kyc.wallet import KycHolder

from .face_frames import challenge_frames
from .face_lockouts import FaceLockouts, LockoutPolicy, source_of
from .face_refusals import counts
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
    from face_engine.protect.reference import ProtectedReference

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
-- Per-passport counts of earlier versions: the lockout is per (passport, desk) now.
DROP TABLE IF EXISTS holder_unlock_failures;
"""

UNLOCK_PURPOSE = "holder_unlock"
# A directory entry for an account another org's desk is opening (custody.py): it holds its
# key index until the ledger shows the account (then "open").
PENDING = "pending"
# A directory entry whose account the holder moved to their device (key_moves.py): its key on
# the ledger is the device's, so no session signs for it again.
MOVED = "moved"
UNLOCKED_TTL_S = 300.0
MAX_UNLOCK_FAILURES = 5
UNLOCK_FAILURE_WINDOW_S = 600.0
UNLOCK_LOCKOUT_S = 600.0
UNLOCK_LOCKOUT_MAX_S = 86400.0
UNLOCK_POLICY = LockoutPolicy(MAX_UNLOCK_FAILURES, UNLOCK_FAILURE_WINDOW_S, UNLOCK_LOCKOUT_S,
                              UNLOCK_LOCKOUT_MAX_S)
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
    status: str  # "open", "closed" or "moved" (key_moves.py)
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
    # Account openings begun and not yet brought to their outcome (account_openings.py).
    openings: list[dict[str, Any]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "version": HOLDER_STATE_VERSION, "wallet": holder_state(self.wallet),
            "kyc_level": self.kyc_level, "kyc_org": self.kyc_org,
            "accounts": [a.to_dict() for a in self.accounts],
            "openings": self.openings}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, issuers: dict[str, Any]) -> HolderState:
        data = json.loads(raw)
        return cls(holder_from_state(data["wallet"], issuers), int(data["kyc_level"]),
                   str(data["kyc_org"]), [AccountEntry(**a) for a in data["accounts"]],
                   list(data.get("openings", [])))

    def seal(self, master: bytes, passport_id: str) -> bytes:
        return seal(holder_state_key(master), self.to_bytes(), passport_id.encode())


def challenge_subject(session_id: str) -> str:
    """What the session's face challenge is bound to in the database (face_challenges): a
    digest, so the stored row does not carry the session id."""
    return hashlib.sha256(b"mip/holder-session/" + session_id.encode()).hexdigest()


@dataclass
class HolderRecord:
    passport_id: str
    enrolling_org: str
    wrapped_secret: str
    face_key_sealed: bytes
    state_sealed: bytes


class UnlockedSecrets:
    """What an unlocked holder session holds (at a desk here, or for another org's desk:
    custody.py): the master secret and the opened state, reachable only at level 2."""

    level: int
    _master: bytes | None
    _state: HolderState | None

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


@dataclass(eq=False)
class HolderSession(UnlockedSecrets):
    """One holder at a desk. Level 0 until unlocked, 1 with face, 2 with face and password.

    At level 2 it holds the master secret (memory only) and the opened HolderState; `live`
    is the unlock's live face (account opening enrols it as the new account's reference) and
    `face_commitment` the passport's commitment it was matched against.
    """

    session_id: str = field(repr=False)  # a desk's handle: never in a repr, log or error
    staff: StaffMember
    challenge_id: str
    expires: float
    service: HolderService
    # sha256 of the staff token that started it (Desk): the only token it answers to.
    desk_digest: str = field(repr=False)
    passport_id: str | None = None
    enrolling_org: str | None = None
    level: int = 0
    live: LiveFace | None = field(default=None, repr=False)
    face_commitment: str | None = None
    _master: bytes | None = field(default=None, repr=False)
    _state: HolderState | None = field(default=None, repr=False)
    # Account terms handed to the holder's device to sign (services/device_accounts.py):
    # pseudonym -> (the `account.open` body, its face reference). Memory only, this session.
    device_terms: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict,
                                                                 repr=False)

    @property
    def expired(self) -> bool:
        return time.time() > self.expires

    def started_at(self, desk: Desk) -> bool:
        """Whether `desk` (the request's staff token) is the one that started this session."""
        return desk.staff == self.staff and hmac.compare_digest(desk.token_digest,
                                                                self.desk_digest)

    def wipe(self) -> None:
        self._master, self._state, self.live, self.level = None, None, None, 0
        self.face_commitment = None
        if self.device_terms:
            # Terms never signed: their face references name no account; revoke them.
            faces = face_service(self.service.state)
            for _terms, reference in self.device_terms.values():
                faces.revoke_reference(reference)
        self.device_terms = {}

    @property
    def pid(self) -> str:
        assert self.passport_id is not None
        return self.passport_id

    def accounts(self) -> list[AccountEntry]:
        """The holder's accounts (open and closed), from the encrypted directory (without
        openings another org's desk asked for and the ledger has not yet shown: custody.py)."""
        return [a for a in self.state.accounts if a.status != PENDING]

    def account(self, pseudonym: str) -> AccountEntry:
        for entry in self.state.accounts:
            if entry.pseudonym == pseudonym and entry.status != PENDING:
                return entry
        raise NotFound("no such account of this holder", code="account_not_found")

    def account_key(self, pseudonym: str) -> HolderKeyPair:
        entry = self.account(pseudonym)
        return keys.account_key(self.master, entry.institution, entry.index)

    def sign(self, pseudonym: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """A holder request signed by the account's key (as mip_testkit's
        `HolderKey.sign_request`), ready to json.dumps into a transaction argument."""
        entry = self.account(pseudonym)
        if entry.status == MOVED:
            raise Conflict("this account's key is on the holder's device: sign there",
                           code="account_moved")
        if entry.status != "open" and action not in CLOSED_ACCOUNT_ACTIONS:
            raise Conflict("this account is closed", code="account_closed")
        return self.account_key(pseudonym).sign_request(
            action, body, self.service.state.settings.channel)

    def passport_key(self) -> HolderKeyPair:
        return keys.passport_key(self.master)

    def passport_sign(self, action: str, body: dict[str, Any], *,
                      expires: int | None = None) -> dict[str, Any]:
        return self.passport_key().sign_request(action, body, self.service.state.settings.channel,
                                                expires=expires)

    # What services call, so that a session whose keys another org's gateway holds
    # (custody_client.RemoteHolderSession) serves them the same way.
    async def signed(self, pseudonym: str, action: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
        return self.sign(pseudonym, action, body)

    async def passport_signed(self, action: str, body: dict[str, Any], *,
                              expires: int | None = None) -> dict[str, Any]:
        """`expires` (unix s): a deadline someone else set (a guardian rotation's), else
        now + the default lifetime."""
        return self.passport_sign(action, body, expires=expires)

    async def directory_changed(self, pseudonym: str) -> None:
        """The entry of `pseudonym` changed (the ledger accepted its opening or closing)."""
        self.save()

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
        self.lockouts = FaceLockouts(
            self.db, UNLOCK_PURPOSE, UNLOCK_POLICY, code="unlock_locked",
            message="too many failed unlocks of this passport at this desk; try again later")
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
        self.save_sealed(session.pid, session.master, session.state)

    def save_sealed(self, passport_id: str, master: bytes, state: HolderState) -> None:
        sealed = state.seal(master, passport_id)
        with self.db.transaction() as conn:
            conn.execute("UPDATE holders SET state_sealed = ? WHERE passport_id = ?",
                         (sealed, passport_id))

    # --- sessions ------------------------------------------------------------------------
    def start_session(self, desk: Desk) -> tuple[HolderSession, IssuedChallenge]:
        """A new session bound to `desk` (the staff token that asked for it)."""
        self._sweep()
        session_id = secrets.token_hex(32)
        challenge = face_service(self.state).issue_challenge(UNLOCK_PURPOSE,
                                                             challenge_subject(session_id))
        session = HolderSession(session_id, desk.staff, challenge.challenge_id,
                                time.time() + self.state.settings.session_ttl_s, self,
                                desk.token_digest)
        self._sessions[session_id] = session
        return session, challenge

    def session_at(self, session_id: str | None, desk: Desk | None) -> HolderSession:
        """The live session `session_id` as its own desk asks for it: 404
        `holder_session_not_found` when unknown, when `desk` is None (no valid staff token)
        or is not the desk that started it; only then 410 when expired. Every request that
        names a session comes through here (api/deps.py)."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None or desk is None or not session.started_at(desk):
            # Unknown and someone else's look the same: the id alone tells nothing.
            raise NotFound("no such holder session", code="holder_session_not_found")
        self.session(session.session_id)  # 410 (and wiped) if it expired
        return session

    def session(self, session_id: str) -> HolderSession | None:
        """The live session, or None if unknown; raises Gone if it expired. In-process only
        (no desk check): requests go through `session_at`."""
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
        from .custody import custody_service

        # And those unlocked for other orgs' desks (this gateway being the custodian).
        return len(ended) + custody_service(self.state).end_sessions_of(passport_id)

    def _sweep(self) -> None:
        for sid, session in list(self._sessions.items()):
            if session.expired:
                session.wipe()
                self._sessions.pop(sid, None)

    # --- unlock --------------------------------------------------------------------------
    def _fail(self, passport_id: str, source: str, attempt_id: int) -> UnlockRefused:
        self.lockouts.fail(passport_id, source, attempt_id)
        return UnlockRefused("the face or the password did not match")

    async def unlock(self, session: HolderSession, passport_id: str, challenge_id: str,
                     frames: list[tuple[bytes, float]], password: str | None) -> HolderSession:
        """Unlock `session` (found by `session_at`, so its own desk asks)."""
        if session.level > 0:
            raise Conflict("this holder session is already unlocked", code="already_unlocked")
        if challenge_id != session.challenge_id:
            raise NotFound("no such face challenge for this flow", code="challenge_not_found")
        from .holder_recovery import recovery_service

        # A recovery cut off between the ledger and this store is settled first: the
        # reference and vault read below are then the ones the ledger names.
        await recovery_service(self.state).reconcile(passport_id)
        record = self.record(passport_id)
        if record is None:
            custodian = await self._custodian(passport_id)
            if custodian is None:
                raise NotFound("no passport of that id is enrolled at this gateway",
                               code="passport_not_found")
            return await self._unlock_remote(session, custodian, passport_id, challenge_id,
                                             frames, password)
        source = source_of(session.staff)
        attempt = self.lockouts.reserve(passport_id, source)
        try:
            return await self._unlock(session, record, challenge_id, frames, password,
                                      source, attempt)
        finally:
            # Settled already when it failed or succeeded; otherwise (a bad capture, a
            # server fault) released uncounted.
            self.lockouts.release(attempt)

    async def _unlock(self, session: HolderSession, record: HolderRecord, challenge_id: str,
                      frames: list[tuple[bytes, float]], password: str | None,
                      source: str, attempt: int) -> HolderSession:
        passport_id, subject = record.passport_id, challenge_subject(session.session_id)
        ledger = json.loads(await self.state.ledger.carrier(record.enrolling_org).evaluate(
            "Passport:Get", [passport_id]))
        faces = face_service(self.state)
        # Before the challenge is spent: a reference the ledger does not name is never used.
        reference = faces.committed_reference(passport_id, record.enrolling_org,
                                              ledger.get("face_commitment"))
        try:
            live = await faces.check_live(challenge_id, UNLOCK_PURPOSE, subject,
                                          challenge_frames(self.db, challenge_id, frames))
        except LivenessFailed as exc:
            # A face that did not perform the challenge counts; a bad capture, frames out of
            # protocol or a late answer do not (face_refusals.py). The error is the engine's
            # either way (422 with its code).
            if counts(exc):
                self.lockouts.fail(passport_id, source, attempt)
            raise
        # A helper org that refuses or is down (423/503, password_hardening.py) raises here:
        # no evidence about the factors, so not counted.
        face_ok, opened = await self.check_factors(record, reference, live, password)
        if not face_ok or (password is not None and opened is None):
            raise self._fail(passport_id, source, attempt)
        master = opened.master if opened is not None else None
        # Said only once both factors matched: the status is no hint to a stranger.
        if ledger.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        session.passport_id, session.enrolling_org = passport_id, record.enrolling_org
        session.live, session.level = live, 1
        session.face_commitment = ledger.get("face_commitment")
        if master is not None:
            session._master = master
            session._state, session.level = await self.open_state(record, master, ledger), 2
        session.expires = time.time() + UNLOCKED_TTL_S
        if opened is not None:
            assert password is not None
            await self.settle_unlock(record, opened, password)
        self.lockouts.succeed(passport_id, source, attempt)
        log.info("holder session unlocked at level %d", session.level)
        return session


    # --- a holder enrolled at another org (custody_client.py) ----------------------------
    async def _custodian(self, passport_id: str) -> str | None:
        """The org that enrolled `passport_id` (as this org's own peer reads the ledger),
        when that is another org: it holds the holder's vault. None on an all-orgs gateway,
        or for a passport the ledger does not know."""
        from gateway.core.errors import chaincode_error
        from gateway.fabric import ChaincodeError

        own = self.state.settings.org
        if own is None:
            return None
        try:
            passport = json.loads(await self.state.ledger.carrier(own).evaluate(
                "Passport:Get", [passport_id]))
        except ChaincodeError as exc:
            if chaincode_error(exc).code == "not_found":
                return None
            raise
        org = passport.get("enrolling_org") if isinstance(passport, dict) else None
        return org if isinstance(org, str) and org != own else None

    async def _unlock_remote(self, session: HolderSession, custodian: str, passport_id: str,
                             challenge_id: str, frames: list[tuple[bytes, float]],
                             password: str | None) -> HolderSession:
        """The liveness check here, with this org's face engine; the match and the vault at
        the custodian (custody.py), which counts failures from this org's desks apart."""
        from .custody_client import custody_client, remote_session

        client = custody_client(self.state)
        client.base_url(custodian)  # refused before the challenge is spent if unreachable
        live = await face_service(self.state).check_live(
            challenge_id, UNLOCK_PURPOSE, challenge_subject(session.session_id),
            challenge_frames(self.db, challenge_id, frames))
        answer = await client.unlock(custodian, passport_id, live, password)
        remote = remote_session(session, custodian, passport_id, live, None, answer)
        remote.expires = time.time() + UNLOCKED_TTL_S
        self._sessions[session.session_id] = remote
        log.info("holder session unlocked at level %d by the enrolling org's gateway",
                 remote.level)
        return remote

    async def check_factors(self, record: HolderRecord, reference: ProtectedReference | None,
                            live: LiveFace, password: str | None
                            ) -> tuple[bool, Opened | None]:
        """The 1:1 face decision against the (ledger-checked) reference, and the vault opened
        with the password (None when no password or a wrong one; a version-3 vault asks its
        helper org first, password_hardening.py). Both run whatever the other's outcome: the
        answer's timing must not say which was wrong. Call `settle_unlock` once both
        matched."""
        passport_id = record.passport_id
        face_ok = reference is not None and face_service(self.state).matches(
            reference, live, passport_id)
        if password is None:
            return face_ok, None
        face_key = open_sealed(self._face_factor_key, record.face_key_sealed,
                               passport_id.encode())
        opened = await password_hardening(self.state).unwrap(
            record.wrapped_secret, password, face_key, passport_id, record.enrolling_org,
            face_matched=face_ok)
        return face_ok, opened

    async def settle_unlock(self, record: HolderRecord, opened: Opened, password: str) -> None:
        """Only once both factors matched: the helper's confirmation, or an older vault's
        upgrade to version 3 (password_hardening.py), stored in place of the old one."""
        passport_id = record.passport_id
        face_key = open_sealed(self._face_factor_key, record.face_key_sealed,
                               passport_id.encode())
        upgraded = await password_hardening(self.state).settle(
            opened, password, face_key, passport_id, record.enrolling_org)
        if upgraded is not None:
            with self.db.transaction() as conn:
                conn.execute("UPDATE holders SET wrapped_secret = ? WHERE passport_id = ? AND "
                             "wrapped_secret = ?", (upgraded, passport_id,
                                                    record.wrapped_secret))

    async def open_state(self, record: HolderRecord, master: bytes,
                         ledger: dict[str, Any]) -> HolderState:
        """The holder's wallet and directory, opened with the master secret; a level raised
        by vouches since the last unlock gets its credential now (from the enrolling org's
        issuer: the wallet is sealed under the master secret, so not earlier)."""
        from .kyc import kyc_service

        passport_id = record.passport_id
        kyc = kyc_service(self.state)
        state = HolderState.from_bytes(
            open_sealed(holder_state_key(master), record.state_sealed, passport_id.encode()),
            await anyio.to_thread.run_sync(kyc.issuers_by_cred_def))
        ledger_level = int(ledger.get("kyc_level", 0))
        if ledger_level > state.kyc_level:
            # A fresh wallet entry replaces the old one of the same issuer.
            await kyc.issue(record.enrolling_org, state.wallet, ledger_level, passport_id)
            state.kyc_level = ledger_level
            self.save_sealed(passport_id, master, state)
        return state


def holder_service(state: AppState) -> HolderService:
    return state.service("holders", HolderService)
