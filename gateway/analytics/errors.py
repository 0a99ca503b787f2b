"""Typed errors of the analytics service, each with a stable `code` and an HTTP-like `status`.

The API layer maps them one to one (`code` is what a client branches on). Messages never hold
record values: a refusal says what was wrong with the query or the budget, not with the data.
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of every analytics refusal."""

    code = "analytics_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the query ------------------------------------------------------------------------------


class QuerySpecError(AnalyticsError, ValueError):
    """The query spec is malformed: unknown kind, bounds inverted, epsilon out of range..."""

    code = "invalid_query"
    status = 422


class UnknownColumn(QuerySpecError):
    """The query names a column the dataset's schema does not have."""

    code = "unknown_column"


class ColumnKindError(QuerySpecError):
    """The column exists but is of the wrong kind (a sum over a categorical column)."""

    code = "column_kind"


class DpParametersOutOfRange(QuerySpecError):
    """OpenDP cannot build a mechanism for these parameters: the bounds' width over the
    epsilon needs a noise scale beyond what it can represent (a sum over [-1e9, 1e9] at
    epsilon 1e-6). Narrower bounds or a larger epsilon can be answered."""

    code = "dp_parameters_out_of_range"


class RecordError(AnalyticsError, ValueError):
    """The caller passed records without a holder id (a programming error, not bad data)."""

    code = "invalid_records"
    status = 500


class CalibrationError(AnalyticsError):
    """OpenDP could not build a measurement whose privacy loss stays within the epsilon."""

    code = "calibration_failed"
    status = 500


# --- the ledger budget ----------------------------------------------------------------------


class BudgetError(AnalyticsError):
    """The ledger did not debit the budget; nothing was computed or released."""

    code = "budget_error"
    status = 502


class BudgetExhausted(BudgetError):
    """The dataset's remaining budget is below the query's epsilon."""

    code = "budget_exhausted"
    status = 409


class UnknownDataset(BudgetError):
    """No dataset with this id is registered on the ledger."""

    code = "unknown_dataset"
    status = 404


class BudgetDenied(BudgetError):
    """The ledger refused the caller's identity (not a researcher, wrong endorsing org...)."""

    code = "budget_denied"
    status = 403


class BudgetConflict(BudgetError):
    """Concurrent debits kept invalidating this one (MVCC) after every retry."""

    code = "budget_conflict"
    status = 409


class LedgerUnavailable(BudgetError):
    """The ledger could not be reached or answered something unexpected."""

    code = "ledger_unavailable"
    status = 503
