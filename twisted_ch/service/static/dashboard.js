// the dashboard (twisted_ch.service._dashboard): polls /status and redraws
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
  function serverRow(s) {
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
    for (const s of last.servers || []) if (wanted(s)) srows.appendChild(serverRow(s));
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
