"""`python -m network.devnet.chaincode_launcher`: run `python -m chaincode`, tied to devnet.

Asks Linux to send SIGTERM to this process when its parent (devnet) dies, even by SIGKILL, then
runs the chaincode server in-process (on its own completion-queue event loop,
chaincode/shim/completion_loop.py). Done here rather than in a preexec_fn because forking a
process that holds gRPC threads and running Python code before exec is not safe.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def _tie_to_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
    expected = os.environ.get("MIP_DEVNET_PID")
    if expected and os.getppid() != int(expected):  # devnet died before prctl took effect
        sys.exit(1)


if __name__ == "__main__":
    _tie_to_parent()
    runpy.run_module("chaincode", run_name="__main__", alter_sys=True)
