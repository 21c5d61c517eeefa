// The applicant's capture page: consent, ID card, live face clip, result.
// Everything stays in memory: the card photo and the clip go to the session and nowhere else.

import { api, listReasons, Problem, reasonText, setMeter, t, upload } from "./common.js";
import { analyse, CameraHints, detectFaces } from "./camera.js";
import { canSeal, seal } from "./seal.js";

const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const base = `/v1/capture/${encodeURIComponent(token)}`;
const $ = (sel) => document.querySelector(sel);
const live = $("#live");

let stream = null; // the open camera, if any
let cardLoop = null;
let busy = false;
let uploadKey = null; // the session's public key: photos and clips are encrypted to it
let timeWarning = null; // the timer that offers more time before the link expires

const WARN_BEFORE_MS = 120_000;

const PROGRESS = { consent: "consent", document: "document", "face-intro": "face", face: "face",
  uploading: "face", retry: "face", result: "result", error: "result" };

function show(step) {
  for (const section of document.querySelectorAll("section[data-step]")) {
    section.hidden = section.dataset.step !== step;
  }
  const current = PROGRESS[step];
  for (const li of document.querySelectorAll("[data-progress]")) {
    if (li.dataset.progress === current) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
  document.body.dataset.step = step;
  // Move focus to the new step's heading so screen readers announce it.
  const heading = document.querySelector(`section[data-step="${step}"] h1`);
  if (heading) heading.focus();
}

function announce(text) {
  live.textContent = "";
  // A fresh text node makes screen readers read it again even when unchanged.
  setTimeout(() => { live.textContent = text; }, 30);
}

function stopCamera() {
  if (cardLoop) { clearInterval(cardLoop); cardLoop = null; }
  if (stream) { for (const track of stream.getTracks()) track.stop(); stream = null; }
}

async function openCamera(video, facingMode) {
  stopCamera();
  stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  video.srcObject = stream;
  await video.play();
  return stream;
}

function fail(problem) {
  stopCamera();
  const text = problem instanceof Problem ? problem.message : t("error_generic");
  $("#error-text").textContent = text;
  $("#error-text").dataset.code = problem.code || "";
  show("error");
}

// --- results -------------------------------------------------------------------------------

function showResult(step) {
  stopCamera();
  const outcome = step.decision ? step.decision.decision : step.outcome;
  const key = { pass: "pass", review: "review", fail: "fail" }[outcome] || "alternative";
  $("#h-result").textContent = t(`result_${key}`);
  $("#result-text").textContent = t(`result_${key}_text`);
  document.body.dataset.outcome = outcome;
  const messages = step.decision ? step.decision.messages : step.messages || [];
  // A pass needs no list of reasons; anything else explains itself in plain words.
  listReasons($("#result-reasons"), key === "pass" ? [] : messages.filter((m) => m.severity !== "info"));
  $("#alternatives").hidden = !(key === "alternative" || key === "fail");
  show("result");
}

function showRetry(step) {
  stopCamera();
  listReasons($("#retry-reasons"), (step.messages || []).filter((m) => m.severity !== "info"));
  $("#retry-left").textContent = t("retry_left", { n: step.attempts_left });
  show("retry");
}

function afterAttempt(step) {
  if (step.state === "completed" || step.decision) showResult(step);
  else if (step.outcome === "retry") showRetry(step);
  else show("face-intro");
}

// --- consent -------------------------------------------------------------------------------

async function consent(choice) {
  if (busy) return;
  busy = true;
  try {
    const step = await api(`${base}/consent`, { method: "POST", body: { choice } });
    if (choice === "accept") startDocument();
    else showResult(step);
  } catch (err) {
    fail(err);
  } finally {
    busy = false;
  }
}

// --- ID card -------------------------------------------------------------------------------

async function startDocument() {
  show("document");
  const hint = $("#doc-hint");
  const video = $("#doc-video");
  hint.textContent = t("hint_starting_camera");
  try {
    await openCamera(video, "environment");
  } catch {
    hint.textContent = t("hint_no_camera");
    return;
  }
  const hints = new CameraHints();
  cardLoop = setInterval(() => {
    if (busy || !video.videoWidth) return;
    const verdict = hints.card(analyse(video, 0.08, 0.15, 0.84, 0.7));
    if (hint.textContent !== t(verdict.key)) hint.textContent = t(verdict.key);
    if (verdict.capture) captureCard(video);
  }, 250);
}

function captureCard(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => blob && sendCard(blob, "card.jpg"), "image/jpeg", 0.92);
}

/** The part as it goes on the wire: encrypted to the session's key whenever the browser can. */
async function wire(blob, use, name) {
  if (!uploadKey) return [blob, name];
  return [await seal(blob, uploadKey, use), `${use}.jwe`];
}

async function sendCard(blob, name) {
  if (busy) return;
  busy = true;
  const hint = $("#doc-hint");
  hint.textContent = t("uploading");
  try {
    const form = new FormData();
    form.append("image", ...(await wire(blob, "document", name)));
    const step = await upload(`${base}/document`, form, (p) => {
      hint.textContent = t("upload_percent", { percent: p });
    });
    stopCamera();
    if (step.decision) showResult(step);
    else show("face-intro");
  } catch (err) {
    if (err instanceof Problem && err.status === 422) {
      // Not a readable card (cut off, blurred, glare, ...): say why and let them retake it.
      hint.textContent = err.message;
      announce(err.message);
    } else {
      fail(err);
    }
  } finally {
    busy = false;
  }
}

// --- the live face clip --------------------------------------------------------------------

function actionItems(actions) {
  const ol = $("#actions");
  ol.replaceChildren(
    ...actions.map((a) => {
      const li = document.createElement("li");
      li.dataset.action = a.action;
      const icon = document.createElement("span");
      icon.className = `icon icon-${a.action}`;
      icon.setAttribute("aria-hidden", "true");
      const text = document.createElement("span");
      text.textContent = t(`action_${a.action}`);
      li.append(icon, text);
      return li;
    }),
  );
  return [...ol.children];
}

function pickMimeType() {
  const types = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4"];
  return types.find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type)) || "";
}

async function startFace() {
  if (busy) return;
  busy = true;
  let challenge;
  try {
    challenge = await api(`${base}/challenge`, { method: "POST" });
  } catch (err) {
    busy = false;
    fail(err);
    return;
  }
  show("face");
  const items = actionItems(challenge.actions);
  const hint = $("#face-hint");
  const video = $("#face-video");
  const meter = $("#record-progress");
  setMeter(meter, 0);
  try {
    await openCamera(video, "user");
  } catch {
    busy = false;
    hint.textContent = t("hint_no_camera");
    return;
  }
  const mimeType = pickMimeType();
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType, videoBitsPerSecond: 2_500_000 } : {});
  const chunks = [];
  recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
  const hints = new CameraHints();
  const seconds = challenge.record_seconds + 0.4;
  recorder.start(500);
  const started = performance.now();
  let announced = -1;
  let faces = null; // the browser's latest face boxes, refreshed twice a second when it can
  const detecting = setInterval(async () => { faces = await detectFaces(video); }, 500);
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      setMeter(meter, (100 * elapsed) / seconds);
      const now = challenge.actions.findIndex((a) => elapsed >= a.start_s && elapsed < a.end_s);
      items.forEach((li, i) => {
        li.classList.toggle("now", i === now);
        li.classList.toggle("done", challenge.actions[i].end_s <= elapsed);
      });
      if (now !== announced) {
        announced = now;
        announce(now >= 0 ? `${t("action_now")} ${t(`action_${challenge.actions[now].action}`)}` : t("face_get_ready"));
      }
      if (video.videoWidth) {
        hint.textContent = t(hints.face(analyse(video, 0.25, 0.1, 0.5, 0.8), faces, video.videoWidth).key);
      }
      if (elapsed >= seconds) { clearInterval(tick); resolve(); }
    }, 100);
  });
  clearInterval(detecting);
  recorder.stop();
  await stopped;
  stopCamera();
  const type = (recorder.mimeType || mimeType || "video/webm").split(";")[0];
  const clip = new Blob(chunks, { type });
  await sendClip(clip, type, challenge.challenge);
}

async function sendClip(clip, type, spec) {
  show("uploading");
  const meter = $("#upload-progress");
  setMeter(meter, 0);
  try {
    const form = new FormData();
    form.append("clip", ...(await wire(clip, "clip", type === "video/mp4" ? "clip.mp4" : "clip.webm")));
    form.append("challenge", spec);
    const step = await upload(`${base}/clip`, form, (p) => {
      setMeter(meter, p);
      $("#upload-hint").textContent = t("upload_percent", { percent: p });
    });
    afterAttempt(step);
  } catch (err) {
    if (err instanceof Problem && [409, 410].includes(err.status) && err.code.startsWith("challenge")) {
      // The challenge expired or was used: nothing was spent, start again.
      announce(err.message);
      show("face-intro");
    } else {
      fail(err);
    }
  } finally {
    busy = false;
  }
}

// --- alternatives --------------------------------------------------------------------------

function showAlternatives() {
  stopCamera();
  $("#h-result").textContent = t("result_alternative");
  $("#result-text").textContent = t("result_alternative_text");
  listReasons($("#result-reasons"), []);
  $("#alternatives").hidden = false;
  show("result");
}

// --- time: warn before the link expires, and let the person extend it (WCAG 2.2.1) -----------

function scheduleTimeWarning(state) {
  clearTimeout(timeWarning);
  const expires = Date.parse(state.token_expires_at);
  const canExtend = Date.parse(state.session_expires_at) > expires;
  const delay = Math.max(0, expires - Date.now() - WARN_BEFORE_MS);
  if (!canExtend) return;
  timeWarning = setTimeout(() => {
    if (document.body.dataset.step === "result") return;
    $("#time-warning").hidden = false;
    announce(t("time_warning"));
    $("#time-warning button").focus();
  }, delay);
}

async function extendTime() {
  try {
    scheduleTimeWarning(await api(`${base}/extend`, { method: "POST" }));
    $("#time-warning").hidden = true;
    announce(t("time_extended"));
  } catch (err) {
    fail(err);
  }
}

// --- start ---------------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (!action) return;
  ({
    "consent-accept": () => consent("accept"),
    "consent-decline": () => consent("decline"),
    "doc-capture": () => { const v = $("#doc-video"); if (v.videoWidth) captureCard(v); },
    "face-start": () => startFace(),
    retry: () => show("face-intro"),
    "go-alternative": () => showAlternatives(),
    extend: () => extendTime(),
  })[action]?.();
});

$("#doc-file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) sendCard(file, file.name);
  event.target.value = "";
});

async function start() {
  try {
    const state = await api(`${base}/state`);
    uploadKey = canSeal() ? state.upload_key : null;
    scheduleTimeWarning(state);
    if (state.state === "awaiting_consent") show("consent");
    else if (state.state === "awaiting_document") startDocument();
    else if (state.outcome === "retry") showRetry(state);
    else show("face-intro");
  } catch (err) {
    fail(err);
  }
}

start();
