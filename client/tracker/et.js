/* edgetrack browser tracker, served by an edge at /et.js. See docs/TRACKER.md. */
(() => {
  "use strict";
  const w = window, d = document, ls = safeStorage();
  const script = d.currentScript;
  if (!script || (w.edgetrack && w.edgetrack.loaded)) return;
  const endpoint = new URL("/events", script.src).href;
  const QUEUE = "et_q", SESSION = "et_s", OPTOUT = "et_optout";
  const SESSION_IDLE = 30 * 60 * 1000; // a session ends after 30 minutes without events
  const MAX_QUEUE = 500;               // oldest events are dropped past this
  const MAX_BATCH_BYTES = 60000;       // keepalive requests may carry 64 KiB in all
  const BACKOFF_MIN = 1000, BACKOFF_MAX = 5 * 60 * 1000;
  let off = false, memQueue = [], memSession = null, inFlight = false, backoff = 0, timer = 0, maxBatch = 50;
  let lastPath = location.pathname;

  function safeStorage() {
    try {
      const k = "et_probe";
      localStorage.setItem(k, k);
      localStorage.removeItem(k);
      return localStorage;
    } catch (e) {
      return null; // storage off: the queue and session live for this page only
    }
  }
  function load(key, fallback) {
    if (!ls) return fallback;
    try { return JSON.parse(ls.getItem(key)) ?? fallback; } catch (e) { return fallback; }
  }
  function store(key, value) {
    if (!ls) return;
    try { ls.setItem(key, JSON.stringify(value)); } catch (e) { /* full: keep what is there */ }
  }
  const getQueue = () => (ls ? load(QUEUE, []) : memQueue);
  const setQueue = (q) => (ls ? store(QUEUE, q) : (memQueue = q));

  function randomID() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  const optedOut = () => off || !!(ls && ls.getItem(OPTOUT));

  // session returns the session id, starting a new one after SESSION_IDLE
  // without events; every event extends it.
  function session() {
    const now = Date.now();
    let s = ls ? load(SESSION, null) : memSession;
    if (!s || typeof s.id !== "string" || now - s.t > SESSION_IDLE) s = { id: randomID() };
    s.t = now;
    if (ls) store(SESSION, s); else memSession = s;
    return s.id;
  }

  function track(category, name, extra) {
    if (optedOut()) return;
    const data = { host: location.host, path: location.pathname };
    Object.assign(data, extra);
    const q = getQueue();
    q.push({
      event_id: randomID(), session_id: session(), category, name,
      timestamp: new Date().toISOString(), data,
    });
    if (q.length > MAX_QUEUE) {
      console.warn("edgetrack: queue full, dropping the oldest " + (q.length - MAX_QUEUE) + " events");
      q.splice(0, q.length - MAX_QUEUE);
    }
    setQueue(q);
    schedule(100);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(flush, ms);
  }

  // batch takes events from the front of q up to maxBatch events and
  // MAX_BATCH_BYTES of JSON.
  function batch(q) {
    const out = [];
    let bytes = 2;
    for (const ev of q) {
      const n = JSON.stringify(ev).length + 1;
      if (out.length && (out.length >= maxBatch || bytes + n > MAX_BATCH_BYTES)) break;
      out.push(ev);
      bytes += n;
    }
    return out;
  }

  function remove(ids) {
    setQueue(getQueue().filter((ev) => !ids.has(ev.event_id)));
  }

  function retryLater() {
    backoff = Math.min(BACKOFF_MAX, backoff ? backoff * 2 : BACKOFF_MIN);
    schedule(backoff / 2 + Math.random() * backoff / 2);
  }

  // flush sends the oldest events. A 201 removes them from the queue; a 400
  // drops the events it names (they would never be accepted) and sends the
  // rest again; a 413 halves the batch; anything else, or no answer, keeps
  // them for a retry with backoff. Each event keeps its event_id, so that an
  // event sent twice is stored once.
  async function flush() {
    if (inFlight || optedOut()) return;
    const events = batch(getQueue());
    if (!events.length) return;
    inFlight = true;
    let res = null, body = null;
    try {
      const text = JSON.stringify(events);
      res = await fetch(endpoint, {
        method: "POST", body: text, credentials: "omit", mode: "cors",
        keepalive: text.length <= MAX_BATCH_BYTES,
        // text/plain keeps the request simple: no CORS preflight.
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
      });
      if (res.status === 400) body = await res.json().catch(() => null);
    } catch (e) {
      res = null; // offline, or the edge unreachable
    }
    inFlight = false;
    const ids = new Set(events.map((ev) => ev.event_id));
    if (res && res.status === 201) {
      remove(ids);
      backoff = 0;
      maxBatch = 50;
      schedule(0);
    } else if (res && res.status === 400) {
      const bad = new Set();
      const why = {};
      for (const p of (body && body.problems) || []) {
        const ev = events[p.index];
        if (!ev) continue;
        bad.add(ev.event_id);
        why[ev.event_id] = (why[ev.event_id] ? why[ev.event_id] + "; " : "") + (p.field ? p.field + " " : "") + p.reason;
      }
      const drop = bad.size ? bad : ids; // no index: the whole batch was refused
      for (const ev of events) {
        if (drop.has(ev.event_id)) {
          console.warn("edgetrack: the edge refused an event (" + (why[ev.event_id] || (body && body.error) || "400") + "), dropping it:", ev);
        }
      }
      remove(drop);
      schedule(0);
    } else if (res && res.status === 413) {
      if (events.length === 1) {
        console.warn("edgetrack: the edge refused an event as too large, dropping it:", events[0]);
        remove(ids);
      } else {
        maxBatch = Math.max(1, Math.floor(events.length / 2));
      }
      schedule(0);
    } else {
      retryLater();
    }
  }

  // beacon hands what is queued to the browser as the page goes away. The
  // events stay queued: with no answer to read, the next page sends them
  // again, and their event_ids make the edge store them once.
  function beacon() {
    if (optedOut() || !navigator.sendBeacon) return;
    const events = batch(getQueue());
    if (!events.length) return;
    navigator.sendBeacon(endpoint, new Blob([JSON.stringify(events)], { type: "text/plain;charset=UTF-8" }));
  }

  // formFields returns the named fields of form with their values; never
  // password, hidden, file or data-et-skip fields, nor unchecked boxes.
  function formFields(form) {
    const out = {};
    for (const el of form.elements) {
      const type = (el.type || "").toLowerCase();
      if (!el.name || el.disabled || el.closest("[data-et-skip]") ||
          ["password", "hidden", "file", "submit", "button", "reset", "image"].includes(type) ||
          !("value" in el)) continue;
      if ((type === "checkbox" || type === "radio") && !el.checked) continue;
      const values = type === "select-multiple" ? Array.from(el.selectedOptions, (o) => o.value) : [el.value];
      for (const v of values) {
        if (!(el.name in out)) out[el.name] = type === "select-multiple" || type === "checkbox" ? [v] : v;
        else out[el.name] = [].concat(out[el.name], v);
      }
    }
    return out;
  }

  function pageView() {
    lastPath = location.pathname;
    track("page_interaction", "page_view");
  }
  function navigated() {
    if (location.pathname !== lastPath) pageView();
  }

  const commands = {
    page_view: pageView,
    cta_click: (element) => track("page_interaction", "cta_click", { element: String(element ?? "") }),
    submit: (form) => track("form_interaction", "submit", { form: form instanceof HTMLFormElement ? formFields(form) : Object(form) }),
    optout: () => {
      if (ls) { ls.setItem(OPTOUT, "1"); ls.removeItem(QUEUE); ls.removeItem(SESSION); }
      off = true;
      memQueue = [];
    },
    optin: () => {
      if (ls) ls.removeItem(OPTOUT);
      off = false;
    },
    flush: () => flush(),
  };

  const before = (w.edgetrack && w.edgetrack.q) || [];
  const api = w.edgetrack = function (cmd, ...args) {
    const f = commands[cmd];
    if (!f) return console.warn("edgetrack: unknown command " + cmd);
    return f(...args);
  };
  api.loaded = true;

  d.addEventListener("click", (e) => {
    const el = e.target instanceof Element && e.target.closest("[data-et-cta]");
    if (el) api("cta_click", el.getAttribute("data-et-cta") || el.textContent.trim().slice(0, 100) || el.tagName.toLowerCase());
  }, true);
  d.addEventListener("submit", (e) => {
    if (e.target instanceof HTMLFormElement && e.target.hasAttribute("data-et-form")) api("submit", e.target);
  }, true);

  for (const m of ["pushState", "replaceState"]) {
    const orig = history[m];
    history[m] = function () {
      const r = orig.apply(this, arguments);
      if (m === "pushState") navigated(); else lastPath = location.pathname;
      return r;
    };
  }
  w.addEventListener("popstate", navigated);
  w.addEventListener("online", () => { backoff = 0; schedule(0); });
  w.addEventListener("pagehide", beacon);
  d.addEventListener("visibilitychange", () => { if (d.visibilityState === "hidden") beacon(); });

  if (script.getAttribute("data-auto") !== "off") pageView();
  for (const args of before) api(...args);
  schedule(0); // what earlier pages left in the queue
})();
