"""Private data on devnet: member-only storage, hashes on chain, access rules, BTL, purge."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from devnet_client import TestClient, error_details, start_devnet
from fabric_protos.peer import transaction_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")
Code = transaction_pb2.TxValidationCode


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    devnet = await start_devnet(tmp_path_factory.mktemp("devnet-pvt"))
    yield devnet
    await devnet.stop()


def _rows(net: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(net.config.ledger_path) as db:
        return list(db.execute(sql, args))


async def test_private_data_only_at_members_hash_on_chain(net: Any, hospital: TestClient) -> None:
    secret = b"blood-type-AB-negative-4711"
    _, code, block = await hospital.submit_tx("PutPrivate", "shared", "pk1",
                                              transient={"value": secret})
    assert code == Code.VALID
    holders = _rows(net, "SELECT org FROM pvt_data WHERE coll='shared' AND key=?", b"pk1")
    assert sorted(r[0] for r in holders) == ["HospitalMSP", "SchoolMSP"]
    hashed = _rows(net, "SELECT value_hash FROM pvt_hashed WHERE coll='shared' AND key_hash=?",
                   hashlib.sha256(b"pk1").digest())
    assert hashed == [(hashlib.sha256(secret).digest(),)]
    # No cleartext in any block, nor in public state; the value hash is in the block.
    blocks = [r[0] for r in _rows(net, "SELECT block FROM blocks")]
    assert not any(secret in b for b in blocks)
    assert any(hashlib.sha256(secret).digest() in b for b in blocks)
    assert not any(secret in r[0] for r in _rows(net, "SELECT value FROM state"))
    assert await hospital.query("GetPrivate", "shared", "pk1") == secret
    assert block > 0


async def test_member_only_read_and_write(hospital: TestClient, school: TestClient) -> None:
    secret = b"diagnosis-xyz"
    _, code, _ = await hospital.submit_tx("PutPrivate", "medical", "m1",
                                          transient={"value": secret})
    assert code == Code.VALID
    assert await hospital.query("GetPrivate", "medical", "m1") == secret
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await school.query("GetPrivate", "medical", "m1")
    assert "read access" in error_details(info.value)[0].message
    # memberOnlyRead covers GetPrivateData, not the hash (as in Fabric).
    digest = await school.query("GetPrivateHash", "medical", "m1")
    assert digest.decode().strip('"') == hashlib.sha256(secret).hexdigest()
    with pytest.raises(grpc.aio.AioRpcError) as winfo:
        await school.endorse(school.proposal("PutPrivate", "medical", "m2",
                                             transient={"value": b"x"}))
    assert winfo.value.code() == grpc.StatusCode.ABORTED
    assert "write access" in error_details(winfo.value)[0].message


async def test_block_to_live_purges(net: Any, hospital: TestClient) -> None:
    _, code, block = await hospital.submit_tx("PutPrivate", "shortlived", "t1",
                                              transient={"value": b"temp"})
    assert code == Code.VALID
    for _ in range(2):  # blocks block+1 and block+2: still there (blockToLive = 2)
        await hospital.submit_tx("EmitEvent", "tick", "x")
        assert await hospital.query("GetPrivate", "shortlived", "t1") == b"temp"
    while net.orderer.height <= block + 3:
        await hospital.submit_tx("EmitEvent", "tick", "x")
    assert _rows(net, "SELECT org FROM pvt_data WHERE coll='shortlived'") == []
    assert _rows(net, "SELECT 1 FROM pvt_hashed WHERE coll='shortlived'") == []
    with pytest.raises(grpc.aio.AioRpcError):
        await hospital.query("GetPrivate", "shortlived", "t1")


async def test_purge_removes_from_every_store(net: Any, hospital: TestClient) -> None:
    await hospital.submit_tx("PutPrivate", "shared", "pg1", transient={"value": b"gone"})
    assert len(_rows(net, "SELECT org FROM pvt_data WHERE key=?", b"pg1")) == 2
    _, code, _ = await hospital.submit_tx("PurgePrivate", "shared", "pg1")
    assert code == Code.VALID
    assert _rows(net, "SELECT org FROM pvt_data WHERE key=?", b"pg1") == []
    with pytest.raises(grpc.aio.AioRpcError):
        await hospital.query("GetPrivate", "shared", "pg1")


async def test_transient_data_not_sent_to_non_members(hospital: TestClient) -> None:
    # hosponly has one member and no collection policy: MAJORITY would need a non-member.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await hospital.endorse(hospital.proposal("PutPrivate", "hosponly", "h1",
                                                 transient={"value": b"v"}))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "distribution policy" in (info.value.details() or "")
