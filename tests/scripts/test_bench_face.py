"""Smoke runs of scripts/bench_face.py and scripts/bench_face_accuracy.py on 12 LFW pairs
(two folds of 3 + 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[2]


def _small_pairs_dir(shared: Path, target: Path) -> Path:
    lines = (shared / "data/lfw-dev/pairs.txt").read_text().splitlines()
    folds, per_fold = (int(x) for x in lines[0].split())
    assert folds >= 2
    body = []
    for fold in range(2):
        start = 1 + fold * 2 * per_fold
        body += lines[start: start + 3]  # same-person pairs
        body += lines[start + per_fold: start + per_fold + 3]  # different-person pairs
    target.mkdir()
    (target / "pairs.txt").write_text("2 3\n" + "\n".join(body) + "\n")
    (target / "images").symlink_to(shared / "data/lfw-dev/images")
    return target


missing_metadata = load_script("bench_meta").missing_metadata


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_bench_json_smoke(shared_dir: Path, tmp_path: Path) -> None:
    pairs = _small_pairs_dir(shared_dir, tmp_path / "pairs")
    proc = _run("bench_face.py", "--pairs", str(pairs), "--json", "--dedup-sizes", "3000",
                "--frames", "3", "--cache-dir", str(tmp_path / "cache"))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["extraction"]["face_found"] == report["extraction"]["images"] > 10
    assert report["accuracy"] == "scripts/bench_face_accuracy.py"
    assert report["latency"]["full_verify"]["n"] >= 1
    assert report["latency"]["full_verify"]["p50_ms"] > 0
    dedup = report["dedup"]["sizes"]["3000"]
    assert dedup["planted_found"] == dedup["planted_duplicates"] > 0
    assert dedup["search"]["p50_ms"] > 0
    assert report["peak_rss_mib"] > 0
    unlink = report["unlinkability"]
    assert unlink["people"] > 5 and unlink["d_sys_raw_domain"] == 1.0
    assert unlink["d_sys_key_draws"]["draws"] == 10
    assert unlink["d_sys_key_draws"]["min"] <= unlink["d_sys"] <= unlink["d_sys_key_draws"]["max"]
    floor = unlink["d_sys_same_distribution"]
    assert floor["draws"] == 200 and 0.0 <= floor["p5"] <= floor["p95"] <= 1.0

    # one stage alone (the cache is warm now): only its figures
    proc = _run("bench_face.py", "--pairs", str(pairs), "--json", "--stages", "unlinkability",
                "--cache-dir", str(tmp_path / "cache"))
    alone = json.loads(proc.stdout.strip().splitlines()[-1])
    assert alone["stages"] == ["unlinkability"] and alone["extraction"]["from_cache"] is True
    assert "unlinkability" in alone and "latency" not in alone and "dedup" not in alone
    assert "operator" not in alone and "operator" not in report  # on request only
    proc = _run("bench_face.py", "--pairs", str(pairs), "--json", "--stages", "operator",
                "--operator-synthetic-people", "40", "--operator-key-draws", "1",
                "--cache-dir", str(tmp_path / "cache"))
    operator = json.loads(proc.stdout.strip().splitlines()[-1])["operator"]
    # 12 pairs hold too few people with two images: LFW is skipped, and says so
    assert set(operator["populations"]) == {"synthetic"} and "lfw" in operator["skipped"]
    for population in operator["populations"].values():
        assert population["levels"]["one_key_set"]["d_sys"] > 0.5
        assert set(population["levels"]["operator"]["scores"]) == {
            "commitment bit agreement", "B's commitment vs A's embedding signs"}
    assert "operator linkability, synthetic" in proc.stdout
    bad = subprocess.run([sys.executable, str(REPO / "scripts/bench_face.py"), "--pairs",
                          str(pairs), "--stages", "unlinkability,nope"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown ['nope']" in bad.stderr


def test_accuracy_bench_held_out_json_and_cache(shared_dir: Path, tmp_path: Path) -> None:
    pairs = _small_pairs_dir(shared_dir, tmp_path / "pairs")
    out = tmp_path / "face-accuracy.json"
    args = ("--pairs", str(pairs), "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    first = _run("bench_face_accuracy.py", *args)
    report = json.loads(out.read_text())
    assert report["bench"] == "face-accuracy"
    assert report["extraction"]["from_cache"] is False
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert report["dataset"]["people_shared_between_folds"] == {}
    folds = report["held_out"]["per_fold"]
    assert [r["test_fold"] for r in folds] == [1, 2]
    for row in folds:
        assert row["test_fold"] not in row["calibration_folds"]
        assert row["pipeline"] in ("flip_average", "single_crop")
        for point in ("far_1e-3", "far_1e-4"):
            assert row[point]["genuine_pairs"] == row[point]["impostor_pairs"] == 3
            assert 0.0 <= row[point]["tar"] <= 1.0
    pooled = report["held_out"]["pooled"]["far_1e-3"]
    assert pooled["genuine_pairs"] == 6
    for pipeline in ("flip_average", "single_crop"):
        assert 0.0 <= report["in_sample"][pipeline]["eer"] <= 1.0
        stored = report["stored_operating_points"][pipeline]
        assert stored["far_1e-3"]["stored_threshold"] > 0.0
    assert report["protected_max_abs_score_change"] < 1e-5
    # the standard run metadata (scripts/bench_meta.py), which scripts/figures.py requires
    assert "meta" not in report
    assert missing_metadata(report) == []
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu_model"]
    assert len(report["machine"]["commit"]) == 40
    assert isinstance(report["machine"]["dirty"], bool)
    assert len(report["loadavg_start"]) == 3 and report["date"].endswith("+00:00")
    assert report["command"].startswith("python scripts/bench_face_accuracy.py --pairs ")
    assert "HELD OUT" in first.stdout and "IN-SAMPLE" in first.stdout

    # the second run reads the cache and gives the same figures
    _run("bench_face_accuracy.py", *args)
    again = json.loads(out.read_text())
    assert again["extraction"]["from_cache"] is True
    assert again["held_out"] == report["held_out"]
    assert again["in_sample"] == report["in_sample"]


def test_embedding_cache_key_covers_the_images(tmp_path: Path) -> None:
    le = load_script("lfw_embeddings")
    (tmp_path / "A").mkdir()
    (tmp_path / "A/A_0001.jpg").write_bytes(b"one")
    (tmp_path / "A/A_0002.jpg").write_bytes(b"two")
    rels = ["A/A_0001.jpg", "A/A_0002.jpg"]
    key = le.cache_key(tmp_path, rels)
    assert le.cache_key(tmp_path, rels) == key
    assert le.cache_key(tmp_path, rels[:1]) != key
    (tmp_path / "A/A_0002.jpg").write_bytes(b"TWO")
    assert le.cache_key(tmp_path, rels) != key
