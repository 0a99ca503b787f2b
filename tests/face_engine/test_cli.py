from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from face_engine.models import ModelPaths

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, model_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIP_MODEL_DIR": str(model_dir)}
    return subprocess.run([sys.executable, "-m", "face_engine", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_detect_verify_and_bad_input(model_paths: ModelPaths, astronaut_bytes: bytes,
                                         blank_png: bytes, tmp_path: Path) -> None:
    models = model_paths.directory
    astro = str(tmp_path / "astronaut.png")
    Path(astro).write_bytes(astronaut_bytes)
    r = _run("detect", astro, model_dir=models)
    assert r.returncode == 0, r.stderr
    assert "faces detected: 1" in r.stdout and "quality: pass" in r.stdout
    r = _run("verify", astro, astro, model_dir=models)
    assert r.returncode == 0 and r.stdout.startswith("MATCH score=1.0")
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 200)
    r = _run("verify", astro, str(gif), model_dir=models)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: unsupported_format: only JPEG, PNG and WebP images are accepted"]
    blank = tmp_path / "blank.png"
    blank.write_bytes(blank_png)
    r = _run("detect", str(blank), model_dir=models)
    assert r.returncode == 2 and "no_face" in r.stderr
