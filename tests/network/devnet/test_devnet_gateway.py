"""Devnet Gateway: proposal checks, endorsement, policies, MVCC, phantoms, status, events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from devnet_client import Built, TestClient, error_details, high_s, start_devnet
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from network.devnet import pki
from network.devnet.rwset import parse_rwset

pytestmark = pytest.mark.asyncio(loop_scope="module")
Code = transaction_pb2.TxValidationCode


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    devnet = await start_devnet(tmp_path_factory.mktemp("devnet"))
    yield devnet
    await devnet.stop()


def _action(env: common_pb2.Envelope) -> tuple[proposal_pb2.ChaincodeAction, list[Any]]:
    payload = common_pb2.Payload.FromString(env.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        cap.action.proposal_response_payload)
    return proposal_pb2.ChaincodeAction.FromString(prp.extension), list(cap.action.endorsements)


async def _expect_refused(client: TestClient, built: Built) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.endorse(built)
    assert info.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as ev:
        await client.evaluate(built)
    assert ev.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return info.value


async def test_create_read_and_expected_rwset(hospital: TestClient) -> None:
    _, code, block = await hospital.submit_tx("CreateAsset", "rw1", "red", "3", "ann", "10")
    assert code == Code.VALID and block >= 1
    assert json.loads(await hospital.query("ReadAsset", "rw1"))["Owner"] == "ann"
    built = hospital.proposal("TransferAsset", "rw1", "bob")
    env = await hospital.endorse(built)
    action, endorsements = _action(env)
    # MAJORITY of three orgs: two distinct endorsing peers, the client's org among them.
    orgs = sorted({e.endorser for e in endorsements})
    assert len(orgs) == 2
    ns = next(n for n in parse_rwset(action.results) if n.namespace == "mip")
    reads = {r.key: (r.version.block_num, r.version.tx_num) for r in ns.kv.reads}
    assert reads == {"rw1": (block, 0)}
    writes = {w.key: json.loads(w.value) for w in ns.kv.writes}
    assert writes["rw1"]["Owner"] == "bob"
    assert action.chaincode_id.name == "mip"
    # The transient-free proposal payload is what the envelope carries.
    payload = common_pb2.Payload.FromString(env.payload)
    assert common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id == built.txid


async def test_unknown_ca_refused(net: Any, tmp_path: Path) -> None:
    other = tmp_path / "other"
    pki.generate_network(other)  # same MSP ids, different CAs
    stranger = TestClient(other, net.port, "HospitalMSP")
    # connect to the real devnet with the real TLS root but a foreign signing identity
    await stranger.close()
    real = TestClient(net.data_dir, net.port, "HospitalMSP", signer=stranger.signer)
    try:
        err = await _expect_refused(real, real.proposal("ReadAsset", "rw1"))
        details = error_details(err)
        assert details and "creator org unknown" in details[0].message
        assert details[0].msp_id == "HospitalMSP"
    finally:
        await real.close()


async def test_bad_and_high_s_signatures_refused(hospital: TestClient) -> None:
    bad = hospital.proposal("ReadAsset", "rw1")
    sig = bytearray(bad.signed.signature)
    sig[-1] ^= 1
    bad.signed.signature = bytes(sig)
    await _expect_refused(hospital, bad)
    hs = hospital.proposal("ReadAsset", "rw1")
    hs.signed.signature = high_s(hs.signed.signature)
    err = await _expect_refused(hospital, hs)
    assert "access denied" in error_details(err)[0].message


async def test_replayed_txid_refused(hospital: TestClient) -> None:
    built = hospital.proposal("CreateAsset", "replay1", "red", "1", "x", "1")
    env = await hospital.endorse(built)
    await hospital.submit(built, env)
    assert (await hospital.status(built.txid))[0] == Code.VALID
    err = await _expect_refused(hospital, built)
    assert "duplicate transaction" in error_details(err)[0].message


async def test_evaluate_chaincode_error_is_unknown_with_details(hospital: TestClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await hospital.evaluate(hospital.proposal("ReadAsset", "does-not-exist"))
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    details = error_details(info.value)
    assert details and details[0].msp_id == "HospitalMSP"
    assert "chaincode response 500" in details[0].message
    with pytest.raises(grpc.aio.AioRpcError) as einfo:
        await hospital.endorse(hospital.proposal("ReadAsset", "does-not-exist"))
    assert einfo.value.code() == grpc.StatusCode.ABORTED
    assert "does-not-exist" in error_details(einfo.value)[0].message


async def test_chaincode_policy_one_org_fails(hospital: TestClient) -> None:
    built = hospital.proposal("CreateAsset", "onlyone", "red", "1", "x", "1")
    env = await hospital.endorse(built, orgs=["HospitalMSP"])
    assert len(_action(env)[1]) == 1
    await hospital.submit(built, env)
    code, _ = await hospital.status(built.txid)
    assert code == Code.ENDORSEMENT_POLICY_FAILURE
    with pytest.raises(grpc.aio.AioRpcError):
        await hospital.query("ReadAsset", "onlyone")  # nothing applied
    # Two orgs satisfy MAJORITY.
    _, code2, _ = await hospital.submit_tx("CreateAsset", "twoorgs", "red", "1", "x", "1",
                                           orgs=["HospitalMSP", "PharmacyMSP"])
    assert code2 == Code.VALID


async def test_key_level_policy(hospital: TestClient) -> None:
    await hospital.submit_tx("CreateAsset", "sbe1", "red", "1", "x", "1")
    _, code, _ = await hospital.submit_tx("SetKeyEndorsement", "sbe1",
                                          json.dumps(["SchoolMSP", "PharmacyMSP"]))
    assert code == Code.VALID
    # Hospital + School satisfy MAJORITY but not the key's policy (School AND Pharmacy).
    built = hospital.proposal("TransferAsset", "sbe1", "zed")
    env = await hospital.endorse(built, orgs=["HospitalMSP", "SchoolMSP"])
    await hospital.submit(built, env)
    assert (await hospital.status(built.txid))[0] == Code.ENDORSEMENT_POLICY_FAILURE
    # The gateway's own plan picks endorsers satisfying the key-level policy.
    built2 = hospital.proposal("TransferAsset", "sbe1", "zed")
    env2 = await hospital.endorse(built2)
    from fabric_protos.msp import identities_pb2

    endorsers = {identities_pb2.SerializedIdentity.FromString(e.endorser).mspid
                 for e in _action(env2)[1]}
    assert endorsers == {"SchoolMSP", "PharmacyMSP"}
    await hospital.submit(built2, env2)
    assert (await hospital.status(built2.txid))[0] == Code.VALID
    assert json.loads(await hospital.query("ReadAsset", "sbe1"))["Owner"] == "zed"


async def test_mvcc_conflict_applies_nothing(hospital: TestClient) -> None:
    await hospital.submit_tx("CreateAsset", "mv1", "red", "1", "x", "1")
    b1 = hospital.proposal("UpdateAsset", "mv1", "green", "1", "first", "1")
    b2 = hospital.proposal("UpdateAsset", "mv1", "green", "1", "second", "1")
    e1, e2 = await hospital.endorse(b1), await hospital.endorse(b2)
    await hospital.submit(b1, e1)
    await hospital.submit(b2, e2)
    c1, c2 = (await hospital.status(b1.txid))[0], (await hospital.status(b2.txid))[0]
    assert sorted([c1, c2]) == sorted([Code.VALID, Code.MVCC_READ_CONFLICT])
    winner = "first" if c1 == Code.VALID else "second"
    assert json.loads(await hospital.query("ReadAsset", "mv1"))["Owner"] == winner


async def test_phantom_read(hospital: TestClient) -> None:
    await hospital.submit_tx("CreateAsset", "ph-a", "red", "1", "x", "1")
    scan = hospital.proposal("GetAllAssets")
    env = await hospital.endorse(scan)
    action, _ = _action(env)
    ns = next(n for n in parse_rwset(action.results) if n.namespace == "mip")
    assert ns.kv.range_queries_info and ns.kv.range_queries_info[0].itr_exhausted
    await hospital.submit_tx("CreateAsset", "ph-b", "red", "1", "x", "1")  # a new key in range
    await hospital.submit(scan, env)
    assert (await hospital.status(scan.txid))[0] == Code.PHANTOM_READ_CONFLICT


async def test_commit_status_waits_and_rejects_bad_signature(hospital: TestClient) -> None:
    built = hospital.proposal("CreateAsset", "cs1", "red", "1", "x", "1")
    env = await hospital.endorse(built)
    waiter = asyncio.create_task(hospital.status(built.txid))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await hospital.submit(built, env)
    code, block = await waiter
    assert code == Code.VALID and block > 0
    from fabric_protos.gateway import gateway_pb2

    req = gateway_pb2.CommitStatusRequest(transaction_id=built.txid, channel_id="mipchannel",
                                          identity=hospital.creator).SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await hospital.stub.CommitStatus(gateway_pb2.SignedCommitStatusRequest(
            request=req, signature=high_s(hospital.signer.sign(req))))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_submit_refuses_badly_signed_envelope(hospital: TestClient) -> None:
    from fabric_protos.gateway import gateway_pb2

    built = hospital.proposal("CreateAsset", "sig1", "red", "1", "x", "1")
    env = await hospital.endorse(built)
    forged = common_pb2.Envelope(payload=env.payload, signature=high_s(
        hospital.signer.sign(env.payload)))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await hospital.stub.Submit(gateway_pb2.SubmitRequest(
            transaction_id=built.txid, channel_id="mipchannel", prepared_transaction=forged))
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert "FORBIDDEN" in (info.value.details() or "")


async def test_events_history_live_and_resume(hospital: TestClient) -> None:
    first_txid, _, b1 = await hospital.submit_tx("EmitEvent", "first", "p1")
    _, _, b2 = await hospital.submit_tx("EmitEvent", "second", "p2")

    async def collect(stream: Any, n: int) -> list[Any]:
        out = []
        async for resp in stream:
            for ev in resp.events:
                out.append((resp.block_number, ev.event_name, bytes(ev.payload)))
            if len(out) >= n:
                break
        return out

    history = await asyncio.wait_for(collect(hospital.events(start_block=b1), 2), 10)
    assert history == [(b1, "first", b"p1"), (b2, "second", b"p2")]
    # Resuming after a transaction (a checkpoint) skips it and everything before it.
    after = await asyncio.wait_for(collect(hospital.events(after_txid=first_txid), 1), 10)
    assert after == [(b2, "second", b"p2")]
    # Resume from block b2 only; then a live event arrives after the stream is open.
    stream = hospital.events(start_block=b2)
    task = asyncio.create_task(collect(stream, 2))
    await asyncio.sleep(0.1)
    _, _, b3 = await hospital.submit_tx("EmitEvent", "third", "p3")
    got = await asyncio.wait_for(task, 10)
    assert got == [(b2, "second", b"p2"), (b3, "third", b"p3")]
    stream.cancel()
