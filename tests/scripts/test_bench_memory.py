"""scripts/bench_memory.py: a tiny run against its own devnet and `mip serve` writes strict
JSON that names its run, sends both kinds of request (refused from the headers, decoded),
and scripts/figures.py renders it; the RSS reader and the renderer's goal line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_memory.py"

bench = load_script("bench_memory")
figures = load_script("figures")
bench_meta = load_script("bench_meta")


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_defaults_are_the_issues_burst() -> None:
    args = bench.build_parser().parse_args([])
    assert (args.requests, args.decoded_every, args.concurrency, args.rounds) == (100, 4, 4, 3)


def test_rss_of_a_process_and_its_children() -> None:
    own = bench.rss_bytes(os.getpid())
    assert own > 10 * 2**20
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(64 << 20); "
                              "b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"])
    try:
        for _ in range(100):  # until the child has touched its 64 MiB
            if bench.rss_bytes(os.getpid()) - own > 60 * 2**20:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert bench.rss_bytes(os.getpid()) - own > 60 * 2**20
    finally:
        child.kill()
        child.wait()
    assert bench.rss_bytes(2**22 + 12345) == 0  # no such process


def test_the_images_are_over_and_just_under_the_pixel_budget() -> None:
    from face_engine.image_io import header_pixels
    from gateway.api.models.image_budget import MAX_FRAMES, MAX_REQUEST_PIXELS

    assert bench.FRAMES == MAX_FRAMES
    over, under = bench.jpeg(bench.OVER, face=False), bench.jpeg(bench.UNDER, face=True)
    assert header_pixels(over) * MAX_FRAMES > MAX_REQUEST_PIXELS
    assert header_pixels(under) * MAX_FRAMES <= MAX_REQUEST_PIXELS


def test_tiny_run_writes_json_that_renders(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--requests", "4", "--decoded-every", "2",
             "--concurrency", "2", "--idle-s", "3", "--rounds", "1", "--json", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench_memory.py did not finish: {exc}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = _strict(done.stdout.strip().splitlines()[-1])
    assert _strict(out.read_text()) == summary
    assert bench_meta.missing_metadata(summary) == []
    assert summary["bench"] == "memory"
    (only,) = summary["per_round"]
    # Two refused from the headers (413 too_many_pixels), two decoded and refused by the
    # liveness check (the same frontal photo for every pose): 422.
    assert only["statuses"] == {"413": 2, "422": 2}, only
    assert 0 < only["before_mib"] <= only["peak_mib"]
    assert only["after_idle_mib"] > 0 and only["ratio"] == summary["ratio"]
    assert summary["overall_ratio"] == round(only["after_idle_mib"] / only["before_mib"], 3)
    text = "\n".join(figures.render_memory(["memory.json"], [summary]))
    assert "| `memory.json` | 4, 1 in 2, 2 |" in text
    assert f"**×{summary['ratio']:.2f}**" in text


def test_the_goal_line_says_met_or_not() -> None:
    report = {"requests": 100, "decoded_every": 4, "concurrency": 4, "before_mib": 450.0,
              "peak_mib": 570.0, "after_burst_mib": 560.0, "after_idle_mib": 470.0,
              "idle_s": 20.0, "ratio": 1.04, "max_ratio": 1.06, "goal_ratio": 1.25,
              "rounds": 3, "overall_ratio": 1.1}
    text = "\n".join(figures.render_memory(["m.json"], [report]))
    assert "| 450 | 570 | 560 | 470 (after 20 s) | **×1.04** |" in text
    assert "**met** (worst ×1.06; first before to last after idle ×1.10)" in text
    text = "\n".join(figures.render_memory(["m.json"], [{**report, "max_ratio": 1.3}]))
    assert "**not met** (worst ×1.30;" in text
