"""scripts/npm_deps.sh: the install step network.sh and the Node tests rely on, with a fake
`npm` on PATH (no registry needed): `npm ci` against a lockfile, `npm install` without one,
nothing when installed, exit 3 only without node/npm, and a failed npm is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_DEPS = REPO_ROOT / "scripts" / "npm_deps.sh"
MARKER = "fake-pkg/index.js"

# A stand-in npm: records its arguments; creates the marker (and npm's install record) unless
# FAKE_NPM_FAIL is set, in which case it prints an error and fails as a registry error would.
FAKE_NPM = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_NPM_CALLS"
if [[ -n "${FAKE_NPM_FAIL:-}" ]]; then echo "npm ERR! code E404 fake-pkg not found"; exit 1; fi
mkdir -p node_modules/fake-pkg
touch node_modules/fake-pkg/index.js node_modules/.package-lock.json
"""


def _bin(tmp_path: Path, *, npm: bool = True) -> Path:
    """A PATH folder with bash's basics, `node` and (optionally) the fake npm."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mktemp", "tail", "rm", "mkdir", "touch", "cat", "dirname"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    node = bin_dir / "node"
    node.write_text("#!/usr/bin/env bash\necho v20.0.0\n")
    node.chmod(0o755)
    if npm:
        (bin_dir / "npm").write_text(FAKE_NPM)
        (bin_dir / "npm").chmod(0o755)
    (bin_dir / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    return bin_dir


def _folder(tmp_path: Path, *, lockfile: bool) -> Path:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "package.json").write_text(json.dumps({"name": "pkg", "private": True}))
    if lockfile:
        (folder / "package-lock.json").write_text("{}")
    return folder


def _run(tmp_path: Path, folder: Path, bin_dir: Path,
         **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "FAKE_NPM_CALLS": str(tmp_path / "calls"), **extra}
    return subprocess.run(["bash", str(NPM_DEPS), str(folder), MARKER], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def _calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "calls"
    return calls.read_text().splitlines() if calls.is_file() else []


@pytest.mark.parametrize(("lockfile", "command"), [(True, "ci"), (False, "install")])
def test_installs_once(tmp_path: Path, lockfile: bool, command: str) -> None:
    folder, bin_dir = _folder(tmp_path, lockfile=lockfile), _bin(tmp_path)
    first = _run(tmp_path, folder, bin_dir)
    assert first.returncode == 0, first.stderr
    assert (folder / "node_modules" / MARKER).is_file()
    assert _calls(tmp_path) == [f"{command} --no-audit --no-fund"]
    again = _run(tmp_path, folder, bin_dir)  # installed and up to date: npm is not run
    assert again.returncode == 0, again.stderr
    assert len(_calls(tmp_path)) == 1


def test_newer_lockfile_reinstalls(tmp_path: Path) -> None:
    folder, bin_dir = _folder(tmp_path, lockfile=True), _bin(tmp_path)
    assert _run(tmp_path, folder, bin_dir).returncode == 0
    record = folder / "node_modules" / ".package-lock.json"
    os.utime(record, (record.stat().st_mtime - 100,) * 2)  # the lockfile changed since
    assert _run(tmp_path, folder, bin_dir).returncode == 0
    assert _calls(tmp_path) == ["ci --no-audit --no-fund"] * 2


def test_failed_npm_is_a_failure_with_its_output(tmp_path: Path) -> None:
    folder, bin_dir = _folder(tmp_path, lockfile=True), _bin(tmp_path)
    result = _run(tmp_path, folder, bin_dir, FAKE_NPM_FAIL="1")
    assert result.returncode == 1
    assert "'npm ci' failed" in result.stderr
    assert "E404 fake-pkg not found" in result.stderr


def test_without_npm_exit_3_names_it(tmp_path: Path) -> None:
    folder, bin_dir = _folder(tmp_path, lockfile=True), _bin(tmp_path, npm=False)
    result = _run(tmp_path, folder, bin_dir)
    assert result.returncode == 3
    assert "npm is not on PATH" in result.stderr


def test_project_node_folders_have_lockfiles() -> None:
    # `npm ci` (pinned versions) needs the lockfile; without it installs would drift.
    for name in ("node_chaincode", "node_client_check"):
        folder = REPO_ROOT / "scripts" / name
        lock = json.loads((folder / "package-lock.json").read_text())
        deps = json.loads((folder / "package.json").read_text())["dependencies"]
        assert set(deps) <= set(lock["packages"][""]["dependencies"]), name
