/* Moving what the desk custodies onto this device (docs/gateway.md, "Moving desk keys to
 * the device"). The desk shows move terms (JSON: one object or a list of them):
 *   {"move": "account", "action": "account.rotate", "pseudonym": ..., "institution": ...}
 *   {"move": "passport", "action": "passport.move", "passport_id": ...}
 * Each gets a "Move to this device" button. It signs the terms' action over
 * {pseudonym | passport_id, new_public_key} with a key made here (the account's next index
 * at its institution; this device's passport key): the new key's half of the move. The desk
 * signs the other half with the key it custodies and carries both to the ledger; after that
 * only this device signs for the record. An account moved here joins this wallet's list. */
"use strict";

(() => {
  const K = window.MipWalletKeys;
  const STORE_PASSPORT = "mip.wallet.passport"; // the id of a passport moved here
  const PSEUDONYM = /^[0-9a-f]{64}$/;
  const byId = (id) => document.getElementById(id);

  function valid(terms) {
    if (typeof terms !== "object" || terms === null) return false;
    if (terms.move === "account") {
      return terms.action === "account.rotate" && typeof terms.pseudonym === "string"
        && PSEUDONYM.test(terms.pseudonym) && typeof terms.institution === "string";
    }
    return terms.move === "passport" && terms.action === "passport.move"
      && typeof terms.passport_id === "string" && PSEUDONYM.test(terms.passport_id);
  }

  function parse(text) {
    const value = JSON.parse(text);
    const list = Array.isArray(value) ? value : [value];
    if (!list.length || !list.every(valid)) throw new Error("fields");
    return list;
  }

  async function moveHere(terms, button) {
    const W = window.MipWalletSession;
    W.clearError();
    const master = W.master();
    if (!master) return;
    let signed;
    if (terms.move === "account") {
      await W.accountsFound();
      const list = W.accounts().filter((a) => a.pseudonym !== terms.pseudonym);
      const index = W.nextIndex(list, terms.institution);
      const key = await K.accountKey(master, terms.institution, index);
      signed = await K.signRequest(key, "account.rotate",
                                   { pseudonym: terms.pseudonym, new_public_key: key.publicB64 });
      list.push({ pseudonym: terms.pseudonym, institution: terms.institution, index });
      W.saveAccounts(list);
      W.renderAccounts();
    } else {
      const key = await K.passportKey(master);
      signed = await K.signRequest(key, "passport.move",
                                   { passport_id: terms.passport_id, new_public_key: key.publicB64 });
      localStorage.setItem(STORE_PASSPORT, terms.passport_id);
    }
    byId("move-signed").value = JSON.stringify(signed);
    button.textContent = "Signed: give it to the desk";
    W.status(terms.move === "account"
      ? `Signed the move of your ${terms.institution} account: give the signed request to the desk.`
      : "Signed the move of your passport key: give the signed request to the desk.");
  }

  function show(event) {
    event.preventDefault();
    const W = window.MipWalletSession;
    W.clearError();
    let list;
    try {
      list = parse(byId("move-terms").value);
    } catch (_) {
      W.fail("terms_unreadable");
      return;
    }
    const items = list.map((terms) => {
      const item = document.createElement("li");
      const label = terms.move === "account"
        ? `Account at ${terms.institution}: ${terms.pseudonym.slice(0, 16)}…`
        : `Passport ${terms.passport_id.slice(0, 16)}…`;
      const text = document.createElement("span");
      text.textContent = `${label} `;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary move";
      button.textContent = "Move to this device";
      button.setAttribute("aria-label", `Move to this device: ${label}`);
      button.addEventListener("click", () => moveHere(terms, button));
      item.append(text, button);
      return item;
    });
    byId("move-list").replaceChildren(...items);
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("move-form").addEventListener("submit", show);
  });
})();
