// couponq's live page: shows the admin stream ({BasePath}/live/stream)
// as a table, one row per campaign. No framework, no build step.
"use strict";

(function () {
  const streamURL = "live/stream"; // relative to the page, {BasePath}/live
  const numbers = new Intl.NumberFormat("en-US");
  const stateLabels = {
    scheduled: "scheduled", pre_queue: "pre-queue", open: "open", paused: "paused", sold_out: "sold out", closed: "closed",
  };

  let source = null;
  let retryDelay = 1000; // after the server refused the stream; doubles up to 30 s

  // connect opens the stream. EventSource reconnects by itself after a
  // dropped connection; after a refusal (401, 503 busy…) it gives up, so we
  // open a new one later.
  function connect() {
    source = new EventSource(streamURL);
    source.addEventListener("campaigns", (e) => {
      retryDelay = 1000;
      setConnection("live", "live");
      hideNotice();
      render(JSON.parse(e.data).campaigns);
    });
    source.addEventListener("unavailable", (e) => {
      const body = JSON.parse(e.data);
      showNotice("Backend unavailable: " + body.error.message + ". Showing the last numbers received.");
    });
    source.onerror = () => {
      document.body.classList.add("stale");
      if (source.readyState === EventSource.CLOSED) {
        const secs = Math.round(retryDelay / 1000);
        setConnection("down", "disconnected");
        showNotice("Disconnected: the server refused the stream. Retrying in " + secs + " s…");
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setConnection("down", "disconnected");
        showNotice("Disconnected, retrying… The numbers below are the last received.");
      }
    };
  }

  // render brings the table in line with the list, in the server's order.
  function render(campaigns) {
    const tbody = document.getElementById("rows");
    const keep = new Set();
    for (const c of campaigns) {
      keep.add(c.id);
      const tr = rowFor(tbody, c.id);
      fill(tr, c);
      tbody.appendChild(tr); // moves it into place
    }
    for (const tr of Array.from(tbody.rows)) {
      if (!keep.has(tr.dataset.campaign)) tr.remove();
    }
    document.getElementById("empty").hidden = campaigns.length > 0;
    renderTotals(campaigns);
    document.body.classList.remove("stale");
    const now = new Date();
    const updated = document.getElementById("updated");
    updated.textContent = now.toLocaleTimeString("en-GB");
    updated.dateTime = now.toISOString();
  }

  function rowFor(tbody, id) {
    for (const tr of tbody.rows) {
      if (tr.dataset.campaign === id) return tr;
    }
    const tr = document.getElementById("row").content.firstElementChild.cloneNode(true);
    tr.dataset.campaign = id;
    return tr;
  }

  // fill writes one campaign's numbers into its row.
  function fill(tr, c) {
    const pct = c.stock > 0 ? (100 * c.issued) / c.stock : 0;
    const inflightPct = c.stock > 0 ? Math.min(100 - pct, (100 * c.in_flight) / c.stock) : 0;
    set(tr, "id", c.id, c.id);
    set(tr, "throttle", throttle(c), c.version);
    set(tr, "state", stateLabels[c.state] || c.state, c.state);
    tr.querySelector('[data-field="state"]').className = "badge state-" + c.state;
    set(tr, "waiting", count(c.waiting), c.waiting);
    set(tr, "in_flight", count(c.in_flight), c.in_flight);
    set(tr, "issued", count(c.issued), c.issued);
    set(tr, "stock", count(c.stock), c.stock);
    set(tr, "issued_pct", Math.floor(pct) + "%", pct.toFixed(1));
    tr.querySelector(".bar .issued").style.width = pct + "%";
    tr.querySelector(".bar .inflight").style.width = inflightPct + "%";
    set(tr, "drained_per_sec", c.drained_per_sec == null ? "—" : rate(c.drained_per_sec), c.drained_per_sec);
    set(tr, "rate_per_sec", "nominal " + rate(c.rate_per_sec), c.rate_per_sec);
    set(tr, "drain_eta", eta(c), c.drain_eta_ms);
  }

  // throttle describes the throttle and, when it matters, the window.
  function throttle(c) {
    // "rev": the campaign's version in the Registry (not V1/V2, the mode).
    let text = c.batch_size + " per " + duration(c.interval_ms) + " · rev " + c.version;
    if (c.mode === "v1-validate-first") text += " · V1 gate";
    if ((c.state === "scheduled" || c.state === "pre_queue") && c.opens_at) text += " · opens " + clock(c.opens_at);
    if (c.state === "open" && c.closes_at) text += " · closes " + clock(c.closes_at);
    return text;
  }

  function clock(iso) {
    return new Date(iso).toLocaleString("en-GB", { dateStyle: "short", timeStyle: "short" });
  }

  // set shows text in a row's field and keeps the raw value in data-value.
  function set(tr, field, text, value) {
    const el = tr.querySelector('[data-field="' + field + '"]');
    el.textContent = text;
    el.dataset.value = value == null ? "" : String(value);
  }

  function renderTotals(campaigns) {
    const sum = (key) => campaigns.reduce((n, c) => n + (c[key] || 0), 0);
    setTotal("open", campaigns.filter((c) => c.state === "open").length);
    setTotal("waiting", sum("waiting"));
    setTotal("in_flight", sum("in_flight"));
    setTotal("issued", sum("issued"));
  }

  function setTotal(key, n) {
    const el = document.querySelector('[data-total="' + key + '"]');
    el.textContent = count(n);
    el.dataset.value = String(n);
  }

  function setConnection(state, text) {
    const el = document.getElementById("conn");
    el.dataset.conn = state;
    el.textContent = text;
  }

  function showNotice(text) {
    const el = document.getElementById("notice");
    el.textContent = text;
    el.hidden = false;
  }

  function hideNotice() {
    document.getElementById("notice").hidden = true;
  }

  function count(n) {
    return numbers.format(n);
  }

  function rate(perSec) {
    const shown = perSec >= 100 ? Math.round(perSec) : Math.round(perSec * 10) / 10;
    return numbers.format(shown) + "/s";
  }

  // eta is how long the last in line waits: a dash when nobody waits,
  // "paused" while the throttle is stopped (the server sends null).
  function eta(c) {
    if (c.drain_eta_ms == null) return "paused";
    if (c.waiting === 0) return "—";
    return duration(c.drain_eta_ms);
  }

  function duration(ms) {
    if (ms < 1000) return ms + " ms";
    const s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }

  connect();
})();
