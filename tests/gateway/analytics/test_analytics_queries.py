"""Query specs: construction checks, JSON parsing, schema checks, digests' documents."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chaincode.protocol.canonical import canonical_json
from gateway.analytics import (
    MAX_QUERY_EPSILON,
    ColumnKindError,
    CountQuery,
    DatasetSchema,
    HistogramQuery,
    MeanQuery,
    Query,
    QuerySpecError,
    SumQuery,
    UnknownColumn,
    check_against_schema,
    epsilon_to_micro,
    parse_query,
)
from gateway.analytics.queries import query_document

SCHEMA = DatasetSchema.of(age="numeric", dx="categorical", weight="numeric")


def test_parse_each_kind() -> None:
    assert parse_query({"kind": "count", "epsilon": 0.5}) == CountQuery(epsilon=0.5)
    q = parse_query({"kind": "sum", "column": "age", "lower": 0, "upper": 120, "epsilon": 1})
    assert q == SumQuery(column="age", lower=0.0, upper=120.0, epsilon=1.0)
    assert isinstance(q, SumQuery) and q.impute_value == 60.0  # the middle by default
    m = parse_query({"kind": "mean", "column": "age", "lower": 0, "upper": 120,
                     "impute": 30, "epsilon": 0.1})
    assert isinstance(m, MeanQuery) and m.impute_value == 30.0
    h = parse_query({"kind": "histogram", "column": "dx", "categories": ["flu", "cold", 3],
                     "epsilon": 0.2})
    assert isinstance(h, HistogramQuery) and h.labels == ("flu", "cold", "3")
    b = parse_query({"kind": "histogram", "column": "age", "bin_edges": [0, 18, 65],
                     "epsilon": 0.2})
    assert isinstance(b, HistogramQuery)
    assert b.labels == ("< 0.0", "[0.0, 18.0)", "[18.0, 65.0)", ">= 65.0")


@pytest.mark.parametrize("data, text", [
    ({"kind": "median", "epsilon": 1}, "kind must be one of"),
    ({"epsilon": 1}, "kind must be one of"),
    ({"kind": "count"}, "missing ['epsilon']"),
    ({"kind": "count", "epsilon": 1, "column": "age"}, "unexpected ['column']"),
    ({"kind": "count", "epsilon": 0}, "above 0"),
    ({"kind": "count", "epsilon": -1}, "above 0"),
    ({"kind": "count", "epsilon": math.nan}, "finite"),
    ({"kind": "count", "epsilon": math.inf}, "finite"),
    ({"kind": "count", "epsilon": "0.5"}, "must be a number"),
    ({"kind": "count", "epsilon": True}, "must be a number"),
    ({"kind": "count", "epsilon": 1e-9}, "at least"),
    ({"kind": "count", "epsilon": MAX_QUERY_EPSILON * 1.01}, "at most"),
    ({"kind": "sum", "column": "age", "lower": 10, "upper": 10, "epsilon": 1}, "below upper"),
    ({"kind": "sum", "column": "age", "lower": 10, "upper": 0, "epsilon": 1}, "below upper"),
    ({"kind": "sum", "column": "age", "lower": "0", "upper": 1, "epsilon": 1}, "a number"),
    ({"kind": "mean", "column": "age", "lower": 0, "upper": math.inf, "epsilon": 1}, "finite"),
    ({"kind": "mean", "column": "age", "lower": 0, "upper": 1e12, "epsilon": 1}, "at most"),
    ({"kind": "mean", "column": "age", "lower": 0, "upper": 1, "impute": 2, "epsilon": 1},
     "impute must lie"),
    ({"kind": "sum", "column": "", "lower": 0, "upper": 1, "epsilon": 1}, "column must be"),
    ({"kind": "sum", "column": 3, "lower": 0, "upper": 1, "epsilon": 1}, "column must be"),
    ({"kind": "histogram", "column": "dx", "epsilon": 1}, "exactly one"),
    ({"kind": "histogram", "column": "dx", "categories": ["a"], "bin_edges": [0, 1],
      "epsilon": 1}, "exactly one"),
    ({"kind": "histogram", "column": "dx", "categories": [], "epsilon": 1}, "1 to"),
    ({"kind": "histogram", "column": "dx", "categories": "abc", "epsilon": 1}, "a list"),
    ({"kind": "histogram", "column": "dx", "categories": ["a", "a"], "epsilon": 1}, "distinct"),
    ({"kind": "histogram", "column": "dx", "categories": ["1", 1], "epsilon": 1}, "distinct"),
    ({"kind": "histogram", "column": "dx", "categories": [1.5], "epsilon": 1}, "string or"),
    ({"kind": "histogram", "column": "dx", "categories": [True], "epsilon": 1}, "string or"),
    ({"kind": "histogram", "column": "age", "bin_edges": [1], "epsilon": 1}, "2 to"),
    ({"kind": "histogram", "column": "age", "bin_edges": [1, 1], "epsilon": 1}, "increasing"),
    ({"kind": "histogram", "column": "age", "bin_edges": [2, 1], "epsilon": 1}, "increasing"),
])
def test_bad_specs_refused(data: dict[str, Any], text: str) -> None:
    with pytest.raises(QuerySpecError) as info:
        parse_query(data)
    assert text in str(info.value)
    assert info.value.code == "invalid_query" and info.value.status == 422


def test_not_an_object() -> None:
    with pytest.raises(QuerySpecError):
        parse_query(["count"])  # type: ignore[arg-type]


def test_schema_checks() -> None:
    check_against_schema(CountQuery(epsilon=1), SCHEMA)
    check_against_schema(SumQuery(column="age", lower=0, upper=1, epsilon=1), SCHEMA)
    check_against_schema(HistogramQuery(column="dx", categories=["a"], epsilon=1), SCHEMA)
    # Categories over a numeric column are fine (e.g. number of children 0, 1, 2).
    check_against_schema(HistogramQuery(column="age", categories=[0, 1], epsilon=1), SCHEMA)
    with pytest.raises(UnknownColumn) as unknown:
        check_against_schema(MeanQuery(column="height", lower=0, upper=1, epsilon=1), SCHEMA)
    assert unknown.value.code == "unknown_column"
    with pytest.raises(ColumnKindError):
        check_against_schema(SumQuery(column="dx", lower=0, upper=1, epsilon=1), SCHEMA)
    with pytest.raises(ColumnKindError):
        check_against_schema(HistogramQuery(column="dx", bin_edges=[0, 1], epsilon=1), SCHEMA)
    with pytest.raises(QuerySpecError, match="column kind"):
        DatasetSchema.of(age="text")


def test_epsilon_micro_rounds_up() -> None:
    assert epsilon_to_micro(0.4) == 400_000
    assert epsilon_to_micro(0.3) == 300_000
    assert epsilon_to_micro(1.0) == 1_000_000
    assert epsilon_to_micro(1e-6) == 1
    assert epsilon_to_micro(1.0000001) == 1_000_001  # never under-charged
    assert CountQuery(epsilon=0.1 + 0.2).epsilon_micro == 300_001  # 0.30000000000000004


def test_documents_are_canonical_json() -> None:
    queries: list[Query] = [
        CountQuery(epsilon=0.5),
        SumQuery(column="age", lower=-1.5, upper=2, epsilon=0.25),
        MeanQuery(column="age", lower=0, upper=1, epsilon=1),
        HistogramQuery(column="dx", categories=["a", 2], epsilon=0.1),
        HistogramQuery(column="age", bin_edges=[0, 0.1], epsilon=0.1),
    ]
    docs = [canonical_json(query_document(q)) for q in queries]  # no floats in any
    assert len(set(docs)) == len(docs)
    assert b'"lower":"-1.5"' in docs[1]
    # Equal specs give equal documents; a changed bound a different one.
    assert canonical_json(query_document(SumQuery(column="age", lower=-1.5, upper=2.0,
                                                  epsilon=0.25))) == docs[1]
    assert canonical_json(query_document(SumQuery(column="age", lower=-1.5, upper=2.5,
                                                  epsilon=0.25))) != docs[1]


def test_specs_are_immutable() -> None:
    q = CountQuery(epsilon=1)
    with pytest.raises(AttributeError):
        q.epsilon = 2  # type: ignore[misc]
