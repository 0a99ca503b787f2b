"""Pharmacy pickup: prescription lookup, live face check against the account's protected
reference, a signed attestation, and one dispense through the contract.

States of a pickup: `challenged` (created, challenge shown) -> `verified` or `refused`
(after its one frames submission) -> `dispensing` -> `dispensed` or `failed`. A refused
pickup is spent: the next attempt is a new pickup with a new challenge. A pickup left
`dispensing` (a crash, or a commit status that never came) is reconciled with the ledger by
its next dispense (gateway/services/dispense_recovery.py).

The account's stored reference is checked against the account's face commitment on the
ledger (`Account:Get`, one evaluate) before the verdict spends anything: a mismatch is 409
`face_reference_mismatch`, the pickup stays `challenged`, no failure is counted and nothing is
attested (the patient is not at fault: this gateway's database disagrees with the ledger).

Lockout (face_lockouts.py): a refusal that is evidence against the person at the counter
(`face_mismatch`: a live face that is not the patient's; `liveness_failed`: a face that did
not perform the challenge) is counted against the (prescription, pharmacist) pair;
`pickup_max_failures` within `pickup_failure_window_s` lock that pair for `pickup_lockout_s`,
doubled at each further lock up to `pickup_lockout_max_s`, and a verified pickup there clears
it. Another pharmacist (another counter) is not locked: no one pharmacist can lock the
patient out everywhere. A bad capture (`no_face`, `multiple_faces`, `bad_image`,
`quality_failed`, `bad_capture`: face_refusals.py), a late answer (`challenge_expired`) or
a patient without a reference (`no_reference`) is refused without counting: a broken camera
must not lock a real patient out, and none of them reaches a match. Each verdict reserves an
attempt before its face work, so concurrent answers never get more than the budget's
matches. Failures and locks live in SQLite, so a restart does not reset them.
The page learns only `verified` or a refusal reason, never a score.

At an org's own gateway (`Settings.org`) serving an account another org enrolled, this gateway
holds no reference of it: the verdict matches against the portrait the holder carried instead
(gateway/services/pharmacy_portraits.py; docs/gateway.md, "Pharmacy face check: the
portrait"), handed in with the pickup or deposited before. A portrait that fails a check is a
typed refusal before anything is spent or counted (the pickup stays `challenged`); without a
portrait the verdict is `no_reference`. The all-orgs gateway keeps matching its own reference.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from face_engine.errors import FaceError
from face_engine.liveness import Frame
from face_engine.portrait import PortraitExpectation, VerifiedPortrait, read_header
from face_engine.protect.reference import ProtectedReference
from gateway.core.errors import ApiError, Conflict, Forbidden, NotFound
from gateway.core.security import StaffMember, require_role
from gateway.fabric import ChaincodeError, CommitError, EndorseError, RetryPolicy
from gateway.store import Database

from . import dispense_recovery
from .access import prepare_request, request_and_read
from .attestation_sealing import AttestationUnreadable, open_attestation, seal_attestation
from .counter_key import PHARMACY, counter_key
from .face_frames import gateway_time
from .face_lockouts import FaceLockouts, LockoutPolicy, source_of
from .face_refusals import COUNTED_REASONS, refusal_reason
from .faces import FaceService, LiveFace, face_service
from .ledger_reads import account_record, credential_record, json_object
from .pharmacy_portraits import Checked, pharmacy_portraits

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.pharmacy")

PURPOSE = "pickup"
SCOPE = "medical.prescription"
# Concurrent dispenses of one prescription conflict on its fill counter (MVCC); a retry runs
# the contract again on the new state, where it refuses an exhausted prescription.
DISPENSE_RETRY = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2)

# The refusal reasons a counter page may see (each a stable code).
REFUSAL_REASONS = ("liveness_failed", "face_mismatch", "no_face", "multiple_faces",
                   "quality_failed", "bad_image", "bad_capture", "challenge_expired",
                   "no_reference")
ATTEMPT_FLOW = "pickup"

SCHEMA = """
CREATE TABLE IF NOT EXISTS pickups (
    pickup_id TEXT PRIMARY KEY,
    prescription_id TEXT NOT NULL,
    org TEXT NOT NULL,
    staff_name TEXT NOT NULL,
    subject_account TEXT NOT NULL,
    institution TEXT NOT NULL,
    issuer_org TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    challenge_issued_at REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    attestation TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pickups_prescription ON pickups(prescription_id);
-- Per-prescription counts of earlier versions: the lockout is per (prescription,
-- pharmacist) now (face_lockouts.py).
DROP TABLE IF EXISTS pickup_failures;
DROP TABLE IF EXISTS pickup_locks;
"""


@dataclass(frozen=True)
class FrameInput:
    image: bytes
    arrived_at: float  # gateway_time() when its request arrived, never a client value


MAX_REMEMBERED_COMMITMENTS = 4096


class PickupService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db: Database = state.db
        self.db.ensure(SCHEMA)
        settings = state.settings
        self.lockouts = FaceLockouts(
            self.db, ATTEMPT_FLOW,
            LockoutPolicy(settings.pickup_max_failures, settings.pickup_failure_window_s,
                          settings.pickup_lockout_s,
                          max(settings.pickup_lockout_s, settings.pickup_lockout_max_s)),
            message="too many failed face checks at this counter; this prescription is "
                    "locked here")
        self.db.ensure_columns("pickups", dispense_recovery.COLUMNS)
        # the grant whose portrait the verdict matches against (portrait pickups only)
        self.db.ensure_columns("pickups", {"portrait_grant": "TEXT"})
        # Pickups this process is dispensing now: a `dispensing` row not in here was left by
        # a crash or an unknown outcome, and its next dispense reconciles it with the ledger.
        self._dispensing: set[str] = set()
        # pickup id -> the subject account's face commitment as the ledger had it when the
        # pickup started. An account's commitment never changes after Account:Open, so the
        # verdict need not read the ledger again (one evaluate fewer inside the counter's
        # wait); after a restart the verdict reads it afresh.
        self._commitments: dict[str, object] = {}
        # pickup id -> what the ledger said its portrait must be when it was checked at the
        # pickup's start (no biometric data): the verdict re-opens the portrait without
        # reading the ledger again; after a restart it reads it afresh.
        self._expectations: dict[str, PortraitExpectation] = {}

    # --- lockout (face_lockouts.py) ---------------------------------------------------------
    def locked_until(self, prescription_id: str, member: StaffMember,
                     now: float | None = None) -> float | None:
        return self.lockouts.locked_until(prescription_id, source_of(member), now)

    def require_unlocked(self, prescription_id: str, member: StaffMember) -> None:
        self.lockouts.require_unlocked(prescription_id, source_of(member))

    # --- pickups ----------------------------------------------------------------------------
    def _row(self, member: StaffMember, pickup_id: str) -> Any:
        row = self.db.query_one("SELECT * FROM pickups WHERE pickup_id = ?", (pickup_id,))
        if row is None:
            raise NotFound("no such pickup", code="not_found")
        if (row["org"], row["staff_name"]) != (member.org, member.name):
            raise Forbidden("this pickup was started by another pharmacist",
                            code="not_your_pickup")
        return row

    def _set(self, pickup_id: str, status: str, *, expect: str | None = None,
             reason: str | None = None, attestation: str | None = None,
             conn: sqlite3.Connection | None = None) -> bool:
        """Move the pickup to `status` (from `expect`); with `conn`, in the caller's
        transaction."""
        if conn is None:
            with self.db.transaction() as own:
                return self._set(pickup_id, status, expect=expect, reason=reason,
                                 attestation=attestation, conn=own)
        sql = ("UPDATE pickups SET status = ?, reason = ?, attestation = COALESCE(?, "
               "attestation), updated = ? WHERE pickup_id = ?")
        params: tuple[Any, ...] = (status, reason, attestation, time.time(), pickup_id)
        if expect is not None:
            sql += " AND status = ?"
            params += (expect,)
        return conn.execute(sql, params).rowcount == 1

    def uses_portrait(self, institution: str) -> bool:
        """An org's own gateway serving an account another org enrolled: it holds no
        reference of it, and matches against the portrait the holder carried."""
        org = self.state.settings.org
        return org is not None and institution != org

    async def create(self, member: StaffMember, prescription_id: str,
                     portrait: bytes | None = None) -> dict[str, Any]:
        require_role(member, ("pharmacist",), (PHARMACY,))
        self.require_unlocked(prescription_id, member)
        # Everything the start needs from the ledger is started at once, the audited read's
        # `Access:Request` only endorsed (prepared_submit.py): a refusal below drops it
        # unsent, so it writes nothing, as when it was endorsed after the checks. Answers
        # are taken in the order of the checks, so each refusal is the one it was.
        contract = self.state.ledger.for_staff(member)
        prepared = prepare_request(contract, prescription_id, SCOPE, PURPOSE)
        portraits = pharmacy_portraits(self.state)
        reads = None if portrait is None else portraits.start_reads(member.org, portrait)
        try:
            record = await self._prescription(prescription_id)
            issuer_org = str(record["issuer_org"])
            subject = str(record["subject_account"])
            # A portrait handed in is checked (reads only) before the audited read is
            # written: a refused portrait changes nothing.
            checked: Checked | None = None
            if portrait is not None:
                checked = await portraits.check(member.org, portrait, record, reads)
        except BaseException:
            prepared.discard()
            if reads is not None:
                reads.discard()
            raise
        # The audited read and the account lookup need nothing of each other: run together.
        # A checked portrait's reads hold the account already (the check bound the portrait
        # to the prescription's subject).
        read = asyncio.ensure_future(request_and_read(
            contract, prescription_id, issuer_org, SCOPE, PURPOSE, prepared=prepared))
        account = (reads.account if checked is not None and reads is not None
                   else asyncio.ensure_future(account_record(self.state, subject)))
        try:
            released = await read
        except ChaincodeError as exc:
            account.cancel()
            if exc.chaincode_message.startswith("access_denied: "):
                raise Forbidden("the holder has not granted this pharmacy the prescription",
                                code="no_grant") from None
            raise
        except BaseException:
            account.cancel()
            raise
        fields = released["fields"]
        account_fields = await account
        institution = str(account_fields["institution"])
        portrait_grant: str | None = None
        if checked is not None:
            portrait_grant = checked.header.grant_id
        elif self.uses_portrait(institution):
            portrait_grant = portraits.latest_grant(subject, prescription_id)
        pickup_id = secrets.token_hex(16)
        # Built before the transaction: a service's first use creates its tables, and SQLite's
        # executescript commits whatever transaction is open.
        faces = face_service(self.state)
        # The portrait kept, the challenge and the pickup: one commit (one fsync, not three).
        with self.db.transaction() as conn:
            if checked is not None:
                portraits.keep(checked, conn)
            challenge = faces.issue_challenge(PURPOSE, pickup_id, conn)
            now = time.time()
            conn.execute(
                "INSERT INTO pickups (pickup_id, prescription_id, org, staff_name, "
                "subject_account, institution, issuer_org, challenge_id, challenge_issued_at, "
                "status, created, updated, portrait_grant) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (pickup_id, prescription_id, member.org, member.name, subject, institution,
                 issuer_org, challenge.challenge_id, challenge.issued_at, "challenged", now,
                 now, portrait_grant))
        self._commitments[pickup_id] = account_fields.get("face_commitment")
        if len(self._commitments) > MAX_REMEMBERED_COMMITMENTS:  # abandoned pickups
            self._commitments.pop(next(iter(self._commitments)))
        if checked is not None:
            self._expectations[pickup_id] = checked.expectation
            if len(self._expectations) > MAX_REMEMBERED_COMMITMENTS:
                self._expectations.pop(next(iter(self._expectations)))
        log.info("pickup %s started for prescription %s", pickup_id, prescription_id)
        return {
            "pickup_id": pickup_id,
            "prescription": {k: fields.get(k) for k in ("drug", "strength", "quantity")},
            "challenge": {"challenge_id": challenge.challenge_id,
                          "poses": list(challenge.poses),
                          "expires_in_s": max(0.0, round(challenge.deadline - gateway_time(),
                                                         1))},
        }

    async def _prescription(self, prescription_id: str) -> dict[str, Any]:
        """The prescription's public record, if it can be picked up now (typed refusals)."""
        try:
            record = await credential_record(self.state, prescription_id)
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("not_found: "):
                raise NotFound("no such prescription") from None
            raise
        if record.get("type") != "prescription":
            raise NotFound("no such prescription")
        fills = record.get("fills") or {}
        if record.get("status") != "active":
            raise ApiError(f"the prescription is {record.get('status')}",
                           code="precondition_failed", status=409)
        if fills.get("used", 0) >= fills.get("allowed", 0):
            raise ApiError("the prescription is used up", code="precondition_failed",
                           status=409)
        if fills.get("expires", 0) <= time.time():
            raise ApiError("the prescription has expired", code="precondition_failed",
                           status=409)
        return record

    def _challenged_row(self, member: StaffMember, pickup_id: str, challenge_id: str) -> Any:
        row = self._row(member, pickup_id)
        self.require_unlocked(str(row["prescription_id"]), member)
        if row["status"] != "challenged":
            raise Conflict("this pickup's face check is done; start a new pickup",
                           code="pickup_used")
        if challenge_id != row["challenge_id"]:
            raise NotFound("no such face challenge for this pickup",
                           code="challenge_not_found")
        return row

    async def submit_frames(self, member: StaffMember, pickup_id: str, challenge_id: str,
                            frames: list[FrameInput]) -> dict[str, Any]:
        """All frames in one request: the liveness check and the match, then the verdict."""
        require_role(member, ("pharmacist",), (PHARMACY,))
        row = self._challenged_row(member, pickup_id, challenge_id)
        live_frames = [Frame(f.image, f.arrived_at) for f in frames]
        faces = face_service(self.state)
        # No duplicate screening at a pickup: no multi-frame template (one model run fewer
        # per later frontal frame); the match uses the frontal frame's embedding.
        return await self._verdict(row, faces.check_live(challenge_id, PURPOSE, pickup_id,
                                                         live_frames, template=False))

    async def add_frame(self, member: StaffMember, pickup_id: str, challenge_id: str,
                        index: int, frame: FrameInput) -> dict[str, Any]:
        """One frame of a streamed check, analysed now (while the patient goes on turning);
        the verdict comes from `verdict` after the last one. Says nothing of the frame's
        content: a refused frame shows only in the verdict."""
        require_role(member, ("pharmacist",), (PHARMACY,))
        self._challenged_row(member, pickup_id, challenge_id)
        live = Frame(frame.image, frame.arrived_at)
        received = await face_service(self.state).add_live_frame(
            challenge_id, PURPOSE, pickup_id, index, live, template=False)
        return {"frames_received": received}

    async def verdict(self, member: StaffMember, pickup_id: str, challenge_id: str,
                      frame_count: int) -> dict[str, Any]:
        """The decision over a streamed check's frames 0..frame_count-1."""
        require_role(member, ("pharmacist",), (PHARMACY,))
        row = self._challenged_row(member, pickup_id, challenge_id)
        faces = face_service(self.state)
        return await self._verdict(row, faces.finish_live(challenge_id, PURPOSE, pickup_id,
                                                          frame_count))

    async def _verdict(self, row: Any, check: Coroutine[Any, Any, LiveFace]
                       ) -> dict[str, Any]:
        """Check the subject's reference against the ledger, run the liveness check, match,
        record the outcome."""
        pickup_id, prescription_id = str(row["pickup_id"]), str(row["prescription_id"])
        subject, institution = str(row["subject_account"]), str(row["institution"])
        source = f"{row['org']}/{row['staff_name']}"  # source_of(the pharmacist)
        faces = face_service(self.state)
        reference: ProtectedReference | None = None
        portrait: VerifiedPortrait | None = None
        try:
            # The attestation is signed over the pharmacist at this counter (their Fabric
            # identity string): the contract takes the fill only from that pharmacist's own
            # Dispense. Looked up before any face work (an unknown identity spends nothing).
            pharmacist = self.state.ledger.client_id(str(row["org"]), str(row["staff_name"]))
            if self.uses_portrait(institution):
                self._commitments.pop(pickup_id, None)
                portrait = await self._portrait(row)
            else:
                commitment = self._commitments.pop(pickup_id, None)
                if commitment is None:
                    commitment = (await account_record(self.state, subject)
                                  ).get("face_commitment")
                reference = faces.committed_reference(subject, institution, commitment)
            # Last, with no await after it: a reservation is always settled below.
            attempt = self.lockouts.reserve(prescription_id, source)
        except BaseException:
            check.close()  # never started: the challenge (or stream) is not decided
            raise
        try:
            reason = await self._decide(check, faces, reference, subject, portrait)
        except BaseException:
            # A server-side failure is no evidence about the person: nothing is counted.
            self.lockouts.release(attempt)
            raise
        if reason is None:
            try:
                attestation = counter_key(self.state).attest(prescription_id, subject,
                                                                pharmacist)
                # Sealed at rest, for this pickup and pharmacist only (attestation_sealing.py).
                sealed = seal_attestation(self.state, attestation, pickup_id, str(row["org"]),
                                          str(row["staff_name"]))
            except BaseException:
                self.lockouts.succeed(prescription_id, source, attempt)  # the face matched
                raise
            # The match settled (attempt, failures, backoff) and the pickup verified with its
            # sealed attestation: one commit.
            with self.db.transaction() as conn:
                self.lockouts.succeed(prescription_id, source, attempt, conn)
                self._set(pickup_id, "verified", expect="challenged", attestation=sealed,
                          conn=conn)
            log.info("pickup %s verified", pickup_id)
            return {"result": "verified"}
        if reason in COUNTED_REASONS:
            if self.lockouts.fail(prescription_id, source, attempt):
                log.warning("prescription %s locked at one counter after %d failed face "
                            "checks", prescription_id, self.lockouts.policy.max_failures)
        else:
            self.lockouts.release(attempt)
        self._set(pickup_id, "refused", expect="challenged", reason=reason)
        log.info("pickup %s refused: %s", pickup_id, reason)
        return {"result": "refused", "reason": reason}

    async def _portrait(self, row: Any) -> VerifiedPortrait | None:
        """The pickup's portrait, opened and checked (typed refusals); None if it has none."""
        grant_id = row["portrait_grant"]
        pickup_id, subject = str(row["pickup_id"]), str(row["subject_account"])
        expectation = self._expectations.pop(pickup_id, None)
        if grant_id is None:
            return None
        portraits = pharmacy_portraits(self.state)
        sealed = portraits.sealed(subject, str(grant_id))
        if sealed is None:
            return None
        if expectation is None:
            # After a restart, or a portrait deposited before the pickup: read the ledger.
            prescription = await credential_record(self.state, str(row["prescription_id"]))
            expectation, _ = await portraits.expectation(str(row["org"]), read_header(sealed),
                                                         prescription)
        return portraits.accept(str(row["org"]), sealed, expectation)

    async def _decide(self, check: Coroutine[Any, Any, LiveFace], faces: FaceService,
                      reference: ProtectedReference | None, subject: str,
                      portrait: VerifiedPortrait | None = None) -> str | None:
        """The refusal reason of the answer, or None when it is the patient."""
        try:
            live = await check
        except FaceError as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            return reason
        except ApiError as exc:
            if exc.code != "challenge_expired":
                raise
            return "challenge_expired"
        if portrait is not None:
            # the 1:1 operating point the reference path uses (face_engine.portrait)
            return None if portrait.matches(live.embedding) else "face_mismatch"
        if reference is None:
            return "no_reference"
        if not await self.state.run_face(faces.matches, reference, live, subject):
            return "face_mismatch"
        return None

    async def dispense(self, member: StaffMember, pickup_id: str) -> dict[str, Any]:
        require_role(member, ("pharmacist",), (PHARMACY,))
        row = self._row(member, pickup_id)
        if row["status"] == "dispensing" and pickup_id not in self._dispensing:
            # Left by a crash or an unknown outcome: ask the ledger (dispense_recovery).
            self._dispensing.add(pickup_id)
            try:
                return await self._recover(member, row)
            finally:
                self._dispensing.discard(pickup_id)
        # Claim the pickup first: of concurrent dispenses of one pickup only one goes on.
        if not self._set(pickup_id, "dispensing", expect="verified"):
            status = self.db.query_one("SELECT status FROM pickups WHERE pickup_id = ?",
                                       (pickup_id,))
            if status is not None and status["status"] in ("dispensing", "dispensed"):
                raise Conflict("this pickup was already dispensed", code="already_dispensed")
            raise Conflict("the face check has not verified this pickup",
                           code="not_verified")
        self._dispensing.add(pickup_id)
        try:
            return await self._dispense(member, row)
        finally:
            self._dispensing.discard(pickup_id)

    async def _dispense(self, member: StaffMember, row: Any) -> dict[str, Any]:
        pickup_id = str(row["pickup_id"])
        try:
            attestation = open_attestation(self.state, str(row["attestation"]), pickup_id,
                                           str(row["org"]), str(row["staff_name"]))
        except AttestationUnreadable:
            # Altered, or copied from another pickup or pharmacist's row: nothing submitted.
            self._set(pickup_id, "failed", expect="dispensing")
            raise Conflict("this pickup's face check does not open here; check the face "
                           "again with a new pickup", code="not_verified") from None
        try:
            raw = await self.state.ledger.for_staff(member).submit(
                "Pharmacy:Dispense", [str(row["prescription_id"]), attestation],
                endorsing_orgs=[str(row["issuer_org"]), PHARMACY],
                retry_policy=DISPENSE_RETRY,
                before_submit=lambda tx: dispense_recovery.record_submission(
                    self.db, pickup_id, tx))
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("replay"):
                # The attestation's nonce is burnt: an earlier Dispense of this pickup, whose
                # outcome a crash hid, committed.
                return await self._dispensed_earlier(row)
            self._set(pickup_id, "failed", expect="dispensing")
            raise
        except (EndorseError, CommitError):
            # Refused before ordering, or invalidated: nothing dispensed. The attestation is
            # spent for this pickup (a new pickup is needed).
            self._set(pickup_id, "failed", expect="dispensing")
            raise
        # Any other GatewayError (submit or commit status failed) leaves the outcome unknown:
        # the pickup stays `dispensing` and its next dispense asks the ledger.
        result = json_object(raw)
        portraits = pharmacy_portraits(self.state)  # built outside the transaction (faces.py)
        # The pickup dispensed and, at the last fill, the prescription's portraits gone: one
        # commit.
        with self.db.transaction() as conn:
            self._set(pickup_id, "dispensed", expect="dispensing", conn=conn)
            if int(result.get("remaining", 1)) <= 0:
                portraits.used_up(str(row["prescription_id"]), conn)
        log.info("pickup %s dispensed fill %d of prescription %s", pickup_id,
                 int(result["fill"]), row["prescription_id"])
        return _answer(result)

    async def _recover(self, member: StaffMember, row: Any) -> dict[str, Any]:
        pickup_id = str(row["pickup_id"])
        result = await dispense_recovery.committed_result(
            self.state.ledger.for_staff(member), row["dispense_txs"])
        if result is not None:
            self._set(pickup_id, "dispensed", expect="dispensing")
            log.info("pickup %s: its interrupted dispense had committed", pickup_id)
            return _answer(result)
        log.info("pickup %s: no dispense of it committed; submitting again", pickup_id)
        return await self._dispense(member, row)

    async def _dispensed_earlier(self, row: Any) -> dict[str, Any]:
        """The answer for a pickup whose committed Dispense is not among the recorded ones
        (its status was unknown): the prescription's counter as it is now."""
        self._set(str(row["pickup_id"]), "dispensed", expect="dispensing")
        fills = (await credential_record(self.state, str(row["prescription_id"])))["fills"]
        return {"dispensed": True, "fills_used": int(fills["used"]),
                "fills_allowed": int(fills["allowed"])}


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    used = int(result["fill"])
    return {"dispensed": True, "fills_used": used,
            "fills_allowed": used + int(result["remaining"])}


def pickup_service(state: AppState) -> PickupService:
    return state.service("pickup", PickupService)
