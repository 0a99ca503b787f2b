"""Request and response bodies of credential issue, revoke and check."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .ledger_ids import Base64, LedgerId, Pseudonym, Reason, Text, UnixTime


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrescriptionContent(_Strict):
    drug: Text
    strength: Text
    quantity: Annotated[int, Field(gt=0, le=1_000_000)]
    refills: Annotated[int, Field(ge=0, le=99)]
    prescriber: Text
    expiry: UnixTime


class RecordContent(_Strict):
    diagnosis: Text
    notes: Text


class DiplomaContent(_Strict):
    degree: Text
    field: Text
    awarded: Text | Annotated[int, Field(ge=0, le=2**53)]


class CourseGrade(_Strict):
    course: Text
    grade: Text


class TranscriptContent(_Strict):
    courses: Annotated[list[CourseGrade], Field(min_length=1, max_length=500)]


class _Issue(_Strict):
    subject_account: Pseudonym


class IssuePrescription(_Issue):
    type: Literal["prescription"]
    content: PrescriptionContent


class IssueRecord(_Issue):
    type: Literal["record"]
    content: RecordContent


class IssueDiploma(_Issue):
    type: Literal["diploma"]
    content: DiplomaContent


class IssueTranscript(_Issue):
    type: Literal["transcript"]
    content: TranscriptContent


IssueRequest = Annotated[IssuePrescription | IssueRecord | IssueDiploma | IssueTranscript,
                         Field(discriminator="type")]


class IssuedResponse(BaseModel):
    """Content and salt are returned once, for the holder; the gateway keeps neither."""

    credential_id: str
    record: dict[str, Any]
    content: str = Field(description="the canonical JSON content, exactly as hashed")
    salt: str = Field(description="base64 of the salt")


class RevokeRequest(_Strict):
    reason: Reason


class CheckRequest(_Strict):
    credential_id: LedgerId
    content: Annotated[str, Field(min_length=2, max_length=1_000_000)] | dict[str, Any] = Field(
        description="the canonical JSON content as handed to the holder (a string), or the "
                    "same content as a JSON object (canonicalised here)")
    salt: Annotated[Base64, Field(min_length=4, max_length=1024)]


class CheckResponse(BaseModel):
    credential_id: str
    valid: bool
    status: str
    type: str | None
    issuer_org: str | None
