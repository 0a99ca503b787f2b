"""A real Fabric network for `fabric` tests: reuse a deployed one or bring one up for the session.

Order of preference:
1. MIP_CONNECTION names a connection.json whose "network" is "fabric": use it as it is.
2. Fabric's binaries are on PATH or in $FABRIC_BIN: `scripts/network.sh up` + `deploy` into a
   temporary state dir on ports shifted by MIP_FABRIC_TEST_PORT_OFFSET (default 300, so a
   network already running on the default ports is left alone), and `down` + `clean` at the end.
3. Otherwise every `fabric` test is skipped, saying which binaries are missing where.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fabric_network import (
    FabricNetwork,
    fabric_profile_from_env,
    missing_fabric_binaries,
    recorded_processes,
    run_network_sh,
    still_running,
)


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    existing = fabric_profile_from_env()
    if existing is not None:
        yield FabricNetwork(connection=existing, state_dir=None)
        return
    reason = missing_fabric_binaries()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("fabric") / "state"
    env = {
        **os.environ,
        "MIP_FABRIC_DIR": str(state),
        "MIP_FABRIC_PORT_OFFSET": os.environ.get("MIP_FABRIC_TEST_PORT_OFFSET", "300"),
    }
    try:
        up_s = run_network_sh("up", env)
        deploy_s = run_network_sh("deploy", env)
        yield FabricNetwork(state / "connection.json", state, up_s, deploy_s)
    finally:
        started = recorded_processes(state)
        run_network_sh("down", env, timeout=60)
        left = still_running(started)
        run_network_sh("clean", env, timeout=60)
        assert not left, f"network.sh down left processes running: {left}"
        assert not state.exists(), "network.sh clean left the state dir"
