"""scripts/lfw_eval.py: thresholds, rates, EER and the held-out protocol on scores with known
answers, and pairs reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.script_module import load_script

ev = load_script("lfw_eval")


# --- thresholds and rates ----------------------------------------------------------------
def test_threshold_for_far_known_answer() -> None:
    impostor = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    t = ev.threshold_for_far(impostor, 1e-2)
    # 10 of 1000 may be accepted: 0.990 .. 0.999; 0.989 is the highest one rejected
    assert 0.989 < t <= 0.990
    assert t == pytest.approx(0.989001)
    assert np.count_nonzero(impostor >= t) == 10


def test_threshold_for_far_is_the_lowest_meeting_the_target() -> None:
    rng = np.random.default_rng(7)
    impostor = rng.normal(0.09, 0.09, 200_000)
    for target in (1e-3, 1e-4):
        t = ev.threshold_for_far(impostor, target)
        assert np.mean(impostor >= t) <= target
        # one rounding step lower would accept more than the target allows
        assert np.mean(impostor >= t - 10.0 ** -ev.THRESHOLD_DECIMALS) > target
        assert round(t, ev.THRESHOLD_DECIMALS) == t


def test_threshold_for_far_ties_and_small_sets() -> None:
    # 1000 equal scores, 1 may be accepted: a threshold cannot take one of a tie, so none
    assert np.count_nonzero(np.full(1000, 0.5) >= ev.threshold_for_far(np.full(1000, 0.5),
                                                                       1e-3)) == 0
    # fewer than 1 / target impostors: above the highest one
    few = np.array([0.1, 0.3, 0.2])
    assert ev.threshold_for_far(few, 1e-3) > 0.3
    with pytest.raises(ValueError):
        ev.threshold_for_far(np.zeros(0), 1e-3)


def test_round_up_never_rounds_down() -> None:
    for value in (0.3625049, 0.1234561, 0.5, -0.2000004, 0.41788899999):
        r = ev.round_up(value)
        assert r >= value and r - value < 1e-6 and round(r, 6) == r


def test_rates_counts() -> None:
    r = ev.rates(np.array([0.2, 0.5, 0.9]), np.array([0.1, 0.6]), 0.5)
    assert (r.genuine_accepted, r.impostor_accepted) == (2, 1)
    assert r.tar == pytest.approx(2 / 3) and r.far == 0.5 and r.accuracy == pytest.approx(3 / 5)


GENUINE = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
IMPOSTOR = np.array([0.1, 0.2, 0.3, 0.4, 0.55])


def test_eer_known_answer() -> None:
    # at t = 0.55 one genuine (0.5) is rejected and one impostor (0.55) accepted: 1/5 each
    assert ev.eer(GENUINE, IMPOSTOR) == pytest.approx(0.2)
    assert ev.eer(GENUINE, IMPOSTOR - 0.5) == 0.0  # separated


def test_best_accuracy_known_answer() -> None:
    acc, t = ev.best_accuracy(GENUINE, IMPOSTOR)
    assert acc == pytest.approx(0.9)
    assert t == pytest.approx(0.6)  # the highest threshold reaching 9/10


# --- pairs -------------------------------------------------------------------------------
def _write_pairs(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_pairs(tmp_path: Path) -> None:
    folds = ev.read_pairs(_write_pairs(tmp_path / "pairs.txt", "2\t1\nAl\t1\t3\nBo\t2\tCy\t1\n"
                                       "Di\t1\t2\nEd\t4\tFa\t10\n"))
    assert folds[0].genuine == (("Al/Al_0001.jpg", "Al/Al_0003.jpg"),)
    assert folds[1].impostor == (("Ed/Ed_0004.jpg", "Fa/Fa_0010.jpg"),)
    assert folds[0].identities == {"Al", "Bo", "Cy"}
    assert ev.shared_identities(folds) == {}


@pytest.mark.parametrize("text", [
    "2 1\nAl 1 3\nBo 2 Cy 1\n",  # too few lines
    "1 1\nBo 2 Cy 1\nAl 1 3\n",  # impostor line where a genuine one belongs
    "1 1\nAl 1 3\nAl 2 Al 1\n",  # an impostor pair of one person
    "1 1\nAl x 3\nBo 2 Cy 1\n",  # non-numeric index
    "one 1\n",
])
def test_read_pairs_refuses_malformed(tmp_path: Path, text: str) -> None:
    with pytest.raises(ev.PairsFileError):
        ev.read_pairs(_write_pairs(tmp_path / "pairs.txt", text))


def test_shared_identities_reports_overlap(tmp_path: Path) -> None:
    folds = ev.read_pairs(_write_pairs(tmp_path / "pairs.txt", "2 1\nAl 1 3\nBo 2 Cy 1\n"
                                       "Di 1 2\nEd 4 Al 10\n"))
    assert ev.shared_identities(folds) == {(1, 2): {"Al"}}


def test_lfw_dev_folds_hold_disjoint_people(shared_dir: Path) -> None:
    folds = ev.read_pairs(shared_dir / "data/lfw-dev/pairs.txt")
    assert len(folds) == 3 and all(len(f.genuine) == len(f.impostor) == 300 for f in folds)
    assert ev.shared_identities(folds) == {}
    assert not set.intersection(*(set(f.images) for f in folds))
    assert sum(len(f.images) for f in folds) == 2320


# --- held-out protocol -------------------------------------------------------------------
def test_leave_one_fold_out_tests_each_fold_once() -> None:
    splits = ev.leave_one_fold_out(3)
    assert [test for _, test in splits] == [0, 1, 2]
    for calib, test in splits:
        assert test not in calib and sorted([*calib, test]) == [0, 1, 2]
    with pytest.raises(ValueError):
        ev.leave_one_fold_out(1)


def _synthetic(seed: int, noise: float, people: int = 12, per_person: int = 4,
               folds: int = 3) -> tuple[list[Any], Any]:
    """Folds of distinct synthetic people, 4 images each, embeddings around a centre per
    person; each fold's pairs: every same-person pair of its first 2 images per person and
    as many different-person pairs."""
    rng = np.random.default_rng(seed)
    rels, vecs, out = [], [], []
    for f in range(folds):
        names = [f"P{f}x{p}" for p in range(people)]
        for name in names:
            centre = rng.normal(size=32)
            for k in range(1, per_person + 1):
                rels.append(f"{name}/{name}_{k:04d}.jpg")
                vecs.append(centre + rng.normal(scale=noise, size=32))
        genuine = tuple((f"{n}/{n}_0001.jpg", f"{n}/{n}_0002.jpg") for n in names)
        impostor = tuple((f"{a}/{a}_0003.jpg", f"{b}/{b}_0004.jpg")
                         for a, b in zip(names, names[1:] + names[:1], strict=True))
        out.append(ev.Fold(genuine, impostor))
    v = np.array(vecs)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return out, ev.Embeddings(rels, v, np.ones(len(rels), dtype=bool))


def _different_person_scores(emb: ev.Embeddings, rels: set[str]) -> np.ndarray:
    """Independent of Embeddings.all_pairs: plain loops over pairs of images."""
    ordered = sorted(rels)
    return np.array([float(emb.vectors[emb.index[a]] @ emb.vectors[emb.index[b]])
                     for k, a in enumerate(ordered) for b in ordered[k + 1:]
                     if ev.identity(a) != ev.identity(b)])


def test_held_out_thresholds_come_from_the_other_folds_only() -> None:
    folds, emb = _synthetic(seed=3, noise=0.9)
    result = ev.held_out(folds, {"only": emb})
    for row in result["per_fold"]:
        calib = set().union(*(folds[k - 1].images for k in row["calibration_folds"]))
        assert not calib & folds[row["test_fold"] - 1].images
        for point, target in ev.FAR_TARGETS.items():
            expected = ev.threshold_for_far(_different_person_scores(emb, calib), target)
            assert row[point]["threshold"] == expected
            assert row[point]["genuine_pairs"] == 12
    pooled = result["pooled"]["far_1e-3"]
    assert pooled["genuine_pairs"] == 36 and pooled["impostor_pairs"] == 36
    assert pooled["tar"] == pytest.approx(np.mean([r["far_1e-3"]["tar"]
                                                   for r in result["per_fold"]]))


def test_held_out_fold_cannot_influence_its_own_choices() -> None:
    """Pull fold 3's images of different people together (its impostors score high): fold 3's
    thresholds and pipeline choice must not move; the other folds' (calibrated on it) do."""
    folds, emb = _synthetic(seed=5, noise=0.9)
    before = ev.held_out(folds, {"a": emb, "b": emb})
    shifted = emb.vectors.copy()
    rows = [emb.index[r] for r in folds[2].images]
    shifted[rows] = shifted[rows] + 3.0 * np.ones(shifted.shape[1]) / np.sqrt(shifted.shape[1])
    shifted /= np.linalg.norm(shifted, axis=1, keepdims=True)
    moved = ev.Embeddings(emb.rels, shifted, emb.found)
    after = ev.held_out(folds, {"a": moved, "b": moved})
    for point in ev.FAR_TARGETS:
        assert after["per_fold"][2][point]["threshold"] == before["per_fold"][2][point]["threshold"]
        assert after["per_fold"][0][point]["threshold"] > before["per_fold"][0][point]["threshold"]
    assert after["per_fold"][2]["lfw_accuracy"]["threshold_from_calibration_pairs"] == \
        before["per_fold"][2]["lfw_accuracy"]["threshold_from_calibration_pairs"]
    # and its own impostors, now similar, are accepted more often than before
    assert after["per_fold"][2]["far_1e-3"]["far_different_person_pairs"] > \
        before["per_fold"][2]["far_1e-3"]["far_different_person_pairs"]


def test_pipeline_chosen_on_calibration_folds() -> None:
    folds, clean = _synthetic(seed=11, noise=0.6)
    _, noisy = _synthetic(seed=11, noise=1.6)
    # "mixed" is clean on fold 3 and noisy elsewhere: chosen only where fold 3 calibrates
    rows = [clean.index[r] for r in folds[2].images]
    mixed_vecs = noisy.vectors.copy()
    mixed_vecs[rows] = clean.vectors[rows]
    mixed = ev.Embeddings(clean.rels, mixed_vecs, clean.found)
    name, table = ev.choose_pipeline({"noisy": noisy, "clean": clean},
                                     folds[0].images | folds[1].images)
    assert name == "clean" and table["clean"]["far_1e-3"] > table["noisy"]["far_1e-3"]
    # ties go to the first candidate
    assert ev.choose_pipeline({"x": clean, "y": clean}, folds[0].images)[0] == "x"
    result = ev.held_out(folds, {"mixed": mixed, "clean": clean})
    assert [r["pipeline"] for r in result["per_fold"]] == ["clean", "clean", "clean"]


def test_no_face_pairs_count_as_rejected() -> None:
    folds, emb = _synthetic(seed=2, noise=0.3, folds=2)
    found = emb.found.copy()
    found[emb.index[folds[1].genuine[0][0]]] = False
    emb2 = ev.Embeddings(emb.rels, emb.vectors, found)
    scores = emb2.scores(folds[1].genuine)
    assert scores[0] == ev.NO_FACE_SCORE and scores.size == 12
    row = ev.held_out(folds, {"p": emb2})["per_fold"][1]
    assert row["far_1e-3"]["genuine_pairs"] == 12
    assert row["far_1e-3"]["genuine_accepted"] <= 11


def test_in_sample_reads_thresholds_off_all_pairs() -> None:
    folds, emb = _synthetic(seed=4, noise=0.9)
    block = ev.in_sample(folds, emb)
    everything = set().union(*(f.images for f in folds))
    assert block["far_1e-3"]["threshold"] == ev.threshold_for_far(
        _different_person_scores(emb, everything), 1e-3)
    # 36 people x 4 images: every pair of the 144 images but the 36 x 6 same-person ones
    assert block["different_person_pairs"] == 144 * 143 // 2 - 36 * 6
    assert block["same_person_pairs"] == 36 * 6
    g = np.concatenate([emb.scores(f.genuine) for f in folds])
    i = np.concatenate([emb.scores(f.impostor) for f in folds])
    assert block["best_accuracy"] == ev.best_accuracy(g, i)[0]


# --- the committed figures and the stored points ----------------------------------------
REPO = Path(__file__).resolve().parents[2]


def test_committed_figures_match_the_stored_operating_points() -> None:
    """docs/figures/face-accuracy.json was measured against the stored points of this tree:
    recalibrating without rerunning the bench (or the reverse) fails here."""
    import json

    figures = json.loads((REPO / "docs/figures/face-accuracy.json").read_text())
    for pipeline, name in (("flip_average", "calibration.json"),
                           ("single_crop", "calibration_single_crop.json")):
        stored = json.loads((REPO / "face_engine" / name).read_text())["operating_points"]
        row = figures["stored_operating_points"][pipeline]
        for point in ev.FAR_TARGETS:
            assert row[point]["stored_threshold"] == stored[point]["threshold"]
            assert row[point]["recomputed_threshold"] == stored[point]["threshold"]
    held = figures["held_out"]
    assert figures["dataset"]["people_shared_between_folds"] == {}
    assert [r["test_fold"] for r in held["per_fold"]] == [1, 2, 3]
    for point in ev.FAR_TARGETS:
        assert held["pooled"][point]["genuine_accepted"] == sum(
            r[point]["genuine_accepted"] for r in held["per_fold"])
    assert load_script("bench_meta").missing_metadata(figures) == []
    assert figures["bench"] == "face-accuracy"
