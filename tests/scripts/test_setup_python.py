"""scripts/setup.sh takes Python 3.11 only: python3.11, or python3 when it is 3.11, or $PYTHON
when it is 3.11, and otherwise stops with a message naming what it found, before creating
anything. Run on a copy of the script (its root is the copy's folder, so no .venv is ever made
in the checkout) with fake interpreters on a PATH of their own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP = REPO_ROOT / "scripts" / "setup.sh"

# A stand-in interpreter of version VERSION: answers the version questions setup.sh asks, and
# records any other call (e.g. `-m venv .venv`) then fails, so the test sees how far setup got.
FAKE_PYTHON = """#!{bash}
case "$1" in
    --version) echo "Python {version}.7" ;;
    -c) echo "{version}" ;;
    *) echo "$0 $*" >> "{calls}"; exit 97 ;;
esac
"""


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, root / "scripts" / "setup.sh")
    return root


def _bin(tmp_path: Path, pythons: dict[str, str]) -> Path:
    """A PATH folder with what setup.sh needs before its first interpreter call, and the
    given fake interpreters (name -> version)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    for name, version in pythons.items():
        _fake(bin_dir / name, version, tmp_path)
    return bin_dir


def _fake(path: Path, version: str, tmp_path: Path) -> Path:
    bash = shutil.which("bash")
    assert bash is not None
    path.write_text(FAKE_PYTHON.format(bash=bash, version=version, calls=tmp_path / "calls"))
    path.chmod(0o755)
    return path


def _run(root: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run([bash, str(root / "scripts" / "setup.sh")],
                          env={"PATH": str(bin_dir), **env}, capture_output=True, text=True,
                          timeout=30, check=False)


def _calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "calls"
    return calls.read_text().splitlines() if calls.is_file() else []


def test_python3_of_another_version_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    result = _run(root, _bin(tmp_path, {"python3": "3.9"}))
    assert result.returncode == 1
    assert "MIP needs Python 3.11" in result.stderr
    assert "there is no python3.11 on PATH and python3 is Python 3.9.7" in result.stderr
    assert not (root / ".venv").exists()
    assert _calls(tmp_path) == []


def test_no_python_at_all_is_refused(tmp_path: Path) -> None:
    result = _run(_tree(tmp_path), _bin(tmp_path, {}))
    assert result.returncode == 1
    assert "there is neither python3.11 nor python3 on PATH" in result.stderr


def test_python_variable_of_another_version_is_refused(tmp_path: Path) -> None:
    bin_dir = _bin(tmp_path, {"python3.11": "3.11"})
    other = _fake(tmp_path / "python3.12", "3.12", tmp_path)
    result = _run(_tree(tmp_path), bin_dir, PYTHON=str(other))
    assert result.returncode == 1
    assert f"$PYTHON={other} is Python 3.12.7" in result.stderr
    assert _calls(tmp_path) == []


def test_existing_venv_of_another_version_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / ".venv" / "bin").mkdir(parents=True)
    _fake(root / ".venv" / "bin" / "python", "3.9", tmp_path)
    result = _run(root, _bin(tmp_path, {"python3.11": "3.11"}))
    assert result.returncode == 1
    assert "the existing .venv is Python 3.9.7; remove .venv" in result.stderr


@pytest.mark.parametrize("name", ["python3.11", "python3"])
def test_a_311_interpreter_creates_the_venv(tmp_path: Path, name: str) -> None:
    # python3 is taken when it is 3.11; the fake then fails `-m venv`, ending the run there.
    result = _run(_tree(tmp_path), _bin(tmp_path, {name: "3.11"}))
    assert "creating .venv with Python 3.11.7" in result.stdout
    assert [call.split(maxsplit=1)[1] for call in _calls(tmp_path)] == ["-m venv .venv"]
    assert result.returncode == 97
