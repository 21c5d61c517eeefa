// The public transparency page: the static explanations are in the page (both languages come
// from the message catalogues); the numbers in force come from GET /v1/transparency: models
// with versions, SHA-256 and licences, the matcher's threshold and FMR target, the measured
// accuracy (docs/model-card.md), liveness checks and thresholds, rules, retention.
// The dashboard imports the table helpers and the models panel from here.

import { api, locale, t } from "./common.js";

const $ = (sel) => document.querySelector(sel);
export const number = new Intl.NumberFormat(locale);
const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 2 });

/** A table row from cell values (text or nodes); the first cell is a row header. */
export function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((value, i) => {
    const cell = document.createElement(i === 0 ? "th" : "td");
    if (i === 0) cell.scope = "row";
    if (value instanceof Node) cell.append(value);
    else cell.textContent = String(value);
    tr.append(cell);
  });
  return tr;
}

/** Replace a table's body with rows, or one "none" row spanning `columns`. */
export function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  if (rows.length > 0) {
    body.replaceChildren(...rows.map(row));
    return;
  }
  const td = document.createElement("td");
  td.colSpan = columns;
  td.textContent = t("dash_none");
  const tr = document.createElement("tr");
  tr.append(td);
  body.replaceChildren(tr);
}

function shortHash(sha256) {
  const span = document.createElement("span");
  span.className = "mono";
  span.title = sha256;
  span.textContent = `${sha256.slice(0, 12)}…`;
  return span;
}

/** The models table and the threshold facts (ids `${prefix}-threshold|fmr|calibration`). */
export function renderModels(tr, tableId, prefix) {
  const m = tr.matcher;
  $(`#${prefix}-threshold`).textContent = `${m.threshold.toFixed(3)} (${m.primary}${
    m.secondary ? ` + ${m.secondary}` : ""
  })`;
  $(`#${prefix}-fmr`).textContent = `${m.fmr_target.toExponential(0)} (${percent.format(m.fmr_target)})`;
  $(`#${prefix}-calibration`).textContent = t("dash_calibration_value", {
    genuine: number.format(m.n_genuine),
    impostor: number.format(m.n_impostor),
    at: m.calibrated_at.slice(0, 10),
  });
  fillTable(
    tableId,
    tr.models.map((x) => [x.model_id, t(`tr_task_${x.task}`), `${x.package} ${x.package_version}`, x.licence, shortHash(x.sha256)]),
    5,
  );
}

function render(tr) {
  renderModels(tr, "tr-table-models", "tr");
  $("#tr-attempts").textContent = t("tr_attempts", {
    n: tr.attempts_limit,
    minutes: Math.round(tr.session_ttl_seconds / 60),
  });
  $("#tr-retention").textContent = t("tr_kept_retention", { days: tr.retention_days });
  fillTable(
    "tr-table-accuracy",
    tr.accuracy.map((a) => [t(`tr_measure_${a.measure}`), percent.format(a.value), a.count || "–", t(`tr_basis_${a.basis}`)]),
    4,
  );
  const lv = tr.liveness;
  $("#tr-challenge").textContent = t("tr_challenge", {
    min: lv.challenge_actions_min,
    max: lv.challenge_actions_max,
    actions: lv.challenge_actions.map((a) => t(`action_${a}`)).join(", "),
    window: lv.action_window_seconds,
    ttl: lv.challenge_ttl_seconds,
  });
  fillTable(
    "tr-table-checks",
    lv.checks.map((c) => [t(`dash_attack_${c.attack}`), locale === "ko" ? c.message_ko : c.message_en]),
    2,
  );
  fillTable(
    "tr-table-thresholds",
    Object.entries(lv.thresholds).map(([name, value]) => [t(`tr_threshold_${name}`), number.format(value)]),
    2,
  );
  const p = tr.policy;
  $("#tr-rules").textContent = t("tr_rules", {
    version: p.rules_version,
    lines: p.max_new_lines,
    days: p.window_days,
    failed: p.stolen_card_max_failed,
    hours: p.stolen_card_window_hours,
  });
  const item = (text, code) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (code) {
      const c = document.createElement("code");
      c.textContent = code;
      li.append(" ", c);
    }
    return li;
  };
  $("#tr-documents").replaceChildren(...tr.document_types.map((d) => item(t(`tr_doc_${d}`))));
  const docTitle = (d) => {
    const k = `tr_docfile_${d.path.replace(/^.*\//, "").replace(/\.md$/, "")}`;
    return t(k) === k ? d.title : t(k);
  };
  $("#tr-docs").replaceChildren(...tr.evaluation_docs.map((d) => item(docTitle(d), d.path)));
  document.body.dataset.loaded = "true";
}

if (document.body.classList.contains("page-transparency")) {
  api("/v1/transparency")
    .then(render)
    .catch((err) => {
      $("#tr-error").textContent = err.message || t("error_generic");
    });
}
