// The edgetrack dashboard: plain JavaScript over the aggregator's public
// query API (/stats, /events, /events/{id}, /matches), with the query token
// kept in sessionStorage (this tab only). See README.md, "Dashboard".
(() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const TOKEN = "edgetrack_query_token", ADMIN_TOKEN = "edgetrack_admin_token";
  const pages = ["login", "overview", "events", "session", "matches", "rules"];
  const BUCKET_SECONDS = { minute: 60, hour: 3600, day: 86400 };
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  const ui = (window.edgetrackUI = { chart: null });

  // ---- API ----

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // api fetches a path (or an absolute link the API gave) with the query
  // token (or adminToken) and returns its JSON, or throws an APIError with
  // the API's own message. A refused query token logs out.
  async function api(path, params, adminToken) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v != null) url.searchParams.set(k, v);
    let res;
    try {
      res = await fetch(url, { headers: { Authorization: "Bearer " + (adminToken || sessionStorage.getItem(TOKEN)) } });
    } catch (e) {
      throw new APIError(0, "the aggregator did not answer: " + e.message);
    }
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      if ((res.status === 401 || res.status === 403) && !adminToken) logout();
      throw new APIError(res.status, res.status + " " + ((body && body.error) || text.trim() || res.statusText));
    }
    return body;
  }

  function showError(err) {
    const box = $("#error");
    box.textContent = err ? (err.message || String(err)) : "";
    box.hidden = !err;
  }

  // run calls f, showing its error instead of leaving the page blank.
  async function run(f) {
    showError(null);
    document.body.classList.add("busy");
    try {
      await f();
    } catch (err) {
      if ((err.status === 401 || err.status === 403) && !sessionStorage.getItem(TOKEN)) route(); // logged out: back to the login page
      showError(err);
    } finally {
      document.body.classList.remove("busy");
    }
  }

  // ---- Routing: #page?param=value ----

  function route() {
    const [name, query] = location.hash.slice(1).split("?");
    const params = new URLSearchParams(query || "");
    const loggedIn = !!sessionStorage.getItem(TOKEN);
    // The rules page has a token of its own (an admin token).
    const page = name === "rules" ? "rules" : !loggedIn ? "login" : pages.includes(name) && name !== "login" ? name : "overview";
    for (const p of pages) $("#page-" + p).hidden = p !== page;
    $("#nav").hidden = !loggedIn;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.getAttribute("href") === "#" + page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = page + " · edgetrack";
    if (page !== "login") showError(null);
    ({ overview, events, session, matches, rules, login: () => $("#token").focus() })[page](params);
  }

  function go(page, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v != null) q.set(k, v);
    const hash = "#" + page + (q.toString() ? "?" + q : "");
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function formParams(form) {
    return Object.fromEntries(Array.from(new FormData(form), ([k, v]) => [k, String(v).trim()]));
  }

  function fillForm(form, params) {
    for (const el of form.elements) if (el.name && params.has(el.name)) el.value = params.get(el.name);
  }

  function logout() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(ADMIN_TOKEN);
    if (ui.chart) { ui.chart.destroy(); ui.chart = null; }
  }

  // ---- Login ----

  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("#token").value.trim();
    run(async () => {
      sessionStorage.setItem(TOKEN, token);
      const now = new Date();
      try {
        await api("/stats", { start_time: new Date(now - 60000).toISOString(), end_time: now.toISOString() });
      } catch (err) {
        sessionStorage.removeItem(TOKEN);
        throw err.status === 401 || err.status === 403 ? new APIError(err.status, "That token was refused: " + err.message) : err;
      }
      $("#token").value = "";
      route();
    });
  });
  $("#logout").addEventListener("click", () => { logout(); go("login"); });

  // ---- Overview: /stats ----

  function autoBucket(range) {
    return range <= 3 * 3600 ? "minute" : range <= 14 * 86400 ? "hour" : "day";
  }

  function seriesLabel(s) {
    return [s.category, s.name].filter((x) => x !== undefined).map((x) => x || "(none)").join(" / ");
  }

  function overview(params) {
    const form = $("#overview-form");
    fillForm(form, params);
    const range = Number(form.range.value);
    const bucket = form.bucket.value || autoBucket(range);
    const step = BUCKET_SECONDS[bucket];
    const end = Math.ceil(Date.now() / 1000 / step) * step;
    const start = end - Math.ceil(range / step) * step;
    run(async () => {
      const stats = await api("/stats", {
        start_time: new Date(start * 1000).toISOString(), end_time: new Date(end * 1000).toISOString(),
        bucket, group_by: form.group_by.value,
      });
      drawOverview(stats, step);
    });
  }

  function drawOverview(stats, step) {
    const first = Date.parse(stats.start_time) / 1000, last = Date.parse(stats.end_time) / 1000;
    const xs = [];
    for (let t = first; t < last; t += step) xs.push(t);
    const index = new Map(xs.map((t, i) => [t, i]));
    let series = stats.series.map((s) => {
      const ys = new Array(xs.length).fill(0);
      let total = 0;
      for (const p of s.points) {
        const i = index.get(Date.parse(p.time) / 1000);
        if (i !== undefined) ys[i] += p.count;
        total += p.count;
      }
      return { label: seriesLabel(s), ys, total };
    });
    series.sort((a, b) => b.total - a.total);
    if (series.length > COLORS.length) { // the largest groups, and the rest as one line
      const rest = series.slice(COLORS.length - 1);
      series = series.slice(0, COLORS.length - 1);
      series.push({
        label: "other (" + rest.length + " groups)", total: rest.reduce((n, s) => n + s.total, 0),
        ys: xs.map((_, i) => rest.reduce((n, s) => n + s.ys[i], 0)),
      });
    }
    const grand = series.reduce((n, s) => n + s.total, 0);
    $("#overview-range").textContent = `${stats.bucket} buckets from ${stats.start_time} to ${stats.end_time} (UTC)`;

    const tbody = $("#totals tbody");
    tbody.replaceChildren(...series.map((s, i) => row([swatch(COLORS[i]), s.label], s.total)));
    $("#grand-total").textContent = grand.toLocaleString("en");
    $("#grand-total").dataset.total = grand;

    const el = $("#chart");
    if (ui.chart) ui.chart.destroy();
    el.replaceChildren();
    if (!series.length) {
      el.textContent = "No events in this range.";
      ui.chart = null;
      return;
    }
    const opts = {
      width: Math.max(280, el.clientWidth), height: Math.min(360, Math.max(220, Math.round(el.clientWidth * 0.45))),
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [{ label: "time (UTC)", value: (u, v) => (v == null ? "–" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) }]
        .concat(series.map((s, i) => ({ label: s.label, stroke: COLORS[i], width: 2, points: { show: xs.length < 80 } }))),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    };
    ui.chart = new uPlot(opts, [xs, ...series.map((s) => s.ys)], el);
  }

  function swatch(color) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = color;
    return s;
  }

  function row(labelParts, count) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.append(...labelParts);
    const td = document.createElement("td");
    td.className = "num";
    td.textContent = count.toLocaleString("en");
    td.dataset.total = count;
    tr.append(th, td);
    return tr;
  }

  $("#overview-form").addEventListener("submit", (e) => {
    e.preventDefault();
    go("overview", formParams(e.target));
  });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const el = $("#chart");
      if (ui.chart && !el.closest("section").hidden) ui.chart.setSize({ width: Math.max(280, el.clientWidth), height: ui.chart.height });
    }, 150);
  });

  // ---- Events explorer: /events, /events/{id} ----

  const toUTC = (local) => (local ? local + (local.length === 16 ? ":00" : "") + "Z" : "");
  const fromUTC = (iso) => (iso ? iso.replace(/Z$/, "").slice(0, 19) : "");
  let pageLinks = { next: null, previous: null };

  function events(params) {
    const form = $("#events-form");
    form.reset();
    fillForm(form, params);
    if (params.has("start_time")) form.start_time.value = fromUTC(params.get("start_time"));
    if (params.has("end_time")) form.end_time.value = fromUTC(params.get("end_time"));
    const q = Object.fromEntries(params);
    if (!q.page_size) q.page_size = form.page_size.value;
    showEvents(() => api("/events", q));
  }

  function showEvents(load) {
    $("#event-json").hidden = true;
    run(async () => {
      const page = await load();
      pageLinks = { next: page.next, previous: page.previous };
      $("#events-next").disabled = !page.next;
      $("#events-prev").disabled = !page.previous;
      const n = page.count;
      $("#events-count").textContent = `${n.toLocaleString("en")} event${n === 1 ? "" : "s"} match` + (n === 1 ? "es" : "");
      $("#events-count").dataset.count = n;
      $("#events-table tbody").replaceChildren(...page.results.map(eventRow));
      $("#events-table").dataset.page = pageNumber(page);
    });
  }

  // pageNumber is the number of the page shown, from its links.
  function pageNumber(page) {
    const num = (link) => Number(new URL(link).searchParams.get("page") || 1);
    return page.next ? num(page.next) - 1 : page.previous ? num(page.previous) + 1 : 1;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    return td;
  }

  function eventRow(ev) {
    const tr = document.createElement("tr");
    const session = document.createElement("a");
    session.href = "#session?session_id=" + encodeURIComponent(ev.session_id);
    session.textContent = ev.session_id;
    const data = ev.data == null ? "" : JSON.stringify(ev.data);
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "link";
    btn.textContent = "JSON";
    btn.setAttribute("aria-label", "Show the JSON of event " + ev.id);
    btn.addEventListener("click", () => showEvent(ev.id));
    tr.append(cell(shortTime(ev.timestamp)), cell(ev.category), cell(ev.name), cell(session, "mono id"),
      cell(data.length > 120 ? data.slice(0, 119) + "…" : data, "mono data"), cell(btn));
    return tr;
  }

  // shortTime shows an RFC 3339 UTC time to the millisecond.
  const shortTime = (ts) => ts.replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace("Z", "");

  function showEvent(id) {
    run(async () => {
      const ev = await api("/events/" + encodeURIComponent(id));
      const box = $("#event-json");
      $("#event-json-id").textContent = id;
      $("pre", box).textContent = JSON.stringify(ev, null, 2);
      box.hidden = false;
      $("pre", box).focus();
    });
  }

  $("#events-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const p = formParams(e.target);
    p.start_time = toUTC(p.start_time);
    p.end_time = toUTC(p.end_time);
    go("events", p);
  });
  $("#events-next").addEventListener("click", () => pageLinks.next && showEvents(() => api(pageLinks.next)));
  $("#events-prev").addEventListener("click", () => pageLinks.previous && showEvents(() => api(pageLinks.previous)));

  // ---- Session timeline ----

  function session(params) {
    const id = params.get("session_id") || "";
    $("#session-form").elements.namedItem("session_id").value = id;
    $("#timeline").replaceChildren();
    $("#session-summary").textContent = "";
    if (!id) return;
    run(async () => {
      const page = await api("/events", { session_id: id, page_size: 1000 });
      const evs = page.results.slice().reverse(); // oldest first
      const shown = evs.length < page.count ? ` (the latest ${evs.length} shown)` : "";
      let summary = `${page.count} event${page.count === 1 ? "" : "s"}${shown}`;
      if (evs.length) {
        const span = (Date.parse(evs[evs.length - 1].timestamp) - Date.parse(evs[0].timestamp)) / 1000;
        summary += `, ${evs[0].timestamp} to ${evs[evs.length - 1].timestamp}, ${duration(span)}`;
      }
      $("#session-summary").textContent = summary;
      let prev = null;
      $("#timeline").replaceChildren(...evs.map((ev) => {
        const li = document.createElement("li");
        const t = Date.parse(ev.timestamp);
        const when = document.createElement("time");
        when.dateTime = ev.timestamp;
        when.textContent = shortTime(ev.timestamp) + (prev == null ? "" : `  +${duration((t - prev) / 1000)}`);
        prev = t;
        const what = document.createElement("strong");
        what.textContent = ev.category + " / " + ev.name;
        const detail = document.createElement("span");
        detail.className = "mono";
        const d = ev.data && typeof ev.data === "object" ? ev.data : {};
        detail.textContent = [d.path, d.element, d.form && JSON.stringify(d.form)].filter(Boolean).join("  ") || (ev.data == null ? "" : JSON.stringify(ev.data).slice(0, 200));
        li.append(when, what, detail);
        return li;
      }));
    });
  }

  function duration(s) {
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  $("#session-form").addEventListener("submit", (e) => {
    e.preventDefault();
    go("session", formParams(e.target));
  });

  // ---- Cookie-sync matches: /matches ----

  function matches(params) {
    fillForm($("#matches-uid"), params);
    fillForm($("#matches-partner"), params);
    const table = $("#matches-table");
    table.hidden = true;
    if (!params.has("uid") && !params.has("pi")) return;
    run(async () => {
      const q = params.has("uid") ? { uid: params.get("uid") } : { partner: params.get("partner"), pi: params.get("pi") };
      const found = await api("/matches", q);
      const rows = params.has("uid") ? Object.entries(found) : [["our uid", found.uid]];
      $("thead tr", table).replaceChildren(...(params.has("uid") ? ["Partner", "Partner's id"] : ["", "Id"]).map((h) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = h;
        return th;
      }));
      $("tbody", table).replaceChildren(...rows.map(([k, v]) => {
        const tr = document.createElement("tr");
        tr.append(cell(k), cell(v, "mono"));
        return tr;
      }));
      if (!rows.length) showError(new Error("No partner has matched uid " + params.get("uid") + "."));
      table.hidden = !rows.length;
    });
  }

  $("#matches-uid").addEventListener("submit", (e) => { e.preventDefault(); go("matches", formParams(e.target)); });
  $("#matches-partner").addEventListener("submit", (e) => { e.preventDefault(); go("matches", formParams(e.target)); });

  // ---- Rules: GET /rules on the admin listener ----

  function rules() {
    const box = $("#rules");
    box.replaceChildren();
    const token = sessionStorage.getItem(ADMIN_TOKEN);
    if (!token) {
      $("#rules-form").admin_token.focus();
      return;
    }
    run(async () => {
      let listing;
      try {
        listing = await api("/rules", null, token);
      } catch (err) {
        if (err.status === 401 || err.status === 403 || err.status === 404) sessionStorage.removeItem(ADMIN_TOKEN);
        if (err.status === 404) throw new APIError(404, err.message + ": this is not the admin listener. Open /ui/#rules on aggregator.admin_listen.");
        throw err;
      }
      const short = (h) => (h && h.length > 16 ? h.slice(0, 12) + "…" : h || "–");
      const table = (caption, head, rows) => {
        const t = document.createElement("table");
        const c = document.createElement("caption");
        c.textContent = caption;
        const tr = document.createElement("tr");
        for (const h of head) {
          const th = document.createElement("th");
          th.scope = "col";
          th.textContent = h;
          tr.append(th);
        }
        const thead = document.createElement("thead");
        thead.append(tr);
        const tbody = document.createElement("tbody");
        for (const r of rows) {
          const row = document.createElement("tr");
          row.append(...r.map((v) => cell(v)));
          tbody.append(row);
        }
        t.append(c, thead, tbody);
        const wrap = document.createElement("div");
        wrap.className = "scroll";
        wrap.append(t);
        return wrap;
      };
      const out = [];
      const p = document.createElement("p");
      p.textContent = "Manifest version " + listing.version + ".";
      out.push(p);
      for (const name of Object.keys(listing.rules).sort()) {
        const r = listing.rules[name];
        const h = document.createElement("h2");
        h.textContent = name + ": " + (r.active === "builtin" ? "built-in" : short(r.active)) + " active";
        h.dataset.rule = name;
        out.push(h);
        const versions = [["built-in", "", "", "", "", r.active === "builtin" ? "active" : ""]].concat((r.versions || []).map((v) =>
          [short(v.hash), String(v.size), v.uploaded_at, v.uploaded_by, String(v.vector_cases), v.active ? "active" : ""]));
        out.push(table("Versions of " + name, ["Version", "Bytes", "Uploaded", "By", "Test vectors", ""], versions));
        const edges = (r.edges || []).map((e) => [e.edge, e.active === "builtin" ? "built-in" : short(e.active),
          e.failed ? short(e.failed) + ": " + e.error : "", e.reported_at, e.last_seen]);
        out.push(edges.length ? table("Edges running " + name, ["Edge", "Runs", "Refused", "Reported", "Last seen"], edges)
          : Object.assign(document.createElement("p"), { className: "hint", textContent: "No edge has reported what it runs." }));
      }
      box.replaceChildren(...out);
    });
  }

  $("#rules-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = e.target.admin_token.value.trim();
    if (token) sessionStorage.setItem(ADMIN_TOKEN, token);
    e.target.admin_token.value = "";
    rules();
  });

  window.addEventListener("hashchange", route);
  route();
})();
