/* Camera and liveness capture, shared by the pharmacy counter (/counter/) and the
 * enrolment desk (/enrol/): the prompts one at a time with a countdown ("Look straight at
 * the camera", then one per challenge pose; left/right are the person's own, as
 * face_engine.quality defines yaw), frames taken on a fixed schedule, scaled, JPEG-encoded.
 *
 * Privacy: frames live in memory only until the page sends them; the camera is opened for
 * one check and closed as soon as the frames are taken. No capture time is kept or sent:
 * the gateway times the frames by their arrival. */

// Capture schedule (seconds from the moment the camera shows its first frame). One frontal
// prompt, then one prompt per requested pose, each held for a fixed time, with captures
// well inside each prompt so a person (or a fake camera) a little early or late still
// yields at least one frame per pose. The pages expose it read-only so the browser tests'
// simulated camera can follow the same timeline.
export const TIMING = Object.freeze({
  frontalS: 2.0,
  poseS: 2.0,
  frontalCaptures: Object.freeze([1.0, 1.5]),
  poseCaptures: Object.freeze([1.2, 1.8]),
  maxSide: 640, // captured frames are scaled so their longer side is at most this
  jpegQuality: 0.85,
});

const PROMPTS = {
  frontal: "Look straight at the camera",
  center: "Look straight at the camera again",
  left: "Turn your head to your left",
  right: "Turn your head to your right",
  up: "Tilt your head up",
  down: "Tilt your head down",
};

/** The prompt texts of a challenge: the frontal one, then one per pose. */
export function promptsFor(poses) {
  return [PROMPTS.frontal, ...poses.map((p) => PROMPTS[p] || `Pose: ${p}`)];
}

/** The canvas as base64 JPEG. */
export function canvasJpeg(canvas) {
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

/** The face check over the page's elements {cameraPanel, prompt, countdown, video, steps,
 * canvas}. Every timer it sets (and those set through `later`) is cleared by `cancel`,
 * which also closes the camera. */
export function faceCapture(ui) {
  let stream = null;
  let timers = [];

  function later(fn, ms) {
    timers.push(setTimeout(fn, ms));
  }

  function cancel() {
    for (const t of timers) clearTimeout(t);
    timers = [];
    stopCamera();
  }

  function showSteps(poses) {
    ui.steps.replaceChildren(...promptsFor(poses).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
  }

  /** Opens the front camera and waits for its first frame; false when there is none (no
   * getUserMedia, permission refused, no device). */
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
      video.addEventListener("loadeddata", () => resolve(), { once: true });
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
    return canvasJpeg(ui.canvas);
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
        later(tick, 1000);
      }
    };
    later(tick, 1000);
  }

  /** Runs the prompts for `poses` on the open camera and takes the frames on schedule:
   * returns one promise per frame (base64 JPEG), in capture order. After the last prompt
   * the camera is closed and `onEnd()` runs. */
  function run(poses, onEnd) {
    // Prompt windows [from, to) and capture instants, in seconds from `start`.
    const windows = [{ from: 0, to: TIMING.frontalS, captures: TIMING.frontalCaptures }];
    poses.forEach((_, i) => {
      const from = TIMING.frontalS + i * TIMING.poseS;
      windows.push({ from, to: from + TIMING.poseS, captures: TIMING.poseCaptures });
    });
    const texts = promptsFor(poses);
    const start = performance.now();
    const frames = [];
    windows.forEach((w, i) => {
      later(() => showPrompt(i, texts[i], w.to - w.from), w.from * 1000);
      for (const c of w.captures) {
        const due = start + (w.from + c) * 1000;
        frames.push(new Promise((resolve) => {
          later(() => resolve(captureFrame()), due - performance.now());
        }));
      }
    });
    const end = windows[windows.length - 1].to;
    later(() => {
      stopCamera();
      onEnd();
    }, end * 1000);
    return frames;
  }

  /** The prompt area while the gateway checks the frames. */
  function checking() {
    ui.prompt.textContent = "Checking…";
    ui.countdown.textContent = "";
  }

  return { later, cancel, showSteps, open: openCamera, stop: stopCamera, run, checking };
}
