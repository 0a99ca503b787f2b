from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from face_engine.errors import ModelAltered, ModelMissing
from face_engine.models import (
    DETECTOR_FILE,
    MODEL_SHA256,
    RECOGNIZER_FILE,
    ModelPaths,
    ensure_models,
    sha256_file,
    verify_directory,
)


def _copy_models(models: ModelPaths, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(models.detector, dst / DETECTOR_FILE)
    # The 38 MB recogniser is linked, not copied: hashing follows the link all the same.
    (dst / RECOGNIZER_FILE).symlink_to(models.recognizer)


def test_shared_models_have_pinned_hashes(shared_dir: Path) -> None:
    for name, digest in MODEL_SHA256.items():
        assert sha256_file(shared_dir / "models" / name) == digest


def test_model_dir_env_is_used_and_verified(model_paths: ModelPaths, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_models(model_paths, tmp_path)
    monkeypatch.setenv("MIP_MODEL_DIR", str(tmp_path))
    paths = ensure_models()
    assert paths.detector == tmp_path / DETECTOR_FILE
    assert paths.recognizer == tmp_path / RECOGNIZER_FILE


def test_tampered_model_is_refused(model_paths: ModelPaths, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_models(model_paths, tmp_path)
    data = bytearray((tmp_path / DETECTOR_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    (tmp_path / DETECTOR_FILE).write_bytes(bytes(data))
    monkeypatch.setenv("MIP_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelAltered, match=DETECTOR_FILE) as exc:
        ensure_models()
    assert exc.value.code == "model_altered"


def test_missing_model_is_named(model_paths: ModelPaths, tmp_path: Path) -> None:
    _copy_models(model_paths, tmp_path)
    (tmp_path / RECOGNIZER_FILE).unlink()
    with pytest.raises(ModelMissing, match=RECOGNIZER_FILE):
        verify_directory(tmp_path)


def test_cache_is_filled_from_shared_and_tamper_detected(
        shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIP_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    paths = ensure_models(allow_download=False)
    assert paths.directory == tmp_path / "mip" / "models"
    assert sha256_file(paths.detector) == MODEL_SHA256[DETECTOR_FILE]
    paths.detector.write_bytes(b"not a model")
    with pytest.raises(ModelAltered):
        ensure_models(allow_download=False)
