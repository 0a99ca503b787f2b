"""Reviews of enrolments whose duplicate screening found candidates (role `registrar`).

`GET /reviews[?status=open]` lists the reviews of the caller's org; `POST
/reviews/{id}/decision` resolves one: `same_person` refuses the enrolment, `different_person`
lets it finish past those candidates. Another org's reviews are 404 (they are that org's
enrolments); what a candidate's own org sees is in docs/face.md (5.3): at a per-org gateway,
`GET /reviews/named` lists its passports that another org's consortium screening named.

`POST /passports/{id}/screening` records the caller's org's outcome for a provisional
passport on the ledger (`Passport:Screen`, signed as the registrar): how a candidate's org
confirms or denies from its own reference, and how any org clears a passport its screening
found nothing for. A majority of orgs decides; the contract refuses a second decision of one
org (409 conflict) and a passport with nothing pending (409 precondition_failed).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.holders import PASSPORT_ID
from gateway.api.models.reviews import (
    NamedOut,
    ReviewDecisionIn,
    ReviewOut,
    ScreeningDecisionIn,
    ScreeningOut,
)
from gateway.core.security import require_role
from gateway.services.enrolment import enrolment_service
from gateway.services.screening_consortium import consortium_screening

router = APIRouter(tags=["reviews"])

ReviewId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PassportId = Annotated[str, Path(pattern=PASSPORT_ID)]


@router.get("/reviews", response_model=list[ReviewOut])
async def list_reviews(state: StateDep, staff: StaffDep,
                       status: Annotated[Literal["open", "cleared", "refused"] | None,
                                         Query()] = None) -> list[ReviewOut]:
    require_role(staff, ("registrar",))
    return [ReviewOut(**r) for r in enrolment_service(state).reviews(staff, status)]


@router.get("/reviews/named", response_model=list[NamedOut])
async def named_passports(state: StateDep, staff: StaffDep) -> list[NamedOut]:
    """This org's passports another org's consortium-wide screening named as candidates
    (newest first): a review at that org concerns them. No face, no score: what this org's
    registrar may then confirm or deny from its own reference (docs/face.md 5b)."""
    require_role(staff, ("registrar",))
    return [NamedOut(**n) for n in consortium_screening(state).candidates_named()]


@router.post("/reviews/{review_id}/decision", response_model=ReviewOut)
async def decide_review(review_id: ReviewId, body: ReviewDecisionIn, state: StateDep,
                        staff: StaffDep) -> ReviewOut:
    require_role(staff, ("registrar",))
    return ReviewOut(**enrolment_service(state).decide_review(
        review_id, staff, body.decision == "same_person", body.reason,
        body.candidates))


@router.post("/passports/{passport_id}/screening", response_model=ScreeningOut)
async def record_screening(passport_id: PassportId, body: ScreeningDecisionIn, state: StateDep,
                           staff: StaffDep) -> ScreeningOut:
    require_role(staff, ("registrar",))
    record = json.loads(await state.ledger.for_staff(staff).submit(
        "Passport:Screen", [passport_id, body.decision, body.reason]))
    screening = record["screening"]
    return ScreeningOut(passport_id=passport_id, status=record["status"],
                        kyc_level=record["kyc_level"], screening=screening["status"],
                        decisions=[d["org"] for d in screening["decisions"]])
