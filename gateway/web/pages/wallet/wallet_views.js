/* What the holder sees and does from home once the wallet is unlocked (wallet.js hands over
 * its signing keys in the "mip-wallet-unlocked" event):
 *
 * - My passport: id, status, provisional or not, KYC level, guardians (GET /wallet/passport,
 *   a `passport.view` signed here by the device's passport key with the desk's device link),
 *   and each account's ledger record (GET /wallet/accounts/{p}, `account.view` signed by the
 *   account's key). Nothing is read with an id alone.
 * - My credentials: the content and salt the issuer handed over, kept on this device, each
 *   checked here against the ledger's public record (salted hash and status): the content
 *   never leaves the device for the check.
 * - Pickup approval: a prescription's grant to the pharmacy, signed here (with the portrait
 *   the account's institution prepares, where it makes one), which the counter then uses.
 * - Export: a JSON file of accounts, credentials with salts, grants and the device link; no
 *   key material (the keys come back from the passkey). Importing it (pasted, or the file)
 *   on a device unlocked with the same passkey restores accounts, link and credentials.
 *
 * What is kept (credentials, salts, the device link, portraits) is sealed in localStorage
 * with AES-256-GCM under a key derived from the passkey's PRF (wallet_keys.js storeKey). */

import { fieldRows, parsePresentation, saltedHash } from "/desk/credential_view.js";

const K = window.MipWalletKeys;
const STORE = "mip.wallet.sealed";
const STORE_ACCOUNTS = "mip.wallet.accounts";
const EXPORT_FORMAT = "mip-wallet-export-v1";
const PHARMACY = "PharmacyMSP";
const PICKUP_DAYS = 7;
const enc = new TextEncoder();
const byId = (id) => document.getElementById(id);

let w = null; // wallet.js's capabilities while unlocked
let kept = { link: null, credentials: [], portraits: {} };

function short(text, n = 16) {
  return text.length > n ? `${text.slice(0, n)}…` : text;
}

function day(unix) {
  return new Date(unix * 1000).toISOString().slice(0, 10);
}

async function seal() {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = enc.encode(JSON.stringify(kept));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, w.storeKey, data));
  localStorage.setItem(STORE, JSON.stringify({ v: 1, iv: K.b64url(iv), ct: K.b64url(ct) }));
}

async function unseal() {
  const raw = localStorage.getItem(STORE);
  if (!raw) return { link: null, credentials: [], portraits: {} };
  try {
    const box = JSON.parse(raw);
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: K.unb64url(box.iv) },
                                              w.storeKey, K.unb64url(box.ct));
    const value = JSON.parse(new TextDecoder().decode(plain));
    return { link: value.link || null, credentials: value.credentials || [],
             portraits: value.portraits || {} };
  } catch (_) {
    // Sealed under another passkey (or altered): not readable here, and not overwritten
    // until the holder keeps something new.
    w.status("What this browser keeps for another passkey cannot be opened with this one.");
    return { link: null, credentials: [], portraits: {} };
  }
}

async function signedGet(path, key, action, body) {
  return w.call("GET", path, { signedHeader: await K.signRequest(key, action, body) });
}

// --- passport and accounts ---------------------------------------------------------------

async function guardianId(publicB64) {
  const raw = Uint8Array.from(atob(publicB64), (c) => c.charCodeAt(0));
  return K.toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", raw)));
}

async function showPassport() {
  const view = byId("passport-view");
  if (!kept.link) {
    view.hidden = true;
    byId("passport-hint").hidden = false;
    return;
  }
  const passportId = kept.link.body.passport_id;
  const r = await signedGet("/wallet/passport", w.passport, "passport.view",
                            { passport_id: passportId, link: kept.link });
  if (!r.ok) {
    view.hidden = true;
    w.fail(r.code, r.message);
    return;
  }
  const p = r.data;
  byId("pp-id").textContent = p.passport_id;
  byId("pp-status").textContent = p.status + (p.status_reason ? ` (${p.status_reason})` : "");
  byId("pp-provisional").textContent = p.provisional
    ? `Yes: awaiting the consortium's screening (level ${p.level_on_clear} once cleared)` : "No";
  byId("pp-level").textContent = String(p.kyc_level);
  byId("pp-org").textContent = p.enrolling_org;
  byId("pp-threshold").textContent = p.guardians.length
    ? `${p.guardian_threshold} of ${p.guardians.length} needed to recover` : "None named";
  const items = await Promise.all(p.guardians.map(async (key) => {
    const item = document.createElement("li");
    const id = await guardianId(key);
    item.dataset.guardian = id;
    item.textContent = `Passport ${short(id)}`;
    return item;
  }));
  byId("guardians").replaceChildren(...items);
  view.dataset.passportId = p.passport_id;
  view.hidden = false;
  byId("passport-hint").hidden = true;
}

async function showAccounts() {
  const rows = await Promise.all(w.accounts().map(async (account) => {
    const r = await signedGet(`/wallet/accounts/${account.pseudonym}`,
                              await w.keyFor(account.pseudonym), "account.view",
                              { account: account.pseudonym });
    const row = document.createElement("tr");
    row.dataset.account = account.pseudonym;
    const status = r.ok ? r.data.status : (r.code === "not_found" ? "not opened yet" : r.code);
    for (const text of [account.institution, short(account.pseudonym, 12), status,
                        r.ok ? String(r.data.kyc_level) : ""]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    row.dataset.status = status;
    return row;
  }));
  byId("account-records").tBodies[0].replaceChildren(...rows);
}

async function keepLink(event) {
  event.preventDefault();
  w.clearError();
  let link;
  try {
    link = JSON.parse(byId("passport-link").value);
  } catch (_) {
    link = null;
  }
  if (!link || link.action !== "passport.link_device" || !link.body
      || typeof link.body.passport_id !== "string") {
    w.fail("link_unreadable");
    return;
  }
  if (link.body.device_key !== w.passport.publicB64) {
    w.fail("link_mismatch");
    return;
  }
  kept.link = link;
  await seal();
  byId("passport-link").value = "";
  await showPassport();
  if (!byId("passport-view").hidden) w.status("Your passport is linked to this device.");
}

// --- credentials ---------------------------------------------------------------------------

function canonicalText(content) {
  return typeof content === "string" ? content : K.canonical(content);
}

/** The ledger's public record and whether the kept content and salt are what it recorded. */
async function checked(credential) {
  const r = await w.call("GET", `/credentials/${encodeURIComponent(credential.credential_id)}`);
  if (!r.ok) return { r, valid: false };
  const same = await saltedHash(credential.salt, canonicalText(credential.content)) === r.data.hash;
  return { r, record: r.data, same, valid: same && r.data.status === "active" };
}

function credentialCard(credential, outcome) {
  const card = document.createElement("article");
  card.className = "credential";
  card.dataset.credentialId = credential.credential_id;
  card.dataset.valid = String(outcome.valid);
  const record = outcome.record || {};
  const title = document.createElement("h3");
  title.textContent = `${record.type || "Credential"} · ${record.issuer_org || "?"}`;
  const result = document.createElement("p");
  result.className = `result ${outcome.valid ? "verified" : "refused"}`;
  const word = document.createElement("strong");
  word.className = "result-word";
  word.textContent = outcome.valid ? "VALID" : "INVALID";
  const reason = document.createElement("span");
  reason.className = "result-reason";
  reason.textContent = !outcome.r.ok ? ` ${outcome.r.code}`
    : !outcome.same ? " not what the issuer recorded on the ledger"
      : outcome.valid ? " checked on this device against the ledger's salted hash"
        : ` the credential is ${record.status}`;
  result.append(word, reason);
  const facts = document.createElement("dl");
  facts.className = "facts";
  const idTerm = document.createElement("dt");
  idTerm.textContent = "Credential ID";
  const idValue = document.createElement("dd");
  idValue.textContent = credential.credential_id;
  facts.append(idTerm, idValue, ...fieldRows(credential.content));
  card.append(title, result, facts);
  const mine = w.accounts().some((a) => a.pseudonym === record.subject_account);
  if (outcome.valid && record.type === "prescription" && mine) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "approve-pickup";
    button.textContent = "Approve pickup at the pharmacy";
    button.setAttribute("aria-label",
                        `Approve the pickup of ${credential.credential_id} at ${PHARMACY}`);
    button.addEventListener("click", () => approvePickup(credential, record, button));
    card.append(button);
  }
  return card;
}

async function showCredentials() {
  const cards = [];
  for (const credential of kept.credentials) {
    cards.push(credentialCard(credential, await checked(credential)));
  }
  byId("credentials").replaceChildren(...cards);
  byId("no-credentials").hidden = cards.length > 0;
}

async function keepCredential(presented) {
  const outcome = await checked(presented);
  if (!outcome.r.ok) {
    w.fail(outcome.r.code, outcome.r.message);
    return false;
  }
  if (!outcome.same) {
    w.fail("credential_mismatch");
    return false;
  }
  kept.credentials = kept.credentials.filter((c) => c.credential_id !== presented.credential_id);
  kept.credentials.push({ ...presented, content: canonicalText(presented.content) });
  return true;
}

function importAccounts(list) {
  if (!Array.isArray(list)) return;
  const known = w.accounts();
  for (const a of list) {
    if (a && typeof a.pseudonym === "string" && /^[0-9a-f]{64}$/.test(a.pseudonym)
        && typeof a.institution === "string" && Number.isInteger(a.index)
        && !known.some((k) => k.pseudonym === a.pseudonym)) {
      known.push({ pseudonym: a.pseudonym, institution: a.institution, index: a.index });
    }
  }
  localStorage.setItem(STORE_ACCOUNTS, JSON.stringify(known));
  w.renderAccounts();
}

async function importFile() {
  const input = byId("import-file");
  const file = input.files && input.files[0];
  if (!file || !w) return;
  byId("credential-in").value = await file.text();
  input.value = "";
  await addCredential();
}

async function addCredential(event) {
  if (event) event.preventDefault();
  w.clearError();
  const text = byId("credential-in").value.trim();
  let value = null;
  try {
    value = JSON.parse(text);
  } catch (_) {
    value = null;
  }
  if (value && value.format === EXPORT_FORMAT) {
    importAccounts(value.accounts);
    const link = value.passport && value.passport.link;
    if (link && link.body && link.body.device_key === w.passport.publicB64) kept.link = link;
    let added = 0;
    for (const c of value.credentials || []) {
      const presented = parsePresentation(c);
      if (presented && await keepCredential(presented)) added += 1;
    }
    Object.assign(kept.portraits, value.portraits || {});
    await seal();
    byId("credential-in").value = "";
    await Promise.all([showAll(), w.refresh()]);
    w.status(`Imported: ${added} credential(s) checked against the ledger and kept.`);
    return;
  }
  const presented = parsePresentation(value);
  if (!presented) {
    w.fail("credential_unreadable");
    return;
  }
  if (!await keepCredential(presented)) return;
  await seal();
  byId("credential-in").value = "";
  await showCredentials();
  w.status("The credential matches the ledger and is kept on this device.");
  const card = byId("credentials").querySelector(
    `[data-credential-id="${CSS.escape(presented.credential_id)}"] h3`);
  if (card) {
    card.tabIndex = -1;
    card.focus();
  }
}

async function approvePickup(credential, record, button) {
  w.clearError();
  const account = record.subject_account;
  const key = await w.keyFor(account);
  const terms = {
    account, grant_id: `g-${K.randomHex(12)}`, grantee_org: PHARMACY,
    scope: "medical.prescription", credential_id: credential.credential_id,
    expires: Math.floor(Date.now() / 1000) + PICKUP_DAYS * 86400,
  };
  // Where the account's institution makes portraits for pickups, the grant commits to one
  // (the sealed portrait is kept here, for the counter); otherwise the plain grant.
  let body = terms;
  const prepared = await w.call("POST", "/grants/portraits", {
    body: { signed_request: await K.signRequest(key, "grant.portrait", terms) } });
  if (prepared.ok) {
    body = prepared.data.grant_body;
    kept.portraits[terms.grant_id] = prepared.data.portrait;
    await seal();
  } else if (prepared.code !== "no_portrait") {
    w.fail(prepared.code, prepared.message);
    return;
  }
  const r = await w.call("POST", "/grants", {
    body: { signed_request: await K.signRequest(key, "grant.create", body) } });
  if (!r.ok) {
    w.fail(r.code, r.message);
    return;
  }
  button.dataset.approved = "true";
  button.className = "secondary approve-pickup";
  button.textContent = `Pickup approved until ${day(body.expires)}`;
  w.status(`Approved: ${PHARMACY} may dispense ${credential.credential_id} until `
    + `${day(body.expires)}.`);
  await w.refresh();
  button.focus();
}

// --- export --------------------------------------------------------------------------------

async function exportWallet() {
  w.clearError();
  const grants = {};
  for (const account of w.accounts()) {
    const r = await signedGet(`/grants?account=${account.pseudonym}`,
                              await w.keyFor(account.pseudonym), "grant.list",
                              { account: account.pseudonym });
    if (r.ok) grants[account.pseudonym] = r.data;
  }
  const file = {
    format: EXPORT_FORMAT,
    exported: new Date().toISOString(),
    key_material: "none: every key is re-made from the passkey (PRF) at unlock",
    passport: kept.link ? { passport_id: kept.link.body.passport_id, link: kept.link } : null,
    accounts: w.accounts(),
    credentials: kept.credentials,
    portraits: kept.portraits,
    grants,
  };
  const blob = new Blob([JSON.stringify(file, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `mip-wallet-${file.exported.slice(0, 10)}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  w.status("Exported: the file holds your records and credentials in clear, and no keys.");
}

async function showAll() {
  await Promise.all([showPassport(), showAccounts(), showCredentials()]);
}

document.addEventListener("mip-wallet-unlocked", async (event) => {
  w = event.detail;
  kept = await unseal();
  for (const id of ["passport-card", "credentials-card"]) byId(id).hidden = false;
  await showAll();
});
document.addEventListener("mip-wallet-accounts", () => { if (w) showAccounts(); });
document.addEventListener("DOMContentLoaded", () => {
  byId("link-form").addEventListener("submit", keepLink);
  byId("refresh-passport").addEventListener("click", () => { if (w) { w.clearError(); showAll(); } });
  byId("credential-form").addEventListener("submit", addCredential);
  byId("export").addEventListener("click", () => { if (w) exportWallet(); });
  byId("import-file").addEventListener("change", importFile);
});
