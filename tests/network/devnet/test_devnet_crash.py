"""kill -9 devnet under load: no acknowledged transaction is lost, no partial block remains."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from devnet_client import TestClient, write_test_collections
from fabric_protos.peer import transaction_pb2

from network.devnet.store import Store

Code = transaction_pb2.TxValidationCode
REPO = Path(__file__).resolve().parents[3]
READY = re.compile(r"devnet ready on [\d.]+:(\d+)")


def _start(data: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "network.devnet", "up", "--data", str(data), "--port", "0",
         "--contract", "asset", "--collections", str(write_test_collections(data))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = READY.search(line)
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("devnet did not become ready")


async def _drive(data: Path, port: int, submitted: set[str], acked: set[str],
                 stop: asyncio.Event) -> None:
    client = TestClient(data, port)
    counter = 0

    async def worker(w: int) -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            key = f"crash-{w}-{counter}"
            submitted.add(key)
            try:
                _, code, _ = await client.submit_tx("CreateAsset", key, "red", "1", "o", "1")
            except grpc.aio.AioRpcError:
                return  # the server died mid-call: this transaction was never acknowledged
            if code == Code.VALID:
                acked.add(key)

    try:
        await asyncio.gather(*(worker(w) for w in range(8)))
    finally:
        await client.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_kill_9_loses_no_acknowledged_transaction(tmp_path: Path) -> None:
    data = tmp_path / "dn"
    data.mkdir()
    proc, port = _start(data)
    submitted: set[str] = set()
    acked: set[str] = set()
    stop = asyncio.Event()
    driver = asyncio.create_task(_drive(data, port, submitted, acked, stop))
    await asyncio.sleep(random.uniform(1.5, 3.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    await asyncio.wait_for(driver, 15)
    assert len(acked) > 20, "the load did not get going before the kill"

    proc, port = _start(data)  # restart re-verifies the whole chain before serving
    try:
        client = TestClient(data, port)
        try:
            for key in sorted(acked)[:: max(1, len(acked) // 40)]:
                assert json.loads(await client.query("ReadAsset", key))["ID"] == key
        finally:
            await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # clean shutdown on SIGTERM
    store = Store(data / "ledger.sqlite")
    try:
        height = store.verify_chain()
        assert height == store.height()
        # Each stored block's txs are indexed: no partial block.
        with sqlite3.connect(data / "ledger.sqlite") as db:
            keys = {k.decode() for (k,) in db.execute("SELECT key FROM state WHERE ns='mip'")}
            indexed = db.execute("SELECT COUNT(*) FROM txs").fetchone()[0]
        stored_txs = sum(len(store.block(n).data.data) for n in range(1, height))
        assert indexed == stored_txs
        for key in acked:
            assert key in keys
        assert keys <= submitted  # nothing written that was not submitted
    finally:
        store.close()
