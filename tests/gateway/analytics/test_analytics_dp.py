"""OpenDP measurements: privacy map equals the epsilon, noise is real and as large as claimed,
answers are accurate within the bounds the noise scale gives, values are clamped/imputed."""

from __future__ import annotations

import math
import statistics
from typing import Any

import opendp.prelude as dp
import pytest

from gateway.analytics import (
    CountQuery,
    HistogramQuery,
    MeanQuery,
    Query,
    SumQuery,
    plan,
)
from gateway.analytics.dp import (
    DISCRETE_LAPLACE,
    LAPLACE,
    MEAN_COUNT_SHARE,
    category_column,
    numeric_value,
)

# Statistical tests use bounds that fail with probability far below 1e-6 per run.
TINY = 1e-9


def people(n: int) -> list[dict[str, Any]]:
    return [{"account": f"acc-{i}", "age": i % 90, "dx": ["flu", "cold", "asthma"][i % 3]}
            for i in range(n)]


def num(value: float | int | None) -> float:
    assert value is not None
    return float(value)


def discrete_bound(scale: float, alpha: float = TINY) -> float:
    return float(dp.discrete_laplacian_scale_to_accuracy(scale, alpha))


def laplace_bound(scale: float, alpha: float = TINY) -> float:
    return float(dp.laplacian_scale_to_accuracy(scale, alpha))


@pytest.mark.parametrize("epsilon", [1e-6, 0.1, 0.3, 1 / 3, 0.7, 1.0, 2.5, 5.0])
def test_privacy_map_equals_epsilon(epsilon: float) -> None:
    queries: list[Query] = [
        CountQuery(epsilon=epsilon),
        SumQuery(column="age", lower=-3.5, upper=120, epsilon=epsilon),
        MeanQuery(column="age", lower=0, upper=120, epsilon=epsilon),
        HistogramQuery(column="dx", categories=["flu", "cold"], epsilon=epsilon),
        HistogramQuery(column="age", bin_edges=[0, 18, 65], epsilon=epsilon),
    ]
    for query in queries:
        p = plan(query)
        loss = float(p.measurement.map(1))
        assert loss == p.privacy_loss
        # Never above; below only by float rounding of the binary search.
        assert loss <= epsilon
        assert loss == pytest.approx(epsilon, rel=1e-9), query


def test_noise_scales_follow_sensitivity() -> None:
    # Count and histogram: sensitivity 1, discrete Laplace with scale 1/epsilon.
    count = plan(CountQuery(epsilon=0.5))
    answer = count.run(people(10))
    (noise,) = answer.noise
    assert noise.mechanism == DISCRETE_LAPLACE and noise.scale == pytest.approx(2.0)
    hist = plan(HistogramQuery(column="dx", categories=["flu"], epsilon=0.25)).run(people(3))
    assert hist.noise[0].scale == pytest.approx(4.0)
    # Sum: adding or removing one holder moves it by max(|lower|, |upper|) when the bounds
    # share a sign; OpenDP's float-safe sum adds a little for rounding, never less.
    total = plan(SumQuery(column="age", lower=0, upper=100, epsilon=0.5)).run(people(3))
    assert total.noise[0].mechanism == LAPLACE
    assert total.noise[0].scale == pytest.approx(200, rel=1e-6)
    assert total.noise[0].scale >= 200
    # Bounds of both signs: OpenDP charges up to upper - lower (more than the ideal 200).
    mixed = plan(SumQuery(column="age", lower=-200, upper=100, epsilon=0.5)).run(people(3))
    assert 400 <= mixed.noise[0].scale <= 600 * (1 + 1e-6)


def test_count_accuracy_at_epsilon_one() -> None:
    """n = 1000, epsilon = 1: within +-20 with 99%, from the scale rather than guessed."""
    p = plan(CountQuery(epsilon=1.0))
    records = people(1000)
    scale = p.run(records).noise[0].scale
    bound_99 = discrete_bound(scale, 0.01)
    assert bound_99 <= 20  # about 4.6 for scale 1
    releases = [num(p.run(records).value) for _ in range(400)]
    outside = sum(1 for v in releases if abs(v - 1000) > bound_99)
    # Expected 4 of 400 outside; more than 20 has probability ~1e-8.
    assert outside <= 20
    assert all(abs(v - 1000) <= discrete_bound(scale) for v in releases)


def test_noise_is_added_and_as_large_as_claimed() -> None:
    records = people(200)
    true_sum = float(sum(r["age"] for r in records))
    p = plan(SumQuery(column="age", lower=0, upper=100, epsilon=1.0))
    answers = [p.run(records) for _ in range(400)]
    scale = answers[0].noise[0].scale
    errors = [num(a.value) - true_sum for a in answers]
    assert len({a.value for a in answers}) > 390  # repeated releases differ
    # Laplace(b): E|X| = b; the mean of 400 |X| has sd b/20, so 0.7b..1.3b is 6 sd wide.
    assert 0.7 * scale < statistics.fmean(abs(e) for e in errors) < 1.3 * scale
    assert abs(statistics.fmean(errors)) < 0.35 * scale  # unbiased (sd of mean ~ b/14)

    count = plan(CountQuery(epsilon=1.0))
    counts = [count.run(records).value for _ in range(100)]
    assert len(set(counts)) > 3


def test_mean_is_clamped_and_accurate() -> None:
    # Every value above the upper bound: clamped to 100, so the mean is about 100.
    records = [{"account": f"a{i}", "w": 1e6} for i in range(1000)]
    answer = plan(MeanQuery(column="w", lower=0, upper=100, epsilon=4.0)).run(records)
    count_info, mean_info = answer.noise
    assert count_info.part == "count" and mean_info.part == "mean"
    assert count_info.epsilon + mean_info.epsilon <= 4.0
    assert count_info.epsilon == pytest.approx(4.0 * MEAN_COUNT_SHARE)
    # Resizing to the noisy count pads with the impute value 50 (or drops records): bias at
    # most 50 * |noisy n - n| / noisy n, plus the Laplace noise on the mean.
    slack = discrete_bound(count_info.scale)
    bound = 50 * slack / (1000 - slack) + laplace_bound(mean_info.scale)
    assert abs(num(answer.value) - 100) <= bound
    assert bound < 2


def test_mean_of_mixed_values() -> None:
    records = people(3000)
    true_mean = statistics.fmean(r["age"] for r in records)
    answer = plan(MeanQuery(column="age", lower=0, upper=90, epsilon=2.0)).run(records)
    count_info, mean_info = answer.noise
    slack = discrete_bound(count_info.scale)
    bound = 45 * slack / (3000 - slack) + laplace_bound(mean_info.scale)
    assert abs(num(answer.value) - true_mean) <= bound


def test_sum_clamps_and_imputes() -> None:
    records: list[dict[str, Any]] = [{"account": "a", "x": 500}, {"account": "b", "x": -500},
               {"account": "c", "x": "twelve"}, {"account": "d"}, {"account": "e", "x": None},
               {"account": "f", "x": math.nan}, {"account": "g", "x": math.inf},
               {"account": "h", "x": True}, {"account": "i", "x": 10**400}]
    # Clamped: 10 + 0 + impute 7 (x3: text, missing, None) + 7 (NaN) + 10 (inf) + 1 + 10.
    expected = 10 + 0 + 7 * 4 + 10 + 1 + 10
    p = plan(SumQuery(column="x", lower=0, upper=10, impute=7, epsilon=5.0))
    answer = p.run(records)
    assert abs(num(answer.value) - expected) <= laplace_bound(answer.noise[0].scale)


def test_histogram_has_every_category_and_other() -> None:
    records = [*people(900), {"account": "x1", "dx": 7}, {"account": "x2"},
               {"account": "x3", "dx": ["flu"]}]
    query = HistogramQuery(column="dx", categories=["flu", "cold", "measles"], epsilon=2.0)
    answer = plan(query).run(records)
    assert answer.counts is not None and list(answer.counts) == ["flu", "cold", "measles"]
    bound = discrete_bound(answer.noise[0].scale)
    assert abs(answer.counts["flu"] - 300) <= bound
    assert abs(answer.counts["cold"] - 300) <= bound
    assert abs(answer.counts["measles"]) <= bound  # present although no record has it
    # 300 asthma + 3 values in no category.
    assert answer.other is not None and abs(answer.other - 303) <= bound
    assert answer.value is None and answer.mechanism == DISCRETE_LAPLACE


def test_histogram_bins() -> None:
    records = [{"account": str(i), "age": age}
               for i, age in enumerate([-1, 0, 17.9, 18, 64, 65, 200, "n/a", None, math.nan])]
    query = HistogramQuery(column="age", bin_edges=[0, 18, 65], epsilon=1.0)
    assert category_column(records, query) == [
        "< 0.0", "[0.0, 18.0)", "[0.0, 18.0)", "[18.0, 65.0)", "[18.0, 65.0)", ">= 65.0",
        ">= 65.0", *[category_column([{}], query)[0]] * 3]
    answer = plan(query).run(records * 100)
    assert answer.counts is not None
    assert list(answer.counts) == ["< 0.0", "[0.0, 18.0)", "[18.0, 65.0)", ">= 65.0"]
    bound = discrete_bound(answer.noise[0].scale)
    for label, true in zip(answer.counts, [100, 200, 200, 200], strict=True):
        assert abs(answer.counts[label] - true) <= bound
    assert answer.other is not None and abs(answer.other - 300) <= bound


def test_categories_match_type_and_value() -> None:
    query = HistogramQuery(column="c", categories=["1", "a", 2], epsilon=1.0)
    column = category_column([{"c": "1"}, {"c": 1}, {"c": 2}, {"c": True}, {"c": "a"}], query)
    other = category_column([{}], query)[0]
    assert column == ["1", other, "2", other, "a"]
    assert other not in query.labels


def test_numeric_value() -> None:
    assert numeric_value(3, 0.5) == 3.0
    assert numeric_value(2.5, 0.5) == 2.5
    assert numeric_value(False, 0.5) == 0.0
    assert numeric_value(-(10**400), 0.5) == -math.inf
    for junk in (None, "3", math.nan, [1], {"a": 1}, b"1"):
        assert numeric_value(junk, 0.5) == 0.5


def test_empty_dataset() -> None:
    # Answers exist (noise only) for an empty dataset: DP does not depend on n being > 0.
    assert isinstance(plan(CountQuery(epsilon=1)).run([]).value, int)
    assert isinstance(plan(MeanQuery(column="x", lower=0, upper=1, epsilon=1)).run([]).value,
                      float)
