/* Enrolment desk: registrar token -> open an enrolment (POST /api/v1/enrolments, which
 * returns a liveness challenge) -> the person follows the prompts in front of the camera,
 * the frames go in one request (POST .../frames: liveness, quality, then duplicate
 * screening against everyone enrolled) -> the person types their own password and names
 * guardians (PUT .../password, PUT .../guardians) -> POST .../finish registers the passport.
 *
 * The outcome of each step is shown as the gateway answers it (its code and message): a
 * face that matches someone enrolled already is `duplicate_face`, shown as such and not
 * retaken. Frames live in memory until sent; the camera is opened for the face check only.
 * No capture time is sent: the gateway times the frames by the request's arrival. */
"use strict";

(() => {
  const { byId, staffSession, api, showError, clearError } = window.MipDesk;

  // The counter's capture schedule (gateway/web/static/counter.js TIMING): seconds from
  // the camera's first frame. Exposed so the browser test's simulated camera follows it.
  const TIMING = Object.freeze({
    frontalS: 2.0,
    poseS: 2.0,
    frontalCaptures: Object.freeze([1.0, 1.5]),
    poseCaptures: Object.freeze([1.2, 1.8]),
    maxSide: 640,
    jpegQuality: 0.85,
  });
  window.MIP_ENROL_TIMING = TIMING;

  const PROMPTS = {
    frontal: "Look straight at the camera",
    center: "Look straight at the camera again",
    left: "Turn your head to your left",
    right: "Turn your head to your right",
    up: "Tilt your head up",
    down: "Tilt your head down",
  };

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
    multiple_faces: "More than one face is in view. Only the person enrolling should be in view.",
  };

  const ui = {
    notice: byId("notice"),
    staffStatus: byId("staff-status"),
    signOut: byId("sign-out"),
    signin: byId("signin"),
    signinForm: byId("signin-form"),
    token: byId("token"),
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

  const session = staffSession("mip.enrol.token", signOut);
  /** {id, challengeId, poses} of the open enrolment. */
  let enrolment = null;
  let stream = null;
  let timers = [];

  function show(...visible) {
    for (const s of sections) s.hidden = !visible.includes(s);
  }

  function setState(name) {
    // For styling and tests: idle, capturing, checking, face_ok, face_refused, enrolled.
    document.body.dataset.state = name;
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  function reset() {
    for (const t of timers) clearTimeout(t);
    timers = [];
    stopCamera();
    enrolment = null;
    ui.steps.replaceChildren();
    ui.faceResult.hidden = true;
    ui.faceResult.className = "result";
    delete ui.faceResult.dataset.code;
    ui.retake.hidden = true;
    ui.holderForm.reset();
    for (const box of [ui.startError, ui.holderError]) clearError(box);
    setState("idle");
  }

  function signOut(message) {
    session.clear();
    reset();
    ui.staffStatus.textContent = "Not signed in";
    ui.signOut.hidden = true;
    show(ui.signin);
    if (message) showNotice(message);
    ui.token.value = "";
    ui.token.focus();
  }

  function toStart() {
    reset();
    show(ui.start);
    ui.startButton.disabled = false;
    ui.startButton.focus();
  }

  function signedIn() {
    ui.staffStatus.textContent = "Signed in";
    ui.signOut.hidden = false;
    toStart();
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

  async function retake() {
    if (!enrolment) return;
    ui.retake.hidden = true;
    const r = await api("POST", `/enrolments/${enrolment.id}/challenge`, undefined, session);
    if (!r.ok) {
      if (r.code !== "unauthenticated") faceRefused(r);
      return;
    }
    await runFaceCheck(r.data);
  }

  function promptsFor(poses) {
    return [PROMPTS.frontal, ...poses.map((p) => PROMPTS[p] || `Pose: ${p}`)];
  }

  async function runFaceCheck(challenge) {
    const current = enrolment;
    current.challengeId = challenge.challenge_id;
    current.poses = challenge.poses.map(String);
    show(ui.face);
    ui.faceResult.hidden = true;
    ui.cancel.hidden = false;
    ui.steps.replaceChildren(...promptsFor(current.poses).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    if (!(await openCamera())) {
      faceRefused({ code: "camera_unavailable", message: "" });
      return;
    }
    setState("capturing");
    const windows = [{ from: 0, to: TIMING.frontalS, captures: TIMING.frontalCaptures }];
    current.poses.forEach((_, i) => {
      const from = TIMING.frontalS + i * TIMING.poseS;
      windows.push({ from, to: from + TIMING.poseS, captures: TIMING.poseCaptures });
    });
    const texts = promptsFor(current.poses);
    const start = performance.now();
    const captures = [];
    windows.forEach((w, i) => {
      timers.push(setTimeout(() => showPrompt(i, texts[i], w.to - w.from), w.from * 1000));
      for (const c of w.captures) {
        captures.push(new Promise((resolve) => {
          const due = start + (w.from + c) * 1000;
          timers.push(setTimeout(() => resolve(captureFrame()), due - performance.now()));
        }));
      }
    });
    const end = windows[windows.length - 1].to;
    timers.push(setTimeout(async () => {
      stopCamera();
      if (enrolment !== current) return;
      setState("checking");
      ui.prompt.textContent = "Checking…";
      ui.countdown.textContent = "";
      const frames = (await Promise.all(captures)).map((image) => ({ image }));
      const r = await api("POST", `/enrolments/${current.id}/frames`,
        { challenge_id: current.challengeId, frames }, session);
      frames.length = 0; // the images are dropped as soon as they are sent
      if (enrolment !== current) return;
      if (r.ok) faceAccepted();
      else if (r.code !== "unauthenticated") faceRefused(r);
    }, end * 1000));
  }

  function showPrompt(index, text, seconds) {
    ui.prompt.textContent = text;
    [...ui.steps.children].forEach((li, i) => {
      li.className = i < index ? "done" : i === index ? "current" : "";
      if (i === index) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    let left = Math.ceil(seconds);
    ui.countdown.textContent = String(left);
    const tick = () => {
      left -= 1;
      if (left > 0) {
        ui.countdown.textContent = String(left);
        timers.push(setTimeout(tick, 1000));
      }
    };
    timers.push(setTimeout(tick, 1000));
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

  // ---- camera -----------------------------------------------------------------------------
  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return false;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
    } catch (_) {
      stream = null;
      return false;
    }
    ui.video.srcObject = stream;
    ui.cameraPanel.hidden = false;
    try {
      await ui.video.play();
    } catch (_) {
      // a muted stream may autoplay; frames also come from events
    }
    await new Promise((resolve) => {
      if (ui.video.readyState >= 2 && ui.video.videoWidth > 0) {
        resolve();
        return;
      }
      ui.video.addEventListener("loadeddata", () => resolve(), { once: true });
    });
    return true;
  }

  function stopCamera() {
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
    ui.video.srcObject = null;
  }

  function captureFrame() {
    const v = ui.video;
    const scale = Math.min(1, TIMING.maxSide / Math.max(v.videoWidth, v.videoHeight));
    ui.canvas.width = Math.round(v.videoWidth * scale);
    ui.canvas.height = Math.round(v.videoHeight * scale);
    ui.canvas.getContext("2d").drawImage(v, 0, 0, ui.canvas.width, ui.canvas.height);
    return new Promise((resolve, reject) => {
      ui.canvas.toBlob((blob) => {
        if (!blob) {
          reject(new Error("encoding failed"));
          return;
        }
        blob.arrayBuffer().then((buf) => resolve(base64(new Uint8Array(buf))), reject);
      }, "image/jpeg", TIMING.jpegQuality);
    });
  }

  function base64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
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
      let r = await api("PUT", `/enrolments/${current.id}/password`,
        { password: ui.password.value }, session);
      if (r.ok) {
        // Cleared as soon as the gateway has wrapped the secret under it.
        ui.password.value = "";
        ui.password2.value = "";
        const guardians = ui.guardians.value.split(/\s+/).map((g) => g.trim()).filter(Boolean);
        const threshold = Number.parseInt(ui.threshold.value || "0", 10);
        r = await api("PUT", `/enrolments/${current.id}/guardians`,
          { guardians, threshold: Number.isNaN(threshold) ? 0 : threshold }, session);
      }
      if (r.ok) r = await api("POST", `/enrolments/${current.id}/finish`, undefined, session);
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
  ui.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = ui.token.value.trim();
    if (!value) return;
    session.set(value);
    ui.token.value = "";
    showNotice("");
    signedIn();
  });
  ui.signOut.addEventListener("click", () => signOut(""));
  ui.startButton.addEventListener("click", startEnrolment);
  ui.retake.addEventListener("click", retake);
  ui.cancel.addEventListener("click", toStart);
  ui.next.addEventListener("click", toStart);
  ui.holderForm.addEventListener("submit", (event) => {
    event.preventDefault();
    finish();
  });
  window.addEventListener("pagehide", stopCamera);

  showNotice(session.takeFromUrl());
  if (session.token()) signedIn();
  else signOut("");
})();
