"""End to end: the client against a devnet started in a subprocess (asset contract)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from devnet_process import Devnet, running_devnet
from fabric_testkit import issue, make_ca

from gateway.fabric import (
    AccessDenied,
    ChaincodeError,
    Contract,
    Deadlines,
    EndorseError,
    EvaluateError,
    FileCheckpointer,
    Gateway,
    Identity,
    Network,
    Signer,
    from_connection,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    with running_devnet(tmp_path_factory.mktemp("devnet-e2e")) as running:
        yield running


@pytest.fixture
async def gateway(devnet: Devnet) -> AsyncIterator[Gateway]:
    async with Gateway.from_connection(devnet.connection, "HospitalMSP", "User1") as gw:
        yield gw


@pytest.fixture
def network(gateway: Gateway) -> Network:
    return gateway.get_network("mipchannel")


@pytest.fixture
def contract(network: Network) -> Contract:
    return network.get_contract("mip")


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def test_create_and_read_asset(contract: Contract) -> None:
    asset_id = _id("asset")
    await contract.submit("CreateAsset", [asset_id, "blue", "5", "Tomoko", "300"])
    asset = json.loads(await contract.evaluate("ReadAsset", [asset_id]))
    assert asset == {
        "AppraisedValue": 300,
        "Color": "blue",
        "ID": asset_id,
        "Owner": "Tomoko",
        "Size": 5,
    }


async def test_chaincode_errors(contract: Contract) -> None:
    missing = _id("missing")
    with pytest.raises(ChaincodeError) as info:
        await contract.evaluate("ReadAsset", [missing])
    assert isinstance(info.value, EvaluateError)
    assert info.value.chaincode_message == f"the asset {missing} does not exist"
    assert info.value.details and info.value.details[0].msp_id

    asset_id = _id("dup")
    await contract.submit("CreateAsset", [asset_id, "red", "1", "Brad", "1"])
    with pytest.raises(ChaincodeError) as info2:
        await contract.submit("CreateAsset", [asset_id, "red", "1", "Brad", "1"])
    assert isinstance(info2.value, EndorseError)
    assert info2.value.chaincode_message == f"the asset {asset_id} already exists"


async def test_endorse_inspect_submit_and_mvcc_conflict(contract: Contract) -> None:
    asset_id = _id("mvcc")
    await contract.submit("CreateAsset", [asset_id, "green", "1", "Jin", "1"])
    first = await contract.new_proposal("TransferAsset", [asset_id, "Max"]).endorse()
    second = await contract.new_proposal("TransferAsset", [asset_id, "Ann"]).endorse()
    assert first.result == second.result == b"Jin"  # old owner, read before either commits
    status1 = await (await first.submit()).status()
    status2 = await (await second.submit()).status()
    assert status1.successful
    assert not status2.successful and status2.code_name == "MVCC_READ_CONFLICT"
    assert json.loads(await contract.evaluate("ReadAsset", [asset_id]))["Owner"] == "Max"


async def test_transient_private_data(contract: Contract) -> None:
    key = _id("priv")
    secret = secrets.token_bytes(16)
    await contract.submit(
        "PutPrivate",
        ["medical", key],
        transient={"value": secret},
        endorsing_orgs=["HospitalMSP"],
    )
    assert await contract.evaluate("GetPrivate", ["medical", key]) == secret


async def test_events_and_checkpoint_resume(
    network: Network, contract: Contract, tmp_path: Path
) -> None:
    tag = _id("ev")
    blocks = []
    tx_ids = []
    for i in range(3):
        submitted = await contract.submit_async("EmitEvent", [tag, f"{tag}-{i}"])
        status = await submitted.status()
        assert status.successful
        blocks.append(status.block_number)
        tx_ids.append(submitted.transaction_id)

    async def next_of_tag(stream: AsyncIterator[object]) -> object:
        async for event in stream:
            if getattr(event, "name", None) == tag:
                return event
        raise AssertionError("stream ended")

    checkpointer = FileCheckpointer(tmp_path / "checkpoint.json")
    async with network.chaincode_events("mip", start_block=blocks[0]) as stream:
        event = await asyncio.wait_for(next_of_tag(stream), 15)
    assert event.payload == f"{tag}-0".encode()  # type: ignore[attr-defined]
    assert event.transaction_id == tx_ids[0]  # type: ignore[attr-defined]
    assert event.block_number == blocks[0]  # type: ignore[attr-defined]
    checkpointer.checkpoint_event(event)  # type: ignore[arg-type]

    resumed = FileCheckpointer(tmp_path / "checkpoint.json")
    async with network.chaincode_events("mip", checkpoint=resumed) as stream:
        after = await asyncio.wait_for(next_of_tag(stream), 15)
    assert after.payload == f"{tag}-1".encode()  # type: ignore[attr-defined]
    assert after.transaction_id == tx_ids[1]  # type: ignore[attr-defined]


async def test_events_from_next_commit(network: Network, contract: Contract) -> None:
    tag = _id("next")
    async with network.chaincode_events("mip") as stream:
        waiter = asyncio.ensure_future(asyncio.wait_for(stream.__anext__(), 15))
        await asyncio.sleep(0.5)
        await contract.submit("EmitEvent", [tag, "now"])
        event = await waiter
    assert (event.name, event.payload) == (tag, b"now")


async def test_caller_identity_and_other_org(devnet: Devnet) -> None:
    async with Gateway.from_connection(devnet.connection, "SchoolMSP", "User1") as gw:
        contract = gw.get_network("mipchannel").get_contract("mip")
        who = json.loads(await contract.evaluate("WhoAmI"))
    assert who["mspId"] == "SchoolMSP"


async def test_unknown_ca_is_refused(devnet: Devnet) -> None:
    settings = from_connection(devnet.connection, "HospitalMSP", "User1")
    rogue_ca = make_ca("ca.hospital.mip.local")
    rogue = issue(rogue_ca, "User1@hospital.mip.local")
    async with Gateway.connect(
        settings.endpoint,
        Identity("HospitalMSP", rogue.cert_pem),
        Signer.from_pem(rogue.key_pem),
        tls_root_cert=settings.tls_root_cert,
        server_name_override=settings.server_name_override,
    ) as gw:
        with pytest.raises(AccessDenied):
            await gw.get_network("mipchannel").get_contract("mip").evaluate("WhoAmI")


async def test_mutual_tls_devnet(tmp_path: Path) -> None:
    with running_devnet(tmp_path, ("--mtls",), mutual_tls=True) as mtls:
        async with Gateway.from_connection(
            mtls.connection, "PharmacyMSP", "User1", mutual_tls=True
        ) as gw:
            who = json.loads(
                await gw.get_network("mipchannel").get_contract("mip").evaluate("WhoAmI")
            )
        assert who["mspId"] == "PharmacyMSP"
        # Without a client certificate the TLS handshake is refused.
        async with Gateway.from_connection(
            mtls.connection, "PharmacyMSP", "User1", deadlines=Deadlines(evaluate=2)
        ) as gw:
            with pytest.raises(EvaluateError) as info:
                await gw.get_network("mipchannel").get_contract("mip").evaluate("WhoAmI")
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


async def test_retry_policy_on_real_mvcc_conflict(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.fabric import CommitError, RetryPolicy
    from gateway.fabric.transaction import Transaction

    asset_id = _id("retry")
    await contract.submit("CreateAsset", [asset_id, "teal", "1", "Ann", "1"])
    original_submit = Transaction.submit
    interleaved: list[str] = []

    async def submit_after_a_rival_commit(self: Transaction, **kwargs: float | None) -> object:
        # Before our first submit, another transaction changes the key we read at endorsement.
        if not interleaved:
            rival = await contract.new_proposal("TransferAsset", [asset_id, "Rival"]).endorse()
            interleaved.append(rival.transaction_id)
            assert (await (await original_submit(rival)).status()).successful
        return await original_submit(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Transaction, "submit", submit_after_a_rival_commit)
    policy = RetryPolicy(max_attempts=2, base_delay=0.01)
    old_owner = await contract.submit("TransferAsset", [asset_id, "Max"], retry_policy=policy)
    assert old_owner == b"Rival"  # the retry ran on the state the rival left
    owner = json.loads(await contract.evaluate("ReadAsset", [asset_id]))["Owner"]
    assert owner == "Max"

    interleaved.clear()
    with pytest.raises(CommitError) as info:  # without retry the conflict surfaces
        await contract.submit("TransferAsset", [asset_id, "Zed"])
    assert info.value.code_name == "MVCC_READ_CONFLICT"


async def test_concurrent_submits(contract: Contract) -> None:
    ids = [_id("conc") for _ in range(40)]
    await asyncio.gather(*(contract.submit("CreateAsset", [i, "c", "1", "o", "1"]) for i in ids))
    read = await asyncio.gather(*(contract.evaluate("ReadAsset", [i]) for i in ids))
    assert [json.loads(r)["ID"] for r in read] == ids
