"""The custodian's side of holders at another org's desk (docs/gateway.md, "Holders at another
org's desk").

A custodial holder's vault (master secret wrapped under password + face-factor key, KYC
wallet, account directory) and passport face reference stay at the gateway of the org that
enrolled them (E). When the holder stands at another member org O's desk, O's gateway reaches
E through this API, each request signed by O's own service identity (gateway/core/
peer_auth.py, checked and its nonce recorded here), carrying the holder's live consent:

- `unlock`: O ran the liveness challenge with its own face engine and sends the live
  embedding (and the password, when typed). E checks the stored reference against the
  ledger's commitment, matches at the 1:1 operating point, unwraps the vault, and keeps a
  custody session in memory for `UNLOCKED_TTL_S`, bound to O. Failures are `unlock_failed`
  and count against a budget of (passport, O): O's staff cannot lock the holder out at E's
  own desk (which keeps its own budget, holders.py) or at a third org.
- relays, each for O's session only and only for what concerns O: the KYC presentation and
  `account.open` signature of a new account AT O (O enrolled its own face reference for it
  and carries `Account:Open` with its own identity; E adds the account to the directory once
  the ledger shows it), holder requests signed by the key of an account AT O, and the
  passport key's `passport.vouch`, and linkage proofs designated to the caller's own
  verifier key relating an account at the caller's institution to another the holder names.

E never sends a key, the vault, the wallet or a face reference; O never learns the master
secret. What E does learn, and what O does, is in the threat model of docs/gateway.md.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S
from face_engine.embed import EMBEDDING_DIM
from face_engine.protect.errors import InvalidEmbedding
from face_engine.protect.protector import as_unit_vector
from gateway.core.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    InvalidRequest,
    Locked,
    NotFound,
)
from gateway.holder import keys

from .faces import FaceReferenceMismatch, LiveFace, face_service
from .holders import (
    CLOSED_ACCOUNT_ACTIONS,
    PENDING,
    UNLOCKED_TTL_S,
    AccountEntry,
    HolderState,
    UnlockedSecrets,
    UnlockRefused,
    holder_service,
)
from .ledger_reads import json_object
from .peer_requests import peer_requests

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.custody")


CUSTODY_PURPOSE = "custody_unlock"
# What an account key signs for the desk of the account's institution (the rest of the
# account-keyed actions: none but these reach the relay).
ACCOUNT_ACTIONS = frozenset({"account.close", "account.reprove", "grant.create", "grant.list",
                             "grant.revoke", "access.log", "credential.erase"})
PASSPORT_ACTIONS = frozenset({"passport.vouch"})
MAX_PASSWORD_CHARS = 1024


class CustodyUnavailable(ApiError):
    """This gateway serves every org (development): it is nobody's custodian over the API."""

    status, code = 404, "custody_unavailable"


class NotCallerInstitution(Forbidden):
    """The caller asked for an account of another institution (or for another org)."""

    code = "not_caller_institution"


@dataclass(eq=False)
class CustodySession(UnlockedSecrets):
    """A custodial holder unlocked at another org's desk: held here, in memory only."""

    handle: str
    caller_org: str
    passport_id: str
    enrolling_org: str
    level: int
    face_commitment: str | None
    expires: float
    _master: bytes | None = field(default=None, repr=False)
    _state: HolderState | None = field(default=None, repr=False)

    @property
    def expired(self) -> bool:
        return time.time() > self.expires

    def wipe(self) -> None:
        self._master, self._state, self.level = None, None, 0

    def visible_accounts(self) -> list[AccountEntry]:
        """The accounts the caller's desk may show and act on: those at its own org."""
        if self.level < 2:
            return []
        return [a for a in self.state.accounts
                if a.institution == self.caller_org and a.status != PENDING]

    def caller_account(self, pseudonym: str) -> AccountEntry:
        for entry in self.state.accounts:
            if entry.pseudonym == pseudonym and entry.status != PENDING:
                if entry.institution != self.caller_org:
                    raise NotCallerInstitution(
                        f"that account is not at {self.caller_org}: its key signs only for "
                        "its own institution's desk")
                return entry
        raise NotFound("no such account of this holder", code="account_not_found")


def decode_embedding(value: str) -> LiveFace:
    """The live embedding O computed (base64 of little-endian float32), as a unit vector."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("embedding must be base64", code="invalid_embedding") from None
    if len(raw) != 4 * EMBEDDING_DIM:
        raise InvalidRequest(f"embedding must be {EMBEDDING_DIM} float32 values",
                             code="invalid_embedding")
    try:
        unit = as_unit_vector(np.frombuffer(raw, dtype="<f4"), EMBEDDING_DIM)
    except InvalidEmbedding as exc:
        raise InvalidRequest(str(exc), code="invalid_embedding") from None
    return LiveFace(unit.astype(np.float32))


def encode_embedding(live: LiveFace) -> str:
    return base64.b64encode(np.asarray(live.embedding, dtype="<f4").tobytes()).decode()


class CustodyService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self._sessions: dict[str, CustodySession] = {}

    # --- who is calling ------------------------------------------------------------------
    def own_org(self) -> str:
        org = self.state.settings.org
        if org is None:
            raise CustodyUnavailable("this gateway serves every org: it is no org's custodian")
        return org

    def authenticate(self, headers: Mapping[str, str], method: str, path: str,
                     body: bytes) -> str:
        """The calling org, once its gateway's signed request passes (peer_requests.py)."""
        return peer_requests(self.state).authenticate(self.own_org(), headers, method, path,
                                                      body)

    # --- unlock --------------------------------------------------------------------------
    @staticmethod
    def _source(caller: str) -> str:
        """The desk failures count at, as this gateway sees it: every desk of the calling
        org together (it cannot tell them apart). Counted in the holders' unlock lockouts
        (face_lockouts.py) beside this org's own desks (`org/name`), with their backoff."""
        return f"{caller} (its desks)"

    async def unlock(self, caller: str, passport_id: str, live: LiveFace,
                     password: str | None) -> CustodySession:
        self._sweep()
        from .holder_recovery import recovery_service

        # As for an unlock at this org's own desks (holders.py): an interrupted recovery
        # is settled before the reference and vault are read.
        await recovery_service(self.state).reconcile(passport_id)
        holders = holder_service(self.state)
        record = holders.record(passport_id)
        if record is None:
            raise NotFound("no passport of that id is in this gateway's custody",
                           code="passport_not_found")
        if password is not None and len(password) > MAX_PASSWORD_CHARS:
            raise InvalidRequest("password too long")
        lockouts, source = holders.lockouts, self._source(caller)
        attempt = lockouts.reserve(passport_id, source)
        try:
            ledger = json_object(await self.state.ledger.carrier(record.enrolling_org).evaluate(
                "Passport:Get", [passport_id]))
            reference = face_service(self.state).committed_reference(
                passport_id, record.enrolling_org, ledger.get("face_commitment"))
            face_ok, opened = await holders.check_factors(record, reference, live, password)
            if not face_ok or (password is not None and opened is None):
                lockouts.fail(passport_id, source, attempt)
                raise UnlockRefused("the face or the password did not match")
            master = opened.master if opened is not None else None
            if ledger.get("status") != "active":
                raise Conflict("this passport is not active", code="passport_inactive")
            commitment = ledger.get("face_commitment")
            session = CustodySession(
                secrets.token_hex(32), caller, passport_id, record.enrolling_org, 1,
                commitment if isinstance(commitment, str) else None,
                time.time() + UNLOCKED_TTL_S)
            if opened is not None and master is not None:
                assert password is not None
                await holders.settle_unlock(record, opened, password)
                session._master = master
                session._state = await holders.open_state(record, master, dict(ledger))
                session.level = 2
                await self._settle_pending(session)
        finally:
            # Settled already when it failed; otherwise (success, a server fault) released
            # uncounted.
            lockouts.release(attempt)
        lockouts.succeed(passport_id, source)
        self._sessions[session.handle] = session
        log.info("custodial holder unlocked for another org's desk at level %d", session.level)
        return session

    # --- sessions ------------------------------------------------------------------------
    def session(self, caller: str, handle: str) -> CustodySession:
        """The caller's own live custody session (another org's is as good as unknown)."""
        session = self._sessions.get(handle)
        if session is None or session.caller_org != caller:
            raise NotFound("no such custody session", code="custody_session_not_found")
        if session.expired:
            self.end(caller, handle)
            raise Gone("the holder session expired; unlock again", code="holder_session_expired")
        return session

    def end(self, caller: str, handle: str) -> bool:
        session = self._sessions.get(handle)
        if session is None or session.caller_org != caller:
            return False
        self._sessions.pop(handle).wipe()
        return True

    def end_sessions_of(self, passport_id: str) -> int:
        ended = [h for h, s in self._sessions.items() if s.passport_id == passport_id]
        for handle in ended:
            self._sessions.pop(handle).wipe()
        return len(ended)

    def _sweep(self) -> None:
        for handle, session in list(self._sessions.items()):
            if session.expired:
                self._sessions.pop(handle).wipe()

    def _save(self, session: CustodySession) -> None:
        holder_service(self.state).save_sealed(session.passport_id, session.master,
                                               session.state)

    # --- accounts at the caller's institution --------------------------------------------
    async def _ledger_account(self, pseudonym: str) -> dict[str, Any] | None:
        from gateway.core.errors import chaincode_error
        from gateway.fabric import ChaincodeError

        try:
            return dict(json_object(await self.state.ledger.carrier(self.own_org()).evaluate(
                "Account:Get", [pseudonym])))
        except ChaincodeError as exc:
            if chaincode_error(exc).code == "not_found":
                return None
            raise

    async def _settle(self, session: CustodySession, entry: AccountEntry) -> None:
        """Bring a caller-institution entry to what the ledger says: a pending opening the
        ledger shows (with this holder's key) becomes open, an account the ledger closed is
        closed here too."""
        record = await self._ledger_account(entry.pseudonym)
        if record is None:
            return
        key = keys.account_key(session.master, entry.institution, entry.index)
        if record.get("public_key") != key.public_b64 or \
                record.get("institution") != entry.institution:
            return  # someone else's account under that pseudonym: never ours
        status = "closed" if record.get("status") == "closed" else "open"
        if entry.status != status:
            entry.status = status
            if entry.status == "open" and isinstance(record.get("opened"), int):
                entry.opened = int(record["opened"])
            self._save(session)

    async def _settle_pending(self, session: CustodySession) -> None:
        for entry in list(session.state.accounts):
            if entry.status == PENDING and entry.institution == session.caller_org:
                await self._settle(session, entry)

    async def prepare_account(self, session: CustodySession, pseudonym: str,
                              institution: str, min_level: int, face_commitment: str
                              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The signed `account.open` and the KYC presentation for a new account at the
        caller's own institution; the directory holds it as pending (its key index taken)
        until the ledger shows it."""
        session.require_level(2)
        if institution != session.caller_org:
            raise NotCallerInstitution(
                f"{session.caller_org}'s desk opens accounts at {session.caller_org} only")
        if not (isinstance(min_level, int) and 1 <= min_level <= 3):
            raise InvalidRequest("min_level must be 1, 2 or 3")
        holder_state = session.state
        if min_level > holder_state.kyc_level:
            raise Conflict(f"this holder's KYC level is {holder_state.kyc_level}",
                           code="kyc_level_too_low")
        if any(a.pseudonym == pseudonym for a in holder_state.accounts):
            raise Conflict("this pseudonym is taken", code="conflict")
        passport = json_object(await self.state.ledger.carrier(session.enrolling_org).evaluate(
            "Passport:Get", [session.passport_id]))
        if passport.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        if passport.get("face_commitment") != session.face_commitment:
            raise FaceReferenceMismatch("the passport's face reference changed since this "
                                        "unlock; unlock again")
        await self._settle_pending(session)
        index = sum(1 for a in holder_state.accounts if a.institution == institution)
        key = keys.account_key(session.master, institution, index)
        presentation = await anyio.to_thread.run_sync(
            lambda: holder_state.wallet.present(key.public_raw, pseudonym, min_level))
        request = key.sign_request("account.open", {
            "pseudonym": pseudonym, "institution": institution, "min_level": min_level,
            "face_commitment": face_commitment}, self.state.settings.channel,
            ttl=MAX_REQUEST_TTL_S // 2)
        holder_state.accounts.append(
            AccountEntry(pseudonym, institution, index, PENDING, int(time.time())))
        self._save(session)
        log.info("account opening prepared for %s", institution)
        return request, presentation

    async def sync_account(self, session: CustodySession, pseudonym: str) -> AccountEntry:
        """The entry after reading the account back from the ledger (the caller's org's
        accounts only); 404 while the ledger does not show it."""
        session.require_level(2)
        for entry in session.state.accounts:
            if entry.pseudonym == pseudonym:
                if entry.institution != session.caller_org:
                    raise NotCallerInstitution(f"that account is not at {session.caller_org}")
                await self._settle(session, entry)
                if entry.status == PENDING:
                    raise NotFound("the ledger does not show that account",
                                   code="account_not_found")
                return entry
        raise NotFound("no such account of this holder", code="account_not_found")

    def sign(self, session: CustodySession, pseudonym: str, action: str,
             body: dict[str, Any]) -> dict[str, Any]:
        """A holder request signed by the key of an account at the caller's institution."""
        session.require_level(2)
        if action not in ACCOUNT_ACTIONS:
            raise InvalidRequest(f"the relay does not sign {action!r}", code="wrong_action")
        entry = session.caller_account(pseudonym)
        if body.get("account", body.get("pseudonym")) != pseudonym:
            raise InvalidRequest("the body must name the account it is signed by",
                                 code="request_mismatch")
        if entry.status != "open" and action not in CLOSED_ACCOUNT_ACTIONS:
            raise Conflict("this account is closed", code="account_closed")
        key = keys.account_key(session.master, entry.institution, entry.index)
        return key.sign_request(action, body, self.state.settings.channel)

    def passport_sign(self, session: CustodySession, action: str,
                      body: dict[str, Any]) -> dict[str, Any]:
        session.require_level(2)
        if action not in PASSPORT_ACTIONS:
            raise InvalidRequest(f"the relay does not sign {action!r}", code="wrong_action")
        if set(body) != {"vouchee"} or not isinstance(body["vouchee"], str):
            raise InvalidRequest("a vouch's body is exactly {vouchee}")
        return keys.passport_key(session.master).sign_request(
            action, body, self.state.settings.channel)


    async def linkage_proof(self, session: CustodySession, account: str, other: str,
                            ttl_s: int, nonce: str | None) -> dict[str, Any]:
        """A linkage proof, designated to the caller's own verifier key (never another
        org's), relating the holder's account at the caller's institution and another of the
        holder's accounts the holder named at the desk. A pseudonym that is not the holder's
        ends the session and counts as a failed unlock from the caller: the desk cannot try
        pseudonyms read off the ledger to learn which is the holder's."""
        from . import linkage

        session.require_level(2)
        entry = session.caller_account(account)
        known = [a for a in session.state.accounts
                 if a.pseudonym == other and a.status != PENDING]
        if not known:
            self.end(session.caller_org, session.handle)
            lockouts = holder_service(self.state).lockouts
            source = self._source(session.caller_org)
            try:
                attempt = lockouts.reserve(session.passport_id, source)
            except Locked:
                pass  # the caller's desks are locked out for this passport already
            else:
                lockouts.fail(session.passport_id, source, attempt)
            log.info("linkage proof refused: not the holder's account; custody session ended")
            raise NotFound("no such account of this holder; the session ended",
                           code="account_not_found")
        if entry.status != "open" or known[0].status != "open":
            raise Conflict("this account is closed", code="account_closed")
        key_a = keys.account_key(session.master, entry.institution, entry.index)
        key_b = keys.account_key(session.master, known[0].institution, known[0].index)
        return await linkage.prove(self.state, self.own_org(), (account, key_a.private),
                                   (other, key_b.private), session.caller_org, ttl_s, nonce)


def custody_service(state: AppState) -> CustodyService:
    return state.service("custody", CustodyService)


def session_out(session: CustodySession) -> dict[str, Any]:
    """What the caller's desk may know of the session: level, KYC level, its own org's
    accounts."""
    return {"handle": session.handle, "level": session.level,
            "kyc_level": session.state.kyc_level if session.level >= 2 else None,
            "accounts": [a.to_dict() for a in session.visible_accounts()],
            "expires_in_s": max(0.0, session.expires - time.time())}

