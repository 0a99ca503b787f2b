"""Guardian recovery at a desk: the holder forgot the password, or the face changed so much
that the unlock fails.

Flow (the recovery lives in the memory of the gateway that enrolled the holder, E; when the
holder stands at another org's desk, or a guardian's keys are held by another org's gateway,
the steps below reach those gateways through the custody API: recovery_relay.py):

1. `start(staff, passport_id)` (any staff): the passport must be enrolled here, active on
   the ledger and have guardians (their shares were sealed to them at enrolment and stored in
   `guardian_shares`). Returns the recovery id, a face challenge for the holder, the
   guardians' passport ids and the threshold k. Expires after `RECOVERY_TTL_S`.
2. `add_share(recovery_id, guardian)`: each guardian unlocks their OWN level-2 holder session
   at a desk (face and password); the gateway opens that guardian's sealed share with the
   guardian's passport key (`gateway.holder.recovery.open_share`) and keeps the mnemonic in
   memory for this recovery only.
3. `finish(recovery_id, staff, challenge, frames, new_password)` (the staff member who
   started it): with k shares in, the live face (liveness checked; a failure spends the
   challenge, `new_challenge` gives another) and a new password: the shares give the master
   secret (`recover`), which must derive the passport's id and ledger key; the master secret
   is rewrapped under the new password and a fresh face-factor key.

Face policy. The stored reference is first checked against the passport's face commitment on
the ledger (409 `face_reference_mismatch` otherwise, before the challenge is spent or anything
changes). The live face always passes the liveness check. If it matches the passport's
current protected reference, k guardian shares suffice. If it does not match (the face
changed, or someone else is trying), the recovery goes on only when EVERY guardian the holder
named (n of n, not just k) has given their share: more people have vouched in person for this
face than the threshold alone requires. The new face then becomes the passport's reference
(the old one stops matching), its commitment goes to the ledger (`Passport:SetFaceCommitment`,
signed by the recovered passport key, carried by the enrolling org's gateway identity; if the
ledger refuses, the old reference stays current and nothing else changed) and its 1:N
duplicate entry is replaced, after screening that it matches nobody else enrolled
(409 `duplicate_face`). Every finished recovery is recorded in
`holder_recoveries` (ids, staff, share count, whether the face was re-enrolled; no secrets).

Crashes (recovery_intents.py): a matched-face recovery's local writes (new vault, cleared
lockouts, record) are one SQLite transaction. A changed-face recovery records a sealed intent
(the new reference staged, not current; the new vault as stored) before the ledger call and
changes the reference, vault and lockouts only after the ledger took the commitment, in one
transaction; an intent left by a crash or an unknown ledger outcome is settled against
`Passport:Get` before the passport's next unlock (`reconcile`: this org's desks and custody
unlocks), its next recovery start and a retried finish, which resubmits the same signed
request when the ledger shows neither outcome. The holder ends with the old password and
face or the new ones, never locked out between them.

Refusals: unknown passport (404 `passport_not_found`), no guardians (409 `no_guardians`),
inactive passport (409 `passport_inactive`), unknown recovery or another desk's
(404 `recovery_not_found`), expired (410 `recovery_expired`), a holder session below level 2
(403 `holder_level_too_low`), not a guardian of this passport (403 `not_a_guardian`), a
second share from one guardian (409 `share_already_given`), too few shares
(409 `too_few_shares`), face mismatch without all guardians
(403 `face_mismatch_needs_all_guardians`), liveness (422 `liveness_failed`), weak password
(422 `weak_password`), shares that do not give this passport's key (409 `recovery_mismatch`).
Across orgs (recovery_relay.py) also: a share asked for or given by an org other than the
guardian's enrolling org (403 `not_guardians_custodian`), and an org other than this one that
would be handed k of the passport's sealed shares (409 `guardian_shares_one_org`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.core.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from gateway.core.security import StaffMember
from gateway.holder import keys, recovery, vault
from gateway.holder.errors import RecoveryError, WeakPassword

from . import recovery_intents as intents
from .face_frames import challenge_frames
from .faces import IssuedChallenge, LiveFace, face_service
from .holders import HolderSession, holder_service
from .password_hardening import password_hardening

if TYPE_CHECKING:
    from face_engine.protect.reference import ProtectedReference

    from .recovery_relay import RemoteRecovery
    from .state import AppState

log = logging.getLogger("mip.gateway.recovery")

SCHEMA = """
CREATE TABLE IF NOT EXISTS holder_recoveries (
    recovery_id TEXT PRIMARY KEY,
    passport_id TEXT NOT NULL,
    org TEXT NOT NULL,
    staff TEXT NOT NULL,
    shares INTEGER NOT NULL,
    face_reenrolled INTEGER NOT NULL,
    finished REAL NOT NULL
);
-- Sealed shares handed to a guardian's custodian at another org (recovery_relay.py): no org
-- but this one is ever handed as many guardians' shares of a passport as its threshold.
CREATE TABLE IF NOT EXISTS recovery_share_releases (
    passport_id TEXT NOT NULL,
    org TEXT NOT NULL,
    guardian_passport_id TEXT NOT NULL,
    released REAL NOT NULL,
    PRIMARY KEY (passport_id, org, guardian_passport_id)
);
"""

RECOVERY_PURPOSE = "holder_recovery"
RECOVERY_TTL_S = 900.0


@dataclass
class Recovery:
    """One recovery in progress; the opened mnemonics stay in memory only."""

    recovery_id: str
    staff: StaffMember | None  # None: started by another org's desk over the custody API
    passport_id: str
    enrolling_org: str
    challenge_id: str
    guardians: dict[str, str] = field(repr=False)  # guardian passport id -> sealed share JSON
    threshold: int
    expires: float
    mnemonics: dict[str, str] = field(default_factory=dict, repr=False)
    # The member org whose desk runs this recovery over the custody API (None: this
    # gateway's own desk); only that org's gateway may finish it (recovery_relay.py).
    caller_org: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() > self.expires

    def wipe(self) -> None:
        self.mnemonics.clear()


@dataclass(frozen=True)
class RecoveryResult:
    passport_id: str
    face_reenrolled: bool
    shares: int


class RecoveryService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        self.db.ensure(intents.SCHEMA)
        self._recoveries: dict[str, Recovery] = {}
        # Recoveries this desk runs for holders enrolled at another org (recovery_relay.py).
        self._remote: dict[str, RemoteRecovery] = {}
        # One changed-face finish or reconciliation at a time in this process: a recorded
        # intent is settled by one task, never resubmitted beside its own first submission.
        self._settling = asyncio.Lock()

    # --- lookup --------------------------------------------------------------------------
    def _get(self, recovery_id: str, staff: StaffMember | None = None) -> Recovery:
        rec = self._recoveries.get(recovery_id)
        if rec is None or (staff is not None and rec.staff != staff):
            raise NotFound("no such recovery", code="recovery_not_found")
        if rec.expired:
            rec.wipe()
            self._recoveries.pop(recovery_id, None)
            raise Gone("the recovery expired; start again", code="recovery_expired")
        return rec

    def _sweep(self) -> None:
        for rid, rec in list(self._recoveries.items()):
            if rec.expired:
                rec.wipe()
                self._recoveries.pop(rid, None)
        for rid, remote in list(self._remote.items()):
            if remote.expired:
                self._remote.pop(rid, None)

    # --- steps ---------------------------------------------------------------------------
    async def start(self, staff: StaffMember, passport_id: str
                    ) -> tuple[Recovery | RemoteRecovery, IssuedChallenge]:
        self._sweep()
        if holder_service(self.state).record(passport_id) is None:
            # Enrolled at another org: that org's gateway runs the recovery, this desk the
            # face challenge (recovery_relay.py).
            from .recovery_relay import start_remote

            return await start_remote(self, staff, passport_id)
        await self.reconcile(passport_id)
        ledger = json.loads(await self.state.ledger.for_staff(staff).evaluate(
            "Passport:Get", [passport_id]))
        recovery_id = secrets.token_hex(32)
        rec = self._begin(recovery_id, passport_id, ledger, staff, None)
        challenge = face_service(self.state).issue_challenge(RECOVERY_PURPOSE, recovery_id)
        rec.challenge_id = challenge.challenge_id
        self._recoveries[recovery_id] = rec
        log.info("recovery started (%d guardians, k=%d)", len(rec.guardians), rec.threshold)
        return rec, challenge

    async def start_for(self, caller: str, passport_id: str) -> Recovery:
        """A recovery of a holder enrolled here, run at `caller`'s desk (custody API): the
        caller's gateway checks the live face; the shares, the match and the vault stay
        here."""
        self._sweep()
        await self.reconcile(passport_id)
        ledger = json.loads(await self.state.ledger.carrier(self._own()).evaluate(
            "Passport:Get", [passport_id]))
        rec = self._begin(secrets.token_hex(32), passport_id, ledger, None, caller)
        self._recoveries[rec.recovery_id] = rec
        log.info("recovery started for another org's desk (%d guardians, k=%d)",
                 len(rec.guardians), rec.threshold)
        return rec

    def _own(self) -> str:
        from .custody import custody_service

        return custody_service(self.state).own_org()

    def _begin(self, recovery_id: str, passport_id: str, ledger: dict[str, Any],
               staff: StaffMember | None, caller: str | None) -> Recovery:
        record = holder_service(self.state).record(passport_id)
        if record is None:
            raise NotFound("no passport of that id is enrolled at this gateway",
                           code="passport_not_found")
        rows = self.db.query(
            "SELECT guardian_passport_id, share FROM guardian_shares "
            "WHERE holder_passport_id = ?", (passport_id,))
        if not rows:
            raise Conflict("this passport has no guardians to recover it",
                           code="no_guardians")
        if ledger.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        guardians = {str(r["guardian_passport_id"]): str(r["share"]) for r in rows}
        threshold = int(ledger.get("guardian_threshold") or 0)
        if not 1 <= threshold <= len(guardians):
            raise Conflict("the ledger's guardian threshold does not fit the stored shares",
                           code="no_guardians")
        return Recovery(recovery_id, staff, passport_id, record.enrolling_org, "",
                        guardians, threshold, time.time() + RECOVERY_TTL_S,
                        caller_org=caller)

    def new_challenge(self, recovery_id: str, staff: StaffMember) -> IssuedChallenge:
        """A fresh challenge after a failed capture (each challenge answers once)."""
        remote = self._remote.get(recovery_id)
        if remote is not None:
            from .recovery_relay import new_remote_challenge

            return new_remote_challenge(self, remote, staff)
        rec = self._get(recovery_id, staff)
        challenge = face_service(self.state).issue_challenge(RECOVERY_PURPOSE, recovery_id)
        rec.challenge_id = challenge.challenge_id
        return challenge

    async def give_share(self, recovery_id: str, guardian: HolderSession) -> tuple[int, int]:
        """The guardian at this desk gives their share to recovery `recovery_id` (this
        gateway's, or one this desk runs for another org's holder); (shares, threshold)."""
        guardian.require_level(2)
        remote = self._remote.get(recovery_id)
        if remote is None and not _is_remote_session(guardian):
            rec = self.add_share(recovery_id, guardian)
            return len(rec.mnemonics), rec.threshold
        from .recovery_relay import relay_share

        return await relay_share(self, recovery_id, remote, guardian)

    def add_share(self, recovery_id: str, guardian: HolderSession) -> Recovery:
        """Open the guardian's sealed share with its passport key (level-2 session)."""
        guardian.require_level(2)
        return self.add_opened_share(self._get(recovery_id), guardian.pid,
                                     guardian.passport_key().private)

    def add_opened_share(self, rec: Recovery, guardian_pid: str,
                         guardian_private: Any) -> Recovery:
        """Open the sealed share of `guardian_pid` with its passport private key, held by
        this gateway (the guardian is enrolled here and unlocked at level 2)."""
        sealed = self.sealed_share(rec, guardian_pid)
        try:
            mnemonic = recovery.open_share(sealed, guardian_private)
        except RecoveryError:
            raise Conflict("this guardian's stored share does not open",
                           code="share_unusable") from None
        return self.add_mnemonic(rec, guardian_pid, mnemonic)

    def sealed_share(self, rec: Recovery, guardian_pid: str) -> str:
        sealed = rec.guardians.get(guardian_pid)
        if sealed is None:
            raise Forbidden("this holder is not a guardian of that passport",
                            code="not_a_guardian")
        if guardian_pid in rec.mnemonics:
            raise Conflict("this guardian has already given their share",
                           code="share_already_given")
        return sealed

    def release_sealed(self, rec: Recovery, guardian_pid: str, org: str) -> str:
        """The sealed share of `guardian_pid` for its custodian `org` (another member org,
        which holds the guardian's key and will see the opened share). Refused when `org`
        would then have been handed the shares of as many of this passport's guardians as
        the threshold: one org other than the holder's own could otherwise combine them."""
        sealed = self.sealed_share(rec, guardian_pid)
        with self.db.transaction() as conn:
            others = {str(r["guardian_passport_id"]) for r in conn.execute(
                "SELECT guardian_passport_id FROM recovery_share_releases WHERE "
                "passport_id = ? AND org = ?", (rec.passport_id, org))}
            if len(others | {guardian_pid}) >= rec.threshold:
                raise Conflict(
                    f"{org} would hold {rec.threshold} of this holder's guardian shares: "
                    "k guardians enrolled at one other org cannot recover this passport "
                    "(the holder names guardians enrolled at different orgs)",
                    code="guardian_shares_one_org")
            conn.execute(
                "INSERT OR IGNORE INTO recovery_share_releases (passport_id, org, "
                "guardian_passport_id, released) VALUES (?, ?, ?, ?)",
                (rec.passport_id, org, guardian_pid, time.time()))
        return sealed

    def add_mnemonic(self, rec: Recovery, guardian_pid: str, mnemonic: str) -> Recovery:
        self.sealed_share(rec, guardian_pid)
        try:
            recovery.check_share(mnemonic)
        except RecoveryError:
            raise Conflict("this guardian's share is not a share", code="share_unusable") \
                from None
        rec.mnemonics[guardian_pid] = mnemonic
        log.info("recovery share given (%d of k=%d)", len(rec.mnemonics), rec.threshold)
        return rec

    # --- the custody API's side (recovery_relay.py) --------------------------------------
    def by_handle(self, handle: str) -> Recovery:
        """Any live recovery here, by its id: for a guardian's custodian giving a share."""
        return self._get(handle)

    def for_caller(self, caller: str, handle: str) -> Recovery:
        """A recovery run at `caller`'s desk (another org's is as good as unknown)."""
        rec = self._recoveries.get(handle)
        if rec is None or rec.caller_org != caller:
            raise NotFound("no such recovery", code="recovery_not_found")
        return self._get(handle)

    async def ready(self, rec: Recovery) -> dict[str, Any]:
        """The checks of `finish` that come before the caller spends its face challenge."""
        if len(rec.mnemonics) < rec.threshold:
            raise Conflict(f"{len(rec.mnemonics)} of {rec.threshold} guardian shares given",
                           code="too_few_shares")
        await self.reconcile(rec.passport_id)
        ledger = json.loads(await self.state.ledger.carrier(self._own()).evaluate(
            "Passport:Get", [rec.passport_id]))
        face_service(self.state).committed_reference(rec.passport_id, rec.enrolling_org,
                                                     ledger.get("face_commitment"))
        if ledger.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        return dict(ledger)

    async def finish_for(self, caller: str, handle: str, live: LiveFace,
                         new_password: str) -> RecoveryResult:
        """Finish a recovery run at `caller`'s desk, with the live face that desk checked
        (liveness there, the match here)."""
        rec = self.for_caller(caller, handle)
        _check_password(new_password)
        await self.reconcile(rec.passport_id)
        if (done := self._finished_result(rec)) is not None:
            return done
        ledger = await self.ready(rec)
        reference = face_service(self.state).committed_reference(
            rec.passport_id, rec.enrolling_org, ledger.get("face_commitment"))
        return await self._complete(rec, ledger, reference, live, new_password, caller,
                                    f"{caller} desk (custody)")

    async def finish(self, recovery_id: str, staff: StaffMember, challenge_id: str,
                     frames: list[tuple[bytes, float]], new_password: str) -> RecoveryResult:
        remote = self._remote.get(recovery_id)
        if remote is not None:
            from .recovery_relay import finish_remote

            return await finish_remote(self, remote, staff, challenge_id, frames,
                                       new_password)
        rec = self._get(recovery_id, staff)
        _check_password(new_password)
        await self.reconcile(rec.passport_id)
        if (done := self._finished_result(rec)) is not None:
            return done
        if len(rec.mnemonics) < rec.threshold:
            raise Conflict(f"{len(rec.mnemonics)} of {rec.threshold} guardian shares given",
                           code="too_few_shares")
        if challenge_id != rec.challenge_id:
            raise NotFound("no such face challenge for this flow", code="challenge_not_found")
        ledger = json.loads(await self.state.ledger.for_staff(staff).evaluate(
            "Passport:Get", [rec.passport_id]))
        faces = face_service(self.state)
        # Before the challenge is spent: a reference the ledger does not name is never used.
        reference = faces.committed_reference(rec.passport_id, rec.enrolling_org,
                                              ledger.get("face_commitment"))
        live = await faces.check_live(challenge_id, RECOVERY_PURPOSE, recovery_id,
                                      challenge_frames(self.db, challenge_id, frames))
        return await self._complete(rec, ledger, reference, live, new_password, staff.org,
                                    staff.name)

    async def _complete(self, rec: Recovery, ledger: dict[str, Any],
                        reference: ProtectedReference | None, live: LiveFace,
                        new_password: str, org: str, staff_name: str) -> RecoveryResult:
        """The shares give the master secret; the live face (checked for liveness by the
        desk's gateway) is matched here against this gateway's reference; the vault is
        rewrapped and, for a changed face, the reference and its commitment renewed."""
        faces = face_service(self.state)
        recovery_id = rec.recovery_id
        try:
            master = recovery.recover(list(rec.mnemonics.values()))
        except RecoveryError:
            raise Conflict("the guardians' shares do not combine", code="recovery_mismatch") \
                from None
        passport = keys.passport_key(master)
        if keys.passport_id(master) != rec.passport_id \
                or ledger.get("public_key") != passport.public_b64:
            raise Conflict("the shares do not give this passport's key",
                           code="recovery_mismatch")
        if ledger.get("status") != "active":
            raise Conflict("this passport is not active", code="passport_inactive")
        face_ok = reference is not None and faces.matches(reference, live, rec.passport_id)
        if not face_ok:
            if set(rec.mnemonics) != set(rec.guardians):
                raise Forbidden("the face does not match the passport's reference; every "
                                "guardian must give their share",
                                code="face_mismatch_needs_all_guardians")
            found = await self.state.run_face(faces.screen, live)
            if any(pid != rec.passport_id for pid, _score in found):
                raise Conflict("this face appears to be enrolled for another passport",
                               code="duplicate_face")
        kdf = vault.INTERACTIVE_KDF if self.state.settings.argon2_profile == "interactive" \
            else vault.DEFAULT_KDF
        face_key = vault.new_face_key()
        wrapped = await password_hardening(self.state).wrap(
            master, new_password, face_key, rec.passport_id, rec.enrolling_org, kdf)
        face_key_sealed = holder_service(self.state).seal_face_key(face_key, rec.passport_id)
        if face_ok:
            # Nothing on the ledger changes: the new vault, the cleared lockouts and the
            # record are one transaction (the old password or the new one, never a mix).
            with self.db.transaction() as conn:
                intents.write_outcome(self.state, conn, recovery_id, rec.passport_id, wrapped,
                                      face_key_sealed, org, staff_name, len(rec.mnemonics),
                                      False)
        else:
            # The new face becomes the reference, the ledger its commitment, and it replaces
            # the passport's 1:N duplicate entry: an intent recorded before the ledger call
            # makes that crash-safe (recovery_intents.py).
            staged = faces.stage_reference(live, rec.passport_id, rec.enrolling_org)
            intent = intents.RecoveryIntent(
                recovery_id, rec.passport_id, rec.enrolling_org, org, staff_name,
                len(rec.mnemonics), ledger.get("face_commitment"), staged.commitment,
                passport.sign_request("passport.face", {
                    "passport_id": rec.passport_id, "face_commitment": staged.commitment,
                    "previous": ledger.get("face_commitment")}, self.state.settings.channel),
                wrapped, face_key_sealed)
            async with self._settling:
                intents.record(self.state, intent, staged)
                if not await intents.settle(self.state, intent, self._set_face_commitment):
                    raise Conflict("the passport's face commitment changed meanwhile; start "
                                   "again", code="conflict")
        result = RecoveryResult(rec.passport_id, not face_ok, len(rec.mnemonics))
        rec.wipe()
        self._recoveries.pop(recovery_id, None)
        log.info("recovery finished (%d shares, face re-enrolled: %s)", result.shares,
                 result.face_reenrolled)
        return result

    async def _set_face_commitment(self, intent: intents.RecoveryIntent) -> None:
        """`Passport:SetFaceCommitment` with the intent's request (signed by the recovered
        passport key), carried by the enrolling org's gateway identity (the org that holds
        the reference)."""
        await self.state.ledger.carrier(intent.enrolling_org).submit(
            "Passport:SetFaceCommitment", [intent.passport_id, json.dumps(intent.request)])

    async def reconcile(self, passport_id: str) -> None:
        """Bring every recorded intent of the passport to its outcome (recovery_intents.py)
        before anything reads its reference or vault: run before each unlock (this org's
        desks and custody), each recovery start and each finish."""
        if not intents.pending(self.state, passport_id):
            return
        async with self._settling:
            for intent in intents.pending(self.state, passport_id):
                try:
                    done = await intents.settle(self.state, intent,
                                                self._set_face_commitment)
                except intents.REFUSED:
                    done = False
                log.info("an interrupted recovery was %s", "finished" if done else "abandoned")

    async def reconcile_all(self) -> None:
        """At start-up: every passport with an intent left, settled now rather than at its
        holder's next unlock or recovery."""
        for passport_id in intents.passports_pending(self.state):
            await self.reconcile(passport_id)

    def _finished_result(self, rec: Recovery) -> RecoveryResult | None:
        """The result of `rec` if an earlier finish of it completed (settled by `reconcile`
        after its ledger outcome was unknown): a retry answers as the first call would."""
        row = intents.finished(self.state, rec.recovery_id)
        if row is None:
            return None
        rec.wipe()
        self._recoveries.pop(rec.recovery_id, None)
        return RecoveryResult(rec.passport_id, bool(row["face_reenrolled"]), int(row["shares"]))


def _check_password(new_password: str) -> None:
    try:
        vault.check_password(new_password)
    except WeakPassword as exc:
        raise InvalidRequest(str(exc), code="weak_password") from None


def _is_remote_session(session: HolderSession) -> bool:
    from .custody_client import RemoteHolderSession

    return isinstance(session, RemoteHolderSession)


def recovery_service(state: AppState) -> RecoveryService:
    return state.service("holder_recovery", RecoveryService)


async def settle_interrupted_recoveries(state: AppState) -> None:
    """At start-up (gateway/main.py's lifespan): settle the recoveries a crash interrupted.
    Never fatal: what cannot be settled now is settled before the passport's next unlock."""
    try:
        await recovery_service(state).reconcile_all()
    except Exception:
        # A background task: whatever failed, the gateway serves on, and the next unlock or
        # recovery of the passport settles it.
        log.warning("interrupted recoveries could not be settled at start-up")
