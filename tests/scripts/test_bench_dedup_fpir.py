"""Smoke run of scripts/bench_dedup.py on 12 LFW pairs: its last line is a JSON object with
`fpir` and `fnir` under a key named by each gallery size, at the stored threshold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from face_engine.verify import identification_threshold
from tests.scripts.test_bench_face import REPO, _small_pairs_dir


def test_bench_dedup_json_smoke(shared_dir: Path, tmp_path: Path) -> None:
    pairs = _small_pairs_dir(shared_dir, tmp_path / "pairs")
    calibration = (REPO / "face_engine/calibration.json").read_bytes()
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench_dedup.py"), "--pairs", str(pairs),
         "--json", "--sizes", "1000,3000", "--probes", "200", "--frames", "2",
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # below 1M the stored threshold is reported, and the calibration is left alone
    assert report["identification"]["threshold"] == identification_threshold()
    assert (REPO / "face_engine/calibration.json").read_bytes() == calibration
    for size in ("1000", "3000"):
        row = report[size]
        assert 0.0 <= row["fpir"] <= 1.0 and 0.0 <= row["fnir"] <= 1.0
        assert row["fpir"] == max(row["fpir_synthetic"], row["fpir_lfw_real_probes"])
    # a larger gallery cannot have fewer false candidates at one threshold
    assert report["3000"]["fpir_at_far_1e-4_threshold"] >= \
        report["1000"]["fpir_at_far_1e-4_threshold"]
