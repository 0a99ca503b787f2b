"""Typed query specs: count, sum, mean and histogram, each with the epsilon it may spend.

A spec is checked on construction (bounds, epsilon, categories), then against the dataset's
schema (`check_against_schema`: the column exists and has the right kind). Both checks look
only at the spec and the schema, never at the records, so a refusal reveals nothing about
the data. Values in the records that are not numbers are handled when the query runs (see
`gateway.analytics.dp`), not refused, for the same reason.

`query_document` gives the spec as a float-free JSON object (floats as their shortest
round-trip text) for the query digest debited on the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any, ClassVar

from gateway.analytics.errors import ColumnKindError, QuerySpecError, UnknownColumn

# Above this a single release tells too much about any one account to be worth calling private;
# a dataset's whole budget on the ledger is at most 100 epsilon (chaincode/mip/research.py).
MAX_QUERY_EPSILON = 5.0
# The ledger counts in micro-epsilon; a smaller request would still be charged one unit.
MIN_QUERY_EPSILON = 1e-6
MICRO = 1_000_000
# Bounds beyond this lose precision in float sums and make the noise useless anyway.
MAX_ABS_BOUND = 1e9
MAX_CATEGORIES = 1000
MAX_COLUMN_NAME = 128


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class DatasetSchema:
    """The public description of a dataset: column name -> kind. Queries are checked here."""

    columns: Mapping[str, ColumnKind]

    def __post_init__(self) -> None:
        for name, kind in self.columns.items():
            _check_column_name(name)
            if not isinstance(kind, ColumnKind):
                raise QuerySpecError(f"column {name!r}: kind must be a ColumnKind")

    @classmethod
    def of(cls, **columns: str) -> DatasetSchema:
        """`DatasetSchema.of(age="numeric", diagnosis="categorical")`."""
        try:
            return cls({name: ColumnKind(kind) for name, kind in columns.items()})
        except ValueError as exc:
            raise QuerySpecError(f"unknown column kind: {exc}") from exc


def _check_column_name(name: Any) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_COLUMN_NAME:
        raise QuerySpecError(f"column must be a name of 1 to {MAX_COLUMN_NAME} characters")
    return name


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise QuerySpecError("epsilon must be a number")
    value = float(epsilon)
    if not math.isfinite(value) or value <= 0:
        raise QuerySpecError("epsilon must be a finite number above 0")
    if value < MIN_QUERY_EPSILON:
        raise QuerySpecError(f"epsilon must be at least {MIN_QUERY_EPSILON}")
    if value > MAX_QUERY_EPSILON:
        raise QuerySpecError(f"epsilon must be at most {MAX_QUERY_EPSILON}")
    return value


def _check_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QuerySpecError(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_ABS_BOUND:
        raise QuerySpecError(f"{what} must be finite and at most {MAX_ABS_BOUND:g} in size")
    return number


def epsilon_to_micro(epsilon: float) -> int:
    """Micro-epsilon debited for `epsilon`, rounded up so the ledger never under-charges."""
    return int((Decimal(repr(float(epsilon))) * MICRO).to_integral_value(ROUND_CEILING))


def _text(value: float) -> str:
    # The digest is over canonical JSON, which carries no floats: repr is Python's shortest
    # text that reads back to the same float, so one spec always gives one document.
    return repr(float(value))


@dataclass(frozen=True, kw_only=True)
class _Query:
    kind: ClassVar[str] = ""
    epsilon: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", _check_epsilon(self.epsilon))

    @property
    def epsilon_micro(self) -> int:
        return epsilon_to_micro(self.epsilon)


@dataclass(frozen=True, kw_only=True)
class CountQuery(_Query):
    """How many (consenting, deduplicated) accounts the dataset has."""

    kind: ClassVar[str] = "count"

    def document(self) -> dict[str, Any]:
        return {"kind": self.kind, "epsilon": _text(self.epsilon)}


@dataclass(frozen=True, kw_only=True)
class _BoundedQuery(_Query):
    """A numeric column clamped to [lower, upper]; values that are not numbers become
    `impute` (default: the middle of the bounds)."""

    column: str
    lower: float
    upper: float
    impute: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_column_name(self.column)
        lower = _check_number(self.lower, "lower")
        upper = _check_number(self.upper, "upper")
        if not lower < upper:
            raise QuerySpecError("lower must be below upper")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        impute = (lower + upper) / 2 if self.impute is None else _check_number(
            self.impute, "impute")
        if not lower <= impute <= upper:
            raise QuerySpecError("impute must lie within [lower, upper]")
        object.__setattr__(self, "impute", impute)

    @property
    def impute_value(self) -> float:
        assert self.impute is not None  # set in __post_init__
        return self.impute

    def document(self) -> dict[str, Any]:
        return {"kind": self.kind, "epsilon": _text(self.epsilon),
                "column": self.column, "lower": _text(self.lower), "upper": _text(self.upper),
                "impute": _text(self.impute_value)}


@dataclass(frozen=True, kw_only=True)
class SumQuery(_BoundedQuery):
    kind: ClassVar[str] = "sum"


@dataclass(frozen=True, kw_only=True)
class MeanQuery(_BoundedQuery):
    kind: ClassVar[str] = "mean"


Category = str | int


def category_label(value: Category) -> str:
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, kw_only=True)
class HistogramQuery(_Query):
    """Counts per category (`categories`) or per numeric bin (`bin_edges`, strictly increasing:
    bins `< e0`, `[e0, e1)`, ..., `>= ek`). Values in no category / not numbers are counted in
    a separate `other` bucket, so every account is counted once."""

    column: str
    categories: Sequence[Category] | None = None  # stored as a tuple
    bin_edges: Sequence[float] | None = None  # stored as a tuple
    kind: ClassVar[str] = "histogram"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_column_name(self.column)
        if (self.categories is None) == (self.bin_edges is None):
            raise QuerySpecError("give exactly one of categories and bin_edges")
        if self.categories is not None:
            object.__setattr__(self, "categories", _check_categories(self.categories))
        if self.bin_edges is not None:
            object.__setattr__(self, "bin_edges", _check_edges(self.bin_edges))

    @property
    def labels(self) -> tuple[str, ...]:
        """The bucket names in order (without the `other` bucket)."""
        if self.categories is not None:
            return tuple(category_label(c) for c in self.categories)
        assert self.bin_edges is not None
        edges = [_text(e) for e in self.bin_edges]
        inner = [f"[{a}, {b})" for a, b in pairwise(edges)]
        return (f"< {edges[0]}", *inner, f">= {edges[-1]}")

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "epsilon": _text(self.epsilon),
                               "column": self.column}
        if self.categories is not None:
            doc["categories"] = list(self.categories)
        else:
            assert self.bin_edges is not None
            doc["bin_edges"] = [_text(e) for e in self.bin_edges]
        return doc


def _check_categories(categories: Any) -> tuple[Category, ...]:
    if isinstance(categories, str | bytes) or not isinstance(categories, Sequence):
        raise QuerySpecError("categories must be a list")
    if not 0 < len(categories) <= MAX_CATEGORIES:
        raise QuerySpecError(f"categories must hold 1 to {MAX_CATEGORIES} values")
    labels: set[str] = set()
    for value in categories:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise QuerySpecError("each category must be a string or an integer")
        label = category_label(value)
        if label in labels:
            raise QuerySpecError("categories must be distinct (also as text)")
        labels.add(label)
    return tuple(categories)


def _check_edges(edges: Any) -> tuple[float, ...]:
    if isinstance(edges, str | bytes) or not isinstance(edges, Sequence):
        raise QuerySpecError("bin_edges must be a list")
    if not 2 <= len(edges) <= MAX_CATEGORIES:
        raise QuerySpecError(f"bin_edges must hold 2 to {MAX_CATEGORIES} values")
    values = tuple(_check_number(e, "each bin edge") for e in edges)
    if any(b <= a for a, b in pairwise(values)):
        raise QuerySpecError("bin_edges must be strictly increasing")
    return values


Query = CountQuery | SumQuery | MeanQuery | HistogramQuery

_FIELDS: dict[str, tuple[type[Query], frozenset[str], frozenset[str]]] = {
    # kind -> (class, required fields, optional fields)
    "count": (CountQuery, frozenset({"epsilon"}), frozenset()),
    "sum": (SumQuery, frozenset({"epsilon", "column", "lower", "upper"}), frozenset({"impute"})),
    "mean": (MeanQuery, frozenset({"epsilon", "column", "lower", "upper"}),
             frozenset({"impute"})),
    "histogram": (HistogramQuery, frozenset({"epsilon", "column"}),
                  frozenset({"categories", "bin_edges"})),
}


def parse_query(data: Mapping[str, Any]) -> Query:
    """A spec from its JSON form, e.g. `{"kind": "sum", "column": "age", "lower": 0,
    "upper": 120, "epsilon": 0.5}`; QuerySpecError says what is wrong."""
    if not isinstance(data, Mapping):
        raise QuerySpecError("a query must be a JSON object")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise QuerySpecError(f"kind must be one of {sorted(_FIELDS)}")
    cls, required, optional = _FIELDS[kind]
    given = set(data) - {"kind"}
    missing, extra = required - given, given - required - optional
    if missing or extra:
        raise QuerySpecError(
            f"{kind} query fields wrong (missing {sorted(missing)}, unexpected {sorted(extra)})")
    # The constructors check every value (and turn lists into tuples).
    return cls(**{name: data[name] for name in given})


def check_against_schema(query: Query, schema: DatasetSchema) -> None:
    """The query's column exists in `schema` and has a kind the query can use."""
    if isinstance(query, CountQuery):
        return
    kind = schema.columns.get(query.column)
    if kind is None:
        raise UnknownColumn(f"unknown column {query.column!r}; known: {sorted(schema.columns)}")
    needs_numeric = isinstance(query, SumQuery | MeanQuery) or (
        isinstance(query, HistogramQuery) and query.bin_edges is not None)
    if needs_numeric and kind is not ColumnKind.NUMERIC:
        raise ColumnKindError(f"column {query.column!r} is {kind.value}, the query needs numeric")


def query_document(query: Query) -> dict[str, Any]:
    """The spec as a float-free JSON object (for canonical JSON and the digest)."""
    return query.document()
