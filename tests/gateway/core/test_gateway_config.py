from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.core.config import ConfigError, load_settings
from gateway.core.logging import RedactingFilter
from gateway.core.secrets import load_or_create_secrets


def test_yaml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "mip.yaml"
    config.write_text("port: 9000\nchannel: other\nliveness_seed: 5\n")
    monkeypatch.delenv("MIP_CONFIG", raising=False)
    settings = load_settings(config)
    assert (settings.port, settings.channel, settings.liveness_seed) == (9000, "other", 5)
    monkeypatch.setenv("MIP_PORT", "9100")
    assert load_settings(config).port == 9100
    assert load_settings(config, port=9200).port == 9200


def test_bad_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIP_CONFIG", raising=False)
    config = tmp_path / "mip.yaml"
    config.write_text("port: 0\n")
    with pytest.raises(ConfigError, match="port"):
        load_settings(config)
    config.write_text("no_such_setting: 1\n")
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings(config)
    config.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(config)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")


def test_secrets_created_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_or_create_secrets(path)
    assert path.stat().st_mode & 0o077 == 0
    assert load_or_create_secrets(path) == first
    assert "withheld" in repr(first) and first.face_kek.hex() not in repr(first)


def test_log_filter_withholds_key_shaped_text() -> None:
    record = logging.LogRecord("mip", logging.INFO, __file__, 1, "blob %s", ("A" * 200,), None)
    RedactingFilter().filter(record)
    assert "AAAA" not in record.getMessage()
    ok = logging.LogRecord("mip", logging.INFO, __file__, 1, "pickup %s refused", ("rx-1",), None)
    RedactingFilter().filter(ok)
    assert ok.getMessage() == "pickup rx-1 refused"
