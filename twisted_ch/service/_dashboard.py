"""
The dashboard: C{GET /} on the status port, a page a person reads instead of C{/status}.

Every device and server with its state, health, since, misses, last error and probe, colour-coded
by health, the worst first; filters by state or health and by name; a summary line; per device an
SVG timeline of the last hour's transitions.  The page polls C{/status} (every second; a fleet of
thousands less often) and redraws without a reload.  It needs nothing from the network: its
script and style are served from the status port (C{/dashboard.js}, C{/dashboard.css}), and a
Content-Security-Policy allows nothing else.  Device strings (names, errors, probe options) only
ever reach the page as text nodes and attribute values, never as markup.
"""

from __future__ import annotations

from html import escape

from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch._version import __version__

__all__ = ["DashboardPage", "addDashboard"]

#: What the dashboard page may load: its own script, style and /status; nothing else.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chandler</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>chandler <span class="version">{version}</span></h1>
  <p id="summary" class="summary" aria-live="polite">loading&hellip;</p>
  <p id="updated" class="updated"></p>
</header>
<form id="filters" class="filters" role="search">
  <label>State
    <select id="filter-state">
      <option value="">all</option>
      <option value="state:Connected">Connected</option>
      <option value="state:Disconnected">Disconnected</option>
      <option value="state:Unknown">Unknown</option>
      <option value="health:ok">health ok</option>
      <option value="health:warning">health warning</option>
      <option value="health:error">health error</option>
      <option value="health:unknown">health unknown</option>
    </select>
  </label>
  <label>Name <input id="filter-name" type="search" placeholder="filter by name"
    autocomplete="off"></label>
  <span id="shown" class="shown"></span>
</form>
<main>
<table id="devices">
  <caption>Devices</caption>
  <thead><tr>
    <th>name</th><th>state</th><th>health</th><th>since</th><th class="num">misses</th>
    <th>last error</th><th>probe</th>
    <th class="timeline-head">last hour<div class="legend"><i class="ok"></i>Connected
      <i class="error"></i>Disconnected <i class="unknown"></i>Unknown
      <i class="flapping"></i>flapping <i class="nodata"></i>not watched</div></th>
  </tr></thead>
  <tbody></tbody>
</table>
<table id="servers">
  <caption>Servers</caption>
  <thead><tr><th>name</th><th>state</th><th class="num">port</th><th class="num">clients</th>
    <th class="num">idle dropped</th><th class="num">refused</th><th>last failure</th></tr>
  </thead>
  <tbody></tbody>
</table>
</main>
<footer><a href="status">/status</a> JSON &middot; <a href="metrics">/metrics</a> Prometheus
</footer>
</body>
</html>
"""

STYLE = """
:root { --ok: #1a7f37; --warning: #b35900; --error: #c62828; --unknown: #6e7781;
        --bg: #f6f8fa; --fg: #1f2328; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem 1.5rem; font: 14px/1.4 system-ui, sans-serif;
       background: var(--bg); color: var(--fg); }
h1 { margin: 0; font-size: 1.4rem; }
.version { font-size: .9rem; color: var(--unknown); font-weight: normal; }
header { display: flex; gap: 1.5rem; align-items: baseline; flex-wrap: wrap; }
.summary { font-size: 1.1rem; margin: .3rem 0; }
.summary b { font-variant-numeric: tabular-nums; }
.summary .up { color: var(--ok); } .summary .down { color: var(--error); }
.summary .unknown { color: var(--unknown); } .summary .warning { color: var(--warning); }
.updated { color: var(--unknown); margin: 0; }
.updated.stale { color: var(--error); font-weight: bold; }
.filters { display: flex; gap: 1rem; align-items: center; margin: .6rem 0; flex-wrap: wrap; }
.filters input, .filters select { font: inherit; padding: .2rem .4rem; }
.shown { color: var(--unknown); }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1.2rem; }
caption { text-align: left; font-weight: bold; padding: .3rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
         vertical-align: middle; }
th { background: #eaeef2; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.error-text { max-width: 28rem; overflow-wrap: anywhere; color: #57606a; }
td.name { font-weight: 600; }
/* a name wraps between its words only; a word too long for the column is cut with an ellipsis
   (the cell's title holds the whole name) */
.name-text { max-width: 15rem; overflow-wrap: normal; word-break: normal; hyphens: manual; }
.name-text .word { display: inline-block; max-width: 100%; overflow: hidden;
                   text-overflow: ellipsis; white-space: nowrap; vertical-align: top; }
td.since, td.state, td.health { white-space: nowrap; }
tr.health-ok td:first-child { border-left: 5px solid var(--ok); }
tr.health-warning td:first-child { border-left: 5px solid var(--warning); }
tr.health-error td:first-child { border-left: 5px solid var(--error); }
tr.health-unknown td:first-child { border-left: 5px solid var(--unknown); }
tr.health-error { background: #fff5f5; } tr.health-warning { background: #fffaf0; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; color: #fff;
         font-size: .85rem; }
.badge.ok { background: var(--ok); } .badge.warning { background: var(--warning); }
.badge.error { background: var(--error); } .badge.unknown { background: var(--unknown); }
.state-Connected { color: var(--ok); } .state-Disconnected { color: var(--error); }
.state-Unknown { color: var(--unknown); }
svg.timeline { display: block; }
svg.timeline rect.ok { fill: var(--ok); } svg.timeline rect.error { fill: var(--error); }
svg.timeline rect.unknown { fill: #afb8c1; }
svg.timeline rect.nodata { fill: #eef1f4; }
svg.timeline rect.flapping { fill: var(--warning); }
svg.timeline line.tick { stroke: #fff; stroke-width: 1; }
svg.timeline line.quarter { stroke: #8c959f; stroke-width: 1; stroke-dasharray: 2 2; }
.legend { font-weight: normal; color: var(--unknown); font-size: .8rem; white-space: nowrap; }
.legend i { display: inline-block; width: .8rem; height: .6rem; margin: 0 .2rem 0 .4rem; }
.legend i.ok { background: var(--ok); } .legend i.error { background: var(--error); }
.legend i.unknown { background: #afb8c1; } .legend i.flapping { background: var(--warning); }
.legend i.nodata { background: #eef1f4; border: 1px solid #d0d7de; }
.probe { color: #57606a; }
footer { color: var(--unknown); }
"""

SCRIPT = r"""
"use strict";
(function () {
  const HOUR = 3600 * 1000, WIDTH = 300, HEIGHT = 18, SVGNS = "http://www.w3.org/2000/svg";
  const stateClass = { Connected: "ok", Disconnected: "error", Flapping: "flapping" };
  const SEVERITY = { error: 0, warning: 1, unknown: 2, ok: 3 };
  const MAX_ROWS = 1000;
  let last = null, failures = 0;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  function ago(iso, now) {
    if (!iso) return "";
    const s = Math.max(0, (now - Date.parse(iso)) / 1000);
    if (s < 60) return Math.floor(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
    return Math.floor(s / 86400) + " d ago";
  }
  function probeText(probe) {
    if (!probe) return "";
    const parts = [];
    for (const [k, v] of Object.entries(probe)) {
      if (k === "lastProblem" || v === null || v === undefined || typeof v === "object") continue;
      parts.push(k === "type" ? String(v) : k + "=" + String(v));
    }
    return parts.join(" ");
  }
  function timeline(device, now) {
    const box = svg("svg", { width: WIDTH, height: HEIGHT, class: "timeline",
                             viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img" });
    const start = now - HOUR, recent = device.recent || [];
    const label = svg("title");
    label.textContent = device.name + ": " + recent.length + " transitions in the last hour";
    box.appendChild(label);
    const x = (t) => Math.max(0, Math.min(WIDTH, ((t - start) / HOUR) * WIDTH));
    const before = svg("rect", { x: 0, y: 2, width: WIDTH, height: HEIGHT - 4, class: "nodata" });
    const none = svg("title");
    none.textContent = "not watched then";
    before.appendChild(none);
    box.appendChild(before);
    for (let i = 0; i < recent.length; i++) {
      const from = Date.parse(recent[i][0]);
      const to = i + 1 < recent.length ? Date.parse(recent[i + 1][0]) : now;
      if (to < start) continue;
      const x0 = Math.min(x(from), WIDTH - 2), x1 = Math.max(x(to), x0 + 2);
      const rect = svg("rect", { x: x0.toFixed(1), y: 2, width: (x1 - x0).toFixed(1),
                                 height: HEIGHT - 4,
                                 class: stateClass[recent[i][1]] || "unknown" });
      const tip = svg("title");
      tip.textContent = recent[i][1] + " at " + new Date(from).toLocaleTimeString() +
        (recent[i][2] ? " (" + recent[i][2] + ")" : "");
      rect.appendChild(tip);
      box.appendChild(rect);
      if (i > 0) box.appendChild(svg("line", { x1: x0.toFixed(1), x2: x0.toFixed(1), y1: 2,
                                               y2: HEIGHT - 2, class: "tick" }));
    }
    for (const q of [0.25, 0.5, 0.75]) {
      const qx = (q * WIDTH).toFixed(1);
      box.appendChild(svg("line", { x1: qx, x2: qx, y1: 0, y2: 2, class: "quarter" }));
      box.appendChild(svg("line", { x1: qx, x2: qx, y1: HEIGHT - 2, y2: HEIGHT,
                                    class: "quarter" }));
    }
    return box;
  }
  function wanted(device) {
    const state = document.getElementById("filter-state").value;
    const name = document.getElementById("filter-name").value.trim().toLowerCase();
    if (state) {
      const [field, value] = state.split(":");
      if (String(device[field]) !== value) return false;
    }
    return !name || String(device.name).toLowerCase().includes(name);
  }
  function nameCell(name, endpoint) {
    // each word an unbreakable box: lines break only between words
    const text = String(name), td = el("td", { class: "name",
                                               title: endpoint ? text + "\n" + endpoint : text });
    const box = el("div", { class: "name-text" });
    for (const part of text.split(/(\s+)/)) {
      if (!part) continue;
      box.appendChild(/\s/.test(part) ? document.createTextNode(part)
                                      : el("span", { class: "word" }, part));
    }
    td.appendChild(box);
    return td;
  }
  function deviceRow(d, now) {
    const health = ["ok", "warning", "error", "unknown"].includes(d.health) ? d.health : "unknown";
    const tr = el("tr", { class: "health-" + health, "data-name": d.name });
    // a program's link: its module class, handler and link state under the endpoint
    tr.appendChild(nameCell(d.name, [d.endpoint, d.module, d.handler && d.link && d.handler +
                                     " (link " + d.link + ")"].filter(Boolean).join("\n")));
    tr.appendChild(el("td", { class: "state state-" + String(d.state).replace(/[^A-Za-z]/g, "") },
                      d.state));
    const h = el("td", { class: "health" });
    h.appendChild(el("span", { class: "badge " + health }, health));
    tr.appendChild(h);
    tr.appendChild(el("td", { class: "since", title: d.since || "" }, ago(d.since, now)));
    tr.appendChild(el("td", { class: "num misses" }, d.misses));
    let error = d.lastError || "";
    if (d.backoff) error = (error ? error + " — " : "") + d.backoff;
    tr.appendChild(el("td", { class: "error-text" }, error));
    tr.appendChild(el("td", { class: "probe" }, probeText(d.probe)));
    const cell = el("td", { class: "timeline" });
    cell.appendChild(timeline(d, now));
    tr.appendChild(cell);
    return tr;
  }
  function serverRow(s, now) {
    const tr = el("tr", { class: s.state === "Listening" ? "health-ok" : "health-error",
                          "data-name": s.name });
    const value = (v) => (v === undefined || v === null ? "" : v);
    tr.appendChild(nameCell(s.name, s.endpoint));
    tr.appendChild(el("td", { class: "state" }, s.state));
    tr.appendChild(el("td", { class: "num" }, value(s.port)));
    tr.appendChild(el("td", { class: "num clients" }, value(s.clients)));
    tr.appendChild(el("td", { class: "num" }, value(s.droppedIdle)));
    tr.appendChild(el("td", { class: "num" }, value(s.refused)));
    tr.appendChild(el("td", { class: "error-text" }, value(s.lastFailure)));
    return tr;
  }
  function summary(doc) {
    const p = document.getElementById("summary"), s = doc.summary || {}, h = s.health || {};
    p.textContent = "";
    const parts = [["up", s.up, "up"], ["down", s.down, "down"], ["unknown", s.unknown, "unknown"]];
    parts.forEach(([cls, n, word], i) => {
      if (i) p.appendChild(document.createTextNode(" / "));
      const b = el("b", { class: cls }, n === undefined ? 0 : n);
      p.appendChild(b);
      p.appendChild(document.createTextNode(" " + word));
    });
    if (h.warning) {
      p.appendChild(document.createTextNode(" · "));
      p.appendChild(el("b", { class: "warning" }, h.warning));
      p.appendChild(document.createTextNode(" warning"));
    }
  }
  function render() {
    if (!last) return;
    const now = Date.parse(last.time) || Date.now();
    summary(last);
    const body = document.querySelector("#devices tbody");
    const rows = document.createDocumentFragment();
    // the worst first (error, warning, unknown, ok), in the config's order within each level
    const picked = (last.devices || []).filter(wanted);
    const order = picked.map((d, i) => [SEVERITY[d.health] ?? 2, i, d]);
    order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [, , d] of order.slice(0, MAX_ROWS)) rows.appendChild(deviceRow(d, now));
    body.replaceChildren(rows);
    const total = (last.devices || []).length, shown = Math.min(picked.length, MAX_ROWS);
    let text = shown === total ? total + " devices" : shown + " of " + total + " devices shown";
    if (picked.length > MAX_ROWS) text += " (the first " + MAX_ROWS + ": filter to see others)";
    document.getElementById("shown").textContent = text;
    const servers = document.querySelector("#servers tbody");
    const srows = document.createDocumentFragment();
    for (const s of last.servers || []) if (wanted(s)) srows.appendChild(serverRow(s, now));
    servers.replaceChildren(srows);
    document.getElementById("servers").hidden = !(last.servers || []).length;
  }
  async function refresh() {
    const updated = document.getElementById("updated");
    try {
      const response = await fetch("status?compact=1", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      last = await response.json();
      failures = 0;
      render();
      updated.textContent = "updated " + new Date().toLocaleTimeString();
      updated.classList.remove("stale");
    } catch (e) {
      failures++;
      updated.textContent = "status unreachable (" + e.message + "); retrying";
      updated.classList.add("stale");
    }
    // every second; a big fleet's document less often (about 2 ms per device, at most 10 s)
    const size = last ? (last.devices || []).length : 0;
    const every = Math.min(10000, Math.max(1000, 2 * size));
    setTimeout(refresh, failures ? Math.min(10000, 1000 * failures) : every);
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
    document.getElementById("filter-state").addEventListener("change", render);
    document.getElementById("filter-name").addEventListener("input", render);
    refresh();
  });
})();
"""


class _Static(Resource):
    isLeaf = True

    def __init__(self, body: str, contentType: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.body = body.encode("utf-8")
        self.contentType = contentType

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return self.body


class DashboardPage(_Static):
    """The dashboard's HTML (the same for everyone: the data comes from C{/status})."""

    def __init__(self) -> None:
        super().__init__(PAGE.format(version=escape(__version__)), b"text/html; charset=utf-8")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return super().render_GET(request)


def addDashboard(root: Resource) -> None:
    """Serve the dashboard's script and style under C{root} (the page itself is C{root}'s)."""
    root.putChild(b"dashboard.js", _Static(SCRIPT, b"text/javascript; charset=utf-8"))
    root.putChild(b"dashboard.css", _Static(STYLE, b"text/css; charset=utf-8"))
