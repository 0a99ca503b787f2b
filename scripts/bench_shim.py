"""Quick measurement (not a test): shim round trips per second and CPU per transaction.

Runs `python -m chaincode` (asset contract) in a subprocess, drives it from the fake peer in
this process with CreateAsset transactions (1 GET_STATE + 1 PUT_STATE + COMPLETED each), and
reads the shim process's CPU time from /proc. Usage:

    python scripts/bench_shim.py [transactions] [concurrency]

The fake peer is the shim tests' (tests/chaincode/shim/shim_testkit.py): the one import of
tests/ outside them (tests/test_import_direction.py allows it).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "chaincode" / "shim"))
sys.path.insert(0, str(REPO))

from shim_testkit import CHAINCODE_ID, build_proposal, connect_peer, default_user  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(total: int, concurrency: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "CHAINCODE_ID": CHAINCODE_ID,
        "CHAINCODE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "chaincode"]
    if os.environ.get("BENCH_PROFILE"):
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            os.environ["BENCH_PROFILE"],
            *command[1:],
        ]
    process = subprocess.Popen(command, env=env, cwd=REPO)
    try:
        for _ in range(100):
            try:
                peer = await asyncio.wait_for(connect_peer(port), 2)
                break
            except Exception:
                await asyncio.sleep(0.1)
        user = default_user()

        def args(i: int) -> list[bytes]:
            if os.environ.get("BENCH_TX") == "exists":  # 1 GET_STATE only, for comparison
                return [b"AssetExists", f"asset-{i:08d}".encode()]
            return [b"CreateAsset", f"asset-{i:08d}".encode(), b"blue", b"5", b"Tomoko", b"300"]

        warmup = 200
        proposals = [build_proposal(user, args(i)) for i in range(total + warmup)]
        for i in range(warmup):
            await peer.invoke(args(i), proposal=proposals[i])

        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(warmup, warmup + total):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                out = await peer.invoke(args(i), proposal=proposals[i])
                assert out.status == 200, out.text

        cpu0 = cpu_seconds(process.pid)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(process.pid) - cpu0
        name = args(0)[0].decode()
        print(
            f"{total} {name} tx, concurrency {concurrency}: {total / wall:.0f} tx/s, "
            f"shim CPU {cpu * 1000 / total:.3f} ms/tx ({cpu:.2f} s CPU in {wall:.2f} s wall)"
        )
        # Last line: the figures as JSON, for scripts/bench_meta.py to wrap with the machine.
        print(json.dumps({"transaction": name, "transactions": total,
                          "concurrency": concurrency, "tx_per_s": round(total / wall, 1),
                          "shim_cpu_ms_per_tx": round(cpu * 1000 / total, 3)}))
        await peer.close()
        await peer.channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    asyncio.run(run(n, c))
