// Bounded retries: exponential backoff with full jitter, or the server's Retry-After when it gives
// one. The same policy as the Python client's client/retry.py, so a crowd of browsers that failed
// together does not come back together.

// `tries` counts every attempt, the first included.
export const UPLOAD_RETRY = Object.freeze({ tries: 7, baseMs: 250, maxMs: 8000, maxRetryAfterMs: 30000 });

// Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date), or null.
export function retryAfterMs(header, now = Date.now()) {
  if (header === null || header === undefined || header === "") return null;
  const text = String(header).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

// Wait before attempt `attempt + 1` after `error` failed attempt `attempt` (0-based).
export function delayMs(policy, attempt, error, random = Math.random) {
  if (error && typeof error.retryAfterMs === "number") return Math.min(error.retryAfterMs, policy.maxRetryAfterMs);
  return random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
}

export function shouldRetry(policy, attempt, error) {
  return Boolean(error && error.retryable) && attempt + 1 < policy.tries;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
