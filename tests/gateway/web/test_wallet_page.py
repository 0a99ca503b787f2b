"""The holder wallet (/wallet/) in headless Chromium with a virtual WebAuthn authenticator
that has the PRF extension (Chromium's DevTools protocol), against the real gateway
(uvicorn) over a MIP devnet with the real contract.

- The page's key derivation and request signing agree with the gateway's Python code on the
  same master secret (SLIP-0010 paths, institution index, canonical JSON, Ed25519).
- Keyboard only: a holder creates a passkey; the desk's account terms are signed on the
  device and the desk opens the account for that device key (presenting the holder's KYC
  credential); a doctor writes a prescription; the holder grants the pharmacy, the
  pharmacist's read shows in the holder's access log; after a reload the passkey unlocks
  the same keys; the holder revokes and the pharmacist's next read is refused.
- From home (wallet_views.js), keyboard only: the desk's device link shows the passport
  (id, status, not provisional, KYC level, guardians) and the account's ledger record; the
  doctor's handover is kept and checked VALID against the ledger (altered content refused);
  the holder approves the pickup and the pharmacist's counter can start it; the export holds
  accounts, credentials with salts and grants, and no key; in a wiped browser, the same
  passkey and the export file bring them back.
Screenshots go to /tmp/wallet-page-screenshots/ (kept as test artefacts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import sys
import time
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL, PHARMACY, content_of, kyc_issuers  # noqa: E402
from mip_testkit import (  # noqa: E402
    Holder,
    HolderKey,
    KycHolder,
    MipClients,
    MipNetwork,
    face_commitment,
    new_holder,
    register_passport,
    running_mip_devnet,
)

from chaincode.protocol.holder_requests import signing_payload  # noqa: E402
from gateway.holder import keys  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import AppState, build_state  # noqa: E402

SCREENSHOTS = Path("/tmp/wallet-page-screenshots")
PHONE = (390, 844)
@dataclass
class Wallet:
    url: str
    state: AppState
    network: MipNetwork
    holder: Holder

    def staff(self, org: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.state.staff.issue(org, role, role)}"}


async def _desk_enrolled_holder(network: MipNetwork) -> Holder:
    mip = MipClients(network)
    try:
        return await new_holder(mip, kyc_issuers(), HOSPITAL)
    finally:
        await mip.close()


async def _desk_opens(network: MipNetwork, holder: Holder, signed: dict[str, Any]) -> None:
    """The desk's side of pairing: Account:Open with the device-signed `account.open` and the
    holder's KYC presentation bound to the device's account key."""
    body = signed["body"]
    presentation = holder.wallet.present(base64.b64decode(signed["signer"]),
                                         body["pseudonym"], body["min_level"])
    mip = MipClients(network)
    try:
        gateway = await mip.client(HOSPITAL, "gateway")
        await gateway.submit("Account:Open", [json.dumps(signed), json.dumps(presentation)])
    finally:
        await mip.close()


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wallet]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("wallet-devnet")) as network:
        ensure_service_identities(network.connection)
        holder = run_async(_desk_enrolled_holder(network))
        settings = make_settings(tmp_path_factory.mktemp("wallet-gateway"), network.connection)
        state = build_state(settings)
        app = create_app(state=state)
        app.state.mip = state
        with serving(app, cleanup=state.close) as server:
            # localhost, not 127.0.0.1: a WebAuthn relying party id must be a domain name.
            yield Wallet(f"http://localhost:{server.port}", state, network, holder)


@pytest.fixture(scope="module")
def browser(wallet: Wallet, playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(**launch_options())
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**context_options(PHONE))
    try:
        yield context
    finally:
        context.close()


def stack_cards(names: list[str], out: str) -> None:
    """The cards' screenshots one above the other on the page's background, 12 px apart:
    the image docs/pages/ keeps (copied from the artefact, never drawn by hand)."""
    from PIL import Image

    cards = [Image.open(SCREENSHOTS / f"{name}.png").convert("RGB") for name in names]
    gap = 12
    sheet = Image.new("RGB", (max(c.width for c in cards),
                              sum(c.height + gap for c in cards)), (243, 244, 246))
    y = 0
    for card in cards:
        sheet.paste(card, (0, y))
        y += card.height + gap
    sheet.save(SCREENSHOTS / out)


def with_authenticator(context: BrowserContext, page: Page) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Move the focus with Tab (only) until it is on `selector`: reachable by keyboard."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_page_keys_match_the_gateways(wallet: Wallet, context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(f"{wallet.url}/wallet/")
    assert response is not None and response.ok
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "camera=()" in response.headers["permissions-policy"]
    master = secrets.token_bytes(32)
    body = {"account": "ab" * 32, "purpose": "délivrance ✓", "n": 2**53 - 1,
            "list": [{"z": 1, "a": None, "é": True}], "Z": "\"q\"\n\\"}
    got = page.evaluate("""async ([masterHex, body]) => {
        const K = window.MipWalletKeys;
        const master = K.hex(masterHex);
        const passport = await K.passportKey(master);
        const hospital = await K.accountKey(master, "HospitalMSP", 0);
        const second = await K.accountKey(master, "PharmacyMSP", 1);
        const vector = K.toHex(await K.slip10(K.hex("000102030405060708090a0b0c0d0e0f"),
                                              [0, 1, 2, 2, 1000000000]));
        return {passport: passport.publicB64, pid: await K.passportId(passport),
                hospital: hospital.publicB64, second: second.publicB64, vector,
                index: await K.institutionIndex("HospitalMSP"),
                signed: await K.signRequest(hospital, "grant.create", body)};
    }""", [master.hex(), body])
    assert got["passport"] == keys.passport_key(master).public_b64
    assert got["pid"] == keys.passport_id(master)
    assert got["hospital"] == keys.account_key(master, "HospitalMSP", 0).public_b64
    assert got["second"] == keys.account_key(master, "PharmacyMSP", 1).public_b64
    assert got["index"] == keys.institution_index("HospitalMSP")
    # SLIP-0010 test vector 1 for ed25519, chain m/0'/1'/2'/2'/1000000000'.
    assert got["vector"] == "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793"
    signed = got["signed"]
    assert signed["body"] == body and signed["signer"] == got["hospital"]
    payload = signing_payload("grant.create", body, signed["nonce"], signed["expires"],
                              signed["channel"], base64.b64decode(signed["signer"]))
    Ed25519PublicKey.from_public_bytes(base64.b64decode(signed["signer"])).verify(
        base64.b64decode(signed["signature"]), payload)  # raises if the bytes differ


def test_holder_grants_sees_the_read_and_revokes_keyboard_only(
        wallet: Wallet, context: BrowserContext) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    with_authenticator(context, page)
    page.goto(f"{wallet.url}/wallet/")
    http = httpx.Client(base_url=wallet.url, timeout=60)

    # 1. A passkey with PRF: the keys are made on the device.
    tab_to(page, "#create-passkey")
    page.keyboard.press("Enter")
    expect(page.locator("#passport-id")).to_have_text(re.compile("^[0-9a-f]{64}$"))
    passport_id = page.locator("#passport-id").text_content()
    assert page.locator("#wallet-error").is_hidden()

    # 2. Pairing at the desk: the device signs the account terms, the desk opens the account.
    pseudonym = secrets.token_hex(32)
    terms = {"pseudonym": pseudonym, "institution": HOSPITAL, "min_level": 2,
             "face_commitment": face_commitment()}
    tab_to(page, "#desk-terms")
    page.keyboard.insert_text(json.dumps(terms))
    tab_to(page, "#sign-terms")
    page.keyboard.press("Enter")
    expect(page.locator("#signed-request")).not_to_have_value("")
    signed = json.loads(page.locator("#signed-request").input_value())
    assert signed["action"] == "account.open" and signed["body"] == terms
    # Before the desk opened it the ledger knows no such account: a typed error on the page.
    tab_to(page, "#grant")
    page.keyboard.press("Enter")
    expect(page.locator("#wallet-error")).to_have_attribute("data-code", "not_found")
    run_async(_desk_opens(wallet.network, wallet.holder, signed))

    # 3. A doctor writes a prescription to that account.
    r = http.post("/api/v1/credentials", headers=wallet.staff(HOSPITAL, "doctor"), json={
        "type": "prescription", "subject_account": pseudonym,
        "content": content_of("prescription")})
    assert r.status_code == 201, r.text
    ask = {"credential_id": r.json()["credential_id"], "scope": "medical.prescription",
           "purpose": "dispense"}
    pharmacist = wallet.staff(PHARMACY, "pharmacist")
    assert http.post("/api/v1/access", json=ask, headers=pharmacist).status_code == 403

    # 4. The holder grants the pharmacy (signed on the device); the pharmacist reads at once.
    tab_to(page, "#grant")
    page.keyboard.press("Enter")
    expect(page.locator("#wallet-error")).to_be_hidden()
    live = page.locator("#grants tbody tr[data-live='true']")
    expect(live).to_have_count(1)
    expect(live).to_contain_text(PHARMACY)
    r = http.post("/api/v1/access", json=ask, headers=pharmacist)
    assert r.status_code == 200, r.text
    assert r.json()["fields"]["drug"] == "amoxicillin"

    # 5. The read is in the holder's access log.
    tab_to(page, "#refresh")
    page.keyboard.press("Enter")
    read = page.locator(f"#access-log li[data-org='{PHARMACY}']")
    expect(read).not_to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "wallet-granted-phone.png"), full_page=True)
    for card in ("passkey", "grants-card", "log-card"):
        page.locator(f"#{card}").screenshot(path=str(SCREENSHOTS / f"wallet-{card}.png"))
    stack_cards(["wallet-passkey", "wallet-grants-card", "wallet-log-card"],
                "wallet-granted.png")  # docs/pages/wallet-granted.png
    # Fits a phone: nothing wider than the viewport.
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map(e => e.tagName + '#' + e.id + '.' + e.className)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0], wide

    # 6. After a reload the passkey unlocks the same keys (PRF is deterministic).
    page.reload()
    tab_to(page, "#unlock")
    page.keyboard.press("Enter")
    expect(page.locator("#passport-id")).to_have_text(passport_id or "")
    expect(live).to_have_count(1)

    # 7. Revoke from the keyboard: effective at once.
    tab_to(page, "#grants .revoke")
    page.keyboard.press("Enter")
    expect(page.locator("#grants tbody tr[data-live='false']")).to_have_count(1)
    expect(page.locator("#grants .revoke")).to_have_count(0)
    r = http.post("/api/v1/access", json=ask, headers=pharmacist)
    assert r.status_code == 403 and r.json()["error"]["code"] == "access_denied", r.text
    assert page.locator("#wallet-error").is_hidden()
    page.screenshot(path=str(SCREENSHOTS / "wallet-revoked-phone.png"), full_page=True)
    http.close()


async def _holder_with_guardians(network: MipNetwork, guardians: list[HolderKey]) -> Holder:
    """A desk-registered passport naming two guardians, and its KYC credential."""
    mip = MipClients(network)
    try:
        issuers = kyc_issuers()
        key, record = await register_passport(mip, HOSPITAL, 2, guardians, 2)
        wallet = KycHolder()
        index = wallet.obtain(issuers[HOSPITAL], kyc_level=2)
        return Holder(key, record, wallet, issuers[HOSPITAL], index)
    finally:
        await mip.close()


def names_in(value: Any) -> list[str]:
    """Every object member name in a JSON value, nested ones included."""
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in (k, *names_in(v))]
    if isinstance(value, list):
        return [n for v in value for n in names_in(v)]
    return []


def paste_and_press(page: Page, field: str, text: str, button: str) -> None:
    tab_to(page, field)
    page.keyboard.insert_text(text)
    tab_to(page, button)
    page.keyboard.press("Enter")


def test_holder_sees_passport_and_credentials_approves_a_pickup_and_exports(
        wallet: Wallet, context: BrowserContext) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    guardians = [HolderKey.generate(), HolderKey.generate()]
    holder = run_async(_holder_with_guardians(wallet.network, guardians))
    passport_id = holder.passport["id"]
    page = context.new_page()
    with_authenticator(context, page)
    page.goto(f"{wallet.url}/wallet/")
    http = httpx.Client(base_url=wallet.url, timeout=60)
    tab_to(page, "#create-passkey")
    page.keyboard.press("Enter")
    expect(page.locator("#passport-key")).not_to_have_text("")
    expect(page.locator("#passport-card")).to_be_visible()
    expect(page.locator("#passport-hint")).to_be_visible()
    device_key = page.locator("#passport-key").text_content() or ""

    # 1. The desk links the device (its level-2 session signs with the vault's passport key;
    #    played here by the contract kit's holder): the passport as the ledger has it.
    other_device = HolderKey.generate().public
    foreign = HolderKey.generate().sign_request(
        "passport.link_device", {"passport_id": passport_id, "device_key": other_device})
    paste_and_press(page, "#passport-link", json.dumps(foreign), "#keep-link")
    expect(page.locator("#wallet-error")).to_have_attribute("data-code", "link_mismatch")
    page.locator("#passport-link").fill("")
    link = holder.passport_key.sign_request(
        "passport.link_device", {"passport_id": passport_id, "device_key": device_key},
        expires=int(time.time()) + 30 * 86400)
    paste_and_press(page, "#passport-link", json.dumps(link), "#keep-link")
    expect(page.locator("#pp-id")).to_have_text(passport_id)
    expect(page.locator("#pp-status")).to_have_text("active")
    expect(page.locator("#pp-provisional")).to_have_text("No")
    expect(page.locator("#pp-level")).to_have_text("2")
    expect(page.locator("#pp-threshold")).to_contain_text("2 of 2")
    shown = page.locator("#guardians li").evaluate_all(
        "items => items.map(i => i.dataset.guardian)")
    assert sorted(shown) == sorted(hashlib.sha256(g.public_raw).hexdigest() for g in guardians)

    # 2. An account paired at the desk: its ledger record, read with its own key's signature.
    pseudonym = secrets.token_hex(32)
    terms = {"pseudonym": pseudonym, "institution": HOSPITAL, "min_level": 2,
             "face_commitment": face_commitment()}
    paste_and_press(page, "#desk-terms", json.dumps(terms), "#sign-terms")
    expect(page.locator("#signed-request")).not_to_have_value("")
    row = page.locator(f"#account-records tr[data-account='{pseudonym}']")
    expect(row).to_have_attribute("data-status", "not opened yet")
    run_async(_desk_opens(wallet.network, holder, json.loads(
        page.locator("#signed-request").input_value())))
    tab_to(page, "#refresh-passport")
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-status", "open")
    expect(row.locator("td").nth(3)).to_have_text("2")

    # 3. The doctor's prescription: the handover (content + salt) is checked on the device
    #    against the ledger's salted hash and kept; an altered copy is refused.
    r = http.post("/api/v1/credentials", headers=wallet.staff(HOSPITAL, "doctor"), json={
        "type": "prescription", "subject_account": pseudonym,
        "content": content_of("prescription")})
    assert r.status_code == 201, r.text
    issued = r.json()
    credential_id = issued["credential_id"]
    altered = {**issued, "content": issued["content"].replace("amoxicillin", "oxycodone")}
    paste_and_press(page, "#credential-in", json.dumps(altered), "#add-credential")
    expect(page.locator("#wallet-error")).to_have_attribute("data-code", "credential_mismatch")
    expect(page.locator(".credential")).to_have_count(0)
    page.locator("#credential-in").fill("")
    paste_and_press(page, "#credential-in", json.dumps(issued), "#add-credential")
    card = page.locator(f".credential[data-credential-id='{credential_id}']")
    expect(card).to_have_attribute("data-valid", "true")
    expect(card.locator(".result-word")).to_have_text("VALID")
    expect(card.locator("dd[data-field='drug']")).to_have_text("amoxicillin")
    assert page.locator("#wallet-error").is_hidden()

    # 4. The pickup: refused at the counter until the holder approves it from home.
    pharmacist = wallet.staff(PHARMACY, "pharmacist")
    r = http.post("/api/v1/pharmacy/pickups", headers=pharmacist,
                  json={"prescription_id": credential_id})
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_grant", r.text
    tab_to(page, ".approve-pickup")
    page.keyboard.press("Enter")
    expect(page.locator(".approve-pickup")).to_have_attribute("data-approved", "true")
    assert page.locator("#wallet-error").is_hidden(), page.locator("#wallet-error").text_content()
    live = page.locator("#grants tbody tr[data-live='true']")
    expect(live).to_have_count(1)
    expect(live).to_contain_text(PHARMACY)
    r = http.post("/api/v1/pharmacy/pickups", headers=pharmacist,
                  json={"prescription_id": credential_id})
    assert r.status_code == 201, r.text
    page.screenshot(path=str(SCREENSHOTS / "wallet-views-phone.png"), full_page=True)
    for name in ("passport-card", "credentials-card"):
        page.locator(f"#{name}").screenshot(path=str(SCREENSHOTS / f"wallet-{name}.png"))
    stack_cards(["wallet-passport-card", "wallet-credentials-card"],
                "wallet-views.png")  # docs/pages/wallet-views.png
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map(e => e.tagName + '#' + e.id + '.' + e.className)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0], wide

    # 5. Export: accounts, the credential with its salt, the grants; no key material.
    tab_to(page, "#export")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    exported_path = download.value.path()
    exported = json.loads(Path(exported_path).read_text())
    assert exported["format"] == "mip-wallet-export-v1"
    assert exported["key_material"].startswith("none")
    assert exported["passport"]["passport_id"] == passport_id
    assert [a["pseudonym"] for a in exported["accounts"]] == [pseudonym]
    (kept,) = exported["credentials"]
    assert (kept["credential_id"], kept["content"], kept["salt"]) == (
        credential_id, issued["content"], issued["salt"])
    assert any(g["grantee_org"] == PHARMACY and g.get("credential_id") == credential_id
               for g in exported["grants"][pseudonym])
    text = Path(exported_path).read_text()
    assert not re.compile(r"private|seed|master|prf|secret", re.IGNORECASE).search(
        " ".join(names_in(exported))), text
    # What the page keeps in localStorage is sealed: neither the content nor the salt in clear.
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert issued["salt"] not in stored and "amoxicillin" not in stored

    # 6. After a reload and unlock, the kept credential and the link are opened again.
    page.reload()
    tab_to(page, "#unlock")
    page.keyboard.press("Enter")
    expect(page.locator("#pp-id")).to_have_text(passport_id)
    expect(card.locator(".result-word")).to_have_text("VALID")
    (SCREENSHOTS / "wallet-export.json").write_text(text)

    # 7. A wiped browser, the same passkey: the export file brings accounts, link and the
    #    credential back (the credential checked against the ledger again).
    page.evaluate("""() => { for (const k of ['mip.wallet.sealed', 'mip.wallet.accounts'])
        localStorage.removeItem(k); }""")
    page.reload()
    tab_to(page, "#unlock")
    page.keyboard.press("Enter")
    expect(page.locator("#passport-hint")).to_be_visible()
    expect(page.locator(".credential")).to_have_count(0)
    page.locator("#import-file").set_input_files(exported_path)
    expect(card.locator(".result-word")).to_have_text("VALID")
    expect(page.locator("#pp-id")).to_have_text(passport_id)
    expect(row).to_have_attribute("data-status", "open")
    expect(live).to_have_count(1)
    http.close()
