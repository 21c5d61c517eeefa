// The operator dashboard: sign in with the carrier's admin API key (kept in this tab's
// sessionStorage only, sent as a Bearer token), then the tenant's decisions over time, pass
// rates by channel and store, liveness rejects by attack type, attempts per session, capture
// latency percentiles, the models and threshold in force, and the audit log, page by page.
// Charts are uPlot (vendored, window.uPlot); each has a table beside it for screen readers.
// Nothing here ever receives a face, a card image or a template: the API has none to give.

import { api, locale, Problem, t } from "./common.js";
import { fillTable, number, renderModels } from "./transparency.js";

const $ = (sel) => document.querySelector(sel);
const KEY = "faceproof.dashboard.key";
const OUTCOMES = ["pass", "review", "fail", "alternative_required"];
const AUDIT_PAGE = 20;

let key = sessionStorage.getItem(KEY) || "";
const charts = new Map(); // element id -> uPlot instance
let auditCursors = [null]; // `before` of each page seen; the last is the current page
let auditNext = null;

const auth = () => ({ Authorization: `Bearer ${key}` });
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
const dayFormat = new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" });
const timeFormat = new Intl.DateTimeFormat(locale, {
  dateStyle: "short",
  timeStyle: "medium",
  timeZone: "Asia/Seoul",
});

function say(text) {
  $("#dash-live").textContent = text;
}

function outcomeColour(outcome) {
  return { pass: css("--ok"), review: css("--warn"), fail: css("--bad"), alternative_required: css("--alt") }[
    outcome
  ];
}

function rateMeter(rate, label) {
  const wrap = document.createElement("span");
  wrap.className = "dash-rate";
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = 1;
  meter.value = rate;
  meter.setAttribute("aria-label", label);
  const text = document.createElement("span");
  text.textContent = percent.format(rate);
  wrap.append(meter, text);
  return wrap;
}

// --- charts ---------------------------------------------------------------------------------

function chartWidth(el) {
  return Math.max(200, Math.floor(el.getBoundingClientRect().width || el.parentElement.clientWidth) - 8);
}

function draw(id, options, data) {
  const el = document.getElementById(id);
  charts.get(id)?.destroy();
  el.replaceChildren();
  const chart = new window.uPlot({ width: chartWidth(el), height: 240, ...options }, data, el);
  charts.set(id, chart);
  return chart;
}

/** x positions 0..n-1 labelled with `labels` (a category axis); when they do not fit, every
 * so many, counting back from the last. */
function categoryAxis(labels, labelWidth = 0) {
  const n = labels.length;
  const plotWidth = (u) => u.bbox.width / window.uPlot.pxRatio || u.width - 60;
  const step = (u) => (labelWidth ? Math.max(1, Math.ceil((n * labelWidth) / Math.max(1, plotWidth(u)))) : 1);
  return {
    scale: { time: false, range: [-0.5, n - 0.5] },
    axis: {
      splits: (u) => labels.map((_, i) => i).filter((i) => (n - 1 - i) % step(u) === 0),
      values: (_u, splits) => splits.map((i) => labels[i] ?? ""),
      stroke: css("--ink"),
      grid: { show: false },
    },
  };
}

const integers = (_u, splits) => splits.map((s) => (Number.isInteger(s) ? number.format(s) : ""));
const yAxis = (label, values = integers) => ({ label, stroke: css("--ink"), values, grid: { stroke: css("--line") } });
const countRange = (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.1))];

function drawDecisions(days) {
  const labels = days.map((d) => dayFormat.format(new Date(`${d.day}T00:00:00Z`)));
  const cat = categoryAxis(labels, 80); // px per day label
  draw(
    "chart-decisions",
    {
      scales: { x: cat.scale, y: { range: countRange } },
      axes: [cat.axis, yAxis(t("dash_count"))],
      series: [
        { label: t("dash_day"), value: (_u, i) => labels[i] ?? "" },
        ...OUTCOMES.map((o) => ({
          label: t(`dash_outcome_${o}`),
          stroke: outcomeColour(o),
          width: 2,
          points: { show: true, size: 6, fill: outcomeColour(o) },
          value: (_u, v) => (v == null ? "" : number.format(v)),
        })),
      ],
    },
    [labels.map((_, i) => i), ...OUTCOMES.map((o) => days.map((d) => d.counts[o] ?? 0))],
  );
}

function drawBars(id, xLabel, labels, seriesList) {
  if (labels.length === 0) {
    charts.get(id)?.destroy();
    charts.delete(id);
    document.getElementById(id).replaceChildren();
    return;
  }
  const cat = categoryAxis(labels);
  const bars = window.uPlot.paths.bars({ size: [0.6, 64] });
  draw(
    id,
    {
      scales: { x: cat.scale, y: { range: seriesList[0].range ?? countRange } },
      axes: [cat.axis, yAxis(seriesList[0].axis, seriesList[0].values)],
      legend: { show: seriesList.length > 1 },
      series: [
        { label: xLabel, value: (_u, i) => labels[i] ?? "" },
        ...seriesList.map((s) => ({
          label: s.label,
          stroke: s.colour,
          fill: s.fill ?? s.colour,
          width: s.points ? 0 : 1,
          paths: s.points ? () => null : bars,
          points: s.points ? { show: true, size: 11, fill: s.colour, stroke: s.colour } : { show: false },
        })),
      ],
    },
    [labels.map((_, i) => i), ...seriesList.map((s) => s.data)],
  );
}

// --- panels ---------------------------------------------------------------------------------

function renderSummary(s) {
  $("#dash-range").textContent = t("dash_range", {
    from: timeFormat.format(new Date(s.since)),
    to: timeFormat.format(new Date(s.until)),
  });
  $("#dash-totals").replaceChildren(
    ...OUTCOMES.map((o) => {
      const li = document.createElement("li");
      li.className = `status ${o}`;
      li.dataset.outcome = o;
      li.textContent = `${t(`dash_outcome_${o}`)}: ${number.format(s.totals[o] ?? 0)}`;
      return li;
    }),
  );
  drawDecisions(s.decisions_by_day);
  fillTable(
    "table-decisions",
    s.decisions_by_day.map((d) => [d.day, ...OUTCOMES.map((o) => number.format(d.counts[o] ?? 0))]),
    5,
  );

  const rates = (rows, name) =>
    rows.map((r) => [
      name(r.key),
      number.format(r.decided),
      number.format(r.counts.pass ?? 0),
      rateMeter(r.pass_rate, `${t("dash_pass_rate")} ${name(r.key)}`),
    ]);
  fillTable("table-channel", rates(s.by_channel, (k) => t(`dash_channel_${k}`)), 4);
  fillTable("table-store", rates(s.by_store, (k) => k), 4);

  const rejects = s.liveness_rejects;
  drawBars(
    "chart-liveness",
    t("dash_attack"),
    rejects.map((r) => t(`dash_attack_${r.attack}`)),
    [{ label: t("dash_count"), axis: t("dash_count"), colour: css("--bad"), data: rejects.map((r) => r.count) }],
  );
  fillTable(
    "table-liveness",
    rejects.map((r) => [t(`dash_attack_${r.attack}`), locale === "ko" ? r.message_ko : r.message_en, number.format(r.count)]),
    3,
  );
  fillTable(
    "table-attempts",
    s.attempts_per_session.map((b) => [number.format(b.attempts), number.format(b.sessions)]),
    2,
  );

  const routes = s.latency.map((r) => r.route.replace("/v1/capture/{token}/", ""));
  const ms = (v) => (v == null ? "–" : `${number.format(Math.round(v * 1000))} ms`);
  drawBars(
    "chart-latency",
    t("dash_route"),
    routes,
    [
      ["p50", css("--ok")],
      ["p95", css("--warn")],
      ["p99", css("--bad")],
    ].map(([p, colour]) => ({
      label: p,
      axis: "ms",
      values: (_u, splits) => splits.map((v) => number.format(Math.round(v))),
      range: (_u, _min, max) => [0, Math.max(10, max * 1.1)],
      colour,
      points: true,
      data: s.latency.map((r) => (r[`${p}_s`] == null ? null : r[`${p}_s`] * 1000)),
    })),
  );
  fillTable(
    "table-latency",
    s.latency.map((r) => [`${r.method} ${r.route}`, ms(r.p50_s), ms(r.p95_s), ms(r.p99_s)]),
    4,
  );
}

function renderTransparency(tr) {
  renderModels(tr, "table-models", "dash");
  $("#dash-rules").textContent = t("dash_rules_value", {
    version: tr.policy.rules_version,
    lines: tr.policy.max_new_lines,
    days: tr.policy.window_days,
  });
  $("#dash-retention").textContent = t("dash_retention_value", { days: tr.retention_days });
}

function auditDetails(data) {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(", ") : v}`)
    .join(" ");
}

async function loadAudit(before) {
  const query = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  if (before != null) query.set("before", String(before));
  const page = await api(`/v1/audit?${query}`, { headers: auth() });
  fillTable(
    "table-audit",
    page.entries.map((e) => {
      const session = document.createElement("span");
      session.className = "mono";
      session.title = e.session_id ?? "";
      session.textContent = e.session_id ? `${e.session_id.slice(0, 12)}…` : "–";
      return [String(e.id), timeFormat.format(new Date(e.ts)), e.event, session, auditDetails(e.data)];
    }),
    5,
  );
  auditNext = page.next_before;
  const chain = $("#dash-chain");
  chain.textContent = page.chain.intact ? t("dash_chain_ok") : t("dash_chain_broken");
  chain.className = page.chain.intact ? "status pass" : "status fail";
  $('[data-action="audit-older"]').disabled = auditNext == null;
  $('[data-action="audit-newer"]').disabled = auditCursors.length <= 1;
  $("#dash-audit-page").textContent = t("dash_page", { n: auditCursors.length });
}

async function loadAll() {
  const days = $("#dash-days").value;
  const [summary, transparency] = await Promise.all([
    api(`/v1/dashboard/summary?days=${encodeURIComponent(days)}`, { headers: auth() }),
    api("/v1/transparency"),
  ]);
  renderSummary(summary);
  renderTransparency(transparency);
  auditCursors = [null];
  await loadAudit(null);
  document.body.dataset.loaded = "true";
  say(t("dash_loaded"));
}

async function signIn(candidate) {
  key = candidate;
  $("#dash-signin").hidden = true;
  $("#dash-workspace").hidden = false; // visible first, so that charts measure their width
  try {
    await loadAll();
  } catch (err) {
    $("#dash-workspace").hidden = true;
    $("#dash-signin").hidden = false;
    throw err;
  }
  sessionStorage.setItem(KEY, key);
  $("#h-dash-decisions").setAttribute("tabindex", "-1");
  $("#h-dash-decisions").focus();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  key = "";
  charts.forEach((c) => c.destroy());
  charts.clear();
  delete document.body.dataset.loaded;
  $("#dash-workspace").hidden = true;
  $("#dash-signin").hidden = false;
  $("#dash-key").value = "";
  $("#dash-key").focus();
}

function showError(target, err) {
  $(target).textContent = err instanceof Problem ? err.message : t("error_generic");
}

$("#dash-signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#dash-signin-error").textContent = "";
  try {
    await signIn($("#dash-key").value.trim());
  } catch (err) {
    key = "";
    showError("#dash-signin-error", err);
  }
});

$("#dash-period-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#dash-error").textContent = "";
  try {
    await loadAll();
  } catch (err) {
    showError("#dash-error", err);
  }
});

document.addEventListener("click", async (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (!action) return;
  try {
    if (action === "signout") signOut();
    if (action === "audit-older" && auditNext != null) {
      auditCursors.push(auditNext);
      await loadAudit(auditNext);
    }
    if (action === "audit-newer" && auditCursors.length > 1) {
      auditCursors.pop();
      await loadAudit(auditCursors[auditCursors.length - 1]);
    }
  } catch (err) {
    showError("#dash-error", err);
  }
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    charts.forEach((chart, id) => chart.setSize({ width: chartWidth(document.getElementById(id)), height: 240 }));
  }, 150);
});

if (key) {
  signIn(key).catch(() => {
    sessionStorage.removeItem(KEY);
    key = "";
  });
}
