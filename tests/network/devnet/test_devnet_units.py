"""Small devnet parts on their own: commit lock, signature cache, config, transient store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from network.devnet import pki
from network.devnet.commit_lock import CommitLock
from network.devnet.config import ConfigError, DevnetConfig
from network.devnet.msp import MSPManager, SignatureError
from network.devnet.sigcache import SignatureCache
from network.devnet.transient import MAX_BLOCK_RETENTION, TransientStore


async def test_commit_lock_excludes_readers_and_prefers_writer() -> None:
    lock = CommitLock()
    order: list[str] = []
    await lock.acquire_read()

    async def writer() -> None:
        await lock.acquire_write()
        order.append("write")
        lock.release_write()

    async def late_reader() -> None:
        await lock.acquire_read()
        order.append("read")
        lock.release_read()

    w = asyncio.create_task(writer())
    await asyncio.sleep(0)
    r = asyncio.create_task(late_reader())  # arrives while the writer waits: queues behind it
    await asyncio.sleep(0.01)
    assert order == []
    lock.release_read()
    await asyncio.gather(w, r)
    assert order == ["write", "read"]


def test_signature_cache_skips_only_known_good(tmp_path: Path) -> None:
    pki.generate_network(tmp_path)
    msp = MSPManager.from_data_dir(tmp_path)
    signer = pki.msp_signing_identity(
        tmp_path / "organizations/peerOrganizations/hospital.mip.local/users/"
        "User1@hospital.mip.local/msp", "HospitalMSP")
    ident = msp.validate(signer.serialized)
    cache = SignatureCache(size=2)
    sig = signer.sign(b"msg")
    cache.verify(ident, b"msg", sig)
    cache.verify(ident, b"msg", sig)  # cached
    with pytest.raises(SignatureError):
        cache.verify(ident, b"other", sig)  # a different message is never a cache hit
    made = signer.sign(b"mine")
    cache.remember(signer.serialized, b"mine", made)
    cache.verify(ident, b"mine", made)


def test_config_roundtrip_and_validation(tmp_path: Path) -> None:
    cfg = DevnetConfig(data_dir=tmp_path, port=7055, policy="ANY Endorsement")
    cfg.save()
    loaded = DevnetConfig.load(tmp_path)
    assert loaded is not None and loaded.port == 7055 and loaded.policy == "ANY Endorsement"
    assert loaded.with_overrides(port=None, batch_size=7).batch_size == 7
    with pytest.raises(ConfigError):
        cfg.with_overrides(batch_size=0)
    (tmp_path / "devnet.json").write_text("{not json")
    with pytest.raises(ConfigError):
        DevnetConfig.load(tmp_path)


def test_transient_store_retention() -> None:
    store = TransientStore()
    store.put("tx1", "HospitalMSP", b"pvt", height=1)
    store.put("tx1", "SchoolMSP", b"pvt", height=1)
    entry = store.get("tx1")
    assert entry is not None and entry.orgs == {"HospitalMSP", "SchoolMSP"}
    store.purge_below(MAX_BLOCK_RETENTION)
    assert store.get("tx1") is not None
    store.purge_below(MAX_BLOCK_RETENTION + 2)
    assert store.get("tx1") is None


def test_chaincode_socket_in_a_private_folder(tmp_path: Path) -> None:
    from network.devnet.server import chaincode_socket

    address, to_remove = chaincode_socket(tmp_path)
    assert address == f"unix:{tmp_path.resolve() / 'run' / 'chaincode.sock'}"
    assert to_remove is None
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
    # sun_path holds 108 bytes: a deep data folder gets a private temporary folder instead.
    deep = tmp_path / ("d" * 120)
    address, to_remove = chaincode_socket(deep)
    assert to_remove is not None and address == f"unix:{to_remove / 'chaincode.sock'}"
    assert len(address) < 108 and to_remove.stat().st_mode & 0o777 == 0o700
    to_remove.rmdir()


async def test_peer_stream_writes_in_order_from_one_writer_task() -> None:
    """Senders only queue: a sender cancelled while the stream is busy cannot cancel the
    stream (grpc.aio cancels a call whose write is interrupted), and order is kept."""
    from network.devnet.peer import LogicalPeer

    class SlowCall:
        def __init__(self) -> None:
            self.gate = asyncio.Event()
            self.written: list[int] = []
            self.cancelled = False

        async def write(self, msg: int) -> None:
            await self.gate.wait()
            self.written.append(msg)

        def cancel(self) -> None:
            self.cancelled = True

    peer = LogicalPeer("HospitalMSP", "peer0:7051", None, None, CommitLock(), "mip", {})  # type: ignore[arg-type]
    call = SlowCall()
    peer._call = call
    writer = asyncio.create_task(peer._write_loop(call))

    async def sender(i: int) -> None:
        peer._send(i)
        await asyncio.sleep(10)  # e.g. awaiting the chaincode's reply

    senders = [asyncio.create_task(sender(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    for task in senders:
        task.cancel()  # clients giving up
    call.gate.set()
    for _ in range(100):
        if len(call.written) == 5:
            break
        await asyncio.sleep(0.001)
    assert call.written == [0, 1, 2, 3, 4] and not call.cancelled
    peer._send(5)
    await asyncio.sleep(0.01)
    assert call.written[-1] == 5
    writer.cancel()
