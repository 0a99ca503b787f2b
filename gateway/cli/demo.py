"""`mip demo`: the whole story on a fresh devnet, through the gateways' HTTP APIs.

Starts devnet and one gateway server per member org (real uvicorn processes, each scoped to
its org: its own data dir, keys, staff tokens and log) in DIR (default `demo` in the MIP
home, `$MIP_HOME` or `~/.local/share/mip`, whatever the current folder; wiped first), mints
each org's staff through that org's own gateway settings, runs the steps of demo_story.py at
the org where each happens, printing each outcome and which org's gateway acted, then where
each page is (at the gateway of the org whose people use it) and which of the holder's steps
the wallet would sign on their own device, and tears everything down. `--all-orgs` runs the
same story against the one all-orgs gateway of development instead. Logs of every process
stay in DIR. Exit status 1 if any step did not give its expected outcome (a cross-org step
whose gateway has not got the route between orgs in this build says "not yet available in
this build" and does not count as a failure; demo_story.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import CliError, guarded, progress, say


def demo(directory: Annotated[Path | None, typer.Option(
            "--dir", help="working folder (wiped first); logs stay here [default: demo in "
            "$MIP_HOME, else ~/.local/share/mip]")] = None,
         argon2: Annotated[str, typer.Option(
             help="password-hash cost: moderate (production) or interactive")] = "moderate",
         all_orgs: Annotated[bool, typer.Option(
             "--all-orgs", help="one gateway for every org (the development arrangement) "
             "instead of one gateway per org")] = False,
         ) -> None:
    """Run the whole MIP story on devnet, one gateway per org, and print each step."""
    def run() -> None:
        from face_engine.engine import load_default_engine
        from gateway.core.config import mip_home

        from .demo_camera import SimulatedCamera
        from .demo_story import NOT_YET, SIMULATION_NOTE, STAFF, Story
        from .environment import running_environment, running_org_gateways

        if argon2 not in ("moderate", "interactive"):
            raise CliError("--argon2 must be moderate or interactive", 2)
        arrangement = ("one all-orgs gateway" if all_orgs
                       else "one gateway per org (HospitalMSP, SchoolMSP, PharmacyMSP)")
        say(f"MIP demo: the whole story on devnet, {arrangement}, through their HTTP APIs")
        say(SIMULATION_NOTE)
        say("")
        with progress("loading the face engine and preparing the simulated camera"):
            camera = SimulatedCamera(load_default_engine())
            for who in ("astronaut", "grace_hopper"):
                camera.prepare(who)
        folder = directory if directory is not None else mip_home() / "demo"
        start = running_environment if all_orgs else running_org_gateways
        with start(folder, STAFF, {"argon2_profile": argon2}, progress=progress) as env:
            if env.per_org:
                for org, url in env.org_urls.items():
                    say(f"{org}'s gateway at {url} (org-scoped; data in "
                        f"{folder / org / 'gateway'})")
            else:
                say(f"the all-orgs gateway at {env.base_url}")
            issuer = "each by its own org's gateway" if env.per_org else "by that gateway"
            say(f"{len(env.tokens)} staff tokens issued, {issuer} (kept in memory)")
            say("")
            story = Story(env, camera, say)
            try:
                ok = story.run()
                say("")
                for line in story.pages():
                    say(line)
            finally:
                story.close()
        say("")
        say("stopped the gateways and devnet (no process left)")
        say(f"logs: {', '.join(str(p) for p in sorted(folder.rglob('*.log')))}")
        passed = sum(1 for _, outcome, _, _ in story.results if outcome == "ok")
        waiting = sum(1 for _, outcome, _, _ in story.results if outcome == NOT_YET)
        say(f"{passed} of {len(story.results)} steps gave their expected outcome"
            + (f"; {waiting} {NOT_YET} (calls between orgs' gateways)"
               if waiting else "")
            + ("" if ok else "; the demo FAILED"))
        if not ok:
            raise typer.Exit(1)
    guarded(run)
    sys.stdout.flush()
