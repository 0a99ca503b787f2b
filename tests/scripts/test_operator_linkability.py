"""The operator-linkability measurement (scripts/operator_linkability.py, bench_face.py
--stages operator): one org's operator, holding exactly its own keys, cannot link; the same
measurement links when both institutions' references are under one key set."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from face_engine.dedup import FaceLikeDistribution, mated_sample
from tests.script_module import load_script

ol = load_script("operator_linkability")


def _population(people: int, seed: int = 7) -> Any:
    """Face-like first captures and second captures at a genuine-like cosine of 0.6."""
    rng = np.random.default_rng(seed)
    first = ol.unit_rows(FaceLikeDistribution.parametric(128, rng).sample(people, rng))
    return ol.Population("test", first, ol.unit_rows(mated_sample(first, 0.6, rng)))


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    result: dict[str, Any] = ol.measure_population(
        _population(150), key_draws=1, non_mated_rolls=5, null_draws=20,
        rng=np.random.default_rng(3))
    return result


def test_the_measurement_links_under_one_key_set(measured: dict[str, Any]) -> None:
    shared = measured["levels"]["one_key_set"]
    # the operator's own keys open B's references: embeddings, compared by cosine
    assert shared["best_score"] == "cosine of embeddings"
    assert shared["d_sys"] > 0.9 and not shared["within_floor"]
    assert shared["d_sys_same_capture"] > 0.99
    # a design with one rotation per institution links through the invariant profile
    assert measured["levels"]["shared_rotation_contrast"]["d_sys"] > 0.3


def test_one_operator_with_its_own_keys_does_not_link(measured: dict[str, Any]) -> None:
    assert measured["recovered_embedding_max_error"] < 1e-5  # it opens its own completely
    operator = measured["levels"]["operator"]
    assert set(operator["scores"]) == {"commitment bit agreement",
                                       "B's commitment vs A's embedding signs"}
    # 134 mated pairs in 6 bins: noise alone gives about 0.05-0.15
    assert operator["d_sys"] < 0.25
    for level in ("plus_b_database", "plus_b_database_and_kek"):
        assert measured["levels"][level]["d_sys"] < 0.25, level
    assert "cosine" in measured["levels"]["plus_b_database_and_kek"]["scores"]


def test_each_level_holds_what_it_says() -> None:
    people = _population(8)
    a = ol.OrgStore.enrol(people.at_a, ol.A_INSTITUTION, "t-a")
    b = ol.OrgStore.enrol(people.at_b, ol.B_INSTITUTION, "t-b")
    operator, rows, kek = ol.levels_of(a, b)
    assert (operator.b_rows, operator.keks, operator.transform_keys) == \
        (False, (a.kek,), (a.transform_key,))
    assert rows.b_rows and rows.keks == (a.kek,)
    assert kek.keks == (a.kek, b.kek) and kek.transform_keys == (a.transform_key,)
    assert b.kek not in operator.keks and b.transform_key not in kek.transform_keys
    # the commitments the attacker scores are the ones the ledger would hold
    assert [r.commitment for r in b.references] == [
        bytes(np.packbits(row)).hex() for row in ol.commitment_bits(b.references)]


def test_too_few_people_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 people"):
        ol.measure_population(_population(4), 1, 2, 2, np.random.default_rng(1))
