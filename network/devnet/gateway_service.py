"""The `gateway.Gateway` gRPC service: Evaluate, Endorse, Submit, CommitStatus, ChaincodeEvents.

Behaviour and error reporting follow Fabric 2.5's internal/pkg/gateway/api.go: proposal
unpacking failures are InvalidArgument; endorser-side refusals (identity, signature, tx id,
duplicates) are FailedPrecondition on Evaluate and Aborted ("failed to endorse transaction") on
Endorse; chaincode error responses are Unknown on Evaluate; orderer refusals are Aborted;
unsigned or badly signed CommitStatus / ChaincodeEvents requests are PermissionDenied. A
proposal whose timestamp is further than the time window from devnet's clock is refused as a
Fabric 3.x peer's TimeWindowCheck auth filter refuses it (before any other check): Unavailable
"failed to evaluate transaction" on Evaluate (the gateway tried every peer), Aborted on
Endorse, each ErrorDetail "request unauthorized due to incorrect timestamp ...". Every
error from an endorser or the orderer carries `gateway.ErrorDetail` entries in a
`google.rpc.Status` sent as `grpc-status-details-bin` trailing metadata.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from network.devnet import policy
from network.devnet._protos import (
    DecodeError,
    chaincode_event_pb2,
    chaincode_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    identities_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from network.devnet.config import DEFAULT_TIME_WINDOW_S
from network.devnet.messages import (
    MalformedMessage,
    UnpackedProposal,
    compute_txid,
    prepare_transaction,
    unpack_envelope,
    unpack_proposal,
)
from network.devnet.msp import IdentityError, MSPManager, SignatureError, verify_signature
from network.devnet.orderer import CommittedBlock, Orderer
from network.devnet.peer import (
    ChaincodeUnavailable,
    LogicalPeer,
    SimulationError,
    decode_metadata,
)
from network.devnet.rwset import SimulationRecord, sha256
from network.devnet.sigcache import SignatureCache
from network.devnet.store import Store
from network.devnet.transient import TransientStore
from network.devnet.validator import VALIDATION_PARAMETER, CollectionRules

log = logging.getLogger(__name__)

CHAINCODE_VERSION = "1.0"
SC = grpc.StatusCode


class _Refused(Exception):
    """An endorser-side refusal (Fabric's preProcess), reported as an ErrorDetail."""


def _go_number(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for a positive duration: 15m0s, 1h0m0s, 2.5s, 500ms."""
    if seconds < 1:
        return f"{_go_number(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_go_number(secs)}s"
    if hours or minutes:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


def go_rfc3339(seconds: float) -> str:
    """Go's time.RFC3339 of a UTC instant (whole seconds); the raw number when out of range."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f}s since the epoch"


def time_window_refusal(timestamp: Any, now: float, window_s: float) -> str | None:
    """Fabric 3.x's TimeWindowCheck (core/handlers/auth/filter/timewindow.go): the proposal's
    ChannelHeader timestamp must lie within `window_s` of the peer's own clock. The chaincode
    judges expiries by that timestamp, and without this bound a client could date its
    proposal freely. Returns the peer's error text, or None when the timestamp is inside."""
    proposed = int(timestamp.seconds) + int(timestamp.nanos) / 1e9
    if proposed + window_s >= now and proposed - window_s <= now:
        return None
    return (f"request unauthorized due to incorrect timestamp {go_rfc3339(proposed)}, peer time "
            f"{go_rfc3339(now)}, peer.authentication.timewindow {go_duration(window_s)}")


@dataclass
class _Endorsed:
    org: str
    prp: bytes = b""
    endorsement: Any | None = None
    response: Any | None = None
    record: SimulationRecord | None = None
    pvt: bytes | None = None
    error: str | None = None
    chaincode_error: bool = False


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[int] = field(default_factory=asyncio.Queue)


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(
        self,
        *,
        channel: str,
        chaincode: str,
        msp: MSPManager,
        peers: Mapping[str, LogicalPeer],
        peer_identities: Mapping[str, Any],
        store: Store,
        orderer: Orderer,
        transient: TransientStore,
        chaincode_policy: Any,
        collections: Mapping[str, CollectionRules],
        signatures: SignatureCache | None = None,
        time_window_s: float = DEFAULT_TIME_WINDOW_S,
    ) -> None:
        self.signatures = signatures or SignatureCache()
        self.time_window_s = time_window_s
        self.channel = channel
        self.chaincode = chaincode
        self.msp = msp
        self.peers = dict(peers)
        self.peer_identities = dict(peer_identities)
        self.store = store
        self.orderer = orderer
        self.transient = transient
        self.cc_policy = chaincode_policy
        self.collections = collections
        self._endorsing: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[tuple[int, int]]]] = {}
        self._subscribers: set[_Subscriber] = set()
        self._policy_cache: dict[bytes, Any] = {}
        self._layouts: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[str] | None]] = {}

    # ---- commit notifications (called by the orderer after each durable block) ------------
    def on_commit(self, block: CommittedBlock) -> None:
        for txid, code in block.results:
            futs = self._waiters.pop(txid, None)
            for fut in futs or ():
                if not fut.done():
                    fut.set_result((code, block.number))
        for sub in self._subscribers:
            sub.queue.put_nowait(block.number)

    # ---- helpers ------------------------------------------------------------------------
    async def _abort(self, context: Any, code: grpc.StatusCode, message: str,
                     details: Sequence[Any] = ()) -> NoReturn:
        # As Fabric's gateway does (grpc-go status.WithDetails): the ErrorDetails travel packed
        # in a google.rpc.Status, which grpcio-status sends as grpc-status-details-bin.
        status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            status.details.add().Pack(detail)
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")  # abort_with_status raises

    def _detail(self, org: str, message: str) -> Any:
        peer = self.peers.get(org)
        return gateway_pb2.ErrorDetail(address=peer.address if peer else "", msp_id=org,
                                       message=message)

    def _local_org(self, up: UnpackedProposal) -> str:
        """The client's own org (its 'gateway peer'); unknown creators fall back to the first."""
        try:
            sid = identities_pb2.SerializedIdentity.FromString(up.creator)
            if sid.mspid in self.peers:
                return str(sid.mspid)
        except DecodeError:
            pass
        return next(iter(self.peers))

    def _time_refusal(self, up: UnpackedProposal) -> str | None:
        """The TimeWindowCheck auth filter every peer runs before ProcessProposal (devnet's
        peers share one clock, so one look answers for all of them)."""
        return time_window_refusal(up.channel_header.timestamp, time.time(), self.time_window_s)

    def _preprocess(self, up: UnpackedProposal) -> Any:
        """The checks every endorsing peer runs before simulation (endorser.go preProcess)."""
        ch = self.channel
        try:
            creator = self.msp.validate(up.creator)
        except IdentityError as exc:
            raise _Refused(f"error validating proposal: access denied: channel [{ch}] creator "
                           f"org unknown, creator is malformed: {exc.reason}") from exc
        try:
            verify_signature(creator, up.signed.proposal_bytes, up.signed.signature)
        except SignatureError as exc:
            raise _Refused(f"error validating proposal: access denied: channel [{ch}] creator "
                           f"org [{creator.msp_id}]: {exc}") from exc
        if creator.msp_id not in self.peers:
            # peer/Propose ACL: /Channel/Application/Writers, i.e. an application org member.
            raise _Refused(f"error validating proposal: access denied: channel [{ch}] creator "
                           f"org [{creator.msp_id}]")
        expected = compute_txid(up.signature_header.nonce, up.creator)
        if up.txid != expected:
            raise _Refused(f"error validating proposal: invalid txid. got [{up.txid}], "
                           f"expected [{expected}]")
        if (up.txid in self._endorsing or up.txid in self.orderer.pending
                or self.store.tx_block(up.txid) is not None):
            raise _Refused(f"duplicate transaction found [{up.txid}]. Creator "
                           f"[{up.creator.hex()[:64]}...]")
        return creator

    async def _unpack(self, signed: Any, context: Any
                      ) -> UnpackedProposal:
        try:
            up = unpack_proposal(signed)
        except MalformedMessage as exc:
            await self._abort(context, SC.INVALID_ARGUMENT, str(exc))
        if up.channel != self.channel:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"channel '{up.channel}' not found")
        if up.chaincode_name != self.chaincode:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"no peers available to evaluate chaincode {up.chaincode_name} "
                              f"in channel {up.channel}")
        return up

    async def _process(self, org: str, up: UnpackedProposal, creator: Any) -> _Endorsed:
        """ProcessProposal on one logical peer: simulate, then build and sign the response."""
        peer = self.peers[org]
        try:
            sim = await peer.simulate(txid=up.txid, channel=up.channel,
                                      creator_msp=creator.msp_id, signed_proposal=up.signed,
                                      chaincode_input=up.chaincode_input)
        except (ChaincodeUnavailable, SimulationError) as exc:
            return _Endorsed(org, error=f"error in simulation: {exc}")
        rwset, pvt = sim.record.build()
        action = proposal_pb2.ChaincodeAction(
            results=rwset,
            events=sim.event.SerializeToString() if sim.event is not None else b"",
            response=sim.response,
            chaincode_id=chaincode_pb2.ChaincodeID(name=self.chaincode,
                                                   version=CHAINCODE_VERSION))
        if sim.event is not None:
            ev = chaincode_event_pb2.ChaincodeEvent()
            ev.CopyFrom(sim.event)
            ev.chaincode_id = self.chaincode
            ev.tx_id = up.txid
            action.events = ev.SerializeToString()
        prp = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=up.hash, extension=action.SerializeToString()).SerializeToString()
        status = sim.response.status
        if status >= 400:
            return _Endorsed(org, prp=prp, response=sim.response, record=sim.record,
                             error=f"chaincode response {status}, {sim.response.message}",
                             chaincode_error=True)
        endorser = peer.signer.serialized
        signature = peer.signer.sign(prp + endorser)
        self.signatures.remember(endorser, prp + endorser, signature)
        endorsement = proposal_response_pb2.Endorsement(endorser=endorser, signature=signature)
        return _Endorsed(org, prp=prp, endorsement=endorsement, response=sim.response,
                         record=sim.record, pvt=pvt)

    # ---- Evaluate ------------------------------------------------------------------------
    async def Evaluate(self, request: Any, context: Any
                       ) -> Any:
        up = await self._unpack(request.proposed_transaction, context)
        targets = list(request.target_organizations) or [self._local_org(up)]
        unknown = [o for o in targets if o not in self.peers]
        if unknown:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"no endorsers found for organizations {unknown}")
        org = targets[0]
        refusal = self._time_refusal(up)
        if refusal is not None:
            # Fabric's gateway sees the filter's error as an unavailable peer and tries every
            # other target peer, each of which refuses the same way (evaluate.go).
            order = [org] + [o for o in (targets if request.target_organizations
                                         else self.peers) if o != org]
            await self._abort(context, SC.UNAVAILABLE,
                              "failed to evaluate transaction, see attached details for more "
                              "info", [self._detail(o, refusal) for o in order])
        try:
            creator = self._preprocess(up)
        except _Refused as exc:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"evaluate call to endorser returned error: {exc}",
                              [self._detail(org, str(exc))])
        res = await self._process(org, up, creator)
        if res.error is not None:
            if res.chaincode_error:
                await self._abort(context, SC.UNKNOWN,
                                  f"evaluate call to endorser returned error: {res.error}",
                                  [self._detail(org, res.error)])
            await self._abort(context, SC.ABORTED,
                              "failed to evaluate transaction, see attached details for more info",
                              [self._detail(org, res.error)])
        assert res.response is not None
        return gateway_pb2.EvaluateResponse(result=res.response)

    # ---- Endorse -------------------------------------------------------------------------
    async def Endorse(self, request: Any, context: Any
                      ) -> Any:
        up = await self._unpack(request.proposed_transaction, context)
        chosen = list(dict.fromkeys(request.endorsing_organizations))
        unknown = [o for o in chosen if o not in self.peers]
        if unknown:
            await self._abort(context, SC.UNAVAILABLE,
                              f"no endorsers found for organizations {unknown}")
        local = chosen[0] if chosen else self._local_org(up)
        refusal = self._time_refusal(up)
        if refusal is not None:
            # endorse.go: the client's chosen endorsers each refuse; otherwise the first
            # (local) endorser does and no plan is made.
            message = ("failed to collect enough transaction endorsements, see attached details "
                       "for more info" if chosen else
                       "failed to endorse transaction, see attached details for more info")
            await self._abort(context, SC.ABORTED, message,
                              [self._detail(o, refusal) for o in (chosen or [local])])
        try:
            creator = self._preprocess(up)
        except _Refused as exc:
            await self._abort(context, SC.ABORTED,
                              "failed to endorse transaction, see attached details for more info",
                              [self._detail(local, str(exc))])
        self._endorsing.add(up.txid)
        try:
            return await self._endorse(up, creator, chosen, local, context)
        finally:
            self._endorsing.discard(up.txid)

    async def _endorse(self, up: UnpackedProposal, creator: Any, chosen: list[str], local: str,
                       context: Any) -> Any:
        if chosen:
            # The client names the endorsers and takes responsibility for the policy.
            results = list(await asyncio.gather(*(self._process(o, up, creator)
                                                  for o in chosen)))
        else:
            first = await self._process(local, up, creator)
            if first.error is not None:
                await self._abort(context, SC.ABORTED,
                                  "failed to endorse transaction, see attached details for more "
                                  "info", [self._detail(local, first.error)])
            assert first.record is not None
            layout, restricted = self._plan(first.record, up.has_transient, local)
            if layout is None:
                if restricted:
                    await self._abort(
                        context, SC.FAILED_PRECONDITION,
                        "requires endorsement from organisation(s) that are not in the "
                        f"distribution policy of the private data collection(s): {restricted}; "
                        "retry specifying trusted endorsing organizations to protect transient "
                        "data")
                await self._abort(context, SC.FAILED_PRECONDITION,
                                  "no combination of peers can be derived which satisfy the "
                                  "endorsement policy")
            others = [o for o in layout if o != local]
            if len(others) == 1:  # MAJORITY of three: no task needed for one more endorser
                rest = [await self._process(others[0], up, creator)]
            else:
                rest = list(await asyncio.gather(*(self._process(o, up, creator)
                                                   for o in others)))
            results = ([first] if local in layout else []) + rest
        details = []
        reference = next((r.prp for r in results if r.error is None), b"")
        for r in results:
            if r.error is not None:
                details.append(self._detail(r.org, r.error))
            elif r.prp != reference:
                details.append(self._detail(r.org, "ProposalResponsePayloads do not match"))
        if details or not results:
            await self._abort(context, SC.ABORTED, "failed to collect enough transaction "
                              "endorsements, see attached details for more info", details)
        height = self.orderer.height
        for r in results:
            if r.pvt is not None:
                self.transient.put(up.txid, r.org, r.pvt, height)
        endorsements = [r.endorsement for r in results if r.endorsement is not None]
        env = prepare_transaction(up, reference, endorsements)
        return gateway_pb2.EndorseResponse(prepared_transaction=env)

    def _policy(self, raw: bytes) -> Any:
        pol = self._policy_cache.get(raw)
        if pol is None:
            pol = policy.from_bytes(raw)
            if len(self._policy_cache) < 4096:  # bounded: key-level policies are few in practice
                self._policy_cache[raw] = pol
        return pol

    def _plan(self, record: SimulationRecord, has_transient: bool, local: str
              ) -> tuple[list[str] | None, list[str]]:
        """The smallest set of orgs (preferring the client's) whose endorsements satisfy every
        policy the simulated writes fall under, restricted to collection members where private
        data is written (or where transient data could reach a non-member)."""
        policies: list[Any] = []
        fallback = False
        allowed = set(self.peers)
        restricted: list[str] = []
        ns = record.namespace
        for key in set(record.writes) | set(record.metadata_writes):
            entry = self.store.get_state(ns, key)
            vp = decode_metadata(entry.metadata if entry else None).get(VALIDATION_PARAMETER)
            if vp:
                policies.append(self._policy(vp))
            else:
                fallback = True
        for name, crec in record.collections.items():
            rules = self.collections.get(name)
            written = set(crec.writes) | crec.purges | set(crec.metadata_writes)
            if rules is not None and (written or (has_transient and crec.hashed_reads)):
                allowed &= set(rules.members)
                restricted.append(name)
            for key in written:
                hentry = self.store.get_hashed(ns, name, sha256(key))
                vp = decode_metadata(hentry.metadata if hentry else None).get(
                    VALIDATION_PARAMETER)
                if vp:
                    policies.append(self._policy(vp))
                elif rules is not None and rules.endorsement_policy is not None:
                    policies.append(rules.endorsement_policy)
                else:
                    fallback = True
        if fallback or not policies:
            policies.append(self.cc_policy)
        # The layout for the same policies, candidate orgs and local org is remembered.
        memo_key = (tuple(id(p) for p in policies), frozenset(allowed), local)
        hit = self._layouts.get(memo_key)
        if hit is not None:
            return hit[1], restricted
        layout = self._find_layout(policies, allowed, local)
        if len(self._layouts) < 4096:
            # Holding the policies keeps their id()s from being reused while cached.
            self._layouts[memo_key] = (tuple(policies), layout)
        return layout, restricted

    def _find_layout(self, policies: list[Any], allowed: set[str], local: str
                     ) -> list[str] | None:
        orgs = [o for o in self.peers if o in allowed]
        layouts: list[tuple[str, ...]] = []
        for size in range(1, len(orgs) + 1):
            combos = list(itertools.combinations(orgs, size))
            layouts += [c for c in combos if local in c] + [c for c in combos if local not in c]
        for layout in layouts:
            ids = [self.peer_identities[o] for o in layout]
            if all(policy.evaluate(p, ids) for p in policies):
                return list(layout)
        return None

    # ---- Submit --------------------------------------------------------------------------
    async def Submit(self, request: Any, context: Any
                     ) -> Any:
        env = request.prepared_transaction
        if not request.HasField("prepared_transaction"):
            await self._abort(context, SC.INVALID_ARGUMENT, "a prepared transaction is required")
        if not env.signature:
            await self._abort(context, SC.INVALID_ARGUMENT, "prepared transaction must be signed")
        if request.channel_id and request.channel_id != self.channel:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"channel '{request.channel_id}' not found")
        # The ordering service's broadcast filters: well-formed, signed by a channel member.
        status, info = "", ""
        try:
            tx = unpack_envelope(env)
            if tx.channel_header.channel_id != self.channel:
                status, info = "NOT_FOUND", f"channel {tx.channel_header.channel_id} not found"
            else:
                creator = self.msp.validate(tx.signature_header.creator)
                self.signatures.verify(creator, env.payload, env.signature)
        except MalformedMessage as exc:
            status, info = "BAD_REQUEST", str(exc)
        except (IdentityError, SignatureError) as exc:
            status, info = "FORBIDDEN", f"implicit policy evaluation failed: {exc}"
        if status:
            await self._abort(context, SC.ABORTED, "received unsuccessful response from orderer: "
                              f"status={status}, info={info}")
        try:
            self.orderer.broadcast(tx.txid, env.SerializeToString())
        except RuntimeError as exc:
            await self._abort(context, SC.UNAVAILABLE, "no orderers could successfully process "
                              "transaction", [gateway_pb2.ErrorDetail(
                                  address="orderer0.orderer.mip.local:7050", msp_id="OrdererMSP",
                                  message=str(exc))])
        return gateway_pb2.SubmitResponse()

    # ---- CommitStatus --------------------------------------------------------------------
    async def _check_signed(self, data: bytes, identity: bytes, signature: bytes,
                            context: Any) -> None:
        try:
            ident = self.msp.validate(identity)
            verify_signature(ident, data, signature)
        except (IdentityError, SignatureError) as exc:
            await self._abort(context, SC.PERMISSION_DENIED,
                              f"failed evaluating policy on signed data during check policy "
                              f"[/Channel/Application/Writers]: [{exc}]")

    async def CommitStatus(self, signed: Any, context: Any
                           ) -> Any:
        if not signed.request:
            await self._abort(context, SC.INVALID_ARGUMENT, "a commit status request is required")
        try:
            req = gateway_pb2.CommitStatusRequest.FromString(signed.request)
        except DecodeError as exc:
            await self._abort(context, SC.INVALID_ARGUMENT, f"invalid status request: {exc}")
        await self._check_signed(signed.request, req.identity, signed.signature, context)
        if req.channel_id != self.channel:
            await self._abort(context, SC.FAILED_PRECONDITION,
                              f"channel '{req.channel_id}' not found")
        # A transaction the orderer holds is not committed yet: skip the ledger lookup. The
        # committer drops it from `pending` and resolves waiters in one step on this loop.
        txid = req.transaction_id
        found = None if txid in self.orderer.pending else self.store.tx_status(txid)
        if found is None:
            fut: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(req.transaction_id, []).append(fut)
            try:
                found = await fut
            finally:
                futs = self._waiters.get(req.transaction_id)
                if futs and fut in futs:
                    futs.remove(fut)
                    if not futs:
                        del self._waiters[req.transaction_id]
        code, block = found
        return gateway_pb2.CommitStatusResponse(result=code, block_number=block)

    # ---- ChaincodeEvents -----------------------------------------------------------------
    async def ChaincodeEvents(self, signed: Any,
                              context: Any) -> AsyncIterator[Any]:
        if not signed.request:
            await self._abort(context, SC.INVALID_ARGUMENT,
                              "a chaincode events request is required")
        try:
            req = gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)
        except DecodeError as exc:
            await self._abort(context, SC.INVALID_ARGUMENT,
                              f"invalid chaincode events request: {exc}")
        await self._check_signed(signed.request, req.identity, signed.signature, context)
        if req.channel_id != self.channel:
            await self._abort(context, SC.NOT_FOUND, f"channel '{req.channel_id}' not found")
        start: int | None = None
        if req.after_transaction_id:
            start = self.store.tx_block(req.after_transaction_id)
        if start is None:
            kind = req.start_position.WhichOneof("Type")
            start = (req.start_position.specified.number if kind == "specified"
                     else self.orderer.height)
        after = req.after_transaction_id
        passed = not after
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            next_block = start
            while True:
                height = self.orderer.height
                if next_block < height:
                    for number, events in self._events_between(req.chaincode_id, next_block,
                                                               height):
                        matched = []
                        for ev in events:
                            if not passed:
                                passed = ev.tx_id == after
                                continue
                            matched.append(ev)
                        if matched:
                            yield gateway_pb2.ChaincodeEventsResponse(block_number=number,
                                                                      events=matched)
                    next_block = height
                while True:  # wait for a commit beyond what was sent
                    number = await sub.queue.get()
                    if number >= next_block:
                        break
        finally:
            self._subscribers.discard(sub)

    def _events_between(self, chaincode: str, start: int, end: int
                        ) -> list[tuple[int, list[Any]]]:
        grouped: dict[int, list[Any]] = {}
        for block, _txnum, txid, name, payload in self.store.events_from(chaincode, start, end):
            grouped.setdefault(block, []).append(chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=chaincode, tx_id=txid, event_name=name, payload=payload))
        return sorted(grouped.items())
