"""Image-to-decision path (engine + protector) on real photos, and key loading."""

from __future__ import annotations

import base64
import os

import cv2
import numpy as np
import pytest

from face_engine.engine import FaceEngine
from face_engine.errors import NoFace
from face_engine.protect import (
    InvalidKey,
    ReferenceMismatch,
    RevokedReference,
    TemplateProtector,
    generate_keys,
    keys_from_env,
)
from face_engine.protect.service import ProtectedFaceVerifier


@pytest.fixture(scope="module")
def verifier(engine: FaceEngine) -> ProtectedFaceVerifier:
    return ProtectedFaceVerifier(engine, TemplateProtector(os.urandom(32),
                                                                 os.urandom(32)))


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def test_enrol_verify_renew_on_real_photos(verifier: ProtectedFaceVerifier,
                                           astronaut_bytes: bytes, astronaut_bgr: np.ndarray,
                                           stranger_bytes: bytes, blank_png: bytes) -> None:
    astronaut, image = astronaut_bytes, astronaut_bgr
    # another capture of the same face: smaller, darker, re-encoded
    variant = _jpeg(cv2.convertScaleAbs(cv2.resize(image, None, fx=0.8, fy=0.8), alpha=0.8))
    ref = verifier.enrol(astronaut, "holder-1", "HospitalMSP")
    assert verifier.verify(ref, variant, holder_account="holder-1")
    assert not verifier.verify(ref, stranger_bytes)
    assert verifier.verify(ref, variant, operating_point_name="far_1e-4")
    with pytest.raises(ReferenceMismatch):
        verifier.verify(ref, variant, holder_account="holder-2")
    with pytest.raises(NoFace):
        verifier.verify(ref, blank_png)
    renewed = verifier.renew(ref, variant, "holder-1")
    assert verifier.verify(renewed, astronaut)
    with pytest.raises(RevokedReference):
        verifier.verify(ref, astronaut)


def test_keys_from_env() -> None:
    env = generate_keys()
    kek, transform = keys_from_env(env)
    assert len(kek) == 32 and len(transform) == 32
    b64 = {k: base64.b64encode(bytes.fromhex(v)).decode() for k, v in env.items()}
    assert keys_from_env(b64) == (kek, transform)
    with pytest.raises(InvalidKey, match="MIP_FACE_KEK is not set"):
        keys_from_env({"MIP_FACE_TRANSFORM_KEY": env["MIP_FACE_TRANSFORM_KEY"]})
    with pytest.raises(InvalidKey, match="exactly 32 bytes"):
        keys_from_env({**env, "MIP_FACE_KEK": "00" * 16})
    with pytest.raises(InvalidKey) as err:
        keys_from_env({**env, "MIP_FACE_TRANSFORM_KEY": "not a key!"})
    assert "not a key" not in str(err.value)  # the value is never echoed
