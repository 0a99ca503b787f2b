"""Holder accounts at institutions, opened from an unlocked (level-2) desk session.

Opening (`open_account`): the account key is the holder's hardened per-institution derivation
(gateway/holder/keys.py: index = how many accounts the holder already has there), the
pseudonym is random, the KYC presentation (`KycHolder.present`) is bound to that key and
pseudonym, and `Account:Open` is carried by the institution's gateway identity. The face
behind the account is the unlock's live face, matched then against the passport's reference:
opening first re-reads the passport and checks that its stored reference still is the one
its ledger commitment names, and the one the unlock matched (409 `face_reference_mismatch`
otherwise, before anything is written). The live face becomes the account's protected
reference (`enrol_reference(live, pseudonym, institution)`: keyed per account, so references
do not link accounts), whose commitment the account key signs in `account.open`; then the
account joins the holder's directory, sealed under the master secret.

Order (account_openings.py): the intent (a pending directory entry holding the key index),
the reference, the signed request (added to the intent), the ledger, then the outcome (the
entry open). A refused opening revokes the new reference and drops the intent. An opening cut
off at any point (kill -9, a lost commit status) is reconciled with the ledger by the holder's
next opening here: finished if the ledger committed it, else its same signed request is
submitted again, else abandoned cleanly.

Closing (`close_account`): `Account:Close` signed by the account key, then the directory
marks it closed and its face reference is revoked. The ledger ends the account's grants with
it (every grant use checks the account is open); this gateway also marks the account's
research consents it keeps closed, so the analytics path counts it no more. The holder session
still signs the account's grant listing and revocation and its access-log read
(holders.CLOSED_ACCOUNT_ACTIONS).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from gateway.core.errors import ApiError, Conflict, InvalidRequest
from gateway.core.org_scope import require_own_org
from gateway.holder import keys

from . import account_openings
from .custody_client import RemoteHolderSession, custody_client
from .faces import FaceReferenceMismatch, face_service
from .grants import close_research_consents
from .holders import PENDING, AccountEntry, HolderSession
from .ledger_reads import json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.accounts")


async def open_account(state: AppState, session: HolderSession, institution: str,
                       min_level: int = 2) -> tuple[AccountEntry, dict[str, Any]]:
    """Open an account of the session's holder at `institution`; returns the directory
    entry and the ledger's record."""
    session.require_level(2)
    if institution not in state.ledger.orgs():
        raise InvalidRequest("unknown institution (not a member org)", code="unknown_institution")
    # An org's gateway carries account openings at its own org only (a holder opens an
    # account at another org at that org's desk: docs/gateway.md, "Holders at another org's
    # desk"): refused before any face reference is made.
    require_own_org(state.settings, institution, "open accounts")
    if isinstance(session, RemoteHolderSession):
        return await _open_at_desk_of_custodial(state, session, institution, min_level)
    # A retry (or the first opening after a crash) first brings every opening this holder
    # began to its outcome (account_openings.py); one at this institution and level that
    # the ledger committed is the answer, as the interrupted call would have given it.
    for entry, record, level in await account_openings.reconcile(state, session):
        if entry.institution == institution and level == min_level:
            log.info("account opened at %s", institution)
            return entry, record
    await check_live_face(state, session, min_level)
    holder_state = session.state
    faces = face_service(state)
    assert session.live is not None  # checked above
    # The index counts pending entries too: an intent holds its key's index.
    index = sum(1 for a in holder_state.accounts if a.institution == institution)
    key = keys.account_key(session.master, institution, index)
    pseudonym = keys.new_pseudonym()
    account_openings.record_intent(
        session, AccountEntry(pseudonym, institution, index, PENDING, int(time.time())),
        min_level)
    try:
        presentation = await anyio.to_thread.run_sync(
            lambda: holder_state.wallet.present(key.public_raw, pseudonym, min_level))
        reference = faces.enrol_reference(session.live, pseudonym, institution)
        request = key.sign_request("account.open", {
            "pseudonym": pseudonym, "institution": institution, "min_level": min_level,
            "face_commitment": reference.commitment}, state.settings.channel)
        account_openings.record_request(session, pseudonym, request, presentation)
    except Exception:
        account_openings.abandon(state, session, pseudonym)  # nothing was sent
        raise
    try:
        record = json_object(await state.ledger.carrier(institution).submit(
            "Account:Open", [json.dumps(request), json.dumps(presentation)]))
    except account_openings.REFUSED:
        # Certainly not committed: nothing of this opening stays. Any other failure (a
        # timeout, a lost connection) keeps the intent for the next opening to reconcile.
        account_openings.abandon(state, session, pseudonym)
        raise
    entry = account_openings.record_opened(session, pseudonym, dict(record))
    log.info("account opened at %s", institution)
    return entry, dict(record)


async def check_live_face(state: AppState, session: HolderSession, min_level: int) -> None:
    """Before an account is opened for the session's holder: the KYC level suffices and the
    unlock's live face still matches what the ledger's passport commits to."""
    holder_state = session.state
    if min_level > holder_state.kyc_level:
        raise Conflict(f"this holder's KYC level is {holder_state.kyc_level}",
                       code="kyc_level_too_low")
    if session.live is None:
        raise Conflict("the session holds no live face; unlock again", code="face_required")
    enrolling_org = session.enrolling_org
    assert enrolling_org is not None  # set by every unlock
    passport = json_object(await state.ledger.carrier(enrolling_org).evaluate(
        "Passport:Get", [session.pid]))
    # The live face was matched at unlock against the reference the ledger named then; that
    # must still be the ledger's commitment and the stored reference.
    face_service(state).committed_reference(session.pid, enrolling_org,
                                            passport.get("face_commitment"))
    if passport.get("face_commitment") != session.face_commitment:
        raise FaceReferenceMismatch("the passport's face reference changed since this unlock; "
                                    "unlock again")


async def _open_at_desk_of_custodial(state: AppState, session: RemoteHolderSession,
                                     institution: str, min_level: int
                                     ) -> tuple[AccountEntry, dict[str, Any]]:
    """Open an account here for a holder whose keys the enrolling org's gateway holds: this
    org picks the pseudonym and enrols its OWN protected reference from the unlock's live
    capture (its keys, unlinkable from the enrolling org's reference); the custodian derives
    the account key, makes the KYC presentation and signs `account.open` (custody.py); this
    org's identity carries `Account:Open`; then the custodian reads the account back from
    the ledger into the holder's directory."""
    if session.kyc_level is not None and min_level > session.kyc_level:
        raise Conflict(f"this holder's KYC level is {session.kyc_level}",
                       code="kyc_level_too_low")
    if session.live is None:
        raise Conflict("the session holds no live face; unlock again", code="face_required")
    faces = face_service(state)
    pseudonym = keys.new_pseudonym()
    reference = faces.enrol_reference(session.live, pseudonym, institution)
    try:
        request, presentation = await custody_client(state).prepare_account(
            session, pseudonym, institution, min_level, reference.commitment)
        # The custodian signs what was asked, or nothing is carried.
        if request.get("action") != "account.open" or request.get("body") != {
                "pseudonym": pseudonym, "institution": institution, "min_level": min_level,
                "face_commitment": reference.commitment}:
            raise ApiError("the custodian signed another opening than the one asked for",
                           code="custodian_mismatch", status=502)
        record = json_object(await state.ledger.carrier(institution).submit(
            "Account:Open", [json.dumps(request), json.dumps(presentation)]))
    except BaseException:
        faces.revoke_reference(reference)
        raise
    entry = AccountEntry(pseudonym, institution, -1, "open", int(time.time()))
    try:
        await session.directory_changed(pseudonym)
        entry = session.account(pseudonym)
    except ApiError as exc:
        # The ledger holds the account; the custodian finds it at its next settle (the
        # directory keeps it pending until then), so nothing is stranded.
        log.warning("the custodian did not confirm the new account yet (%s)", exc.code)
        session.remember(entry)
    log.info("account opened at %s for a holder enrolled at %s", institution,
             session.custodian)
    return entry, dict(record)


async def close_account(state: AppState, session: HolderSession, pseudonym: str) -> None:
    session.require_level(2)
    entry = session.account(pseudonym)
    if entry.status != "open":
        raise Conflict("this account is already closed", code="account_closed")
    request = await session.signed(pseudonym, "account.close", {"pseudonym": pseudonym})
    await state.ledger.carrier(entry.institution).submit(
        "Account:Close", [pseudonym, json.dumps(request)])
    entry.status = "closed"
    await session.directory_changed(pseudonym)
    close_research_consents(state.db, pseudonym)
    faces = face_service(state)
    reference = faces.reference(pseudonym, entry.institution)
    if reference is not None:
        faces.revoke_reference(reference)
    log.info("account closed at %s", entry.institution)
