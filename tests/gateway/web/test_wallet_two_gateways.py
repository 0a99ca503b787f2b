"""One wallet at two member orgs' gateways: the Hospital's and the School's per-org gateways
(each its own uvicorn, data dir and `org`), both with `wallet_rp_id: mip.localhost`, serve
/wallet/ at http://hospital.mip.localhost:<port> and http://school.mip.localhost:<port>
(Chromium resolves *.localhost to the loopback and treats it as a secure context).

One virtual passkey (Chromium's DevTools authenticator with PRF): made at the Hospital's
host, it unlocks the same master secret at the School's host, where the page (whose
localStorage there is empty) finds both accounts on the ledger by their keys; a grant for the
HOSPITAL account made at the SCHOOL's gateway (carried there with the School's identity) is
the Hospital host's grant too, and is revoked there.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_kit import (
    chromium_missing_reason,
    context_options,
    launch_options,
    run_async,
    serving,
)
from playwright.sync_api import Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL, SCHOOL  # noqa: E402
from mip_testkit import (  # noqa: E402
    Holder,
    MipClients,
    MipNetwork,
    face_commitment,
    running_mip_devnet,
)
from test_wallet_page import (  # noqa: E402
    PHONE,
    _desk_enrolled_holder,
    tab_to,
    with_authenticator,
)

from gateway.main import create_app  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import build_state  # noqa: E402

RP_ID = "mip.localhost"


@dataclass
class TwoGateways:
    urls: dict[str, str]
    network: MipNetwork
    holder: Holder


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoGateways]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("two-gw-devnet")) as network, \
            ExitStack() as stack:
        ensure_service_identities(network.connection)
        holder = run_async(_desk_enrolled_holder(network))
        urls: dict[str, str] = {}
        for org in (HOSPITAL, SCHOOL):
            settings = make_settings(tmp_path_factory.mktemp(f"{org}-gateway"),
                                     network.connection, org=org, wallet_rp_id=RP_ID)
            state = build_state(settings)
            app = create_app(state=state)
            app.state.mip = state
            server = stack.enter_context(serving(app, cleanup=state.close))
            host = org.removesuffix("MSP").lower()
            urls[org] = f"http://{host}.{RP_ID}:{server.port}"
        yield TwoGateways(urls, network, holder)


async def _desk_opens(network: MipNetwork, holder: Holder, signed: dict[str, Any]) -> None:
    """The account's org's desk opens it for the device-signed `account.open` (its own
    gateway identity carries it), with the holder's KYC presentation bound to that key."""
    body = signed["body"]
    presentation = holder.wallet.present(base64.b64decode(signed["signer"]),
                                         body["pseudonym"], body["min_level"])
    mip = MipClients(network)
    try:
        carrier = await mip.client(body["institution"], "gateway")
        await carrier.submit("Account:Open", [json.dumps(signed), json.dumps(presentation)])
    finally:
        await mip.close()


def sign_terms(page: Page, institution: str) -> dict[str, Any]:
    terms = {"pseudonym": secrets.token_hex(32), "institution": institution, "min_level": 2,
             "face_commitment": face_commitment()}
    page.fill("#desk-terms", json.dumps(terms))
    page.click("#sign-terms")
    expect(page.locator("#signed-request")).to_have_value(re.compile(terms["pseudonym"]))
    signed: dict[str, Any] = json.loads(page.locator("#signed-request").input_value())
    assert signed["body"] == terms
    return signed


def listed(page: Page) -> list[str]:
    return sorted(page.locator("#grant-account option").evaluate_all(
        "options => options.map(o => o.value)"))


def test_one_passkey_one_wallet_at_two_orgs_gateways(gateways: TwoGateways,
                                                     playwright: Playwright) -> None:
    browser = playwright.chromium.launch(**launch_options())
    context = browser.new_context(**context_options(PHONE))
    try:
        page = context.new_page()
        with_authenticator(context, page)

        # At the Hospital's host: the passkey (RP id mip.localhost), and two accounts the
        # desks of the Hospital and the School open for keys made here.
        page.goto(f"{gateways.urls[HOSPITAL]}/wallet/")
        assert page.evaluate("isSecureContext")
        tab_to(page, "#create-passkey")
        page.keyboard.press("Enter")
        expect(page.locator("#passport-id")).to_have_text(re.compile("^[0-9a-f]{64}$"))
        passport_id = page.locator("#passport-id").text_content()
        accounts = {}
        for org in (HOSPITAL, SCHOOL):
            signed = sign_terms(page, org)
            run_async(_desk_opens(gateways.network, gateways.holder, signed))
            accounts[org] = signed["body"]["pseudonym"]
        assert listed(page) == sorted(accounts.values())
        credential = page.evaluate("localStorage.getItem('mip.wallet.credential')")

        # At the School's host: nothing of the wallet in this origin's storage; the same
        # passkey unlocks the same keys, and the page finds both accounts on the ledger.
        page.goto(f"{gateways.urls[SCHOOL]}/wallet/")
        assert page.evaluate("localStorage.length") == 0
        tab_to(page, "#unlock")
        page.keyboard.press("Enter")
        expect(page.locator("#passport-id")).to_have_text(passport_id or "")
        expect(page.locator("#accounts li")).to_have_count(2)
        assert listed(page) == sorted(accounts.values())
        assert page.locator("#wallet-error").is_hidden()
        kept = json.loads(page.evaluate("localStorage.getItem('mip.wallet.accounts')"))
        assert {(a["institution"], a["pseudonym"], a["index"]) for a in kept} == {
            (HOSPITAL, accounts[HOSPITAL], 0), (SCHOOL, accounts[SCHOOL], 0)}

        # The School's gateway carries a grant for the Hospital account (signed here).
        page.select_option("#grant-account", accounts[HOSPITAL])
        expect(page.locator("#grants tbody tr")).to_have_count(0)
        page.select_option("#grantee-org", "PharmacyMSP")
        page.click("#grant")
        live = page.locator("#grants tbody tr[data-live='true']")
        expect(live).to_have_count(1)
        assert page.locator("#wallet-error").is_hidden()
        grant_id = live.get_attribute("data-grant-id")
        carried = page.locator("#access-log li[data-action='grant.create']")
        expect(carried).to_have_attribute("data-org", SCHOOL)

        # Back at the Hospital's host: the same grant, revoked there.
        page.goto(f"{gateways.urls[HOSPITAL]}/wallet/")
        assert page.evaluate("localStorage.getItem('mip.wallet.credential')") == credential
        tab_to(page, "#unlock")
        page.keyboard.press("Enter")
        expect(page.locator("#passport-id")).to_have_text(passport_id or "")
        page.select_option("#grant-account", accounts[HOSPITAL])
        row = page.locator(f"#grants tbody tr[data-grant-id='{grant_id}']")
        expect(row).to_have_attribute("data-live", "true")
        row.locator(".revoke").click()
        expect(row).to_have_attribute("data-live", "false")
        assert page.locator("#wallet-error").is_hidden()
    finally:
        context.close()
        browser.close()
