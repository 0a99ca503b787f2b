"""Bodies of dataset registration, record loading and DP queries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .ledger_ids import LedgerId

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RegisterDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: LedgerId
    total_epsilon: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    columns: Annotated[dict[ColumnName, Literal["numeric", "categorical"]],
                       Field(min_length=1, max_length=100)]


class AddRecords(BaseModel):
    """De-identified rows keyed by account pseudonym (`account`) plus the schema's columns.
    Queries keep one row per account: the unit of privacy is one account."""

    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[dict[str, str | int | float | None]],
                       Field(min_length=1, max_length=10_000)]


class ResearcherIn(BaseModel):
    """A researcher's Fabric identity: its org and either the identity string the chaincode
    sees (`x509::<subject>::<issuer>`) or a user name this gateway has in that org."""

    model_config = ConfigDict(extra="forbid")

    org: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    user: Annotated[str, StringConstraints(min_length=1, max_length=128,
                                           pattern=r"^[A-Za-z0-9_.@-]+$")] | None = None
    researcher_id: Annotated[str, StringConstraints(min_length=7, max_length=1024,
                                                    pattern=r"^x509::")] | None = None


class RecordsAdded(BaseModel):
    added: int


class DatasetOut(BaseModel):
    dataset_id: str
    owner_org: str | None
    total_epsilon_micro: int | None
    remaining_epsilon_micro: int
    remaining_epsilon: float
    columns: dict[str, str]


class QueryRequest(BaseModel):
    """`query`: {"kind": "count"|"sum"|"mean"|"histogram", ...}; `epsilon` may be given here
    or inside the query. `request_id` (the researcher's idempotency key, 8 to 128 of
    A-Z a-z 0-9 _ -): a retry with it gets the answer already paid for, never a second
    debit (gateway/services/research_queries.py)."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: LedgerId
    query: dict[str, Any]
    epsilon: Annotated[float, Field(gt=0, le=5, allow_inf_nan=False)] | None = None
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,128}$")] | None = None
