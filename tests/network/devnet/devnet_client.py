"""A small raw Gateway client for devnet tests: full control over what gets signed and sent."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status

from network.devnet import pki
from network.devnet.messages import compute_txid
from network.devnet.orgs import DEFAULT_PEER_ORGS

DOMAINS = {o.msp_id: o.domain for o in DEFAULT_PEER_ORGS}
CHANNEL = "mipchannel"
CHAINCODE = "mip"


def high_s(signature: bytes) -> bytes:
    """The same ECDSA signature with S replaced by n - S (valid maths, refused by Fabric)."""
    r, s = decode_dss_signature(signature)
    n = pki.curve_order()
    return encode_dss_signature(r, n - s if s < n // 2 else s)


@dataclass
class Built:
    signed: proposal_pb2.SignedProposal
    txid: str


class TestClient:
    __test__ = False  # a helper, not a pytest test class
    def __init__(
        self,
        data_dir: Path,
        port: int,
        org: str = "HospitalMSP",
        user: str = "User1",
        signer: Any = None,
    ) -> None:
        domain = DOMAINS[org]
        msp_dir = (
            data_dir
            / "organizations"
            / "peerOrganizations"
            / domain
            / "users"
            / f"{user}@{domain}"
            / "msp"
        )
        self.signer = signer or pki.msp_signing_identity(msp_dir, org)
        self.creator = self.signer.serialized
        tls_root = (
            data_dir
            / "organizations"
            / "peerOrganizations"
            / "hospital.mip.local"
            / "tlsca"
            / "tlsca.hospital.mip.local-cert.pem"
        ).read_bytes()
        self.channel = grpc.aio.secure_channel(
            f"127.0.0.1:{port}",
            grpc.ssl_channel_credentials(tls_root),
            options=[("grpc.ssl_target_name_override", "peer0.hospital.mip.local")],
        )
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    def proposal(
        self,
        fn: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        chaincode: str = CHAINCODE,
        channel: str = CHANNEL,
        timestamp_s: float | None = None,
    ) -> Built:
        """A signed proposal; `timestamp_s` dates it (default now), as any client may."""
        nonce = os.urandom(24)
        txid = compute_txid(nonce, self.creator)
        ts = timestamp_pb2.Timestamp()
        if timestamp_s is None:
            ts.GetCurrentTime()
        else:
            ts.FromNanoseconds(round(timestamp_s * 1e9))
        ext = proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
        )
        chdr = common_pb2.ChannelHeader(
            type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
            channel_id=channel,
            tx_id=txid,
            timestamp=ts,
            extension=ext.SerializeToString(),
        )
        shdr = common_pb2.SignatureHeader(creator=self.creator, nonce=nonce)
        spec = chaincode_pb2.ChaincodeInvocationSpec(
            chaincode_spec=chaincode_pb2.ChaincodeSpec(
                type=chaincode_pb2.ChaincodeSpec.GOLANG,
                chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
                input=chaincode_pb2.ChaincodeInput(
                    args=[fn.encode()] + [a if isinstance(a, bytes) else a.encode() for a in args]
                ),
            )
        )
        cpp = proposal_pb2.ChaincodeProposalPayload(
            input=spec.SerializeToString(), TransientMap=dict(transient or {})
        )
        prop = proposal_pb2.Proposal(
            header=common_pb2.Header(
                channel_header=chdr.SerializeToString(), signature_header=shdr.SerializeToString()
            ).SerializeToString(),
            payload=cpp.SerializeToString(),
        )
        pb = prop.SerializeToString()
        return Built(
            proposal_pb2.SignedProposal(proposal_bytes=pb, signature=self.signer.sign(pb)), txid
        )

    async def evaluate(self, built: Built, targets: Sequence[str] = ()) -> Any:
        resp = await self.stub.Evaluate(
            gateway_pb2.EvaluateRequest(
                transaction_id=built.txid,
                channel_id=CHANNEL,
                proposed_transaction=built.signed,
                target_organizations=list(targets),
            )
        )
        return resp.result

    async def endorse(self, built: Built, orgs: Sequence[str] = ()) -> common_pb2.Envelope:
        resp = await self.stub.Endorse(
            gateway_pb2.EndorseRequest(
                transaction_id=built.txid,
                channel_id=CHANNEL,
                proposed_transaction=built.signed,
                endorsing_organizations=list(orgs),
            )
        )
        return resp.prepared_transaction

    async def submit(self, built: Built, env: common_pb2.Envelope) -> None:
        signed = common_pb2.Envelope(payload=env.payload, signature=self.signer.sign(env.payload))
        await self.stub.Submit(
            gateway_pb2.SubmitRequest(
                transaction_id=built.txid, channel_id=CHANNEL, prepared_transaction=signed
            )
        )

    async def status(self, txid: str, timeout: float = 10.0) -> tuple[int, int]:
        req = gateway_pb2.CommitStatusRequest(
            transaction_id=txid, channel_id=CHANNEL, identity=self.creator
        ).SerializeToString()
        resp = await self.stub.CommitStatus(
            gateway_pb2.SignedCommitStatusRequest(request=req, signature=self.signer.sign(req)),
            timeout=timeout,
        )
        return int(resp.result), int(resp.block_number)

    async def submit_tx(
        self,
        fn: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        orgs: Sequence[str] = (),
    ) -> tuple[str, int, int]:
        built = self.proposal(fn, *args, transient=transient)
        env = await self.endorse(built, orgs)
        await self.submit(built, env)
        code, block = await self.status(built.txid)
        return built.txid, code, block

    async def query(self, fn: str, *args: str) -> bytes:
        result = await self.evaluate(self.proposal(fn, *args))
        return bytes(result.payload)

    def events(
        self, start_block: int | None = None, after_txid: str = ""
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        req = gateway_pb2.ChaincodeEventsRequest(
            channel_id=CHANNEL,
            chaincode_id=CHAINCODE,
            identity=self.creator,
            after_transaction_id=after_txid,
        )
        if start_block is not None:
            req.start_position.CopyFrom(
                ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))
            )
        raw = req.SerializeToString()
        return self.stub.ChaincodeEvents(
            gateway_pb2.SignedChaincodeEventsRequest(request=raw, signature=self.signer.sign(raw))
        )  # type: ignore[no-any-return]


def error_details(exc: grpc.aio.AioRpcError) -> list[gateway_pb2.ErrorDetail]:
    """The ErrorDetails devnet packed into the call's google.rpc.Status, read with grpcio-status
    as any client would; a trailer that disagrees with the call's code or message fails here."""
    status = rpc_status.from_call(exc)
    if status is None:
        return []
    details = []
    for item in status.details:
        detail = gateway_pb2.ErrorDetail()
        assert item.Unpack(detail), item.type_url
        details.append(detail)
    return details


def asset_json(raw: bytes) -> dict[str, Any]:
    return dict(json.loads(raw))


TEST_COLLECTIONS = [
    {"name": "medical", "policy": "OR('HospitalMSP.member')", "requiredPeerCount": 0,
     "maxPeerCount": 1, "blockToLive": 0, "memberOnlyRead": True, "memberOnlyWrite": True,
     "endorsementPolicy": {"signaturePolicy": "OR('HospitalMSP.member')"}},
    {"name": "shared", "policy": "OR('HospitalMSP.member', 'SchoolMSP.member')",
     "requiredPeerCount": 0, "maxPeerCount": 1, "blockToLive": 0,
     "memberOnlyRead": False, "memberOnlyWrite": False},
    {"name": "hosponly", "policy": "OR('HospitalMSP.member')", "requiredPeerCount": 0,
     "maxPeerCount": 1, "blockToLive": 0, "memberOnlyRead": False, "memberOnlyWrite": False},
    {"name": "shortlived", "policy": "OR('HospitalMSP.member', 'SchoolMSP.member')",
     "requiredPeerCount": 0, "maxPeerCount": 1, "blockToLive": 2,
     "memberOnlyRead": True, "memberOnlyWrite": True},
]


def write_test_collections(directory: Path) -> Path:
    path = directory / "collections.json"
    path.write_text(json.dumps(TEST_COLLECTIONS))
    return path


async def start_devnet(data_dir: Path, **overrides: Any) -> Any:
    from network.devnet.config import DevnetConfig
    from network.devnet.server import Devnet

    data_dir.mkdir(parents=True, exist_ok=True)
    overrides.setdefault("collections", str(write_test_collections(data_dir)))
    config = DevnetConfig(data_dir=data_dir, port=0, **overrides)
    devnet = Devnet(config)
    await devnet.start()
    return devnet
