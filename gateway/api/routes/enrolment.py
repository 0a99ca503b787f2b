"""Enrolment at a registration desk (role `registrar`, the caller of `Passport:Register`).

`POST /enrolments` opens a session and returns a face challenge and the session's id; every
later call names the session in the `X-MIP-Enrolment-Session` header, never in a URL (an id in
a path lands in browser history, proxies' logs and Referer headers): `POST
/enrolments/current/frames` answers the challenge (liveness, quality, the org's own duplicate
screening: candidates send it to review, see reviews.py; the consortium-wide screening then
runs in the background, `POST .../current/screening` retries a failed one); `POST
.../current/challenge` gives a new challenge for a retake; `PUT .../current/password` and `PUT
.../current/guardians` set those; `POST .../current/finish` registers the passport; `GET
/enrolments/current` shows progress. Only the registrar who opened a session sees it: another
staff member, an unknown or a malformed id get the same 404 `enrolment_not_found`; no header is
401 `enrolment_session_required`.
"""

from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

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
from gateway.core.errors import ApiError, NotFound
from gateway.core.security import StaffMember, require_role
from gateway.services.enrolment import enrolment_service
from gateway.services.faces import IssuedChallenge

router = APIRouter(tags=["enrolment"])

ENROLMENT_SESSION_HEADER = "X-MIP-Enrolment-Session"
_SESSION_ID = re.compile(r"[0-9a-f]{64}")
_session_header = APIKeyHeader(
    name=ENROLMENT_SESSION_HEADER, scheme_name="EnrolmentSession", auto_error=False,
    description="An enrolment session (POST /enrolments), with the token of the registrar "
                "who opened it")


def _session_id(value: Annotated[str | None, Depends(_session_header)]) -> str:
    """The enrolment session named by the header. A malformed id is refused exactly as an
    unknown one (404), so the header's checks are no oracle."""
    if not value:
        raise ApiError("an enrolment session is required", code="enrolment_session_required",
                       status=401)
    if _SESSION_ID.fullmatch(value) is None:
        raise NotFound("no such enrolment session", code="enrolment_not_found")
    return value


SessionId = Annotated[str, Depends(_session_id)]


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


@router.get("/enrolments/current", response_model=EnrolmentState)
async def get_enrolment(state: StateDep,
                        staff: StaffDep, session_id: SessionId) -> EnrolmentState:
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


@router.post("/enrolments/current/screening", response_model=ScreeningRetried,
             status_code=202)
async def retry_enrolment_screening(state: StateDep, staff: StaffDep,
                                    session_id: SessionId) -> ScreeningRetried:
    """Retry a failed consortium-wide screening of the captured face (a new request
    recorded on the ledger); it runs in the background like the first (GET shows it)."""
    screening = await enrolment_service(state).retry_screening(session_id, _registrar(staff))
    return ScreeningRetried(screening=screening.status, attempt=screening.attempt)


@router.post("/enrolments/current/challenge", response_model=ChallengeOut,
             status_code=201)
async def new_enrolment_challenge(state: StateDep,
                                  staff: StaffDep, session_id: SessionId) -> ChallengeOut:
    """A fresh face challenge for a retake (each challenge is answered once)."""
    return _challenge(enrolment_service(state).new_challenge(session_id, _registrar(staff)))


@router.post("/enrolments/current/frames", status_code=204, max_body_size=FRAMES_BODY_LIMIT,
             responses={202: {"model": EnrolmentScreened,
                              "description": "screening found candidates: sent to review"}})
async def enrolment_frames(body: FaceAnswer, state: StateDep,
                           staff: StaffDep, session_id: SessionId) -> Response:
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


@router.put("/enrolments/current/password", status_code=204)
async def enrolment_password(body: PasswordIn, state: StateDep,
                             staff: StaffDep, session_id: SessionId) -> Response:
    """The holder's password: it wraps the master secret at once and is not kept."""
    await enrolment_service(state).set_password(session_id, _registrar(staff), body.password)
    return Response(status_code=204)


@router.put("/enrolments/current/guardians", status_code=204)
async def enrolment_guardians(body: GuardiansIn, state: StateDep,
                              staff: StaffDep, session_id: SessionId) -> Response:
    """Guardians for recovery (existing passports) and how many of them recover."""
    await enrolment_service(state).set_guardians(session_id, _registrar(staff), body.guardians,
                                                 body.threshold)
    return Response(status_code=204)


@router.post("/enrolments/current/finish", response_model=EnrolmentFinished,
             status_code=201)
async def finish_enrolment(state: StateDep,
                           staff: StaffDep, session_id: SessionId) -> EnrolmentFinished:
    """Register the passport; returns its id and the guardians' sealed shares."""
    result = await enrolment_service(state).finish(session_id, _registrar(staff))
    return EnrolmentFinished(
        passport_id=result.passport_id, kyc_level=result.kyc_level,
        guardian_shares=len(result.shares),
        shares=[GuardianShareOut(guardian_passport_id=g, sealed_share=s)
                for g, s in result.shares])
