"""tests/netns_kit.py itself: its skip reasons name the missing capability, and a run's
namespaces and processes are gone after the run, also when it fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import netns_kit
import pytest
from netns_kit import Lab, NetnsError, can_use_netns


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


@pytest.fixture
def netns() -> None:
    reason = can_use_netns()
    if reason is not None:
        pytest.skip(reason)


def test_without_ip_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns_kit, "IP", "no-such-ip-tool")
    assert can_use_netns() == "`ip` (iproute2) is not installed"


def test_without_the_capabilities_the_reason_names_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if netns_kit.shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed")
    monkeypatch.setattr(netns_kit, "_capabilities", lambda: 1 << netns_kit.CAP_SYS_ADMIN)
    reason = can_use_netns()
    assert reason is not None and reason.startswith("network namespaces need CAP_NET_ADMIN,")


def test_a_failed_run_leaves_no_namespace_or_process(netns: None, tmp_path: Path) -> None:
    before = _namespaces()
    with pytest.raises(RuntimeError, match="the test failed"), Lab(tmp_path) as lab:
        a_segment = lab.segment("lan")
        other = lab.segment("other")
        host = lab.host("one", a_segment, other)
        lab.host("two", a_segment)
        sleeper = host.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
        assert {lab.switch, f"{lab.tag}-one", f"{lab.tag}-two"} <= _namespaces()
        assert not a_segment.network.overlaps(other.network)
        raise RuntimeError("the test failed")
    assert sleeper.popen.poll() is not None
    assert not {name for name in _namespaces() - before if name.startswith(lab.tag)}


def test_hosts_on_one_segment_reach_each_other(netns: None, tmp_path: Path) -> None:
    with Lab(tmp_path) as lab:
        lan = lab.segment("lan")
        server, client = lab.host("server", lan), lab.host("client", lan)
        assert server.address() != client.address()
        http = server.start("http", [sys.executable, "-m", "http.server", "--bind",
                                     server.address(), "8000"])
        client.wait_for_port(server.address(), 8000, process=http)
        assert client.connect_error(server.address(), 8001) == "ECONNREFUSED"
        with pytest.raises(NetnsError, match="did not answer"):
            client.wait_for_port(server.address(), 8001, timeout=0.5)
