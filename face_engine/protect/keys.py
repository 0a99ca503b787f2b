"""Loading the protector's two secrets from the environment.

``MIP_FACE_KEK`` (exactly 32 bytes) and ``MIP_FACE_TRANSFORM_KEY`` (at least 32 bytes),
each as hex or standard base64. Deployments should inject them from different sources
(e.g. the KEK from a KMS, the transform key from the gateway's secret store) so that one
leaked secret alone does not expose a template (docs/face.md, section 4.2). Values are
never echoed in errors.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping

from face_engine.protect.errors import InvalidKey

KEK_ENV = "MIP_FACE_KEK"
TRANSFORM_KEY_ENV = "MIP_FACE_TRANSFORM_KEY"


def decode_key(text: str, name: str) -> bytes:
    value = text.strip()
    try:
        if len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value):
            return bytes.fromhex(value)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey(f"{name} is neither hex nor base64") from exc


def keys_from_env(environ: Mapping[str, str] | None = None) -> tuple[bytes, bytes]:
    """(kek, transform_key) from the environment; ``InvalidKey`` if absent or malformed."""
    env = os.environ if environ is None else environ
    out = []
    for name, minimum, exact in ((KEK_ENV, 32, True), (TRANSFORM_KEY_ENV, 32, False)):
        if not env.get(name):
            raise InvalidKey(f"{name} is not set")
        key = decode_key(env[name], name)
        if (exact and len(key) != minimum) or len(key) < minimum:
            raise InvalidKey(f"{name} must decode to {'exactly' if exact else 'at least'} "
                             f"{minimum} bytes")
        out.append(key)
    return out[0], out[1]


def generate_keys() -> dict[str, str]:
    """Fresh random keys as hex, for provisioning (e.g. ``export $(python -c ...)``)."""
    return {KEK_ENV: secrets.token_hex(32), TRANSFORM_KEY_ENV: secrets.token_hex(32)}
