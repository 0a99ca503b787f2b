"""OpenDP measurements for the query specs, calibrated to the requested epsilon.

Neighbouring datasets differ by one ACCOUNT added or removed: every account contributes at
most one record (the service deduplicates by account pseudonym first), so the input metric is
OpenDP's `SymmetricDistance` at d_in = 1. The unit of privacy is one account, not one person:
accounts are unlinkable by design (chaincode/mip/accounts.py), so nothing can tell that two
accounts are one holder's, and a holder may open several, even at one institution. A holder
with k accounts among a dataset's consenting records is protected at k x epsilon per release
(group privacy; `Plan.loss_for_accounts(k)` gives OpenDP's own figure).

Each plan's noise scale is found by `dp.binary_search_param` so that the measurement's own
privacy map at d_in = 1 stays within the epsilon; `plan()` re-checks
`measurement.map(1) <= epsilon` and refuses otherwise.

- count: `make_count`, discrete Laplace (integer output);
- sum: `make_clamp` -> `make_sum`, Laplace (OpenDP's float-safe version);
- mean: an adaptive composition of a noisy count (discrete Laplace), then `make_clamp` ->
  `make_resize(noisy count)` -> `make_mean` (Laplace);
- histogram: `make_count_by_categories` with an `other` bucket, discrete Laplace per bucket.

The mean needs a public size for `make_resize`; it comes from a noisy count released inside an
OpenDP adaptive-composition queryable whose total privacy map is the query's epsilon, so
OpenDP itself refuses a third query or one over its share. The count takes
`MEAN_COUNT_SHARE` of the epsilon: the mean's error is about (U - L) / n * (1/(2 eps_count) +
1/eps_mean) (padding or truncation bias plus Laplace noise), smallest near a count share of
1 / (1 + sqrt 2) = 0.41.

Turning records into OpenDP's input vectors is a per-record map (one record in, one value
out), so it keeps d_in = 1. Values that are not numbers (missing, text, NaN) become the
spec's `impute` value for sum and mean, and fall into the `other` bucket of a histogram;
infinities are clamped like any other out-of-bounds value. Nothing is refused because of a
value, since a refusal would itself tell something about one record.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp

from gateway.analytics.errors import CalibrationError, DpParametersOutOfRange
from gateway.analytics.queries import (
    CountQuery,
    HistogramQuery,
    MeanQuery,
    Query,
    SumQuery,
    category_label,
)

dp.enable_features("contrib")

MEAN_COUNT_SHARE = 0.4
# Accuracy is reported as the half-width of the 95% interval of the noise.
ACCURACY_ALPHA = 0.05
DISCRETE_LAPLACE = "discrete_laplace"
LAPLACE = "laplace"
_D_IN = 1  # one account added or removed

Record = Mapping[str, Any]


@dataclass(frozen=True)
class NoiseInfo:
    """One noise-adding step of a release."""

    part: str  # "count", "sum", "mean", "histogram"
    mechanism: str  # DISCRETE_LAPLACE or LAPLACE
    epsilon: float  # the step's privacy map at d_in = 1
    scale: float
    accuracy_95: float  # |noise| stays below this with 95% probability (per bucket)


@dataclass(frozen=True)
class DpAnswer:
    """The differentially private result of one query."""

    kind: str
    value: float | int | None  # count, sum, mean
    counts: dict[str, int] | None  # histogram: bucket label -> noisy count
    other: int | None  # histogram: noisy count of values in no bucket
    noise: tuple[NoiseInfo, ...]

    @property
    def mechanism(self) -> str:
        return "+".join(dict.fromkeys(n.mechanism for n in self.noise))


def _accuracy(mechanism: str, scale: float) -> float:
    if mechanism == DISCRETE_LAPLACE:
        return float(dp.discrete_laplacian_scale_to_accuracy(scale, ACCURACY_ALPHA))
    return float(dp.laplacian_scale_to_accuracy(scale, ACCURACY_ALPHA))


def _calibrate(
    chain: Callable[[float], dp.Measurement], epsilon: float, what: str
) -> tuple[dp.Measurement, float]:
    """The measurement with the smallest noise scale whose map(1) is within `epsilon`.

    OpenDP refusing to build or search one means the query's parameters are beyond what it
    can represent (the scale the bounds and epsilon need overflows): the client's to change,
    so a typed 422 and not a server failure. OpenDP's text is not passed on (it is long)."""
    try:
        scale = float(dp.binary_search_param(chain, d_in=_D_IN, d_out=epsilon))
        measurement = chain(scale)
        loss = float(measurement.map(_D_IN))
    except (dp.OpenDPException, ValueError, TypeError, ArithmeticError) as exc:
        raise DpParametersOutOfRange(
            f"{what}: no noise scale for these bounds at this epsilon; narrow the bounds or "
            "raise the epsilon") from exc
    if not loss <= epsilon:
        raise CalibrationError(f"{what}: privacy loss {loss} above epsilon {epsilon}")
    return measurement, scale


# --- records -> OpenDP input vectors (one value per record) --------------------------------


def numeric_value(value: Any, impute: float) -> float:
    """A record's value as a float; bools count 0/1; anything not a number becomes `impute`."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: clamping takes it to a bound
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float) and not math.isnan(value):
        return value
    return impute


def numeric_column(records: Sequence[Record], column: str, impute: float) -> list[float]:
    return [numeric_value(record.get(column), impute) for record in records]


def _other_sentinel(labels: Sequence[str]) -> str:
    # A string no bucket has (longer than every label), for values in no bucket: OpenDP's
    # null category then counts them.
    return "\x00" * (max(len(label) for label in labels) + 1)


def category_column(records: Sequence[Record], query: HistogramQuery) -> list[str]:
    """Each record's bucket label (or a sentinel that lands in `other`)."""
    labels = query.labels
    other = _other_sentinel(labels)
    if query.categories is not None:
        # Match on type as well as value: the category 1 is not the text "1".
        lookup = {(type(c), c): category_label(c) for c in query.categories}
        out = []
        for record in records:
            value = record.get(query.column)
            key = (type(value), value) if isinstance(value, str | int) and not isinstance(
                value, bool) else None
            out.append(lookup.get(key, other) if key is not None else other)
        return out
    assert query.bin_edges is not None
    edges = query.bin_edges
    out = []
    for record in records:
        value = numeric_value(record.get(query.column), math.nan)
        # bisect_right: the number of edges <= value, i.e. the bin index; NaN has no bin.
        out.append(other if math.isnan(value) else labels[bisect_right(edges, value)])
    return out


# --- plans ----------------------------------------------------------------------------------


_FLOATS = dp.vector_domain(dp.atom_domain(T=float, nan=False))
_TEXTS = dp.vector_domain(dp.atom_domain(T=str))
_HOLDERS = dp.vector_domain(dp.atom_domain(T=bool))


class Plan:
    """A calibrated measurement for one query, built and checked before any budget is spent."""

    def __init__(self, query: Query, measurement: dp.Measurement,
                 run: Callable[[Sequence[Record]], DpAnswer]) -> None:
        self.query = query
        self.measurement = measurement
        self._run = run
        self.privacy_loss = float(measurement.map(_D_IN))
        if not self.privacy_loss <= query.epsilon:
            raise CalibrationError(
                f"privacy loss {self.privacy_loss} above epsilon {query.epsilon}")

    def run(self, records: Sequence[Record]) -> DpAnswer:
        """Release the answer on `records` (one per account). Call only after the debit."""
        return self._run(records)

    def loss_for_accounts(self, accounts: int) -> float:
        """The privacy loss of this release for a holder with `accounts` accounts among the
        records (each is one record after deduplication): the measurement's own privacy map at
        d_in = accounts. The mean's adaptive composition is defined only at the d_in it was
        built for (1); it is pure epsilon-DP, so group privacy bounds it by
        accounts x its loss."""
        if isinstance(accounts, bool) or not isinstance(accounts, int) or accounts < 1:
            raise ValueError("accounts must be a positive integer")
        try:
            return float(self.measurement.map(accounts))
        except dp.OpenDPException:
            return accounts * self.privacy_loss


def plan(query: Query) -> Plan:
    """The calibrated, checked measurement for `query`."""
    if isinstance(query, CountQuery):
        return _plan_count(query)
    if isinstance(query, SumQuery):
        return _plan_sum(query)
    if isinstance(query, MeanQuery):
        return _plan_mean(query)
    return _plan_histogram(query)


def _plan_count(query: CountQuery) -> Plan:
    count = dp.t.make_count(_HOLDERS, dp.symmetric_distance())
    measurement, scale = _calibrate(lambda s: count >> dp.m.then_laplace(s), query.epsilon,
                                    "count")
    info = NoiseInfo("count", DISCRETE_LAPLACE, float(measurement.map(_D_IN)), scale,
                     _accuracy(DISCRETE_LAPLACE, scale))

    def run(records: Sequence[Record]) -> DpAnswer:
        value = int(measurement([True] * len(records)))
        return DpAnswer("count", value, None, None, (info,))

    return Plan(query, measurement, run)


def _plan_sum(query: SumQuery) -> Plan:
    clamped_sum = dp.t.make_clamp(_FLOATS, dp.symmetric_distance(), (query.lower, query.upper)
                                  ) >> dp.t.then_sum()
    measurement, scale = _calibrate(lambda s: clamped_sum >> dp.m.then_laplace(s),
                                    query.epsilon, "sum")
    info = NoiseInfo("sum", LAPLACE, float(measurement.map(_D_IN)), scale,
                     _accuracy(LAPLACE, scale))

    def run(records: Sequence[Record]) -> DpAnswer:
        values = numeric_column(records, query.column, query.impute_value)
        return DpAnswer("sum", float(measurement(values)), None, None, (info,))

    return Plan(query, measurement, run)


def _plan_mean(query: MeanQuery) -> Plan:
    eps_count = query.epsilon * MEAN_COUNT_SHARE
    eps_mean = query.epsilon - eps_count
    metric = dp.symmetric_distance()
    try:
        while True:
            composition = dp.c.make_adaptive_composition(
                _FLOATS, metric, dp.max_divergence(), d_in=_D_IN, d_mids=[eps_count, eps_mean])
            # OpenDP adds the shares rounding up, so eps_count + (eps - eps_count) can come
            # out one ulp above eps: shave the mean's share until the total fits.
            if float(composition.map(_D_IN)) <= query.epsilon:
                break
            eps_mean = math.nextafter(eps_mean, 0.0)
    except dp.OpenDPException as exc:
        raise DpParametersOutOfRange("mean: OpenDP refused the composition at this epsilon"
                                     ) from exc
    count = dp.t.make_count(_FLOATS, metric)
    count_m, count_scale = _calibrate(lambda s: count >> dp.m.then_laplace(s), eps_count,
                                      "mean (count part)")
    count_info = NoiseInfo("count", DISCRETE_LAPLACE, float(count_m.map(_D_IN)), count_scale,
                           _accuracy(DISCRETE_LAPLACE, count_scale))
    clamp = dp.t.make_clamp(_FLOATS, metric, (query.lower, query.upper))

    def chain_for(size: int) -> Callable[[float], dp.Measurement]:
        def chain(scale: float) -> dp.Measurement:
            # make_resize pads with `impute` or drops records at random to reach `size`.
            return (clamp >> dp.t.then_resize(size=size, constant=query.impute_value)
                    >> dp.t.then_mean() >> dp.m.then_laplace(scale))
        return chain

    # The mean's own calibration waits for the noisy count, i.e. until after the debit: check
    # now, at size 1 (the largest sensitivity, (upper - lower) / 1), that it will succeed for
    # any count, so parameters OpenDP cannot handle are refused before the budget is spent.
    _calibrate(chain_for(1), eps_mean, "mean")

    def run(records: Sequence[Record]) -> DpAnswer:
        values = numeric_column(records, query.column, query.impute_value)
        queryable = composition(values)
        noisy_n = max(1, int(queryable(count_m)))
        mean_m, mean_scale = _calibrate(chain_for(noisy_n), eps_mean, "mean")
        value = float(queryable(mean_m))
        mean_info = NoiseInfo("mean", LAPLACE, float(mean_m.map(_D_IN)), mean_scale,
                              _accuracy(LAPLACE, mean_scale))
        return DpAnswer("mean", value, None, None, (count_info, mean_info))

    return Plan(query, composition, run)


def _plan_histogram(query: HistogramQuery) -> Plan:
    labels = list(query.labels)
    counts = dp.t.make_count_by_categories(_TEXTS, dp.symmetric_distance(), categories=labels,
                                           null_category=True)
    measurement, scale = _calibrate(lambda s: counts >> dp.m.then_laplace(s), query.epsilon,
                                    "histogram")
    info = NoiseInfo("histogram", DISCRETE_LAPLACE, float(measurement.map(_D_IN)), scale,
                     _accuracy(DISCRETE_LAPLACE, scale))

    def run(records: Sequence[Record]) -> DpAnswer:
        noisy = [int(c) for c in measurement(category_column(records, query))]
        # OpenDP puts the null category (values in no bucket) last.
        return DpAnswer("histogram", None, dict(zip(labels, noisy[:-1], strict=True)),
                        noisy[-1], (info,))

    return Plan(query, measurement, run)
