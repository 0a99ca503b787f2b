"""An account opening's intent, kept in the holder's sealed directory so a crash strands nothing.

`open_account` (accounts.py) writes, in this order, each step committed before the next:

1. the intent: a PENDING directory entry (its key index taken) and `HolderState.openings`
   naming its pseudonym and institution, sealed under the master secret (no plaintext row
   links the passport to the new pseudonym);
2. the account's protected face reference, then the signed `account.open` and the KYC
   presentation, added to the intent (sealed again);
3. `Account:Open` (the ledger);
4. the outcome: the entry becomes `open` and the intent is dropped (one sealed write).

A kill -9 between any two steps leaves an intent. The gateway cannot read it without the
holder's master secret, so it is reconciled at the holder's next opening here (the next
level-2 session's `open_account`, before anything new is written), against the ledger:

- the ledger shows the pseudonym with this holder's key: committed; the entry becomes
  `open` and the answer is that account, as the first call would have given it;
- it does not, and the intent holds a signed request: the SAME request is submitted again.
  Its nonce, pseudonym, key and face commitment each commit at most once, so of the two
  transactions at most one opens the account; a refused resubmission is read back once
  more (an earlier transaction ordered late), and only then abandoned;
- abandoned (no signed request yet, or the ledger refused it): the face reference is
  revoked and the entry and intent are dropped, freeing the key index for a clean retry.

Limit (as for dispenses, dispense_recovery.py): a first transaction still in the orderer
when its resubmission was refused and read back could commit afterwards; its account is then
missing from the directory until a recovery re-derives it (keys.py, "recovery").
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from gateway.core.errors import chaincode_error
from gateway.fabric import ChaincodeError, CommitError
from gateway.holder import keys

from .faces import face_service
from .holders import PENDING, AccountEntry, HolderSession
from .ledger_reads import json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.account_openings")

# Failures after which the ledger certainly did not commit the transaction just sent: the
# endorsers refused it, or it was invalidated at commit. Anything else (a timeout, a lost
# connection, a crash) leaves the outcome unknown and the intent in place.
REFUSED = (ChaincodeError, CommitError)


def record_intent(session: HolderSession, entry: AccountEntry, min_level: int) -> None:
    """Step 1: take the key index and name the pseudonym before any reference is made."""
    state = session.state
    state.accounts.append(entry)
    state.openings.append({"pseudonym": entry.pseudonym, "institution": entry.institution,
                           "min_level": min_level})
    session.save()


def record_request(session: HolderSession, pseudonym: str, request: dict[str, Any],
                   presentation: dict[str, Any]) -> None:
    """Step 2: the exact signed request and presentation, before they go to the ledger."""
    intent = _intent(session, pseudonym)
    intent["request"], intent["presentation"] = request, presentation
    session.save()


def record_opened(session: HolderSession, pseudonym: str, record: dict[str, Any]) -> AccountEntry:
    """Step 4: the ledger committed the account; the entry is open and the intent gone."""
    entry = _entry(session, pseudonym)
    entry.status = "open"
    if isinstance(record.get("opened"), int):
        entry.opened = int(record["opened"])
    session.state.openings = [i for i in session.state.openings if i["pseudonym"] != pseudonym]
    session.save()
    return entry


def abandon(state: AppState, session: HolderSession, pseudonym: str) -> None:
    """The ledger holds no such account and will not: revoke the face reference made for it
    and drop the entry and the intent."""
    intent = _intent(session, pseudonym)
    faces = face_service(state)
    reference = faces.reference(pseudonym, str(intent["institution"]))
    if reference is not None:
        faces.revoke_reference(reference)
    holder_state = session.state
    holder_state.accounts = [a for a in holder_state.accounts
                             if not (a.pseudonym == pseudonym and a.status == PENDING)]
    holder_state.openings = [i for i in holder_state.openings if i["pseudonym"] != pseudonym]
    session.save()


async def reconcile(state: AppState, session: HolderSession
                    ) -> list[tuple[AccountEntry, dict[str, Any], int]]:
    """Bring every recorded intent of the session's holder to its outcome (module doc);
    returns the openings finished now: (entry, ledger record, min_level)."""
    finished = []
    for intent in list(session.state.openings):
        pseudonym, institution = str(intent["pseudonym"]), str(intent["institution"])
        record = await _ledger_account(state, session, intent)
        if record is None and "request" in intent:
            try:
                record = json_object(await state.ledger.carrier(institution).submit(
                    "Account:Open", [json.dumps(intent["request"]),
                                     json.dumps(intent["presentation"])]))
            except REFUSED:
                # Refused (replay, pseudonym taken, expired...): an earlier transaction of
                # this intent may have committed in the meantime.
                record = await _ledger_account(state, session, intent)
        if record is None:
            abandon(state, session, pseudonym)
            log.info("an interrupted account opening at %s was abandoned", institution)
            continue
        entry = record_opened(session, pseudonym, record)
        log.info("an interrupted account opening at %s was finished", institution)
        finished.append((entry, dict(record), int(intent["min_level"])))
    return finished


async def _ledger_account(state: AppState, session: HolderSession, intent: dict[str, Any]
                          ) -> dict[str, Any] | None:
    """The ledger's account under the intent's pseudonym if it is this holder's (its key is
    the entry's), else None."""
    pseudonym, institution = str(intent["pseudonym"]), str(intent["institution"])
    try:
        record = dict(json_object(await state.ledger.carrier(institution).evaluate(
            "Account:Get", [pseudonym])))
    except ChaincodeError as exc:
        if chaincode_error(exc).code == "not_found":
            return None
        raise
    entry = _entry(session, pseudonym)
    if record.get("public_key") != keys.account_key(
            session.master, institution, entry.index).public_b64:
        return None  # another key under that pseudonym: never this holder's account
    return record


def _intent(session: HolderSession, pseudonym: str) -> dict[str, Any]:
    for intent in session.state.openings:
        if intent["pseudonym"] == pseudonym:
            return intent
    raise KeyError("no opening intent of that pseudonym")


def _entry(session: HolderSession, pseudonym: str) -> AccountEntry:
    for entry in session.state.accounts:
        if entry.pseudonym == pseudonym:
            return entry
    raise KeyError("no directory entry of that pseudonym")
