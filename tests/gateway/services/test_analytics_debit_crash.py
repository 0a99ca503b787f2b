"""An analytics query cut off by a crash (issue #16): at each point (before the debit was
submitted, endorsed but never ordered, committed but unanswered, answer computed but not
stored, answer stored but the response lost) the gateway restarted over the same data dir and
the ledger agree once the researcher retries with the same `request_id`: the dataset debited
exactly once, the intent's remaining budget the ledger's, and the answer released once and
then repeated unchanged (gateway/services/research_queries.py).

The crash is an exception raised at the point that none of the query path's handlers catch
(as kill -9 runs none); the restart is a fresh app state over the same data dir."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testkit import GatewayClient, assert_error, make_settings
from ledger_kit import HOSPITAL
from mip_testkit import MipNetwork
from test_analytics import register

from gateway.fabric import Contract, Transaction
from gateway.main import create_app
from gateway.services.research_queries import QueryIntents
from gateway.services.state import build_state

URL = "/api/v1/analytics/queries"
TOTAL_MICRO = 6_000_000
EPSILON_MICRO = 500_000


class Crash(Exception):
    """The injected crash."""


@asynccontextmanager
async def restarted(network: MipNetwork, data_dir: Path) -> AsyncIterator[GatewayClient]:
    """A fresh gateway (app state) over the same data dir."""
    state = build_state(make_settings(data_dir, network.connection))
    app = create_app(state=state)
    app.state.mip = state
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        try:
            yield GatewayClient(state, http)
        finally:
            await state.close()


async def _ledger(gw: GatewayClient, dataset_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(await gw.state.ledger.carrier(HOSPITAL).evaluate(
        "Research:Get", [dataset_id]))
    return record


def _body(dataset_id: str, request_id: str) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "request_id": request_id,
            "query": {"kind": "count", "epsilon": EPSILON_MICRO / 1e6}}


def _debit_raising(*, after: bool) -> tuple[Any, str, Any]:
    submit = Contract.submit

    async def crash(self: Contract, tx: str, *args: Any, **kwargs: Any) -> bytes:
        if tx == "Research:Debit":
            if after:
                await submit(self, tx, *args, **kwargs)
            raise Crash(f"injected {'after' if after else 'before'} Research:Debit")
        return await submit(self, tx, *args, **kwargs)
    return Contract, "submit", crash


def _before_submit() -> tuple[Any, str, Any]:
    return _debit_raising(after=False)


def _before_ordering() -> tuple[Any, str, Any]:
    async def crash(self: Transaction, **kwargs: Any) -> Any:
        raise Crash("injected before the transaction reached the orderer")
    return Transaction, "submit", crash


def _after_commit() -> tuple[Any, str, Any]:
    return _debit_raising(after=True)


def _before_the_answer_is_stored() -> tuple[Any, str, Any]:
    def crash(self: QueryIntents, *args: Any) -> None:
        raise Crash("injected after the answer was computed, before it was stored")
    return QueryIntents, "set_answer", crash


@pytest.mark.parametrize("point", [_before_submit, _before_ordering, _after_commit,
                                   _before_the_answer_is_stored])
async def test_debit_crash_then_retry(point: Any, gw: GatewayClient, gw_network: MipNetwork,
                                      gw_data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_id = await register(gw, TOTAL_MICRO / 1e6)
    body = _body(dataset_id, f"q-{secrets.token_hex(8)}")
    target, name, crash = point()
    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        r = await gw.http.post(URL, headers=gw.staff(HOSPITAL, "researcher"), json=body)
    assert r.status_code == 500, r.text
    paid = point in (_after_commit, _before_the_answer_is_stored)
    assert (await _ledger(gw, dataset_id))["debits"] == int(paid)
    async with restarted(gw_network, gw_data_dir) as again:
        researcher = again.staff(HOSPITAL, "researcher")
        r = await again.http.post(URL, headers=researcher, json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        ledger = await _ledger(again, dataset_id)
        # Debited once, whatever the point; the answer says what the ledger says.
        assert ledger["debits"] == 1
        assert ledger["remaining_epsilon_micro"] == TOTAL_MICRO - EPSILON_MICRO
        assert answer["remaining_epsilon_micro"] == ledger["remaining_epsilon_micro"]
        assert answer["request_id"] == body["request_id"]
        # The response lost too: the same draw again, nothing spent.
        r = await again.http.post(URL, headers=researcher, json=body)
        assert r.status_code == 200 and r.json() == answer, r.text
        assert (await _ledger(again, dataset_id))["debits"] == 1


async def test_request_ids_are_the_researchers_and_the_queries(gw: GatewayClient) -> None:
    """A request_id names one query of one researcher: another query under it is 409 and
    spends nothing; another researcher's identical request_id is their own query. Without a
    request_id each call is a new debit, as before."""
    dataset_id = await register(gw, TOTAL_MICRO / 1e6, admit=(HOSPITAL, "SchoolMSP"))
    body = _body(dataset_id, "shared-request-id")
    hospital = gw.staff(HOSPITAL, "researcher")
    r = await gw.http.post(URL, headers=hospital, json=body)
    assert r.status_code == 200, r.text
    other = {**body, "query": {"kind": "count", "epsilon": 0.25}}
    assert_error(await gw.http.post(URL, headers=hospital, json=other), 409,
                 "request_id_reused")
    assert (await _ledger(gw, dataset_id))["debits"] == 1
    r = await gw.http.post(URL, headers=gw.staff("SchoolMSP", "researcher"), json=body)
    assert r.status_code == 200, r.text
    assert (await _ledger(gw, dataset_id))["debits"] == 2
    plain = {"dataset_id": dataset_id, "query": body["query"]}
    for expected in (3, 4):
        r = await gw.http.post(URL, headers=hospital, json=plain)
        assert r.status_code == 200 and "request_id" not in r.json(), r.text
        assert (await _ledger(gw, dataset_id))["debits"] == expected
    assert_error(await gw.http.post(URL, headers=hospital, json={**body, "request_id": "bad!"}),
                 422, "invalid_request")


async def test_a_refused_debit_leaves_no_intent(gw: GatewayClient) -> None:
    """Over budget: refused and forgotten, so the same request_id may be asked again (and is
    refused again, nothing spent)."""
    dataset_id = await register(gw, 0.4)
    body = _body(dataset_id, f"q-{secrets.token_hex(8)}")
    hospital = gw.staff(HOSPITAL, "researcher")
    for _ in range(2):
        assert_error(await gw.http.post(URL, headers=hospital, json=body), 409,
                     "budget_exhausted")
    assert gw.state.db.query_one("SELECT 1 FROM research_queries WHERE request_id = ?",
                                 (body["request_id"],)) is None
    assert (await _ledger(gw, dataset_id))["debits"] == 0


async def test_a_double_click_pays_once(gw: GatewayClient) -> None:
    """Two calls of one request_id at once: the second waits for the first and repeats its
    answer; one debit."""
    dataset_id = await register(gw, TOTAL_MICRO / 1e6)
    body = _body(dataset_id, f"q-{secrets.token_hex(8)}")
    hospital = gw.staff(HOSPITAL, "researcher")
    first, second = await asyncio.gather(*(gw.http.post(URL, headers=hospital, json=body)
                                           for _ in range(2)))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    assert (await _ledger(gw, dataset_id))["debits"] == 1
