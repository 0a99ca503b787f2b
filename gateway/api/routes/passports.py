"""Passports: the public record, vouching, and holder desk sessions (unlock).

- `POST /holders/sessions` (any staff): a desk session and its face challenge, bound to the
  staff token that asked (services/holders.py).
- `POST /holders/sessions/unlock` (that token + the session id in `X-MIP-Holder-Session`):
  face (+ password) -> level 1 (2).
- `DELETE /holders/sessions/current` (that token + the header): end it, wiping what it held.
  The session id is never in a URL (access logs, proxies, Referer); every request naming it
  needs the token that started it, else 404 `holder_session_not_found` (deps.py).
- `GET /passports/{id}` (any staff): the ledger's public record.
- `POST /passports/{id}/vouches` (level-2 holder session of the voucher): `Passport:Vouch`.
- `POST /passports/{id}/revoke` (a registrar of the enrolling org; any org's for a fraud
  proposal): `Passport:Revoke`, and the passport's KYC credentials revoked with the enrolling
  org's status list published (services/passport_revocation.py).
- Guardian recovery (services/holder_recovery.py):
  `POST /holders/recoveries` {passport_id} (any staff) -> recovery id + face challenge;
  `POST /holders/recoveries/{id}/shares` (a guardian's level-2 holder session);
  `POST /holders/recoveries/{id}/challenge` (the starting staff member) -> a new challenge;
  `POST /holders/recoveries/{id}/finish` {challenge, frames, new_password} (that member).
  For a holder enrolled at another org, or a guardian whose keys another org holds, the
  steps reach those orgs' gateways (services/recovery_relay.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.api.body_limits import FRAMES_BODY_LIMIT
from gateway.api.deps import DeskDep, DeskSessionDep, HolderDep, StaffDep, StateDep
from gateway.api.models.face_frames import ChallengeOut
from gateway.api.models.holders import (
    PASSPORT_ID,
    HolderSessionOut,
    PassportOut,
    RecoveryFinishIn,
    RecoveryFinishOut,
    RecoveryOut,
    RecoveryShareOut,
    RecoveryStartIn,
    RevokeIn,
    RevokeOut,
    UnlockIn,
    UnlockOut,
    VouchOut,
)
from gateway.core.errors import ApiError
from gateway.services.custody_client import RemoteHolderSession, custody_client
from gateway.services.faces import IssuedChallenge
from gateway.services.holder_recovery import recovery_service
from gateway.services.holders import holder_service
from gateway.services.passport_revocation import revoke_passport
from gateway.services.vouching import vouch as vouch_for

router = APIRouter(tags=["passports"])
log = logging.getLogger("mip.gateway.passports")

PassportId = Annotated[str, Path(pattern=PASSPORT_ID)]


@router.post("/holders/sessions", response_model=HolderSessionOut, status_code=201)
async def start_holder_session(state: StateDep, desk: DeskDep) -> HolderSessionOut:
    """Start a desk session for a holder (any staff role): answer its face challenge. The
    session answers only to the staff token that started it."""
    session, challenge = holder_service(state).start_session(desk)
    return HolderSessionOut(session_id=session.session_id, challenge=ChallengeOut(
        challenge_id=challenge.challenge_id, poses=list(challenge.poses),
        deadline_s=max(0.0, challenge.deadline - time.time())))


@router.post("/holders/sessions/unlock", response_model=UnlockOut,
             max_body_size=FRAMES_BODY_LIMIT)
async def unlock_holder_session(body: UnlockIn, state: StateDep,
                                started: DeskSessionDep) -> UnlockOut:
    """Face 1:1 against the passport's reference (level 1), with the password level 2. The
    session (header `X-MIP-Holder-Session`) is the one this staff token started."""
    session = await holder_service(state).unlock(
        started, body.passport_id, body.challenge_id, body.decoded(), body.password)
    return UnlockOut(session_id=session.session_id, passport_id=session.pid,
                     level=session.level, expires_in_s=max(0.0, session.expires - time.time()))


@router.delete("/holders/sessions/current", status_code=204)
async def end_holder_session(state: StateDep, session: DeskSessionDep) -> Response:
    """End the session of `X-MIP-Holder-Session` (this staff token's own), wiping it."""
    holder_service(state).end_session(session.session_id)
    if isinstance(session, RemoteHolderSession):
        # The custodian wipes its side too (it would at its TTL anyway).
        with contextlib.suppress(ApiError):
            await custody_client(state).end(session)
    return Response(status_code=204)


@router.get("/passports/{passport_id}", response_model=PassportOut)
async def get_passport(passport_id: PassportId, state: StateDep, staff: StaffDep) -> PassportOut:
    """The passport's public record on the ledger, read as the staff member."""
    record = json.loads(await state.ledger.for_staff(staff).evaluate(
        "Passport:Get", [passport_id]))
    return PassportOut.model_validate(record)


@router.post("/passports/{passport_id}/vouches", response_model=VouchOut, status_code=201)
async def vouch(passport_id: PassportId, state: StateDep, holder: HolderDep) -> VouchOut:
    """The session's holder (level 2) vouches for passport `passport_id`.

    A retry of a vouch the ledger committed answers the same (services/vouching.py).
    Signed by the voucher's passport key (by the voucher's enrolling org's gateway when that
    is another org: custody.py), carried by this gateway's own identity (on an all-orgs
    gateway, the vouchee's enrolling org's); the contract's 2-of-3 endorsement applies either
    way, whichever org carries it. The vouchee's wallet gets its level-3 KYC credential at its
    next level-2 unlock at its enrolling org's gateway."""
    result = await vouch_for(state, holder, passport_id)
    return VouchOut(vouchee=passport_id, vouchee_level=result["kyc_level"],
                    vouches=result["vouches"])


@router.post("/passports/{passport_id}/revoke", response_model=RevokeOut)
async def revoke(passport_id: PassportId, body: RevokeIn, state: StateDep,
                 staff: StaffDep) -> RevokeOut:
    """Revoke the passport for good (a registrar of its enrolling org) and its KYC
    credentials, so none of its accounts' holders can prove KYC again; open holder sessions
    of it end. `fraudulent: true` from any org's registrar is a proposal, effective once a
    majority of orgs made it (`fraud_pending` until then). The same request again (a crash,
    a lost answer) is answered 200 with its finished outcome; another request of a passport
    already revoked is 409 `already_revoked` (services/passport_revocation.py)."""
    result = await revoke_passport(state, staff, passport_id, body.reason, body.fraudulent)
    return RevokeOut(passport_id=result.passport_id, status=result.status,
                     kyc_credentials_revoked=result.kyc_credentials_revoked,
                     flagged_vouches=result.flagged_vouches, demoted=result.demoted,
                     fraud_pending=result.fraud_pending,
                     fraud_proposals=result.fraud_proposals,
                     kyc_revocation_pending=result.kyc_revocation_pending)


# --- guardian recovery -----------------------------------------------------------------------
RecoveryId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


def _challenge_out(challenge: IssuedChallenge) -> ChallengeOut:
    return ChallengeOut(challenge_id=challenge.challenge_id, poses=list(challenge.poses),
                        deadline_s=max(0.0, challenge.deadline - time.time()))


@router.post("/holders/recoveries", response_model=RecoveryOut, status_code=201)
async def start_recovery(body: RecoveryStartIn, state: StateDep,
                         staff: StaffDep) -> RecoveryOut:
    """Start a guardian recovery for a passport (any staff role)."""
    rec, challenge = await recovery_service(state).start(staff, body.passport_id)
    return RecoveryOut(recovery_id=rec.recovery_id, passport_id=rec.passport_id,
                       challenge=_challenge_out(challenge), guardians=sorted(rec.guardians),
                       threshold=rec.threshold,
                       expires_in_s=max(0.0, rec.expires - time.time()))


@router.post("/holders/recoveries/{recovery_id}/shares", response_model=RecoveryShareOut,
             status_code=201)
async def give_recovery_share(recovery_id: RecoveryId, state: StateDep,
                              holder: HolderDep) -> RecoveryShareOut:
    """The session's holder (level 2), a guardian of the passport, gives their share: opened
    by the gateway that holds the guardian's key, given to the gateway that holds the
    holder's shares (services/recovery_relay.py when those are other orgs)."""
    shares, threshold = await recovery_service(state).give_share(recovery_id, holder)
    return RecoveryShareOut(recovery_id=recovery_id, shares=shares, threshold=threshold)


@router.post("/holders/recoveries/{recovery_id}/challenge", response_model=ChallengeOut,
             status_code=201)
async def new_recovery_challenge(recovery_id: RecoveryId, state: StateDep,
                                 staff: StaffDep) -> ChallengeOut:
    """A fresh face challenge for the holder (after a failed capture)."""
    return _challenge_out(recovery_service(state).new_challenge(recovery_id, staff))


@router.post("/holders/recoveries/{recovery_id}/finish", response_model=RecoveryFinishOut,
             max_body_size=FRAMES_BODY_LIMIT)
async def finish_recovery(recovery_id: RecoveryId, body: RecoveryFinishIn, state: StateDep,
                          staff: StaffDep) -> RecoveryFinishOut:
    """Live face and a new password: the guardians' shares give the master secret back,
    rewrapped under the new password (the face re-enrolled when it no longer matches and
    every guardian gave their share)."""
    result = await recovery_service(state).finish(
        recovery_id, staff, body.challenge_id, body.decoded(), body.new_password)
    return RecoveryFinishOut(passport_id=result.passport_id,
                             face_reenrolled=result.face_reenrolled, shares=result.shares)
