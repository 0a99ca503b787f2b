"""How the two pytest-xdist workers of scripts/test.sh share the suite (tests/conftest.py hooks).

- Each test file runs whole on one worker, as `--dist loadfile` does: its module fixtures (a
  devnet, a gateway, a browser) start once.
- Every test marked `fabric` runs on one worker, in one work unit, in the order a run in one
  process has them: they share real Fabric networks on fixed port offsets (the session
  fixture parametrised devnet/fabric in tests/chaincode/mip/conftest.py; the networks of
  tests/network/fabric/), which two workers would both try to start. That unit (all of
  tests/network/fabric/ and every `[fabric...]` parameter) comes last; a `fabric` test
  outside it fails with the reason rather than risk two networks on the same ports.
- The files that take longest go first (LONGEST_FIRST), so both workers start on long files
  and short ones fill in at the end, instead of one worker finishing a long file alone.

A run in one process (`-n 0`, or plain `pytest`) keeps pytest's own order: none of this
applies there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FABRIC_SCOPE = "fabric"
FABRIC_FOLDER = "tests/network/fabric/"

# Longest first: per-file totals of --durations on the 2-core machine kind CI runs on
# (2026-12-07; two full `mip demo` runs, the netns demo, the API fuzzing, browser tests,
# the 116-row authorization matrix, the tiny benchmark runs). A file missing here just runs
# in its usual place.
LONGEST_FIRST = (
    "tests/gateway/cli/test_demo_logs.py",
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


MISPLACED = pytest.StashKey[bool]()


def is_fabric_nodeid(nodeid: str) -> bool:
    """Whether a test id belongs in the `fabric` work unit: a test of tests/network/fabric/
    (its unit tests of the helpers go along), or the fabric parameter of the devnet/fabric
    session fixture (`...[fabric]`, `...[fabric-...]`). The scheduler sees ids, not marks."""
    return nodeid.startswith(FABRIC_FOLDER) or "[fabric]" in nodeid or "[fabric-" in nodeid


def _relative(item: pytest.Item) -> str:
    try:
        return item.path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return item.nodeid.split("::", 1)[0]


def order_for_workers(items: list[pytest.Item]) -> None:
    """In a worker: the LONGEST_FIRST files to the front, whole and in that order, the
    `fabric` tests last; everything else keeps pytest's order (a stable sort, so no file
    and no session-fixture parameter is split up)."""
    for item in items:
        if item.get_closest_marker("fabric") is not None and not is_fabric_nodeid(item.nodeid):
            item.stash[MISPLACED] = True
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (is_fabric_nodeid(item.nodeid),
                                 rank.get(_relative(item), len(rank))))


def fail_if_misplaced(item: pytest.Item) -> None:
    """At setup, in a worker: a `fabric` test that `is_fabric_nodeid` does not recognise."""
    if item.stash.get(MISPLACED, False):
        pytest.fail(f"{item.nodeid} is marked `fabric` but tests/xdist_plan.py is_fabric_nodeid "
                    "does not put it in the fabric work unit: two workers could start the "
                    "same Fabric network; teach it this id", pytrace=False)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`'s scheduler, with every `fabric` test in one work unit."""
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class FilesWithFabricTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return FABRIC_SCOPE if is_fabric_nodeid(nodeid) else super()._split_scope(nodeid)

    return FilesWithFabricTogether(config, log)
