"""Devnet ledger: hash chain, tamper detection, restart, identity add, CLI, block encoding."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from devnet_client import TestClient, start_devnet
from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2

from network.devnet.blocks import ChainError, block_header_bytes, block_header_hash, tx_filter
from network.devnet.rwset import SimulationRecord, parse_rwset
from network.devnet.store import Store

Code = transaction_pb2.TxValidationCode
REPO = Path(__file__).resolve().parents[3]


def test_block_header_der_matches_go_asn1() -> None:
    # Go: asn1.Marshal(asn1Header{Number: big.NewInt(128), PreviousHash: nil, DataHash: ...})
    header = common_pb2.BlockHeader(number=128, previous_hash=b"", data_hash=b"\x01" * 32)
    expected = bytes.fromhex("3028020200800400" + "0420" + "01" * 32)
    assert block_header_bytes(header) == expected
    assert block_header_hash(header) == hashlib.sha256(expected).digest()
    zero = common_pb2.BlockHeader(number=0, previous_hash=b"\xaa", data_hash=b"")
    assert block_header_bytes(zero) == bytes.fromhex("3008020100" + "0401aa" + "0400")


def test_rwset_is_sorted_and_hashes_private_writes() -> None:
    rec = SimulationRecord("mip")
    rec.read(b"b", (3, 1))
    rec.read(b"a", None)
    rec.read(b"b", (9, 9))  # later reads of the same key do not change the recorded version
    rec.writes[b"z"] = b"1"
    rec.writes[b"c"] = None
    rec.collection("coll").writes[b"k"] = b"secret"
    public, private = rec.build()
    ns = parse_rwset(public)[0]
    assert [(r.key, r.HasField("version")) for r in ns.kv.reads] == [("a", False), ("b", True)]
    assert ns.kv.reads[1].version.block_num == 3
    assert [(w.key, w.is_delete) for w in ns.kv.writes] == [("c", True), ("z", False)]
    hw = ns.collections[0].hashed.hashed_writes[0]
    assert hw.key_hash == hashlib.sha256(b"k").digest()
    assert hw.value_hash == hashlib.sha256(b"secret").digest()
    assert b"secret" not in public and private is not None and b"secret" in private


async def test_restart_keeps_identities_state_and_chain(tmp_path: Path) -> None:
    data = tmp_path / "dn"
    net = await start_devnet(data)
    client = TestClient(data, net.port)
    try:
        txid, code, block = await client.submit_tx("CreateAsset", "keep1", "red", "1", "x", "1")
        assert code == Code.VALID
    finally:
        await client.close()
        await net.stop()
    peer_cert = next((data / "organizations" / "peerOrganizations" / "hospital.mip.local" /
                      "peers" / "peer0.hospital.mip.local" / "msp" / "signcerts").glob("*.pem"))
    before = peer_cert.read_bytes()
    net = await start_devnet(data)
    client = TestClient(data, net.port)  # same User1 identity and TLS root as before
    try:
        assert peer_cert.read_bytes() == before
        assert json.loads(await client.query("ReadAsset", "keep1"))["Owner"] == "x"
        assert await client.status(txid) == (Code.VALID, block)
        _, code2, block2 = await client.submit_tx("CreateAsset", "keep2", "red", "1", "x", "1")
        assert code2 == Code.VALID and block2 > block
        stored = net.store.block(block2)
        assert tx_filter(stored) == bytes([Code.VALID])
        assert stored.header.previous_hash == block_header_hash(net.store.block(block2 - 1).header)
    finally:
        await client.close()
        await net.stop()


async def test_tampered_block_is_detected_on_start(tmp_path: Path) -> None:
    data = tmp_path / "dn"
    net = await start_devnet(data)
    client = TestClient(data, net.port)
    try:
        _, _, block = await client.submit_tx("CreateAsset", "t1", "red", "1", "honest", "1")
    finally:
        await client.close()
        await net.stop()
    with sqlite3.connect(data / "ledger.sqlite") as db:
        raw = db.execute("SELECT block FROM blocks WHERE number=?", (block,)).fetchone()[0]
        db.execute("UPDATE blocks SET block=? WHERE number=?",
                   (raw.replace(b"honest", b"forged"), block))
    store = Store(data / "ledger.sqlite")
    try:
        with pytest.raises(ChainError):
            store.verify_chain()
    finally:
        store.close()
    with pytest.raises(ChainError):
        await start_devnet(data)


async def test_identity_add_attribute_visible_and_status_cli(tmp_path: Path) -> None:
    data = tmp_path / "dn"
    net = await start_devnet(data)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "network.devnet", "identity", "add", "--data", str(data),
            "--org", "HospitalMSP", "--name", "alice", "--attr", "mip.role=doctor", cwd=REPO)
        assert await proc.wait() == 0
        alice = TestClient(data, net.port, "HospitalMSP", user="alice")
        try:
            who = json.loads(await alice.query("WhoAmI"))
            assert who["mspId"] == "HospitalMSP"
            assert who["attrs"].get("mip.role") == "doctor"
            _, code, _ = await alice.submit_tx("CreateAsset", "al1", "red", "1", "alice", "1")
            assert code == Code.VALID
        finally:
            await alice.close()
        out = subprocess.run([sys.executable, "-m", "network.devnet", "status", "--data",
                              str(data)], cwd=REPO, capture_output=True, text=True, check=True)
        assert out.stdout.startswith(f"height {net.orderer.height} transactions 1 valid 1")
        profile = json.loads((data / "connection.json").read_text())
        assert "alice" in profile["organizations"]["HospitalMSP"]["users"]
    finally:
        await net.stop()
