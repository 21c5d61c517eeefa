// Shared by the pages: the message catalogue, the JSON API with problem+json errors, and
// reason messages in the page's language.

const catalogue = JSON.parse(document.getElementById("messages").textContent);
export const locale = document.documentElement.lang || "ko";

/** A UI message by key, with {name} placeholders filled in. */
export function t(key, vars = {}) {
  const text = catalogue[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** An API refusal: the RFC 9457 body's reason code and its message in the page's language. */
export class Problem extends Error {
  constructor(status, body) {
    const message = (locale === "ko" ? body.message_ko : body.title) || body.detail || t("error_generic");
    super(message);
    this.status = status;
    this.code = body.code || "internal_error";
    this.body = body;
  }
}

/** A reason as the service describes it ({code, message_en, message_ko}), in the page's language. */
export function reasonText(reason) {
  return (locale === "ko" ? reason.message_ko : reason.message_en) || reason.code;
}

/** fetch() a JSON endpoint; a problem+json answer throws a Problem, a lost network a Problem too. */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Problem(0, { code: "network", title: t("error_network"), message_ko: t("error_network") });
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Problem(response.status, typeof data === "object" ? data : {});
  return data;
}

/** POST multipart form data with upload progress (fetch has none): resolves to the JSON body. */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(Math.round((100 * e.loaded) / e.total));
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Problem(xhr.status, body));
    });
    xhr.addEventListener("error", () =>
      reject(new Problem(0, { code: "network", title: t("error_network"), message_ko: t("error_network") })),
    );
    xhr.send(form);
  });
}

/** Fill a list element with one item per reason. */
export function listReasons(ul, reasons) {
  ul.replaceChildren(
    ...reasons.map((reason) => {
      const li = document.createElement("li");
      li.textContent = reasonText(reason);
      li.dataset.code = reason.code;
      return li;
    }),
  );
}

/** Set a progress bar (role=progressbar with an inner span) to a percentage. */
export function setMeter(el, percent) {
  const value = Math.max(0, Math.min(100, Math.round(percent)));
  el.setAttribute("aria-valuenow", String(value));
  el.firstElementChild.style.width = `${value}%`;
}
