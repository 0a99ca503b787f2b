"""The consortium-wide screening of an enrolment, run in the background (docs/face.md 5.4).

The frames request ends once liveness, quality and the multi-frame template are done and the
enrolling org's own index is searched; the private screening of the other orgs' galleries
(screening_consortium.py, seconds per enrolment) runs here while the desk goes on with the
password and the guardians. Finish waits for its outcome for at most `finish_wait_s` (the
passport is registered only once the screening cleared or a review decided: see
enrolment.py).

One row per session in `enrolment_screenings` (no face, no score, no template):

    pending    queued or running (attempt n)
    clear      every other org's gallery answered, with no candidate
    in_review  candidates: a review (enrolment_reviews) names them, the session waits for it
    reviewed   that review found a different person
    refused    that review found the same person
    failed     a party did not answer in time, refused or deviated: its error code is kept;
               retryable (a retry is a new request recorded on the ledger)
    abandoned  the gateway restarted: the session's live face and secrets are gone with the
               process, so the desk starts again (nothing was enrolled)

Crash consistency, as for finish (`_finishing`): the row is written `pending` with a new
attempt number before its task starts, and a task changes only the row of its own attempt
while it is still `pending`. A `pending` row with no task of this process behind it was left
by a worker that died or by a crash; `sweep` (before each read of the state and each finish)
re-queues it where this process still holds the session's live face, else marks it
`abandoned`. The template itself stays in memory (the session's `_Pending`), never in the
database.

At most `MAX_PARALLEL` screenings run at once (each uses both cores of a party's machine);
the others wait their turn. Each has a deadline (`job_deadline_s`) beyond the parties' own
timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.core.errors import ApiError
from gateway.core.security import StaffMember

from .private_screening import ScreeningUnavailable
from .screening_consortium import consortium_screening

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.enrolment")

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrolment_screenings (
    session_id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    registrar TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    review_id TEXT,
    error_code TEXT,
    error_message TEXT,
    started REAL NOT NULL,
    updated REAL NOT NULL
);
"""

PENDING, CLEAR, IN_REVIEW, REVIEWED, REFUSED, FAILED, ABANDONED = (
    "pending", "clear", "in_review", "reviewed", "refused", "failed", "abandoned")
PASSED = frozenset({CLEAR, REVIEWED})  # finish may register the passport
MAX_PARALLEL = 2
FINISH_WAIT_S = 45.0

# (session id, attempt, candidate passport ids by gallery org) -> None: the enrolment
# service sends the session to review (in one transaction with this row).
OnCandidates = Callable[[str, int, dict[str, list[str]]], None]
TemplateOf = Callable[[str], "np.ndarray | None"]


class ScreeningFailed(ApiError):
    """The consortium-wide screening of this face did not complete (a party did not answer
    in time, refused or deviated); nothing is enrolled. Retry it (POST
    /enrolments/current/screening) or capture the face again."""

    status, code = 503, "screening_failed"


class ScreeningStillPending(ApiError):
    """Finish waited `finish_wait_s` and the screening is still running: finish again."""

    status, code = 409, "screening_pending"


@dataclass(frozen=True)
class ScreeningState:
    status: str
    attempt: int
    review_id: str | None
    error_code: str | None
    error_message: str | None

    @property
    def retryable(self) -> bool:
        return self.status == FAILED


class EnrolmentScreenings:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        self.finish_wait_s = FINISH_WAIT_S
        self.job_deadline_s: float | None = None  # None: 3 x the parties' timeout + 30 s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._template_of: TemplateOf = lambda _sid: None
        self._on_candidates: OnCandidates = lambda _sid, _attempt, _ids: None

    def bind(self, template_of: TemplateOf, on_candidates: OnCandidates) -> None:
        """The enrolment service's hooks: the live template of a session (memory only) and
        what candidates do to it."""
        self._template_of, self._on_candidates = template_of, on_candidates

    def enabled(self) -> bool:
        return consortium_screening(self.state).enabled()

    # --- state ---------------------------------------------------------------------------
    def get(self, session_id: str) -> ScreeningState | None:
        row = self.db.query_one("SELECT * FROM enrolment_screenings WHERE session_id = ?",
                                (session_id,))
        if row is None:
            return None
        return ScreeningState(str(row["status"]), int(row["attempt"]), row["review_id"],
                              row["error_code"], row["error_message"])

    def submit(self, session_id: str, staff: StaffMember) -> int:
        """Queue a new attempt for the session's current live face (a recapture or a retry:
        the previous attempt's task, if any, is cancelled and its outcome ignored)."""
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT attempt FROM enrolment_screenings WHERE session_id = ?",
                               (session_id,)).fetchone()
            attempt = 1 if row is None else int(row["attempt"]) + 1
            conn.execute(
                "INSERT OR REPLACE INTO enrolment_screenings (session_id, org, registrar, "
                "attempt, status, started, updated) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (session_id, staff.org, staff.name, attempt, now, now))
        self._start(session_id, attempt, staff)
        return attempt

    def mark(self, conn: Any, session_id: str, attempt: int, status: str,
             review_id: str | None = None) -> None:
        """Within the caller's transaction: the new status of `attempt`, while pending."""
        conn.execute("UPDATE enrolment_screenings SET status = ?, review_id = ?, updated = ? "
                     "WHERE session_id = ? AND attempt = ? AND status = 'pending'",
                     (status, review_id, time.time(), session_id, attempt))

    def reviewed(self, conn: Any, review_id: str, same_person: bool) -> None:
        """Within the review decision's transaction: the screening that sent the session to
        this review is decided with it."""
        conn.execute("UPDATE enrolment_screenings SET status = ?, updated = ? "
                     "WHERE review_id = ? AND status = 'in_review'",
                     (REFUSED if same_person else REVIEWED, time.time(), review_id))

    def sweep(self) -> None:
        """Pending rows with no task of this process: re-queue (the live face is still
        here) or abandon (it went with a restarted process)."""
        rows = self.db.query("SELECT session_id, org, registrar, attempt FROM "
                             "enrolment_screenings WHERE status = 'pending'")
        for row in rows:
            session_id = str(row["session_id"])
            if session_id in self._tasks:
                continue
            if self._template_of(session_id) is not None:
                staff = StaffMember(str(row["org"]), str(row["registrar"]), "registrar")
                log.info("screening resumed after its worker stopped")
                self.submit(session_id, staff)
            else:
                with self.db.transaction() as conn:
                    conn.execute("UPDATE enrolment_screenings SET status = 'abandoned', "
                                 "updated = ? WHERE session_id = ? AND attempt = ? AND "
                                 "status = 'pending'",
                                 (time.time(), session_id, int(row["attempt"])))

    async def wait(self, session_id: str, timeout: float) -> None:
        """Until the session's running screening ends, or `timeout` (it is not cancelled)."""
        task = self._tasks.get(session_id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)

    def forget(self, session_id: str) -> None:
        """The session ended (refused, expired): stop its screening."""
        task = self._tasks.pop(session_id, None)
        if task is not None:
            task.cancel()

    # --- the worker ----------------------------------------------------------------------
    def _start(self, session_id: str, attempt: int, staff: StaffMember) -> None:
        old = self._tasks.pop(session_id, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._run(session_id, attempt, staff))
        self._tasks[session_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(session_id) is t:
                del self._tasks[session_id]

        task.add_done_callback(done)

    async def _run(self, session_id: str, attempt: int, staff: StaffMember) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_PARALLEL)
        consortium = consortium_screening(self.state)
        deadline = self.job_deadline_s or 3 * consortium.timeout + 30.0
        async with self._slots:
            template = self._template_of(session_id)
            if template is None:
                return  # the session ended meanwhile; sweep abandons the row
            try:
                found = await asyncio.wait_for(consortium.screen(staff, template), deadline)
            except TimeoutError:
                self._failed(session_id, attempt, ScreeningUnavailable(
                    "the consortium-wide screening did not end in time"))
                return
            except ApiError as exc:
                self._failed(session_id, attempt, exc)
                return
            except Exception as exc:  # a bug or an unexpected error: typed for the desk
                log.exception("consortium screening failed unexpectedly")
                self._failed(session_id, attempt, ScreeningFailed(type(exc).__name__))
                return
        candidates = {org: list(ids) for org, ids in found.items() if ids}
        if candidates:
            self._on_candidates(session_id, attempt, candidates)
            log.info("consortium screening: %d candidate(s), sent to review",
                     sum(len(ids) for ids in candidates.values()))
        else:
            with self.db.transaction() as conn:
                self.mark(conn, session_id, attempt, CLEAR)
            log.info("consortium screening: clear")

    def _failed(self, session_id: str, attempt: int, exc: ApiError) -> None:
        log.warning("consortium screening did not complete: %s", exc.code)
        with self.db.transaction() as conn:
            conn.execute("UPDATE enrolment_screenings SET status = 'failed', error_code = ?, "
                         "error_message = ?, updated = ? WHERE session_id = ? AND attempt = ? "
                         "AND status = 'pending'",
                         (exc.code, exc.message, time.time(), session_id, attempt))

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def enrolment_screenings(state: AppState) -> EnrolmentScreenings:
    return state.service("enrolment_screenings", EnrolmentScreenings)
