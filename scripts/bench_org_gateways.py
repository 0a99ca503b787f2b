#!/usr/bin/env python3
"""One gateway per org (issue #15): pickups at the Pharmacy's own gateway, enrolment at the
Hospital's, and the steps that cross between orgs' gateways.

    scripts/bench_org_gateways.py [--json [PATH]] [--counters 8] [--pickups 40] [--rounds 3]
                                  [--enrolments 40] [--cross-org 10] [--oprf 30]
                                  [--shared-machine]

Starts devnet and three org-scoped gateway processes (`running_org_gateways`, as `mip demo`
does: each its own data dir, keys, staff and port, each told the others' URLs) and measures,
each at the org where it happens:

* **pickup** at the Pharmacy's gateway, by the portrait: a Hospital doctor issues
  prescriptions, the holder grants each to the Pharmacy at the Hospital's desk (the answer
  carries the portrait the Hospital's gateway sealed to the Pharmacy), and `--counters`
  counters drive `--pickups` pickups per round, each handing in its portrait with the
  pickup. The wait, its steps (create: prescription read, portrait checks and challenge;
  verdict after the last prompt; dispense) and the capture schedule are those of
  scripts/bench_gateway.py `--mode stream` (the counter page's).
* **enrolment** at the Hospital's desk (challenge, frames, password, finish; sequential, LFW
  faces animated by the simulated camera as in bench_gateway.py). Between the frames and the
  password the holder types the password (`--typing-s`, 3 s): the consortium screening runs
  in the background meanwhile (docs/face.md 5.4), the bench times it by polling the session
  as the enrol page does, and the pause is not in the desk's wait (`total`, the four
  requests); a screening still running at the end of the pause is waited for inside finish,
  hence inside `total`. `--typing-s 0` sends the password at once. The vault wrapped under the
  School's OPRF helper (vault version 3: one evaluation and one confirmation at the School's
  gateway inside each enrolment). The Hospital's log is read afterwards for a version-2
  fallback, and the School's for its evaluations, so the file says whether the helper was in.
* **cross-org**: for up to `--cross-org` holders enrolled at the Hospital, the School's desk
  unlocks them (face + password: the custody relay to the Hospital's gateway, whose vault
  unwrap itself asks the School's OPRF helper) and opens a School account (the School's own
  reference, the Hospital signing the opening, `Account:Open`); the portrait issue at grant
  (`POST /grants` of a prescription to the Pharmacy at the Hospital's desk, answered with the
  sealed portrait) against grants that carry none (a research consent, same desk and
  session); and the OPRF helper's round trip alone (`--oprf` times: blind, the School's signed
  `POST /oprf/evaluations`, finalize; then the confirmation), signed with the Hospital
  gateway's service identity from devnet's connection profile, for made-up passport ids and
  fresh salts, each confirmed, so no holder's helper budget is spent.

Percentiles are numpy's (scripts/bench_meta.py); pickup figures are medians over rounds. The
1-minute load average is sampled every `LOAD_SAMPLE_S` seconds during the run
(`loadavg_during`) besides the start and end; `--shared-machine` records that other jobs ran
on the machine meanwhile, and the rendered figures then say they were measured under load.
With --json the last line is the JSON; --json PATH also writes it there.
Goals (issue #15 item 7): pickup p95 <= 150 ms with 8 counters at the Pharmacy's own gateway;
enrolment p95 <= 1.5 s at the Hospital's (per-org, OPRF helper included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_gateway import FRONTAL_S, POSE_S, capture_schedule, lfw_faces  # noqa: E402
from bench_meta import RunMeta, median, percentile, write_json  # noqa: E402

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL  # noqa: E402
from gateway.cli.demo_camera import SimulatedCamera  # noqa: E402
from gateway.cli.environment import (  # noqa: E402
    Environment,
    StaffSpec,
    running_org_gateways,
)
from gateway.demo.camera import challenge_poses  # noqa: E402

API = "/api/v1"
OPRF_PATH = API + "/oprf/evaluations"
PASSWORD = "bench-password-not-secret-1"  # noqa: S105 (throwaway benchmark holders)
STAFF = (
    StaffSpec("registrar", HOSPITAL, "rita", "registrar"),
    StaffSpec("doctor", HOSPITAL, "dana", "doctor"),
    StaffSpec("hospital_admin", HOSPITAL, "admin", "admin"),
    StaffSpec("school_registrar", SCHOOL, "sam", "school_registrar"),
    StaffSpec("school_admin", SCHOOL, "admin", "admin"),
    StaffSpec("pharmacist", PHARMACY, "phil", "pharmacist"),
    StaffSpec("pharmacy_admin", PHARMACY, "admin", "admin"),
)
# The enrolling org's helper in the ring Hospital -> School -> Pharmacy
# (gateway/services/password_hardening.py helpers_for).
HELPER = SCHOOL
LOAD_SAMPLE_S = 5.0
SCREENING_POLL_S = 0.1
SERVICE_USER = "mip-gateway"


def ms(seconds: Iterable[float]) -> dict[str, float | int | None]:
    """p50 / p95 (ms) and n of a list of durations in seconds (NaN when none)."""
    values = [s * 1000 for s in seconds]
    if not values:  # None, not NaN: the file stays strict JSON
        return {"n": 0, "p50_ms": None, "p95_ms": None}
    return {"n": len(values), "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95)}


class LoadSampler:
    """The 1-minute load average every `every_s` seconds, on a daemon thread."""

    def __init__(self, every_s: float = LOAD_SAMPLE_S) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        return summarise_load(self.samples, self.every_s)


def summarise_load(samples: list[float], every_s: float) -> dict[str, Any]:
    if not samples:
        return {"every_s": every_s, "samples": 0}
    return {"every_s": every_s, "samples": len(samples), "min": min(samples),
            "median": median(samples), "max": max(samples)}


class OrgBench:
    """HTTP calls to the gateway of the org where each step happens."""

    def __init__(self, env: Environment, clients: dict[str, httpx.AsyncClient],
                 camera: SimulatedCamera) -> None:
        self.env, self.clients, self.camera = env, clients, camera
        self.passports: dict[str, str] = {}

    async def call(self, method: str, path: str, staff: str, expect: int = 200,
                   session: str | None = None, enrolment: str | None = None,
                   **kwargs: Any) -> Any:
        """`method path` at the gateway of `staff`'s own org."""
        headers = dict(self.env.headers(staff))
        if session:
            headers["X-MIP-Holder-Session"] = session
        if enrolment:
            headers["X-MIP-Enrolment-Session"] = enrolment
        org = self.env.staff[staff].org
        r = await self.clients[org].request(method, API + path, headers=headers, **kwargs)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path} at {org}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    # --- enrolment at the Hospital's desk ------------------------------------------------
    async def enrol(self, who: str, typing_s: float = 0.0) -> dict[str, float]:
        """One enrolment at the Hospital's desk. The desk waits for four requests; between
        the frames and the password the holder types the password (`typing_s`), while the
        consortium screening runs in the background: that pause is not the desk waiting
        for the system, so it is out of `total`, and the screening's own time from the
        frames' answer to its verdict is `screening` (polled, as the enrol page does)."""
        t0 = time.perf_counter()
        created = await self.call("POST", "/enrolments", "registrar", 201)
        sid = created["session_id"]
        t1 = time.perf_counter()
        await self.call("POST", "/enrolments/current/frames", "registrar", 204, enrolment=sid,
                        json=self.camera.answer(created["challenge"], who))
        t2 = time.perf_counter()
        screening = await self.typing_pause(sid, typing_s)
        t2b = time.perf_counter()
        await self.call("PUT", "/enrolments/current/password", "registrar", 204, enrolment=sid,
                        json={"password": PASSWORD})
        t3 = time.perf_counter()
        done = await self.call("POST", "/enrolments/current/finish", "registrar", 201,
                               enrolment=sid)
        t4 = time.perf_counter()
        self.passports[who] = done["passport_id"]
        timings = {"challenge": t1 - t0, "frames": t2 - t1, "password": t3 - t2b,
                   "finish": t4 - t3, "total": (t2 - t0) + (t4 - t2b)}
        if screening is not None:
            timings["screening"] = screening
        return timings

    async def typing_pause(self, sid: str, typing_s: float) -> float | None:
        """Wait `typing_s` (the holder typing), polling the screening's state every
        `SCREENING_POLL_S`; the seconds until it left `pending`, or None if it had not
        by the end of the pause (finish then waits for it, inside the desk's wait)."""
        if typing_s <= 0:
            return None
        start = time.perf_counter()
        settled: float | None = None
        while (elapsed := time.perf_counter() - start) < typing_s:
            if settled is None:
                view = await self.call("GET", "/enrolments/current", "registrar",
                                       enrolment=sid)
                if view.get("screening") not in ("pending", "running"):
                    settled = time.perf_counter() - start
            await asyncio.sleep(min(SCREENING_POLL_S, max(0.0, typing_s - elapsed)))
        return settled

    # --- desk sessions -------------------------------------------------------------------
    async def unlock(self, who: str, desk: str) -> tuple[str, dict[str, float]]:
        """A level-2 session for `who` at `desk`'s org (face + password)."""
        t0 = time.perf_counter()
        started = await self.call("POST", "/holders/sessions", desk, 201)
        t1 = time.perf_counter()
        body = self.camera.answer(started["challenge"], who)
        body.update(passport_id=self.passports[who], password=PASSWORD)
        sid = started["session_id"]
        out = await self.call("POST", "/holders/sessions/unlock", desk, session=sid, json=body)
        t2 = time.perf_counter()
        if out.get("level") != 2:
            raise RuntimeError(f"unlock at {desk} gave level {out.get('level')}")
        return sid, {"challenge": t1 - t0, "unlock": t2 - t1}

    async def end(self, sid: str, desk: str) -> None:
        await self.call("DELETE", "/holders/sessions/current", desk, 204, session=sid)

    async def open_account(self, sid: str, desk: str, institution: str) -> tuple[str, float]:
        t0 = time.perf_counter()
        out = await self.call("POST", "/accounts", desk, 201, session=sid,
                              json={"institution": institution})
        return str(out["pseudonym"]), time.perf_counter() - t0

    # --- prescriptions and their grants (portraits) at the Hospital's desk ----------------
    async def prescription(self, account: str) -> str:
        rx = await self.call("POST", "/credentials", "doctor", 201, json={
            "type": "prescription", "subject_account": account, "content": {
                "drug": "benchmarkol", "strength": "1 mg", "quantity": 1, "refills": 0,
                "prescriber": "bench", "expiry": int(time.time()) + 86400}})
        return str(rx["credential_id"])

    async def pharmacy_grant(self, sid: str, account: str, rx: str) -> str:
        """The holder's grant of `rx` to the Pharmacy; the answer's sealed portrait."""
        grant = await self.call("POST", "/grants", "doctor", 201, session=sid, json={
            "account": account, "grantee_org": PHARMACY, "scope": "medical.prescription",
            "credential_id": rx, "ttl_s": 3600})
        portrait = grant.get("portrait")
        if not portrait:
            raise RuntimeError("the pharmacy grant came back without a portrait")
        return str(portrait)

    async def prescriptions(self, who: str, account: str, n: int) -> list[tuple[str, str]]:
        """n prescriptions, each granted to the Pharmacy in one desk session (4 at a time,
        untimed): (prescription id, sealed portrait) pairs."""
        sid, _ = await self.unlock(who, "doctor")
        sem = asyncio.Semaphore(4)

        async def one() -> tuple[str, str]:
            async with sem:
                rx = await self.prescription(account)
                return rx, await self.pharmacy_grant(sid, account, rx)
        made = list(await asyncio.gather(*[one() for _ in range(n)]))
        await self.end(sid, "doctor")
        return made

    async def grants_compared(self, who: str, account: str, n: int
                              ) -> tuple[list[float], list[float]]:
        """n grants of a prescription to the Pharmacy (each answered with its portrait) and
        n research consents (no portrait), alternating, one at a time, in one desk session:
        the portrait issue's share of a grant."""
        rxs = [await self.prescription(account) for _ in range(n)]
        sid, _ = await self.unlock(who, "doctor")
        with_portrait, without = [], []
        for rx in rxs:
            t0 = time.perf_counter()
            await self.pharmacy_grant(sid, account, rx)
            t1 = time.perf_counter()
            await self.call("POST", "/grants", "doctor", 201, session=sid, json={
                "account": account, "grantee_org": HOSPITAL, "grantee_role": "researcher",
                "scope": "research.aggregate", "credential_type": "record", "ttl_s": 3600})
            t2 = time.perf_counter()
            with_portrait.append(t1 - t0)
            without.append(t2 - t1)
        await self.end(sid, "doctor")
        return with_portrait, without

    # --- the pickup at the Pharmacy's counter --------------------------------------------
    async def pickup(self, rx: str, portrait: str, who: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        p = await self.call("POST", "/pharmacy/pickups", "pharmacist", 201,
                            json={"prescription_id": rx, "portrait": portrait})
        t1 = time.perf_counter()
        pid, challenge = p["pickup_id"], p["challenge"]
        shots = capture_schedule(challenge_poses(challenge["poses"])[1:])

        async def upload_all() -> None:
            # As the counter page: each frame at its capture time, one upload after another.
            for i, (pose, offset) in enumerate(shots):
                await asyncio.sleep(max(0.0, t1 + offset - time.perf_counter()))
                await self.call("PUT", f"/pharmacy/pickups/{pid}/frames/{i}", "pharmacist",
                                202, json={"challenge_id": challenge["challenge_id"],
                                           "image": self.camera.frame_b64(who, pose)})
        # The verdict is asked for when the last prompt has run out and every upload is
        # answered; the wait counts from that prompt's end (bench_gateway.py).
        t_captured = t1 + FRONTAL_S + len(challenge["poses"]) * POSE_S
        await upload_all()
        await asyncio.sleep(max(0.0, t_captured - time.perf_counter()))
        result = await self.call("POST", f"/pharmacy/pickups/{pid}/verdict", "pharmacist",
                                 json={"challenge_id": challenge["challenge_id"],
                                       "frames": len(shots)})
        t2 = time.perf_counter()
        if result.get("result") != "verified":
            # e.g. challenge_expired: under load the uploads fell behind the challenge's
            # window; counted per round (`refused`), kept out of the wait's percentiles
            return {"refused": str(result.get("reason", "?"))}
        await self.call("POST", f"/pharmacy/pickups/{pid}/dispense", "pharmacist")
        t3 = time.perf_counter()
        verdict = max(0.0, t2 - t_captured)
        return {"create": t1 - t0, "verdict": verdict, "dispense": t3 - t2,
                "total": (t1 - t0) + verdict + (t3 - t2), "elapsed": t3 - t0}

    async def pickup_round(self, items: list[tuple[str, str]], counters: int, who: str,
                           stagger_s: float) -> tuple[float, list[dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        timings: list[dict[str, Any]] = []

        async def counter(k: int) -> None:
            # Independent counters: counter k starts k/N of a pickup's length after the first.
            await asyncio.sleep(k * stagger_s / counters)
            while not queue.empty():
                rx, portrait = queue.get_nowait()
                timings.append(await self.pickup(rx, portrait, who))
        started = time.perf_counter()
        await asyncio.gather(*[counter(k) for k in range(counters)])
        return time.perf_counter() - started, timings


async def oprf_round_trips(env: Environment, n: int) -> dict[str, list[float]]:
    """The Hospital gateway's OPRF call to its helper, the School's gateway, n times: blind,
    signed POST, finalize; then the confirmation. Made-up passport ids and fresh salts (each
    confirmed), so no enrolled holder's helper budget is touched."""
    from chaincode.protocol.encoding import b64, unb64
    from gateway.core.peer_auth import PeerSigner
    from gateway.fabric.connection import ConnectionProfile
    from gateway.holder import oprf, vault, vault_v3

    user = ConnectionProfile.load(env.connection).org(HOSPITAL).users[SERVICE_USER]
    signer = PeerSigner(HOSPITAL, user.cert_path, user.key_path)
    evaluate_s: list[float] = []
    confirm_s: list[float] = []
    base = env.url_of(HELPER)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        async def post(path: str, payload: dict[str, Any], expect: int) -> Any:
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json",
                       **signer.headers("POST", path, body, HELPER)}
            r = await http.post(path, content=body, headers=headers)
            if r.status_code != expect:
                raise RuntimeError(f"POST {path} at {HELPER}: HTTP {r.status_code} "
                                   f"{r.text[:200]}")
            return r.json() if r.content else None

        for _ in range(n):
            passport = f"bench-oprf-{secrets.token_hex(8)}"
            salt = secrets.token_bytes(vault_v3.SALT_BYTES)
            data = vault_v3.oprf_input(vault.check_password(PASSWORD), passport)
            t0 = time.perf_counter()
            blinded = oprf.blind(data)
            out = await post(OPRF_PATH, {"passport_id": passport, "salt": b64(salt),
                                         "blinded_element": b64(blinded.element)}, 201)
            oprf.finalize(data, blinded, unb64(out["evaluated_element"], "evaluated_element",
                                               ValueError))
            t1 = time.perf_counter()
            await post(f"{OPRF_PATH}/{out['evaluation_id']}/confirmation",
                       {"token": b64(secrets.token_bytes(vault_v3.CONFIRM_BYTES))}, 204)
            t2 = time.perf_counter()
            evaluate_s.append(t1 - t0)
            confirm_s.append(t2 - t1)
    return {"evaluate": evaluate_s, "confirm": confirm_s}


def helper_evidence(env: Environment) -> dict[str, int]:
    """From the gateways' logs: did the Hospital fall back to version-2 vaults (no helper),
    and how many evaluations did the School's helper serve."""
    def read(org: str) -> str:
        path = env.root / org / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""
    return {"hospital_version2_fallbacks": read(HOSPITAL).count("writing a version-2 vault"),
            "helper_evaluations_logged": read(HELPER).count("password OPRF evaluated")}


def step_figures(timings: list[dict[str, float]], steps: Iterable[str]) -> dict[str, Any]:
    return {step: ms(t[step] for t in timings) for step in steps}


async def main_async(args: argparse.Namespace, env: Environment,
                     camera: SimulatedCamera) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64)
    clients = {org: httpx.AsyncClient(base_url=env.url_of(org), timeout=120, limits=limits)
               for org in (HOSPITAL, SCHOOL, PHARMACY)}
    try:
        return await run_bench(args, env, camera, OrgBench(env, clients, camera))
    finally:
        for http in clients.values():
            await http.aclose()


async def run_bench(args: argparse.Namespace, env: Environment, camera: SimulatedCamera,
                    bench: OrgBench) -> dict[str, Any]:
    await bench.call("POST", "/admin/counter-key", "pharmacy_admin")
    for admin in ("hospital_admin", "pharmacy_admin"):
        await bench.call("POST", "/admin/portrait-keys", admin)
    warm = await bench.enrol("grace_hopper")  # also creates the Hospital's KYC issuer
    print(f"warm-up enrolment (creates the KYC issuer): {warm['total']:.1f} s", file=sys.stderr)
    sid, _ = await bench.unlock("grace_hopper", "doctor")
    account, _ = await bench.open_account(sid, "doctor", HOSPITAL)
    await bench.end(sid, "doctor")

    # Enrolment at the Hospital's desk, the School's OPRF helper in each.
    faces = lfw_faces(camera, args.enrolments) or ["astronaut"]
    enrolments: list[dict[str, float]] = []
    enrolled: list[str] = []
    reasons: dict[str, int] = {}
    helper_before = helper_evidence(env)
    for who in faces[:args.enrolments]:
        try:
            enrolments.append(await bench.enrol(who, args.typing_s))
            enrolled.append(who)
        except RuntimeError as exc:  # a photo the liveness, quality or duplicate checks refuse
            code = str(exc).partition('"code":"')[2].partition('"')[0] or "?"
            reasons[code] = reasons.get(code, 0) + 1
    print(f"enrolment: {len(enrolments)} enrolled, {sum(reasons.values())} refused",
          file=sys.stderr)
    helper_after = helper_evidence(env)
    helper = {key: helper_after[key] - helper_before[key] for key in helper_after}

    # Cross-org: the School's desk unlocks holders the Hospital enrolled and opens a School
    # account for each (the first unlock and opening warm the School's path, untimed).
    cross: list[dict[str, float]] = []
    cross_failed: dict[str, int] = {}
    holders = ["grace_hopper", *enrolled][:args.cross_org + 1]
    for i, who in enumerate(holders):
        try:
            sid, unlock = await bench.unlock(who, "school_registrar")
            _, opening = await bench.open_account(sid, "school_registrar", SCHOOL)
            await bench.end(sid, "school_registrar")
        except RuntimeError as exc:
            code = str(exc).partition('"code":"')[2].partition('"')[0] or "?"
            cross_failed[code] = cross_failed.get(code, 0) + 1
            continue
        if i > 0 or len(holders) == 1:
            cross.append({**unlock, "account_open": opening})
    # Local contrast: the same holders unlocked at their enrolling org's own desk.
    local: list[dict[str, float]] = []
    for who in holders[1:] or holders:
        try:
            sid, unlock = await bench.unlock(who, "registrar")
            await bench.end(sid, "registrar")
            local.append(unlock)
        except RuntimeError:
            continue
    oprf_trips = await oprf_round_trips(env, args.oprf)
    portrait_grants, plain = await bench.grants_compared("grace_hopper", account, args.grants)

    # Pickups at the Pharmacy's gateway, each by its portrait.
    rounds = []
    warm_pickup: dict[str, Any] = {}
    for r in range(args.rounds):
        items = await bench.prescriptions("grace_hopper", account,
                                          args.pickups + (1 if r == 0 else 0))
        if r == 0:  # one untimed pickup warms the pickup path (counter key, models)
            rx, portrait = items.pop()
            warm_pickup = await bench.pickup(rx, portrait, "grace_hopper")
            if "refused" in warm_pickup:
                raise RuntimeError(f"the warm-up pickup was refused: {warm_pickup['refused']}")
        wall, timings = await bench.pickup_round(items, args.counters, "grace_hopper",
                                                 warm_pickup["elapsed"])
        done = [t for t in timings if "refused" not in t]
        refused: dict[str, int] = {}
        for t in timings:
            if "refused" in t:
                refused[t["refused"]] = refused.get(t["refused"], 0) + 1
        if not done:
            raise RuntimeError(f"no pickup of round {r + 1} was verified: {refused}")
        entry: dict[str, Any] = {"pickups": len(done), "refused": refused, "wall_s": wall,
                                 "pickups_per_s": len(done) / wall}
        for step in ("total", "create", "verdict", "dispense", "elapsed"):
            values = [t[step] * 1000 for t in done]
            entry[f"{step}_p50_ms"] = percentile(values, 50)
            entry[f"{step}_p95_ms"] = percentile(values, 95)
        rounds.append(entry)
        print(f"round {r + 1}: {entry['pickups_per_s']:.1f} pickups/s, wait p50 "
              f"{entry['total_p50_ms']:.0f} ms p95 {entry['total_p95_ms']:.0f} ms",
              file=sys.stderr)

    pickup: dict[str, Any] = {key: median(r[key] for r in rounds) for key in rounds[0]
                              if key not in ("pickups", "refused")}
    pickup["verified"] = sum(r["pickups"] for r in rounds)
    refusals: dict[str, int] = {}
    for entry in rounds:
        for reason, count in entry["refused"].items():
            refusals[reason] = refusals.get(reason, 0) + count
    pickup["refused"] = refusals
    return {
        "arrangement": "one gateway per org (running_org_gateways)",
        "shared_machine": args.shared_machine,
        "pickup": {"gateway": PHARMACY, "mode": "stream", "reference": "portrait",
                   "counters": args.counters, "pickups_per_round": args.pickups,
                   "rounds": args.rounds, "per_round": rounds, **pickup},
        "enrolment": {"gateway": HOSPITAL, "password_helper": HELPER,
                      "faces": "lfw-dev (simulated camera)" if faces[0].startswith("lfw:")
                      else "demo portrait",
                      "enrolled": len(enrolments), "refused": sum(reasons.values()),
                      "refusals": reasons,
                      "typing_s": args.typing_s,
                      "steps": step_figures(enrolments, ("challenge", "frames", "password",
                                                         "finish", "total")),
                      # the background screening, from the frames' answer to its verdict,
                      # for those that settled within the typing pause
                      "screening": ms(t["screening"] for t in enrolments if "screening" in t),
                      "screening_unsettled": sum("screening" not in t for t in enrolments),
                      # counted over the timed enrolments only (from the gateways' logs)
                      **helper},
        "cross_org": {
            "school_desk": {"desk": SCHOOL, "custodian": HOSPITAL, "holders": len(cross),
                            "failed": cross_failed,
                            "steps": step_figures(cross, ("challenge", "unlock",
                                                          "account_open"))},
            "hospital_desk_contrast": {"desk": HOSPITAL, "holders": len(local),
                                       "steps": step_figures(local, ("challenge", "unlock"))},
            "oprf_helper": {"caller": HOSPITAL, "helper": HELPER,
                            "evaluate": ms(oprf_trips["evaluate"]),
                            "confirm": ms(oprf_trips["confirm"])},
            "grant": {"desk": HOSPITAL, "with_portrait": ms(portrait_grants),
                      "without_portrait": ms(plain)},
        },
    }


def fmt(value: float | None, digits: int = 0, scale: float = 1.0) -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What the run prints before its JSON line."""
    p, e, c = report["pickup"], report["enrolment"], report["cross_org"]
    t, s = e["steps"]["total"], c["school_desk"]["steps"]
    o, g, d = c["oprf_helper"], c["grant"], report["loadavg_during"]
    return [
        f"pickup at {p['gateway']}'s gateway ({p['counters']} counters, by portrait): wait "
        f"p50 {fmt(p['total_p50_ms'])} ms, p95 {fmt(p['total_p95_ms'])} ms (create p95 "
        f"{fmt(p['create_p95_ms'])}, verdict p95 {fmt(p['verdict_p95_ms'])}, dispense p95 "
        f"{fmt(p['dispense_p95_ms'])}); {fmt(p['pickups_per_s'], 2)} pickups/s",
        f"enrolment at {e['gateway']}'s gateway: p50 {fmt(t['p50_ms'], 2, 1e-3)} s, p95 "
        f"{fmt(t['p95_ms'], 2, 1e-3)} s over {e['enrolled']} ({e['refused']} refused); "
        f"helper evaluations logged {e['helper_evaluations_logged']}, version-2 fallbacks "
        f"{e['hospital_version2_fallbacks']}",
        f"School desk, Hospital holder: unlock p50 {fmt(s['unlock']['p50_ms'])} ms p95 "
        f"{fmt(s['unlock']['p95_ms'])} ms; account opening p50 "
        f"{fmt(s['account_open']['p50_ms'])} ms p95 {fmt(s['account_open']['p95_ms'])} ms",
        f"OPRF helper round trip p50 {fmt(o['evaluate']['p50_ms'], 1)} ms p95 "
        f"{fmt(o['evaluate']['p95_ms'], 1)} ms (confirmation p50 "
        f"{fmt(o['confirm']['p50_ms'], 1)} ms); grant with portrait p50 "
        f"{fmt(g['with_portrait']['p50_ms'])} ms, without {fmt(g['without_portrait']['p50_ms'])}"
        " ms",
        f"load average (1 min) during the run: {d.get('min')}–{d.get('max')} on "
        f"{report['machine']['cores']} cores"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="last line: the JSON with the run's machine, load, date and "
                             "commit (scripts/bench_meta.py); with PATH also written there")
    parser.add_argument("--counters", type=int, default=8)
    parser.add_argument("--pickups", type=int, default=40, help="pickups per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--enrolments", type=int, default=40)
    parser.add_argument("--typing-s", type=float, default=3.0,
                        help="seconds the holder takes to type the password after the frames "
                             "(the screening runs meanwhile; not counted in the desk's wait; "
                             "0: send it at once)")
    parser.add_argument("--cross-org", type=int, default=10,
                        help="holders unlocked at the School's desk (after one warm-up)")
    parser.add_argument("--oprf", type=int, default=30, help="OPRF helper round trips")
    parser.add_argument("--grants", type=int, default=10,
                        help="grants timed with a portrait and without (alternating)")
    parser.add_argument("--shared-machine", action="store_true",
                        help="other jobs share the machine: the figures say so")
    parser.add_argument("--dir", type=Path, help="working folder (default: a temp dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    meta = RunMeta("gateway-orgs", None if argv is None else [__file__, *argv])
    from face_engine.engine import load_default_engine

    camera = SimulatedCamera(load_default_engine())
    for who in ("grace_hopper", "astronaut"):
        camera.prepare(who)
    with tempfile.TemporaryDirectory(prefix="mip-bench-orgs-") as tmp, LoadSampler() as load:
        root = args.dir or Path(tmp) / "bench"
        with running_org_gateways(root, STAFF, {"pickup_max_failures": 1000}) as env:
            figures = asyncio.run(main_async(args, env, camera))
    report = meta.report({**figures, "loadavg_during": load.summary()})
    for line in summary_lines(report):
        print(line)
    if args.json is not None:
        if args.json != "-":
            write_json(Path(args.json), report)
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
