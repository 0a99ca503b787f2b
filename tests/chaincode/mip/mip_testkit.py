"""Shared test kit for the MIP contract: one devnet per session, staff clients, holder keys.

Use from a test module in tests/chaincode/mip/ (conftest.py provides the fixtures)::

    async def test_x(mip: MipClients) -> None:
        registrar = await mip.client("HospitalMSP", "registrar")
        holder = HolderKey.generate()
        request = holder.sign_request("passport.register", {...})
        await registrar.submit("Passport:Register", [json.dumps(request)])
        async with expect_error("access_denied"):
            await (await mip.client("SchoolMSP", "doctor")).submit(...)

`MipNetwork` (session fixture `mip_network`) is the running network, devnet or (the `fabric`
variant of every scenario test) the real Fabric network of scripts/network.sh: its data dir
(devnet's SQLite ledger is `data_dir / "ledger.sqlite"`, see docs/ledger.md; the real
network's state dir), the Hospital peer's port and connection.json. `target` says which;
`is_devnet` guards the checks that read devnet's SQLite.
`MipClients` (function fixture `mip`) opens Gateways lazily on the test's event loop and closes
them afterwards; `client(org, role)` returns a `Contract` for chaincode `mip` on `mipchannel`
acting as the identity minted for that (org, role) (role None = a user without `mip.role`).

Holders: `register_passport(mip, org, level, guardians, threshold)` registers a passport;
`new_holder(mip, kyc_issuers, org, level)` also gives the holder a KYC credential from the
session's anoncreds issuers (fixture `kyc_issuers`, or `holder` for a ready level-2 holder);
`open_account(mip, holder, institution, min_level)` opens an isolated account (`Account`, with
`.sign(action, body)` for account-signed requests); `open_request(...)` builds the arguments
without submitting them, `open_body(...)` the signed body (with a fresh fake face commitment).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from devnet_process import running_devnet

from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC
from chaincode.protocol.holder_requests import signing_payload
from gateway.fabric import ChaincodeError, Contract, Gateway
from gateway.fabric.proposal import Arg
from gateway.fabric.transaction import Status, SubmittedTransaction, Transaction
from gateway.kyc.issuer import KycIssuer
from gateway.kyc.wallet import KycHolder

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO_ROOT / "network" / "fabric" / "collections_config.json"
CHANNEL = "mipchannel"
CHAINCODE = "mip"
POLICY = CHAINCODE_POLICY
ORGS = ("HospitalMSP", "SchoolMSP", "PharmacyMSP")
ROLES = (
    "registrar", "doctor", "pharmacist", "school_registrar", "researcher", "auditor", "admin",
    "gateway",
)
NO_ROLE_USER = "norole"
START_TIMEOUT_S = 120.0
METADATA_PROBE: tuple[str, tuple[str, ...]] = ("org.hyperledger.fabric:GetMetadata", ())


def available_contract_spec(spec: str = CONTRACT_SPEC) -> str:
    """CONTRACT_SPEC without the modules that do not exist yet (helpers land them in turn).

    Only a missing module is dropped; a module that exists but fails to import still breaks
    devnet's chaincode start, as it should.
    """
    kept = []
    for item in spec.split(","):
        module = item.strip().partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            kept.append(item.strip())
    if not kept:
        raise RuntimeError("no MIP contract module exists")
    return ",".join(kept)


def user_name(role: str | None) -> str:
    return role if role is not None else NO_ROLE_USER


# --- networks -------------------------------------------------------------------------------

DEVNET, FABRIC = "devnet", "fabric"
TARGETS = (DEVNET, FABRIC)
# The real network for these tests: ports shifted by this (tests/network/fabric's asset
# network is on 300).
FABRIC_PORT_OFFSET_ENV = "MIP_FABRIC_MIP_TEST_PORT_OFFSET"
FABRIC_PORT_OFFSET = "400"


@dataclass
class MipNetwork:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None  # None: a network this kit does not own a process of
    log_path: Path
    contract_spec: str
    target: str = DEVNET

    @property
    def connection(self) -> Path:
        return self.data_dir / "connection.json"

    @property
    def is_devnet(self) -> bool:
        return self.target == DEVNET

    @property
    def log_paths(self) -> list[Path]:
        """Every log the network's processes write (devnet + its chaincode; on the real network
        the orderer's, each peer's and each chaincode server's)."""
        if self.is_devnet:
            return [self.log_path, self.data_dir / "logs" / "chaincode.log"]
        return sorted((self.data_dir / "logs").glob("*.log"))

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def has_contract(self, name: str) -> bool:
        """True if the contract class `name` (e.g. "Passport") is served by this devnet."""
        return any(
            item.rpartition(":")[2].removesuffix("Contract") == name
            or item.rpartition(":")[2] == name
            for item in self.contract_spec.split(",")
        )


def _mint_identities(data_dir: Path) -> None:
    """One identity per (org, role) from the org's CA (the real peers accept new identities
    without a restart: they validate by CA). Identities minted by an earlier session on a reused
    network are kept."""
    from network.devnet.pki import IdentityExistsError, add_identity

    for org in ORGS:
        for name, attrs in [(user_name(r), {"mip.role": r}) for r in ROLES] + [
                (NO_ROLE_USER, {})]:
            try:
                add_identity(data_dir, org, name, attrs)
            except IdentityExistsError:
                pass


@contextmanager
def running_mip_devnet(tmp_path: Path) -> Iterator[MipNetwork]:
    """Start devnet with the MIP chaincode, wait for it, mint one identity per (org, role)."""
    spec = available_contract_spec()
    args = ("--contract", spec, "--policy", POLICY, "--collections", str(COLLECTIONS))
    with running_devnet(tmp_path, args, probe=METADATA_PROBE,
                        start_timeout=START_TIMEOUT_S) as devnet:
        _mint_identities(devnet.data_dir)
        yield MipNetwork(devnet.data_dir, devnet.port, devnet.process, devnet.log_path, spec)


def _fabric_helpers() -> Any:
    """tests/network/fabric/fabric_network.py (finding the binaries, running scripts/network.sh)."""
    folder = str(REPO_ROOT / "tests" / "network" / "fabric")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("fabric_network")


def _fabric_network(state: Path, spec: str) -> MipNetwork:
    profile = json.loads((state / "connection.json").read_text(encoding="utf-8"))
    endpoint = profile["organizations"]["HospitalMSP"]["peerEndpoint"]
    return MipNetwork(state, int(endpoint.rpartition(":")[2]), None,
                      state / "logs" / "cc-hospital.log", spec, FABRIC)


def fabric_unavailable_reason() -> str | None:
    """Why the fabric variant cannot run here (no MIP network to reuse, no binaries), or None."""
    helpers = _fabric_helpers()
    if helpers.fabric_profile_from_env(available_contract_spec()) is not None:
        return None
    reason = helpers.missing_fabric_binaries()
    if reason is None:
        return None
    return f"{reason} (needed by the fabric variant of the MIP scenario tests)"


@contextmanager
def running_mip_fabric(tmp_path: Path) -> Iterator[MipNetwork]:
    """The real Fabric network with the MIP chaincode (docs/deploy.md), identities minted.

    Reuses the network MIP_CONNECTION names if it is a real network serving the MIP contracts;
    otherwise runs `scripts/network.sh up` + `deploy` (MIP contracts, MIP policy) into
    `tmp_path` on ports shifted by $MIP_FABRIC_MIP_TEST_PORT_OFFSET (default 400), and `down`
    + `clean` at the end (failing if a process is left). Skips when the binaries are absent.
    """
    helpers = _fabric_helpers()
    spec = available_contract_spec()
    existing = helpers.fabric_profile_from_env(spec)
    if existing is not None:
        _mint_identities(existing.parent)
        yield _fabric_network(existing.parent, spec)
        return
    reason = fabric_unavailable_reason()
    if reason:
        pytest.skip(reason)
    offset = os.environ.get(FABRIC_PORT_OFFSET_ENV, FABRIC_PORT_OFFSET)
    settings = {"MIP_CHAINCODE_CONTRACT": spec, "MIP_CHAINCODE_POLICY": POLICY}
    with helpers.session_network(tmp_path / "state", offset, settings) as fabric:
        _mint_identities(fabric.state_dir)
        yield _fabric_network(fabric.state_dir, spec)


@contextmanager
def running_mip_network(target: str, tmp_path: Path) -> Iterator[MipNetwork]:
    """`running_mip_devnet` or `running_mip_fabric` by target name ("devnet" / "fabric")."""
    if target == DEVNET:
        with running_mip_devnet(tmp_path) as net:
            yield net
    elif target == FABRIC:
        with running_mip_fabric(tmp_path) as net:
            yield net
    else:
        raise ValueError(f"unknown MIP test target {target!r} (known: {', '.join(TARGETS)})")


async def fabric_blocks(mip: MipClients, org: str = "HospitalMSP") -> list[bytes]:
    """Every block of the channel as `org`'s peer stores it, through the Gateway and the
    peer's query system chaincode (qscc GetChainInfo / GetBlockByNumber)."""
    common_pb2: Any = importlib.import_module("fabric_protos.common.common_pb2")
    ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
    user = user_name(None)
    gateway = mip.gateway(org, user)
    qscc = gateway.get_network(CHANNEL).get_contract("qscc")
    info = ledger_pb2.BlockchainInfo.FromString(await qscc.evaluate("GetChainInfo", [CHANNEL]))
    blocks = []
    for number in range(info.height):
        raw = await qscc.evaluate("GetBlockByNumber", [CHANNEL, str(number)])
        assert common_pb2.Block.FromString(raw).header.number == number
        blocks.append(bytes(raw))
    return blocks


# --- staff clients ---------------------------------------------------------------------------

PEER_SYNC_TIMEOUT_S = 20.0


class AllPeersContract(Contract):
    """A Contract whose submit returns only once every org's peer has committed the block.

    The real network has one ledger per peer, and the Gateway's commit status speaks for the
    client's own org's peer only; the next step of a scenario often runs on another org's peer
    (a grant submitted through the hospital, read at the pharmacy), which may not have
    committed the block yet. Devnet has one ledger, so it needs no such wait.
    """

    clients: MipClients

    async def submit_async(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        before_submit: Callable[[Transaction], None] | None = None,
    ) -> SubmittedTransaction:
        submitted = await super().submit_async(
            name, args, transient=transient, endorsing_orgs=endorsing_orgs,
            before_submit=before_submit)
        own_status = submitted.status
        clients = self.clients

        async def status(*, timeout: float | None = None) -> Status:
            result = await own_status(timeout=timeout)
            await clients.wait_all_peers(result.block_number)
            return result

        submitted.status = status  # type: ignore[method-assign]
        return submitted



@dataclass
class MipClients:
    """Gateways opened on the current event loop, one per (org, user), closed by `close()`."""

    network: MipNetwork
    _gateways: dict[tuple[str, str], Gateway] = field(default_factory=dict)

    async def client(self, org: str, role: str | None, contract_name: str = "") -> Contract:
        """A Contract for chaincode `mip` as the identity with `role` in `org` (None: no role).

        Transaction names may be qualified (`"Passport:Register"`) or, with `contract_name`,
        unqualified.
        """
        if org not in ORGS:
            raise ValueError(f"unknown org {org!r}")
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        gateway = self.gateway(org, user_name(role))
        network = gateway.get_network(CHANNEL)
        if self.network.is_devnet:
            return network.get_contract(CHAINCODE, contract_name)
        contract = AllPeersContract(network, network._session, CHAINCODE, contract_name)
        contract.clients = self
        return contract

    async def wait_all_peers(self, block_number: int) -> None:
        """Until every org's peer has committed block `block_number` (qscc GetChainInfo)."""
        ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
        deadline = time.monotonic() + PEER_SYNC_TIMEOUT_S
        for org in ORGS:
            qscc = self.gateway(org, NO_ROLE_USER).get_network(CHANNEL).get_contract("qscc")
            while True:
                info = ledger_pb2.BlockchainInfo.FromString(
                    await qscc.evaluate("GetChainInfo", [CHANNEL]))
                if info.height > block_number:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{org}'s peer has not committed block {block_number}")
                await asyncio.sleep(0.01)

    def gateway(self, org: str, user: str) -> Gateway:
        """The Gateway of `org` acting as `user` (opened once, closed by `close()`)."""
        key = (org, user)
        gateway = self._gateways.get(key)
        if gateway is None:
            gateway = Gateway.from_connection(self.network.connection, org, user)
            self._gateways[key] = gateway
        return gateway

    async def close(self) -> None:
        for gateway in self._gateways.values():
            await gateway.close()
        self._gateways.clear()


# --- holder keys -----------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class HolderKey:
    """A holder's (passport, account or guardian) Ed25519 key, as the holder's device keeps it."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> HolderKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public(self) -> str:
        """Base64 of the raw 32-byte public key: how requests and records carry keys."""
        return b64(self.public_raw)

    def sign_request(
        self,
        action: str,
        body: dict[str, Any],
        channel: str = CHANNEL,
        ttl: int = 300,
        *,
        nonce: str | None = None,
        expires: int | None = None,
    ) -> dict[str, Any]:
        """A signed holder request (chaincode/protocol/holder_requests.py) ready to json.dumps.

        Kept apart from gateway.holder.keys.sign_holder_request on purpose: that one refuses
        to build bad requests (ttl over 600 s, odd nonces), and the contract's tests must be
        able to send them to see the contract refuse them."""
        nonce = nonce if nonce is not None else secrets.token_hex(16)
        expires = expires if expires is not None else int(time.time()) + ttl
        payload = signing_payload(action, body, nonce, expires, channel, self.public_raw)
        return {
            "action": action,
            "body": body,
            "nonce": nonce,
            "expires": expires,
            "channel": channel,
            "signer": self.public,
            "signature": b64(self.private.sign(payload)),
        }


def request_arg(request: dict[str, Any]) -> str:
    """A holder request as a transaction argument (JSON)."""
    return json.dumps(request)


# --- error assertions ------------------------------------------------------------------------


@dataclass
class ErrorInfo:
    error: ChaincodeError | None = None

    @property
    def message(self) -> str:
        assert self.error is not None
        return self.error.chaincode_message


@asynccontextmanager
async def expect_error(code: str) -> AsyncIterator[ErrorInfo]:
    """Assert the block raises a ChaincodeError whose message starts with `code: `.

    `code` is a MipError code (`access_denied`, `not_found`, `replay`, ...).
    """
    info = ErrorInfo()
    try:
        yield info
    except ChaincodeError as exc:
        info.error = exc
        assert exc.chaincode_message.startswith(f"{code}: "), (
            f"expected {code!r}, chaincode said {exc.chaincode_message!r}"
        )
        return
    raise AssertionError(f"expected a chaincode error {code!r}, the call succeeded")


async def assert_error(code: str, call: Any) -> str:
    """Await `call` (a coroutine) and assert it fails with MipError `code`; return the message."""
    async with expect_error(code) as info:
        await call
    return info.message


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def face_commitment() -> str:
    """A fresh fake face commitment (hex sha256 of random bytes): tests carry no face data."""
    import hashlib

    return hashlib.sha256(secrets.token_bytes(32)).hexdigest()


# --- passports -------------------------------------------------------------------------------


def register_body(
    level: int = 2,
    guardians: list[HolderKey] | None = None,
    threshold: int | None = None,
    *,
    commitment: str | None = None,
    enrolment_nonce: str | None = None,
) -> dict[str, Any]:
    guardians = guardians or []
    return {
        "face_commitment": commitment or face_commitment(),
        "enrolment_nonce": enrolment_nonce or secrets.token_hex(16),
        "kyc_level": level,
        "guardians": [g.public for g in guardians],
        "guardian_threshold": threshold if threshold is not None else (
            min(2, len(guardians)) if guardians else 0),
    }


async def register_passport(
    mip: MipClients,
    org: str = "HospitalMSP",
    level: int = 2,
    guardians: list[HolderKey] | None = None,
    threshold: int | None = None,
) -> tuple[HolderKey, dict[str, Any]]:
    """A new passport registered by `org`'s registrar; returns its key and public record."""
    key = HolderKey.generate()
    request = key.sign_request("passport.register", register_body(level, guardians, threshold))
    registrar = await mip.client(org, "registrar")
    record = json.loads(await registrar.submit("Passport:Register", [request_arg(request)]))
    return key, record


async def set_screening_required(mip: MipClients, value: int) -> None:
    """Config `screening_required` (a setting: every org's admin endorses its change)."""
    admin = await mip.client("HospitalMSP", "admin")
    await admin.submit("Config:Set", ["screening_required", str(value)],
                       endorsing_orgs=list(ORGS))


async def register_provisional_passport(
    mip: MipClients, org: str = "HospitalMSP", level: int = 2,
) -> tuple[HolderKey, dict[str, Any]]:
    """A passport registered while `screening_required` is 1 (set back to 0 afterwards, so
    the session's other tests register as before)."""
    await set_screening_required(mip, 1)
    try:
        return await register_passport(mip, org, level)
    finally:
        await set_screening_required(mip, 0)


# --- KYC issuers, holders and accounts --------------------------------------------------------

KYC_ORGS = ("HospitalMSP", "SchoolMSP")


def make_kyc_issuers(
    orgs: tuple[str, ...] = KYC_ORGS, tag: str | None = None
) -> dict[str, KycIssuer]:
    """One anoncreds KYC issuer per org (a few seconds each: CL key generation), in parallel.

    The credential definition tag is fresh per call unless given: a network reused across
    sessions (MIP_CONNECTION) still holds earlier sessions' issuers and revocation lists, and
    a session must not mistake them for its own.
    """
    from concurrent.futures import ThreadPoolExecutor

    tag = tag if tag is not None else f"kyc{secrets.token_hex(4)}"
    with ThreadPoolExecutor(max_workers=len(orgs)) as pool:
        return dict(zip(orgs, pool.map(lambda org: KycIssuer(org, tag), orgs), strict=True))


async def ensure_kyc_registered(mip: MipClients, issuers: dict[str, KycIssuer]) -> None:
    """Register each issuer's public documents and revocation registry once per devnet."""
    reader = await mip.client("HospitalMSP", None)
    registered = {i["cred_def_id"] for i in json.loads(await reader.evaluate(
        "Account:ListKycIssuers"))}
    for org, issuer in issuers.items():
        if issuer.cred_def_id in registered:
            continue
        schema_json, cred_def_json = issuer.public_documents()
        admin = await mip.client(org, "admin")
        await admin.submit("Account:RegisterKycIssuer", [schema_json, cred_def_json])
        if issuer.revocable:
            await publish_revocation(mip, issuer)


async def publish_revocation(mip: MipClients, issuer: KycIssuer) -> dict[str, Any]:
    """Publish the issuer's registry / latest status list (after a revocation)."""
    admin = await mip.client(issuer.org, "admin")
    return dict(json.loads(await admin.submit(
        "Account:PublishKycRevocation", list(issuer.revocation_documents()))))


@dataclass
class Holder:
    """A person: passport key and record, and a wallet holding a KYC credential."""

    passport_key: HolderKey
    passport: dict[str, Any]
    wallet: KycHolder
    kyc_issuer: KycIssuer | None = None
    kyc_index: int | None = None  # the credential's revocation index (the issuer keeps it)


@dataclass
class Account:
    key: HolderKey
    pseudonym: str
    institution: str
    record: dict[str, Any]

    def sign(self, action: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.key.sign_request(action, body, **kwargs)


async def new_holder(
    mip: MipClients, issuers: dict[str, KycIssuer], org: str = "HospitalMSP", level: int = 2
) -> Holder:
    """Register a passport at `org` and have `org`'s KYC issuer give the holder a credential
    (level 3 credentials are issued as a gateway would after the vouches; the ledger passport
    stays at its registered level)."""
    await ensure_kyc_registered(mip, issuers)
    key, record = await register_passport(mip, org, level=min(level, 2))
    wallet = KycHolder()
    index = wallet.obtain(issuers[org], kyc_level=level)
    return Holder(key, record, wallet, issuers[org], index)


def open_body(pseudonym: str, institution: str, min_level: int = 2, *,
              commitment: str | None = None) -> dict[str, Any]:
    """The body of an `account.open` request (a fresh fake face commitment unless given)."""
    return {"pseudonym": pseudonym, "institution": institution, "min_level": min_level,
            "face_commitment": commitment or face_commitment()}


def open_request(
    holder: Holder, institution: str, min_level: int = 2, *, key: HolderKey | None = None,
    pseudonym: str | None = None, commitment: str | None = None,
) -> tuple[HolderKey, str, str, str]:
    """(account key, pseudonym, request arg, presentation arg) for Account:Open."""
    key = key or HolderKey.generate()
    pseudonym = pseudonym or secrets.token_hex(32)
    request = key.sign_request(
        "account.open", open_body(pseudonym, institution, min_level, commitment=commitment))
    presentation = holder.wallet.present(key.public_raw, pseudonym, min_level)
    return key, pseudonym, request_arg(request), json.dumps(presentation)


async def open_account(
    mip: MipClients, holder: Holder, institution: str, min_level: int = 2,
    carrier: tuple[str, str] = ("HospitalMSP", "gateway"), *, pseudonym: str | None = None,
    commitment: str | None = None,
) -> Account:
    """Open an account of `holder` at `institution` through a gateway identity (with the
    face commitment of a reference enrolled for `pseudonym`, or a fresh fake one)."""
    key, pseudonym, request, presentation = open_request(
        holder, institution, min_level, pseudonym=pseudonym, commitment=commitment)
    gateway = await mip.client(*carrier)
    record = json.loads(await gateway.submit("Account:Open", [request, presentation]))
    return Account(key, pseudonym, institution, record)
