"""Chaincode events: start positions, signed requests, checkpoint resume (memory and file)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fabric_testkit import MVCC, Served

from gateway.fabric import (
    ChaincodeEvent,
    CheckpointError,
    FileCheckpointer,
    Gateway,
    InMemoryCheckpointer,
)

CHANNEL = "mipchannel"


async def _next(stream: object, timeout: float = 3.0) -> ChaincodeEvent:
    return await asyncio.wait_for(stream.__anext__(), timeout)  # type: ignore[attr-defined]


async def test_events_from_next_commit(gateway: Gateway, served: Served) -> None:
    network = gateway.get_network(CHANNEL)
    contract = network.get_contract("mip")
    await contract.submit("CreateAsset", ["before", "x"])  # block 1, not seen
    async with network.chaincode_events("mip") as stream:
        first = asyncio.ensure_future(_next(stream))
        await asyncio.sleep(0.1)  # let the stream open at the current height
        await contract.submit("CreateAsset", ["e1", "x"])
        event = await first
    assert event.name == "AssetCreated" and event.payload == b"e1"
    assert event.chaincode == "mip" and event.block_number == 2
    assert event.tx_id == event.transaction_id == served.fake.proposals[-1].tx_id
    request = served.fake.events_requests[-1]
    assert request.start_position.HasField("next_commit")
    assert request.chaincode_id == "mip" and request.channel_id == CHANNEL


async def test_events_from_start_block_skip_invalid(gateway: Gateway, served: Served) -> None:
    network = gateway.get_network(CHANNEL)
    contract = network.get_contract("mip")
    await contract.submit("CreateAsset", ["b1", "x"])
    served.fake.commit_codes = [MVCC]
    await contract.submit_async("CreateAsset", ["bad", "x"])  # invalid: no event
    await contract.submit("CreateAsset", ["b3", "x"])
    async with network.chaincode_events("mip", start_block=0) as stream:
        got = [await _next(stream), await _next(stream)]
    assert [(e.block_number, e.payload) for e in got] == [(1, b"b1"), (3, b"b3")]


async def test_checkpoint_resume_after_last_processed(
    gateway: Gateway, served: Served, tmp_path: Path
) -> None:
    network = gateway.get_network(CHANNEL)
    contract = network.get_contract("mip")
    for i in range(3):
        await contract.submit("CreateAsset", [f"c{i}", "x"])
    checkpointer = FileCheckpointer(tmp_path / "cp" / "events.json")
    async with network.chaincode_events("mip", checkpoint=checkpointer, start_block=1) as stream:
        for _ in range(2):
            event = await _next(stream)
            checkpointer.checkpoint_event(event)  # processed
    assert json.loads((tmp_path / "cp" / "events.json").read_text()) == {
        "blockNumber": 2,
        "transactionId": event.transaction_id,
    }
    # "Restart": a new checkpointer reads the file and resumes right after c1.
    restored = FileCheckpointer(tmp_path / "cp" / "events.json")
    assert (restored.block_number, restored.transaction_id) == (2, event.transaction_id)
    async with network.chaincode_events("mip", checkpoint=restored, start_block=0) as stream:
        resumed = await _next(stream)
    assert resumed.payload == b"c2" and resumed.block_number == 3
    request = served.fake.events_requests[-1]
    assert request.start_position.specified.number == 2
    assert request.after_transaction_id == event.transaction_id
    assert list((tmp_path / "cp").iterdir()) == [tmp_path / "cp" / "events.json"]  # no temp left


async def test_in_memory_checkpoint_block(gateway: Gateway, served: Served) -> None:
    network = gateway.get_network(CHANNEL)
    contract = network.get_contract("mip")
    await contract.submit("CreateAsset", ["m1", "x"])
    await contract.submit("CreateAsset", ["m2", "x"])
    checkpointer = InMemoryCheckpointer()
    checkpointer.checkpoint_block(1)
    assert (checkpointer.block_number, checkpointer.transaction_id) == (2, "")
    async with network.chaincode_events("mip", checkpoint=checkpointer) as stream:
        assert (await _next(stream)).payload == b"m2"


def test_file_checkpointer_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError):
        FileCheckpointer(path)
    path.write_text(json.dumps({"blockNumber": -1}))
    with pytest.raises(CheckpointError):
        FileCheckpointer(path)
    fresh = FileCheckpointer(tmp_path / "new.json")
    assert (fresh.block_number, fresh.transaction_id) == (0, "")


async def test_events_stream_error_is_typed(gateway: Gateway, served: Served) -> None:
    from gateway.fabric import AccessDenied, ChaincodeEventsError

    served.fake.msp_ids = {"SchoolMSP"}
    stream = gateway.get_network(CHANNEL).chaincode_events("mip", start_block=0)
    with pytest.raises(ChaincodeEventsError) as info:
        await _next(stream)
    assert isinstance(info.value, AccessDenied)
    await stream.aclose()
