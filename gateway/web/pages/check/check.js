/* Employer's credential check: paste the presentation a holder gave you ({credential_id,
 * content, salt}, as the issuer handed it over), the gateway checks it against the ledger
 * (POST /api/v1/checks, open to anyone: Credential:Verify), and the page shows VALID or
 * INVALID, the public facts, and the fields the holder chose to release (the presented
 * content, which the ledger's salted hash has just confirmed). Nothing is stored. */

import { api } from "/desk/api.js";
import { fieldRows, parsePresentation } from "/desk/credential_view.js";
import { byId } from "/desk/dom.js";
import { clearError, showError } from "/desk/errors.js";

const ui = {
  form: byId("check-form"),
  presentation: byId("presentation"),
  check: byId("check"),
  clear: byId("clear"),
  error: byId("check-error"),
  outcome: byId("outcome"),
  result: byId("result"),
  word: byId("result-word"),
  reason: byId("result-reason"),
  id: byId("fact-id"),
  type: byId("fact-type"),
  issuer: byId("fact-issuer"),
  status: byId("fact-status"),
  fieldsPanel: byId("fields-panel"),
  fields: byId("fields"),
};

const SENTENCES = {
  presentation_unreadable: "This is not a presentation: paste the JSON the holder gave you.",
  not_found: "No credential with this ID is on the ledger.",
  invalid_request: "The presentation is malformed: it needs credential_id, content and salt.",
};
const INVALID_REASONS = {
  mismatch: "The content or salt is not what the issuer recorded: it was altered.",
  revoked: "The issuer has revoked this credential.",
  erased: "This credential was erased at the holder's request.",
};

function showFields(content) {
  const rows = fieldRows(content);
  ui.fields.replaceChildren(...rows);
  ui.fieldsPanel.hidden = rows.length === 0;
}

function hideOutcome() {
  ui.outcome.hidden = true;
  ui.fields.replaceChildren();
  ui.fieldsPanel.hidden = true;
  delete ui.result.dataset.reason;
  document.body.dataset.state = "idle";
}

async function check() {
  clearError(ui.error);
  hideOutcome();
  const presented = parsePresentation(ui.presentation.value.trim());
  if (!presented) {
    showError(ui.error, { code: "presentation_unreadable", message: "" }, SENTENCES);
    ui.presentation.focus();
    return;
  }
  ui.check.disabled = true;
  document.body.dataset.state = "checking";
  const r = await api("POST", "/checks", presented);
  ui.check.disabled = false;
  if (!r.ok) {
    document.body.dataset.state = "error";
    showError(ui.error, r, SENTENCES);
    ui.presentation.focus();
    return;
  }
  const answer = r.data;
  // VALID needs both: the content is what was issued, and the issuer has not revoked it.
  const valid = answer.valid === true && answer.status === "active";
  const reason = answer.valid !== true ? "mismatch" : answer.status;
  ui.id.textContent = answer.credential_id;
  ui.type.textContent = answer.type || "";
  ui.issuer.textContent = answer.issuer_org || "";
  ui.status.textContent = answer.status;
  ui.result.className = `result ${valid ? "verified" : "refused"}`;
  ui.word.textContent = valid ? "VALID" : "INVALID";
  ui.reason.textContent = valid
    ? "This is what the issuer recorded, and it is in force."
    : (INVALID_REASONS[reason] || `The credential is ${reason}.`);
  if (!valid) ui.result.dataset.reason = reason;
  // Fields only for a valid presentation: an altered or revoked one proves nothing.
  if (valid) showFields(presented.content);
  ui.outcome.hidden = false;
  document.body.dataset.state = valid ? "valid" : "invalid";
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  check();
});
// Ctrl/Cmd+Enter in the text area checks without leaving the keyboard.
ui.presentation.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    check();
  }
});
ui.clear.addEventListener("click", () => {
  ui.presentation.value = "";
  clearError(ui.error);
  hideOutcome();
  ui.presentation.focus();
});
document.body.dataset.state = "idle";
