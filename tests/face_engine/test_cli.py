"""`python -m face_engine detect|verify`: a success and a refusal as their own process (exit
status and stderr as a shell sees them); the other cases through the same `main` in the
test's process (a new process pays a second or more of imports and model loading)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from face_engine.__main__ import main
from face_engine.models import ModelPaths

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, model_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIP_MODEL_DIR": str(model_dir)}
    return subprocess.run([sys.executable, "-m", "face_engine", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _run_here(*args: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    monkeypatch.setenv("MIP_MODEL_DIR", str(model_dir))
    capsys.readouterr()  # only this call's output
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["face_engine", *args], code, out, err)


def test_cli_detect_verify_and_bad_input(model_paths: ModelPaths, astronaut_bytes: bytes,
                                         blank_png: bytes, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    models = model_paths.directory
    astro = str(tmp_path / "astronaut.png")
    Path(astro).write_bytes(astronaut_bytes)
    r = _run("detect", astro, model_dir=models)
    assert r.returncode == 0, r.stderr
    assert "faces detected: 1" in r.stdout and "quality: pass" in r.stdout
    r = _run_here("verify", astro, astro, model_dir=models, monkeypatch=monkeypatch,
                  capsys=capsys)
    assert r.returncode == 0 and r.stdout.startswith("MATCH score=1.0")
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 200)
    r = _run("verify", astro, str(gif), model_dir=models)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: unsupported_format: only JPEG, PNG and WebP images are accepted"]
    blank = tmp_path / "blank.png"
    blank.write_bytes(blank_png)
    r = _run_here("detect", str(blank), model_dir=models, monkeypatch=monkeypatch,
                  capsys=capsys)
    assert r.returncode == 2 and "no_face" in r.stderr
