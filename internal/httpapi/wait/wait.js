// The waiting room page's script: it takes over from the server-rendered
// page, joins without a reload, and follows the user's status live through
// the client module. Without it, the page still works: its form posts, and
// it refreshes itself while the user waits.
import { join, status, watch, isFinal, CouponqError } from "./client.js";

const root = document.getElementById("couponq-wait");
const conn = document.getElementById("couponq-conn");
const campaign = root.dataset.campaign;
const basePath = root.dataset.base || "";
const T = JSON.parse(root.dataset.strings || "{}");
const opts = { basePath };
let opensAt = root.dataset.opensAt ? Date.parse(root.dataset.opensAt) : NaN;
let current = root.dataset.state;
let values = { campaign };
let watching = null;
let countdown = null;

function fill(s, v) {
  return (s || "").replace(/\{([a-z_]+)\}/g, (_, k) => (v[k] === undefined ? "" : String(v[k])));
}

function duration(ms) {
  const secs = Math.max(1, Math.ceil(ms / 1000));
  if (secs < 60) return fill(T.duration_seconds, { s: secs });
  if (secs < 3600) return fill(T.duration_minutes, { m: Math.floor(secs / 60), s: secs % 60 });
  if (secs < 86400) return fill(T.duration_hours, { h: Math.floor(secs / 3600), m: Math.floor((secs % 3600) / 60) });
  return fill(T.duration_days, { d: Math.floor(secs / 86400), h: Math.floor((secs % 86400) / 3600) });
}

// stateOf is the page's state for a status, as the server decides it.
function stateOf(s) {
  switch (s.state) {
    case "waiting":
      if (s.pre_queue) return "prequeue";
      if (s.paused) return "paused";
      if (s.beyond_stock) return "beyond";
      return "waiting";
    case "in_flight": return "in_flight";
    case "issued": return "issued";
    default:
      if (s.reason === "sold_out") return "sold_out";
      if (s.reason === "duplicate") return "duplicate";
      return "failed";
  }
}

// stateOfError is the page's state for a refused request.
function stateOfError(e) {
  if (!(e instanceof CouponqError)) return "error";
  switch (e.code) {
    case "unauthenticated": return "signin";
    case "unknown_campaign": case "invalid_id": return "unknown";
    case "not_open": return "upcoming";
    case "closed": return "closed";
    case "line_full": return "line_full";
    case "sold_out": return "sold_out";
    case "duplicate": return "duplicate";
    case "not_found": return "join";
    default: return "error";
  }
}

function render(state) {
  current = state;
  root.dataset.state = state;
  for (const sec of root.querySelectorAll("section[data-state]")) {
    sec.hidden = sec.dataset.state !== state;
  }
  const v = { ...values };
  if (!Number.isNaN(opensAt)) {
    v.countdown = duration(opensAt - Date.now());
    v.time = new Date(opensAt).toLocaleString(document.documentElement.lang, { dateStyle: "medium", timeStyle: "short" });
  }
  for (const el of root.querySelectorAll("[data-text]")) {
    let key = el.dataset.text;
    if (key === "waiting_wait" && !v.wait) key = "waiting_wait_unknown";
    const text = fill(T[key], v);
    if (el.textContent !== text) el.textContent = text;
  }
  document.title = fill(T.title, v);
  if ((state === "upcoming" || state === "prequeue") && !Number.isNaN(opensAt)) startCountdown();
  else stopCountdown();
}

function startCountdown() {
  if (countdown) return;
  countdown = setInterval(() => {
    if (Date.now() >= opensAt) {
      stopCountdown();
      if (current === "upcoming") location.reload(); // the line (or its pre-queue) has opened
      return;
    }
    // Only the countdown's own texts change each second, so a screen
    // reader is not told the whole card again.
    for (const el of root.querySelectorAll('section:not([hidden]) [data-text$="_lead"]')) {
      el.textContent = fill(T[el.dataset.text], { ...values, countdown: duration(opensAt - Date.now()) });
    }
  }, 1000);
}

function stopCountdown() {
  if (countdown) { clearInterval(countdown); countdown = null; }
}

function show(s) {
  values = {
    campaign,
    position: s.position || 0,
    ahead: Math.max((s.position || 0) - 1, 0),
    wait: s.estimated_wait_ms ? duration(s.estimated_wait_ms) : "",
    issuance_id: s.issuance_id || "",
  };
  if (s.opens_at) opensAt = Date.parse(s.opens_at);
  render(stateOf(s));
}

function connection(mode) {
  conn.hidden = false;
  conn.dataset.mode = mode;
  conn.textContent = T["connection_" + mode] || mode;
}

function follow() {
  if (watching) return;
  watching = watch(campaign, show, { ...opts, onConnection: connection });
  watching.done.then(
    () => { conn.hidden = true; watching = null; },
    (e) => { watching = null; conn.hidden = true; render(stateOfError(e)); },
  );
}

async function press(ev) {
  ev.preventDefault();
  const button = ev.target.querySelector("button");
  if (button) button.disabled = true;
  try {
    const t = await join(campaign, opts);
    show({ ...t, state: t.state || "waiting" });
    follow();
  } catch (e) {
    if (e instanceof CouponqError && e.ticket) {
      show(e.ticket);
      if (!isFinal(e.ticket)) follow();
      else render(stateOfError(e));
    } else {
      render(stateOfError(e));
    }
  } finally {
    if (button) button.disabled = false;
  }
}

// The server could not reach the line: try again with backoff, and take
// up where the user stands once it answers.
async function recover(delay) {
  await new Promise((r) => setTimeout(r, delay));
  try {
    const s = await status(campaign, opts);
    show(s);
    if (!isFinal(s)) follow();
  } catch (e) {
    const state = stateOfError(e);
    if (state === "error") { recover(Math.min(delay * 2, 30000)); return; }
    if (state === "join") location.reload(); // not in line: the server decides between join, upcoming and closed
    else render(state);
  }
}

for (const form of root.querySelectorAll("form.join")) form.addEventListener("submit", press);
root.dataset.js = "on";

const initial = root.dataset.status ? JSON.parse(root.dataset.status) : null;
if (initial) {
  show(initial);
  if (!isFinal(initial)) follow();
} else if (current === "error") {
  recover(2000);
} else {
  render(current);
}
