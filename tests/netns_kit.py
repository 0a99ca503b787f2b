"""Several hosts on one machine: Linux network namespaces joined by private L2 segments.

A `Lab` (a context manager) makes, for one test run:

- a "switch" namespace holding one Linux bridge per `Segment`; each segment gets a private
  /24 (10.x.y.0/24, drawn per run and clear of the root namespace's routes);
- one namespace per `Host`, with loopback up and one veth interface per segment it is
  attached to (named after the segment), the other end plugged into that segment's bridge.

Every namespace's name carries the run's pid and a random tag, so parallel runs and
leftovers of a killed run never collide; nothing is created in the root namespace (the veth
pairs are made inside the switch namespace with their host end moved straight into the host).
Hosts share the file system (data dirs, certificates), not the network: a process in a host
sees only its own interfaces, so it reaches another host only through a segment both are on,
and never the root namespace's 127.0.0.1.

`Host.start` runs a process inside a host (`ip netns exec`); `Host.connect_error` and
`Host.wait_for_port` probe TCP from inside it. Leaving the `Lab` kills every process left in
its namespaces and deletes the namespaces (which deletes their links), also on failure.

`can_use_netns()` says why this machine cannot do it (no `ip`, no CAP_NET_ADMIN/CAP_SYS_ADMIN,
no veth): the tests skip with that reason. Anything else that fails is an error, not a skip.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

IP = "ip"
# Interface names are at most 15 bytes (IFNAMSIZ - 1); segment names become interface names.
_SEGMENT_NAME = re.compile(r"[a-z][a-z0-9]{0,9}")
_HOST_NAME = re.compile(r"[a-z][a-z0-9-]{0,23}")
# What `ip` prints when the kernel or the container refuses us the capability (a skip), as
# opposed to any other failure (an error).
_NOT_PERMITTED = ("Operation not permitted", "Permission denied")
_NO_VETH = ("Unknown device type", "Operation not supported")
CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12

# Runs inside a host: connect to argv[1]:argv[2] until argv[3] (a deadline, in seconds from
# now) and print "ok" or the last errno's name. Isolated (-I -S) so it starts in ~20 ms.
_PROBE = """
import errno, socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
        print("ok")
        break
    except socket.timeout:
        error = "timeout"
    except OSError as exc:
        error = errno.errorcode.get(exc.errno or 0, str(exc))
    if time.monotonic() >= deadline:
        print(error)
        break
    time.sleep(0.2)
"""


class NetnsError(RuntimeError):
    """A namespace, link or address could not be set up or torn down."""


def _ip(*args: str) -> str:
    result = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def can_use_netns() -> str | None:
    """None when this process can make namespaces and veth pairs, else why not.

    Probes by doing it: a namespace with a veth pair inside, then deletes both. Only a
    missing capability (no `ip`, not permitted, no veth in the kernel) gives a reason; any
    other failure raises NetnsError."""
    if shutil.which(IP) is None:
        return "`ip` (iproute2) is not installed"
    caps = _capabilities()
    missing = [name for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN),
                                      ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
               if not caps >> bit & 1]
    if missing:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        return f"network namespaces need {' and '.join(missing)}, which {who} lacks here"
    name = f"mipprobe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", name)
    except NetnsError as exc:
        if any(text in str(exc) for text in _NOT_PERMITTED):
            return f"cannot create a network namespace here: {exc}"
        raise
    try:
        _ip("-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
        _ip("-n", name, "link", "del", "probe0")
    except NetnsError as exc:
        if any(text in str(exc) for text in (*_NOT_PERMITTED, *_NO_VETH)):
            return f"cannot create a veth pair here: {exc}"
        raise
    finally:
        _ip("netns", "del", name)
    return None


def _root_networks() -> list[ipaddress.IPv4Network]:
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]")
    networks = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast", "local"):
            continue
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(dst, strict=False))
    return [n for n in networks if isinstance(n, ipaddress.IPv4Network)]


def _free_subnet(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 overlapping neither the root namespace's routes nor `taken` (a
    host would otherwise not know which interface an address is on)."""
    avoid = [*_root_networks(), *taken]
    rng = random.SystemRandom()
    for _ in range(200):
        candidate = ipaddress.IPv4Network(
            f"10.{rng.randrange(64, 250)}.{rng.randrange(0, 256)}.0/24")
        if not any(candidate.overlaps(other) for other in avoid):
            return candidate
    raise NetnsError("no free 10.x.y.0/24 for a segment")


@dataclass
class Segment:
    """One L2 segment: a bridge in the switch namespace and a private /24."""

    name: str
    bridge: str
    network: ipaddress.IPv4Network
    _next_host: int = 1

    def next_address(self) -> ipaddress.IPv4Address:
        if self._next_host >= self.network.num_addresses - 1:
            raise NetnsError(f"segment {self.name} is full")
        address = self.network.network_address + self._next_host
        self._next_host += 1
        return address


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        """Until `text` appears in the process's output; fails early when it exits."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if self.popen.poll() is not None:
                raise NetnsError(f"{self.name} exited with {self.popen.returncode}:\n"
                                 f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise NetnsError(f"{self.name} did not print {text!r} within {timeout:.0f} s:"
                                 f"\n{self.log_tail()}")
            time.sleep(0.1)


@dataclass
class Host:
    """A namespace standing for one machine; `addresses` maps segment name to its address."""

    name: str
    netns: str
    log_dir: Path
    addresses: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def address(self, segment: str | None = None) -> str:
        if segment is None:
            if len(self.addresses) != 1:
                raise NetnsError(f"{self.name} is on {sorted(self.addresses)}: name a segment")
            return next(iter(self.addresses.values()))
        return self.addresses[segment]

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host (`ip netns exec` keeps the environment and fds)."""
        return [IP, "netns", "exec", self.netns, *argv]

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Process:
        """Start `argv` in this host, its output in `<log_dir>/<host>-<name>.log`, in a
        session of its own (so teardown can end it with its children)."""
        log_path = self.log_dir / f"{self.name}-{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                     start_new_session=True)
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def run(self, argv: list[str], *, timeout: float = 60, env: dict[str, str] | None = None,
            cwd: Path | None = None, stdin: IO[bytes] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=cwd, stdin=stdin, check=False)

    def connect_error(self, address: str, port: int, wait: float = 0.0) -> str | None:
        """Connect from this host to address:port, retrying for `wait` seconds. None when it
        connected, else the last errno's name (ECONNREFUSED, ENETUNREACH, ...) or "timeout"."""
        result = self.run([sys.executable, "-I", "-S", "-c", _PROBE, address, str(port),
                           str(wait)], timeout=wait + 30)
        verdict = result.stdout.strip()
        if result.returncode != 0 or not verdict:
            raise NetnsError(f"the probe in {self.name} failed: {result.stderr.strip()}")
        return None if verdict == "ok" else verdict

    def wait_for_port(self, address: str, port: int, *, timeout: float = 60.0,
                      process: Process | None = None) -> None:
        """Until a TCP connect from this host to address:port succeeds; fails early with the
        log when `process` exits."""
        deadline = time.monotonic() + timeout
        while True:
            error = self.connect_error(address, port, wait=min(2.0, timeout))
            if error is None:
                return
            if process is not None and process.popen.poll() is not None:
                raise NetnsError(f"{process.name} in {self.name} exited with "
                                 f"{process.popen.returncode}:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                tail = "" if process is None else f":\n{process.log_tail()}"
                raise NetnsError(f"{address}:{port} did not answer in {self.name} within "
                                 f"{timeout:.0f} s ({error}){tail}")

    def wrapper(self, target: Path, folder: Path) -> Path:
        """An executable script that runs `target` inside this host with its arguments, for
        tools that take an executable path (Playwright's `executable_path`)."""
        script = folder / f"{self.name}-{target.name}"
        script.write_text("#!/bin/sh\n"
                          f"exec {shlex.join(self.command([str(target)]))} \"$@\"\n")
        script.chmod(0o755)
        return script


def _stop(process: Process, timeout: float = 15.0) -> None:
    popen = process.popen
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=5)


class Lab:
    """The namespaces of one test run; use as a context manager (teardown on exit)."""

    def __init__(self, log_dir: Path) -> None:
        self.tag = f"mip{os.getpid()}-{secrets.token_hex(2)}"
        self.log_dir = log_dir
        self.switch = f"{self.tag}-switch"
        self.segments: dict[str, Segment] = {}
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    def __enter__(self) -> Lab:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._add_netns(self.switch)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(raise_errors=exc is None)

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def segment(self, name: str) -> Segment:
        """A new L2 segment (a bridge) with a private /24 of its own."""
        if not _SEGMENT_NAME.fullmatch(name) or name in self.segments:
            raise NetnsError(f"bad or repeated segment name {name!r}")
        network = _free_subnet([s.network for s in self.segments.values()])
        bridge = f"br{len(self.segments)}"
        _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
        _ip("-n", self.switch, "link", "set", bridge, "up")
        segment = self.segments[name] = Segment(name, bridge, network)
        return segment

    def host(self, name: str, *segments: Segment) -> Host:
        """A new host (namespace) with one interface and address on each of `segments`."""
        if not _HOST_NAME.fullmatch(name) or name in self.hosts:
            raise NetnsError(f"bad or repeated host name {name!r}")
        netns = f"{self.tag}-{name}"
        self._add_netns(netns)
        host = self.hosts[name] = Host(name, netns, self.log_dir)
        for segment in segments:
            port = f"p{len(self.hosts)}{segment.bridge}"
            address = segment.next_address()
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name",
                segment.name, "netns", netns)
            _ip("-n", self.switch, "link", "set", port, "master", segment.bridge)
            _ip("-n", self.switch, "link", "set", port, "up")
            _ip("-n", netns, "addr", "add", f"{address}/{segment.network.prefixlen}",
                "dev", segment.name)
            _ip("-n", netns, "link", "set", segment.name, "up")
            host.addresses[segment.name] = str(address)
        return host

    def close(self, raise_errors: bool = True) -> None:
        """Stop every process started in a host, kill whatever else is left in the
        namespaces (e.g. a browser's children), delete the namespaces (with their links)."""
        errors = []
        for host in self.hosts.values():
            for process in reversed(host.processes):
                try:
                    _stop(process)
                except Exception as exc:  # keep tearing down; reported below
                    errors.append(f"stopping {process.name} in {host.name}: {exc!r}")
        for name in reversed(self._namespaces):
            try:
                for pid in _ip("netns", "pids", name).split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                _ip("netns", "del", name)
            except Exception as exc:
                errors.append(f"deleting {name}: {exc!r}")
        self._namespaces.clear()
        if errors and raise_errors:
            raise NetnsError("teardown failed: " + "; ".join(errors))
