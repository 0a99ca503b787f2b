/* Holder services desk: a registrar serves a holder who is at the desk.
 *
 * Unlock: POST /holders/sessions (a face challenge, the session bound to this staff token)
 * -> the holder follows the prompts (capture.js) -> POST /holders/sessions/unlock
 * {passport_id, challenge_id, frames, password}: face and the password the holder typed give
 * a level-2 session. Its id travels only in the X-MIP-Holder-Session header (never in a
 * URL: history, access logs, Referer) and lives in this page's memory only; the password is
 * cleared from the page as soon as the unlock answers. *End the holder's session* is
 * DELETE /holders/sessions/current (also on sign-out and when the tab is left).
 *
 * With the session: GET /accounts, POST /accounts (a desk-held account), POST
 * /accounts/device-terms (terms the wallet signs), POST /wallet/passport-link {device_key},
 * move terms (POST /accounts/{p}/move-terms, POST /holders/sessions/current/passport/move-terms);
 * what the wallet signed over the last terms is posted back to the matching route
 * (POST /accounts/device, /accounts/{p}/move, /holders/sessions/current/passport/move).
 * Terms and links are shown as JSON to copy. Errors are shown typed (errors.js). */

import { api } from "/desk/api.js";
import { TIMING, faceCapture } from "/desk/capture.js";
import { byId } from "/desk/dom.js";
import { clearError, showError } from "/desk/errors.js";
import { staffSignIn } from "/desk/staff.js";

// The capture schedule, exposed so the browser test's simulated camera follows it.
window.MIP_HOLDER_DESK_TIMING = TIMING;

const HOLDER_HEADER = "X-MIP-Holder-Session";

const SENTENCES = {
  unlock_failed: "The face or the password did not match this passport. Try again.",
  unlock_locked: "Too many failed unlocks for this passport: wait before trying again.",
  passport_not_found: "No passport with this ID is known here.",
  passport_inactive: "This passport is not active.",
  liveness_failed: "The live check did not pass. Try again, following each prompt.",
  challenge_expired: "The check took too long. Try again.",
  challenge_used: "This check was already answered. Try again.",
  challenge_not_found: "This check is no longer valid. Try again.",
  camera_unavailable: "No camera is available on this device: the face check needs one.",
  no_face: "No face was found. Face the camera.",
  multiple_faces: "More than one face is in view. Only the holder should be in view.",
  holder_session_not_found: "The holder's session has ended. Unlock again.",
  holder_session_expired: "The holder's session expired. Unlock again.",
  holder_level_too_low: "This needs the holder's face and password.",
  kyc_level_too_low: "The holder's passport does not reach this KYC level.",
  unknown_institution: "This institution is not a member of the consortium.",
  too_many_pending_terms: "Too many terms are waiting for the wallet: use or let them expire.",
  custody_elsewhere: "Another organisation's desk holds this holder's keys: do this there.",
  request_mismatch: "The signed request does not answer the terms shown. Sign them again.",
  bad_signature: "The wallet's signature is not valid.",
  wrong_action: "The signed request is for another step.",
  expired: "The terms expired. Make new terms.",
  account_not_found: "The holder has no such account here.",
  account_closed: "This account is closed.",
  account_moved: "This account's key is already on the device.",
  device_not_linked: "Link the wallet first (Make the device link).",
  key_move_unavailable: "Keys cannot be moved at this gateway.",
  device_pairing_unavailable: "Wallet accounts cannot be opened at this gateway.",
  signed_unreadable: "Paste the wallet's signed request as it shows it (JSON).",
  no_terms: "Make terms for the wallet first: the signed request answers them.",
};

const ui = {
  signin: byId("signin"),
  unlock: byId("unlock"),
  unlockForm: byId("unlock-form"),
  unlockButton: byId("unlock-button"),
  passportId: byId("passport-id"),
  password: byId("password"),
  unlockError: byId("unlock-error"),
  cameraPanel: byId("camera-panel"),
  prompt: byId("prompt"),
  countdown: byId("countdown"),
  video: byId("video"),
  steps: byId("steps"),
  canvas: byId("canvas"),
  services: byId("services"),
  unlocked: byId("unlocked"),
  servicesError: byId("services-error"),
  accounts: byId("accounts"),
  refresh: byId("refresh"),
  openForm: byId("open-form"),
  institution: byId("institution"),
  minLevel: byId("min-level"),
  deviceTerms: byId("device-terms"),
  linkForm: byId("link-form"),
  deviceKey: byId("device-key"),
  moveForm: byId("move-form"),
  moveWhat: byId("move-what"),
  forWallet: byId("for-wallet"),
  forWalletLabel: byId("for-wallet-label"),
  signedForm: byId("signed-form"),
  signed: byId("signed"),
  sent: byId("sent"),
  end: byId("end"),
};
const sections = [ui.signin, ui.unlock, ui.services];

const capture = faceCapture(ui);
/** {id, passportId} of the unlocked holder session; memory only. */
let holder = null;
/** What the wallet's signed request answers: {path, what} for the last terms shown. */
let awaiting = null;

const staff = staffSignIn("mip.holder_desk.token", {
  signedOut() {
    // The token is already gone here: the holder's session is forgotten (it answers only to
    // that token, and ends at its TTL); *Sign out* itself ends it first (below).
    forget();
    show(ui.signin);
  },
  signedIn: toUnlock,
});
const session = staff.session;

function show(...visible) {
  for (const s of sections) s.hidden = !visible.includes(s);
}

function setState(name) {
  // For styling and tests: idle, capturing, checking, unlocked.
  document.body.dataset.state = name;
}

function inSession() {
  return { [HOLDER_HEADER]: holder.id };
}

function toUnlock() {
  capture.cancel();
  ui.cameraPanel.hidden = true;
  ui.unlockForm.reset();
  clearError(ui.unlockError);
  ui.unlockButton.disabled = false;
  setState("idle");
  show(ui.unlock);
  ui.passportId.focus();
}

// ---- unlock -----------------------------------------------------------------------------
function unlockRefused(r) {
  setState("idle");
  ui.cameraPanel.hidden = true;
  ui.unlockButton.disabled = false;
  ui.password.value = "";
  if (r.code !== "unauthenticated") showError(ui.unlockError, r, SENTENCES);
  ui.password.focus();
}

async function startUnlock() {
  clearError(ui.unlockError);
  ui.unlockButton.disabled = true;
  const passportId = ui.passportId.value.trim();
  const started = await api("POST", "/holders/sessions", undefined, session);
  if (!started.ok) {
    unlockRefused(started);
    return;
  }
  const pending = { id: started.data.session_id, passportId };
  const challenge = started.data.challenge;
  const poses = challenge.poses.map(String);
  capture.showSteps(poses);
  if (!(await capture.open())) {
    await api("DELETE", "/holders/sessions/current", undefined, session,
      { [HOLDER_HEADER]: pending.id });
    unlockRefused({ code: "camera_unavailable", message: "" });
    return;
  }
  setState("capturing");
  const captures = capture.run(poses, async () => {
    setState("checking");
    capture.checking();
    const frames = (await Promise.all(captures)).map((image) => ({ image }));
    const password = ui.password.value;
    ui.password.value = ""; // the page keeps no copy once it is sent
    const r = await api("POST", "/holders/sessions/unlock",
      { passport_id: passportId, challenge_id: challenge.challenge_id, frames, password },
      session, { [HOLDER_HEADER]: pending.id });
    frames.length = 0; // the images are dropped as soon as they are sent
    if (!r.ok) {
      // A failed unlock leaves the session open at level 0: end it rather than keep it.
      await api("DELETE", "/holders/sessions/current", undefined, session,
        { [HOLDER_HEADER]: pending.id });
      unlockRefused(r);
      return;
    }
    holder = pending;
    unlocked(r.data);
  });
}

function unlocked(data) {
  setState("unlocked");
  ui.cameraPanel.hidden = true;
  ui.unlocked.textContent = `UNLOCKED: passport ${data.passport_id}, level ${data.level} `
    + `(${data.level >= 2 ? "face and password" : "face only"}).`;
  clearError(ui.servicesError);
  ui.forWallet.value = "";
  ui.signed.value = "";
  ui.sent.hidden = true;
  awaiting = null;
  show(ui.services);
  refreshAccounts().then(() => ui.institution.focus());
}

// ---- services ---------------------------------------------------------------------------
/** A call in the holder's session; a typed error goes to the services box. */
async function holderCall(method, path, body) {
  if (!holder) return null;
  clearError(ui.servicesError);
  const r = await api(method, path, body, session, inSession());
  if (r.ok) return r;
  if (r.code !== "unauthenticated") showError(ui.servicesError, r, SENTENCES);
  if (r.code === "holder_session_not_found" || r.code === "holder_session_expired") {
    holder = null;
  }
  return null;
}

async function refreshAccounts() {
  const r = await holderCall("GET", "/accounts");
  if (!r) return;
  const items = r.data.accounts.map((a) => {
    const li = document.createElement("li");
    li.dataset.pseudonym = a.pseudonym;
    li.textContent = `${a.institution} · ${a.status} · ${a.pseudonym}`;
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = "No accounts yet.";
    items.push(li);
  }
  ui.accounts.replaceChildren(...items);
  // The move choices: the passport key, and each open account's key.
  const options = [new Option("The passport key", "passport")];
  for (const a of r.data.accounts) {
    if (a.status === "open") { // a moved or closed account has no key here to move
      options.push(new Option(`Account at ${a.institution} (${a.pseudonym.slice(0, 12)}…)`,
        a.pseudonym));
    }
  }
  ui.moveWhat.replaceChildren(...options);
}

function forWallet(label, value, expects) {
  ui.forWalletLabel.textContent = `For the wallet (copy): ${label}`;
  ui.forWallet.value = JSON.stringify(value, null, 2);
  awaiting = expects;
  ui.sent.hidden = true;
  ui.forWallet.focus();
  ui.forWallet.select();
}

function accountBody() {
  const level = Number.parseInt(ui.minLevel.value || "2", 10);
  return { institution: ui.institution.value, min_level: Number.isNaN(level) ? 2 : level };
}

async function openAccount() {
  const r = await holderCall("POST", "/accounts", accountBody());
  if (!r) return;
  ui.sent.textContent = `ACCOUNT OPENED at ${r.data.institution}: ${r.data.pseudonym}`;
  ui.sent.hidden = false;
  await refreshAccounts();
}

async function deviceTerms() {
  const r = await holderCall("POST", "/accounts/device-terms", accountBody());
  if (r) forWallet("account terms", r.data, { path: "/accounts/device", what: "account" });
}

async function deviceLink() {
  const r = await holderCall("POST", "/wallet/passport-link",
    { device_key: ui.deviceKey.value.trim() });
  if (r) forWallet("device link (keep it in the wallet)", r.data, null);
}

async function moveTerms() {
  const what = ui.moveWhat.value;
  const base = what === "passport" ? "/holders/sessions/current/passport"
    : `/accounts/${encodeURIComponent(what)}`;
  const r = await holderCall("POST", `${base}/move-terms`);
  if (r) forWallet("move terms", r.data, { path: `${base}/move`, what: "move" });
}

async function sendSigned() {
  clearError(ui.servicesError);
  if (!awaiting) {
    showError(ui.servicesError, { code: "no_terms", message: "" }, SENTENCES);
    return;
  }
  let signed;
  try {
    signed = JSON.parse(ui.signed.value);
  } catch (_) {
    signed = null;
  }
  if (!signed || typeof signed !== "object") {
    showError(ui.servicesError, { code: "signed_unreadable", message: "" }, SENTENCES);
    ui.signed.focus();
    return;
  }
  const expects = awaiting;
  const r = await holderCall("POST", expects.path, { signed_request: signed });
  if (!r) return;
  awaiting = null;
  ui.signed.value = "";
  ui.forWallet.value = "";
  ui.forWalletLabel.textContent = "For the wallet (copy)";
  ui.sent.textContent = expects.what === "account"
    ? "WALLET ACCOUNT OPENED: its key is on the holder's device."
    : "MOVED: the key is now on the holder's device.";
  ui.sent.hidden = false;
  await refreshAccounts();
}

/** Forgets the holder's session on this page: its id, terms, pasted requests, accounts. */
function forget() {
  capture.cancel();
  const current = holder;
  holder = null;
  awaiting = null;
  ui.forWallet.value = "";
  ui.signed.value = "";
  ui.password.value = "";
  ui.accounts.replaceChildren();
  return current;
}

/** Ends the holder's session at the gateway (wiping what it held) and forgets it here. */
function endSession() {
  const current = forget();
  if (!current) return Promise.resolve();
  return api("DELETE", "/holders/sessions/current", undefined, session,
    { [HOLDER_HEADER]: current.id });
}

// ---- wiring -----------------------------------------------------------------------------
function onSubmit(form, handler) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    handler();
  });
}
onSubmit(ui.unlockForm, startUnlock);
onSubmit(ui.openForm, openAccount);
onSubmit(ui.linkForm, deviceLink);
onSubmit(ui.moveForm, moveTerms);
onSubmit(ui.signedForm, sendSigned);
ui.deviceTerms.addEventListener("click", deviceTerms);
ui.refresh.addEventListener("click", refreshAccounts);
ui.end.addEventListener("click", async () => {
  await endSession();
  toUnlock();
});
// *Sign out*: end the holder's session while the token is still there. A capture-phase
// listener on the top bar runs before staff.js's own on the button (which clears the token);
// api() sends the token synchronously, before its first await.
byId("sign-out").parentElement.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.id === "sign-out") endSession();
}, true);
window.addEventListener("pagehide", () => {
  capture.stop();
  if (holder) {
    // Best effort: the session also ends at its TTL.
    fetch(`/api/v1/holders/sessions/current`, {
      method: "DELETE", keepalive: true, credentials: "omit", referrerPolicy: "no-referrer",
      headers: { Authorization: `Bearer ${session.token() || ""}`, [HOLDER_HEADER]: holder.id },
    });
    holder = null;
  }
});

staff.start();
