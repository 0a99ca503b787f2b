"""What `mip demo`'s story must print, one gateway per org, and the desk side of the story on
a host of its own.

`check_steps(stdout)` reads the printed steps (`[ n] title`, `acted: ...`, the outcome) and
checks each against the org where it happens (`ACTS_AT`) and against this build's routes: a
step that needs the custody relay or the portrait keys route says "not yet available in this
build", with nothing sent, exactly when this build lacks that route, and passes otherwise.

Run as a script inside a host (tests/gateway/cli/test_demo_multi_host.py):

    python demo_kit.py vouch-k CONNECTION     # the network admins set vouch_k to 1
    python demo_kit.py story SPEC             # the story against the gateways in SPEC

SPEC (JSON, 0600: it holds the staff tokens) names the connection profile, each org's
gateway URL, the bundle of their certificates and the staff with their tokens.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
ORGS = (HOSPITAL, SCHOOL, PHARMACY)
NOT_YET = "not yet available in this build"
STEP = re.compile(r"^\[\s*(\d+)\] (.+)\n     acted: (.+)\n     (ok|FAILED|" + NOT_YET
                  + r") \([0-9.]+ s\): (.*)$", re.MULTILINE)
NOTHING_SENT = "no gateway (nothing was sent)"
CUSTODY_ROUTE = "/api/v1/custody/unlocks"
PORTRAIT_KEYS_ROUTE = "/api/v1/admin/portrait-keys"

# Where each step happens: the orgs whose gateways its requests go to (title prefix -> orgs).
ACTS_AT = {
    "enrol holder 1": {HOSPITAL},
    "enrol holder 2": {HOSPITAL},
    "cross-org: astronaut trying to enrol again at the School's desk": {SCHOOL},
    "vouch: grace_hopper vouches for astronaut at the Hospital's desk": {HOSPITAL},
    "open grace_hopper's Hospital account": {HOSPITAL},
    "cross-org: open grace_hopper's School account at the School's desk": {SCHOOL},
    "issue a prescription (Hospital doctor)": {HOSPITAL},
    "issue a diploma and a transcript (School registrar)": {SCHOOL},
    "cross-org: portrait keys": {HOSPITAL, PHARMACY},
    "grants at the Hospital's desk": {HOSPITAL},
    "grant at the School's desk": {SCHOOL},
    "pickup at the Pharmacy with another person's face": {PHARMACY},
    "pickup by the patient at the Pharmacy": {PHARMACY},
    "second pickup of the used-up prescription": {PHARMACY},
    "cross-org: astronaut vouches for grace_hopper at the School's desk": {SCHOOL},
    # the employer (a Hospital office) reads; anyone checks the copy at another gateway
    "employer checks the diploma": {HOSPITAL, PHARMACY, SCHOOL},
    # each account's log at its own desk: the School's only once the School account exists
    "holder's access log": {HOSPITAL, SCHOOL},
    "private statistic": {HOSPITAL},
    "revocation": {HOSPITAL, PHARMACY, SCHOOL},
}
# The steps that need the custody relay (directly, or through what it makes), the portrait.
NEEDS_CUSTODY = ("cross-org: open grace_hopper's School account", "issue a diploma",
                 "grant at the School's desk", "cross-org: astronaut vouches",
                 "employer checks the diploma")
NEEDS_PORTRAIT = ("cross-org: portrait keys", "pickup at the Pharmacy with another",
                  "pickup by the patient", "second pickup")
STEPS_PER_ORG = 19


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    acted: str
    outcome: str
    text: str


def steps(stdout: str) -> list[Step]:
    return [Step(int(n), title, acted, outcome, text)
            for n, title, acted, outcome, text in STEP.findall(stdout)]


def this_build_has(route: str) -> bool:
    """Whether the gateway of this build offers `route` (e.g. "/api/v1/custody/unlocks")."""
    from fastapi import FastAPI

    from gateway.api.router import api_router

    # FastAPI (>= 0.165) includes sub-routers lazily, so api_router.routes has no paths of
    # its own; the OpenAPI document lists every route with its full path.
    app = FastAPI()
    app.include_router(api_router)
    return route in app.openapi()["paths"]


def acted_orgs(acted: str) -> set[str]:
    assert acted != NOTHING_SENT
    return {part.removesuffix("'s gateway") for part in acted.split(", ")}


def expected_orgs(title: str, custody: bool) -> set[str]:
    matches = [orgs for prefix, orgs in ACTS_AT.items() if title.startswith(prefix)]
    assert len(matches) == 1, f"no single expectation for step {title!r}"
    if title.startswith("holder's access log") and not custody:
        return matches[0] - {SCHOOL}
    return matches[0]


def check_steps(stdout: str) -> list[Step]:
    """Every step of the per-org story printed, each ok at the orgs where it happens, or
    (exactly when this build lacks the route it needs) not yet available with nothing
    sent. Returns the steps."""
    found = steps(stdout)
    assert [s.number for s in found] == list(range(1, STEPS_PER_ORG + 1)), stdout[-3000:]
    custody, portrait = this_build_has(CUSTODY_ROUTE), this_build_has(PORTRAIT_KEYS_ROUTE)
    for step in found:
        blocked = ((not custody and step.title.startswith(NEEDS_CUSTODY))
                   or (not portrait and step.title.startswith(NEEDS_PORTRAIT)))
        assert step.outcome == (NOT_YET if blocked else "ok"), step
        if step.outcome == "ok":
            assert acted_orgs(step.acted) == expected_orgs(step.title, custody), step
        else:
            # Guarded: nothing went to any gateway in its place; it says why.
            assert step.acted == NOTHING_SENT, step
            assert (f"answered 404 to POST {CUSTODY_ROUTE}" in step.text
                    or f"answered 404 to POST {PORTRAIT_KEYS_ROUTE}" in step.text
                    or step.text.startswith("needs ")), step
    waiting = sum(s.outcome == NOT_YET for s in found)
    assert (f"{len(found) - waiting} of {len(found)} steps gave their expected outcome"
            in stdout)
    return found


# Where each role's page is printed (after the steps): page label -> (org, path).
PAGES = {"enrolment desk (registrar)": (HOSPITAL, "/enrol/"),
         "holder services desk: accounts, wallet link, key moves (registrar)":
             (HOSPITAL, "/holder-desk/"),
         "issuer desk, prescriptions (doctor)": (HOSPITAL, "/issuer/"),
         "issuer desk, diplomas and transcripts (school registrar)": (SCHOOL, "/issuer/"),
         "pharmacy counter (pharmacist)": (PHARMACY, "/counter/")}
# The wallet's part names the story's steps by number: a label -> the titles they must have.
WALLET_STEPS = {"grant create": ("grants at the Hospital's desk", "grant at the School's desk"),
                "the access log": ("holder's access log",),
                "enrolment": ("enrol holder 1", "enrol holder 2"),
                "pickups at the counter": ("pickup at the Pharmacy with another",
                                           "pickup by the patient", "second pickup")}


def check_pages(stdout: str, urls: dict[str, str]) -> None:
    """The printed pages: each role's at its own org's gateway (`urls`: org -> base URL),
    /check/ and /wallet/ at every gateway; the wallet's part says the holders are
    desk-custodied and names, by number, the steps this story printed with those titles."""
    for page, (org, path) in PAGES.items():
        assert f"  {page}: {urls[org]}{path} (" in stdout, (page, stdout[-3000:])
    for line_start, path in (("  credential check", "/check/"), ("  holder wallet", "/wallet/")):
        line = next(ln for ln in stdout.splitlines() if ln.startswith(line_start))
        assert all(f"{url}{path}" in line for url in urls.values()), line
    assert "this demo's holders are desk-custodied" in stdout
    titles = {s.number: s.title for s in steps(stdout)}
    for label, wanted in WALLET_STEPS.items():
        found = re.search(re.escape(label) + r" \(steps? ([0-9, ]+)\)", stdout)
        assert found, label
        numbers = [int(n) for n in found.group(1).split(", ")]
        assert [titles[n].startswith(w) for n, w in zip(numbers, wanted, strict=True)] \
            == [True] * len(wanted), (label, numbers)


# --- run inside a host --------------------------------------------------------------------

def _vouch_k(connection: Path) -> None:
    """The network admins lower vouch_k to 1 for the two-person story (as the demo's vouch
    step does; here from the ledger's host, which the desks cannot reach)."""
    import asyncio

    from gateway.fabric import Gateway

    async def submit() -> None:
        async with Gateway.from_connection(connection, HOSPITAL, "admin") as gw:
            contract = gw.get_network("mipchannel").get_contract("mip")
            await contract.submit("Config:Set", ["vouch_k", "1"],
                                  endorsing_orgs=list(ORGS))
    asyncio.run(submit())


def _story(spec_file: Path) -> int:
    from face_engine.engine import load_default_engine
    from gateway.cli.demo_camera import SimulatedCamera
    from gateway.cli.demo_story import Story
    from gateway.cli.environment import Environment, StaffSpec

    spec = json.loads(spec_file.read_text())
    urls = spec["org_urls"]
    env = Environment(Path(spec["root"]), Path(spec["connection"]), urls[HOSPITAL],
                      Path(spec["root"]) / HOSPITAL / "gateway.yaml", org_urls=urls,
                      per_org=True, ca_file=Path(spec["ca_file"]))
    for key, (org, name, role, token) in spec["staff"].items():
        env.staff[key] = StaffSpec(key, org, name, role)
        env.tokens[key] = token

    class DeskStory(Story):
        def _set_vouch_k(self, k: int) -> None:
            pass  # done by the network admins at the ledger's host (`vouch-k`)

    camera = SimulatedCamera(load_default_engine())
    for who in ("astronaut", "grace_hopper"):
        camera.prepare(who)
    story = DeskStory(env, camera, lambda line: print(line, flush=True))
    try:
        ok = story.run()
    finally:
        story.close()
    passed = sum(1 for _, outcome, _, _ in story.results if outcome == "ok")
    print(f"{passed} of {len(story.results)} steps gave their expected outcome", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    command, argument = sys.argv[1], Path(sys.argv[2])
    if command == "vouch-k":
        _vouch_k(argument)
        sys.exit(0)
    sys.exit(_story(argument))
