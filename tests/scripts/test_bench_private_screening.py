"""scripts/bench_private_screening.py: a tiny run has the per-N keys the issue asks for
(screen_s_p50, peak_rss_mib), its answers equal the plaintext's, and scripts/figures.py
renders it."""

from __future__ import annotations

from script_module import load_script

bench = load_script("bench_private_screening")
figures = load_script("figures")


def test_a_tiny_run_has_the_keys_and_renders() -> None:
    result = bench.measure(1_000, reps=1, seed=3)
    assert result["screen_s_p50"] > 0 and result["peak_rss_mib"] > 0
    assert result["all_answers_equal_plaintext"] is True
    assert result["blocks_per_gallery"] == 1
    report = {"1000": result, "note": "test"}
    merged: dict = {"1000": {"fpir": 0.001}}
    bench.merge_into(merged, {"1000": result})
    assert merged["1000"]["fpir"] == 0.001 and "screen_s_p50" in merged["1000"]
    meta = bench.RunMeta("private_screening", ["python", "x"])
    lines = figures.render_private_screening(["x.json"], [meta.report(report)])
    assert any("1,000" in line and "yes (1 runs)" in line for line in lines)
    # the work made ahead of the query, Q's and G's, is reported apart
    ahead = f"| {result['query_zeros_s']:.2f} / {result['rerandomise_s']:.2f} |"
    assert any(ahead in line for line in lines)
    assert any("not measured here" in line for line in lines)
