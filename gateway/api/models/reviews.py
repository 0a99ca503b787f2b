"""Request and response models of the duplicate-review area."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EnrolmentScreened(BaseModel):
    status: Literal["in_review"]
    review_id: str = Field(description="the review the enrolment waits for (/api/v1/reviews)")


class ReviewOut(BaseModel):
    review_id: str
    session_id: str
    status: str = Field(description="open, cleared (different person) or refused (same person)")
    candidates: list[str] = Field(description="passport ids that scored at or above the "
                                              "identification threshold (no faces, no scores)")
    candidate_orgs: dict[str, str] = Field(
        default_factory=dict, description="the org whose gallery holds each candidate: its "
        "registrar can confirm or deny from its own reference (its GET /reviews/named lists "
        "the passport)")
    created: float
    decided: float | None
    decided_by: str | None
    reason: str | None


class ReviewDecisionIn(BaseModel):
    decision: Literal["same_person", "different_person"]
    reason: str = Field(min_length=1, max_length=500)
    # The background screening can add candidates to an open review at any time: a decision
    # names the list it was made about, and one made about a list that has grown since is
    # refused (409 `review_changed`), so no candidate is cleared unseen.
    candidates: list[str] = Field(
        min_length=1, max_length=1000,
        description="the candidates the registrar decided about, as GET /reviews listed them")


class ScreeningDecisionIn(BaseModel):
    decision: Literal["clear", "duplicate"] = Field(
        description="this org's outcome for a provisional passport: clear (no candidate in "
                    "its gallery, or its reference is of a different person) or duplicate")
    reason: str = Field(min_length=1, max_length=500)


class ScreeningOut(BaseModel):
    passport_id: str
    status: str = Field(description="the passport's status (revoked once found a duplicate)")
    kyc_level: int
    screening: str = Field(description="pending, cleared or duplicate")
    decisions: list[str] = Field(description="orgs that have recorded their outcome")


class NamedOut(BaseModel):
    request_id: str = Field(description="the screening request (Screening:Get on the ledger)")
    querier: str = Field(description="the org whose enrolment's screening named the passport")
    passport_id: str = Field(description="this org's passport a review there concerns")
    at: float
