// The clerk console: sign in with a store's API key, start a verification for a walk-in
// customer, show the capture link as a QR code, watch the status live (server-sent events),
// and switch to the manual check of a resident-registration abstract. It never receives or
// shows the customer's face or card: only states, decisions and reasons.

import { api, listReasons, Problem, t } from "./common.js";

const $ = (sel) => document.querySelector(sel);
const KEY = "faceproof.console.key"; // sessionStorage: gone when the tab closes
let key = sessionStorage.getItem(KEY) || "";
let me = null;
let current = null; // the session being watched
let watcher = null; // AbortController of the event stream
let lastRequest = null; // store, purpose and locale of the last verification, for "again"

const auth = () => ({ Authorization: `Bearer ${key}` });

function say(text) {
  $("#con-live").textContent = text;
}

async function signIn(candidate) {
  key = candidate;
  me = await api("/v1/whoami", { headers: auth() });
  sessionStorage.setItem(KEY, key);
  $("#whoami").textContent = t("con_signed_in", {
    tenant: me.tenant_id,
    store: me.store_id || t("con_all_stores"),
  });
  const store = $("#store");
  store.value = me.store_id || store.value;
  store.readOnly = Boolean(me.store_id);
  $("#signin").hidden = true;
  $("#workspace").hidden = false;
  $("#h-new").focus?.();
}

function signOut() {
  if (watcher) watcher.abort();
  sessionStorage.removeItem(KEY);
  key = "";
  me = null;
  current = null;
  $("#workspace").hidden = true;
  $("#current").hidden = true;
  $("#manual").hidden = true;
  $("#signin").hidden = false;
  $("#api-key").value = "";
}

function render(session) {
  current = { ...current, ...session };
  $("#session-id").textContent = session.id;
  const state = $("#session-state");
  state.textContent = t(`state_${session.state}`);
  state.className = "status";
  $("#session-attempts").textContent = t("con_attempts_value", {
    used: session.attempts_used,
    limit: session.attempts_limit,
  });
  const decided = session.decision;
  $("#decision").hidden = !decided;
  if (decided) {
    const value = $("#decision-value");
    value.textContent = t(`decision_${decided.decision}`);
    value.className = `status ${decided.decision}`;
    listReasons($("#decision-reasons"), decided.messages);
    say(`${t("con_decision")}: ${t(`decision_${decided.decision}`)}`);
  } else {
    say(`${t("con_state")}: ${t(`state_${session.state}`)}`);
  }
}

/** Follow GET /v1/sessions/{id}/events (SSE) with the key in a header, which EventSource
 *  cannot send: fetch's body stream, split into events. Reconnects until the session is final. */
async function watch(id) {
  if (watcher) watcher.abort();
  const controller = new AbortController();
  watcher = controller;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(`/v1/sessions/${encodeURIComponent(id)}/events`, {
        headers: auth(),
        signal: controller.signal,
      });
      if (!response.ok) throw new Problem(response.status, await response.json());
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
      if (current && ["completed", "expired"].includes(current.state)) return;
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof Problem && err.status >= 400 && err.status < 500) return;
      await new Promise((r) => setTimeout(r, 2000)); // network trouble: try again shortly
    }
  }
}

async function qrFor(url) {
  const response = await fetch("/v1/capture-qr", {
    method: "POST",
    headers: { ...auth(), "content-type": "application/json" },
    body: JSON.stringify({ capture_url: url }),
  });
  if (!response.ok) throw new Problem(response.status, await response.json());
  const img = $("#qr");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await response.blob());
}

async function startVerification(request) {
  lastRequest = request;
  const session = await api("/v1/sessions", {
    method: "POST",
    headers: auth(),
    body: { ...request, channel: "in_store" },
  });
  current = session;
  $("#manual").hidden = true;
  $("#current").hidden = false;
  $("#capture-link").href = session.capture_url;
  await qrFor(session.capture_url);
  render(session);
  $("#h-current").setAttribute("tabindex", "-1");
  $("#h-current").focus();
  watch(session.id);
}

function formRequest() {
  return {
    store_id: $("#store").value.trim(),
    purpose: $("#purpose").value,
    locale: $("#customer-locale").value,
  };
}

function showError(el, err) {
  el.textContent = err instanceof Problem ? err.message : t("error_generic");
}

$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#signin-error").textContent = "";
  try {
    await signIn($("#api-key").value.trim());
  } catch (err) {
    key = "";
    showError($("#signin-error"), err);
  }
});

$("#new-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#new-error").textContent = "";
  try {
    await startVerification(formRequest());
  } catch (err) {
    showError($("#new-error"), err);
  }
});

$("#manual-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#manual-error").textContent = "";
  try {
    // A decided session (e.g. consent declined) takes no more steps: check on a new one.
    if (!current || current.decision) await startVerification(lastRequest || formRequest());
    const step = await api(`/v1/sessions/${encodeURIComponent(current.id)}/manual-check`, {
      method: "POST",
      headers: auth(),
      body: {
        clerk_id: $("#clerk-id").value.trim(),
        document_serial: $("#serial").value.trim(),
        abstract_issued_on: $("#issued-on").value,
        holder_matches: $("#holder-matches").checked,
        number: $("#number").value.trim(),
      },
    });
    $("#number").value = ""; // the number is not kept on screen either
    $("#manual").hidden = true;
    render({ ...current, state: step.state, attempts_used: step.attempts_used, decision: step.decision });
  } catch (err) {
    showError($("#manual-error"), err);
  }
});

document.addEventListener("click", (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (action === "signout") signOut();
  if (action === "again" && lastRequest) startVerification(lastRequest).catch((e) => showError($("#new-error"), e));
  if (action === "manual") {
    $("#manual").hidden = false;
    $("#issued-on").value = new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10); // today in Korea
    $("#clerk-id").focus();
  }
});

if (key) signIn(key).catch(() => signOut());
