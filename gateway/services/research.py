"""Research datasets: registration, their de-identified records, DP queries over consenters.

Where the records live (the simplest honest option at this scale): the gateway database of
the dataset's owner org holds, per dataset, de-identified rows keyed by account pseudonym,
loaded by that org's admin (`POST /admin/datasets/{id}/records`). A pseudonym is already
unlinkable to a person or to the holder's other accounts, and rows carry only the schema's
columns. A query uses only rows whose account has a live `research.aggregate` grant to the
researcher's org (and role, if narrowed) that this gateway has seen
(gateway/services/grants.py keeps them from the creations, revocations and listings it
carried; a revocation made through another gateway is seen at the holder's next listing
here). The privacy budget is debited on the ledger before anything is computed
(gateway/analytics), and only a researcher the owner org's admin admitted
(`POST /admin/datasets/{id}/researchers`, `Research:AdmitResearcher`) may debit it: the
ledger refuses anyone else (403 `budget_denied`), so nothing is computed for them. A query
with a `request_id` is crash-consistent: its retry gets the answer paid for, debited once
(research_queries.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.analytics import (
    AnalyticsError,
    AnalyticsService,
    DatasetSchema,
    LedgerBudget,
    consenting_accounts,
    consenting_records,
    epsilon_to_micro,
    register_dataset,
)
from gateway.core.errors import ApiError, Conflict, InvalidRequest, NotFound
from gateway.core.security import StaffMember, require_role
from gateway.store import Database

from .grants import research_grants
from .ledger_reads import json_object, public_reader
from .research_queries import QueryIntents, answer_once

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.research")

HOLDER_FIELD = "account"
MAX_RECORDS_PER_CALL = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS research_datasets (
    dataset_id TEXT PRIMARY KEY,
    owner_org TEXT NOT NULL,
    columns TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS research_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id TEXT NOT NULL REFERENCES research_datasets(dataset_id),
    account TEXT NOT NULL,
    row TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS research_records_dataset ON research_records(dataset_id);
"""


def api_error(exc: AnalyticsError) -> ApiError:
    return ApiError(exc.message, code=exc.code, status=exc.status)


class ResearchService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db: Database = state.db
        self.db.ensure(SCHEMA)
        self.intents = QueryIntents(self.db)

    def _dataset(self, dataset_id: str) -> tuple[str, DatasetSchema]:
        row = self.db.query_one("SELECT * FROM research_datasets WHERE dataset_id = ?",
                                (dataset_id,))
        if row is None:
            raise NotFound("no such dataset on this gateway", code="unknown_dataset")
        return str(row["owner_org"]), DatasetSchema.of(**json.loads(row["columns"]))

    async def register(self, member: StaffMember, dataset_id: str, total_epsilon: float,
                       columns: Mapping[str, str]) -> dict[str, Any]:
        require_role(member, ("admin",))
        try:
            DatasetSchema.of(**columns)
            micro = epsilon_to_micro(total_epsilon)
        except AnalyticsError as exc:
            raise api_error(exc) from None
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"invalid dataset: {exc}") from None
        if self.db.query_one("SELECT 1 FROM research_datasets WHERE dataset_id = ?",
                             (dataset_id,)):
            raise Conflict("dataset id already registered")
        try:
            record = await register_dataset(self.state.ledger.for_staff(member), dataset_id,
                                            micro)
        except AnalyticsError as exc:
            raise api_error(exc) from None
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO research_datasets (dataset_id, owner_org, columns, "
                         "created) VALUES (?, ?, ?, ?)",
                         (dataset_id, member.org, json.dumps(dict(columns)), time.time()))
        log.info("dataset %s registered by %s", dataset_id, member.org)
        return {**record, "columns": dict(columns)}

    def add_records(self, member: StaffMember, dataset_id: str,
                    records: list[dict[str, Any]]) -> int:
        require_role(member, ("admin",))
        owner, schema = self._dataset(dataset_id)
        if member.org != owner:
            raise ApiError("only the dataset's owner org loads its records", code="wrong_org",
                           status=403)
        allowed = set(schema.columns) | {HOLDER_FIELD}
        for index, record in enumerate(records):
            extra = set(record) - allowed
            account = record.get(HOLDER_FIELD)
            if extra or not isinstance(account, str) or not account:
                # Names the position and the unknown column names, never values.
                raise InvalidRequest(f"record {index}: needs an account and only the "
                                     f"dataset's columns (unexpected {sorted(extra)})")
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO research_records (dataset_id, account, row) VALUES (?, ?, ?)",
                [(dataset_id, r[HOLDER_FIELD], json.dumps(r)) for r in records])
        log.info("dataset %s: %d records added", dataset_id, len(records))
        return len(records)

    async def admission(self, member: StaffMember, dataset_id: str, org: str,
                        user: str | None, researcher_id: str | None, *,
                        admit: bool) -> dict[str, Any]:
        """Admit (or dismiss) a researcher identity to the dataset, as the owner org's admin.

        The identity is named by its identity string, or by a user name this gateway holds
        in `org` (resolved from its certificate). The ledger checks the caller owns the
        dataset; this only refuses early with a clear error."""
        require_role(member, ("admin",))
        if (user is None) == (researcher_id is None):
            raise InvalidRequest("name the researcher by user or by researcher_id, not both")
        if org not in self.state.ledger.orgs():
            raise InvalidRequest("unknown org (not a member org)", code="unknown_org")
        identity = researcher_id if researcher_id is not None else \
            self.state.ledger.client_id(org, str(user))
        tx = "Research:AdmitResearcher" if admit else "Research:DismissResearcher"
        record = json_object(await self.state.ledger.for_staff(member).submit(
            tx, [dataset_id, org, identity]))
        log.info("dataset %s: researcher of %s %s by %s", dataset_id, org,
                 "admitted" if admit else "dismissed", member.org)
        return record

    async def describe(self, dataset_id: str) -> dict[str, Any]:
        """The budget on the ledger and the columns (public facts, no records)."""
        _, schema = self._dataset(dataset_id)
        record = json_object(await public_reader(self.state).evaluate(
            "Research:Get", [dataset_id]))
        remaining = int(record.get("remaining_epsilon_micro", 0))
        return {"dataset_id": dataset_id, "owner_org": record.get("owner_org"),
                "total_epsilon_micro": record.get("total_epsilon_micro"),
                "remaining_epsilon_micro": remaining, "remaining_epsilon": remaining / 1e6,
                "columns": {k: v.value for k, v in schema.columns.items()}}

    async def query(self, member: StaffMember, dataset_id: str, query: Mapping[str, Any],
                    request_id: str | None = None) -> dict[str, Any]:
        require_role(member, ("researcher",))
        _, schema = self._dataset(dataset_id)
        consenting = consenting_accounts(
            research_grants(self.db, member.org), researcher_org=member.org,
            now=int(time.time()), role=member.role)
        rows = [json.loads(r["row"]) for r in self.db.query(
            "SELECT row FROM research_records WHERE dataset_id = ? ORDER BY id",
            (dataset_id,))]
        records = consenting_records(rows, consenting, HOLDER_FIELD)
        contract = self.state.ledger.for_staff(member)
        try:
            if request_id is not None:
                # Debited at most once and released once per request_id (research_queries.py).
                return await answer_once(self.intents, contract, member, request_id,
                                         dataset_id, query, records, schema=schema,
                                         holder_field=HOLDER_FIELD)
            service = AnalyticsService(LedgerBudget(contract), holder_field=HOLDER_FIELD)
            release = await service.answer(dataset_id, query, records, schema=schema)
        except AnalyticsError as exc:
            raise api_error(exc) from None
        except (TypeError, ValueError):
            # A spec value of the wrong shape that the spec checks did not name.
            raise InvalidRequest("the query spec is malformed", code="invalid_query") from None
        return release.to_json()


def research_service(state: AppState) -> ResearchService:
    return state.service("research", ResearchService)
