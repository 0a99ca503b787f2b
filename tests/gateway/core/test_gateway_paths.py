"""The gateway's paths do not depend on the folder a command runs from, and a data dir holding
its database without the secrets it was made under (or the reverse) is refused, never
silently given fresh secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.core.config import Settings, load_settings
from gateway.core.keys.file_provider import FileProvider
from gateway.core.secrets import DataDirMismatch, GatewaySecrets
from gateway.services.state import open_data_dir as open_with_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
SHOW_PATHS = ("from gateway.core.config import load_settings; s = load_settings(); "
              "print(s.data_dir); print(s.connection)")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MIP_") and k != "XDG_DATA_HOME"}
    # The child imports this checkout whatever its current folder.
    return {**env, "PYTHONPATH": str(REPO_ROOT), **extra}


def open_data_dir(data_dir: Path) -> tuple[object, GatewaySecrets]:
    """The data dir opened as devnet opens it (development mode, the file key provider);
    the database and the secrets the provider read."""
    db, keys = open_with_settings(Settings(data_dir=data_dir, mode="development"))
    assert isinstance(keys, FileProvider)
    return db, keys.secrets


def _paths_from(cwd: Path, env: dict[str, str], *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SHOW_PATHS, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


def test_default_paths_are_the_same_from_any_folder(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two" / "deeper"
    one.mkdir()
    two.mkdir(parents=True)
    home = tmp_path / "user"
    env = _clean_env(HOME=str(home))
    expected = [str(home / ".local/share/mip/gateway"),
                str(home / ".local/share/mip/devnet/connection.json")]
    assert _paths_from(one, env) == expected
    assert _paths_from(two, env) == expected
    # $MIP_HOME, even given relative, is made absolute once.
    env = _clean_env(HOME=str(home), MIP_HOME="state")
    assert _paths_from(one, env) == [str(one / "state/gateway"),
                                     str(one / "state/devnet/connection.json")]


def test_relative_paths_in_the_config_file_are_the_file_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIP_CONFIG", raising=False)
    monkeypatch.delenv("MIP_DATA_DIR", raising=False)
    monkeypatch.delenv("MIP_CONNECTION", raising=False)
    folder = tmp_path / "etc"
    folder.mkdir()
    config = folder / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": "gw", "connection": "../net/connection.json"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(config)
    assert settings.data_dir == folder / "gw"
    assert settings.connection == folder / "../net/connection.json"
    assert settings.data_dir.is_absolute() and settings.connection.is_absolute()


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACE_KEK", "FACE_TRANSFORM_KEY", "FACE_FACTOR_KEK", "COUNTER_KEY_SEED",
                 "LINKAGE_KEY_SEED", "PORTRAIT_KEY_SEED"):
        monkeypatch.delenv(f"MIP_{name}", raising=False)


@pytest.mark.usefixtures("no_secret_env")
def test_database_without_its_secrets_is_refused(tmp_path: Path) -> None:
    db, secrets = open_data_dir(tmp_path / "gw")   # first use: both made
    db.close()
    made = json.loads((tmp_path / "gw" / "secrets.json").read_text())
    (tmp_path / "gw" / "secrets.json").rename(tmp_path / "kept.json")
    with pytest.raises(DataDirMismatch, match=r"gateway\.sqlite exists but its secrets do not"):
        open_data_dir(tmp_path / "gw")
    assert not (tmp_path / "gw" / "secrets.json").exists()  # no fresh secrets were made
    # The secrets back: the same ones, the database opens again.
    (tmp_path / "kept.json").rename(tmp_path / "gw" / "secrets.json")
    db, again = open_data_dir(tmp_path / "gw")
    db.close()
    assert again == secrets
    assert json.loads((tmp_path / "gw" / "secrets.json").read_text()) == made


@pytest.mark.usefixtures("no_secret_env")
def test_a_secret_added_later_completes_the_file(tmp_path: Path) -> None:
    """A secrets file from before a secret was added keeps its secrets and gains the new one."""
    db, secrets = open_data_dir(tmp_path / "gw")
    db.close()
    path = tmp_path / "gw" / "secrets.json"
    older = json.loads(path.read_text())
    del older["linkage_key_seed"], older["portrait_key_seed"]
    path.write_text(json.dumps(older))
    db, again = open_data_dir(tmp_path / "gw")
    db.close()
    assert again.face_kek == secrets.face_kek
    assert again.linkage_key_seed != secrets.linkage_key_seed
    assert again.portrait_key_seed != secrets.portrait_key_seed
    assert set(json.loads(path.read_text())) == {*older, "linkage_key_seed",
                                                 "portrait_key_seed"}


@pytest.mark.usefixtures("no_secret_env")
@pytest.mark.parametrize("name", ["face_kek", "face_transform_key", "face_factor_kek"])
def test_a_secrets_file_missing_an_original_secret_is_refused(tmp_path: Path,
                                                              name: str) -> None:
    """Only secrets added later are completed: a file that lost a face key is not this
    database's file any more, and a fresh key would strand every face reference."""
    db, _ = open_data_dir(tmp_path / "gw")
    db.close()
    path = tmp_path / "gw" / "secrets.json"
    damaged = json.loads(path.read_text())
    del damaged[name]
    path.write_text(json.dumps(damaged))
    with pytest.raises(DataDirMismatch, match=f"lacks MIP_{name.upper()}"):
        open_data_dir(tmp_path / "gw")
    assert json.loads(path.read_text()) == damaged


@pytest.mark.usefixtures("no_secret_env")
def test_secrets_without_their_database_are_refused(tmp_path: Path) -> None:
    db, _ = open_data_dir(tmp_path / "gw")
    db.close()
    (tmp_path / "gw" / "gateway.sqlite").rename(tmp_path / "moved.sqlite")
    with pytest.raises(DataDirMismatch, match=r"the database .* does not"):
        open_data_dir(tmp_path / "gw")
    assert not (tmp_path / "gw" / "gateway.sqlite").exists()


def test_mip_serve_from_another_folder_refuses_a_database_without_secrets(
        tmp_path: Path) -> None:
    """Through the CLI, from a folder that is not the checkout: the default data dir (under
    $MIP_HOME) has a database but its secrets are gone; `mip serve` says so and starts
    nothing."""
    home = tmp_path / "home"
    env = _clean_env(MIP_HOME=str(home))
    data = home / "gateway"
    db, _ = open_data_dir(data)
    db.close()
    (data / "secrets.json").unlink()
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--dev"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {data / 'gateway.sqlite'} exists but its secrets "
                                    "do not")
    assert "Traceback" not in result.stderr
    assert not (data / "secrets.json").exists()
    assert not (cwd / "var").exists()
