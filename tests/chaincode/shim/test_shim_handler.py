"""Stream behaviour: errors, concurrency, duplicates, keepalive, INIT and logging hygiene."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from shim_testkit import CHANNEL, MSG, FakePeer, Running, connect_peer

from chaincode.shim._protos import chaincode_pb2


async def test_peer_error_raises_inside_the_contract(peer: FakePeer) -> None:
    peer.fail[MSG.GET_STATE] = "GET_STATE failed: transaction ID: abc: ledger closed"
    out = await peer.invoke(["Probe:CatchPeerError", "k"])
    assert out.json() == {
        "error": "PeerError",
        "message": "GET_STATE failed: transaction ID: abc: ledger closed",
    }


async def test_uncaught_peer_error_is_a_clean_500(peer: FakePeer) -> None:
    peer.fail[MSG.PUT_STATE] = "collection col9 not defined"
    out = await peer.invoke(["Probe:Put", "k", "v"])
    assert (out.status, out.text) == (500, "collection col9 not defined")
    assert out.payload == b""


async def test_unexpected_exception_is_a_generic_500_without_traceback(
    peer: FakePeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = await peer.invoke(["Probe:Boom", "s3cr3t-arg"])
    assert out.status == 500
    assert out.text.startswith("internal error in transaction Boom (error id ")
    assert "Traceback" not in out.text and "s3cr3t" not in out.text and "leaked" not in out.text
    error_id = out.text.rsplit(" ", 1)[1].rstrip(")")
    assert error_id in caplog.text and "RuntimeError" in caplog.text
    assert "s3cr3t" not in caplog.text


async def test_contract_error_keeps_its_message_and_status(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Fail", "the asset x does not exist"])
    assert (out.status, out.text) == (500, "the asset x does not exist")
    out = await peer.invoke(["Probe:Fail", "404"])
    assert out.status == 404


async def test_hundred_concurrent_transactions_on_one_stream(peer: FakePeer) -> None:
    peer.jitter = True  # replies come back out of order across transactions
    for i in range(100):
        peer.state[("", f"c{i}")] = str(i * 10).encode()
    outcomes = await asyncio.gather(
        *(peer.invoke(["Probe:Increment", f"c{i}", str(i % 5)]) for i in range(100))
    )
    assert [o.json() for o in outcomes] == [i * 10 + 1 for i in range(100)]
    assert all(peer.state[("", f"c{i}")] == str(i * 10 + 1).encode() for i in range(100))
    # Every request carried its own transaction's id.
    txids = {o.message.txid for o in outcomes}
    assert len(txids) == 100
    assert {m.txid for m in peer.requests(MSG.GET_STATE)} == txids


async def test_duplicate_running_txid_is_refused(peer: FakePeer) -> None:
    peer.state[("", "d")] = b"0"
    first = asyncio.create_task(peer.invoke(["Probe:Increment", "d", "300"], txid="dup-1"))
    await asyncio.sleep(0.1)
    # The fake peer keys waiters by (channel, txid): wait for the refusal on the same key.
    future = peer.expect(CHANNEL, "dup-1")
    await peer.write(
        MSG(
            type=MSG.TRANSACTION,
            payload=chaincode_pb2.ChaincodeInput(args=[b"Probe:Get", b"d"]).SerializeToString(),
            txid="dup-1",
            channel_id=CHANNEL,
        )
    )
    refusal = await asyncio.wait_for(future, 5)
    assert refusal.type == MSG.ERROR and b"already running" in refusal.payload
    # The first transaction was not disturbed.
    future = peer.expect(CHANNEL, "dup-1")
    first.cancel()
    done = await asyncio.wait_for(future, 5)
    assert done.type == MSG.COMPLETED
    # The same tx id on another channel is a different transaction.
    out = await peer.invoke(["Probe:Get", "d"], txid="dup-1", channel="otherchannel")
    assert out.status == 200


async def test_keepalive_is_echoed(peer: FakePeer) -> None:
    await peer.write(MSG(type=MSG.KEEPALIVE, txid="ka"))
    echoed = await asyncio.wait_for(peer.keepalives.get(), 5)
    assert echoed.type == MSG.KEEPALIVE and echoed.txid == "ka"


async def test_init_failure_is_answered_error(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Fail", "init refused"], msg_type=MSG.INIT)
    assert out.type == MSG.ERROR and out.message.payload == b"init refused"
    out = await peer.invoke(["AssetContract:InitLedger"], msg_type=MSG.INIT)
    assert out.type == MSG.COMPLETED and out.status == 200


async def test_transaction_without_proposal_still_runs(peer: FakePeer) -> None:
    future = peer.expect(CHANNEL, "np")
    await peer.write(
        MSG(
            type=MSG.TRANSACTION,
            payload=chaincode_pb2.ChaincodeInput(args=[b"Other:Ping"]).SerializeToString(),
            txid="np",
            channel_id=CHANNEL,
        )
    )
    done = await asyncio.wait_for(future, 5)
    assert done.type == MSG.COMPLETED


async def test_bad_proposal_is_answered_error(peer: FakePeer) -> None:
    from chaincode.shim._protos import proposal_pb2

    future = peer.expect(CHANNEL, "bad")
    await peer.write(
        MSG(
            type=MSG.TRANSACTION,
            payload=chaincode_pb2.ChaincodeInput(args=[b"Other:Ping"]).SerializeToString(),
            txid="bad",
            channel_id=CHANNEL,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff"),
        )
    )
    done = await asyncio.wait_for(future, 5)
    assert done.type == MSG.ERROR and done.payload.startswith(b"failed to create new ChaincodeStub")


async def test_transaction_before_ready_ends_the_stream(shim: Running) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{shim.port}")
    from chaincode.shim._protos import shim_pb2_grpc

    call = shim_pb2_grpc.ChaincodeStub(channel).Connect()
    assert (await call.read()).type == MSG.REGISTER
    await call.write(MSG(type=MSG.TRANSACTION, txid="early", channel_id=CHANNEL))
    error = await asyncio.wait_for(call.read(), 5)
    assert error.type == MSG.ERROR and b"while in state: created" in error.payload
    assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
    await channel.close()


async def test_stream_end_fails_waiting_stub_calls_and_stops_transactions() -> None:
    """Driven without gRPC: the peer's side of the stream is a queue."""
    from shim_contracts import Probe

    from chaincode.shim import Router, StreamClosedError, StreamHandler
    from chaincode.shim.txstate import TxState

    incoming: asyncio.Queue[object] = asyncio.Queue()

    async def peer_messages() -> AsyncIterator[object]:
        while (msg := await incoming.get()) is not None:
            yield msg

    handler = StreamHandler("cc:1", Router([Probe()]))
    outgoing = handler.connect(peer_messages())
    assert (await anext(outgoing)).type == MSG.REGISTER
    incoming.put_nowait(MSG(type=MSG.REGISTERED))
    incoming.put_nowait(MSG(type=MSG.READY))
    incoming.put_nowait(
        MSG(
            type=MSG.TRANSACTION,
            payload=chaincode_pb2.ChaincodeInput(args=[b"Probe:Get", b"k"]).SerializeToString(),
            txid="t1",
            channel_id=CHANNEL,
        )
    )
    request = await asyncio.wait_for(anext(outgoing), 5)
    assert request.type == MSG.GET_STATE and request.txid == "t1"
    assert handler.ready
    incoming.put_nowait(None)  # the peer goes away
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(outgoing), 5)
    # A stub call made after the stream ended fails at once instead of hanging.
    with pytest.raises(StreamClosedError):
        await handler.call(TxState(CHANNEL, "t2"), MSG.GET_STATE, b"")


async def test_server_serves_a_new_stream_after_one_ends(shim: Running) -> None:
    first = await connect_peer(shim.port)
    assert (await first.invoke(["Other:Ping"])).payload == b"pong"
    await first.close()
    await first.channel.close()
    again = await connect_peer(shim.port)
    assert (await again.invoke(["Other:Ping"])).payload == b"pong"
    await again.close()
    await again.channel.close()


async def test_logs_never_carry_values_or_transient_data(
    peer: FakePeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state_value = "STATE-VALUE-7f3a"
    transient_value = b"TRANSIENT-SECRET-91c2"
    peer.state[("", "chat")] = state_value.encode()
    out = await peer.invoke(["Probe:Chatty", "chat"], transient={"secret": transient_value})
    assert out.json() == len(transient_value)
    out = await peer.invoke(["Probe:Put", "k2", "PUT-VALUE-55d1"])
    peer.fail[MSG.GET_STATE] = "peer failure"
    await peer.invoke(["Probe:Get", "k2"])
    await peer.invoke(
        ["Probe:Typed", "not-a-number-SECRET", "1", "true", "[]", "{}", "{}", "", "null", "{}"]
    )
    assert "Chatty read" in caplog.text  # the contract's own logging was captured
    assert "send PUT_STATE" in caplog.text and "recv TRANSACTION" in caplog.text
    for secret in (state_value, transient_value.decode(), "PUT-VALUE-55d1", "SECRET"):
        assert secret not in caplog.text


async def test_failed_write_fails_every_waiting_stub_call() -> None:
    """Driven without gRPC: once the transport fails a send, calls waiting on the peer fail
    at once, and nothing more is sent."""
    from shim_contracts import Probe

    from chaincode.shim import Router, StreamHandler

    written: list[object] = []
    broken = False

    def send(msg: object) -> None:
        if broken:
            raise RuntimeError("stream reset")
        written.append(msg)

    def transaction(txid: str) -> object:
        args = [b"Probe:Get", b"k"]
        payload = chaincode_pb2.ChaincodeInput(args=args).SerializeToString()
        return MSG(type=MSG.TRANSACTION, payload=payload, txid=txid, channel_id=CHANNEL)

    handler = StreamHandler("cc:1", Router([Probe()]))
    handler.open(send)
    for msg in (MSG(type=MSG.REGISTERED), MSG(type=MSG.READY), transaction("t1")):
        assert handler.feed(msg)
    for _ in range(500):
        if any(getattr(m, "type", None) == MSG.GET_STATE for m in written):
            break
        await asyncio.sleep(0.001)
    broken = True  # t1 now waits for its GET_STATE reply; t2's request cannot be written
    assert handler.feed(transaction("t2"))
    for _ in range(500):
        if not handler._active:
            break
        await asyncio.sleep(0.001)
    assert not handler._active  # both transactions ended instead of waiting for ever
    assert [m.type for m in written] == [MSG.REGISTER, MSG.GET_STATE]  # type: ignore[attr-defined]
    assert not handler.feed(transaction("t3"))  # the stream is over
    handler.close()
