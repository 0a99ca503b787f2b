"""`mip ...` two ways, with the same result shape: as its own process (`python -m gateway`,
what a user's shell runs) and inside the test's process (Typer's CliRunner on the same app).

A new `python -m gateway` process pays for its imports (FastAPI, the Fabric client, the face
engine's modules): a second or more of one core per command on a 2-core CI machine. A test
that is about what a command does, not about the process, runs it in-process; each CLI test
file still runs a real process for a success and a refusal, so the exit status and stderr a
shell sees stay checked end to end (tests/gateway/cli/test_mip_cli.py runs only processes).

Both drop the caller's MIP_* variables (settings come from --config alone), and both give
`Ran(returncode, stdout, stderr)`. In-process, an exception the command did not turn into a
one-line error is appended to stderr as the traceback a process would print, so a test's
"no Traceback in stderr" check means the same thing either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli.app import app

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _mip_variables() -> list[str]:
    return [name for name in os.environ if name.startswith("MIP_")]


def mip_process(*args: str, timeout: float = 120) -> Ran:
    """`python -m gateway ARGS` as its own process, without the caller's MIP_* variables."""
    env = {k: v for k, v in os.environ.items() if k not in _mip_variables()}
    done = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)
    return Ran(done.returncode, done.stdout, done.stderr)


def mip_in_process(*args: str) -> Ran:
    """The same command through Typer's CliRunner in this process (MIP_* unset for it)."""
    result = CliRunner(env=dict.fromkeys(_mip_variables())).invoke(app, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, stderr)
