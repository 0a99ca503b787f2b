"""Live face capture for every flow: single-use liveness challenges, checked frames,
protected references per (holder account, institution), and the duplicate-face index.

What the gateway keeps of a face: protected references (face_engine.protect: encrypted,
per-holder keyed rotation; their commitment goes on the ledger) and the encrypted dedup
index. Frames live only in memory during one check; no raw embedding is stored or logged.

Flows (enrolment, desk unlock, account opening, pharmacy pickup) each call
`issue_challenge(purpose, subject)`, show the poses to the person, then `check_live(...)`
with the frames; the challenge is consumed by its first check, passed or failed, so a
recorded answer cannot be replayed. Frame times are their arrival at the gateway
(face_frames.gateway_time, the clock challenges are issued on too), never the client's.

Every 1:1 decision (desk unlock, account opening, guardian recovery, pharmacy pickup) first
checks the stored reference against the commitment on the ledger (`committed_reference`: the
passport's or the account's `face_commitment`, which the holder signed and a majority of orgs
committed) and refuses a mismatch with 409 `face_reference_mismatch`, before any challenge or
face work: a reference swapped or re-enrolled in this database without the ledger is never
matched against.

A counter may instead stream the frames while the person turns: `add_live_frame(...)` per
frame (the first one consumes the challenge; each frame's face models run on arrival), then
`finish_live(...)`, which decides. The streamed frames' observations (landmarks, poses,
embeddings; never pixels) stay in memory only until the decision or the challenge's end.
"""

from __future__ import annotations

import hmac
import json
import logging
import random
import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from face_engine.dedup.index import DedupIndex, EnrolmentDecision
from face_engine.errors import LivenessFailed
from face_engine.liveness import (
    Challenge,
    Frame,
    LivenessResult,
    LivenessSession,
    check_session,
)
from face_engine.protect.errors import MalformedReference
from face_engine.protect.protector import TemplateProtector
from face_engine.protect.reference import ProtectedReference
from face_engine.protect.registry import RegistryEntry
from face_engine.verify import identification_threshold, operating_point
from gateway.core.errors import ApiError, Conflict, Gone, NotFound
from gateway.store import Database

from .face_frames import gateway_time

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.faces")

SCHEMA = """
CREATE TABLE IF NOT EXISTS face_challenges (
    challenge_id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    subject TEXT NOT NULL,
    nonce TEXT NOT NULL,
    poses TEXT NOT NULL,
    issued_at REAL NOT NULL,
    deadline REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS face_slots (
    holder_pseudonym TEXT NOT NULL,
    institution TEXT NOT NULL,
    highest_version INTEGER NOT NULL,
    commitment TEXT,
    version INTEGER,
    PRIMARY KEY (holder_pseudonym, institution)
);
CREATE TABLE IF NOT EXISTS face_references (
    commitment TEXT PRIMARY KEY,
    reference TEXT NOT NULL
);
"""

VERIFY_POINT = "far_1e-3"  # 1:1 matches (desk unlock, pickup)
# A challenge's answer may arrive this long after its deadline (upload and queueing time).
ANSWER_GRACE_S = 10.0
# Streamed checks held at once: each is small (no pixels), the cap stops a client that opens
# many and never finishes from growing memory without bound.
MAX_OPEN_STREAMS = 512


@dataclass(frozen=True)
class IssuedChallenge:
    challenge_id: str
    poses: tuple[str, ...]
    issued_at: float
    deadline: float


@dataclass(frozen=True)
class LiveFace:
    """A passed liveness check (in memory only): the frontal frame's embedding (1:1
    references and matches) and the multi-frame template of the capture's frontal frames
    (duplicate screening; None where only one image was seen: the embedding serves)."""

    embedding: np.ndarray
    template: np.ndarray | None = None

    @property
    def screening_template(self) -> np.ndarray:
        return self.embedding if self.template is None else self.template


@dataclass
class _LiveStream:
    """A challenge being answered frame by frame."""

    session: LivenessSession = field(repr=False)
    purpose: str
    subject: str
    ends: float  # when it is dropped unanswered


class TooManyStreams(ApiError):
    status, code = 503, "busy"


class FaceReferenceMismatch(ApiError):
    """The stored face reference is not the one the ledger's commitment names (or the ledger
    names none): this gateway's database disagrees with what the holder signed. Nothing is
    matched and nothing changes; the operator must find out why (docs/gateway.md)."""

    status, code = 409, "face_reference_mismatch"


class SqliteReferenceRegistry:
    """face_engine's ReferenceRegistry over the gateway database: the current reference's
    commitment per (holder pseudonym, institution) slot, and the highest version ever used."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def current(self, slot: tuple[str, str]) -> RegistryEntry | None:
        row = self.db.query_one(
            "SELECT commitment, version FROM face_slots "
            "WHERE holder_pseudonym = ? AND institution = ? AND commitment IS NOT NULL", slot)
        return None if row is None else RegistryEntry(row["commitment"], int(row["version"]))

    def highest_version(self, slot: tuple[str, str]) -> int:
        row = self.db.query_one(
            "SELECT highest_version FROM face_slots "
            "WHERE holder_pseudonym = ? AND institution = ?", slot)
        return int(row["highest_version"]) if row is not None else 0

    def set_current(self, slot: tuple[str, str], entry: RegistryEntry,
                    conn: sqlite3.Connection | None = None) -> None:
        """Make `entry` the slot's current reference (in the caller's transaction `conn`
        when given)."""
        sql = ("INSERT INTO face_slots (holder_pseudonym, institution, highest_version, "
               "commitment, version) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (holder_pseudonym, institution) DO UPDATE SET "
               "highest_version = MAX(highest_version, excluded.highest_version), "
               "commitment = excluded.commitment, version = excluded.version")
        params = (*slot, entry.version, entry.commitment, entry.version)
        if conn is not None:
            conn.execute(sql, params)
            return
        with self.db.transaction() as own:
            own.execute(sql, params)

    def reserve_version(self, slot: tuple[str, str], version: int) -> None:
        """Record `version` as used in the slot, leaving its current reference as it is."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO face_slots (holder_pseudonym, institution, highest_version) "
                "VALUES (?, ?, ?) ON CONFLICT (holder_pseudonym, institution) DO UPDATE SET "
                "highest_version = MAX(highest_version, excluded.highest_version)",
                (*slot, version))

    def revoke(self, slot: tuple[str, str], commitment: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE face_slots SET commitment = NULL, version = NULL "
                "WHERE holder_pseudonym = ? AND institution = ? AND commitment = ?",
                (*slot, commitment))
            return cur.rowcount > 0


class _StagingRegistry:
    """The database's slots as the protector reads them, except that a new enrolment only
    reserves its version: the reference it makes is not current until `make_current` (a
    re-enrolment whose commitment must reach the ledger first)."""

    def __init__(self, registry: SqliteReferenceRegistry) -> None:
        self.registry = registry

    def current(self, slot: tuple[str, str]) -> RegistryEntry | None:
        return self.registry.current(slot)

    def highest_version(self, slot: tuple[str, str]) -> int:
        return self.registry.highest_version(slot)

    def set_current(self, slot: tuple[str, str], entry: RegistryEntry) -> None:
        self.registry.reserve_version(slot, entry.version)

    def revoke(self, slot: tuple[str, str], commitment: str) -> bool:
        return False  # a staged reference is never current


class FaceService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        seed = state.settings.liveness_seed
        # Tests and the browser test fix the poses; production draws them from the OS CSPRNG.
        self._rng: random.Random = (
            random.Random(seed) if seed is not None  # noqa: S311 (poses only; nonce is secrets)
            else random.SystemRandom())
        # the face KEK wraps each reference's data key; both keys stay in the key provider
        self._registry = SqliteReferenceRegistry(self.db)
        self.protector = TemplateProtector(
            state.keys.kek("face"), state.keys.deriver("face-transform"),
            registry=self._registry)
        # Makes references that are stored but not yet current (`stage_reference`).
        self._stager = TemplateProtector(
            state.keys.kek("face"), state.keys.deriver("face-transform"),
            registry=_StagingRegistry(self._registry))
        self._dedup: DedupIndex | None = None
        self._streams: dict[str, _LiveStream] = {}

    # --- challenges ----------------------------------------------------------------------
    def issue_challenge(self, purpose: str, subject: str,
                        conn: sqlite3.Connection | None = None) -> IssuedChallenge:
        """A new single-use challenge bound to a flow (`purpose`) and its subject (a session,
        passport or prescription id). With `conn`, written in the caller's transaction (one
        commit for a flow's rows), else in one of its own."""
        from face_engine.liveness import new_challenge

        # Challenge times and frame arrivals share one clock (face_frames.gateway_time).
        challenge = new_challenge(self._rng, now=gateway_time())
        allowed = self.state.settings.liveness_poses
        if allowed:
            # Redraw until only allowed turns appear (a few draws on average for two poses);
            # the poses stay random, only the alphabet shrinks.
            for _ in range(1000):
                if set(challenge.poses) <= set(allowed):
                    break
                challenge = new_challenge(self._rng, now=challenge.issued_at)
            else:
                raise ValueError(f"no challenge uses only the poses {allowed}")
        challenge_id = secrets.token_hex(16)
        row = (challenge_id, purpose, subject, challenge.nonce, json.dumps(challenge.poses),
               challenge.issued_at, challenge.deadline)
        sql = ("INSERT INTO face_challenges (challenge_id, purpose, subject, nonce, poses, "
               "issued_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?)")
        if conn is not None:
            conn.execute(sql, row)
        else:
            with self.db.transaction() as own:
                own.execute(sql, row)
        return IssuedChallenge(challenge_id, challenge.poses, challenge.issued_at,
                               challenge.deadline)

    def _consume(self, challenge_id: str, purpose: str, subject: str) -> Challenge:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM face_challenges WHERE challenge_id = ?", (challenge_id,)
            ).fetchone()
            if row is None or row["purpose"] != purpose or row["subject"] != subject:
                raise NotFound("no such face challenge for this flow",
                               code="challenge_not_found")
            if row["used"]:
                raise Conflict("this face challenge was already answered; ask for a new one",
                               code="challenge_used")
            conn.execute("UPDATE face_challenges SET used = 1 WHERE challenge_id = ?",
                         (challenge_id,))
        return Challenge(nonce=row["nonce"], poses=tuple(json.loads(row["poses"])),
                         issued_at=float(row["issued_at"]), deadline=float(row["deadline"]))

    async def check_live(self, challenge_id: str, purpose: str, subject: str,
                         frames: list[Frame], *, template: bool = True) -> LiveFace:
        """Consume the challenge, run the liveness check on all frames at once.
        `template=False` for a flow that never screens for duplicates (a pickup): its
        LiveFace has no multi-frame template, and later frontal frames cost one model run
        fewer (face_engine.liveness.LivenessSession).

        Raises LivenessFailed (code `liveness_failed`, `.reason` a stable sub-code) or the
        engine's typed errors; the challenge is spent either way."""
        # Before the challenge is spent: a full face queue leaves it answerable.
        self.state.require_face_room()
        challenge = self._consume(challenge_id, purpose, subject)
        self._require_answerable(challenge)
        engine = self.state.face_engine()

        def run() -> LiveFace:
            result, session = check_session(challenge, frames, engine=engine,
                                            now=gateway_time(), template=template)
            return _live_face(result, session)

        return await self.state.run_face(run)

    @staticmethod
    def _require_answerable(challenge: Challenge) -> None:
        if gateway_time() > challenge.deadline + ANSWER_GRACE_S:
            raise Gone("the face challenge expired; ask for a new one",
                       code="challenge_expired")

    def _drop_ended_streams(self, now: float) -> None:
        for challenge_id in [k for k, v in self._streams.items() if v.ends < now]:
            del self._streams[challenge_id]

    async def add_live_frame(self, challenge_id: str, purpose: str, subject: str,
                             index: int, frame: Frame, *, template: bool = True) -> int:
        """Analyse frame `index` of a streamed answer now; the first frame consumes the
        challenge. Returns how many frames are in. A refusal (bad frame, late frame) is
        kept and given by `finish_live`, which the client calls after its last frame.
        `frame.timestamp` must be the frame's arrival (face_frames.gateway_time).
        `template` as in `check_live`, taken from the stream's first frame."""
        now = gateway_time()
        stream = self._streams.get(challenge_id)
        if stream is None:
            # No await between the lookup and the insert: two first frames arriving together
            # cannot both consume the challenge (the second gets challenge_used).
            self._drop_ended_streams(now)
            if len(self._streams) >= MAX_OPEN_STREAMS:
                raise TooManyStreams("too many face checks in progress; try again shortly")
            challenge = self._consume(challenge_id, purpose, subject)
            # Kept even when already late, so that the verdict refuses it as expired.
            stream = _LiveStream(LivenessSession(challenge,
                                                 self.state.background_face_engine(),
                                                 template=template),
                                 purpose, subject, challenge.deadline + ANSWER_GRACE_S)
            self._streams[challenge_id] = stream
        elif (stream.purpose, stream.subject) != (purpose, subject):
            raise NotFound("no such face challenge for this flow", code="challenge_not_found")
        self._require_answerable(stream.session.challenge)
        await self.state.run_face_background(stream.session.add, index, frame)
        return stream.session.frames_seen

    async def finish_live(self, challenge_id: str, purpose: str, subject: str,
                          frame_count: int) -> LiveFace:
        """Decide a streamed answer over its frames 0..frame_count-1; ends the stream.
        Raises like `check_live`."""
        stream = self._streams.get(challenge_id)
        if stream is None or (stream.purpose, stream.subject) != (purpose, subject):
            row = self.db.query_one("SELECT used FROM face_challenges WHERE challenge_id = ? "
                                    "AND purpose = ? AND subject = ?",
                                    (challenge_id, purpose, subject))
            if row is not None and row["used"]:
                raise Conflict("this face challenge was already answered or has ended; "
                               "ask for a new one", code="challenge_used")
            raise NotFound("no frames were sent for this face challenge",
                           code="challenge_not_found")
        del self._streams[challenge_id]
        self._require_answerable(stream.session.challenge)
        session = stream.session
        return await self.state.run_face(
            lambda: _live_face(session.result(frame_count, now=gateway_time()), session))

    # --- protected references ------------------------------------------------------------
    def enrol_reference(self, live: LiveFace, holder_account: str,
                        institution: str) -> ProtectedReference:
        """Protect and store the face as the current reference of (account, institution);
        an earlier reference of the slot stops matching."""
        reference = self.protector.enrol(live.embedding, holder_account, institution)
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO face_references (commitment, reference) VALUES (?, ?)",
                         (reference.commitment, reference.to_json()))
        return reference

    def stage_reference(self, live: LiveFace, holder_account: str,
                        institution: str) -> ProtectedReference:
        """Protect the face at its slot's next version (reserved) WITHOUT making it current:
        the slot's reference stays the one the ledger names until the caller has stored this
        one (`store_reference`) and the ledger took its commitment (`make_current`)."""
        return self._stager.enrol(live.embedding, holder_account, institution)

    @staticmethod
    def store_reference(reference: ProtectedReference, conn: sqlite3.Connection) -> None:
        """Keep a reference by its commitment, in the caller's transaction."""
        conn.execute("INSERT OR IGNORE INTO face_references (commitment, reference) "
                     "VALUES (?, ?)", (reference.commitment, reference.to_json()))

    def stored_reference(self, commitment: str) -> ProtectedReference | None:
        """Any reference this gateway keeps (current, replaced or staged), by commitment."""
        row = self.db.query_one("SELECT reference FROM face_references WHERE commitment = ?",
                                (commitment,))
        return None if row is None else ProtectedReference.from_bytes(row["reference"])

    def make_current(self, reference: ProtectedReference, conn: sqlite3.Connection) -> None:
        """A stored reference becomes its slot's current one, in the caller's transaction."""
        self._registry.set_current(reference.slot, RegistryEntry(reference.commitment,
                                                                 reference.version), conn)

    def reference(self, holder_account: str, institution: str) -> ProtectedReference | None:
        """The current protected reference of (account, institution), if any."""
        slot = (self.protector.holder_pseudonym(holder_account, institution), institution)
        row = self.db.query_one(
            "SELECT r.reference FROM face_slots s JOIN face_references r "
            "ON r.commitment = s.commitment WHERE s.holder_pseudonym = ? "
            "AND s.institution = ?", slot)
        return None if row is None else ProtectedReference.from_bytes(row["reference"])

    def committed_reference(self, holder_account: str, institution: str,
                            ledger_commitment: object) -> ProtectedReference | None:
        """The current reference of (account, institution) once its commitment equals
        `ledger_commitment` (the `face_commitment` of the passport's or account's ledger
        record). None when this gateway holds no reference (each flow refuses that its own
        way). Raises FaceReferenceMismatch when they differ, when the ledger has none, or
        when the stored row does not parse."""
        try:
            reference = self.reference(holder_account, institution)
        except MalformedReference:
            log.warning("a stored face reference does not parse")
            raise FaceReferenceMismatch(
                "the stored face reference is unreadable; it was not used") from None
        if reference is None:
            return None
        if not isinstance(ledger_commitment, str) or not hmac.compare_digest(
                reference.commitment.encode(), ledger_commitment.encode()):
            # Someone changed this database (or a re-enrolment never reached the ledger):
            # an alarm for the operator, never a match.
            log.warning("a stored face reference does not match its ledger commitment")
            raise FaceReferenceMismatch(
                "the stored face reference does not match the commitment on the ledger; "
                "it was not used")
        return reference

    def restore_reference(self, previous: ProtectedReference | None,
                          replaced: ProtectedReference) -> None:
        """Undo `enrol_reference`: `previous` is current again, or the slot is empty if
        there was none. The version sequence is kept."""
        if previous is None:
            self.protector.revoke(replaced)
        else:
            self.protector.registry.set_current(
                previous.slot, RegistryEntry(previous.commitment, previous.version))

    def revoke_reference(self, reference: ProtectedReference) -> bool:
        return self.protector.revoke(reference)

    def matches(self, reference: ProtectedReference, live: LiveFace,
                holder_account: str) -> bool:
        """1:1 decision at the verification operating point; never exposes the score."""
        threshold = operating_point(VERIFY_POINT).threshold
        match, _score = self.protector.verify(reference, live.embedding, threshold,
                                              holder_account=holder_account)
        return match

    # --- duplicate screening -------------------------------------------------------------
    def dedup(self) -> DedupIndex:
        if self._dedup is None:
            self._dedup = DedupIndex.open(
                self.state.settings.data_dir / "dedup", self.state.keys.kek("face"),
                self.state.keys.deriver("face-transform"))
        return self._dedup

    def screen(self, live: LiveFace) -> list[tuple[str, float]]:
        """Candidates for a new enrolment: references at or above the identification
        threshold (calibrated for FPIR at a gallery size, not the 1:1 FAR)."""
        return self.dedup().search(live.screening_template, identification_threshold())

    def screen_and_add(self, passport_id: str, live: LiveFace,
                       cleared: frozenset[str] = frozenset()) -> EnrolmentDecision:
        """Add the face to the 1:N index unless someone enrolled already matches it (other
        than the candidates a review cleared as different people)."""
        return self.dedup().enrol(passport_id, live.screening_template,
                                  identification_threshold(), cleared)

    def remove_from_dedup(self, passport_id: str) -> bool:
        return self.dedup().remove(passport_id)

    async def aclose(self) -> None:
        if self._dedup is not None:
            self._dedup.close()
            self._dedup = None


def _live_face(result: LivenessResult, session: LivenessSession) -> LiveFace:
    """The frontal frame's embedding once liveness passed; that frame must also pass the
    default (pose-gated) quality thresholds, as any reference or probe does."""
    if not result.passed:
        raise LivenessFailed(result.message, reason=result.reason or "unknown",
                             cause=result.cause)
    reference = session.reference
    if reference is None:  # a passed result always has frame 0; defensive
        raise LivenessFailed("the frontal frame is missing", reason="frame_count")
    reference.quality.raise_for_failure()
    return LiveFace(reference.embedding, session.template())


def face_service(state: AppState) -> FaceService:
    """The process's FaceService (built on first use)."""
    return state.service("faces", FaceService)
