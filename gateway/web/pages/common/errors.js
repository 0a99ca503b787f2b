/* Typed errors on the desk pages (check, issuer, enrolment), shown as the gateway sends
 * them: the page's sentence for the code, then the gateway's own code and message. */

const COMMON = {
  unauthenticated: "Your sign-in was not accepted. Sign in again.",
  forbidden: "Your account may not do this here.",
  wrong_role: "Your role may not do this.",
  wrong_org: "Your organisation may not do this.",
  ledger_refused: "The ledger refused this.",
  invalid_request: "The request was not accepted: check the fields.",
  not_found: "Nothing with this ID was found on the ledger.",
  precondition_failed: "The ledger refused this in the record's current state.",
  access_denied: "The ledger refused this for your organisation.",
  ledger_unavailable: "The ledger is not reachable. Try again in a moment.",
  internal_error: "The gateway failed. Try again.",
  network: "The gateway cannot be reached. Check the connection.",
};

/** Fills `box` with a typed error: the page's sentence for the code, then the gateway's
 * own code and message (so staff can quote them). */
export function showError(box, r, sentences) {
  const sentence = (sentences && sentences[r.code]) || COMMON[r.code] || "The request was refused.";
  const detail = document.createElement("code");
  detail.textContent = r.message ? `${r.code}: ${r.message}` : r.code;
  const lead = document.createElement("span");
  lead.textContent = `${sentence} `;
  box.replaceChildren(lead, detail);
  box.dataset.code = r.code;
  box.hidden = false;
}

export function clearError(box) {
  box.replaceChildren();
  delete box.dataset.code;
  box.hidden = true;
}
