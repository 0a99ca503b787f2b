"""Which Fabric release scripts/network.sh drives, and the peer config that release needs.

MIP supports Fabric 2.5 (the LTS) and 3.1 from one set of config files in network/fabric.
The only peer difference is the proposal time window: Fabric 3 peers check a proposal's
timestamp against `peer.authentication.timewindow` in an auth filter, TimeWindowCheck, which
core.yaml must list; our core.yaml lists its filters explicitly (so the 3.x default list does not
apply), and a 2.5 peer panics at start-up on a filter name it does not know. So the peers of a
3.x network read a copy of core.yaml with that one filter added.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

SUPPORTED_MAJORS = (2, 3)

# core.yaml's last auth filter; TimeWindowCheck goes right after it, same indentation.
_EXPIRATION_ENTRY = re.compile(r"^(?P<indent>[ \t]*)-\n[ \t]*name: ExpirationCheck\b[^\n]*\n", re.M)
TIME_WINDOW_FILTER = "TimeWindowCheck"


class FabricVersionError(ValueError):
    """A `peer version` output names no version, or one MIP does not support."""


def parse_version(text: str) -> tuple[int, int, int]:
    """The release in `peer version` / `orderer version` output (` Version: 3.1.5`)."""
    match = re.search(r"^\s*Version:\s*v?(\d+)\.(\d+)\.(\d+)", text, re.M)
    if match is None:
        raise FabricVersionError("no 'Version: X.Y.Z' line in the binary's version output")
    major, minor, patch = (int(part) for part in match.groups())
    if major not in SUPPORTED_MAJORS:
        raise FabricVersionError(
            f"Fabric {major}.{minor}.{patch} is not supported (2.5 LTS and 3.x are)"
        )
    if major == 2 and minor < 5:
        raise FabricVersionError(f"Fabric {major}.{minor}.{patch} is too old (2.5 or later)")
    return major, minor, patch


def peer_core_yaml(text: str, major: int) -> str:
    """core.yaml for a peer of Fabric `major`: unchanged for 2, TimeWindowCheck added for 3."""
    if major not in SUPPORTED_MAJORS:
        raise FabricVersionError(f"Fabric {major} is not supported")
    if major == 2:
        return text
    match = _EXPIRATION_ENTRY.search(text)
    if match is None:
        raise FabricVersionError("core.yaml lists no ExpirationCheck auth filter to extend")
    indent = match.group("indent")
    entry = (
        f"{indent}-\n{indent}  name: {TIME_WINDOW_FILTER}    # Fabric 3: proposal timestamps "
        "must lie within peer.authentication.timewindow\n"
    )
    out = text[: match.end()] + entry + text[match.end() :]
    # The result must still be the same config plus exactly one filter.
    names = [f["name"] for f in yaml.safe_load(out)["peer"]["handlers"]["authFilters"]]
    if names.count(TIME_WINDOW_FILTER) != 1 or names[-1] != TIME_WINDOW_FILTER:
        raise FabricVersionError(f"unexpected auth filters after the edit: {names}")
    return out


def write_peer_config(core_yaml: Path, version_text: str, out_dir: Path) -> tuple[int, int, int]:
    """Write out_dir/core.yaml for the peer whose `peer version` output is version_text."""
    version = parse_version(version_text)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = peer_core_yaml(core_yaml.read_text(encoding="utf-8"), version[0])
    (out_dir / "core.yaml").write_text(text, encoding="utf-8")
    return version
