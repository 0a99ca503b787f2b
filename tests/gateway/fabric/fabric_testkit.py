"""Test kit: run-time PKI and a fake `gateway.Gateway` servicer on grpc.aio.

The fake behaves like Fabric 2.5's gateway as seen by a client: it verifies every signature
the client makes (proposal, envelope, commit-status and events requests) against the creator
certificate, insists on low-S, checks tx id = SHA-256(nonce + creator), keeps transient data
apart from the transaction, and reports failures with the same gRPC codes, messages and
`gateway.ErrorDetail` status details that internal/pkg/gateway uses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.rpc import status_pb2
from grpc_status import rpc_status

from gateway.fabric import Identity, Signer
from gateway.fabric.signing import is_low_s, to_low_s

VALID = transaction_pb2.TxValidationCode.VALID
MVCC = transaction_pb2.TxValidationCode.MVCC_READ_CONFLICT
PEER_ADDRESS = "peer0.hospital.mip.local:7051"

# ---------------------------------------------------------------- PKI


@dataclass
class KeyPair:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def issue(
    ca: KeyPair, cn: str, *, hosts: Sequence[str] = (), server: bool = False, client: bool = False
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


@dataclass
class User:
    """A client identity minted for one test."""

    ca: KeyPair
    pair: KeyPair
    identity: Identity
    signer: Signer


# ---------------------------------------------------------------- signature checks


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify(creator: bytes, message: bytes, signature: bytes, msp_ids: set[str]) -> str:
    """Check `signature` over `message` by the SerializedIdentity `creator`; returns its MSP."""
    identity = identities_pb2.SerializedIdentity.FromString(creator)
    if identity.mspid not in msp_ids:
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED, f"access denied: unknown MSP {identity.mspid}"
        )
    cert = x509.load_pem_x509_certificate(identity.id_bytes)
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    if not is_low_s(signature, public_key.curve):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "signature is not in low-S form")
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except Exception:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "bad signature") from None
    return str(identity.mspid)


# ---------------------------------------------------------------- the fake gateway


def rich_status(
    code: grpc.StatusCode, message: str, details: Sequence[gateway_pb2.ErrorDetail] = ()
) -> status_pb2.Status:
    """The google.rpc.Status Fabric's gateway attaches to an error, ErrorDetails packed in."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


@dataclass
class Unpacked:
    tx_id: str
    channel: str
    chaincode: str
    fn: str
    args: list[bytes]
    transient: dict[str, bytes]
    header: common_pb2.Header
    signature_header: common_pb2.SignatureHeader
    channel_header: common_pb2.ChannelHeader
    payload: proposal_pb2.ChaincodeProposalPayload
    proposal_bytes: bytes
    msp_id: str = ""


@dataclass
class ChaincodeOutcome:
    status: int = 200
    message: str = ""
    payload: bytes = b""
    writes: dict[str, bytes] = field(default_factory=dict)
    event: tuple[str, bytes] | None = None


@dataclass
class Block:
    number: int
    events: list[chaincode_event_pb2.ChaincodeEvent]


class FakeGateway(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    """An in-memory asset chaincode behind a Fabric-like gateway.

    Transactions: CreateAsset(id, value) (event AssetCreated, payload id), ReadAsset(id)
    (404-style chaincode error if missing), PutPrivate(id) (stores transient["secret"]),
    Fail(message) (chaincode error 500), Slow(seconds).
    """

    def __init__(self, msp_ids: Sequence[str] = ("HospitalMSP",)) -> None:
        self.msp_ids = set(msp_ids)
        self.state: dict[str, bytes] = {}
        self.private: dict[str, bytes] = {}
        self.pending: dict[str, ChaincodeOutcome] = {}
        self.committed: dict[str, tuple[int, int]] = {}  # tx id -> (code, block)
        self.blocks: list[Block] = [Block(0, [])]  # genesis
        self.commit_codes: list[int] = []  # forced validation codes, popped per submit
        self.denied_fns: set[str] = set()  # preProcess ACL refusals
        self.endorse_error: tuple[grpc.StatusCode, str] | None = None  # whole-call failure
        # Forced endorsement failures, popped per Endorse: an org's detail message each.
        self.endorse_failures: list[str] = []
        self.submit_error: tuple[grpc.StatusCode, str] | None = None
        self.transients: list[dict[str, bytes]] = []
        self.proposals: list[Unpacked] = []
        self.calls: list[str] = []
        self.endorse_requests: list[Any] = []
        self.events_requests: list[Any] = []
        self.peer = make_ca("peer0.hospital.mip.local")  # endorser's signing key
        self._new_block = asyncio.Condition()

    # -- helpers

    async def _fail(
        self,
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        message: str,
        details: Sequence[gateway_pb2.ErrorDetail] = (),
    ) -> None:
        # Packed as Fabric's gateway packs them: ErrorDetails inside a google.rpc.Status trailer.
        await context.abort_with_status(rpc_status.to_status(rich_status(code, message, details)))

    def _detail(self, message: str) -> gateway_pb2.ErrorDetail:
        return gateway_pb2.ErrorDetail(address=PEER_ADDRESS, msp_id="HospitalMSP", message=message)

    def unpack(self, signed: proposal_pb2.SignedProposal) -> Unpacked:
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        if channel_header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "not an endorser transaction")
        expected = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
        if channel_header.tx_id != expected:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "tx id is not sha256(nonce+creator)")
        if len(signature_header.nonce) != 24:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "nonce must be 24 bytes")
        ext = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
        if spec.chaincode_spec.chaincode_id.name != ext.chaincode_id.name:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "chaincode id mismatch")
        msp_id = verify(
            signature_header.creator, signed.proposal_bytes, signed.signature, self.msp_ids
        )
        args = list(spec.chaincode_spec.input.args)
        unpacked = Unpacked(
            tx_id=channel_header.tx_id,
            channel=channel_header.channel_id,
            chaincode=ext.chaincode_id.name,
            fn=args[0].decode(),
            args=args[1:],
            transient=dict(payload.TransientMap),
            header=header,
            signature_header=signature_header,
            channel_header=channel_header,
            payload=payload,
            proposal_bytes=bytes(signed.proposal_bytes),
            msp_id=msp_id,
        )
        self.proposals.append(unpacked)
        self.transients.append(unpacked.transient)
        return unpacked

    async def run_chaincode(self, p: Unpacked) -> ChaincodeOutcome:
        fn = p.fn.split(":")[-1]
        if fn == "CreateAsset":
            asset_id, value = p.args[0].decode(), p.args[1]
            if asset_id in self.state:
                return ChaincodeOutcome(500, f"asset {asset_id} already exists")
            return ChaincodeOutcome(
                payload=value, writes={asset_id: value}, event=("AssetCreated", asset_id.encode())
            )
        if fn == "ReadAsset":
            asset_id = p.args[0].decode()
            if asset_id not in self.state:
                return ChaincodeOutcome(404, f"asset {asset_id} does not exist")
            return ChaincodeOutcome(payload=self.state[asset_id])
        if fn == "PutPrivate":
            secret = p.transient.get("secret")
            if secret is None:
                return ChaincodeOutcome(400, "transient field 'secret' is required")
            self.private[p.args[0].decode()] = secret
            return ChaincodeOutcome(payload=b"stored")
        if fn == "Fail":
            return ChaincodeOutcome(500, p.args[0].decode())
        if fn == "Slow":
            await asyncio.sleep(float(p.args[0].decode()))
            return ChaincodeOutcome(payload=b"slow")
        return ChaincodeOutcome(500, f"unknown transaction {p.fn}")

    def _access_denied(self, p: Unpacked) -> str | None:
        if p.fn in self.denied_fns:
            return (
                f"error validating proposal: access denied: channel [{p.channel}] "
                f"creator org [{p.msp_id}]"
            )
        return None

    # -- the five RPCs

    async def Evaluate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append("Evaluate")
        try:
            p = self.unpack(request.proposed_transaction)
        except Refused as exc:
            await self._fail(context, exc.code, exc.message)
            raise AssertionError("unreachable") from None
        assert request.transaction_id == p.tx_id and request.channel_id == p.channel
        denied = self._access_denied(p)
        if denied:
            # Fabric: preProcess error -> FAILED_PRECONDITION, not retried.
            await self._fail(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "evaluate call to endorser returned error: " + denied,
                [self._detail(denied)],
            )
        outcome = await self.run_chaincode(p)
        if outcome.status >= 400:
            message = f"chaincode response {outcome.status}, {outcome.message}"
            await self._fail(
                context,
                grpc.StatusCode.UNKNOWN,
                "evaluate call to endorser returned error: " + message,
                [self._detail(message)],
            )
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=outcome.payload)
        )

    async def Endorse(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append("Endorse")
        self.endorse_requests.append(request)
        if self.endorse_error is not None:
            code, message = self.endorse_error
            await self._fail(context, code, message)
        if self.endorse_failures:
            await self._fail(
                context, grpc.StatusCode.ABORTED, "failed to collect enough transaction "
                "endorsements, see attached details for more info",
                [self._detail(self.endorse_failures.pop(0))])
        try:
            p = self.unpack(request.proposed_transaction)
        except Refused as exc:
            await self._fail(context, exc.code, exc.message)
            raise AssertionError("unreachable") from None
        denied = self._access_denied(p)
        if denied:
            await self._fail(
                context,
                grpc.StatusCode.ABORTED,
                "failed to endorse transaction, see attached details for more info",
                [self._detail(denied)],
            )
        outcome = await self.run_chaincode(p)
        if outcome.status >= 400:
            await self._fail(
                context,
                grpc.StatusCode.ABORTED,
                "failed to endorse transaction, see attached details for more info",
                [self._detail(f"chaincode response {outcome.status}, {outcome.message}")],
            )
        self.pending[p.tx_id] = outcome
        return gateway_pb2.EndorseResponse(prepared_transaction=self._envelope(p, outcome))

    def _envelope(self, p: Unpacked, outcome: ChaincodeOutcome) -> common_pb2.Envelope:
        event = b""
        if outcome.event:
            event = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=p.chaincode,
                tx_id=p.tx_id,
                event_name=outcome.event[0],
                payload=outcome.event[1],
            ).SerializeToString()
        action = proposal_pb2.ChaincodeAction(
            response=proposal_response_pb2.Response(status=200, payload=outcome.payload),
            events=event,
        )
        prp = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=hashlib.sha256(p.proposal_bytes).digest(),
            extension=action.SerializeToString(),
        ).SerializeToString()
        endorser = identities_pb2.SerializedIdentity(
            mspid="HospitalMSP", id_bytes=self.peer.cert_pem
        ).SerializeToString()
        endorsement = proposal_response_pb2.Endorsement(
            endorser=endorser,
            signature=to_low_s(
                self.peer.key.sign(prp + endorser, ec.ECDSA(hashes.SHA256())), ec.SECP256R1()
            ),
        )
        # The ordered transaction must not carry the transient map.
        public_payload = proposal_pb2.ChaincodeProposalPayload(input=p.payload.input)
        action_payload = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=public_payload.SerializeToString(),
            action=transaction_pb2.ChaincodeEndorsedAction(
                proposal_response_payload=prp, endorsements=[endorsement]
            ),
        )
        tx = transaction_pb2.Transaction(
            actions=[
                transaction_pb2.TransactionAction(
                    header=p.header.signature_header, payload=action_payload.SerializeToString()
                )
            ]
        )
        payload = common_pb2.Payload(header=p.header, data=tx.SerializeToString())
        return common_pb2.Envelope(payload=payload.SerializeToString())

    async def Submit(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append("Submit")
        if self.submit_error is not None:
            code, message = self.submit_error
            await self._fail(
                context,
                code,
                message,
                [
                    gateway_pb2.ErrorDetail(
                        address="orderer.mip.local:7050",
                        msp_id="OrdererMSP",
                        message="connection refused",
                    )
                ],
            )
        envelope = request.prepared_transaction
        payload = common_pb2.Payload.FromString(envelope.payload)
        sig_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        try:
            verify(sig_header.creator, envelope.payload, envelope.signature, self.msp_ids)
        except Refused as exc:
            await self._fail(context, exc.code, exc.message)
        tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
        assert tx_id == request.transaction_id
        outcome = self.pending.pop(tx_id)
        code = self.commit_codes.pop(0) if self.commit_codes else VALID
        block = Block(len(self.blocks), [])
        if code == VALID:
            self.state.update(outcome.writes)
            if outcome.event:
                block.events.append(
                    chaincode_event_pb2.ChaincodeEvent(
                        chaincode_id="mip",
                        tx_id=tx_id,
                        event_name=outcome.event[0],
                        payload=outcome.event[1],
                    )
                )
        self.committed[tx_id] = (code, block.number)
        async with self._new_block:
            self.blocks.append(block)
            self._new_block.notify_all()
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append("CommitStatus")
        inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        try:
            verify(inner.identity, request.request, request.signature, self.msp_ids)
        except Refused as exc:
            await self._fail(context, exc.code, exc.message)
        code, block = self.committed[inner.transaction_id]
        return gateway_pb2.CommitStatusResponse(result=code, block_number=block)

    async def ChaincodeEvents(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append("ChaincodeEvents")
        inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        self.events_requests.append(inner)
        try:
            verify(inner.identity, request.request, request.signature, self.msp_ids)
        except Refused as exc:
            await self._fail(context, exc.code, exc.message)
        position = inner.start_position
        if position.HasField("specified"):
            number = position.specified.number
        else:
            number = len(self.blocks)  # next commit
        skip_until = inner.after_transaction_id
        while True:
            async with self._new_block:
                await self._new_block.wait_for(lambda n=number: len(self.blocks) > n)
            block = self.blocks[number]
            events = [e for e in block.events if e.chaincode_id == inner.chaincode_id]
            if skip_until and number == position.specified.number:
                ids = [e.tx_id for e in events]
                if skip_until in ids:
                    events = events[ids.index(skip_until) + 1 :]
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(events=events, block_number=number)
            number += 1


@dataclass
class Served:
    fake: FakeGateway
    server: grpc.aio.Server
    port: int
    tls_ca: KeyPair | None
    client_ca: KeyPair | None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


async def serve(
    fake: FakeGateway,
    *,
    tls: bool = True,
    mutual: bool = False,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
) -> Served:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server)
    tls_ca = client_ca = None
    if tls:
        tls_ca = make_ca("tlsca.hospital.mip.local")
        server_pair = issue(tls_ca, "peer0.hospital.mip.local", hosts=hosts, server=True)
        client_roots = None
        if mutual:
            client_ca = make_ca("tlsca.clients.mip.local")
            client_roots = client_ca.cert_pem
        credentials = grpc.ssl_server_credentials(
            [(server_pair.key_pem, server_pair.cert_pem)],
            root_certificates=client_roots,
            require_client_auth=mutual,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Served(fake, server, port, tls_ca, client_ca)


Factory = Callable[..., Any]
