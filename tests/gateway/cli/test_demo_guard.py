"""The demo's guard on cross-org steps (gateway/cli/demo_story.py), against stub gateways:
a step whose route between gateways answers 404 `not_found` at the gateway that must serve
it says "not yet available in this build" and sends nothing anywhere else; once the route is
there, the step's own answers are checked as usual (a 404 is then a failure); the all-orgs
gateway is never asked; the steps needing what a missing step makes say so in turn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli.demo_story import (
    NOT_YET,
    STAFF,
    Holder,
    NotAvailableYet,
    StepFailed,
    Story,
)
from gateway.cli.environment import Environment

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
PER_ORG = {HOSPITAL: "http://hospital", SCHOOL: "http://school", PHARMACY: "http://pharmacy"}
Handler = Callable[[httpx.Request], httpx.Response]


class StubCamera:
    def answer(self, challenge: Any, who: str) -> dict[str, Any]:
        return {"challenge_id": "c", "frames": []}


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}})


def story(handler: Handler, per_org: bool = True) -> tuple[Story, list[str], list[str]]:
    urls = PER_ORG if per_org else dict.fromkeys(PER_ORG, "http://all-orgs")
    env = Environment(Path("/nonexistent"), Path("/nonexistent/connection.json"),
                      urls[HOSPITAL], Path("/nonexistent/gateway.yaml"), org_urls=urls,
                      per_org=per_org)
    for spec in STAFF:
        env.staff[spec.key], env.tokens[spec.key] = spec, f"token-of-{spec.key}"
    lines: list[str] = []
    sent: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.url.host} {request.method} {request.url.path}")
        return handler(request)

    told = Story(env, StubCamera(), lines.append)  # type: ignore[arg-type]
    for url in set(urls.values()):
        told._clients[url] = httpx.Client(base_url=url,
                                          transport=httpx.MockTransport(recording))
    told.holders["grace_hopper"] = Holder("grace_hopper", "p" * 64, {HOSPITAL: "h" * 64})
    told.holders["astronaut"] = Holder("astronaut", "a" * 64)
    return told, lines, sent


def desk(request: httpx.Request) -> httpx.Response:
    """A desk that opens sessions and accounts (the happy path of a custody unlock)."""
    path = request.url.path
    if path == "/api/v1/custody/unlocks":
        return error(401, "unauthenticated")  # present: asks for the peer's signature
    if path == "/api/v1/holders/sessions":
        return httpx.Response(201, json={"session_id": "s" * 32, "challenge": {}})
    if path.endswith("/unlock"):
        return httpx.Response(200, json={"level": 2})
    if path == "/api/v1/accounts":
        return httpx.Response(201, json={"pseudonym": "q" * 64})
    if request.method == "DELETE":
        return httpx.Response(204)
    return error(500, "unexpected")


def test_absent_route_is_not_yet_available_and_nothing_is_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(404, "not_found")

    told, _, sent = story(handler)
    with pytest.raises(NotAvailableYet) as raised:
        told.cross_org_school_account()
    assert ("HospitalMSP's gateway answered 404 to POST /api/v1/custody/unlocks"
            in str(raised.value))
    # Only the probe, to the Hospital's gateway; nothing to the School's or anyone else.
    assert sent == ["hospital POST /api/v1/custody/unlocks"]
    assert told._acted == []


def test_present_route_makes_the_steps_own_404_a_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/unlock"):
            return error(404, "passport_not_found")
        return desk(request)

    told, _, sent = story(handler)
    with pytest.raises(StepFailed, match="404 passport_not_found"):
        told.cross_org_school_account()
    assert sent[0] == "hospital POST /api/v1/custody/unlocks"
    assert all(line.startswith("school ") for line in sent[1:]) and len(sent) > 2


def test_present_route_runs_the_step_at_the_desks_gateway() -> None:
    told, _, sent = story(desk)
    assert "pseudonymous account at SchoolMSP" in told.cross_org_school_account()
    assert told._acted == [SCHOOL]
    assert {line.split()[0] for line in sent[1:]} == {"school"}


def test_the_all_orgs_gateway_is_never_probed() -> None:
    told, _, sent = story(desk, per_org=False)
    told.cross_org_school_account()
    assert not any("custody" in line for line in sent)
    assert {line.split()[0] for line in sent} == {"all-orgs"}


def test_run_prints_not_yet_available_and_the_steps_that_need_it_follow() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(404, "not_found")

    told, lines, _ = story(handler)
    told.steps = lambda: [  # type: ignore[method-assign]
        ("cross-org: open grace_hopper's School account at the School's desk",
         told.cross_org_school_account, "the School account"),
        ("issue a diploma and a transcript (School registrar)", told.issue_diploma,
         "the diploma"),
    ]
    assert told.run() is True
    text = "\n".join(lines)
    assert text.count("acted: no gateway (nothing was sent)") == 2
    assert f"{NOT_YET} (" in text
    assert f"needs the School account, {NOT_YET} (step 1)" in text
    assert [outcome for _, outcome, _, _ in told.results] == [NOT_YET, NOT_YET]
    assert json.dumps(told.results)  # printable, nothing but strings


def test_pages_name_each_roles_gateway_and_the_wallets_steps() -> None:
    """The lines `mip demo` prints after the story, read by the same check as a real run's."""
    from demo_kit import check_pages

    for per_org in (True, False):
        told, _, _ = story(desk, per_org=per_org)
        printed = [f"[{n:2d}] {title}\n     acted: x\n     ok (0.0 s): done"
                   for n, (title, _, _) in enumerate(told.steps(), 1)]
        stdout = "\n".join(printed + told.pages())
        urls = PER_ORG if per_org else dict.fromkeys(PER_ORG, "http://all-orgs")
        check_pages(stdout, urls)
        assert "token-of-" not in stdout  # no staff token is printed
        if per_org:  # the check can fail: a page at another org's gateway is caught
            with pytest.raises(AssertionError):
                check_pages(stdout, {**urls, PHARMACY: urls[HOSPITAL]})

