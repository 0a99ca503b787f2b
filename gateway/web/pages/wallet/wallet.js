/* The holder wallet page: passkey (PRF) -> master secret on this device -> SLIP-0010 keys;
 * holder requests signed here and carried by the gateway (grants: create, list, revoke; the
 * access log). Stored in localStorage: the passkey's credential id and the accounts'
 * pseudonyms, institutions and derivation indexes (nothing that opens or signs anything);
 * wallet_views.js keeps its own records sealed under a key derived from the passkey.
 * The master secret and keys live in this page's memory until it is closed or locked.
 * The passkey's relying party id is the gateway's `wallet_rp_id` (GET /wallet/config): the
 * consortium's shared domain makes the same passkey, hence the same keys, work at every
 * member org's gateway; at each unlock the page finds its accounts on the ledger by their
 * keys (`account.find`), so a host or browser that never saw them lists them too. */
"use strict";

(() => {
  const K = window.MipWalletKeys;
  const API = "/api/v1";
  const STORE_CREDENTIAL = "mip.wallet.credential";
  const STORE_ACCOUNTS = "mip.wallet.accounts";
  const WEBAUTHN_TIMEOUT_MS = 60000;
  // The member orgs whose accounts the page looks for, and how many unknown indexes in a row
  // end the search at one org (an index signed for a desk that never opened it is a gap).
  const INSTITUTIONS = ["HospitalMSP", "SchoolMSP", "PharmacyMSP"];
  const FIND_GAP = 3;
  const TYPE_OF_SCOPE = {
    "medical.prescription": "prescription", "medical.record": "record",
    "education.diploma": "diploma", "education.transcript": "transcript",
  };
  const SENTENCES = {
    prf_unsupported: "This passkey cannot make keys (no PRF support): use another authenticator.",
    passkey_failed: "The passkey was not used.",
    terms_unreadable: "The desk's terms are not readable: they must be JSON with pseudonym and institution.",
    bad_signature: "The ledger did not accept this device's signature for the account.",
    not_found: "The ledger does not know this account (has the desk opened it?).",
    replay: "This request was already used.",
    expired: "The signed request expired before it reached the ledger.",
    precondition_failed: "The ledger refused this in the record's current state.",
    network: "The gateway cannot be reached. Check the connection.",
    // wallet_views.js
    device_not_linked: "This device is not linked to your passport yet: ask a desk to link it.",
    link_unreadable: "This is not a device link: paste the JSON the desk gave you.",
    link_mismatch: "This link is for another device's key, not this one's.",
    credential_unreadable: "This is not a credential: paste the JSON the issuer gave you.",
    credential_mismatch: "This content or salt is not what the issuer recorded on the ledger.",
    // wallet_rotation.js
    rotation_unreadable: "This is not a passport id (64 hex characters) or a request id (32).",
    rotation_not_found: "The gateway holds no such guardian rotation request.",
    rotation_expired: "The request expired: the holder asks again.",
    passport_not_moved: "This passport's key is still at the desk: recover it there.",
    not_a_guardian: "This device's passport is not a guardian of that passport.",
    already_approved: "This guardian approved that request already.",
  };

  let master = null; // Uint8Array, in memory only
  let rpId = null; // the gateway's wallet_rp_id (null: this page's host)
  let configReady = Promise.resolve(false); // settles once GET /wallet/config answered
  // Settles once this unlock's search for accounts on the ledger ended: a new account's index
  // is chosen after it, so it cannot be one the search is about to find.
  let accountsFound = Promise.resolve();
  const byId = (id) => document.getElementById(id);

  function accounts() {
    try {
      const list = JSON.parse(localStorage.getItem(STORE_ACCOUNTS) || "[]");
      return Array.isArray(list) ? list : [];
    } catch (_) {
      return [];
    }
  }

  /** The next unused derivation index at `institution` (one past the highest in `list`:
   * a found list may have gaps, and an index is never used twice). */
  function nextIndex(list, institution) {
    return list.filter((a) => a.institution === institution)
      .reduce((next, a) => Math.max(next, a.index + 1), 0);
  }

  function status(text) {
    byId("wallet-status").textContent = text;
  }

  function fail(code, message) {
    const box = byId("wallet-error");
    const lead = document.createElement("span");
    lead.textContent = `${SENTENCES[code] || "The request was refused."} `;
    const detail = document.createElement("code");
    detail.textContent = message ? `${code}: ${message}` : code;
    box.replaceChildren(lead, detail);
    box.dataset.code = code;
    box.hidden = false;
  }

  function clearError() {
    const box = byId("wallet-error");
    box.replaceChildren();
    delete box.dataset.code;
    box.hidden = true;
  }

  async function call(method, path, { body, signedHeader } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (signedHeader) headers["X-MIP-Signed-Request"] = K.b64url(new TextEncoder().encode(JSON.stringify(signedHeader)));
    let response;
    try {
      response = await fetch(API + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
    } catch (_) {
      return { ok: false, code: "network", message: "" };
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.ok) return { ok: true, data };
    const error = data && data.error ? data.error : {};
    return { ok: false, code: error.code || `http_${response.status}`, message: error.message || "" };
  }

  /** A WebAuthn call that cannot hang the page (an absent authenticator never answers). */
  function bounded(promise) {
    return Promise.race([promise, new Promise((_, reject) => setTimeout(
      () => reject(new Error("timed out")), WEBAUTHN_TIMEOUT_MS + 1000))]);
  }

  function prfOf(credential) {
    const ext = credential.getClientExtensionResults();
    return ext && ext.prf && ext.prf.results && ext.prf.results.first
      ? new Uint8Array(ext.prf.results.first) : null;
  }

  /** The gateway's wallet settings; false where they could not be read (then no passkey is
   * made: one made for the wrong relying party would give other keys). */
  async function loadConfig() {
    const r = await call("GET", "/wallet/config");
    if (!r.ok || !r.data) return false;
    rpId = typeof r.data.rp_id === "string" ? r.data.rp_id : null;
    return true;
  }

  async function prfFromGet() {
    if (!await configReady) throw new Error("the gateway's wallet settings are unreadable");
    const stored = localStorage.getItem(STORE_CREDENTIAL);
    const credential = await bounded(navigator.credentials.get({ publicKey: {
      ...(rpId ? { rpId } : {}),
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      allowCredentials: stored ? [{ type: "public-key", id: K.unb64url(stored) }] : [],
      userVerification: "required", timeout: WEBAUTHN_TIMEOUT_MS,
      extensions: { prf: { eval: { first: K.PRF_SALT } } },
    } }));
    return prfOf(credential);
  }

  async function createPasskey() {
    clearError();
    if (!await configReady) {
      fail("network", "the gateway's wallet settings are unreadable");
      return;
    }
    let credential;
    try {
      credential = await bounded(navigator.credentials.create({ publicKey: {
        rp: { name: "MIP passport wallet", ...(rpId ? { id: rpId } : {}) },
        user: { id: crypto.getRandomValues(new Uint8Array(16)), name: "MIP passport",
                displayName: "MIP passport" },
        // Only this page uses the passkey (as a PRF source): no server checks the challenge.
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [{ type: "public-key", alg: -7 }, { type: "public-key", alg: -8 },
                           { type: "public-key", alg: -257 }],
        authenticatorSelection: { residentKey: "required", userVerification: "required" },
        timeout: WEBAUTHN_TIMEOUT_MS,
        extensions: { prf: { eval: { first: K.PRF_SALT } } },
      } }));
    } catch (error) {
      fail("passkey_failed", String(error && error.message || error));
      return;
    }
    const ext = credential.getClientExtensionResults();
    if (!ext.prf || ext.prf.enabled === false) {
      fail("prf_unsupported");
      return;
    }
    localStorage.setItem(STORE_CREDENTIAL, K.b64url(new Uint8Array(credential.rawId)));
    // Some authenticators give the PRF output only at get().
    await openWith(prfOf(credential) || await prfFromGet());
  }

  async function unlock() {
    clearError();
    let prf;
    try {
      prf = await prfFromGet();
    } catch (error) {
      fail("passkey_failed", String(error && error.message || error));
      return;
    }
    await openWith(prf);
  }

  async function openWith(prf) {
    if (!prf) {
      fail("prf_unsupported");
      return;
    }
    master = await K.masterFromPrf(prf);
    prf.fill(0);
    const passport = await K.passportKey(master);
    byId("passport-id").textContent = await K.passportId(passport);
    byId("passport-key").textContent = passport.publicB64;
    byId("passport-facts").hidden = false;
    byId("lock-state").textContent = "Unlocked on this device";
    for (const id of ["pairing", "move-card", "rotation-card", "grants-card", "log-card"]) {
      byId(id).hidden = false;
    }
    renderAccounts();
    status("Unlocked: looking for your accounts on the ledger…");
    accountsFound = findAccounts();
    await accountsFound;
    status("Unlocked: your keys are ready on this device.");
    if (accounts().length) await refresh();
    // The views (wallet_views.js: passport, credentials, pickup, export) get what they sign
    // and seal with; nothing of it is stored.
    document.dispatchEvent(new CustomEvent("mip-wallet-unlocked", { detail: Object.freeze({
      passport, keyFor, accounts, renderAccounts, call, fail, clearError, status, refresh,
      storeKey: await K.storeKey(master),
    }) }));
  }

  /** Each member org's account keys, index 0, 1, ..., looked up on the ledger (`account.find`
   * signed by the key) until FIND_GAP in a row are unknown; found accounts join the list. */
  async function findAccounts() {
    const found = [];
    for (const institution of INSTITUTIONS) {
      let misses = 0;
      for (let index = 0; misses < FIND_GAP; index += 1) {
        const key = await K.accountKey(master, institution, index);
        const r = await call("GET", "/wallet/accounts",
                             { signedHeader: await K.signRequest(key, "account.find", {}) });
        if (!r.ok) {
          if (r.code !== "not_found") return fail(r.code, r.message);
          misses += 1;
          continue;
        }
        misses = 0;
        if (r.data.institution === institution) {
          found.push({ pseudonym: r.data.pseudonym, institution, index });
        }
      }
    }
    // Merged into the list as it is now (the holder may have signed terms meanwhile).
    const list = accounts();
    const fresh = found.filter((f) => !list.some((a) => a.pseudonym === f.pseudonym));
    if (!fresh.length) return;
    localStorage.setItem(STORE_ACCOUNTS, JSON.stringify([...list, ...fresh]));
    renderAccounts();
    document.dispatchEvent(new CustomEvent("mip-wallet-accounts"));
  }

  function renderAccounts() {
    const list = byId("accounts");
    const select = byId("grant-account");
    list.replaceChildren();
    select.replaceChildren();
    for (const account of accounts()) {
      const item = document.createElement("li");
      item.textContent = `${account.institution}: ${account.pseudonym.slice(0, 16)}…`;
      list.append(item);
      const option = document.createElement("option");
      option.value = account.pseudonym;
      option.textContent = `${account.institution} · ${account.pseudonym.slice(0, 12)}…`;
      select.append(option);
    }
  }

  async function keyFor(pseudonym) {
    const account = accounts().find((a) => a.pseudonym === pseudonym);
    if (!account || !master) throw new Error("unknown account");
    return K.accountKey(master, account.institution, account.index);
  }

  async function signTerms(event) {
    event.preventDefault();
    clearError();
    let terms;
    try {
      terms = JSON.parse(byId("desk-terms").value);
      if (typeof terms !== "object" || terms === null || typeof terms.pseudonym !== "string"
          || !/^[0-9a-f]{64}$/.test(terms.pseudonym) || typeof terms.institution !== "string") {
        throw new Error("fields");
      }
    } catch (_) {
      fail("terms_unreadable");
      return;
    }
    await accountsFound;
    const list = accounts().filter((a) => a.pseudonym !== terms.pseudonym);
    const index = nextIndex(list, terms.institution);
    const key = await K.accountKey(master, terms.institution, index);
    const signed = await K.signRequest(key, "account.open", terms);
    list.push({ pseudonym: terms.pseudonym, institution: terms.institution, index });
    localStorage.setItem(STORE_ACCOUNTS, JSON.stringify(list));
    byId("signed-request").value = JSON.stringify(signed);
    renderAccounts();
    document.dispatchEvent(new CustomEvent("mip-wallet-accounts"));
    status(`Signed for ${terms.institution}: give the signed request to the desk.`);
  }

  async function grant(event) {
    event.preventDefault();
    clearError();
    const account = byId("grant-account").value;
    if (!account) return;
    const scope = byId("grant-scope").value;
    const days = Math.min(365, Math.max(1, parseInt(byId("grant-days").value, 10) || 30));
    const body = {
      account, grant_id: `g-${K.randomHex(12)}`, grantee_org: byId("grantee-org").value,
      scope, credential_type: TYPE_OF_SCOPE[scope],
      expires: Math.floor(Date.now() / 1000) + days * 86400,
    };
    const signed = await K.signRequest(await keyFor(account), "grant.create", body);
    const r = await call("POST", "/grants", { body: { signed_request: signed } });
    if (!r.ok) {
      fail(r.code, r.message);
      return;
    }
    status(`Granted ${body.grantee_org} ${scope}.`);
    await refresh();
  }

  async function revoke(account, grantId) {
    clearError();
    const signed = await K.signRequest(await keyFor(account), "grant.revoke",
                                       { account, grant_id: grantId });
    const r = await call("POST", `/grants/${encodeURIComponent(grantId)}/revoke`,
                         { body: { signed_request: signed } });
    if (!r.ok) {
      fail(r.code, r.message);
      return;
    }
    status("Grant revoked.");
    await refresh();
    byId("grant-account").focus();
  }

  function when(unix) {
    return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  async function refresh() {
    const account = byId("grant-account").value;
    if (!account) return;
    const key = await keyFor(account);
    const [grants, log] = await Promise.all([
      call("GET", `/grants?account=${account}`,
           { signedHeader: await K.signRequest(key, "grant.list", { account }) }),
      call("GET", `/audit/holder?account=${account}`,
           { signedHeader: await K.signRequest(key, "access.log", { account }) }),
    ]);
    if (!grants.ok) return fail(grants.code, grants.message);
    if (!log.ok) return fail(log.code, log.message);
    const rows = grants.data.map((g) => {
      const row = document.createElement("tr");
      row.dataset.grantId = g.grant_id;
      row.dataset.live = String(Boolean(g.live));
      for (const text of [g.grantee_org + (g.grantee_role ? ` (${g.grantee_role})` : ""), g.scope,
                          g.live ? `active until ${when(g.expires).slice(0, 10)}` : g.status]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const cell = document.createElement("td");
      if (g.live) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary revoke";
        button.textContent = "Revoke";
        button.setAttribute("aria-label", `Revoke ${g.grantee_org}'s ${g.scope} grant`);
        button.addEventListener("click", () => revoke(account, g.grant_id));
        cell.append(button);
      }
      row.append(cell);
      return row;
    });
    byId("grants").tBodies[0].replaceChildren(...rows);
    const items = log.data.map((r) => {
      const item = document.createElement("li");
      item.dataset.action = r.action;
      item.dataset.org = r.org;
      item.textContent = `${when(r.time)} · ${r.org}${r.role ? ` (${r.role})` : ""} · ${r.action}`
        + `${r.scope ? ` · ${r.scope}` : ""}${r.purpose ? ` · ${r.purpose}` : ""}`;
      return item;
    });
    byId("access-log").replaceChildren(...items);
  }

  // What wallet_move.js (moving desk keys here) and wallet_rotation.js (guardian rotation)
  // use of this page's state.
  window.MipWalletSession = Object.freeze({
    master: () => master, accounts, renderAccounts, status, fail, clearError, call, nextIndex,
    accountsFound: () => accountsFound,
    saveAccounts: (list) => localStorage.setItem(STORE_ACCOUNTS, JSON.stringify(list)),
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.PublicKeyCredential || !window.crypto || !window.crypto.subtle) {
      fail("prf_unsupported", "this browser has no WebAuthn or WebCrypto here (HTTPS needed)");
    }
    configReady = loadConfig();
    byId("create-passkey").addEventListener("click", createPasskey);
    byId("unlock").addEventListener("click", unlock);
    byId("pair-form").addEventListener("submit", signTerms);
    byId("grant-form").addEventListener("submit", grant);
    byId("refresh").addEventListener("click", () => { clearError(); refresh(); });
    byId("grant-account").addEventListener("change", () => { clearError(); refresh(); });
    status(localStorage.getItem(STORE_CREDENTIAL)
      ? "Unlock with your passkey." : "Create a passkey to start your wallet on this device.");
  });
})();
