"""Differentially private analytics over consenting accounts, budget debited on the ledger.

```python
from gateway.analytics import AnalyticsService, LedgerBudget, DatasetSchema, parse_query

service = AnalyticsService(LedgerBudget(researcher_contract))
release = await service.answer("ds-1", {"kind": "count", "epsilon": 0.4}, records,
                               schema=DatasetSchema.of(age="numeric", dx="categorical"))
release.value, release.remaining_epsilon
```

Modules: `queries` (specs), `dp` (OpenDP measurements), `ledger` (budget on the Research
contract), `service` (debit first, then release), `consent` (`research.aggregate` grants),
`errors` (typed refusals with stable codes).
"""

from gateway.analytics.consent import consenting_accounts, consenting_records, grant_consents
from gateway.analytics.dp import DpAnswer, NoiseInfo, Plan, plan
from gateway.analytics.errors import (
    AnalyticsError,
    BudgetConflict,
    BudgetDenied,
    BudgetError,
    BudgetExhausted,
    CalibrationError,
    ColumnKindError,
    DpParametersOutOfRange,
    LedgerUnavailable,
    QuerySpecError,
    RecordError,
    UnknownColumn,
    UnknownDataset,
)
from gateway.analytics.ledger import BudgetLedger, LedgerBudget, register_dataset
from gateway.analytics.queries import (
    MAX_QUERY_EPSILON,
    ColumnKind,
    CountQuery,
    DatasetSchema,
    HistogramQuery,
    MeanQuery,
    Query,
    SumQuery,
    check_against_schema,
    epsilon_to_micro,
    parse_query,
)
from gateway.analytics.service import AnalyticsService, Release, query_digest

__all__ = [
    "MAX_QUERY_EPSILON",
    "AnalyticsError",
    "AnalyticsService",
    "BudgetConflict",
    "BudgetDenied",
    "BudgetError",
    "BudgetExhausted",
    "BudgetLedger",
    "CalibrationError",
    "ColumnKind",
    "ColumnKindError",
    "CountQuery",
    "DatasetSchema",
    "DpAnswer",
    "DpParametersOutOfRange",
    "HistogramQuery",
    "LedgerBudget",
    "LedgerUnavailable",
    "MeanQuery",
    "NoiseInfo",
    "Plan",
    "Query",
    "QuerySpecError",
    "RecordError",
    "Release",
    "SumQuery",
    "UnknownColumn",
    "UnknownDataset",
    "check_against_schema",
    "consenting_accounts",
    "consenting_records",
    "epsilon_to_micro",
    "grant_consents",
    "parse_query",
    "plan",
    "query_digest",
    "register_dataset",
]
