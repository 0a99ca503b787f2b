"""A guardian recovery's intent, kept so that a crash neither strands a row nor locks the holder
out (issue #16; the recovery itself: holder_recovery.py).

A recovery whose live face matched the reference changes nothing on the ledger: the new vault,
the cleared lockouts and the `holder_recoveries` row are one SQLite transaction
(`write_outcome`), so a crash leaves the old password or the new one, never a mix.

A recovery that re-enrols the face changes the ledger (`Passport:SetFaceCommitment`) and this
gateway's store, which must agree: every unlock checks the stored reference against the
ledger's commitment, so the new commitment on the ledger beside the old reference and vault
here (or the reverse) would lock the holder out. Its steps, each committed before the next:

1. the new reference is made at its slot's next version (reserved) but NOT made current
   (faces.stage_reference); one transaction stores it by commitment and records the intent:
   recovery id, passport, desk, share count, the ledger's commitment now (`previous`), the
   new one, the signed `passport.face` request (public: it is what goes to the ledger) and
   the new vault exactly as the holder row stores it (the master secret wrapped under the new
   password and a fresh face-factor key, that key sealed under the gateway's face-factor
   key). Nothing secret is in clear; the holder's current reference, vault and lockouts are
   untouched, so an unlock meanwhile works as before;
2. `Passport:SetFaceCommitment` with that request;
3. one transaction: the new reference becomes current, the holder row takes the new vault,
   every desk's unlock failures of the passport are cleared, `holder_recoveries` records the
   recovery and the intent is marked `committed`;
4. the passport's 1:N duplicate entry is replaced (from the now-current reference) and the
   intent deleted.

A refusal (by the endorsers, or an invalidation at commit) with the ledger not showing the new
commitment abandons the intent at once: it is deleted, and the staged reference stays in
`face_references` like any replaced one, never current. Any other failure (a commit-status
timeout), or a kill -9 anywhere, leaves the intent; `settle` brings it to its outcome before
the passport's next unlock at this gateway (its own desks' or another org's through custody),
its next recovery start, and a retried finish of a recovery still in memory:

- `committed`: step 4 again (removing and adding the duplicate entry is idempotent as a pair);
- the ledger names the new commitment: steps 3 and 4;
- the ledger still names `previous`: the SAME signed request is submitted again. Its nonce,
  its `previous` and the once-only commitment let at most one of the transactions commit;
  committed -> steps 3 and 4; refused -> read back once more (an earlier transaction ordered
  late) -> steps 3 and 4, or abandoned;
- the ledger names any other commitment: the request can never commit (its `previous` is
  stale), abandoned.

So the holder unlocks afterwards with the old password and old face (abandoned) or the new
password and new face (finished), never a mix. Limit (as for account openings,
account_openings.py): a first transaction still in the orderer when its resubmission was
refused (the request expired: five minutes) and read back could commit afterwards; the
ledger's commitment would then name a reference that is stored here but not current, and the
operator makes it current (docs/gateway.md, "face_reference_mismatch").
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.fabric import ChaincodeError, CommitError, GatewayError

from .faces import face_service
from .holders import holder_service
from .ledger_reads import json_object

if TYPE_CHECKING:
    from face_engine.protect.reference import ProtectedReference

    from .state import AppState

log = logging.getLogger("mip.gateway.recovery")

SCHEMA = """
CREATE TABLE IF NOT EXISTS recovery_intents (
    recovery_id TEXT PRIMARY KEY,
    passport_id TEXT NOT NULL,
    enrolling_org TEXT NOT NULL,
    org TEXT NOT NULL,
    staff TEXT NOT NULL,
    shares INTEGER NOT NULL,
    previous TEXT,
    commitment TEXT NOT NULL,
    request TEXT NOT NULL,
    wrapped_secret TEXT NOT NULL,
    face_key_sealed BLOB NOT NULL,
    stage TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS recovery_intents_by_passport ON recovery_intents (passport_id);
"""

SUBMITTING, COMMITTED = "submitting", "committed"
# Failures after which the ledger certainly did not commit the transaction just sent: the
# endorsers refused it, or it was invalidated at commit. Anything else (a timeout, a lost
# connection) leaves the outcome unknown and the intent in place.
REFUSED = (ChaincodeError, CommitError)

Submit = Callable[["RecoveryIntent"], Awaitable[None]]


@dataclass(frozen=True)
class RecoveryIntent:
    recovery_id: str
    passport_id: str
    enrolling_org: str
    org: str  # the desk's org (holder_recoveries.org)
    staff: str
    shares: int
    previous: str | None  # the ledger's face commitment when the intent was recorded
    commitment: str  # the staged reference's
    request: dict[str, Any]  # the signed passport.face request
    wrapped_secret: str = field(repr=False)
    face_key_sealed: bytes = field(repr=False)
    stage: str = SUBMITTING


def record(state: AppState, intent: RecoveryIntent, staged: ProtectedReference) -> None:
    """Step 1: the staged reference and the intent, in one transaction."""
    with state.db.transaction() as conn:
        face_service(state).store_reference(staged, conn)
        conn.execute(
            "INSERT INTO recovery_intents (recovery_id, passport_id, enrolling_org, org, "
            "staff, shares, previous, commitment, request, wrapped_secret, face_key_sealed, "
            "stage, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (intent.recovery_id, intent.passport_id, intent.enrolling_org, intent.org,
             intent.staff, intent.shares, intent.previous, intent.commitment,
             json.dumps(intent.request), intent.wrapped_secret, intent.face_key_sealed,
             intent.stage, time.time()))


def passports_pending(state: AppState) -> list[str]:
    """Every passport with an intent left, for the start-up sweep."""
    rows = state.db.query("SELECT DISTINCT passport_id FROM recovery_intents ORDER BY 1")
    return [str(r["passport_id"]) for r in rows]


def pending(state: AppState, passport_id: str) -> list[RecoveryIntent]:
    """The passport's intents, `committed` ones first (they only need step 4)."""
    rows = state.db.query(
        "SELECT * FROM recovery_intents WHERE passport_id = ? "
        "ORDER BY stage = 'committed' DESC, created", (passport_id,))
    return [RecoveryIntent(
        str(r["recovery_id"]), str(r["passport_id"]), str(r["enrolling_org"]), str(r["org"]),
        str(r["staff"]), int(r["shares"]), r["previous"], str(r["commitment"]),
        dict(json.loads(r["request"])), str(r["wrapped_secret"]), bytes(r["face_key_sealed"]),
        str(r["stage"])) for r in rows]


def write_outcome(state: AppState, conn: sqlite3.Connection, recovery_id: str,
                  passport_id: str, wrapped_secret: str, face_key_sealed: bytes, org: str,
                  staff: str, shares: int, face_reenrolled: bool) -> None:
    """The local writes of a finished recovery, in the caller's transaction `conn`."""
    holders = holder_service(state)
    conn.execute(
        "UPDATE holders SET wrapped_secret = ?, face_key_sealed = ? "
        "WHERE passport_id = ? AND status = 'active'",
        (wrapped_secret, face_key_sealed, passport_id))
    # Recovered with the guardians' shares: no desk's lockout stands against them, this
    # org's own or another org's (custody.py counts those in the same lockouts).
    holders.lockouts.clear(passport_id, conn)
    conn.execute(
        "INSERT INTO holder_recoveries (recovery_id, passport_id, org, staff, shares, "
        "face_reenrolled, finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (recovery_id, passport_id, org, staff, shares, int(face_reenrolled), time.time()))


async def settle(state: AppState, intent: RecoveryIntent, submit: Submit) -> bool:
    """Bring one intent to its outcome (module doc): True once the recovery is finished,
    False when abandoned without a refusal. A refusal abandons the intent and is raised;
    any other failure is raised with the intent kept."""
    if intent.stage == COMMITTED:
        await _replace_dedup(state, intent)
        return True
    seen = await ledger_commitment(state, intent)
    if seen != intent.commitment:
        if seen != intent.previous:
            _abandon(state, intent)  # stale: its `previous` is no longer the ledger's
            return False
        try:
            await submit(intent)
        except REFUSED:
            # Refused (replayed nonce, stale previous, expired...): an earlier transaction
            # of this intent may have committed meanwhile.
            if await ledger_commitment(state, intent) != intent.commitment:
                _abandon(state, intent)
                raise
        except GatewayError:
            # Unknown (e.g. a commit-status timeout): the ledger says whether it happened;
            # if it does not show it, the intent stays for the next settle.
            if await ledger_commitment(state, intent) != intent.commitment:
                raise
    _commit_locally(state, intent)
    await _replace_dedup(state, intent)
    return True


async def ledger_commitment(state: AppState, intent: RecoveryIntent) -> Any:
    record = json_object(await state.ledger.carrier(intent.enrolling_org).evaluate(
        "Passport:Get", [intent.passport_id]))
    return record.get("face_commitment")


def finished(state: AppState, recovery_id: str) -> sqlite3.Row | None:
    return state.db.query_one("SELECT * FROM holder_recoveries WHERE recovery_id = ?",
                              (recovery_id,))


def _commit_locally(state: AppState, intent: RecoveryIntent) -> None:
    """Step 3: the ledger holds the new commitment; the gateway follows in one transaction."""
    faces = face_service(state)
    staged = faces.stored_reference(intent.commitment)
    if staged is None:  # stored in the intent's own transaction; never absent
        raise RuntimeError("a recovery intent's staged reference is missing")
    # Made (its tables ensured) before the transaction: a first use inside it would run its
    # schema script, and SQLite's executescript commits the open transaction (at start-up
    # the sweep can be the holder service's first user).
    holder_service(state)
    with state.db.transaction() as conn:
        faces.make_current(staged, conn)
        write_outcome(state, conn, intent.recovery_id, intent.passport_id,
                      intent.wrapped_secret, intent.face_key_sealed, intent.org, intent.staff,
                      intent.shares, True)
        conn.execute("UPDATE recovery_intents SET stage = ? WHERE recovery_id = ?",
                     (COMMITTED, intent.recovery_id))


async def _replace_dedup(state: AppState, intent: RecoveryIntent) -> None:
    """Step 4: the 1:N entry of the passport becomes the new face (the reference is current,
    so it opens), then the intent is done."""
    faces = face_service(state)
    reference = faces.reference(intent.passport_id, intent.enrolling_org)
    if reference is not None and reference.commitment == intent.commitment:
        embedding = faces.protector.open_embedding(reference, intent.passport_id)
        dedup = faces.dedup()
        await state.run_face(dedup.remove, intent.passport_id)
        await state.run_face(dedup.add, intent.passport_id, embedding)
    with state.db.transaction() as conn:
        conn.execute("DELETE FROM recovery_intents WHERE recovery_id = ?",
                     (intent.recovery_id,))


def _abandon(state: AppState, intent: RecoveryIntent) -> None:
    """The ledger does not hold the new commitment and never will: the intent goes; the
    staged reference was never current (it stays stored, as replaced references do)."""
    with state.db.transaction() as conn:
        conn.execute("DELETE FROM recovery_intents WHERE recovery_id = ?",
                     (intent.recovery_id,))
