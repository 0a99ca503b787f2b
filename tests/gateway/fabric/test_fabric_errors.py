"""Every error mapping, asserted against Fabric-shaped failures from the fake gateway."""

from __future__ import annotations

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_testkit import PEER_ADDRESS, Served, User, rich_status
from google.protobuf import timestamp_pb2

from gateway.fabric import (
    AccessDenied,
    ChaincodeError,
    CommitStatusError,
    DeadlineExceeded,
    Deadlines,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    Gateway,
    GatewayError,
    SubmitError,
)
from gateway.fabric.errors import CommitError, from_rpc_error
from gateway.fabric.status_details import decode_error_details

CHANNEL = "mipchannel"


async def test_evaluate_chaincode_error_message_extracted(gateway: Gateway) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(ChaincodeError) as info:
        await contract.evaluate("ReadAsset", ["missing"])
    err = info.value
    assert isinstance(err, EvaluateError) and not isinstance(err, EndorseError)
    assert err.code == grpc.StatusCode.UNKNOWN
    assert err.chaincode_status == 404
    assert err.chaincode_message == "asset missing does not exist"
    assert err.details == (
        ErrorDetail(
            PEER_ADDRESS, "HospitalMSP", "chaincode response 404, asset missing does not exist"
        ),
    )
    assert err.transaction_id and err.transaction_id in str(err)


async def test_endorse_chaincode_error_details(gateway: Gateway) -> None:
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(EndorseError) as info:
        await contract.submit("Fail", ["quota, exceeded: 3 of 3"])
    err = info.value
    assert isinstance(err, ChaincodeError)
    assert err.code == grpc.StatusCode.ABORTED
    assert err.message == "failed to endorse transaction, see attached details for more info"
    assert err.chaincode_status == 500
    assert err.chaincode_message == "quota, exceeded: 3 of 3"
    assert [d.msp_id for d in err.details] == ["HospitalMSP"]
    assert "chaincode response 500" in str(err)


async def test_endorsement_failure_without_chaincode_error(
    gateway: Gateway, served: Served
) -> None:
    served.fake.endorse_error = (
        grpc.StatusCode.UNAVAILABLE,
        "no peers available to evaluate chaincode mip in channel mipchannel",
    )
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(EndorseError) as info:
        await contract.submit("CreateAsset", ["x", "y"])
    assert type(info.value) is EndorseError
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.details == ()


async def test_access_denied_on_evaluate_and_endorse(gateway: Gateway, served: Served) -> None:
    served.fake.denied_fns = {"ReadAsset", "CreateAsset"}
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(AccessDenied) as info:
        await contract.evaluate("ReadAsset", ["a"])
    assert isinstance(info.value, EvaluateError)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(AccessDenied) as info2:
        await contract.submit("CreateAsset", ["a", "b"])
    assert isinstance(info2.value, EndorseError)
    assert "access denied" in info2.value.details[0].message


async def test_unknown_msp_is_permission_denied(served: Served, user: User) -> None:
    served.fake.msp_ids = {"SchoolMSP"}
    assert served.tls_ca is not None
    async with Gateway.connect(
        served.endpoint, user.identity, user.signer, tls_root_cert=served.tls_ca.cert_pem
    ) as gw:
        with pytest.raises(AccessDenied) as info:
            await gw.get_network(CHANNEL).get_contract("mip").evaluate("ReadAsset", ["a"])
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED


async def test_submit_error_details(gateway: Gateway, served: Served) -> None:
    served.fake.submit_error = (
        grpc.StatusCode.UNAVAILABLE,
        "no orderers could successfully process transaction",
    )
    contract = gateway.get_network(CHANNEL).get_contract("mip")
    with pytest.raises(SubmitError) as info:
        await contract.submit("CreateAsset", ["s1", "v"])
    assert info.value.details == (
        ErrorDetail("orderer.mip.local:7050", "OrdererMSP", "connection refused"),
    )
    assert info.value.transaction_id


async def test_client_deadline_exceeded(served: Served, user: User) -> None:
    assert served.tls_ca is not None
    async with Gateway.connect(
        served.endpoint,
        user.identity,
        user.signer,
        tls_root_cert=served.tls_ca.cert_pem,
        deadlines=Deadlines(evaluate=0.2, endorse=0.2),
    ) as gw:
        contract = gw.get_network(CHANNEL).get_contract("mip")
        with pytest.raises(DeadlineExceeded) as info:
            await contract.evaluate("Slow", ["1.0"])
        assert isinstance(info.value, EvaluateError)
        with pytest.raises(DeadlineExceeded) as info2:
            await contract.submit("Slow", ["1.0"])
        assert isinstance(info2.value, EndorseError)
        # A per-call timeout overrides the default.
        assert await contract.new_proposal("Slow", ["0.3"]).evaluate(timeout=3) == b"slow"


async def test_gateway_side_deadline(gateway: Gateway, served: Served) -> None:
    served.fake.endorse_error = (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "endorsement timeout expired while collecting first endorsement",
    )
    with pytest.raises(DeadlineExceeded):
        await gateway.get_network(CHANNEL).get_contract("mip").submit("CreateAsset", ["d", "e"])


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailer: bytes | None) -> None:
        self._code, self._details = code, details
        self._metadata = () if trailer is None else (("grpc-status-details-bin", trailer),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._metadata


def test_status_details_roundtrip_and_malformed_trailer() -> None:
    detail = gateway_pb2.ErrorDetail(address="a:1", msp_id="M", message="m")
    status = rich_status(grpc.StatusCode.ABORTED, "aborted", [detail, detail])
    # A detail of another type (here a bare Timestamp) is skipped, as Fabric's Go client does.
    status.details.add().Pack(timestamp_pb2.Timestamp(seconds=1))
    data = status.SerializeToString()
    assert [d.message for d in decode_error_details(data)] == ["m", "m"]
    err = from_rpc_error(_FakeRpcError(grpc.StatusCode.ABORTED, "aborted", data), EndorseError)
    assert [d.address for d in err.details] == ["a:1", "a:1"]
    err = from_rpc_error(_FakeRpcError(grpc.StatusCode.ABORTED, "x", b"\xff\xff"), EndorseError)
    assert type(err) is EndorseError and err.details == ()


def test_status_details_disagreeing_with_the_call_are_dropped() -> None:
    # grpcio-status refuses a trailer whose code or message differs from the call's own; the
    # client then reports the call's code and message without details instead of failing.
    detail = gateway_pb2.ErrorDetail(address="a:1", msp_id="M", message="chaincode response 500, x")
    data = rich_status(grpc.StatusCode.ABORTED, "aborted", [detail]).SerializeToString()
    for code, message in ((grpc.StatusCode.UNKNOWN, "aborted"), (grpc.StatusCode.ABORTED, "x")):
        err = from_rpc_error(_FakeRpcError(code, message, data), EndorseError)
        assert type(err) is EndorseError and err.details == ()


def test_commit_status_error_mapping() -> None:
    err = from_rpc_error(
        _FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "identity not authorized", None),
        CommitStatusError,
        "tx1",
    )
    assert isinstance(err, CommitStatusError) and isinstance(err, AccessDenied)
    assert err.transaction_id == "tx1"
    assert not isinstance(err, CommitError)
    # Chaincode responses below 400 are not chaincode errors.
    ok = from_rpc_error(
        _FakeRpcError(grpc.StatusCode.ABORTED, "chaincode response 200, fine", None), EndorseError
    )
    assert type(ok) is EndorseError
    assert isinstance(ok, GatewayError)
