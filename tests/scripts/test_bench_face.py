"""Smoke run of scripts/bench_face.py on 12 LFW pairs (two folds of 3 + 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_bench_json_smoke(shared_dir: Path, tmp_path: Path) -> None:
    pairs = _small_pairs_dir(shared_dir, tmp_path / "pairs")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench_face.py"), "--pairs", str(pairs), "--json",
         "--dedup-sizes", "3000", "--frames", "3"],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["genuine_pairs"] == 6 and report["impostor_pairs"] == 6
    for label in ("raw", "protected"):
        block = report[label]
        assert 0.0 <= block["eer"] <= 1.0 and 0.5 <= block["best_accuracy"] <= 1.0
        assert 0.0 <= block["far_1e-3"]["tar"] <= 1.0
        assert len(block["cross_validation"]["per_fold"]) == 2
    assert report["protected_max_abs_score_change"] < 1e-5
    assert report["latency"]["full_verify"]["n"] >= 1
    assert report["latency"]["full_verify"]["p50_ms"] > 0
    dedup = report["dedup"]["sizes"]["3000"]
    assert dedup["planted_found"] == dedup["planted_duplicates"] > 0
    assert dedup["search"]["p50_ms"] > 0
    assert report["peak_rss_mib"] > 0
