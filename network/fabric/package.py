"""Chaincode-as-a-service packages, byte-for-byte reproducible.

A CCaaS package is `metadata.json` ({"type": "ccaas", "label": ...}) and `code.tar.gz`
holding `connection.json` (address, dial_timeout, tls_required and, with TLS, the PEM text of
the root and client certificates: Fabric's ccaas builder reads PEM text, not paths). Tar
headers carry no time, owner or mode variation, so packaging twice gives the same bytes and
therefore the same package id (label:sha256) -- `deploy` can be re-run without a new install.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

from network.fabric.crypto import ChaincodeTLS

_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")  # Fabric's package label rule
_DURATION = re.compile(r"^[0-9]+(ms|s|m)$")


class PackageError(ValueError):
    """Bad label, address or timeout for a chaincode package."""


def connection_json(address: str, dial_timeout: str, tls: ChaincodeTLS | None) -> dict[str, object]:
    if not address or ":" not in address:
        raise PackageError(f"chaincode address must be host:port, not {address!r}")
    if not _DURATION.match(dial_timeout):
        raise PackageError(f"dial_timeout must look like 10s or 500ms, not {dial_timeout!r}")
    info: dict[str, object] = {
        "address": address,
        "dial_timeout": dial_timeout,
        "tls_required": tls is not None,
    }
    if tls is not None:
        info.update(
            client_auth_required=True,
            root_cert=tls.ca_cert.read_text(encoding="ascii"),
            client_cert=tls.client_cert.read_text(encoding="ascii"),
            client_key=tls.client_key.read_text(encoding="ascii"),
        )
    return info


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_package(
    out: Path, label: str, address: str, *, tls: ChaincodeTLS | None, dial_timeout: str = "10s"
) -> str:
    """Write the package to `out` (mode 0600: it may hold the peer's TLS client key).

    Returns the package id Fabric will compute for it (label:sha256 of the file).
    """
    if not _LABEL.match(label):
        raise PackageError(f"invalid package label {label!r}")
    conn = json.dumps(connection_json(address, dial_timeout, tls), indent=2).encode()
    metadata = json.dumps({"type": "ccaas", "label": label}).encode()
    code = _tar_gz({"connection.json": conn})
    package = _tar_gz({"code.tar.gz": code, "metadata.json": metadata})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600, exist_ok=True)
    out.chmod(0o600)
    out.write_bytes(package)
    return f"{label}:{hashlib.sha256(package).hexdigest()}"
