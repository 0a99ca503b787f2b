/* Guardian rotation of a moved passport (docs/gateway.md, "Guardian rotation of a moved
 * passport"). Two parts:
 * - "Ask my guardians": a holder whose passport key was on a device they lost makes a new
 *   passkey here; this device's passport key signs `passport.rotate-request` over
 *   {passport_id, new_public_key: itself}, and the gateway answers a request id to give the
 *   guardians.
 * - "Approve": a guardian whose own passport key is on this device reads a request (which
 *   passport, which new key: compare it with what the holder's wallet shows) and signs
 *   `passport.rotate` over exactly that body, by the request's deadline. The gateway carries
 *   the ledger's Passport:RotateKey once enough guardians approved. */
"use strict";

(() => {
  const K = window.MipWalletKeys;
  const STORE_PASSPORT = "mip.wallet.passport"; // the id of the passport whose key is here
  const PASSPORT_ID = /^[0-9a-f]{64}$/;
  const ROTATION_ID = /^[0-9a-f]{32}$/;
  const byId = (id) => document.getElementById(id);
  let shown = null; // the request read for approval

  async function ask(event) {
    event.preventDefault();
    const W = window.MipWalletSession;
    W.clearError();
    const master = W.master();
    if (!master) return;
    const passportId = byId("rotation-passport").value.trim();
    if (!PASSPORT_ID.test(passportId)) {
      W.fail("rotation_unreadable");
      return;
    }
    const key = await K.passportKey(master);
    const signed = await K.signRequest(key, "passport.rotate-request",
                                       { passport_id: passportId, new_public_key: key.publicB64 });
    const r = await W.call("POST", `/passports/${passportId}/rotations`,
                           { body: { signed_request: signed } });
    if (!r.ok) {
      W.fail(r.code, r.message);
      return;
    }
    localStorage.setItem(STORE_PASSPORT, passportId);
    byId("rotation-id").textContent = r.data.rotation_id;
    W.status(`Asked: give your guardians the request id ${r.data.rotation_id}; `
      + `${r.data.threshold} of them must approve it in the next minutes.`);
  }

  async function read(event) {
    event.preventDefault();
    const W = window.MipWalletSession;
    W.clearError();
    byId("approve-rotation").hidden = true;
    shown = null;
    const id = byId("approve-id").value.trim();
    if (!ROTATION_ID.test(id)) {
      W.fail("rotation_unreadable");
      return;
    }
    const r = await W.call("GET", `/passport-rotations/${id}`);
    if (!r.ok) {
      W.fail(r.code, r.message);
      return;
    }
    shown = r.data;
    byId("approve-what").textContent = `Passport ${shown.passport_id.slice(0, 16)}… to the `
      + `new key ${shown.body.new_public_key} (${shown.approved.length} of ${shown.threshold} `
      + `approved, ${shown.status})`;
    byId("approve-rotation").hidden = false;
  }

  async function approve() {
    const W = window.MipWalletSession;
    W.clearError();
    const master = W.master();
    if (!master || !shown) return;
    const key = await K.passportKey(master);
    const guardian = localStorage.getItem(STORE_PASSPORT) || await K.passportId(key);
    const signed = await K.signRequest(key, shown.action, shown.body, 0, shown.expires);
    const r = await W.call("POST", `/passport-rotations/${shown.rotation_id}/approvals`,
                           { body: { guardian_passport_id: guardian, signed_request: signed } });
    if (!r.ok) {
      W.fail(r.code, r.message);
      return;
    }
    byId("approve-rotation").hidden = true;
    byId("approve-what").textContent = `${r.data.approved.length} of ${r.data.threshold} `
      + `approved, ${r.data.status}`;
    W.status(r.data.status === "rotated"
      ? "Approved: enough guardians approved, and the passport now has the new key."
      : "Approved: the other guardians' approvals are still needed.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("rotation-form").addEventListener("submit", ask);
    byId("approve-form").addEventListener("submit", read);
    byId("approve-rotation").addEventListener("click", approve);
  });
})();
