/* Pharmacy counter page: pharmacist token -> prescription id -> live face check of the
 * patient (camera, or one photo per prompt when there is no camera) -> verified / refused
 * -> dispense one fill. Plain script, no build step, no network access beyond the gateway.
 *
 * Privacy: frames live in memory only until they are sent; the camera is opened for one
 * check and closed right after it; the page never receives or shows a match score.
 */
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "mip.counter.token";

  // Capture schedule (seconds from the moment the camera shows its first frame). One
  // frontal prompt, then one prompt per requested pose, each held for a fixed time, with
  // captures well inside each prompt so a person (or a fake camera) a little early or late
  // still yields at least one frame per pose. Exposed read-only so the browser test's
  // simulated camera can follow the same timeline.
  const TIMING = Object.freeze({
    frontalS: 2.0,
    poseS: 2.0,
    frontalCaptures: Object.freeze([1.0, 1.5]),
    poseCaptures: Object.freeze([1.2, 1.8]),
    maxSide: 640, // captured frames are scaled so their longer side is at most this
    jpegQuality: 0.85,
    uploadMaxSide: 1280, // photos picked in the upload fallback are re-encoded to this
  });
  window.MIP_COUNTER_TIMING = TIMING;

  const PROMPTS = {
    frontal: "Look straight at the camera",
    center: "Look straight at the camera again",
    left: "Turn your head to your left",
    right: "Turn your head to your right",
    up: "Tilt your head up",
    down: "Tilt your head down",
  };

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

  const $ = (id) => {
    const el = document.getElementById(id);
    if (!el) throw new Error(`missing element #${id}`);
    return el;
  };

  const ui = {
    notice: $("notice"),
    staffStatus: $("staff-status"),
    signOut: $("sign-out"),
    signin: $("signin"),
    signinForm: $("signin-form"),
    token: $("token"),
    lookup: $("lookup"),
    lookupForm: $("lookup-form"),
    prescriptionId: $("prescription-id"),
    start: $("start"),
    lookupError: $("lookup-error"),
    check: $("check"),
    rxDrug: $("rx-drug"),
    rxStrength: $("rx-strength"),
    rxQuantity: $("rx-quantity"),
    cameraPanel: $("camera-panel"),
    prompt: $("prompt"),
    countdown: $("countdown"),
    video: $("video"),
    steps: $("steps"),
    uploadPanel: $("upload-panel"),
    uploadFields: $("upload-fields"),
    uploadCountdown: $("upload-countdown"),
    uploadSend: $("upload-send"),
    canvas: $("canvas"),
    outcome: $("outcome"),
    result: $("result"),
    resultWord: $("result-word"),
    resultReason: $("result-reason"),
    dispense: $("dispense"),
    retry: $("retry"),
    cancel: $("cancel"),
    next: $("next"),
    dispenseStatus: $("dispense-status"),
  };

  /** The current pickup: {id, prescriptionId, challengeId, poses, receivedAt, expiresAt}. */
  let pickup = null;
  let stream = null;
  let timers = [];

  // ---- token ------------------------------------------------------------------------------
  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function takeTokenFromUrl() {
    // Kiosk setup: /counter/#token=... The fragment is never sent to the server, so it
    // stays out of access logs, proxies and Referer headers; it is moved to sessionStorage
    // and erased from the address bar and history at once. A ?token= query is refused:
    // by the time the page runs it has already been sent to (and maybe logged by) servers.
    const url = new URL(window.location.href);
    const fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
    const fromFragment = fragment.get("token");
    if (url.searchParams.has("token")) {
      url.searchParams.delete("token");
      showNotice("A token in the address (?token=) is not accepted because servers log it. "
        + "Sign in below, or use #token= for kiosk setup, and have the token replaced.");
    }
    if (fromFragment) {
      sessionStorage.setItem(TOKEN_KEY, fromFragment);
      fragment.delete("token");
      const rest = fragment.toString();
      url.hash = rest ? `#${rest}` : "";
    }
    if (fromFragment || url.href !== window.location.href) {
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
  }

  // ---- API ----------------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token() || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (_) {
      return { ok: false, status: 0, code: "network", data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.ok) return { ok: true, status: response.status, code: null, data };
    const code = data && data.error && typeof data.error.code === "string"
      ? data.error.code : `http_${response.status}`;
    // Only the gateway's own "unauthenticated" means the token is bad; a 401 from the
    // ledger (e.g. a bad signature on an attestation) is an error to show, not a sign-out.
    if (code === "unauthenticated") signOut("Your sign-in was not accepted. Sign in again.");
    return { ok: false, status: response.status, code, data };
  }

  function reasonText(code) {
    return REASONS[code] || `The check did not pass (${code}).`;
  }

  // ---- views ----------------------------------------------------------------------------------
  function show(...sections) {
    for (const s of [ui.signin, ui.lookup, ui.check, ui.outcome]) s.hidden = !sections.includes(s);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    reset();
    ui.staffStatus.textContent = "Not signed in";
    ui.signOut.hidden = true;
    show(ui.signin);
    if (message) showNotice(message);
    ui.token.value = "";
    ui.token.focus();
  }

  function signedIn() {
    ui.staffStatus.textContent = "Signed in";
    ui.signOut.hidden = false;
    toLookup();
  }

  function toLookup() {
    reset();
    show(ui.lookup);
    ui.prescriptionId.value = "";
    ui.prescriptionId.focus();
  }

  function reset() {
    for (const t of timers) clearTimeout(t);
    timers = [];
    stopCamera();
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
    const r = await api("POST", "/pharmacy/pickups", { prescription_id: prescriptionId });
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
    buildSteps(poses);
    const camera = await openCamera();
    if (camera) {
      runCameraCheck();
    } else {
      runUploadCheck();
    }
  }

  function promptsFor(poses) {
    return [PROMPTS.frontal, ...poses.map((p) => PROMPTS[p] || `Pose: ${p}`)];
  }

  function buildSteps(poses) {
    ui.steps.replaceChildren(...promptsFor(poses).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
  }

  // ---- camera ---------------------------------------------------------------------------------
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
      // autoplay of a muted stream is allowed; if it still fails, frames come from events
    }
    await firstFrame(ui.video);
    return true;
  }

  function firstFrame(video) {
    return new Promise((resolve) => {
      if (video.readyState >= 2 && video.videoWidth > 0) {
        resolve();
        return;
      }
      const done = () => {
        video.removeEventListener("loadeddata", done);
        resolve();
      };
      video.addEventListener("loadeddata", done);
    });
  }

  function stopCamera() {
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
    ui.video.srcObject = null;
  }

  function captureFrame() {
    // Draw the current video frame, unmirrored (the preview's mirroring is CSS only).
    const v = ui.video;
    const scale = Math.min(1, TIMING.maxSide / Math.max(v.videoWidth, v.videoHeight));
    ui.canvas.width = Math.round(v.videoWidth * scale);
    ui.canvas.height = Math.round(v.videoHeight * scale);
    ui.canvas.getContext("2d").drawImage(v, 0, 0, ui.canvas.width, ui.canvas.height);
    // No capture time is sent: the gateway times each frame by its arrival.
    return canvasJpeg(ui.canvas);
  }

  function runCameraCheck() {
    setState("capturing");
    const current = pickup;
    const start = performance.now();
    // Prompt windows [from, to) and capture instants, in seconds from `start`.
    const windows = [{ from: 0, to: TIMING.frontalS, captures: TIMING.frontalCaptures }];
    current.poses.forEach((_, i) => {
      const from = TIMING.frontalS + i * TIMING.poseS;
      windows.push({ from, to: from + TIMING.poseS, captures: TIMING.poseCaptures });
    });
    const texts = promptsFor(current.poses);
    // Each frame is uploaded as soon as it is captured, so the gateway analyses it while
    // the patient goes on turning; after the last prompt only the verdict is left to wait for.
    // The gateway times a frame by its arrival and wants them in capture order, so each
    // upload starts once the previous one is answered: a slow upload delays the next one,
    // never lets it overtake.
    const uploads = [];
    let chain = Promise.resolve();
    let index = 0;
    windows.forEach((w, i) => {
      timers.push(setTimeout(() => showPrompt(i, texts[i], w.to - w.from), w.from * 1000));
      for (const c of w.captures) {
        const due = start + (w.from + c) * 1000;
        const frameIndex = index;
        index += 1;
        const captured = new Promise((resolve) => {
          timers.push(setTimeout(() => resolve(captureFrame()), due - performance.now()));
        });
        chain = chain.then(() => captured).then((image) => {
          if (pickup !== current) return { ok: false, code: "cancelled" };
          return api("PUT", `/pharmacy/pickups/${encodeURIComponent(current.id)}/frames/${frameIndex}`,
            { challenge_id: current.challengeId, image });
        });
        uploads.push(chain);
      }
    });
    const end = windows[windows.length - 1].to;
    timers.push(setTimeout(() => {
      stopCamera();
      if (pickup === current) finishStream(current, uploads);
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
      if (left > 0) timers.push(setTimeout(tick, 500));
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
    ui.prompt.textContent = "Checking…";
    ui.countdown.textContent = "";
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
    });
    showVerdict(current, r);
  }

  async function submitFrames(frames) {
    showChecking();
    const current = pickup;
    const r = await api("POST", `/pharmacy/pickups/${encodeURIComponent(current.id)}/frames`, {
      challenge_id: current.challengeId, frames,
    });
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
    const r = await api("POST", `/pharmacy/pickups/${encodeURIComponent(pickup.id)}/dispense`);
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

  // ---- helpers ------------------------------------------------------------------------------
  function canvasJpeg(canvas) {
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => {
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
    const chunk = 0x8000;
    for (let i = 0; i < bytes.length; i += chunk) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
    }
    return btoa(binary);
  }

  // ---- wiring -------------------------------------------------------------------------------
  ui.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = ui.token.value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    ui.token.value = "";
    ui.notice.hidden = true;
    signedIn();
  });
  ui.signOut.addEventListener("click", () => signOut(""));
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
  window.addEventListener("pagehide", stopCamera);
  window.addEventListener("hashchange", () => {
    // A kiosk link opened on an already loaded page only changes the fragment.
    if (window.location.hash.includes("token=")) {
      takeTokenFromUrl();
      if (token()) signedIn();
    }
  });

  takeTokenFromUrl();
  if (token()) signedIn();
  else signOut("");
})();
