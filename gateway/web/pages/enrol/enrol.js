/* Enrolment desk: registrar token -> open an enrolment (POST /api/v1/enrolments, which
 * returns a liveness challenge) -> the person follows the prompts in front of the camera,
 * the frames go in one request (POST .../current/frames: liveness, quality, then duplicate
 * screening against everyone enrolled) -> the person types their own password and names
 * guardians (PUT .../password, PUT .../guardians) -> POST .../finish registers the passport.
 *
 * The outcome of each step is shown as the gateway answers it (its code and message): a
 * face that resembles someone enrolled already goes to review (202 `in_review` with the
 * review's id: a registrar decides at /api/v1/reviews; no password step until then), and one
 * a review found to be the same person is `duplicate_face`; neither is retaken. At a per-org
 * gateway the consortium-wide screening (the other orgs' galleries) runs in the background
 * after the frames request: the page shows its state (GET /enrolments/current: `screening`)
 * while the person types the password, SENT TO REVIEW when it finds candidates, and a retry
 * (POST .../current/screening) when an org did not answer; finish waits for it (bounded).
 * Frames live in memory until sent; the camera is opened for the face check only.
 * No capture time is sent: the gateway times the frames by the request's arrival.
 * The session is named by its X-MIP-Enrolment-Session header (inSession), never in a URL. */

import { api } from "/desk/api.js";
import { TIMING, faceCapture } from "/desk/capture.js";
import { byId } from "/desk/dom.js";
import { clearError, showError } from "/desk/errors.js";
import { staffSignIn } from "/desk/staff.js";

// The counter's capture schedule, exposed so the browser test's simulated camera follows it.
window.MIP_ENROL_TIMING = TIMING;

const SENTENCES = {
  duplicate_face: "This person appears to be enrolled already: a passport exists for this face.",
  liveness_failed: "The live check did not pass. Retake, following each prompt.",
  challenge_expired: "The check took too long. Retake.",
  challenge_used: "This check was already answered. Retake.",
  challenge_not_found: "This check is no longer valid. Retake.",
  camera_unavailable: "No camera is available on this device: the face check needs one.",
  enrolment_expired: "The enrolment session expired. Start again.",
  enrolment_incomplete: "A step is missing (face or password).",
  enrolment_not_found: "This enrolment session is not known here. Start again.",
  weak_password: "The password is too weak: choose a longer one.",
  password_mismatch: "The two passwords differ. Type the same password twice.",
  invalid_guardians: "The guardians are not accepted: check the IDs and how many are needed.",
  unknown_guardian: "A guardian is not an active passport.",
  no_face: "No face was found. Face the camera.",
  screening_pending: "The screening with the other organisations is still running. "
    + "Register again in a moment.",
  screening_failed: "The screening with the other organisations did not complete. Retry it.",
  enrolment_in_review: "This face is in review: a registrar must decide it first.",
  multiple_faces: "More than one face is in view. Only the person enrolling should be in view.",
};

const ui = {
  signin: byId("signin"),
  start: byId("start"),
  startButton: byId("start-button"),
  startError: byId("start-error"),
  face: byId("face"),
  cameraPanel: byId("camera-panel"),
  prompt: byId("prompt"),
  countdown: byId("countdown"),
  video: byId("video"),
  steps: byId("steps"),
  canvas: byId("canvas"),
  faceResult: byId("face-result"),
  faceWord: byId("face-word"),
  faceReason: byId("face-reason"),
  retake: byId("retake"),
  screening: byId("screening"),
  retryScreening: byId("retry-screening"),
  cancel: byId("cancel"),
  holder: byId("holder"),
  holderForm: byId("holder-form"),
  password: byId("password"),
  password2: byId("password2"),
  guardians: byId("guardians"),
  threshold: byId("threshold"),
  finish: byId("finish"),
  holderError: byId("holder-error"),
  done: byId("done"),
  doneStatus: byId("done-status"),
  passportId: byId("passport-id"),
  kycLevel: byId("kyc-level"),
  guardianShares: byId("guardian-shares"),
  next: byId("next"),
};
const sections = [ui.signin, ui.start, ui.face, ui.holder, ui.done];

const capture = faceCapture(ui);
const staff = staffSignIn("mip.enrol.token", {
  signedOut() {
    reset();
    show(ui.signin);
  },
  signedIn: toStart,
});
const session = staff.session;
/** {id, challengeId, poses} of the open enrolment. */
let enrolment = null;
const SCREENING_POLL_MS = 1000;

function show(...visible) {
  for (const s of sections) s.hidden = !visible.includes(s);
}

function setState(name) {
  // For styling and tests: idle, capturing, checking, face_ok, face_refused, enrolled.
  document.body.dataset.state = name;
}

function reset() {
  capture.cancel();
  enrolment = null;
  ui.steps.replaceChildren();
  ui.faceResult.hidden = true;
  ui.faceResult.className = "result";
  delete ui.faceResult.dataset.code;
  ui.retake.hidden = true;
  ui.screening.hidden = true;
  delete ui.screening.dataset.state;
  ui.retryScreening.hidden = true;
  ui.holderForm.reset();
  for (const box of [ui.startError, ui.holderError]) clearError(box);
  setState("idle");
}

function toStart() {
  reset();
  show(ui.start);
  ui.startButton.disabled = false;
  ui.startButton.focus();
}

// ---- enrolment and face check ----------------------------------------------------------
async function startEnrolment() {
  clearError(ui.startError);
  ui.startButton.disabled = true;
  const r = await api("POST", "/enrolments", undefined, session);
  ui.startButton.disabled = false;
  if (!r.ok) {
    if (r.code !== "unauthenticated") showError(ui.startError, r, SENTENCES);
    return;
  }
  enrolment = { id: r.data.session_id };
  await runFaceCheck(r.data.challenge);
}

/** The enrolment's session id goes in its header only: never in a URL (history, Referer). */
function inSession(current) {
  return { "X-MIP-Enrolment-Session": current.id };
}

async function retake() {
  if (!enrolment) return;
  ui.retake.hidden = true;
  const r = await api("POST", "/enrolments/current/challenge", undefined, session,
    inSession(enrolment));
  if (!r.ok) {
    if (r.code !== "unauthenticated") faceRefused(r);
    return;
  }
  await runFaceCheck(r.data);
}

async function runFaceCheck(challenge) {
  const current = enrolment;
  current.challengeId = challenge.challenge_id;
  current.poses = challenge.poses.map(String);
  show(ui.face);
  ui.faceResult.hidden = true;
  ui.cancel.hidden = false;
  capture.showSteps(current.poses);
  if (!(await capture.open())) {
    faceRefused({ code: "camera_unavailable", message: "" });
    return;
  }
  setState("capturing");
  const captures = capture.run(current.poses, async () => {
    if (enrolment !== current) return;
    setState("checking");
    capture.checking();
    const frames = (await Promise.all(captures)).map((image) => ({ image }));
    const r = await api("POST", "/enrolments/current/frames",
      { challenge_id: current.challengeId, frames }, session, inSession(current));
    frames.length = 0; // the images are dropped as soon as they are sent
    if (enrolment !== current) return;
    if (r.ok && r.status === 202 && r.data && r.data.status === "in_review") {
      faceInReview(r.data.review_id);
    } else if (r.ok) {
      faceAccepted();
      followScreening(current);
    } else if (r.code !== "unauthenticated") faceRefused(r);
  });
}

// ---- the consortium-wide screening, in the background ----------------------------------
const SCREENING_TEXT = {
  pending: "Screening with the other organisations… you can go on meanwhile.",
  clear: "SCREENING CLEAR: no organisation has this face enrolled.",
  reviewed: "SCREENING REVIEWED: a registrar found a different person.",
  abandoned: "The screening was interrupted (the gateway restarted). Start again.",
};

async function followScreening(current) {
  // Polls the enrolment's state until the screening is decided (none at an all-orgs
  // gateway: `screening` is null there and nothing is shown).
  while (enrolment === current) {
    const r = await api("GET", "/enrolments/current", undefined, session, inSession(current));
    if (enrolment !== current || !r.ok) return;
    const state = r.data.screening;
    if (!state) return;
    showScreening(current, r.data);
    if (state !== "pending") return;
    await new Promise((resolve) => { setTimeout(resolve, SCREENING_POLL_MS); });
  }
}

function showScreening(current, data) {
  const state = data.screening;
  ui.screening.hidden = false;
  ui.screening.dataset.state = state;
  ui.retryScreening.hidden = state !== "failed";
  if (state === "in_review") {
    show(ui.face);
    ui.screening.hidden = true;
    faceInReview(data.review_id);
    return;
  }
  if (state === "failed") {
    ui.screening.textContent = "SCREENING DID NOT COMPLETE: an organisation did not answer "
      + `in time (${String(data.screening_error)}). Nothing is enrolled; retry it.`;
    return;
  }
  ui.screening.textContent = SCREENING_TEXT[state] || `Screening: ${state}`;
}

async function retryScreening() {
  const current = enrolment;
  if (!current) return;
  ui.retryScreening.hidden = true;
  const r = await api("POST", "/enrolments/current/screening", undefined, session,
    inSession(current));
  if (!r.ok) {
    if (r.code !== "unauthenticated") showError(ui.holderError, r, SENTENCES);
    return;
  }
  followScreening(current);
}

function faceInReview(reviewId) {
  // Not a refusal and not a pass: the screening found candidates, and a registrar of this
  // org resolves the review with the candidates' orgs before this enrolment can go on.
  setState("face_in_review");
  ui.cameraPanel.hidden = true;
  ui.faceResult.hidden = false;
  ui.faceResult.className = "result checking";
  ui.faceWord.textContent = "SENT TO REVIEW";
  ui.faceReason.textContent = "This face resembles a passport already enrolled. A registrar "
    + "must review it before a passport can be registered.";
  const detail = document.createElement("code");
  detail.className = "result-code";
  detail.textContent = ` (in_review: review ${String(reviewId)})`;
  ui.faceReason.append(detail);
  ui.faceResult.dataset.code = "in_review";
  ui.retake.hidden = true;
  ui.cancel.hidden = false;
  ui.cancel.focus();
}

function faceAccepted() {
  setState("face_ok");
  ui.cameraPanel.hidden = true;
  ui.faceResult.hidden = false;
  ui.faceResult.className = "result verified";
  ui.faceWord.textContent = "FACE CHECKED";
  ui.faceReason.textContent = "Live, clear, and no one enrolled has this face.";
  ui.cancel.hidden = true;
  show(ui.face, ui.holder);
  ui.password.focus();
}

function faceRefused(r) {
  setState("face_refused");
  ui.cameraPanel.hidden = true;
  ui.faceResult.hidden = false;
  ui.faceResult.className = "result refused";
  const duplicate = r.code === "duplicate_face";
  ui.faceWord.textContent = duplicate ? "ALREADY ENROLLED" : "REFUSED";
  ui.faceReason.textContent = SENTENCES[r.code] || "The face check did not pass.";
  const detail = document.createElement("code");
  detail.className = "result-code";
  detail.textContent = r.message ? ` (${r.code}: ${r.message})` : ` (${r.code})`;
  ui.faceReason.append(detail);
  ui.faceResult.dataset.code = r.code;
  // A duplicate is the screening's answer, not a bad capture: a retake would not change it.
  ui.retake.hidden = duplicate || r.code === "camera_unavailable"
    || r.code === "enrolment_expired";
  ui.cancel.hidden = false;
  (ui.retake.hidden ? ui.cancel : ui.retake).focus();
}

// ---- the holder's part ------------------------------------------------------------------
async function finish() {
  clearError(ui.holderError);
  const current = enrolment;
  if (!current) return;
  if (ui.password.value !== ui.password2.value) {
    showError(ui.holderError, { code: "password_mismatch", message: "" }, SENTENCES);
    ui.password2.focus();
    return;
  }
  ui.finish.disabled = true;
  try {
    let r = await api("PUT", "/enrolments/current/password",
      { password: ui.password.value }, session, inSession(current));
    if (r.ok) {
      // Cleared as soon as the gateway has wrapped the secret under it.
      ui.password.value = "";
      ui.password2.value = "";
      const guardians = ui.guardians.value.split(/\s+/).map((g) => g.trim()).filter(Boolean);
      const threshold = Number.parseInt(ui.threshold.value || "0", 10);
      r = await api("PUT", "/enrolments/current/guardians",
        { guardians, threshold: Number.isNaN(threshold) ? 0 : threshold }, session,
        inSession(current));
    }
    if (r.ok) {
      r = await api("POST", "/enrolments/current/finish", undefined, session, inSession(current));
    }
    if (!r.ok) {
      if (r.code !== "unauthenticated") {
        showError(ui.holderError, r, SENTENCES);
        (r.code === "weak_password" ? ui.password : ui.guardians).focus();
      }
      return;
    }
    setState("enrolled");
    ui.passportId.textContent = r.data.passport_id;
    ui.kycLevel.textContent = String(r.data.kyc_level);
    ui.guardianShares.textContent = String(r.data.guardian_shares);
    ui.doneStatus.textContent = "Passport registered on the ledger.";
    enrolment = null;
    show(ui.done);
    ui.next.focus();
  } finally {
    ui.finish.disabled = false;
  }
}

// ---- wiring -----------------------------------------------------------------------------
ui.startButton.addEventListener("click", startEnrolment);
ui.retake.addEventListener("click", retake);
ui.retryScreening.addEventListener("click", retryScreening);
ui.cancel.addEventListener("click", toStart);
ui.next.addEventListener("click", toStart);
ui.holderForm.addEventListener("submit", (event) => {
  event.preventDefault();
  finish();
});
window.addEventListener("pagehide", capture.stop);

staff.start();
