"""Gateway, Network and Contract: the entry points of the Fabric Gateway client.

async with Gateway.connect("127.0.0.1:7051", identity, signer,
                           tls_root_cert=ca_pem) as gateway:
    contract = gateway.get_network("mipchannel").get_contract("mip")
    await contract.submit("CreateAsset", ["a1", "blue"])
    data = await contract.evaluate("ReadAsset", ["a1"])
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from ._protos import gateway_pb2_grpc
from .checkpoint import Checkpoint
from .errors import CommitError, EndorseError
from .events import ChaincodeEventStream, signed_events_request
from .identity import Identity
from .proposal import Arg, ProposalError, TransactionContext, build_proposal
from .retry import NO_RETRY, RetryPolicy
from .session import Deadlines, Session
from .signing import Signer
from .transaction import Proposal, Status, SubmittedTransaction, Transaction

_log = logging.getLogger(__name__)


class Gateway:
    """A connection to a Fabric Gateway peer for one client identity."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        identity: Identity,
        signer: Signer,
        deadlines: Deadlines = Deadlines(),  # noqa: B008 - frozen dataclass
        retry_policy: RetryPolicy = NO_RETRY,
    ) -> None:
        self._channel = channel
        self._session = Session(
            stub=gateway_pb2_grpc.GatewayStub(channel),
            identity=identity,
            signer=signer,
            deadlines=deadlines,
        )
        self.retry_policy = retry_policy

    @classmethod
    def connect(
        cls,
        endpoint: str,
        identity: Identity,
        signer: Signer,
        *,
        tls_root_cert: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
        server_name_override: str | None = None,
        insecure: bool = False,
        deadlines: Deadlines | None = None,
        retry_policy: RetryPolicy = NO_RETRY,
        channel_options: Sequence[tuple[str, str | int]] = (),
    ) -> Gateway:
        """Open a gRPC channel to `endpoint` (host:port) and bind it to the identity.

        TLS is on unless `insecure=True`: `tls_root_cert` is the PEM of the CA that issued the
        peer's TLS certificate (None: the system roots); `client_cert` + `client_key` (PEM)
        turn on mutual TLS; `server_name_override` names the host the peer's certificate must
        be valid for when it differs from `endpoint` (e.g. peer0.hospital.mip.local).
        The connection itself is made lazily, on the first call. Call this from async code:
        a grpc.aio channel belongs to the event loop running when it is created.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "Gateway.connect must be called inside a running asyncio event loop"
            ) from None
        if not endpoint:
            raise ValueError("endpoint must not be empty")
        if (client_cert is None) != (client_key is None):
            raise ValueError("mutual TLS needs both client_cert and client_key")
        options: list[tuple[str, str | int]] = list(channel_options)
        if server_name_override:
            options.append(("grpc.ssl_target_name_override", server_name_override))
        if insecure:
            if tls_root_cert is not None or client_cert is not None:
                raise ValueError("insecure=True cannot be combined with TLS certificates")
            channel = grpc.aio.insecure_channel(endpoint, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_root_cert,
                private_key=client_key,
                certificate_chain=client_cert,
            )
            channel = grpc.aio.secure_channel(endpoint, credentials, options=options)
        return cls(channel, identity, signer, deadlines or Deadlines(), retry_policy)

    @classmethod
    def from_connection(
        cls,
        profile: str | Path,
        org: str,
        user: str,
        *,
        mutual_tls: bool = False,
        deadlines: Deadlines | None = None,
        retry_policy: RetryPolicy = NO_RETRY,
    ) -> Gateway:
        """Connect as `user` of `org` (an MSP id) using a connection.json (docs/ledger.md)."""
        from .connection import from_connection

        settings = from_connection(profile, org, user)
        return cls.connect(
            settings.endpoint,
            settings.identity,
            settings.signer,
            tls_root_cert=settings.tls_root_cert,
            client_cert=settings.client_cert if mutual_tls else None,
            client_key=settings.client_key if mutual_tls else None,
            server_name_override=settings.server_name_override,
            deadlines=deadlines,
            retry_policy=retry_policy,
        )

    @property
    def identity(self) -> Identity:
        return self._session.identity

    @property
    def deadlines(self) -> Deadlines:
        return self._session.deadlines

    def get_network(self, channel: str) -> Network:
        if not channel:
            raise ValueError("channel name must not be empty")
        return Network(self, self._session, channel)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the gRPC channel is connected (raises TimeoutError otherwise)."""
        async with asyncio.timeout(timeout):
            await self._channel.channel_ready()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Network:
    """One channel seen through a Gateway."""

    def __init__(self, gateway: Gateway, session: Session, channel: str) -> None:
        self.gateway = gateway
        self._session = session
        self.name = channel

    def get_contract(self, chaincode: str, contract_name: str = "") -> Contract:
        if not chaincode:
            raise ValueError("chaincode name must not be empty")
        return Contract(self, self._session, chaincode, contract_name)

    def chaincode_events(
        self,
        chaincode: str,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
        *,
        timeout: float | None = None,
    ) -> ChaincodeEventStream:
        """Events of `chaincode` from the next commit, from `start_block`, or resuming right
        after the event recorded in `checkpoint` (which wins when it is not empty)."""
        request = signed_events_request(
            self._session, self.name, chaincode, start_block=start_block, checkpoint=checkpoint
        )
        return ChaincodeEventStream(
            self._session,
            request,
            timeout if timeout is not None else self._session.deadlines.chaincode_events,
        )


class Contract:
    """A chaincode (optionally one named contract inside it) on a channel."""

    def __init__(
        self, network: Network, session: Session, chaincode: str, contract_name: str = ""
    ) -> None:
        self.network = network
        self._session = session
        self.chaincode = chaincode
        self.contract_name = contract_name

    def _qualified(self, name: str) -> str:
        if not name:
            raise ProposalError("transaction name must not be empty")
        return f"{self.contract_name}:{name}" if self.contract_name else name

    def new_proposal(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
    ) -> Proposal:
        """A proposal with a fresh transaction id; evaluate() or endorse() it."""
        context = TransactionContext.new(self._session.identity.serialize())
        proposal = build_proposal(
            channel=self.network.name,
            chaincode=self.chaincode,
            transaction_name=self._qualified(name),
            args=args,
            transient=transient,
            context=context,
        )
        return Proposal(
            self._session,
            self.network.name,
            context.transaction_id,
            proposal,
            endorsing_orgs or (),
        )

    async def evaluate(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Run a query on one peer (of `endorsing_orgs` if given); nothing is ordered."""
        proposal = self.new_proposal(name, args, transient=transient, endorsing_orgs=endorsing_orgs)
        return await proposal.evaluate(timeout=timeout)

    async def submit_async(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        before_submit: Callable[[Transaction], None] | None = None,
    ) -> SubmittedTransaction:
        """Endorse and submit; returns once the orderer accepted it, before it commits.

        `before_submit` sees the endorsed transaction (its id and result) before it is sent
        to the orderer: a caller records it there to ask `commit_status` after a crash."""
        proposal = self.new_proposal(name, args, transient=transient, endorsing_orgs=endorsing_orgs)
        transaction = await proposal.endorse()
        if before_submit is not None:
            before_submit(transaction)
        return await transaction.submit()

    async def commit_status(self, transaction_id: str, *, timeout: float | None = None
                            ) -> Status:
        """The commit status of a transaction submitted earlier (perhaps by a process that
        died since). A peer answers once the transaction is in a block; for one it has not
        seen it waits, so give a `timeout` (CommitStatusError when it passes)."""
        submitted = SubmittedTransaction(self._session, self.network.name, transaction_id, b"")
        return await submitted.status(timeout=timeout)

    async def submit(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        retry_policy: RetryPolicy | None = None,
        before_submit: Callable[[Transaction], None] | None = None,
    ) -> bytes:
        """Endorse, submit and wait for commit; returns the chaincode's result.

        Raises CommitError (with the validation code name) if the transaction was invalidated;
        read conflicts are retried first when a RetryPolicy is given (here or on the Gateway).
        """
        policy = retry_policy or self.network.gateway.retry_policy
        attempt = 1
        while True:
            try:
                submitted = await self.submit_async(
                    name, args, transient=transient, endorsing_orgs=endorsing_orgs,
                    before_submit=before_submit,
                )
            except EndorseError as exc:
                # Several endorsers (a majority policy) may simulate on either side of a
                # commit; their results then differ. Like a read conflict, endorsing again
                # runs every simulation on the current state.
                if not (exc.endorsements_differ and policy.should_reendorse(attempt)):
                    raise
                _log.info("endorsements of %s differ, endorsing again (attempt %d of %d)",
                          exc.transaction_id, attempt + 1, policy.max_attempts)
                await policy.sleep(attempt)
                attempt += 1
                continue
            try:
                return await submitted.wait()
            except CommitError as exc:
                if not policy.should_retry(exc.validation_code, attempt):
                    raise
                _log.info(
                    "transaction %s invalidated (%s), retrying (attempt %d of %d)",
                    exc.transaction_id,
                    exc.code_name,
                    attempt + 1,
                    policy.max_attempts,
                )
                await policy.sleep(attempt)
                attempt += 1
