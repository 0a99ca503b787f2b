"""Differentially private analytics: dataset budgets and queries (researchers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.ledger_ids import path_id
from gateway.api.models.research import DatasetOut, QueryRequest
from gateway.core.errors import InvalidRequest
from gateway.services.research import research_service

router = APIRouter(tags=["analytics"])


@router.get("/analytics/datasets/{dataset_id}", response_model=DatasetOut)
async def dataset(state: StateDep, _staff: StaffDep,
                  dataset_id: Annotated[str, path_id("dataset id")]) -> DatasetOut:
    """The dataset's columns and remaining privacy budget (any staff member)."""
    return DatasetOut(**await research_service(state).describe(dataset_id))


@router.post("/analytics/queries", response_model=dict[str, Any])
async def run_query(state: StateDep, staff: StaffDep, body: QueryRequest) -> dict[str, Any]:
    """A DP answer over the consenting accounts' rows, one row per account (the unit of
    privacy is one account: a holder with k accounts in the dataset is protected at k x
    epsilon); the epsilon is debited on the ledger first (409 budget_exhausted when it no
    longer covers the query). With `request_id`, a retry (after a crash or a lost answer)
    answers the release already paid for, debited once (services/research_queries.py); the
    same request_id for another query is 409 `request_id_reused`."""
    query = dict(body.query)
    if body.epsilon is not None:
        if "epsilon" in query and query["epsilon"] != body.epsilon:
            raise InvalidRequest("epsilon given twice with different values")
        query["epsilon"] = body.epsilon
    return await research_service(state).query(staff, body.dataset_id, query,
                                                body.request_id)
