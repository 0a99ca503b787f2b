"""Gateway client against the fake gateway: happy paths, transient data, proposal split."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2
from fabric_testkit import MVCC, Served, User

from gateway.fabric import CommitError, Gateway, Status

CHANNEL = "mipchannel"


async def test_submit_then_evaluate(gateway: Gateway, served: Served) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    result = await contract.submit("CreateAsset", ["a1", b"\x00blue"])
    assert result == b"\x00blue"
    assert await contract.evaluate("ReadAsset", ["a1"]) == b"\x00blue"
    assert served.fake.calls == ["Endorse", "Submit", "CommitStatus", "Evaluate"]
    assert served.fake.state == {"a1": b"\x00blue"}


async def test_proposal_structure(gateway: Gateway, served: Served, user: User) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip", contract_name="Asset")
    proposal = contract.new_proposal("CreateAsset", ["a2", "red"])
    proposal_msg = proposal_pb2.Proposal.FromString(proposal.proposal_bytes)
    header = common_pb2.Header.FromString(proposal_msg.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert channel_header.type == common_pb2.HeaderType.ENDORSER_TRANSACTION
    assert channel_header.channel_id == CHANNEL
    assert channel_header.timestamp.seconds > 0
    assert channel_header.tx_id == proposal.transaction_id
    ext = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    assert ext.chaincode_id.name == "mip"
    assert signature_header.creator == user.identity.serialize()
    assert len(signature_header.nonce) == 24
    assert (
        hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
        == proposal.transaction_id
    )
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal_msg.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    assert spec.chaincode_spec.chaincode_id.name == "mip"
    assert list(spec.chaincode_spec.input.args) == [b"Asset:CreateAsset", b"a2", b"red"]
    # A new proposal gets a new nonce and so a new transaction id.
    assert contract.new_proposal("CreateAsset", ["a2", "red"]).transaction_id != (
        proposal.transaction_id
    )


async def test_transient_data_reaches_endorser_only(gateway: Gateway, served: Served) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    proposal = contract.new_proposal("PutPrivate", ["p1"], transient={"secret": b"s3cr3t"})
    transaction = await proposal.endorse()
    assert served.fake.transients[-1] == {"secret": b"s3cr3t"}
    assert b"s3cr3t" not in transaction.envelope.payload  # never ordered
    submitted = await transaction.submit()
    assert (await submitted.status()).successful
    assert served.fake.private == {"p1": b"s3cr3t"}


async def test_endorse_then_inspect_then_submit(gateway: Gateway, served: Served) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    proposal = contract.new_proposal("CreateAsset", ["a3", "green"], endorsing_orgs=["HospitalMSP"])
    transaction = await proposal.endorse()
    assert served.fake.endorse_requests[-1].endorsing_organizations == ["HospitalMSP"]
    assert transaction.result == b"green"
    assert transaction.transaction_id == proposal.transaction_id
    assert served.fake.state == {}  # endorsed, not committed
    submitted = await transaction.submit()
    status = await submitted.status()
    assert status == Status(
        code=transaction_pb2.TxValidationCode.VALID,
        code_name="VALID",
        block_number=1,
        successful=True,
        transaction_id=proposal.transaction_id,
    )
    assert served.fake.state == {"a3": b"green"}


async def test_submit_async_reports_status(gateway: Gateway, served: Served) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    submitted = await contract.submit_async("CreateAsset", ["a4", "x"])
    assert submitted.result == b"x"
    assert len(submitted.transaction_id) == 64
    status = await submitted.status()
    assert status.successful and status.code_name == "VALID" and status.block_number == 1


async def test_commit_failure_raises_commit_error(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [transaction_pb2.TxValidationCode.ENDORSEMENT_POLICY_FAILURE]
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(CommitError) as info:
        await contract.submit("CreateAsset", ["a5", "x"])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert info.value.validation_code == 10
    assert info.value.block_number == 1
    assert "ENDORSEMENT_POLICY_FAILURE" in str(info.value)
    assert served.fake.state == {}


async def test_submit_async_status_not_successful(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [MVCC]
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    submitted = await contract.submit_async("CreateAsset", ["a6", "x"])
    status = await submitted.status()
    assert not status.successful and status.code_name == "MVCC_READ_CONFLICT"
    with pytest.raises(CommitError):
        await submitted.wait()
