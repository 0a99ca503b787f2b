"""Enrolment at a registration desk: face challenge, frames, password, guardians, finish.

A session (table `enrolment_sessions`) belongs to the registrar who opened it (another staff
member gets 404) and expires after `settings.session_ttl_s`. What must never be stored stays
in this process's memory for the session only (`_Pending`): the master secret (generated when
the session opens), the live face of the passed check, and the password's product: the
password is wrapped into the vault at once (Argon2id) with a fresh face-factor key and then
dropped. A gateway restart loses open sessions' secrets; their finish answers 409
`enrolment_incomplete` and the desk starts again.

Duplicate faces: the frames step screens the 1:N index without adding, with the capture's
multi-frame template (normalised mean of its frontal frames) at the identification threshold
(calibrated for FPIR <= 1 % at 1M references, `face_engine/calibration.json`). Candidates do
not refuse the enrolment: the session goes `in_review` and a review (table
`enrolment_reviews`: candidate passport ids only, never a face or a score) waits for a
registrar of the enrolling org (`gateway/services/reviews.py`, `/api/v1/reviews`): "same
person" refuses the enrolment (session `refused`, its secrets dropped; 409 `duplicate_face`
from then on), "different person" reopens it, and finish then adds the face past exactly those
candidates. While a review is open the session cannot finish (409 `enrolment_in_review`), and
another enrolment whose face matches the face in review is refused (409 `face_in_review`).
Finish adds atomically (`screen_and_add`) and removes again if the enrolment does not
complete. At a per-org gateway the frames step then queues the consortium-wide screening of
the other orgs' galleries (enrolment_screening.py: in the background, its state persisted;
candidates open a review or join the open one) and returns; finish waits for its outcome
(bounded) and registers nothing unless it is clear or a review found a different person.
Where the consortium requires screening (Config `screening_required`), the passport is
registered provisional (level 1 on the ledger, KYC credential of level 1) and the enrolling
org records its own screening outcome (`Passport:Screen` "clear"); the other orgs record
theirs, and a majority clears it (chaincode/mip/passports.py).

Finish, and why it is crash-safe (database first, then ledger):

1. claim the session (open -> finishing, one UPDATE that also records the passport id, the
   hash of the passport key: a second finish while this one runs is 409);
2. local work: protected face reference for (passport id, enrolling org), KYC credential of
   the enrolling org into a new wallet, guardian shares (SLIP-39 sealed to each guardian),
   the holder state sealed under the master secret;
3. one transaction inserts the holder row as `pending` with everything needed to unlock;
4. `screen_and_add` puts the face in the dedup index (refused: row and reference removed);
5. the signed `Passport:Register` request is recorded in the session row, then submitted as
   the registrar;
6. one transaction marks the row `active` and the session finished.

A failure before the submission, or one the ledger confirms changed nothing there, undoes
2-4 and reopens the session. A failure after the submission whose outcome the ledger cannot
tell, or one after Register committed, keeps everything and leaves the session `finishing`;
so does a crash (kill -9) anywhere after 1. A `finishing` session that no task of this
process is finishing is recovered by the next finish (`_recover`): Passport:Get says
registered -> the local steps are completed (idempotent) and the passport id returned; not
registered -> the recorded request is submitted again (its holder nonce makes a second
commit impossible) and then completed, or, if the contract refuses it (expired) or nothing
was recorded, the local work is undone and the session reopened (a restarted gateway then
answers `enrolment_incomplete`: the desk starts again, and the face is no longer a
duplicate). Independently, a `pending` row older than two minutes is resolved by
`reconcile_pending` (run before each new session): it asks the ledger whether that passport
exists and either activates the row and finishes its session or removes it with its dedup
entry and face reference; so no half passport stays usable or blocks the person's next
enrolment. A crash inside 2 leaves at most a face reference for a passport id whose master
secret is gone: unreachable, matching nobody's future unlock (references are keyed per
passport id).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from face_engine.verify import cosine, identification_threshold
from gateway.core.errors import ApiError, Conflict, Gone, InvalidRequest, NotFound
from gateway.core.security import StaffMember
from gateway.fabric import ChaincodeError, GatewayError
from gateway.holder import keys, recovery, vault
from gateway.holder.errors import WeakPassword
from gateway.kyc.wallet import KycHolder

from .enrolment_screening import (
    ABANDONED,
    FAILED,
    IN_REVIEW,
    PASSED,
    PENDING,
    REFUSED,
    EnrolmentScreenings,
    ScreeningFailed,
    ScreeningState,
    ScreeningStillPending,
    enrolment_screenings,
)
from .face_frames import challenge_frames
from .faces import IssuedChallenge, LiveFace, face_service
from .holders import SCHEMA as HOLDERS_SCHEMA
from .holders import HolderState, holder_service
from .kyc import SCHEMA as KYC_SCHEMA
from .kyc import kyc_service
from .password_hardening import password_hardening

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.enrolment")

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrolment_sessions (
    session_id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    registrar TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    status TEXT NOT NULL,
    face_checked INTEGER NOT NULL DEFAULT 0,
    password_set INTEGER NOT NULL DEFAULT 0,
    guardians TEXT NOT NULL DEFAULT '[]',
    guardian_threshold INTEGER NOT NULL DEFAULT 0,
    passport_id TEXT,
    register_request TEXT,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS enrolment_reviews (
    review_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    org TEXT NOT NULL,
    candidates TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    reason TEXT,
    created REAL NOT NULL,
    decided REAL
);
CREATE TABLE IF NOT EXISTS guardian_shares (
    holder_passport_id TEXT NOT NULL,
    guardian_passport_id TEXT NOT NULL,
    share TEXT NOT NULL,
    PRIMARY KEY (holder_passport_id, guardian_passport_id)
);
"""

ENROL_PURPOSE = "enrolment"
DESK_KYC_LEVEL = 2  # face and password at a desk
PROVISIONAL_KYC_LEVEL = 1  # until the duplicate screening clears (Config screening_required)
MAX_GUARDIANS = 10
RECONCILE_AFTER_S = 120.0


@dataclass
class _Pending:
    """A session's secrets, in memory only."""

    master: bytes = field(repr=False)
    live: LiveFace | None = field(default=None, repr=False)
    # candidates a review found to be other people (for this live face only)
    cleared: frozenset[str] = frozenset()
    wrapped: str | None = field(default=None, repr=False)
    face_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EnrolmentView:
    session_id: str
    status: str
    face_checked: bool
    password_set: bool
    guardians: int
    guardian_threshold: int
    passport_id: str | None
    expires: float
    screening: ScreeningState | None = None  # the consortium-wide screening (None: not run)


@dataclass(frozen=True)
class EnrolmentResult:
    passport_id: str
    kyc_level: int
    shares: list[tuple[str, str]]  # (guardian passport id, sealed share JSON)
    seconds: float


class EnrolmentService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        self.db.ensure_columns("enrolment_sessions", {"register_request": "TEXT"})
        # Which org's gallery holds each candidate (passport id -> org): the org whose
        # registrar can confirm or deny it from its own reference (its /reviews/named).
        self.db.ensure_columns("enrolment_reviews", {"candidate_orgs": "TEXT"})
        # Tables this service reads before their own services are built (state.service's
        # lock is not re-entrant, so no service is built from inside a constructor).
        self.db.ensure(HOLDERS_SCHEMA)
        self.db.ensure(KYC_SCHEMA)
        self._pending: dict[str, _Pending] = {}
        # Sessions this process is finishing now: a `finishing` row not in here was left by a
        # crash (one gateway process per database) and its finish reconciles with the ledger.
        self._finishing: set[str] = set()
        self._screenings: EnrolmentScreenings | None = None

    def _jobs(self) -> EnrolmentScreenings:
        """The background consortium screening (enrolment_screening.py), bound to this
        service's sessions (built on first use: no service is built in a constructor)."""
        if self._screenings is None:
            self._screenings = enrolment_screenings(self.state)
            self._screenings.bind(self._live_template, self._screening_candidates)
        return self._screenings

    def _live_template(self, session_id: str) -> Any:
        pending = self._pending.get(session_id)
        if pending is None or pending.live is None:
            return None
        return pending.live.screening_template

    # --- sessions ------------------------------------------------------------------------
    def _row(self, session_id: str, staff: StaffMember) -> Any:
        row = self.db.query_one("SELECT * FROM enrolment_sessions WHERE session_id = ?",
                                (session_id,))
        if row is None or (row["org"], row["registrar"]) != (staff.org, staff.name):
            raise NotFound("no such enrolment session", code="enrolment_not_found")
        return row

    def _open_row(self, session_id: str, staff: StaffMember) -> Any:
        row = self._row(session_id, staff)
        if row["status"] == "finished":
            raise Conflict("this enrolment is already finished", code="already_finished")
        if row["status"] == "finishing":
            raise Conflict("this enrolment is being finished", code="finish_in_progress")
        if row["status"] == "refused":
            raise Conflict("a review found this person enrolled already", code="duplicate_face")
        if time.time() > float(row["expires"]):
            self._pending.pop(session_id, None)
            raise Gone("the enrolment session expired; start again", code="enrolment_expired")
        return row

    async def create(self, staff: StaffMember) -> tuple[str, IssuedChallenge, float]:
        await self.reconcile_pending()
        session_id = secrets.token_hex(32)
        challenge = face_service(self.state).issue_challenge(ENROL_PURPOSE, session_id)
        now = time.time()
        expires = now + self.state.settings.session_ttl_s
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO enrolment_sessions (session_id, org, registrar, challenge_id, "
                "status, created, expires) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                (session_id, staff.org, staff.name, challenge.challenge_id, now, expires))
        self._pending[session_id] = _Pending(keys.new_master_secret())
        return session_id, challenge, expires

    def view(self, session_id: str, staff: StaffMember) -> EnrolmentView:
        self._row(session_id, staff)
        jobs = self._jobs()
        jobs.sweep()
        row = self._row(session_id, staff)
        status = row["status"]
        if status == "open" and time.time() > float(row["expires"]):
            status = "expired"
        # The id is recorded when finishing starts; it is the holder's only once finished.
        passport_id = row["passport_id"] if status == "finished" else None
        return EnrolmentView(session_id, status, bool(row["face_checked"]),
                             bool(row["password_set"]), len(json.loads(row["guardians"])),
                             int(row["guardian_threshold"]), passport_id,
                             float(row["expires"]), jobs.get(session_id))

    def _secrets(self, session_id: str) -> _Pending:
        pending = self._pending.get(session_id)
        if pending is None:
            raise Conflict("this session's secrets are gone (the gateway restarted); start "
                           "again", code="enrolment_incomplete")
        return pending

    def new_challenge(self, session_id: str, staff: StaffMember) -> IssuedChallenge:
        """A fresh challenge for a retake (each challenge answers once)."""
        self._open_row(session_id, staff)
        challenge = face_service(self.state).issue_challenge(ENROL_PURPOSE, session_id)
        with self.db.transaction() as conn:
            conn.execute("UPDATE enrolment_sessions SET challenge_id = ? WHERE session_id = ?",
                         (challenge.challenge_id, session_id))
        return challenge

    async def add_frames(self, session_id: str, staff: StaffMember, challenge_id: str,
                         frames: list[tuple[bytes, float]]) -> str | None:
        """Liveness and quality, then duplicate screening (search only; finish adds).

        Returns None when screening found no candidate, else the id of the review the
        session now waits for."""
        row = self._open_row(session_id, staff)
        if row["status"] == "in_review":
            raise Conflict("this enrolment's face is in review", code="enrolment_in_review")
        pending = self._secrets(session_id)
        if challenge_id != row["challenge_id"]:
            raise NotFound("no such face challenge for this flow", code="challenge_not_found")
        faces = face_service(self.state)
        live = await faces.check_live(challenge_id, ENROL_PURPOSE, session_id,
                                      challenge_frames(self.db, challenge_id, frames))
        if self._in_review_elsewhere(session_id, live):
            raise Conflict("this face is in review for another enrolment; resolve that review "
                           "first", code="face_in_review")
        found = await self.state.run_face(faces.screen, live)
        candidates = {pid for pid, _score in found}
        pending.live, pending.cleared = live, frozenset()
        jobs = self._jobs()
        if jobs.enabled():
            # The other orgs' galleries, privately (docs/face.md, 5b), in the background
            # (5.4): the desk goes on; finish waits for the outcome (bounded).
            jobs.submit(session_id, staff)
        if not candidates:
            with self.db.transaction() as conn:
                conn.execute("UPDATE enrolment_sessions SET face_checked = 1, status = 'open' "
                             "WHERE session_id = ?", (session_id,))
            return None
        review_id = secrets.token_hex(16)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO enrolment_reviews (review_id, session_id, org, candidates, "
                "candidate_orgs, status, created) VALUES (?, ?, ?, ?, ?, 'open', ?)",
                (review_id, session_id, staff.org, json.dumps(sorted(candidates)),
                 json.dumps(dict.fromkeys(sorted(candidates), staff.org)), time.time()))
            conn.execute("UPDATE enrolment_sessions SET face_checked = 1, status = 'in_review' "
                         "WHERE session_id = ?", (session_id,))
        log.info("enrolment sent to review with %d candidate(s)", len(candidates))
        return review_id

    def _screening_candidates(self, session_id: str, attempt: int,
                              found: dict[str, list[str]]) -> None:
        """The background screening found candidates in other orgs' galleries: into the
        session's open review (its own index's candidates) or a new one; with the screening
        row, in one transaction (only for the attempt still pending)."""
        with self.db.transaction() as conn:
            job = conn.execute(
                "SELECT 1 FROM enrolment_screenings WHERE session_id = ? AND attempt = ? "
                "AND status = 'pending'", (session_id, attempt)).fetchone()
            session = conn.execute("SELECT status, org FROM enrolment_sessions "
                                   "WHERE session_id = ?", (session_id,)).fetchone()
            if job is None or session is None:
                return
            orgs = {pid: org for org, ids in sorted(found.items()) for pid in ids}
            review = conn.execute(
                "SELECT review_id, candidates, candidate_orgs FROM enrolment_reviews "
                "WHERE session_id = ? AND status = 'open'", (session_id,)).fetchone()
            review_id: str | None = None
            if review is not None:
                review_id = str(review["review_id"])
                merged = sorted(set(json.loads(review["candidates"])) | set(orgs))
                orgs = {**json.loads(review["candidate_orgs"] or "{}"), **orgs}
                conn.execute("UPDATE enrolment_reviews SET candidates = ?, candidate_orgs = ? "
                             "WHERE review_id = ?",
                             (json.dumps(merged), json.dumps(orgs, sort_keys=True), review_id))
            elif session["status"] == "open":
                review_id = secrets.token_hex(16)
                conn.execute(
                    "INSERT INTO enrolment_reviews (review_id, session_id, org, candidates, "
                    "candidate_orgs, status, created) VALUES (?, ?, ?, ?, ?, 'open', ?)",
                    (review_id, session_id, session["org"], json.dumps(sorted(orgs)),
                     json.dumps(orgs, sort_keys=True), time.time()))
                conn.execute("UPDATE enrolment_sessions SET status = 'in_review' "
                             "WHERE session_id = ?", (session_id,))
            self._jobs().mark(conn, session_id, attempt, "in_review", review_id)

    def _in_review_elsewhere(self, session_id: str, live: LiveFace) -> bool:
        """Whether the face matches the face of another session waiting for its review
        (those faces are not in the index yet: only in this process's memory)."""
        threshold = identification_threshold()
        rows = self.db.query("SELECT session_id FROM enrolment_sessions "
                             "WHERE status = 'in_review' AND session_id != ?", (session_id,))
        for row in rows:
            other = self._pending.get(str(row["session_id"]))
            if other is not None and other.live is not None and cosine(
                    other.live.screening_template, live.screening_template) >= threshold:
                return True
        return False

    def decide_review(self, review_id: str, staff: StaffMember, same_person: bool,
                      reason: str, seen: list[str]) -> dict[str, Any]:
        """A registrar of the enrolling org resolves an open review: the same person as a
        candidate refuses the enrolment; a different person reopens it past these
        candidates (reviews.py). `seen` is the candidate list the decision was made about:
        if the background screening added one since, nothing changes (409
        `review_changed`) and the registrar looks again."""
        row = self.db.query_one("SELECT * FROM enrolment_reviews WHERE review_id = ?",
                                (review_id,))
        if row is None or row["org"] != staff.org:
            raise NotFound("no such review", code="review_not_found")
        if row["status"] != "open":
            raise Conflict(f"this review is already {row['status']}", code="review_decided")
        session_id = str(row["session_id"])
        status = "refused" if same_person else "cleared"
        now = time.time()
        with self.db.transaction() as conn:
            # Read in the decision's own transaction: the screening's merge is another
            # transaction, so it lands either before this check or after the decision.
            current = conn.execute("SELECT candidates FROM enrolment_reviews "
                                   "WHERE review_id = ?", (review_id,)).fetchone()
            if current is not None and sorted(set(seen)) != json.loads(current["candidates"]):
                raise Conflict("the review's candidates changed since they were listed: "
                               "list the review again and decide on what it names now",
                               code="review_changed")
            changed = conn.execute(
                "UPDATE enrolment_reviews SET status = ?, decided_by = ?, reason = ?, "
                "decided = ? WHERE review_id = ? AND status = 'open'",
                (status, staff.name, reason, now, review_id)).rowcount
            if not changed:
                raise Conflict("this review was decided meanwhile", code="review_decided")
            conn.execute("UPDATE enrolment_sessions SET status = ? WHERE session_id = ? "
                         "AND status = 'in_review'",
                         ("refused" if same_person else "open", session_id))
            self._jobs().reviewed(conn, review_id, same_person)
        if same_person:
            self._pending.pop(session_id, None)  # the face and secrets go now
            self._jobs().forget(session_id)
        else:
            pending = self._pending.get(session_id)
            if pending is not None:
                # Exactly the candidates the registrar saw (checked above against the
                # review in the decision's transaction).
                pending.cleared = pending.cleared | frozenset(seen)
        log.info("review decided: %s", status)
        return self._review_view(self.db.query_one(
            "SELECT * FROM enrolment_reviews WHERE review_id = ?", (review_id,)))

    def reviews(self, staff: StaffMember, status: str | None = None) -> list[dict[str, Any]]:
        """The reviews of the caller's org (newest first), optionally of one status."""
        query = "SELECT * FROM enrolment_reviews WHERE org = ?"
        args: tuple[Any, ...] = (staff.org,)
        if status is not None:
            query += " AND status = ?"
            args += (status,)
        rows = self.db.query(query + " ORDER BY created DESC LIMIT 200", args)
        return [self._review_view(r) for r in rows]

    @staticmethod
    def _review_view(row: Any) -> dict[str, Any]:
        return {"review_id": row["review_id"], "session_id": row["session_id"],
                "status": row["status"], "candidates": json.loads(row["candidates"]),
                "candidate_orgs": json.loads(row["candidate_orgs"] or "{}"),
                "created": row["created"], "decided": row["decided"],
                "decided_by": row["decided_by"], "reason": row["reason"]}

    async def set_password(self, session_id: str, staff: StaffMember, password: str) -> None:
        """Wrap the master secret under the password and a fresh face-factor key, now."""
        self._open_row(session_id, staff)
        pending = self._secrets(session_id)
        try:
            vault.check_password(password)
        except WeakPassword as exc:
            raise InvalidRequest(str(exc), code="weak_password") from None
        kdf = vault.INTERACTIVE_KDF if self.state.settings.argon2_profile == "interactive" \
            else vault.DEFAULT_KDF
        face_key = vault.new_face_key()
        passport_id = keys.passport_id(pending.master)
        # Version 3 (password hardened by this org's and a helper org's OPRF) wherever a
        # helper answers (password_hardening.py).
        pending.wrapped = await password_hardening(self.state).wrap(
            pending.master, password, face_key, passport_id, staff.org, kdf)
        pending.face_key = face_key
        with self.db.transaction() as conn:
            conn.execute("UPDATE enrolment_sessions SET password_set = 1 WHERE session_id = ?",
                         (session_id,))

    async def set_guardians(self, session_id: str, staff: StaffMember, guardians: list[str],
                            threshold: int) -> None:
        """Guardians by passport id (they must exist on the ledger) and the threshold k."""
        self._open_row(session_id, staff)
        pending = self._secrets(session_id)
        if len(set(guardians)) != len(guardians) or len(guardians) > MAX_GUARDIANS:
            raise InvalidRequest(f"name at most {MAX_GUARDIANS} distinct guardians",
                                 code="invalid_guardians")
        if (threshold == 0) != (not guardians) or threshold > len(guardians):
            raise InvalidRequest("threshold must be 1 to the number of guardians (0 for none)",
                                 code="invalid_guardians")
        if keys.passport_id(pending.master) in guardians:
            raise InvalidRequest("a holder cannot be their own guardian",
                                 code="invalid_guardians")
        contract = self.state.ledger.for_staff(staff)
        resolved = []
        for guardian in guardians:
            try:
                record = json.loads(await contract.evaluate("Passport:Get", [guardian]))
            except ChaincodeError as exc:
                if exc.chaincode_message.startswith("not_found"):
                    raise InvalidRequest("a guardian is not a known passport",
                                         code="unknown_guardian") from None
                raise
            if record.get("status") != "active":
                raise InvalidRequest("a guardian's passport is not active",
                                     code="unknown_guardian")
            resolved.append({"passport_id": guardian, "public_key": record["public_key"]})
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE enrolment_sessions SET guardians = ?, guardian_threshold = ? "
                "WHERE session_id = ?", (json.dumps(resolved), threshold, session_id))

    # --- finish --------------------------------------------------------------------------
    async def finish(self, session_id: str, staff: StaffMember) -> EnrolmentResult:
        started = time.perf_counter()
        row = self._row(session_id, staff)
        if row["status"] == "finishing" and session_id not in self._finishing:
            self._finishing.add(session_id)
            try:
                recovered = await self._recover(session_id, staff, row)
            finally:
                self._finishing.discard(session_id)
            if recovered is not None:
                self._pending.pop(session_id, None)
                return recovered
        row = self._open_row(session_id, staff)
        pending = self._secrets(session_id)
        if row["status"] == "in_review":
            raise Conflict("this enrolment's face is in review; a registrar must decide it "
                           "first", code="enrolment_in_review")
        if pending.live is None or not row["face_checked"]:
            raise Conflict("the face is not captured yet", code="enrolment_incomplete")
        if await self._await_screening(session_id):
            row = self._open_row(session_id, staff)  # (a review may have opened meanwhile)
            if row["status"] == "in_review":
                raise Conflict("the screening found candidates; this enrolment is in review: "
                               "a registrar must decide it first", code="enrolment_in_review")
        if pending.wrapped is None or pending.face_key is None or not row["password_set"]:
            raise Conflict("the password is not set yet", code="enrolment_incomplete")
        with self.db.transaction() as conn:
            # The passport id is known before anything is submitted (the hash of the
            # passport key): recorded with the claim, a crash leaves it for the retry.
            claimed = conn.execute(
                "UPDATE enrolment_sessions SET status = 'finishing', passport_id = ? "
                "WHERE session_id = ? AND status = 'open'",
                (keys.passport_id(pending.master), session_id)).rowcount
        if not claimed:
            raise Conflict("this enrolment is being finished", code="finish_in_progress")
        self._finishing.add(session_id)
        try:
            result = await self._finish(session_id, staff, row, pending)
        finally:
            self._finishing.discard(session_id)
        self._pending.pop(session_id, None)
        seconds = time.perf_counter() - started
        log.info("enrolment finished in %.2f s", seconds)
        return EnrolmentResult(result.passport_id, result.kyc_level, result.shares, seconds)

    async def _await_screening(self, session_id: str) -> bool:
        """Before finish registers anything: the consortium-wide screening of this face
        passed (clear, or its review found a different person). Waits up to
        `finish_wait_s` for a running one; True when it ran (the row is to be read again).
        Refused: still running (409 `screening_pending`: finish again), failed (503
        `screening_failed`: retry it), candidates (the session is in review)."""
        jobs = self._jobs()
        if not jobs.enabled():
            return False
        jobs.sweep()
        screening = jobs.get(session_id)
        if screening is not None and screening.status == PENDING:
            await jobs.wait(session_id, jobs.finish_wait_s)
            screening = jobs.get(session_id)
        if screening is None or screening.status == ABANDONED:
            raise Conflict("the face is not screened; capture it again",
                           code="enrolment_incomplete")
        if screening.status == PENDING:
            raise ScreeningStillPending("the consortium-wide screening of this face is still "
                                        "running; finish again shortly")
        if screening.status == FAILED:
            raise ScreeningFailed(
                "the consortium-wide screening did not complete "
                f"({screening.error_code}: {screening.error_message}); nothing is enrolled; "
                "retry the screening or capture the face again",
                details={"cause": screening.error_code, "retryable": True})
        if screening.status == IN_REVIEW:
            raise Conflict("the screening found candidates; this enrolment is in review: a "
                           "registrar must decide it first", code="enrolment_in_review")
        if screening.status == REFUSED:
            raise Conflict("a review found this person enrolled already", code="duplicate_face")
        if screening.status not in PASSED:
            raise Conflict(f"the screening of this face is {screening.status}",
                           code="enrolment_incomplete")
        return True

    async def retry_screening(self, session_id: str, staff: StaffMember) -> ScreeningState:
        """A new attempt of a failed consortium screening, for the face already captured."""
        row = self._open_row(session_id, staff)
        pending = self._secrets(session_id)
        jobs = self._jobs()
        screening = jobs.get(session_id)
        if screening is None or pending.live is None or not row["face_checked"]:
            raise Conflict("no screening to retry: capture the face", code="enrolment_incomplete")
        if screening.status != FAILED:
            raise Conflict(f"the screening is {screening.status}, not failed",
                           code="screening_not_failed")
        jobs.submit(session_id, staff)
        state = jobs.get(session_id)
        assert state is not None
        return state

    async def _finish(self, session_id: str, staff: StaffMember, row: Any,
                      pending: _Pending) -> EnrolmentResult:
        assert pending.live is not None and pending.wrapped is not None
        assert pending.face_key is not None
        org = staff.org
        faces = face_service(self.state)
        holders = holder_service(self.state)
        kyc = kyc_service(self.state)
        master = pending.master
        passport = keys.passport_key(master)
        passport_id = keys.passport_id(master)
        guardians = json.loads(row["guardians"])
        threshold = int(row["guardian_threshold"])

        # Provisional until the consortium's screening clears it: the ledger caps the level at
        # 1 (the contract enforces it) and the wallet's credential says no more either.
        provisional = await self._screening_required(staff)
        level = PROVISIONAL_KYC_LEVEL if provisional else DESK_KYC_LEVEL
        reference = faces.enrol_reference(pending.live, passport_id, org)
        added = submitted = False
        try:
            wallet = KycHolder()
            await kyc.issue(org, wallet, level, passport_id, staff)
            shares: list[tuple[str, str]] = []
            if guardians:
                sealed = recovery.split(
                    master, [_raw_key(g["public_key"]) for g in guardians], threshold)
                shares = [(g["passport_id"], s.to_json())
                          for g, s in zip(guardians, sealed, strict=True)]
            holder_state = HolderState(wallet, level, org, [])
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO holders (passport_id, enrolling_org, status, wrapped_secret, "
                    "face_key_sealed, state_sealed, created) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                    (passport_id, org, pending.wrapped,
                     holders.seal_face_key(pending.face_key, passport_id),
                     holder_state.seal(master, passport_id), time.time()))
                conn.executemany(
                    "INSERT INTO guardian_shares (holder_passport_id, guardian_passport_id, "
                    "share) VALUES (?, ?, ?)", [(passport_id, g, s) for g, s in shares])
            decision = await self.state.run_face(faces.screen_and_add, passport_id,
                                                 pending.live, pending.cleared)
            if not decision.added:
                raise Conflict("this person appears to be enrolled already",
                               code="duplicate_face")
            added = True
            request = passport.sign_request("passport.register", {
                "face_commitment": reference.commitment,
                "enrolment_nonce": secrets.token_hex(16),
                "kyc_level": DESK_KYC_LEVEL,
                "guardians": [g["public_key"] for g in guardians],
                "guardian_threshold": threshold,
            }, self.state.settings.channel)
            # What is about to be submitted is recorded first: a retry after a crash can
            # submit it again (the master secret is gone with the process by then).
            with self.db.transaction() as conn:
                conn.execute("UPDATE enrolment_sessions SET register_request = ? "
                             "WHERE session_id = ?", (json.dumps(request), session_id))
            submitted = True
            await self._register(staff, passport_id, request)
            self._complete(session_id, passport_id)
            if provisional:
                await self._record_own_screening(staff, passport_id, bool(pending.cleared))
        except BaseException as exc:
            if submitted and await self._maybe_registered(org, passport_id, exc):
                # The ledger has (or may have) the passport: keep everything, leave the
                # session `finishing`; the next finish completes it (`_recover`).
                raise
            self._undo(passport_id, remove_face=added)
            faces.revoke_reference(reference)
            self._reopen(session_id)
            raise
        return EnrolmentResult(passport_id, level, shares, 0.0)

    async def _screening_required(self, staff: StaffMember) -> bool:
        contract = self.state.ledger.for_staff(staff)
        setting = json.loads(await contract.evaluate("Config:Get", ["screening_required"]))
        return bool(setting.get("value"))

    async def _record_own_screening(self, staff: StaffMember, passport_id: str,
                                    reviewed: bool) -> None:
        """This org's vote on the new provisional passport (its own gallery had no candidate,
        or its registrar's review found a different person). One vote of the majority the
        contract needs; a failure leaves the passport provisional (retried by a registrar
        with Passport:Screen), not the enrolment undone."""
        reason = ("enrolling org: review found a different person" if reviewed
                  else "enrolling org: no candidate in its gallery")
        try:
            await self.state.ledger.for_staff(staff).submit(
                "Passport:Screen", [passport_id, "clear", reason])
        except (ChaincodeError, GatewayError) as exc:
            log.warning("recording this org's screening outcome failed: %s",
                        type(exc).__name__)

    async def _maybe_registered(self, org: str, passport_id: str,
                                exc: BaseException) -> bool:
        """After a failure past the submission: False only if the ledger says no passport."""
        if not isinstance(exc, Exception):
            return True  # cancelled: do not wait on the ledger now
        if isinstance(exc, ChaincodeError):
            return False  # the contract refused Register: nothing committed
        try:
            return await self._on_ledger(org, passport_id)
        except (ApiError, GatewayError, ChaincodeError):
            return True  # unknown: the retry asks again

    def _complete(self, session_id: str, passport_id: str) -> None:
        """The local steps after Register committed (idempotent)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE holders SET status = 'active' WHERE passport_id = ? "
                         "AND status = 'pending'", (passport_id,))
            conn.execute("UPDATE enrolment_sessions SET status = 'finished', passport_id = ?, "
                         "register_request = NULL WHERE session_id = ?",
                         (passport_id, session_id))

    def _reopen(self, session_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE enrolment_sessions SET status = 'open', passport_id = NULL, "
                         "register_request = NULL WHERE session_id = ? "
                         "AND status = 'finishing'", (session_id,))

    async def _recover(self, session_id: str, staff: StaffMember,
                       row: Any) -> EnrolmentResult | None:
        """Finish a session a crash (or an unknown ledger outcome) left `finishing`.

        Registered on the ledger: complete the local steps and return the passport id. Not
        registered and the signed request recorded with the holder row still pending: submit
        it again. Otherwise roll the local work back and reopen the session (None: finish
        goes on as for an open session, which needs the secrets of this process)."""
        passport_id = row["passport_id"]
        request = row["register_request"]
        if passport_id is not None:
            passport_id = str(passport_id)
            holder = self.db.query_one(
                "SELECT status FROM holders WHERE passport_id = ?", (passport_id,))
            registered = await self._on_ledger(staff.org, passport_id)
            if not registered and request is not None and holder is not None:
                try:
                    await self._register(staff, passport_id, json.loads(request))
                    registered = True
                except ChaincodeError as exc:
                    log.info("enrolment retry: Register refused (%s); rolling back",
                             exc.chaincode_message.split(":", 1)[0])
            if registered:
                self._complete(session_id, passport_id)
                log.info("enrolment recovered after an interrupted finish")
                return EnrolmentResult(passport_id, DESK_KYC_LEVEL,
                                       self._shares(passport_id), 0.0)
            self._undo(passport_id, remove_face=True)
            faces = face_service(self.state)
            reference = faces.reference(passport_id, staff.org)
            if reference is not None:
                faces.revoke_reference(reference)
        self._reopen(session_id)
        return None

    def _shares(self, passport_id: str) -> list[tuple[str, str]]:
        rows = self.db.query(
            "SELECT guardian_passport_id, share FROM guardian_shares "
            "WHERE holder_passport_id = ?", (passport_id,))
        return [(str(r["guardian_passport_id"]), str(r["share"])) for r in rows]

    async def _register(self, staff: StaffMember, passport_id: str,
                        request: dict[str, Any]) -> None:
        contract = self.state.ledger.for_staff(staff)
        try:
            await contract.submit("Passport:Register", [json.dumps(request)])
        except GatewayError:
            # Ambiguous (e.g. a commit-status timeout): the ledger says whether it happened.
            if not await self._on_ledger(staff.org, passport_id):
                raise

    async def _on_ledger(self, org: str, passport_id: str) -> bool:
        try:
            await self.state.ledger.carrier(org).evaluate("Passport:Get", [passport_id])
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("not_found"):
                return False
            raise
        return True

    def _undo(self, passport_id: str, *, remove_face: bool) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM holders WHERE passport_id = ? AND status = 'pending'",
                         (passport_id,))
            conn.execute("DELETE FROM guardian_shares WHERE holder_passport_id = ?",
                         (passport_id,))
        kyc_service(self.state).forget_credentials(passport_id)
        if remove_face:
            face_service(self.state).remove_from_dedup(passport_id)

    async def reconcile_pending(self, older_than_s: float = RECONCILE_AFTER_S) -> int:
        """Resolve holder rows a crash left `pending` (see the module docstring)."""
        rows = self.db.query(
            "SELECT passport_id, enrolling_org FROM holders WHERE status = 'pending' "
            "AND created < ?", (time.time() - older_than_s,))
        faces = face_service(self.state)
        busy = {str(r["passport_id"]) for r in self.db.query(
            "SELECT session_id, passport_id FROM enrolment_sessions WHERE status = 'finishing' "
            "AND passport_id IS NOT NULL") if r["session_id"] in self._finishing}
        for row in rows:
            passport_id, org = str(row["passport_id"]), str(row["enrolling_org"])
            if passport_id in busy:
                continue  # being finished by this process now
            try:
                exists = await self._on_ledger(org, passport_id)
            except (ApiError, GatewayError, ChaincodeError):
                continue  # ledger unreachable: try again next time
            if exists:
                with self.db.transaction() as conn:
                    conn.execute("UPDATE holders SET status = 'active' WHERE passport_id = ?",
                                 (passport_id,))
                    # The desk's session learns its passport id (GET /enrolments/current).
                    conn.execute("UPDATE enrolment_sessions SET status = 'finished', "
                                 "register_request = NULL WHERE passport_id = ? "
                                 "AND status = 'finishing'", (passport_id,))
            else:
                self._undo(passport_id, remove_face=True)
                reference = faces.reference(passport_id, org)
                if reference is not None:
                    faces.revoke_reference(reference)
                with self.db.transaction() as conn:
                    conn.execute("UPDATE enrolment_sessions SET status = 'open', "
                                 "passport_id = NULL, register_request = NULL "
                                 "WHERE passport_id = ? AND status = 'finishing'",
                                 (passport_id,))
        return len(rows)


def _raw_key(public_b64: str) -> bytes:
    import base64

    return base64.b64decode(public_b64)


def enrolment_service(state: AppState) -> EnrolmentService:
    return state.service("enrolment", EnrolmentService)
