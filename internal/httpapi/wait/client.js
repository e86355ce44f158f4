// couponq's waiting-room client: join a campaign's line and watch the
// user's status until its outcome, over the status stream (Server-Sent
// Events) with reconnects, falling back to polling when streams fail.
// An ES module with no dependencies, served by the public handler at
// {BasePath}/wait/client.js, its types at {BasePath}/wait/client.d.ts.
//
//   import { join, watch } from "/wait/client.js";
//   await join("summer-drop");
//   const w = watch("summer-drop", (status) => render(status));
//   const outcome = await w.done; // issued or rejected
//
// The user is the host's: requests carry the page's cookies
// (credentials: "same-origin"), and the handler's Config.User reads them.

/** The states that end a wait. */
const FINAL = new Set(["issued", "rejected"]);

/** An error answer of the handler: its HTTP status and JSON error code. */
export class CouponqError extends Error {
  constructor(status, code, message, retryAfterMs, ticket) {
    super(message || code || `HTTP ${status}`);
    this.name = "CouponqError";
    this.status = status;
    this.code = code || "";
    this.retryAfterMs = retryAfterMs;
    this.ticket = ticket;
  }
}

function urlOf(campaign, path, opts) {
  const base = (opts && opts.basePath) || "";
  return `${base}/campaigns/${encodeURIComponent(campaign)}${path}`;
}

async function call(method, url, opts, body) {
  const f = (opts && opts.fetch) || globalThis.fetch.bind(globalThis);
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal: opts && opts.signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await f(url, init);
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const ra = Number(res.headers.get("Retry-After"));
    throw new CouponqError(res.status, e.code, e.message, Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined, data && data.ticket);
  }
  return data;
}

/**
 * Puts the user in the campaign's line and returns the ticket. Pressing
 * again is harmless: the same ticket comes back with repeat: true.
 */
export function join(campaign, opts = {}) {
  const body = opts.requestId ? { request_id: opts.requestId } : undefined;
  return call("POST", urlOf(campaign, "/entries", opts), opts, body);
}

/** Reads the user's status once. */
export function status(campaign, opts = {}) {
  return call("GET", urlOf(campaign, "/entries/me", opts), opts);
}

/** Whether a status is an outcome (issued or rejected). */
export function isFinal(s) {
  return !!s && FINAL.has(s.state);
}

/**
 * Follows the user's status: onChange(status) at the first status and at
 * every change, until the outcome. The status stream is used while it
 * works; when it fails (a proxy that cuts or refuses streams, a restart),
 * the client reconnects with backoff, polling the status meanwhile, and
 * tries the stream again later. onConnection(mode) reports "live",
 * "reconnecting" or "polling". Returns { done, stop }: done resolves with
 * the final status, or rejects with a CouponqError when the user has no
 * entry or the campaign is gone; stop() ends the watch (done then never
 * settles).
 */
export function watch(campaign, onChange, opts = {}) {
  const ES = opts.EventSource || globalThis.EventSource;
  const pollMs = opts.pollInterval || 2000;
  const maxBackoff = opts.maxBackoff || 30000;
  const streamRetryMs = opts.streamRetry || 20000;
  const onConnection = opts.onConnection || (() => {});
  let last = "";
  let stopped = false;
  let es = null;
  let timer = null;
  let failures = 0;
  let mode = "";
  let resolve, reject;
  const done = new Promise((res, rej) => { resolve = res; reject = rej; });

  const setMode = (m) => { if (m !== mode) { mode = m; onConnection(m); } };
  const stop = () => {
    stopped = true;
    if (es) { es.close(); es = null; }
    if (timer) { clearTimeout(timer); timer = null; }
  };
  const deliver = (s) => {
    if (stopped) return;
    const key = JSON.stringify(s);
    if (key !== last) {
      last = key;
      try { onChange(s); } catch (e) { setTimeout(() => { throw e; }); }
    }
    if (isFinal(s)) { stop(); resolve(s); }
  };
  const fail = (e) => { stop(); reject(e); };
  const later = (fn, ms) => { if (!stopped) { clearTimeout(timer); timer = setTimeout(fn, ms); } };
  const backoff = () => Math.min(maxBackoff, pollMs * 2 ** Math.min(failures, 8)) * (0.75 + Math.random() / 2);

  // Polling: the fallback, and the way back to the stream.
  let pollsSinceStream = 0;
  const poll = async () => {
    if (stopped) return;
    try {
      const s = await status(campaign, opts);
      failures = 0;
      deliver(s);
      pollsSinceStream++;
      if (ES && pollsSinceStream * pollMs >= streamRetryMs) { openStream(); return; }
      later(poll, pollMs);
    } catch (e) {
      if (e instanceof CouponqError && (e.status === 404 || e.status === 401)) { fail(e); return; }
      failures++;
      setMode("reconnecting");
      later(poll, e.retryAfterMs || backoff());
    }
  };
  const toPolling = () => {
    if (es) { es.close(); es = null; }
    setMode("polling");
    pollsSinceStream = 0;
    later(poll, 0);
  };

  // The stream: EventSource reconnects by itself after a dropped
  // connection; one that keeps failing, or is refused (closed), gives way
  // to polling.
  const openStream = () => {
    if (stopped) return;
    clearTimeout(timer);
    let errorsInRow = 0;
    es = new ES(urlOf(campaign, "/entries/me/events", opts), { withCredentials: true });
    es.addEventListener("open", () => { errorsInRow = 0; failures = 0; setMode("live"); });
    es.addEventListener("status", (ev) => {
      errorsInRow = 0;
      setMode("live");
      let s;
      try { s = JSON.parse(ev.data); } catch { return; }
      deliver(s);
    });
    es.addEventListener("ended", (ev) => {
      let e = {};
      try { e = JSON.parse(ev.data).error || {}; } catch { /* keep {} */ }
      fail(new CouponqError(404, e.code, e.message));
    });
    es.addEventListener("error", () => {
      if (stopped) return;
      errorsInRow++;
      failures++;
      if (es.readyState === 2 /* CLOSED: refused, not retried */ || errorsInRow >= 3) {
        toPolling();
        return;
      }
      setMode("reconnecting");
      // While the stream is away, a poll keeps the page current (and
      // learns of an outcome reached meanwhile).
      status(campaign, opts).then(deliver, () => {});
    });
  };

  if (opts.signal) opts.signal.addEventListener("abort", stop, { once: true });
  if (ES && !opts.pollOnly) openStream(); else toPolling();
  return { done, stop };
}
