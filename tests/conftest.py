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

# The files that take longest, longest first (per-file totals of --durations on the 2-core
# CI machine kind). They are collected first, so under scripts/test.sh's pytest-xdist
# (`--dist loadfile --no-loadscope-reorder`: each file whole on one worker, in this order)
# both workers start on long files and the short ones fill in at the end, instead of one
# worker finishing a long file alone. Any file missing here just runs in its usual place.
LONGEST_FIRST = (
    "tests/gateway/cli/test_demo_logs.py",  # two full `mip demo` runs
    "tests/gateway/cli/test_demo_multi_host.py",
    "tests/gateway/api/test_api_fuzz.py",
    "tests/gateway/web/test_enrol_page.py",
    "tests/chaincode/mip/test_authorization_matrix.py",
    "tests/chaincode/mip/test_access.py",
    "tests/scripts/test_bench_org_gateways.py",
    "tests/gateway/services/test_account_opening_crash.py",
    "tests/gateway/services/test_enrolment_screening_async.py",
    "tests/gateway/services/test_pickup_lockout.py",
    "tests/gateway/web/test_counter_page.py",
    "tests/scripts/test_bench_memory.py",
    "tests/scripts/test_bench_face.py",
    "tests/gateway/web/test_holder_desk_page.py",
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout (needed for real face data)")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def _reuse_cl_key_pairs() -> Iterator[None]:
    """Each org's anoncreds CL key pair made once per session (tests/cl_key_reuse.py)."""
    yield from cl_keys_reused()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the LONGEST_FIRST files to the front, whole and in that order; the others keep
    their order (a stable sort by rank, so no file's tests are split up)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def key(item: pytest.Item) -> int:
        try:
            relative = item.path.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(relative, len(rank))

    items.sort(key=key)


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
