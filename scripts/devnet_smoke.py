#!/usr/bin/env python3
"""Devnet smoke scenario (what scripts/demo.sh runs): start devnet, use it, stop it.

Steps, each printed: start devnet in a temporary directory; submit CreateAsset; evaluate
ReadAsset; receive a chaincode event; show a stale transaction refused at commit
(MVCC_READ_CONFLICT); stop devnet. Uses the project's Gateway client (gateway.fabric).
Exit status 0 only if every step behaved as expected.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.fabric import CommitError, Gateway  # noqa: E402

READY = re.compile(r"devnet ready on ([\d.]+:\d+)")


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def start(data: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "network.devnet", "up", "--data", str(data),
                             "--port", "0", "--contract", "asset"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = READY.search(line)
        if match:
            print(f"    {line.strip()}")
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("devnet did not start")


async def scenario(profile: Path) -> None:
    gw = Gateway.from_connection(profile, "HospitalMSP", "User1")
    network = gw.get_network("mipchannel")
    contract = network.get_contract("mip")
    asset = f"asset-{int(time.time())}"
    try:
        step(f"submit CreateAsset {asset} (endorsed by a majority of orgs, ordered, committed)")
        await contract.submit("CreateAsset", [asset, "blue", "5", "tomoko", "300"])
        print("    committed VALID")

        step(f"evaluate ReadAsset {asset}")
        print("    " + json.dumps(json.loads(await contract.evaluate("ReadAsset", [asset]))))

        step("chaincode event: EmitEvent('demo', 'hello') and read it from the event stream")
        submitted = await contract.submit_async("EmitEvent", ["demo", "hello"])
        await submitted.wait()
        height = (await submitted.status()).block_number
        async with network.chaincode_events("mip", start_block=height) as events:
            event = await asyncio.wait_for(events.__anext__(), 10)
        print(f"    block {event.block_number}: {event.name} {event.payload!r}")

        step("stale transaction: two updates endorsed against the same version")
        first = await contract.new_proposal(
            "UpdateAsset", [asset, "red", "5", "first", "300"]).endorse()
        second = await contract.new_proposal(
            "UpdateAsset", [asset, "green", "5", "second", "300"]).endorse()
        await (await first.submit()).wait()
        print("    first update committed VALID")
        try:
            await (await second.submit()).wait()
        except CommitError as exc:
            print(f"    second update refused at commit: {exc.code_name}")
        else:
            raise SystemExit("the stale transaction was not refused")
        owner = json.loads(await contract.evaluate("ReadAsset", [asset]))["Owner"]
        assert owner == "first", owner
        print(f"    owner is still {owner!r}: the refused transaction applied nothing")
    finally:
        await gw.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mip-devnet-") as tmp:
        step(f"start devnet (data {tmp})")
        proc = start(Path(tmp))
        try:
            asyncio.run(scenario(Path(tmp) / "connection.json"))
        finally:
            step("stop devnet")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
            print(f"    devnet exited with {code}")
    step("devnet smoke scenario passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
