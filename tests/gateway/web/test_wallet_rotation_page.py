"""The wallet's guardian rotation (wallet_rotation.js) in headless Chromium with virtual
WebAuthn PRF authenticators, over a devnet with the real contract: a holder whose passport
moved to a device they lost asks from a new passkey ("Ask my guardians"); a guardian whose
own passport key moved to their wallet reads the request and approves it there ("Approve this
new key"); with the other guardian's approval the gateway carries `Passport:RotateKey`, and
the passport's key is the new one."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import (
    VIRTUAL_AUTHENTICATOR,
    chromium_missing_reason,
    context_options,
    launch_options,
    run_async,
    serving,
)
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL  # noqa: E402
from mip_testkit import (  # noqa: E402
    HolderKey,
    MipClients,
    MipNetwork,
    register_passport,
    request_arg,
    running_mip_devnet,
)

from chaincode.protocol.key_moves import PASSPORT_MOVE, passport_move_body  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import build_state  # noqa: E402


@dataclass
class Ledger:
    url: str
    network: MipNetwork
    guardian: tuple[HolderKey, str]  # key on record (the desk's), passport id
    other: tuple[HolderKey, str]  # the second guardian: key, passport id
    holder: tuple[HolderKey, str]  # the device key the holder lost, passport id

    async def _call(self, tx: str, args: list[str], submit: bool = True) -> dict[str, Any]:
        mip = MipClients(self.network)
        try:
            gateway = await mip.client(HOSPITAL, "gateway")
            raw = await (gateway.submit(tx, args) if submit else gateway.evaluate(tx, args))
            return dict(json.loads(raw))
        finally:
            await mip.close()

    def move(self, passport_id: str, old: HolderKey, confirmation: dict[str, Any]) -> None:
        """The desk's half of a passport move the device confirmed, carried."""
        request = old.sign_request(PASSPORT_MOVE, confirmation["body"])
        run_async(self._call("Passport:MoveKey", [passport_id, request_arg(request),
                                                  json.dumps(confirmation)]))

    def passport(self, passport_id: str) -> dict[str, Any]:
        return run_async(self._call("Passport:Get", [passport_id], submit=False))


async def _passports(mip: MipClients) -> tuple[tuple[HolderKey, str], ...]:
    guardian, g = await register_passport(mip, HOSPITAL)
    other, o = await register_passport(mip, HOSPITAL)
    old, h = await register_passport(mip, HOSPITAL, guardians=[guardian, other], threshold=2)
    lost = HolderKey.generate()  # the holder moved the passport to a device, then lost it
    body = passport_move_body(h["id"], lost.public)
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Passport:MoveKey", [
        h["id"], request_arg(old.sign_request(PASSPORT_MOVE, body)),
        request_arg(lost.sign_request(PASSPORT_MOVE, body))])
    return (guardian, g["id"]), (other, o["id"]), (lost, h["id"])


async def _setup(network: MipNetwork) -> tuple[tuple[HolderKey, str], ...]:
    mip = MipClients(network)
    try:
        return await _passports(mip)
    finally:
        await mip.close()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("rotation-devnet")) as network:
        ensure_service_identities(network.connection)
        guardian, other, holder = run_async(_setup(network))
        settings = make_settings(tmp_path_factory.mktemp("rotation-gateway"),
                                 network.connection)
        state = build_state(settings)
        app = create_app(state=state)
        app.state.mip = state
        with serving(app, cleanup=state.close) as server:
            yield Ledger(f"http://localhost:{server.port}", network, guardian, other, holder)


@pytest.fixture
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(**launch_options())
    try:
        yield browser
    finally:
        browser.close()


def wallet(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    """A fresh wallet (its own context, authenticator and storage) with a new passkey."""
    context = browser.new_context(**context_options((390, 844)))
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    page.goto(f"{url}/wallet/")
    page.locator("#create-passkey").press("Enter")
    expect(page.locator("#passport-key")).not_to_have_text("")
    return context, page


def test_holder_asks_and_a_moved_guardian_approves_on_the_wallet(
        ledger: Ledger, chromium: Browser) -> None:
    guardian_key, guardian_pid = ledger.guardian
    other_key, other_pid = ledger.other
    _lost, holder_pid = ledger.holder

    # The guardian's wallet: their passport key moves here (the desk co-signs).
    guardian_context, guardian = wallet(chromium, ledger.url)
    guardian.locator("#move-terms").fill(json.dumps(
        {"move": "passport", "action": "passport.move", "passport_id": guardian_pid,
         "institution": HOSPITAL}))
    guardian.locator("#show-moves").press("Enter")
    guardian.locator("#move-list button.move").click()
    expect(guardian.locator("#move-signed")).not_to_have_value("")
    ledger.move(guardian_pid, guardian_key,
                json.loads(guardian.locator("#move-signed").input_value()))

    # The holder, with a new passkey on a new device, asks.
    holder_context, holder = wallet(chromium, ledger.url)
    new_key = holder.locator("#passport-key").text_content()
    holder.locator("#rotation-passport").fill("not-a-passport")
    holder.locator("#ask-rotation").press("Enter")
    expect(holder.locator("#wallet-error")).to_have_attribute("data-code",
                                                              "rotation_unreadable")
    holder.locator("#rotation-passport").fill(holder_pid)
    holder.locator("#ask-rotation").press("Enter")
    expect(holder.locator("#rotation-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    rotation_id = holder.locator("#rotation-id").text_content()
    rotation = httpx.get(f"{ledger.url}/api/v1/passport-rotations/{rotation_id}").json()
    assert rotation["body"] == {"passport_id": holder_pid, "new_public_key": new_key}

    # The other guardian approves first (signed with their key, posted to the gateway).
    r = httpx.post(f"{ledger.url}/api/v1/passport-rotations/{rotation_id}/approvals", json={
        "guardian_passport_id": other_pid, "signed_request": other_key.sign_request(
            "passport.rotate", rotation["body"], expires=rotation["expires"])})
    assert r.status_code == 200 and r.json()["status"] == "open", r.text

    # The moved guardian reads the request on their wallet and approves: the k-th.
    guardian.locator("#approve-id").fill(str(rotation_id))
    guardian.locator("#show-rotation").press("Enter")
    expect(guardian.locator("#approve-what")).to_contain_text(str(new_key))
    guardian.locator("#approve-rotation").click()
    expect(guardian.locator("#wallet-status")).to_contain_text("now has the new key")
    expect(guardian.locator("#wallet-error")).to_be_hidden()
    record = ledger.passport(holder_pid)
    assert record["public_key"] == new_key
    # Asked again, the request is finished.
    guardian.locator("#show-rotation").press("Enter")
    expect(guardian.locator("#approve-what")).to_contain_text("rotated")
    guardian_context.close()
    holder_context.close()
