"""scripts/bench_screening_hosts.py: a gallery split over hosts gives the plaintext's answer
(the union of the shares' matches) and the keys the write-up quotes."""

from __future__ import annotations

from script_module import load_script

bench = load_script("bench_screening_hosts")


def test_a_gallery_split_over_two_hosts_answers_like_one() -> None:
    one = bench.measure(3_000, hosts=1, reps=1, seed=4)
    two = bench.measure(3_000, hosts=2, reps=1, seed=4)
    assert one["correct"] is True and two["correct"] is True
    assert two["references_per_host"] == 1_500 and two["blocks_per_host"] == 1
    for key in ("critical_cpu_s_p50", "host_score_cpu_s_p50", "v_decide_cpu_s_p50"):
        assert two[key] > 0
