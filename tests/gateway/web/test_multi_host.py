"""The counter page across three hosts: ledger, the Pharmacy's gateway and a browser, each a
network namespace of its own (tests/netns_kit.py), as on three machines.

    browser ──(counter LAN)── pharmacy-gw ──(consortium LAN)── ledger

- `ledger` runs devnet (`python -m network.devnet up --host <its address>`), which writes
  connection.json naming that address;
- `pharmacy-gw` runs `mip serve` on its counter-LAN address over https with a certificate it
  makes for that address (`--tls-self-signed`), reaching the ledger through connection.json;
- `browser` runs Debian's headless Chromium (Playwright drives it through a wrapper that
  starts it inside the namespace), trusting the gateway's certificate by its key
  (`--ignore-certificate-errors-spki-list`), and opens the counter page by the gateway's
  address: a secure context off localhost, as a counter tablet sees it. A pharmacist signs in
  and looks up a prescription: the page's API call crosses browser -> gateway -> ledger and
  comes back with the ledger's answer (no such prescription).

Isolation is by topology, not by firewall rules: the browser and the ledger share no
segment and no host forwards, so the browser cannot reach the ledger's port at all (while the
gateway can), each host has only its own addresses, and no host reaches a service on the root
namespace's 127.0.0.1.

Skipped, with the reason, only where the machine cannot make namespaces (tests/netns_kit.py
`can_use_netns`) or has no Chromium.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from browser_kit import CHROMIUM, chromium_missing_reason, context_options, launch_options
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from netns_kit import Host, Lab, can_use_netns
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Playwright, expect

from gateway.core import tls
from gateway.services.ledger import ensure_service_identities

REPO_ROOT = Path(__file__).resolve().parents[3]
# Each host has a network stack of its own: fixed ports collide with nothing.
DEVNET_PORT = 7051
GATEWAY_PORT = 8443
PHARMACY = "PharmacyMSP"
UNKNOWN_PRESCRIPTION = "c_" + "0" * 32


@dataclass
class Hosts:
    lab: Lab
    ledger: Host
    gateway: Host
    browser: Host
    token: str
    cert_file: Path

    @property
    def counter_url(self) -> str:
        return f"https://{self.gateway.address('counter')}:{GATEWAY_PORT}/counter/"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIP_")}
    return {**env, "MIP_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _gateway_config(folder: Path, host: str, connection: Path) -> Path:
    folder.mkdir()
    config = folder / "mip.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(folder / "data"), "connection": str(connection), "host": host,
        "port": GATEWAY_PORT, "argon2_profile": "interactive",
        # Keys in a file (development mode): this test is about hosts, not key custody.
        "mode": "development"}))
    return config


def _spki_pin(cert_file: Path) -> str:
    """What --ignore-certificate-errors-spki-list takes: base64 of the SHA-256 of the
    certificate's SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return base64.b64encode(digest.finalize()).decode()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    reason = can_use_netns() or chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("multi-host")
    env = _env(root / "home")
    with Lab(root / "logs") as lab:
        counter_lan = lab.segment("counter")
        consortium = lab.segment("consortium")
        browser = lab.host("browser", counter_lan)
        gateway = lab.host("pharmacy-gw", counter_lan, consortium)
        ledger = lab.host("ledger", consortium)

        ledger_address = ledger.address()
        devnet = ledger.start("devnet", [
            sys.executable, "-m", "network.devnet", "up", "--data", str(root / "devnet"),
            "--host", ledger_address, "--port", str(DEVNET_PORT)], env=env, cwd=REPO_ROOT)
        # Ready (and connection.json written) once it says so; then reachable from the
        # gateway host.
        devnet.wait_for_output("devnet ready on", timeout=90)
        gateway.wait_for_port(ledger_address, DEVNET_PORT, timeout=10, process=devnet)
        connection = root / "devnet" / "connection.json"
        profile = json.loads(connection.read_text())
        # The profile names the address the other hosts reach the ledger by.
        assert {org["peerEndpoint"] for org in profile["organizations"].values()} == {
            f"{ledger_address}:{DEVNET_PORT}"}

        # The gateway's service identity in each org, as `mip network up` mints it (files
        # beside connection.json; no network involved).
        ensure_service_identities(connection)

        gw_address = gateway.address("counter")
        config = _gateway_config(root / "pharmacy-gw", gw_address, connection)
        token_file = root / "pharmacist.token"
        added = gateway.run([sys.executable, "-m", "gateway", "identity", "add", "--config",
                             str(config), "--org", PHARMACY, "--name", "counter-1", "--role",
                             "pharmacist", "--token-file", str(token_file)],
                            env=env, cwd=REPO_ROOT)
        assert added.returncode == 0, added.stderr
        serve = gateway.start("serve", [
            sys.executable, "-m", "gateway", "serve", "--config", str(config),
            "--tls-self-signed", gw_address], env=env, cwd=REPO_ROOT)
        browser.wait_for_port(gw_address, GATEWAY_PORT, timeout=60, process=serve)
        yield Hosts(lab, ledger, gateway, browser, token_file.read_text().strip(),
                    root / "pharmacy-gw" / "data" / "tls" / tls.CERT_FILE)


def test_each_host_has_only_its_own_addresses(hosts: Hosts) -> None:
    for host in (hosts.ledger, hosts.gateway, hosts.browser):
        shown = json.loads(host.run(["ip", "-j", "-4", "addr", "show"]).stdout)
        addresses = {a["local"] for link in shown for a in link.get("addr_info", [])}
        assert addresses == {"127.0.0.1", *host.addresses.values()}, host.name
    assert len({hosts.ledger.address(), hosts.gateway.address("consortium"),
                hosts.gateway.address("counter"), hosts.browser.address()}) == 4


def test_the_browser_host_reaches_the_gateway_but_not_the_ledger(hosts: Hosts) -> None:
    ledger = hosts.ledger.address()
    assert hosts.gateway.connect_error(ledger, DEVNET_PORT) is None
    assert hosts.browser.connect_error(ledger, DEVNET_PORT) == "ENETUNREACH"
    # Nor through the gateway host's other address (it forwards nothing).
    assert hosts.browser.connect_error(hosts.gateway.address("consortium"),
                                       GATEWAY_PORT) == "ENETUNREACH"
    assert hosts.browser.connect_error(hosts.gateway.address("counter"), GATEWAY_PORT) is None
    # The ledger host cannot reach the counter LAN either.
    assert hosts.ledger.connect_error(hosts.gateway.address("counter"),
                                      GATEWAY_PORT) == "ENETUNREACH"


def test_no_host_reaches_the_root_namespace_loopback(hosts: Hosts) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []
        acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]),
                                    daemon=True)
        acceptor.start()
        # Control: the service answers in the root namespace...
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        acceptor.join(timeout=5)
        assert len(accepted) == 1
        accepted[0].close()
        # ...and in every host 127.0.0.1 is that host's own loopback, where nothing listens.
        for host in (hosts.ledger, hosts.gateway, hosts.browser):
            assert host.connect_error("127.0.0.1", port) == "ECONNREFUSED", host.name


def test_counter_page_from_the_browser_host(hosts: Hosts, playwright: Playwright,
                                            tmp_path: Path) -> None:
    options = launch_options()
    options["executable_path"] = str(hosts.browser.wrapper(CHROMIUM, tmp_path))
    options["args"] = [*options["args"],
                       f"--ignore-certificate-errors-spki-list={_spki_pin(hosts.cert_file)}"]
    browser = playwright.chromium.launch(**options)
    try:
        page = browser.new_context(**context_options()).new_page()
        page.goto(hosts.counter_url)
        # https with the gateway's own certificate off localhost: a secure context, so the
        # camera API is there.
        assert page.evaluate("window.isSecureContext") is True
        assert page.evaluate("typeof navigator.mediaDevices?.getUserMedia") == "function"
        page.get_by_label("Pharmacist token").fill(hosts.token)
        page.get_by_role("button", name="Sign in").click()
        rx = page.get_by_label("Prescription ID (type or scan)")
        expect(rx).to_be_focused()
        with page.expect_response(lambda r: r.url.endswith("/api/v1/pharmacy/pickups")
                                  ) as answer:
            page.keyboard.type(UNKNOWN_PRESCRIPTION)
            page.keyboard.press("Enter")
        response = answer.value
        # The gateway asked the ledger (on the other LAN) and passed its answer on.
        assert response.url.startswith(f"https://{hosts.gateway.address('counter')}:")
        assert response.status == 404, response.text()
        assert response.json()["error"]["code"] == "not_found"
        expect(page.get_by_text("No prescription with this ID was found.")).to_be_visible()
        # The browser host cannot open the ledger at all.
        with pytest.raises(PlaywrightError, match="ERR_ADDRESS_UNREACHABLE"):
            page.goto(f"https://{hosts.ledger.address()}:{DEVNET_PORT}/", timeout=10_000)
    finally:
        browser.close()


def test_an_unpinned_certificate_is_refused(hosts: Hosts, playwright: Playwright,
                                            tmp_path: Path) -> None:
    """Control for the pin: without it, Chromium refuses the self-signed certificate."""
    options = launch_options()
    options["executable_path"] = str(hosts.browser.wrapper(CHROMIUM, tmp_path))
    browser = playwright.chromium.launch(**options)
    try:
        page = browser.new_context(**context_options()).new_page()
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(hosts.counter_url, timeout=10_000)
    finally:
        browser.close()
