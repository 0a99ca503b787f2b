/* Pharmacy counter page: pharmacist token -> prescription id -> live face check of the
 * patient (camera, or one photo per prompt when there is no camera) -> verified / refused
 * -> dispense one fill. A plain ES module, no build step, no network access beyond the
 * gateway; the API call, the staff sign-in and the camera capture are the desks' own
 * (gateway/web/pages/common/, served at /desk/).
 *
 * Privacy: frames live in memory only until they are sent; the camera is opened for one
 * check and closed right after it; the page never receives or shows a match score.
 */

import { api } from "/desk/api.js";
import { TIMING as CAPTURE, canvasJpeg, faceCapture, promptsFor } from "/desk/capture.js";
import { byId } from "/desk/dom.js";
import { staffSignIn } from "/desk/staff.js";

// The capture schedule (capture.js), and the size photos picked in the upload fallback are
// re-encoded to. Exposed read-only so the browser test's simulated camera can follow the
// same timeline.
const TIMING = Object.freeze({ ...CAPTURE, uploadMaxSide: 1280 });
window.MIP_COUNTER_TIMING = TIMING;

// Refusal and error codes -> what the pharmacist can tell the patient. Scores are never
// shown (the API does not send any).
const REASONS = {
  face_mismatch: "The face does not match the patient enrolled for this prescription.",
  mismatch: "The face does not match the patient enrolled for this prescription.",
  no_match: "The face does not match the patient enrolled for this prescription.",
  not_matched: "The face does not match the patient enrolled for this prescription.",
  no_reference: "This patient has no face enrolled for pharmacy checks.",
  no_face_reference: "This patient has no face enrolled for pharmacy checks.",
  liveness_failed: "The live check did not pass. Follow each prompt and try again.",
  sequence: "The head movements did not follow the prompts. Try again, following each prompt.",
  timing: "The photos were not taken in time order. Try again.",
  timeout: "The check took too long. Try again.",
  no_motion: "No head movement was seen. Try again, following each prompt.",
  planar: "The camera saw a flat picture, not a live face.",
  identity: "A different face appeared during the check.",
  frame_rejected: "The face was not clearly visible. Improve the light and try again.",
  frame_count: "Not enough photos were taken. Try again.",
  no_face: "No face was found. The patient should face the camera.",
  multiple_faces: "More than one face is in view. Only the patient should be in view.",
  quality_failed: "The face was not clearly visible. Improve the light and try again.",
  quality_too_small: "The face is too far from the camera.",
  quality_blurry: "The picture is blurred. Hold still and try again.",
  quality_exposure: "The picture is too dark or too bright.",
  quality_pose: "The patient should face the camera.",
  bad_signature: "The ledger refused the request's signature.",
  bad_image: "A photo could not be read. Check the camera and try again.",
  bad_capture: "The photos did not arrive as expected. Try again.",
  image_corrupt: "A photo could not be read. Try again.",
  unsupported_format: "A photo is in a format that is not supported.",
  image_too_large: "A photo is too large.",
  image_too_small: "A photo is too small.",
  locked: "Too many failed attempts at this counter: the prescription is locked here for a while.",
  challenge_expired: "The check took too long. Start again.",
  challenge_used: "This check was already answered. Start again.",
  challenge_not_found: "This check is no longer valid. Start again.",
  pickup_used: "This check was already answered. Start again.",
  not_your_pickup: "This pickup was started by another pharmacist.",
  not_verified: "The patient has not been verified for this pickup.",
  already_dispensed: "This pickup was already dispensed.",
  expired: "This prescription or its grant has expired.",
  not_found: "No prescription with this ID was found.",
  no_grant: "The patient has not granted this pharmacy access to this prescription.",
  access_denied: "The patient has not granted this pharmacy access to this prescription.",
  precondition_failed: "This prescription cannot be dispensed now (no fills left, revoked or expired).",
  conflict: "This prescription cannot be dispensed now.",
  replay: "This request was already handled.",
  invalid_request: "The request was not accepted. Check the prescription ID.",
  unauthenticated: "Your sign-in was not accepted. Sign in again.",
  forbidden: "Your account may not dispense at this pharmacy.",
  wrong_role: "Your account may not dispense at this pharmacy.",
  wrong_org: "Your account may not dispense at this pharmacy.",
  ledger_unavailable: "The ledger is not reachable. Try again in a moment.",
  internal_error: "The gateway failed. Try again.",
  network: "The gateway cannot be reached. Check the connection.",
};

const ui = {
  signin: byId("signin"),
  lookup: byId("lookup"),
  lookupForm: byId("lookup-form"),
  prescriptionId: byId("prescription-id"),
  start: byId("start"),
  lookupError: byId("lookup-error"),
  check: byId("check"),
  rxDrug: byId("rx-drug"),
  rxStrength: byId("rx-strength"),
  rxQuantity: byId("rx-quantity"),
  cameraPanel: byId("camera-panel"),
  prompt: byId("prompt"),
  countdown: byId("countdown"),
  video: byId("video"),
  steps: byId("steps"),
  uploadPanel: byId("upload-panel"),
  uploadFields: byId("upload-fields"),
  uploadCountdown: byId("upload-countdown"),
  uploadSend: byId("upload-send"),
  canvas: byId("canvas"),
  outcome: byId("outcome"),
  result: byId("result"),
  resultWord: byId("result-word"),
  resultReason: byId("result-reason"),
  dispense: byId("dispense"),
  retry: byId("retry"),
  cancel: byId("cancel"),
  next: byId("next"),
  dispenseStatus: byId("dispense-status"),
};

const capture = faceCapture(ui);
const staff = staffSignIn("mip.counter.token", {
  signedOut() {
    reset();
    show(ui.signin);
  },
  signedIn: toLookup,
});
const session = staff.session;
/** The current pickup: {id, prescriptionId, challengeId, poses, receivedAt, expiresAt}. */
let pickup = null;

function reasonText(code) {
  return REASONS[code] || `The check did not pass (${code}).`;
}

// ---- views ----------------------------------------------------------------------------------
function show(...sections) {
  for (const s of [ui.signin, ui.lookup, ui.check, ui.outcome]) s.hidden = !sections.includes(s);
}

function toLookup() {
  reset();
  show(ui.lookup);
  ui.prescriptionId.value = "";
  ui.prescriptionId.focus();
}

function reset() {
  capture.cancel();
  pickup = null;
  ui.lookupError.hidden = true;
  ui.start.disabled = false;
  ui.cameraPanel.hidden = true;
  ui.uploadPanel.hidden = true;
  ui.uploadFields.replaceChildren();
  ui.steps.replaceChildren();
  ui.result.className = "result";
  ui.resultWord.textContent = "";
  ui.resultReason.textContent = "";
  ui.dispense.disabled = true;
  ui.dispense.hidden = false;
  ui.retry.hidden = true;
  ui.cancel.hidden = false;
  delete ui.result.dataset.reason;
  ui.dispenseStatus.textContent = "";
  document.body.dataset.state = "idle";
}

function setState(name) {
  // For styling and for tests: idle, capturing, checking, verified, refused, dispensed.
  document.body.dataset.state = name;
}

function showResult(kind, word, reason) {
  show(ui.check, ui.outcome);
  ui.cancel.hidden = true;
  ui.result.className = `result ${kind}`;
  ui.resultWord.textContent = word;
  ui.resultReason.textContent = reason || "";
}

function lookupError(code) {
  ui.lookupError.textContent = reasonText(code);
  ui.lookupError.hidden = false;
  ui.start.disabled = false;
  ui.prescriptionId.select();
}

// ---- pickup -------------------------------------------------------------------------------
async function startPickup(prescriptionId) {
  ui.start.disabled = true;
  ui.lookupError.hidden = true;
  const r = await api("POST", "/pharmacy/pickups", { prescription_id: prescriptionId }, session);
  if (!r.ok) {
    if (r.code !== "unauthenticated") lookupError(r.code);
    return;
  }
  const receivedAt = performance.now();
  const body = r.data;
  const poses = body.challenge.poses.map(String);
  pickup = {
    id: body.pickup_id,
    prescriptionId,
    challengeId: body.challenge.challenge_id,
    poses,
    receivedAt,
    expiresAt: receivedAt + Number(body.challenge.expires_in_s) * 1000,
  };
  ui.rxDrug.textContent = body.prescription.drug;
  ui.rxStrength.textContent = body.prescription.strength;
  ui.rxQuantity.textContent = String(body.prescription.quantity);
  show(ui.check);
  capture.showSteps(poses);
  const camera = await capture.open();
  if (camera) {
    runCameraCheck();
  } else {
    runUploadCheck();
  }
}

// ---- camera ---------------------------------------------------------------------------------
function runCameraCheck() {
  setState("capturing");
  const current = pickup;
  // Each frame is uploaded as soon as it is captured, so the gateway analyses it while
  // the patient goes on turning; after the last prompt only the verdict is left to wait for.
  // The gateway times a frame by its arrival and wants them in capture order, so each
  // upload starts once the previous one is answered: a slow upload delays the next one,
  // never lets it overtake.
  const uploads = [];
  const captured = capture.run(current.poses, () => {
    if (pickup === current) finishStream(current, uploads);
  });
  let chain = Promise.resolve();
  captured.forEach((frame, frameIndex) => {
    chain = chain.then(() => frame).then((image) => {
      if (pickup !== current) return { ok: false, code: "cancelled" };
      return api("PUT", `/pharmacy/pickups/${encodeURIComponent(current.id)}/frames/${frameIndex}`,
        { challenge_id: current.challengeId, image }, session);
    });
    uploads.push(chain);
  });
}

// ---- upload fallback ----------------------------------------------------------------------
function runUploadCheck() {
  setState("capturing");
  ui.uploadPanel.hidden = false;
  const texts = promptsFor(pickup.poses);
  const picked = texts.map(() => null);
  const inputs = texts.map((text, i) => {
    const wrap = document.createElement("div");
    wrap.className = "upload-field";
    const label = document.createElement("label");
    label.htmlFor = `photo-${i}`;
    label.textContent = `${i + 1}. ${text}`;
    const input = document.createElement("input");
    input.type = "file";
    input.id = `photo-${i}`;
    input.accept = "image/*";
    input.setAttribute("capture", "user");
    input.disabled = i > 0; // one at a time, in order, so capture times follow the prompts
    wrap.append(label, input);
    ui.uploadFields.append(wrap);
    return input;
  });
  inputs.forEach((input, i) => {
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      // Choosing again for an earlier prompt voids the later ones (time order).
      for (let j = i + 1; j < inputs.length; j += 1) {
        picked[j] = null;
        inputs[j].value = "";
        inputs[j].disabled = true;
      }
      picked[i] = file ? { file } : null;
      if (file && i + 1 < inputs.length) inputs[i + 1].disabled = false;
      ui.uploadSend.disabled = picked.some((p) => p === null);
    });
  });
  ui.uploadSend.disabled = true;
  inputs[0].focus();
  const current = pickup;
  const tick = () => {
    if (pickup !== current) return;
    const left = Math.max(0, Math.ceil((current.expiresAt - performance.now()) / 1000));
    ui.uploadCountdown.textContent = `${left} s left`;
    if (left > 0) capture.later(tick, 500);
  };
  tick();
  ui.uploadPanel.onsubmit = async (event) => {
    event.preventDefault();
    if (picked.some((p) => p === null)) return;
    ui.uploadSend.disabled = true;
    let frames;
    try {
      frames = await Promise.all(picked.map(async (p) => ({
        image: await photoJpeg(p.file),
      })));
    } catch (_) {
      showResult("refused", "REFUSED", reasonText("image_corrupt"));
      setState("refused");
      return;
    }
    if (pickup === current) submitFrames(frames);
  };
}

async function photoJpeg(file) {
  // Re-encode: applies EXIF orientation, strips metadata, keeps each frame well under the
  // API's 2 MiB limit.
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, TIMING.uploadMaxSide / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvasJpeg(canvas);
}

// ---- submit and result --------------------------------------------------------------------
function showChecking() {
  setState("checking");
  capture.checking();
  showResult("checking", "Checking…", "");
}

async function finishStream(current, uploads) {
  showChecking();
  const sent = await Promise.all(uploads);
  if (pickup !== current) return;
  const failed = sent.find((r) => !r.ok);
  // An upload the gateway refused (e.g. the challenge expired) is the result to show.
  const r = failed || await api("POST", `/pharmacy/pickups/${encodeURIComponent(current.id)}/verdict`, {
    challenge_id: current.challengeId, frames: uploads.length,
  }, session);
  showVerdict(current, r);
}

async function submitFrames(frames) {
  showChecking();
  const current = pickup;
  const r = await api("POST", `/pharmacy/pickups/${encodeURIComponent(current.id)}/frames`, {
    challenge_id: current.challengeId, frames,
  }, session);
  frames.length = 0; // drop the images as soon as they are sent
  showVerdict(current, r);
}

function showVerdict(current, r) {
  if (pickup !== current) return;
  ui.cameraPanel.hidden = true;
  ui.uploadPanel.hidden = true;
  if (r.ok && r.data && r.data.result === "verified") {
    setState("verified");
    showResult("verified", "VERIFIED", "The patient matches this prescription.");
    ui.dispense.disabled = false;
    ui.dispense.focus();
    return;
  }
  if (r.code === "unauthenticated") return;
  const code = r.ok ? String((r.data && r.data.reason) || "refused") : r.code;
  setState("refused");
  showResult("refused", "REFUSED", reasonText(code));
  ui.result.dataset.reason = code;
  // A refused pickup is spent; another attempt is a new pickup with a new challenge
  // (the gateway counts the failures and locks the prescription after too many).
  ui.retry.hidden = code === "locked";
  ui.next.focus();
}

async function dispense() {
  if (!pickup) return;
  ui.dispense.disabled = true;
  ui.dispenseStatus.textContent = "Dispensing…";
  const r = await api("POST", `/pharmacy/pickups/${encodeURIComponent(pickup.id)}/dispense`,
    undefined, session);
  if (r.ok && r.data && r.data.dispensed) {
    setState("dispensed");
    ui.dispenseStatus.textContent =
      `Dispensed: fill ${r.data.fills_used} of ${r.data.fills_allowed}.`;
    ui.next.focus();
    return;
  }
  if (r.code === "unauthenticated") return;
  ui.dispenseStatus.textContent = `Not dispensed: ${reasonText(r.code)}`;
}

// ---- wiring -------------------------------------------------------------------------------
ui.lookupForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = ui.prescriptionId.value.trim();
  if (id) startPickup(id);
});
ui.dispense.addEventListener("click", dispense);
ui.next.addEventListener("click", toLookup);
ui.cancel.addEventListener("click", toLookup); // stops the timers and the camera
ui.retry.addEventListener("click", () => {
  const again = pickup && pickup.prescriptionId;
  if (!again) return;
  reset();
  show(ui.lookup);
  ui.prescriptionId.value = again;
  startPickup(again);
});
window.addEventListener("pagehide", capture.stop);
window.addEventListener("hashchange", () => {
  // A kiosk link opened on an already loaded page only changes the fragment.
  if (window.location.hash.includes("token=")) {
    staff.takeFromUrl();
    if (session.token()) staff.signedIn();
  }
});

staff.start();
