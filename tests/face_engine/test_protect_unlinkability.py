"""Unlinkability on synthetic faces: two institutions' references of the same person
score like references of different people (ISO/IEC 24745), measured with D_sys."""

from __future__ import annotations

import numpy as np
from scipy import stats

from face_engine.dedup.synthetic import FaceLikeDistribution
from face_engine.protect import TemplateProtector, linkability_dsys


def test_cross_institution_same_person_scores_like_impostors() -> None:
    rng = np.random.default_rng(3)
    faces = FaceLikeDistribution.parametric(128, rng).sample(400, rng)
    # fixed keys: the statistical assertions below then have one fixed outcome, no flakes
    protector = TemplateProtector(bytes(range(32)), bytes(range(100, 132)))
    hospital = np.array([protector.decrypt_transformed(protector.enrol(f, f"h{i}", "HospitalMSP"))
                         for i, f in enumerate(faces)])
    school = np.array([protector.decrypt_transformed(protector.enrol(f, f"h{i}", "SchoolMSP"))
                       for i, f in enumerate(faces)])
    mated = np.sum(hospital * school, axis=1)  # same person, two institutions
    non_mated = np.sum(hospital * np.roll(school, 1, axis=0), axis=1)
    # in the raw domain the same pairs are trivially linkable (cosine 1 vs ~0.09)
    raw_non_mated = np.sum(faces * np.roll(faces, 1, axis=0), axis=1)
    assert raw_non_mated.mean() > 0.05
    assert abs(mated.mean()) < 0.02 and abs(non_mated.mean()) < 0.02
    assert stats.ks_2samp(mated, non_mated).pvalue > 0.01
    assert linkability_dsys(mated, non_mated, bins=20) < 0.2
    # a linkable system is detected by the same measure
    assert linkability_dsys(np.ones(400) * 0.99 - rng.random(400) * 0.01, non_mated,
                            bins=20) > 0.95
