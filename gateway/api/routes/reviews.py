"""Reviews of enrolments whose duplicate screening found candidates (role `registrar`).

`GET /reviews[?status=open]` lists the reviews of the caller's org; `POST
/reviews/{id}/decision` resolves one: `same_person` refuses the enrolment, `different_person`
lets it finish past those candidates. Another org's reviews are 404 (they are that org's
enrolments); what a candidate's own org sees is in docs/face.md ("Review").
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.reviews import ReviewDecisionIn, ReviewOut
from gateway.core.security import require_role
from gateway.services.enrolment import enrolment_service

router = APIRouter(tags=["reviews"])

ReviewId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.get("/reviews", response_model=list[ReviewOut])
async def list_reviews(state: StateDep, staff: StaffDep,
                       status: Annotated[Literal["open", "cleared", "refused"] | None,
                                         Query()] = None) -> list[ReviewOut]:
    require_role(staff, ("registrar",))
    return [ReviewOut(**r) for r in enrolment_service(state).reviews(staff, status)]


@router.post("/reviews/{review_id}/decision", response_model=ReviewOut)
async def decide_review(review_id: ReviewId, body: ReviewDecisionIn, state: StateDep,
                        staff: StaffDep) -> ReviewOut:
    require_role(staff, ("registrar",))
    return ReviewOut(**enrolment_service(state).decide_review(
        review_id, staff, body.decision == "same_person", body.reason))
