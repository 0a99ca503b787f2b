"""The `mip` command line as a user runs it (`python -m gateway ...`): network up/status/
down on devnet, identity add, reads, and one-line typed errors.

Each command and each kind of refusal runs at least once as its own process; the repeats
(the second `identity add`, an unknown role, the `audit` refusal after `passport show`'s)
run in the test's process (tests/gateway/cli/cli_kit.py), sparing a second or more of imports
each."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from cli_kit import Ran, mip_in_process, mip_process

from gateway.cli.audit import parse_since
from gateway.cli.common import CliError
from gateway.cli.dataset import parse_columns


def mip(*args: str, config: Path | None = None, timeout: float = 150) -> Ran:
    extra = ["--config", str(config)] if config is not None else []
    return mip_process(*args, *extra, timeout=timeout)


def mip_here(*args: str, config: Path | None = None) -> Ran:
    extra = ["--config", str(config)] if config is not None else []
    return mip_in_process(*args, *extra)


def test_parsers() -> None:
    assert parse_since("2h", 10_000.0) == 10_000 - 7200
    assert parse_since("12345", 0) == 12345
    assert parse_since(None, 100_000.0) == 100_000 - 86400
    with pytest.raises(CliError):
        parse_since("yesterday-ish", 0)
    assert parse_columns(["age=numeric", "ward=categorical"]) == {
        "age": "numeric", "ward": "categorical"}
    for bad in (["age"], ["age=text"], []):
        with pytest.raises(CliError):
            parse_columns(bad)


def test_bad_config_is_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: not-a-port\n")
    r = mip("identity", "add", "--org", "HospitalMSP", "--name", "x", "--role", "doctor",
            config=config)
    assert r.returncode == 2
    assert r.stderr.startswith("error: invalid settings") and "Traceback" not in r.stderr
    r = mip_here("identity", "add", "--org", "HospitalMSP", "--name", "x", "--role", "wizard")
    assert r.returncode == 2 and "unknown role" in r.stderr


@pytest.mark.timeout(200)
def test_network_identity_and_reads_on_devnet(tmp_path: Path) -> None:
    data = tmp_path / "devnet"
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "gw"), "mode": "development",
                                      "connection": str(data / "connection.json"),
                                      "argon2_profile": "interactive"}))
    r = mip("network", "up", "--port", "0", config=config)
    try:
        assert r.returncode == 0, r.stderr
        assert "devnet running" in r.stdout and "gateway service identity minted" in r.stdout
        pid = int((data / "devnet.pid").read_text())
        os.kill(pid, 0)  # running in the background after the command returned

        r = mip("network", "status", config=config)
        assert r.returncode == 0, r.stderr
        assert "running" in r.stdout

        token_file = tmp_path / "dana.token"
        r = mip("identity", "add", "--org", "HospitalMSP", "--name", "dana", "--role",
                "doctor", "--token-file", str(token_file), config=config)
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token.startswith("mipst_") and token not in r.stdout
        assert (data / "organizations" / "peerOrganizations" / "hospital.mip.local" /
                "users" / "dana@hospital.mip.local").is_dir()
        r = mip_here("identity", "add", "--org", "HospitalMSP", "--name", "dana", "--role",
                     "doctor", config=config)
        assert r.returncode == 0 and "kept existing" in r.stdout
        assert "mipst_" in r.stdout  # printed once when no file is given

        # A typed ledger refusal: one line, non-zero.
        r = mip("passport", "show", "ab" * 32, "--org", "HospitalMSP", "--as", "dana",
                config=config)
        assert r.returncode == 1 and r.stderr.startswith("error: ")
        assert "Traceback" not in r.stderr
        r = mip_here("audit", "--org", "HospitalMSP", "--as", "dana", config=config)
        assert r.returncode == 1 and "auditor" in r.stderr
    finally:
        r = mip("network", "down", config=config)
    assert r.returncode == 0 and "devnet stopped" in r.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (data / "devnet.pid").exists()
