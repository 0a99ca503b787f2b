"""`mip demo`: the whole story on a fresh devnet, through the gateway's HTTP API.

Starts devnet and the gateway server (a real uvicorn process) in DIR (default `demo` in the
MIP home, `$MIP_HOME` or `~/.local/share/mip`, whatever the current folder; wiped first),
mints the staff, runs the steps of demo_story.py printing each outcome, and tears everything
down. Logs of every process stay in DIR. Exit status 1 if any step did not
give its expected outcome.
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
         ) -> None:
    """Run the whole MIP story on devnet and print each step."""
    def run() -> None:
        import httpx

        from face_engine.engine import load_default_engine
        from gateway.core.config import mip_home

        from .demo_camera import SimulatedCamera
        from .demo_story import SIMULATION_NOTE, STAFF, Story
        from .environment import running_environment

        if argon2 not in ("moderate", "interactive"):
            raise CliError("--argon2 must be moderate or interactive", 2)
        say("MIP demo: the whole story on devnet, through the gateway's HTTP API")
        say(SIMULATION_NOTE)
        say("")
        with progress("loading the face engine and preparing the simulated camera"):
            camera = SimulatedCamera(load_default_engine())
            for who in ("astronaut", "grace_hopper"):
                camera.prepare(who)
        folder = directory if directory is not None else mip_home() / "demo"
        with running_environment(folder, STAFF, {"argon2_profile": argon2},
                                 progress=progress) as env:
            say(f"gateway at {env.base_url}; {len(env.tokens)} staff tokens issued "
                "(kept in memory)")
            say("")
            with httpx.Client(base_url=env.base_url, timeout=120) as http:
                story = Story(env, http, camera, say)
                ok = story.run()
        say("")
        say("stopped the gateway and devnet (no process left)")
        say(f"logs: {', '.join(str(p) for p in sorted(folder.rglob('*.log')))}")
        passed = sum(1 for _, good, _ in story.results if good)
        say(f"{passed} of {len(story.results)} steps gave their expected outcome"
            + ("" if ok else "; the demo FAILED"))
        if not ok:
            raise typer.Exit(1)
    guarded(run)
    sys.stdout.flush()
