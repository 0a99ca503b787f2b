"""Shared pytest configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cl_key_reuse import counts as cl_key_counts
from cl_key_reuse import patched as cl_keys_reused
from xdist_plan import fail_if_misplaced, make_scheduler, order_for_workers

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


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker (tests/xdist_plan.py)
        order_for_workers(items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_misplaced(item)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (scripts/test.sh) with every `fabric` test in one work unit."""
    if config.getoption("dist") == "loadfile":
        return make_scheduler(config, log)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its counts to the controller (pytest_testnodedown)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["cl_key_counts"] = dict(cl_key_counts)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """The controller adds up its workers' counts for the summary line."""
    for name, count in getattr(node, "workeroutput", {}).get("cl_key_counts", {}).items():
        cl_key_counts[name] += count


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if cl_key_counts["made"] or cl_key_counts["reused"]:
        terminalreporter.write_line(
            f"anoncreds CL key pairs: {cl_key_counts['made']} made, "
            f"{cl_key_counts['reused']} reused (tests/cl_key_reuse.py)")
