"""Enrolment at a registration desk (role `registrar`, the caller of `Passport:Register`).

`POST /enrolments` opens a session and returns a face challenge; `POST .../frames` answers it
(liveness, quality, the org's own duplicate screening: candidates send it to review, see
reviews.py; the consortium-wide screening then runs in the background, `POST
.../screening` retries a failed one);
`POST .../challenge` gives a new challenge for a retake; `PUT .../password` and `PUT
.../guardians` set those; `POST .../finish` registers the
passport; `GET /enrolments/{id}` shows progress. Only the registrar who opened a session sees
it (others get 404).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from gateway.api.body_limits import FRAMES_BODY_LIMIT
from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.enrolment import (
    EnrolmentCreated,
    EnrolmentFinished,
    EnrolmentState,
    GuardianShareOut,
    GuardiansIn,
    PasswordIn,
    ScreeningRetried,
)
from gateway.api.models.face_frames import ChallengeOut, FaceAnswer
from gateway.api.models.reviews import EnrolmentScreened
from gateway.core.security import StaffMember, require_role
from gateway.services.enrolment import enrolment_service
from gateway.services.faces import IssuedChallenge

router = APIRouter(tags=["enrolment"])

SessionId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


def _registrar(staff: StaffMember) -> StaffMember:
    require_role(staff, ("registrar",))
    return staff


def _challenge(challenge: IssuedChallenge) -> ChallengeOut:
    return ChallengeOut(challenge_id=challenge.challenge_id, poses=list(challenge.poses),
                        deadline_s=max(0.0, challenge.deadline - time.time()))


@router.post("/enrolments", response_model=EnrolmentCreated, status_code=201)
async def create_enrolment(state: StateDep, staff: StaffDep) -> EnrolmentCreated:
    """Open an enrolment session; show the person the challenge's poses."""
    session_id, challenge, expires = await enrolment_service(state).create(_registrar(staff))
    return EnrolmentCreated(session_id=session_id, challenge=_challenge(challenge),
                            expires_in_s=max(0.0, expires - time.time()))


@router.get("/enrolments/{session_id}", response_model=EnrolmentState)
async def get_enrolment(session_id: SessionId, state: StateDep,
                        staff: StaffDep) -> EnrolmentState:
    view = enrolment_service(state).view(session_id, _registrar(staff))
    screening = view.screening
    return EnrolmentState(
        session_id=view.session_id, status=view.status, face_checked=view.face_checked,
        password_set=view.password_set, guardians=view.guardians,
        guardian_threshold=view.guardian_threshold, passport_id=view.passport_id,
        expires_in_s=max(0.0, view.expires - time.time()),
        screening=screening.status if screening else None,
        screening_error=screening.error_code if screening else None,
        screening_retryable=bool(screening and screening.retryable),
        review_id=screening.review_id if screening else None)


@router.post("/enrolments/{session_id}/screening", response_model=ScreeningRetried,
             status_code=202)
async def retry_enrolment_screening(session_id: SessionId, state: StateDep,
                                    staff: StaffDep) -> ScreeningRetried:
    """Retry a failed consortium-wide screening of the captured face (a new request
    recorded on the ledger); it runs in the background like the first (GET shows it)."""
    screening = await enrolment_service(state).retry_screening(session_id, _registrar(staff))
    return ScreeningRetried(screening=screening.status, attempt=screening.attempt)


@router.post("/enrolments/{session_id}/challenge", response_model=ChallengeOut,
             status_code=201)
async def new_enrolment_challenge(session_id: SessionId, state: StateDep,
                                  staff: StaffDep) -> ChallengeOut:
    """A fresh face challenge for a retake (each challenge is answered once)."""
    return _challenge(enrolment_service(state).new_challenge(session_id, _registrar(staff)))


@router.post("/enrolments/{session_id}/frames", status_code=204, max_body_size=FRAMES_BODY_LIMIT,
             responses={202: {"model": EnrolmentScreened,
                              "description": "screening found candidates: sent to review"}})
async def enrolment_frames(session_id: SessionId, body: FaceAnswer, state: StateDep,
                           staff: StaffDep) -> Response:
    """Liveness and quality of the captured frames, then this org's duplicate screening: 204
    when no face it enrolled is a candidate, 202 with the review's id when one or more are.
    At a per-org gateway the consortium-wide screening then runs in the background
    (GET shows `screening`; finish waits for it, bounded)."""
    review_id = await enrolment_service(state).add_frames(
        session_id, _registrar(staff), body.challenge_id, body.decoded())
    if review_id is None:
        return Response(status_code=204)
    return JSONResponse(status_code=202, content=EnrolmentScreened(
        status="in_review", review_id=review_id).model_dump())


@router.put("/enrolments/{session_id}/password", status_code=204)
async def enrolment_password(session_id: SessionId, body: PasswordIn, state: StateDep,
                             staff: StaffDep) -> Response:
    """The holder's password: it wraps the master secret at once and is not kept."""
    await enrolment_service(state).set_password(session_id, _registrar(staff), body.password)
    return Response(status_code=204)


@router.put("/enrolments/{session_id}/guardians", status_code=204)
async def enrolment_guardians(session_id: SessionId, body: GuardiansIn, state: StateDep,
                              staff: StaffDep) -> Response:
    """Guardians for recovery (existing passports) and how many of them recover."""
    await enrolment_service(state).set_guardians(session_id, _registrar(staff), body.guardians,
                                                 body.threshold)
    return Response(status_code=204)


@router.post("/enrolments/{session_id}/finish", response_model=EnrolmentFinished,
             status_code=201)
async def finish_enrolment(session_id: SessionId, state: StateDep,
                           staff: StaffDep) -> EnrolmentFinished:
    """Register the passport; returns its id and the guardians' sealed shares."""
    result = await enrolment_service(state).finish(session_id, _registrar(staff))
    return EnrolmentFinished(
        passport_id=result.passport_id, kyc_level=result.kyc_level,
        guardian_shares=len(result.shares),
        shares=[GuardianShareOut(guardian_passport_id=g, sealed_share=s)
                for g, s in result.shares])
