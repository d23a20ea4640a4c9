// HTTP to the Harken API: one request function, one error type, one way to say what went wrong.
import { retryAfterMs } from "./backoff.js";

export class ApiError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra || {};
    this.retryAfterMs = retryAfterMs(this.extra.retry_after);
    // Network failures (status 0), 5xx and 429 are worth another try of the same request.
    this.retryable = status === 0 || status === 429 || status >= 500;
  }
}

// `key` goes out as X-API-Key; `json` is sent as a JSON body, `body` as is.
export async function request(method, url, { key, json, body, headers } = {}) {
  const h = Object.assign({}, headers || {});
  if (key) h["X-API-Key"] = key;
  let payload = body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers: h, body: payload, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "network", err.message || "network error");
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON: the status says what happened */ }
  if (!resp.ok) throw errorOf(resp, data);
  return data;
}

// POSTs `form` (FormData) to `url` and returns the answer's body, a stream of Server-Sent Events;
// an error answer is thrown as an ApiError. `signal` (an AbortSignal) hangs up.
export async function openEventStream(url, { key, form, signal }) {
  const headers = { Accept: "text/event-stream" };
  if (key) headers["X-API-Key"] = key;
  let resp;
  try {
    resp = await fetch(url, { method: "POST", headers, body: form, cache: "no-store", signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", err.message || "network error");
  }
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch (_) { /* not JSON: the status says what happened */ }
    throw errorOf(resp, data);
  }
  return resp.body;
}

function errorOf(resp, data) {
  const e = (data && data.error) || {};
  const extra = Object.assign({}, e, { retry_after: resp.headers.get("Retry-After") });
  return new ApiError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText || "request failed", extra);
}

// One sentence for the user; `doing` is a verb phrase: "start a session", "send chunk 3".
export function describeApiError(err, doing) {
  if (err.status === 0) return `Could not ${doing}: the server cannot be reached (${err.message}).`;
  if (err.status === 401) return `Could not ${doing}: the server refused the API key. Enter a valid key under Settings.`;
  const retry = err.retryAfterMs !== null ? ` Try again in ${Math.ceil(err.retryAfterMs / 1000)} s.` : "";
  const detail = `${err.message} (${err.code}, HTTP ${err.status}).${retry}`;
  if (err.status === 503 || err.status === 429) return `Could not ${doing}: the server is busy. ${detail}`;
  if (err.status >= 500) return `Could not ${doing}: server error. ${detail}`;
  return `Could not ${doing}: ${detail}`;
}
