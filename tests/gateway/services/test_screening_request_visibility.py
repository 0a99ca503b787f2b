"""A screening party reads the querier's request through its own org's peer, which on real
Fabric may commit the block a moment after the querier's peer (docs/deploy.md, "commit
visibility across orgs"): "not found" is read again for a while (REQUEST_VISIBLE_WAIT_S)
before the request is refused; any other chaincode error refuses at once; one never recorded
is refused once the wait is over."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.fabric import ChaincodeError
from gateway.services import screening_consortium as sc

REQUEST_ID = "ab" * 16


def chaincode_error(message: str) -> ChaincodeError:
    error = ChaincodeError(f"chaincode said {message}")
    error.chaincode_message = message
    return error


class Peer:
    """The party's own peer: answers "not found" `misses` times, then the record (or raises
    `error` every time)."""

    def __init__(self, misses: int, error: ChaincodeError | None = None) -> None:
        self.misses, self.error, self.reads = misses, error, 0

    async def evaluate(self, name: str, args: list[str]) -> bytes:
        assert name == "Screening:Get" and args == [REQUEST_ID]
        self.reads += 1
        if self.error is not None:
            raise self.error
        if self.reads <= self.misses:
            raise chaincode_error("not_found: no such screening request")
        return json.dumps({"org": "HospitalMSP", "time": time.time()}).encode()


@pytest.fixture
def bridge() -> Iterator[Any]:
    """A `_Bridge` bound to an event loop running in a thread (as the gateway's is)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bridge = sc._Bridge()
    bridge.loop = loop
    yield bridge
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def requests(peer: Peer, bridge: Any) -> sc.LedgerRequests:
    state = SimpleNamespace(settings=SimpleNamespace(org="SchoolMSP"),
                            ledger=SimpleNamespace(carrier=lambda org: peer))
    return sc.LedgerRequests(state, bridge, timeout=30.0)  # type: ignore[arg-type]


def test_a_request_reaching_this_peer_late_is_found(bridge: Any) -> None:
    peer = Peer(misses=3)
    found = requests(peer, bridge).lookup(REQUEST_ID)
    assert found is not None and found.querier == "HospitalMSP"
    assert peer.reads == 4


def test_an_unrecorded_request_is_refused_after_the_wait(
        bridge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "REQUEST_VISIBLE_WAIT_S", 0.5)
    peer = Peer(misses=10**6)
    started = time.monotonic()
    assert requests(peer, bridge).lookup(REQUEST_ID) is None
    assert time.monotonic() - started >= 0.5 and peer.reads > 1


def test_another_chaincode_error_is_not_read_again(bridge: Any) -> None:
    peer = Peer(misses=0, error=chaincode_error("access_denied: not a member"))
    assert requests(peer, bridge).lookup(REQUEST_ID) is None
    assert peer.reads == 1
