/* Issuer desk: a doctor writes a prescription or a medical record; a school registrar issues
 * a diploma or a transcript; either revokes what their org issued. Staff sign in with their
 * token as at the counter (sessionStorage only). The gateway decides who may issue what
 * (doctor@HospitalMSP, school_registrar@SchoolMSP) and the contract checks it again; the
 * page only shows the gateway's typed refusal.
 *
 * POST /api/v1/credentials {type, subject_account, content}: the answer carries the
 * canonical content and the salt once, for the holder; the page shows them as the holder's
 * presentation ({credential_id, content, salt}) and keeps nothing after "Issue another".
 * POST /api/v1/credentials/{id}/revoke {reason}. */

import { api } from "/desk/api.js";
import { byId } from "/desk/dom.js";
import { clearError, showError } from "/desk/errors.js";
import { staffSignIn } from "/desk/staff.js";

const ui = {
  signin: byId("signin"),
  issue: byId("issue"),
  issueForm: byId("issue-form"),
  type: byId("cred-type"),
  subject: byId("subject"),
  issueSubmit: byId("issue-submit"),
  issueError: byId("issue-error"),
  issued: byId("issued"),
  issuedStatus: byId("issued-status"),
  presentation: byId("presentation"),
  another: byId("issue-another"),
  revoke: byId("revoke"),
  revokeForm: byId("revoke-form"),
  revokeId: byId("revoke-id"),
  revokeReason: byId("revoke-reason"),
  revokeSubmit: byId("revoke-submit"),
  revokeStatus: byId("revoke-status"),
  revokeError: byId("revoke-error"),
};
const fieldsets = [...document.querySelectorAll("fieldset.fields")];

const SENTENCES = {
  forbidden: "Your account may not issue or revoke this kind of credential.",
  wrong_role: "Your role may not issue or revoke this kind of credential.",
  wrong_org: "Your organisation does not issue this kind of credential.",
  access_denied: "The ledger refused: the holder's account is not at your institution.",
  not_found: "No such account or credential is on the ledger.",
  precondition_failed: "The ledger refused this in the record's current state (already revoked?).",
  invalid_request: "The request was not accepted: check every field.",
  content_unreadable: "Fill in every field of the credential (dates as YYYY-MM-DD).",
};

const staff = staffSignIn("mip.issuer.token", {
  signedOut() {
    for (const s of [ui.issue, ui.issued, ui.revoke]) s.hidden = true;
    ui.signin.hidden = false;
  },
  signedIn() {
    ui.signin.hidden = true;
    ui.issue.hidden = false;
    ui.revoke.hidden = false;
    ui.issued.hidden = true;
    showFieldsFor(ui.type.value);
    ui.type.focus();
  },
});
const session = staff.session;

function showFieldsFor(type) {
  // Hidden fieldsets are also disabled, so Tab skips them and they are never sent.
  for (const fs of fieldsets) {
    const mine = fs.dataset.type === type;
    fs.hidden = !mine;
    fs.disabled = !mine;
  }
}

/** The content object of the visible fieldset, or null when a field is empty. */
function readContent(type) {
  const fs = fieldsets.find((f) => f.dataset.type === type);
  const content = {};
  for (const input of fs.querySelectorAll("[data-name]")) {
    const raw = input.value.trim();
    if (!raw) return null;
    const kind = input.dataset.kind;
    if (kind === "int") {
      content[input.dataset.name] = Number.parseInt(raw, 10);
    } else if (kind === "date") {
      // Typed as YYYY-MM-DD (the same on every keyboard and locale, unlike a date
      // picker's segments); the end of that day, UTC, as the contract's unix time.
      const time = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? Date.parse(`${raw}T23:59:59Z`) : NaN;
      if (Number.isNaN(time)) return null;
      content[input.dataset.name] = Math.floor(time / 1000);
    } else if (kind === "courses") {
      const courses = raw.split(/\r?\n/).map((line) => line.trim()).filter(Boolean).map((line) => {
        const at = line.lastIndexOf(":");
        return at > 0 ? { course: line.slice(0, at).trim(), grade: line.slice(at + 1).trim() }
          : { course: line, grade: "" };
      });
      content[input.dataset.name] = courses;
    } else {
      content[input.dataset.name] = raw;
    }
  }
  return content;
}

async function issue() {
  clearError(ui.issueError);
  const type = ui.type.value;
  const content = readContent(type);
  if (!content) {
    showError(ui.issueError, { code: "content_unreadable", message: "" }, SENTENCES);
    return;
  }
  ui.issueSubmit.disabled = true;
  const r = await api("POST", "/credentials",
    { type, subject_account: ui.subject.value.trim(), content }, session);
  ui.issueSubmit.disabled = false;
  if (!r.ok) {
    if (r.code !== "unauthenticated") showError(ui.issueError, r, SENTENCES);
    return;
  }
  const { credential_id: id, content: canonical, salt } = r.data;
  ui.presentation.value = JSON.stringify({ credential_id: id, content: canonical, salt }, null, 2);
  ui.issuedStatus.textContent = `Issued ${type} ${id}.`;
  ui.issuedStatus.dataset.credentialId = id;
  ui.issue.hidden = true;
  ui.issued.hidden = false;
  ui.presentation.focus();
  ui.presentation.select();
}

function issueAnother() {
  ui.presentation.value = ""; // the salt is the holder's, not the desk's
  delete ui.issuedStatus.dataset.credentialId;
  ui.issued.hidden = true;
  ui.issue.hidden = false;
  ui.issueForm.reset();
  showFieldsFor(ui.type.value);
  ui.type.focus();
}

async function revoke() {
  clearError(ui.revokeError);
  ui.revokeStatus.hidden = true;
  const id = ui.revokeId.value.trim();
  const reason = ui.revokeReason.value.trim();
  if (!id || !reason) return;
  ui.revokeSubmit.disabled = true;
  const r = await api("POST", `/credentials/${encodeURIComponent(id)}/revoke`, { reason }, session);
  ui.revokeSubmit.disabled = false;
  if (!r.ok) {
    if (r.code !== "unauthenticated") showError(ui.revokeError, r, SENTENCES);
    return;
  }
  ui.revokeStatus.textContent = `Revoked ${id}: its status on the ledger is ${r.data.status}.`;
  ui.revokeStatus.hidden = false;
  ui.revokeForm.reset();
}

ui.type.addEventListener("change", () => {
  clearError(ui.issueError);
  showFieldsFor(ui.type.value);
});
ui.issueForm.addEventListener("submit", (event) => {
  event.preventDefault();
  issue();
});
ui.another.addEventListener("click", issueAnother);
ui.revokeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  revoke();
});

staff.start();
