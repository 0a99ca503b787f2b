"""scripts/bench_pickup_cpu.py: the CPU readings it is built on (/proc, per process tree and
per thread kind) and which pickup request a call is."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from script_module import load_script

bench = load_script("bench_pickup_cpu")


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_seconds_counts_the_process_and_its_children() -> None:
    before = bench.cpu_seconds(os.getpid())
    _burn(0.2)
    assert bench.cpu_seconds(os.getpid()) - before >= 0.15
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend=time.thread_time()+0.3\n"
                              "while time.thread_time()<end: pass\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while bench.cpu_seconds(os.getpid()) - before < 0.45:  # ours 0.2 + the child's 0.3
            assert time.monotonic() < deadline, "the child's CPU was never counted"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()


def test_thread_seconds_counts_the_main_thread() -> None:
    before = bench.thread_seconds(os.getpid())
    _burn(0.1)
    after = bench.thread_seconds(os.getpid())
    assert set(after) == {"main", "niced", "other"}
    assert after["main"] - before["main"] >= 0.08


def test_thread_seconds_reads_a_live_niced_thread() -> None:
    stop = threading.Event()

    def niced() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        _burn(0.2)
        stop.wait(10)

    worker = threading.Thread(target=niced)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while bench.thread_seconds(os.getpid())["niced"] < 0.15:
            assert time.monotonic() < deadline, "the niced thread's CPU was never counted"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()


def test_step_of_names_each_pickup_request() -> None:
    assert bench.step_of("POST", "/pharmacy/pickups") == "create"
    assert bench.step_of("PUT", "/pharmacy/pickups/p1/frames/3") == "frame"
    assert bench.step_of("POST", "/pharmacy/pickups/p1/verdict") == "verdict"
    assert bench.step_of("POST", "/pharmacy/pickups/p1/dispense") == "dispense"
    assert bench.step_of("POST", "/pharmacy/portraits") is None
    assert bench.step_of("POST", "/grants") is None


def test_task_nanoseconds_is_exact_per_thread() -> None:
    before = bench.task_nanoseconds(os.getpid())
    _burn(0.03)  # well under one 10 ms tick's worth of error
    spent = bench.spent_ms(before, bench.task_nanoseconds(os.getpid()))
    assert 25 <= spent <= 200
    assert bench.spent_ms({123456789: 5}, {}) == 0  # an ended thread is left out
