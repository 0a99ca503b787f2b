"""Test kit for the chaincode shim: run-time PKI, real SignedProposals and a fake peer.

The fake peer plays the Fabric 2.5 peer's side of the chaincode protocol over a real gRPC
connection to the shim server: it answers REGISTER, sends TRANSACTION messages and services
the shim's state requests from dicts, recording every message it receives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from chaincode.shim._protos import (
    chaincode_pb2,
    common_pb2,
    identities_pb2,
    kv_query_result_pb2,
    proposal_pb2,
    proposal_response_pb2,
    shim_pb2,
    shim_pb2_grpc,
    timestamp_pb2,
)
from chaincode.shim.config import ServerConfig, TLSConfig
from chaincode.shim.contract import Contract
from chaincode.shim.router import Router
from chaincode.shim.server import ChaincodeServer

MSG = shim_pb2.ChaincodeMessage
CHANNEL = "mipchannel"
CHAINCODE_ID = "mip_1.0:0123456789abcdef"
ATTR_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")


# --- PKI -----------------------------------------------------------------------------------


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


def make_name(**parts: str | list[str]) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
    }
    attrs = []
    for label, value in parts.items():
        for v in value if isinstance(value, list) else [value]:
            attrs.append(x509.NameAttribute(oids[label], v))
    return x509.Name(attrs)


def make_ca(cn: str = "ca.hospital.mip.local") -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = make_name(C="US", ST="California", L="San Francisco", O="hospital.mip.local", CN=cn)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def issue(
    ca: KeyPair,
    subject: x509.Name,
    attrs: dict[str, str] | None = None,
    sans: Sequence[str] = (),
    server: bool = False,
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if attrs is not None:
        value = json.dumps({"attrs": attrs}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTR_OID, value), False)
    if sans:
        import ipaddress

        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


@dataclass
class User:
    msp_id: str
    pair: KeyPair

    @property
    def creator(self) -> bytes:
        return identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.pair.cert_pem
        ).SerializeToString()


def make_user(
    msp_id: str = "HospitalMSP",
    cn: str = "User1@hospital.mip.local",
    attrs: dict[str, str] | None = None,
    ous: list[str] | None = None,
    ca: KeyPair | None = None,
) -> User:
    ca = ca or make_ca()
    subject = make_name(C="US", ST="California", L="San Francisco", OU=ous or ["client"], CN=cn)
    return User(msp_id, issue(ca, subject, attrs=attrs))


# --- proposals -----------------------------------------------------------------------------


@dataclass
class BuiltProposal:
    signed: Any
    txid: str
    nonce: bytes
    creator: bytes
    epoch: int
    timestamp: Any


def build_proposal(
    user: User,
    args: Sequence[bytes],
    transient: dict[str, bytes] | None = None,
    channel: str = CHANNEL,
    chaincode: str = "mip",
    epoch: int = 0,
    header_type: int = common_pb2.ENDORSER_TRANSACTION,
) -> BuiltProposal:
    """A SignedProposal as a Fabric client builds it (tx id = SHA-256(nonce || creator))."""
    nonce = os.urandom(24)
    creator = user.creator
    txid = hashlib.sha256(nonce + creator).hexdigest()
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
    )
    channel_header = common_pb2.ChannelHeader(
        type=header_type,
        channel_id=channel,
        tx_id=txid,
        epoch=epoch,
        timestamp=timestamp,
        extension=extension.SerializeToString(),
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.GOLANG,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
            input=chaincode_pb2.ChaincodeInput(args=list(args)),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString(), TransientMap=transient or {}
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    proposal_bytes = proposal.SerializeToString()
    signature = user.pair.key.sign(proposal_bytes, ec.ECDSA(hashes.SHA256()))
    signed = proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=signature)
    return BuiltProposal(signed, txid, nonce, creator, epoch, timestamp)


# --- the fake peer -------------------------------------------------------------------------


@dataclass
class _Iterator:
    batches: list[list[tuple[str, bytes]]]
    metadata: bytes


@dataclass
class Outcome:
    """The shim's final message for a transaction."""

    message: Any

    @property
    def type(self) -> int:
        return int(self.message.type)

    @property
    def response(self) -> Any:
        assert self.message.type == MSG.COMPLETED, f"not COMPLETED: {self.message.type}"
        return proposal_response_pb2.Response.FromString(self.message.payload)

    @property
    def status(self) -> int:
        return int(self.response.status)

    @property
    def payload(self) -> bytes:
        return bytes(self.response.payload)

    @property
    def text(self) -> str:
        return str(self.response.message)

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class FakePeer:
    """The peer side of one chaincode stream, with an in-memory world state."""

    channel: grpc.aio.Channel
    state: dict[tuple[str, str], bytes] = field(default_factory=dict)
    metadata: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)
    # Request type -> error text: the peer answers that request type with ERROR.
    fail: dict[int, str] = field(default_factory=dict)
    batch_size: int = 100
    # Answer requests after a random short delay, so replies interleave across transactions.
    jitter: bool = False
    registered_id: str = ""
    # key -> history entries (tx id, value, is_delete), for GET_HISTORY_FOR_KEY.
    history: dict[str, list[tuple[str, bytes, bool]]] = field(default_factory=dict)
    # "name/channel" or "name" -> (status, message, payload), for INVOKE_CHAINCODE.
    chaincodes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    keepalives: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        self._pending: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._iterators: dict[str, _Iterator] = {}
        self._write_lock = asyncio.Lock()
        self._next_iterator = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        stub = shim_pb2_grpc.ChaincodeStub(self.channel)
        self._call = stub.Connect()
        first = await asyncio.wait_for(self._call.read(), 5)
        assert first.type == MSG.REGISTER, first
        self.registered_id = chaincode_pb2.ChaincodeID.FromString(first.payload).name
        await self.write(MSG(type=MSG.REGISTERED))
        await self.write(MSG(type=MSG.READY))
        self._reader = asyncio.create_task(self._read())

    async def write(self, msg: Any) -> None:
        async with self._write_lock:
            await self._call.write(msg)

    async def close(self) -> None:
        self._reader.cancel()
        self._call.cancel()
        for task in self._tasks:
            task.cancel()

    def requests(self, msg_type: int, txid: str | None = None) -> list[Any]:
        return [m for m in self.received if m.type == msg_type and (txid is None or m.txid == txid)]

    async def invoke(
        self,
        args: Sequence[bytes | str],
        user: User | None = None,
        transient: dict[str, bytes] | None = None,
        txid: str | None = None,
        channel: str = CHANNEL,
        msg_type: int = MSG.TRANSACTION,
        proposal: BuiltProposal | None = None,
        timeout: float = 10,
    ) -> Outcome:
        raw = [a.encode() if isinstance(a, str) else a for a in args]
        built = proposal or build_proposal(user or default_user(), raw, transient, channel)
        txid = txid or built.txid
        future = self.expect(channel, txid)
        await self.write(
            MSG(
                type=msg_type,
                payload=chaincode_pb2.ChaincodeInput(args=raw).SerializeToString(),
                txid=txid,
                channel_id=channel,
                proposal=built.signed,
            )
        )
        return Outcome(await asyncio.wait_for(future, timeout))

    def expect(self, channel: str, txid: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[(channel, txid)] = future
        return future

    async def _read(self) -> None:
        while True:
            msg = await self._call.read()
            if msg is grpc.aio.EOF:
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError("shim closed the stream"))
                return
            self.received.append(msg)
            if msg.type in (MSG.COMPLETED, MSG.ERROR):
                waiting = self._pending.pop((msg.channel_id, msg.txid), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(msg)
            elif msg.type == MSG.KEEPALIVE:
                self.keepalives.put_nowait(msg)
            elif self.jitter:
                task = asyncio.create_task(self._answer_later(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await self.write(self._answer(msg))

    async def _answer_later(self, msg: Any) -> None:
        await asyncio.sleep(random.random() * 0.002)
        await self.write(self._answer(msg))

    def _answer(self, msg: Any) -> Any:
        def reply(payload: bytes = b"") -> Any:
            return MSG(type=MSG.RESPONSE, payload=payload, txid=msg.txid, channel_id=msg.channel_id)

        if msg.type in self.fail:
            return MSG(
                type=MSG.ERROR,
                payload=self.fail[msg.type].encode(),
                txid=msg.txid,
                channel_id=msg.channel_id,
            )
        t = msg.type
        if t == MSG.GET_STATE:
            r = shim_pb2.GetState.FromString(msg.payload)
            return reply(self.state.get((r.collection, r.key), b""))
        if t == MSG.PUT_STATE:
            r = shim_pb2.PutState.FromString(msg.payload)
            self.state[(r.collection, r.key)] = r.value
            return reply()
        if t in (MSG.DEL_STATE, MSG.PURGE_PRIVATE_DATA):
            r = shim_pb2.DelState.FromString(msg.payload)
            self.state.pop((r.collection, r.key), None)
            return reply()
        if t == MSG.GET_PRIVATE_DATA_HASH:
            r = shim_pb2.GetState.FromString(msg.payload)
            value = self.state.get((r.collection, r.key))
            return reply(hashlib.sha256(value).digest() if value is not None else b"")
        if t == MSG.GET_STATE_METADATA:
            r = shim_pb2.GetStateMetadata.FromString(msg.payload)
            entries = self.metadata.get((r.collection, r.key), {})
            result = shim_pb2.StateMetadataResult(
                entries=[shim_pb2.StateMetadata(metakey=k, value=v) for k, v in entries.items()]
            )
            return reply(result.SerializeToString())
        if t == MSG.PUT_STATE_METADATA:
            r = shim_pb2.PutStateMetadata.FromString(msg.payload)
            self.metadata.setdefault((r.collection, r.key), {})[r.metadata.metakey] = (
                r.metadata.value
            )
            return reply()
        if t == MSG.GET_STATE_BY_RANGE:
            r = shim_pb2.GetStateByRange.FromString(msg.payload)
            return reply(self._range(r).SerializeToString())
        if t == MSG.QUERY_STATE_NEXT:
            r = shim_pb2.QueryStateNext.FromString(msg.payload)
            return reply(self._next_batch(r.id).SerializeToString())
        if t == MSG.QUERY_STATE_CLOSE:
            r = shim_pb2.QueryStateClose.FromString(msg.payload)
            self._iterators.pop(r.id, None)
            return reply(shim_pb2.QueryResponse(has_more=False, id=r.id).SerializeToString())
        if t == MSG.GET_HISTORY_FOR_KEY:
            r = shim_pb2.GetHistoryForKey.FromString(msg.payload)
            response = shim_pb2.QueryResponse(
                results=[
                    shim_pb2.QueryResultBytes(
                        resultBytes=kv_query_result_pb2.KeyModification(
                            tx_id=txid, value=value, is_delete=deleted
                        ).SerializeToString()
                    )
                    for txid, value, deleted in self.history.get(r.key, [])
                ],
                id="history",
            )
            return reply(response.SerializeToString())
        if t == MSG.GET_QUERY_RESULT:
            # What a LevelDB peer answers.
            return MSG(
                type=MSG.ERROR,
                payload=b"ExecuteQuery not supported for leveldb",
                txid=msg.txid,
                channel_id=msg.channel_id,
            )
        if t == MSG.INVOKE_CHAINCODE:
            spec = chaincode_pb2.ChaincodeSpec.FromString(msg.payload)
            status, text, payload = self.chaincodes[spec.chaincode_id.name]
            inner = MSG(
                type=MSG.COMPLETED,
                payload=proposal_response_pb2.Response(
                    status=status, message=text, payload=payload
                ).SerializeToString(),
            )
            return reply(inner.SerializeToString())
        return MSG(
            type=MSG.ERROR,
            payload=f"fake peer does not handle {t}".encode(),
            txid=msg.txid,
            channel_id=msg.channel_id,
        )

    def _range(self, request: Any) -> Any:
        keys = sorted(
            k
            for (c, k) in self.state
            if c == request.collection
            and k >= request.startKey
            and (not request.endKey or k < request.endKey)
        )
        metadata = b""
        if request.metadata:
            query = shim_pb2.QueryMetadata.FromString(request.metadata)
            if query.bookmark:
                keys = [k for k in keys if k >= query.bookmark]
            page, rest = keys[: query.pageSize], keys[query.pageSize :]
            keys = page
            metadata = shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(page), bookmark=rest[0] if rest else ""
            ).SerializeToString()
        items = [(k, self.state[(request.collection, k)]) for k in keys]
        batches = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        self._next_iterator += 1
        iterator_id = f"iter{self._next_iterator}"
        self._iterators[iterator_id] = _Iterator(batches or [[]], metadata)
        return self._next_batch(iterator_id)

    def _next_batch(self, iterator_id: str) -> Any:
        iterator = self._iterators[iterator_id]
        batch = iterator.batches.pop(0)
        has_more = bool(iterator.batches)
        response = shim_pb2.QueryResponse(
            results=[
                shim_pb2.QueryResultBytes(
                    resultBytes=kv_query_result_pb2.KV(
                        namespace="mip", key=k, value=v
                    ).SerializeToString()
                )
                for k, v in batch
            ],
            has_more=has_more,
            id=iterator_id,
        )
        if not has_more:
            # The real peer attaches pagination metadata to the last batch and drops the
            # exhausted iterator.
            response.metadata = iterator.metadata
            del self._iterators[iterator_id]
        return response

    @property
    def open_iterators(self) -> int:
        return len(self._iterators)


_DEFAULT_USER: User | None = None


def default_user() -> User:
    global _DEFAULT_USER
    if _DEFAULT_USER is None:
        _DEFAULT_USER = make_user(attrs={"mip.role": "doctor"})
    return _DEFAULT_USER


# --- running a shim ------------------------------------------------------------------------


@dataclass
class Running:
    server: ChaincodeServer
    port: int
    router: Router


async def start_shim(contracts: Sequence[Contract], tls: TLSConfig | None = None) -> Running:
    router = Router(list(contracts))
    config = ServerConfig(address="127.0.0.1:0", chaincode_id=CHAINCODE_ID, tls=tls)
    server = ChaincodeServer(config, router)
    port = await server.start()
    return Running(server, port, router)


async def connect_peer(
    port: int, credentials: grpc.ChannelCredentials | None = None, **kwargs: Any
) -> FakePeer:
    target = f"127.0.0.1:{port}"
    if credentials is None:
        channel = grpc.aio.insecure_channel(target)
    else:
        channel = grpc.aio.secure_channel(target, credentials)
    peer = FakePeer(channel, **kwargs)
    await peer.start()
    return peer
