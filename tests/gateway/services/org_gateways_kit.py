"""Per-org gateways in one test: each org's own gateway (own data dir, settings `org`, the
others' addresses in `org_gateways`), all on one devnet, reaching each other in process
(httpx's ASGI transport in place of the network; requests between them are signed and
checked as over the network)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from enrolment_kit import session_headers, unlock
from gateway_testkit import GatewayClient, make_settings
from mip_testkit import MipNetwork

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.core.peer_auth import PeerSigner
from gateway.fabric import ConnectionProfile
from gateway.main import create_app
from gateway.services.peer_requests import peer_requests
from gateway.services.state import build_state

ALL_ORGS = (HOSPITAL, SCHOOL, PHARMACY)
CUSTODY = "/api/v1/custody"


def org_url(org: str) -> str:
    return f"http://{org.lower()}.gateway"


@asynccontextmanager
async def org_gateways(network: MipNetwork, engine: FaceEngine, tmp_path: Path,
                       orgs: Iterable[str] = ALL_ORGS
                       ) -> AsyncIterator[dict[str, GatewayClient]]:
    """One gateway per org in `orgs`, each configured with the others' addresses."""
    orgs = tuple(orgs)
    async with AsyncExitStack() as stack:
        clients: dict[str, GatewayClient] = {}
        apps = {}
        for org in orgs:
            settings = make_settings(tmp_path / org / "gateway", network.connection, org=org,
                                     org_gateways={o: org_url(o) for o in orgs if o != org})
            state = build_state(settings)
            state._face = engine
            app = create_app(state=state)
            app.state.mip = state
            apps[org] = app
            http = await stack.enter_async_context(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://gateway", timeout=120))
            stack.push_async_callback(state.close)
            clients[org] = GatewayClient(state, http)
        for org, gw in clients.items():
            for other, app in apps.items():
                if other != org:
                    peer_requests(gw.state).transports[other] = httpx.ASGITransport(
                        app=app, raise_app_exceptions=False)
        yield clients


def peer_signer(connection: Path, org: str, user: str) -> PeerSigner:
    """A signer with `org`'s identity `user` from the connection profile (its gateway's
    `mip-gateway`, or another identity for the refusals)."""
    profile = ConnectionProfile.load(connection).org(org).users[user]
    return PeerSigner(org, profile.cert_path, profile.key_path)


async def raw_custody(gw: GatewayClient, path: str, payload: dict[str, Any],
                      headers: dict[str, str]) -> httpx.Response:
    """A request to `gw`'s custody API with exactly the headers given (signed or not)."""
    return await gw.http.post(CUSTODY + path, content=json.dumps(payload).encode(),
                              headers={"Content-Type": "application/json", **headers})


async def desk_unlock(gw: GatewayClient, org: str, who: str, passport_id: str,
                      password: str | None) -> httpx.Response:
    """`who` unlocks `passport_id` at `org`'s registrar desk on `gw`."""
    return await unlock(gw, who, passport_id, password=password, staff=(org, "registrar"))


def holder(response: httpx.Response) -> dict[str, str]:
    """The holder-session headers of an unlock's answer."""
    return session_headers(response)
