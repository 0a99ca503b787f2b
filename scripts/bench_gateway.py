#!/usr/bin/env python3
"""Gateway benchmark: complete pharmacy pickups from N concurrent counters, and enrolments.

    scripts/bench_gateway.py [--json [PATH]] [--counters 8] [--pickups 40] [--enrolments 40]
                             [--mode stream|batch]

Starts devnet and the gateway server (uvicorn in its own process, so the load generator does
not share its GIL) in a fresh folder, prepares prescriptions with pharmacy grants for one
enrolled holder, then per round drives `--pickups` complete pickups from `--counters`
concurrent counters, each counter starting its next pickup as soon as one is dispensed (the
counters' first pickups are spread over one pickup's length, as independent counters are).

A pickup's latency is the time the counter waits on the gateway: starting the pickup
(prescription read + challenge), the verdict after the patient's last frame is captured, and
the dispense. The capture itself is the patient's time, paced by the prompts:

* `--mode stream` (default, what the counter page does): frames are taken on the page's own
  schedule (TIMING in gateway/web/pages/common/capture.js: a 2 s frontal prompt with
  captures at 1.0 and 1.5 s, then 2 s per pose with captures at 1.2 and 1.8 s) and each is
  uploaded when it is taken (PUT .../frames/{i}); when the last prompt ends and every
  upload is answered, the page asks for the verdict (POST .../verdict): its wait counts from
  that prompt's end.
* `--mode batch`: the whole answer (one frame per prompt, 0.5 s apart) in one request after
  the capture (POST .../frames), so the whole face check is in the wait.

Frames come from the simulated camera and are encoded before timing. Enrolments (challenge
-> frames -> password -> finish, sequential, batch frames) need distinct faces (the 1:N
duplicate screen refuses a repeat): frontal LFW photos from ../shared/data/lfw-dev animated by
the same simulated camera when that folder exists, else only the two demo portraits. Figures
are medians over rounds; with --json the last line is JSON (with the run's machine, load, date
and commit), and --json PATH also writes it there. Goals (issue #6, 2-core machine):
pickup p95 <= 150 ms with 8 counters; enrolment p95 <= 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_meta import RunMeta, median, percentile, write_json  # noqa: E402

from gateway.cli.demo_camera import SimulatedCamera  # noqa: E402
from gateway.cli.environment import Environment, StaffSpec, running_environment  # noqa: E402
from gateway.demo.camera import challenge_poses  # noqa: E402

API = "/api/v1"
HOSPITAL, PHARMACY = "HospitalMSP", "PharmacyMSP"
LFW = REPO_ROOT.parent / "shared" / "data" / "lfw-dev" / "images"
PASSWORD = "bench-password-not-secret-1"  # noqa: S105 (a throwaway benchmark holder)
STAFF = (
    StaffSpec("registrar", HOSPITAL, "rita", "registrar"),
    StaffSpec("doctor", HOSPITAL, "dana", "doctor"),
    StaffSpec("hospital_admin", HOSPITAL, "admin", "admin"),
    StaffSpec("pharmacist", PHARMACY, "phil", "pharmacist"),
    StaffSpec("pharmacy_admin", PHARMACY, "admin", "admin"),
)


# The counter page's capture schedule (TIMING in gateway/web/pages/common/capture.js),
# seconds from the challenge.
FRONTAL_S, POSE_S = 2.0, 2.0
FRONTAL_CAPTURES, POSE_CAPTURES = (1.0, 1.5), (1.2, 1.8)


def capture_schedule(poses: list[str]) -> list[tuple[str, float]]:
    """(pose shown, capture offset) of every frame the page takes for a challenge."""
    shots = [("center", c) for c in FRONTAL_CAPTURES]
    for i, pose in enumerate(poses):
        shots += [(pose, FRONTAL_S + i * POSE_S + c) for c in POSE_CAPTURES]
    return shots


def pct(values: list[float], q: float) -> float:
    """numpy's percentile (bench_meta), NaN when nothing was measured (no enrolment passed)."""
    return percentile(values, q) if values else float("nan")


class Bench:
    def __init__(self, env: Environment, http: httpx.AsyncClient, camera: SimulatedCamera):
        self.env, self.http, self.camera = env, http, camera

    async def call(self, method: str, path: str, staff: str | None, expect: int = 200,
                   session: str | None = None, enrolment: str | None = None,
                   **kwargs: Any) -> Any:
        headers = dict(self.env.headers(staff)) if staff else {}
        if session:
            headers["X-MIP-Holder-Session"] = session
        if enrolment:
            headers["X-MIP-Enrolment-Session"] = enrolment
        r = await self.http.request(method, API + path, headers=headers, **kwargs)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    async def enrol(self, who: str) -> float:
        started = time.perf_counter()
        created = await self.call("POST", "/enrolments", "registrar", 201)
        sid = created["session_id"]
        await self.call("POST", "/enrolments/current/frames", "registrar", 204, enrolment=sid,
                        json=self.camera.answer(created["challenge"], who))
        await self.call("PUT", "/enrolments/current/password", "registrar", 204, enrolment=sid,
                        json={"password": PASSWORD})
        done = await self.call("POST", "/enrolments/current/finish", "registrar", 201,
                               enrolment=sid)
        self.passport = done["passport_id"]
        return time.perf_counter() - started

    async def holder_account(self, who: str) -> str:
        started = await self.call("POST", "/holders/sessions", "doctor", 201)
        body = self.camera.answer(started["challenge"], who)
        body.update(passport_id=self.passport, password=PASSWORD)
        sid = started["session_id"]
        await self.call("POST", "/holders/sessions/unlock", "doctor", session=sid, json=body)
        out = await self.call("POST", "/accounts", "doctor", 201, session=sid,
                              json={"institution": HOSPITAL})
        self.session = sid
        return str(out["pseudonym"])

    async def prescriptions(self, account: str, n: int) -> list[str]:
        async def one(i: int) -> str:
            rx = await self.call("POST", "/credentials", "doctor", 201, json={
                "type": "prescription", "subject_account": account, "content": {
                    "drug": "benchmarkol", "strength": "1 mg", "quantity": 1, "refills": 0,
                    "prescriber": "bench", "expiry": int(time.time()) + 86400}})
            await self.call("POST", "/grants", "doctor", 201, session=self.session, json={
                "account": account, "grantee_org": PHARMACY, "scope": "medical.prescription",
                "credential_id": rx["credential_id"], "ttl_s": 3600})
            return str(rx["credential_id"])
        sem = asyncio.Semaphore(4)

        async def limited(i: int) -> str:
            async with sem:
                return await one(i)
        return list(await asyncio.gather(*[limited(i) for i in range(n)]))

    async def pickup(self, rx: str, who: str, mode: str = "stream") -> dict[str, float]:
        t0 = time.perf_counter()
        p = await self.call("POST", "/pharmacy/pickups", "pharmacist", 201,
                            json={"prescription_id": rx})
        t1 = time.perf_counter()
        pid, challenge = p["pickup_id"], p["challenge"]
        if mode == "batch":
            body = self.camera.answer(challenge, who)
            t_captured = time.perf_counter()  # the bench's camera has the frames ready
            result = await self.call("POST", f"/pharmacy/pickups/{pid}/frames", "pharmacist",
                                     json=body)
        else:
            shots = capture_schedule(challenge_poses(challenge["poses"])[1:])

            async def upload_all() -> None:
                # Like the page: each frame at its capture time, one upload after another
                # (the gateway times frames by arrival and wants them in capture order).
                for i, (pose, offset) in enumerate(shots):
                    await asyncio.sleep(max(0.0, t1 + offset - time.perf_counter()))
                    await self.call("PUT", f"/pharmacy/pickups/{pid}/frames/{i}",
                                    "pharmacist", 202,
                                    json={"challenge_id": challenge["challenge_id"],
                                          "image": self.camera.frame_b64(who, pose)})
            uploads = [asyncio.create_task(upload_all())]
            # Like the page: the verdict is asked for once every upload is answered and the
            # last prompt has run out (the page then shows "Checking..."); the wait counts
            # from that prompt's end.
            t_captured = t1 + FRONTAL_S + (len(challenge["poses"])) * POSE_S
            await asyncio.gather(*uploads)
            await asyncio.sleep(max(0.0, t_captured - time.perf_counter()))
            result = await self.call("POST", f"/pharmacy/pickups/{pid}/verdict", "pharmacist",
                                     json={"challenge_id": challenge["challenge_id"],
                                           "frames": len(shots)})
        t2 = time.perf_counter()
        if result.get("result") != "verified":
            raise RuntimeError(f"pickup not verified: {result}")
        await self.call("POST", f"/pharmacy/pickups/{pid}/dispense", "pharmacist")
        t3 = time.perf_counter()
        verdict = max(0.0, t2 - t_captured)
        return {"create": t1 - t0, "verdict": verdict, "dispense": t3 - t2,
                "total": (t1 - t0) + verdict + (t3 - t2), "elapsed": t3 - t0}

    async def pickup_round(self, rxs: list[str], counters: int, who: str, mode: str,
                           stagger_s: float) -> tuple[float, list[dict[str, float]]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for rx in rxs:
            queue.put_nowait(rx)
        timings: list[dict[str, float]] = []

        async def counter(k: int) -> None:
            # Counters are independent: counter k starts k/N of a pickup's length after the
            # first, so their prompts (hence their uploads) are not in lockstep.
            await asyncio.sleep(k * stagger_s / counters)
            while not queue.empty():
                timings.append(await self.pickup(queue.get_nowait(), who, mode))
        started = time.perf_counter()
        await asyncio.gather(*[counter(k) for k in range(counters)])
        return time.perf_counter() - started, timings


def lfw_faces(camera: SimulatedCamera, wanted: int) -> list[str]:
    """Names of up to `wanted` LFW people whose first photo the camera can animate."""
    from face_engine.errors import FaceError
    from gateway.demo.camera import CameraError

    names: list[str] = []
    if not LFW.is_dir():
        return names
    for folder in sorted(LFW.iterdir()):
        if len(names) >= wanted:
            break
        photos = sorted(folder.glob("*.jpg"))
        if not photos:
            continue
        name = f"lfw:{folder.name}"
        camera.add_portrait(name, photos[0].read_bytes())
        try:
            camera.prepare(name)
        except (CameraError, FaceError, ValueError, RuntimeError):
            continue  # e.g. two people in the photo, or a face the camera cannot turn
        names.append(name)
    return names


async def main_async(args: argparse.Namespace, env: Environment,
                     camera: SimulatedCamera) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=env.base_url, timeout=120,
                                 limits=httpx.Limits(max_connections=64)) as http:
        bench = Bench(env, http, camera)
        await bench.call("POST", "/admin/counter-key", "pharmacy_admin")
        warm = await bench.enrol("grace_hopper")  # also creates the org's KYC issuer
        print(f"warm-up enrolment (creates the KYC issuer): {warm:.1f} s", file=sys.stderr)
        account = await bench.holder_account("grace_hopper")

        faces = lfw_faces(camera, args.enrolments) or ["astronaut"]
        enrol_times: list[float] = []
        refused = 0
        reasons: dict[str, int] = {}
        for who in faces[:args.enrolments]:
            try:
                enrol_times.append(await bench.enrol(who))
            except RuntimeError as exc:
                refused += 1  # a photo the liveness, quality or duplicate checks refuse
                code = str(exc).partition('"code":"')[2].partition('"')[0] or "?"
                reasons[code] = reasons.get(code, 0) + 1
        rounds = []
        for r in range(args.rounds):
            rxs = await bench.prescriptions(account, args.pickups + (1 if r == 0 else 0))
            if r == 0:  # one untimed pickup warms the pickup path (counter key, models)
                warm_pickup = await bench.pickup(rxs.pop(), "grace_hopper", args.mode)
            wall, timings = await bench.pickup_round(rxs, args.counters, "grace_hopper",
                                                     args.mode, warm_pickup["elapsed"])
            entry = {"pickups": len(timings), "wall_s": wall,
                     "pickups_per_s": len(timings) / wall}
            for step in ("total", "create", "verdict", "dispense", "elapsed"):
                values = [t[step] * 1000 for t in timings]
                entry[f"{step}_p50_ms"] = pct(values, 50)
                entry[f"{step}_p95_ms"] = pct(values, 95)
            rounds.append(entry)
            print(f"round {r + 1}: {entry['pickups_per_s']:.1f} pickups/s, total p50 "
                  f"{entry['total_p50_ms']:.0f} ms p95 {entry['total_p95_ms']:.0f} ms",
                  file=sys.stderr)
    summary: dict[str, Any] = {
        "mode": args.mode, "counters": args.counters, "pickups_per_round": args.pickups,
        "rounds": args.rounds,
        "enrolments": len(enrol_times), "enrolments_refused": refused,
        "enrolment_refusals": reasons,
        "enrolment_faces": "lfw-dev (simulated camera)" if faces[0].startswith("lfw:")
        else "demo portrait",
        "enrol_p50_s": pct(enrol_times, 50), "enrol_p95_s": pct(enrol_times, 95)}
    for key in rounds[0]:
        if key != "pickups":
            summary[key] = median(r[key] for r in rounds)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="last line: the JSON summary with the machine, load, date and "
                             "commit (scripts/bench_meta.py); with PATH also written there")
    parser.add_argument("--counters", type=int, default=8)
    parser.add_argument("--pickups", type=int, default=40, help="pickups per round")
    parser.add_argument("--enrolments", type=int, default=40)
    parser.add_argument("--mode", choices=("stream", "batch"), default="stream",
                        help="frames uploaded as captured (the page), or in one request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="working folder (default: a temp dir)")
    args = parser.parse_args()
    meta = RunMeta("gateway")
    from face_engine.engine import load_default_engine

    camera = SimulatedCamera(load_default_engine())
    camera.prepare("grace_hopper")
    camera.prepare("astronaut")
    with tempfile.TemporaryDirectory(prefix="mip-bench-") as tmp:
        root = args.dir or Path(tmp) / "bench"
        with running_environment(root, STAFF, {"pickup_max_failures": 1000}) as env:
            summary = meta.report(asyncio.run(main_async(args, env, camera)))
    print(f"pickups ({args.mode}): {summary['pickups_per_s']:.2f}/s with {args.counters} "
          f"counters; wait p50 {summary['total_p50_ms']:.0f} ms, p95 "
          f"{summary['total_p95_ms']:.0f} ms (create p95 {summary['create_p95_ms']:.0f}, "
          f"verdict p95 {summary['verdict_p95_ms']:.0f}, dispense p95 "
          f"{summary['dispense_p95_ms']:.0f}); whole pickup incl. capture p50 "
          f"{summary['elapsed_p50_ms'] / 1000:.1f} s")
    print(f"enrolment: p50 {summary['enrol_p50_s']:.2f} s, p95 {summary['enrol_p95_s']:.2f} s "
          f"over {summary['enrolments']} ({summary['enrolment_faces']}; "
          f"{summary['enrolments_refused']} refused: {summary['enrolment_refusals']})")
    m = summary["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores; load average "
          f"{summary['loadavg_start'][0]:.1f} at start, {summary['loadavg_end'][0]:.1f} at end")
    if args.json is not None:
        if args.json != "-":
            write_json(Path(args.json), summary)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
