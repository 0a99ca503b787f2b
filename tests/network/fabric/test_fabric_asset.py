"""gateway.fabric against real Fabric 2.5 peers (scripts/network.sh), asset contract via CCaaS.

Each test uses fresh keys, so the order of tests and a reused network do not matter.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fabric_network import FabricNetwork

from gateway.fabric import (
    AccessDenied,
    ChaincodeError,
    CommitError,
    ConnectionProfile,
    Contract,
    EndorseError,
    EvaluateError,
    Gateway,
    Identity,
    Signer,
    Transaction,
    from_connection,
)
from network.devnet import pki

pytestmark = [pytest.mark.fabric, pytest.mark.timeout(300)]

ORGS = ("HospitalMSP", "SchoolMSP", "PharmacyMSP")
# The generated protobuf modules carry no type information.
common_pb2: Any = importlib.import_module("fabric_protos.common.common_pb2")
identities_pb2: Any = importlib.import_module("fabric_protos.msp.identities_pb2")
ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
transaction_pb2: Any = importlib.import_module("fabric_protos.peer.transaction_pb2")


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _endorsers(transaction: Transaction) -> list[str]:
    """MSP ids of the endorsements in a prepared transaction."""
    payload = common_pb2.Payload.FromString(transaction.envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload).action
    return sorted(
        identities_pb2.SerializedIdentity.FromString(e.endorser).mspid for e in action.endorsements
    )


async def _wait_for_block(gateway: Gateway, block_number: int, timeout: float = 20.0) -> None:
    """Until the gateway's own peer has committed `block_number` (qscc GetChainInfo)."""
    qscc = gateway.get_network("mipchannel").get_contract("qscc")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        raw = await qscc.evaluate("GetChainInfo", ["mipchannel"])
        if ledger_pb2.BlockchainInfo.FromString(raw).height > block_number:
            return
        assert asyncio.get_running_loop().time() < deadline, f"block {block_number} not committed"
        await asyncio.sleep(0.01)


@pytest.fixture
async def hospital(fabric_network: FabricNetwork) -> AsyncIterator[Gateway]:
    async with Gateway.from_connection(fabric_network.connection, "HospitalMSP", "User1") as gw:
        yield gw


@pytest.fixture
def contract(hospital: Gateway) -> Contract:
    return hospital.get_network("mipchannel").get_contract("mip")


def test_connection_profile_has_one_peer_per_org(fabric_network: FabricNetwork) -> None:
    profile = ConnectionProfile.load(fabric_network.connection)
    assert profile.network == "fabric"
    assert (profile.channel, profile.chaincode) == ("mipchannel", "mip")
    endpoints = {profile.org(o).peer_endpoint for o in ORGS}
    assert len(endpoints) == 3  # unlike devnet, every org has its own peer
    for org in ORGS:
        entry = profile.org(org)
        domain = org.removesuffix("MSP").lower() + ".mip.local"
        assert entry.server_name_override == f"peer0.{domain}"
        assert entry.tls_root_cert_path is not None
        assert entry.tls_root_cert_path.name == f"tlsca.{domain}-cert.pem"
        assert entry.tls_root_cert_path.is_file()
        assert {"User1", "Admin"} <= set(entry.users)


async def test_create_and_read_asset(contract: Contract) -> None:
    asset_id = _id("asset")
    await contract.submit("CreateAsset", [asset_id, "blue", "5", "Tomoko", "300"])
    asset = json.loads(await contract.evaluate("ReadAsset", [asset_id]))
    assert asset == {
        "AppraisedValue": 300, "Color": "blue", "ID": asset_id, "Owner": "Tomoko", "Size": 5,
    }


async def test_every_org_reaches_its_own_peer(fabric_network: FabricNetwork) -> None:
    for org in ORGS:
        async with Gateway.from_connection(fabric_network.connection, org, "User1") as gw:
            contract = gw.get_network("mipchannel").get_contract("mip")
            who = json.loads(await contract.evaluate("WhoAmI"))
        assert who["mspId"] == org
        assert who["nodeOU"] == "client"


async def test_chaincode_errors_are_typed_with_the_message(contract: Contract) -> None:
    missing = _id("missing")
    with pytest.raises(ChaincodeError) as info:
        await contract.evaluate("ReadAsset", [missing])
    assert isinstance(info.value, EvaluateError)
    assert info.value.chaincode_status == 500
    assert info.value.chaincode_message == f"the asset {missing} does not exist"
    # Real peers name themselves by their gossip endpoint, not by host name.
    assert info.value.details[0].msp_id == "HospitalMSP"
    assert info.value.details[0].address.startswith("127.0.0.1:")

    asset_id = _id("dup")
    await contract.submit("CreateAsset", [asset_id, "red", "1", "Brad", "1"])
    with pytest.raises(ChaincodeError) as dup:
        await contract.submit("CreateAsset", [asset_id, "red", "1", "Brad", "1"])
    assert isinstance(dup.value, EndorseError)
    assert dup.value.chaincode_message == f"the asset {asset_id} already exists"


async def test_transient_private_data_and_hash(
    fabric_network: FabricNetwork, contract: Contract
) -> None:
    key = _id("priv")
    secret = secrets.token_bytes(24)
    proposal = contract.new_proposal("PutPrivate", ["medical", key], transient={"value": secret})
    transaction = await proposal.endorse()
    # Transient data is only sent to the collection's member (the Gateway plans for it), and the
    # medical collection's own endorsement policy (HospitalMSP peer) is what validation checks.
    assert _endorsers(transaction) == ["HospitalMSP"]
    assert secret not in transaction.envelope.SerializeToString()  # only its hash is on chain
    status = await (await transaction.submit()).status()
    assert status.successful, status.code_name

    assert await contract.evaluate("GetPrivate", ["medical", key]) == secret
    digest = hashlib.sha256(secret).hexdigest()
    assert (await contract.evaluate("GetPrivateHash", ["medical", key])).decode() == digest

    async with Gateway.from_connection(fabric_network.connection, "SchoolMSP", "User1") as gw:
        # The commit status spoke for Hospital's peer; School's peer commits the block on its own.
        await _wait_for_block(gw, status.block_number)
        school = gw.get_network("mipchannel").get_contract("mip")
        # Non-members see the hash (it is in the block) ...
        assert (await school.evaluate("GetPrivateHash", ["medical", key])).decode() == digest
        # ... but their peer never received the value. Real Fabric says so as an error where
        # devnet answers "not found" (see docs/deploy.md, differences from devnet).
        with pytest.raises(ChaincodeError) as info:
            await school.evaluate("GetPrivate", ["medical", key])
    assert "private data matching public hash version is not available" in (
        info.value.chaincode_message or ""
    )


async def test_chaincode_event_through_chaincode_events(hospital: Gateway) -> None:
    network = hospital.get_network("mipchannel")
    contract = network.get_contract("mip")
    name = _id("event")
    submitted = await contract.submit_async("EmitEvent", [name, "payload-1"])
    status = await submitted.status()
    assert status.successful
    async with network.chaincode_events("mip", start_block=status.block_number) as stream:
        event = await asyncio.wait_for(stream.__anext__(), 15)
    assert (event.name, event.payload) == (name, b"payload-1")
    assert event.chaincode == "mip"
    assert event.transaction_id == submitted.transaction_id
    assert event.block_number == status.block_number

    # A live event: the stream is open before the transaction commits.
    live = _id("live")
    async with network.chaincode_events("mip") as stream:
        waiter = asyncio.ensure_future(asyncio.wait_for(stream.__anext__(), 15))
        await asyncio.sleep(0.5)
        await contract.submit("EmitEvent", [live, "now"])
        got = await waiter
    assert (got.name, got.payload) == (live, b"now")


async def test_mvcc_read_conflict(contract: Contract) -> None:
    asset_id = _id("mvcc")
    await contract.submit("CreateAsset", [asset_id, "green", "1", "Jin", "1"])
    first = await contract.new_proposal("TransferAsset", [asset_id, "Max"]).endorse()
    second = await contract.new_proposal("TransferAsset", [asset_id, "Ann"]).endorse()
    assert first.result == second.result == b"Jin"
    status1 = await (await first.submit()).status()
    status2 = await (await second.submit()).status()
    assert status1.successful
    assert not status2.successful and status2.code_name == "MVCC_READ_CONFLICT"
    assert json.loads(await contract.evaluate("ReadAsset", [asset_id]))["Owner"] == "Max"


async def test_majority_policy_refuses_one_org(contract: Contract) -> None:
    asset_id = _id("one-org")
    with pytest.raises(CommitError) as info:
        await contract.submit(
            "CreateAsset", [asset_id, "red", "1", "x", "1"], endorsing_orgs=["HospitalMSP"]
        )
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    with pytest.raises(ChaincodeError):
        await contract.evaluate("ReadAsset", [asset_id])  # nothing was applied
    # The Gateway's own plan endorses with a majority (two of three orgs).
    transaction = await contract.new_proposal(
        "CreateAsset", [asset_id, "red", "1", "x", "1"]
    ).endorse()
    assert len(_endorsers(transaction)) == 2
    assert (await (await transaction.submit()).status()).successful


async def test_key_level_endorsement(contract: Contract) -> None:
    asset_id = _id("sbe")
    await contract.submit("CreateAsset", [asset_id, "red", "1", "x", "1"])
    await contract.submit("SetKeyEndorsement", [asset_id, json.dumps(["SchoolMSP", "PharmacyMSP"])])
    assert json.loads(await contract.evaluate("GetKeyEndorsement", [asset_id])) == [
        "PharmacyMSP", "SchoolMSP",
    ]
    # Hospital + School satisfy the chaincode's MAJORITY but not the key's School AND Pharmacy.
    with pytest.raises(CommitError) as info:
        await contract.submit(
            "TransferAsset", [asset_id, "zed"], endorsing_orgs=["HospitalMSP", "SchoolMSP"]
        )
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    # Discovery knows the key's policy: the Gateway's plan picks School and Pharmacy.
    transaction = await contract.new_proposal("TransferAsset", [asset_id, "zed"]).endorse()
    assert _endorsers(transaction) == ["PharmacyMSP", "SchoolMSP"]
    assert (await (await transaction.submit()).status()).successful
    assert json.loads(await contract.evaluate("ReadAsset", [asset_id]))["Owner"] == "zed"


async def test_get_metadata(contract: Contract) -> None:
    metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
    assert "AssetContract" in metadata["contracts"]
    names = {t["name"] for t in metadata["contracts"]["AssetContract"]["transactions"]}
    assert {"CreateAsset", "ReadAsset", "PutPrivate", "SetKeyEndorsement"} <= names


def test_network_timings_recorded(fabric_network: FabricNetwork) -> None:
    if fabric_network.state_dir is None:
        pytest.skip("network was started outside this session")
    # Generous bounds: on 2 cores up takes ~4 s and deploy ~7 s (docs/deploy.md).
    assert 0 < fabric_network.up_s < 120
    assert 0 < fabric_network.deploy_s < 180
    assert Path(fabric_network.connection).is_file()


async def test_unknown_ca_and_unknown_chaincode(
    fabric_network: FabricNetwork, tmp_path: Path
) -> None:
    settings = from_connection(fabric_network.connection, "HospitalMSP", "User1")
    rogue_dir = tmp_path / "rogue"
    pki.generate_network(rogue_dir)  # the same MSP ids and names, but other CAs
    user = rogue_dir / "organizations/peerOrganizations/hospital.mip.local/users"
    msp = user / "User1@hospital.mip.local" / "msp"
    async with Gateway.connect(
        settings.endpoint,
        Identity("HospitalMSP", (msp / "signcerts" / f"{msp.parent.name}-cert.pem").read_bytes()),
        Signer.from_pem((msp / "keystore" / "priv_sk").read_bytes()),
        tls_root_cert=settings.tls_root_cert,
        server_name_override=settings.server_name_override,
    ) as gw:
        with pytest.raises(AccessDenied) as info:
            await gw.get_network("mipchannel").get_contract("mip").evaluate("WhoAmI")
    assert "creator org unknown, creator is malformed" in info.value.message

    async with Gateway.from_connection(fabric_network.connection, "HospitalMSP", "User1") as gw:
        unknown = gw.get_network("mipchannel").get_contract("no-such-chaincode")
        with pytest.raises(EndorseError) as endorse:
            await unknown.submit("WhoAmI")
    assert "No metadata was found for chaincode no-such-chaincode" in endorse.value.message
