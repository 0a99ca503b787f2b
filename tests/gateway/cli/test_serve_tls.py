"""`mip serve` over TLS, and its refusal of plain HTTP beyond loopback.

The counter page opens the camera, which browsers allow only in a secure context (https, or
http on localhost). `mip serve --tls-self-signed NAME` makes a certificate for NAME in the data
dir at run time and serves https with it; the test fetches the counter page with that
certificate as its only CA. A non-loopback host without TLS is refused with the reason.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.core import tls

REPO_ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, port: int, host: str = "127.0.0.1") -> Path:
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "gw"), "connection": str(tmp_path / "none.json"),
        "host": host, "port": port, "argon2_profile": "interactive",
        "mode": "development"}))
    return config


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIP_")}
    return {**env, "MIP_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}


def _mip(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.timeout(120)
def test_self_signed_https_serves_the_counter_page(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config),
             "--tls-self-signed", "localhost"],
            cwd=REPO_ROOT, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    cert_file = tmp_path / "gw" / "tls" / tls.CERT_FILE
    key_file = tmp_path / "gw" / "tls" / tls.KEY_FILE
    try:
        context = None
        deadline = time.monotonic() + 60
        page = None
        while page is None:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            if cert_file.is_file():
                context = context or ssl.create_default_context(cafile=str(cert_file))
                try:
                    page = httpx.get(f"https://localhost:{port}/counter/", verify=context,
                                     timeout=5)
                except httpx.ConnectError:
                    time.sleep(0.3)
            else:
                time.sleep(0.3)
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        # Plain HTTP gets nothing from a TLS port; an unknown CA is refused.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://localhost:{port}/counter/", timeout=5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://localhost:{port}/counter/", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    output = log_path.read_text()
    assert f"SHA-256 fingerprint {fingerprint}" in output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The certificate is reused on the next start (clients keep trusting the fingerprint).
    again = tls.self_signed(cert_file.parent, "localhost")
    assert not again.created and again.fingerprint == fingerprint


def test_non_loopback_without_tls_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, _free_port(), host="0.0.0.0")  # noqa: S104 (the refusal is the point)
    result = _mip(tmp_path, "serve", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: refusing to serve plain HTTP on 0.0.0.0")
    assert "secure context" in result.stderr and "--insecure-http" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was created: the refusal comes before the gateway opens its data dir.
    assert not (tmp_path / "gw").exists()


def test_tls_options_are_checked(tmp_path: Path) -> None:
    config = _config(tmp_path, _free_port())
    half = _mip(tmp_path, "serve", "--config", str(config), "--tls-cert", str(config))
    assert half.returncode == 1 and "--tls-cert and --tls-key go together" in half.stderr
    bad = _mip(tmp_path, "serve", "--config", str(config), "--tls-self-signed", "not a name")
    assert bad.returncode == 1 and "needs a host name or IP address" in bad.stderr


def test_loopback_and_certificate_names() -> None:
    assert tls.is_loopback("127.0.0.1") and tls.is_loopback("::1")
    assert tls.is_loopback("localhost") and tls.is_loopback("127.8.0.1")
    assert not tls.is_loopback("0.0.0.0")  # noqa: S104
    assert not tls.is_loopback("counter.example")
    assert not tls.is_loopback("192.168.1.20")


def test_self_signed_names_the_host_and_is_remade_for_another(tmp_path: Path) -> None:
    first = tls.self_signed(tmp_path, "192.168.1.20")
    cert = x509.load_pem_x509_certificate(first.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["192.168.1.20"]
    other = tls.self_signed(tmp_path, "counter.example")
    assert other.created and other.fingerprint != first.fingerprint
