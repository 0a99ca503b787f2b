"""TLS, server name override and mutual TLS against the fake gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from fabric_testkit import FakeGateway, Served, User, issue, make_ca, serve

from gateway.fabric import Deadlines, EvaluateError, Gateway

FAST = Deadlines(evaluate=3)


@asynccontextmanager
async def running(**kwargs: object) -> AsyncIterator[Served]:
    served = await serve(FakeGateway(), **kwargs)  # type: ignore[arg-type]
    try:
        yield served
    finally:
        await served.server.stop(grace=None)


async def _read(gw: Gateway) -> None:
    contract = gw.get_network("mipchannel").get_contract("mip")
    with pytest.raises(EvaluateError) as info:  # the call reached the chaincode
        await contract.evaluate("ReadAsset", ["nothing"])
    assert info.value.code == grpc.StatusCode.UNKNOWN


async def test_tls_with_server_name_override(user: User) -> None:
    async with running(hosts=["peer0.hospital.mip.local"]) as served:
        assert served.tls_ca is not None
        async with Gateway.connect(
            served.endpoint,
            user.identity,
            user.signer,
            tls_root_cert=served.tls_ca.cert_pem,
            server_name_override="peer0.hospital.mip.local",
            deadlines=FAST,
        ) as gw:
            await _read(gw)
            await gw.wait_ready(2)


async def test_tls_refuses_wrong_root(user: User) -> None:
    async with running() as served:
        other = make_ca("someone-else")
        async with Gateway.connect(
            served.endpoint,
            user.identity,
            user.signer,
            tls_root_cert=other.cert_pem,
            deadlines=Deadlines(evaluate=2),
        ) as gw:
            with pytest.raises(EvaluateError) as info:
                await gw.get_network("mipchannel").get_contract("mip").evaluate("ReadAsset", ["a"])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls(user: User) -> None:
    async with running(mutual=True) as served:
        assert served.tls_ca is not None and served.client_ca is not None
        client = issue(served.client_ca, "User1@hospital.mip.local", client=True)
        connect: Callable[..., Gateway] = Gateway.connect
        async with connect(
            served.endpoint,
            user.identity,
            user.signer,
            tls_root_cert=served.tls_ca.cert_pem,
            client_cert=client.cert_pem,
            client_key=client.key_pem,
            deadlines=FAST,
        ) as gw:
            await _read(gw)
        # Without a client certificate the handshake fails.
        async with connect(
            served.endpoint,
            user.identity,
            user.signer,
            tls_root_cert=served.tls_ca.cert_pem,
            deadlines=Deadlines(evaluate=2),
        ) as gw:
            with pytest.raises(EvaluateError) as info:
                await gw.get_network("mipchannel").get_contract("mip").evaluate("ReadAsset", ["a"])
            assert info.value.code == grpc.StatusCode.UNAVAILABLE


async def test_insecure_channel_and_bad_arguments(user: User) -> None:
    async with running(tls=False) as served:
        async with Gateway.connect(
            served.endpoint, user.identity, user.signer, insecure=True, deadlines=FAST
        ) as gw:
            await _read(gw)
    with pytest.raises(ValueError):
        Gateway.connect("x:1", user.identity, user.signer, client_cert=b"c")
    with pytest.raises(ValueError):
        Gateway.connect("x:1", user.identity, user.signer, insecure=True, tls_root_cert=b"r")
    with pytest.raises(ValueError):
        Deadlines(evaluate=0)


def test_connect_outside_event_loop_is_refused(user: User) -> None:
    with pytest.raises(RuntimeError, match="event loop"):
        Gateway.connect("127.0.0.1:1", user.identity, user.signer, insecure=True)
