"""FPIR / FNIR, the FPIR threshold rule and the multi-frame template (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from face_engine.dedup import FaceLikeDistribution, mated_sample
from face_engine.dedup.identification import (
    best_scores,
    fnir,
    fpir,
    template,
    threshold_for_fpir,
)
from face_engine.verify import identification_threshold, operating_point


def test_rates_count_at_and_below_the_threshold() -> None:
    best = np.array([0.1, 0.5, 0.6, 0.7])
    assert fpir(best, 0.6) == 0.5  # a score equal to t is a candidate
    assert fnir(best, 0.6) == 0.5
    with pytest.raises(ValueError):
        fpir(np.array([]), 0.5)


def test_threshold_meets_the_target_and_is_the_lowest_that_does() -> None:
    rng = np.random.default_rng(3)
    best = rng.normal(0.5, 0.05, 1000)
    t = threshold_for_fpir(best, 0.01)
    assert fpir(best, t) <= 0.01
    assert fpir(best, t - 2e-6) > 0.01
    assert threshold_for_fpir(best, 0.0) > best.max()


def test_best_scores_over_batches_equal_the_whole_gallery() -> None:
    rng = np.random.default_rng(1)
    model = FaceLikeDistribution.parametric(128, rng)
    gallery, probes = model.sample(1000, rng), model.sample(20, rng)
    whole = (probes @ gallery.T).max(axis=1)
    batched = best_scores(probes, [gallery[:300], gallery[300:700], gallery[700:]])
    assert np.allclose(whole, batched, atol=1e-6)


def test_fpir_grows_with_the_gallery_at_a_fixed_threshold() -> None:
    rng = np.random.default_rng(2)
    model = FaceLikeDistribution.parametric(128, rng)
    probes = model.sample(200, rng)
    small = best_scores(probes, [model.sample(1000, rng)])
    large = np.maximum(small, best_scores(probes, [model.sample(20000, rng)]))
    t = threshold_for_fpir(small, 0.05)
    assert fpir(large, t) > fpir(small, t)


def test_template_is_the_normalised_mean_and_gains_on_noisy_frames() -> None:
    rng = np.random.default_rng(4)
    person = FaceLikeDistribution.parametric(128, rng).sample(1, rng)[0]
    frames = mated_sample(np.repeat(person[None], 3, axis=0), 0.7, rng)
    tpl = template(frames)
    assert abs(float(np.linalg.norm(tpl)) - 1.0) < 1e-6
    expected = frames.mean(axis=0) / np.linalg.norm(frames.mean(axis=0))
    assert np.allclose(tpl, expected, atol=1e-6)
    # three independent noisy views average closer to the person than any one of them
    assert float(tpl @ person) > max(float(f @ person) for f in frames)
    assert np.allclose(template(frames[:1]), frames[0], atol=1e-6)
    with pytest.raises(ValueError):
        template(np.zeros((2, 128)))


def test_identification_threshold_is_stored_apart_from_the_1to1_points() -> None:
    t = identification_threshold()
    # FPIR at 1M needs a far stricter threshold than the 1:1 FAR 1e-4 point
    assert operating_point("far_1e-4").threshold < t < 1.0
