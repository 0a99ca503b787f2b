"""Shared pytest configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cl_key_reuse import counts as cl_key_counts
from cl_key_reuse import patched as cl_keys_reused

REPO_ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the checkout holds LFW pairs, non-face images and the models in CI.
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout (needed for real face data)")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def _reuse_cl_key_pairs() -> Iterator[None]:
    """Each org's anoncreds CL key pair made once per session (tests/cl_key_reuse.py)."""
    yield from cl_keys_reused()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if cl_key_counts["made"] or cl_key_counts["reused"]:
        terminalreporter.write_line(
            f"anoncreds CL key pairs: {cl_key_counts['made']} made, "
            f"{cl_key_counts['reused']} reused (tests/cl_key_reuse.py)")
