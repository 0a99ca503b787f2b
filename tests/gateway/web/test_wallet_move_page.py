"""The wallet's "Move to this device" (wallet_move.js) in headless Chromium with a virtual
WebAuthn PRF authenticator, over a devnet with the real contract: the desk's move terms for a
custodial account and for the passport, the device signs the new key's half, the desk (played
by the contract test kit holding the custodial keys) signs the old half and carries the move;
afterwards the page's keys speak for the account and the passport and the old keys do not."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_kit import (
    VIRTUAL_AUTHENTICATOR,
    chromium_missing_reason,
    context_options,
    launch_options,
    run_async,
    serving,
)
from playwright.sync_api import Browser, Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL, PHARMACY, kyc_issuers  # noqa: E402
from mip_testkit import (  # noqa: E402
    Account,
    Holder,
    MipClients,
    MipNetwork,
    new_holder,
    open_account,
    running_mip_devnet,
)

from gateway.fabric import ChaincodeError  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import build_state  # noqa: E402


@dataclass
class Desk:
    """What the enrolling desk custodies: the passport key and a desk-opened account's key."""

    url: str
    network: MipNetwork
    holder: Holder
    account: Account

    async def _submit(self, tx: str, args: list[str]) -> dict[str, Any]:
        mip = MipClients(self.network)
        try:
            gateway = await mip.client(HOSPITAL, "gateway")
            return dict(json.loads(await gateway.submit(tx, args)))
        finally:
            await mip.close()

    def carry(self, tx: str, record_id: str, signed: dict[str, Any]) -> dict[str, Any]:
        """The desk signs the old key's half of the move the device confirmed, and carries
        both."""
        old = self.account.key if tx == "Account:RotateKey" else self.holder.passport_key
        request = old.sign_request(signed["action"], signed["body"])
        return run_async(self._submit(tx, [record_id, json.dumps(request), json.dumps(signed)]))


async def _custodial(network: MipNetwork) -> tuple[Holder, Account]:
    mip = MipClients(network)
    try:
        holder = await new_holder(mip, kyc_issuers(), HOSPITAL)
        return holder, await open_account(mip, holder, HOSPITAL)
    finally:
        await mip.close()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("move-devnet")) as network:
        ensure_service_identities(network.connection)
        holder, account = run_async(_custodial(network))
        settings = make_settings(tmp_path_factory.mktemp("move-gateway"), network.connection)
        state = build_state(settings)
        app = create_app(state=state)
        app.state.mip = state
        with serving(app, cleanup=state.close) as server:
            yield Desk(f"http://localhost:{server.port}", network, holder, account)


@pytest.fixture
def page(desk: Desk, playwright: Playwright) -> Iterator[Page]:
    browser: Browser = playwright.chromium.launch(**launch_options())
    context = browser.new_context(**context_options((390, 844)))
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
        yield page
    finally:
        context.close()
        browser.close()


def test_desk_account_and_passport_move_to_this_device(desk: Desk, page: Page) -> None:
    page.goto(f"{desk.url}/wallet/")
    page.locator("#create-passkey").press("Enter")
    expect(page.locator("#passport-key")).not_to_have_text("")
    device_passport = page.locator("#passport-key").text_content()
    passport_id = desk.holder.passport["id"]

    # Unreadable terms: a typed error, nothing to move.
    page.locator("#move-terms").fill('{"move": "account"}')
    page.locator("#show-moves").press("Enter")
    expect(page.locator("#wallet-error")).to_have_attribute("data-code", "terms_unreadable")

    terms = [{"move": "account", "action": "account.rotate", "pseudonym": desk.account.pseudonym,
              "institution": HOSPITAL},
             {"move": "passport", "action": "passport.move", "passport_id": passport_id,
              "institution": HOSPITAL}]
    page.locator("#move-terms").fill(json.dumps(terms))
    page.locator("#show-moves").press("Enter")
    buttons = page.locator("#move-list button.move")
    expect(buttons).to_have_count(2)

    # The account: the device signs its half (keyboard), the desk co-signs and carries it.
    buttons.nth(0).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#move-signed")).not_to_have_value("")
    signed = json.loads(page.locator("#move-signed").input_value())
    assert signed["action"] == "account.rotate"
    assert signed["body"] == {"pseudonym": desk.account.pseudonym,
                              "new_public_key": signed["signer"]}
    record = desk.carry("Account:RotateKey", desk.account.pseudonym, signed)
    assert record["public_key"] == signed["signer"] != desk.account.key.public

    # The page's key now speaks for the account (a grant from the page), the old one not.
    expect(page.locator("#grant-account option")).to_have_count(1)
    page.locator("#grant").press("Enter")
    expect(page.locator("#grants tbody tr[data-live='true']")).to_have_count(1)
    expect(page.locator("#wallet-error")).to_be_hidden()
    old_grant = desk.account.sign("grant.create", {
        "account": desk.account.pseudonym, "grant_id": "g-old-key", "grantee_org": PHARMACY,
        "scope": "medical.prescription", "credential_type": "prescription",
        "expires": int(time.time()) + 3600})
    with pytest.raises(ChaincodeError, match="bad_signature"):
        run_async(desk._submit("Grant:Create", [json.dumps(old_grant)]))

    # The passport: the device's passport key becomes the passport's.
    buttons.nth(1).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#move-signed")).not_to_have_value(json.dumps(signed))
    moved = json.loads(page.locator("#move-signed").input_value())
    assert moved["action"] == "passport.move" and moved["signer"] == device_passport
    record = desk.carry("Passport:MoveKey", passport_id, moved)
    assert record["public_key"] == device_passport
    assert base64.b64decode(record["public_key"]) != desk.holder.passport_key.public_raw
