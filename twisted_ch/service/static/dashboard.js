// the dashboard (twisted_ch.service._dashboard): polls /status and redraws
"use strict";
(function () {
  const HOUR = 3600 * 1000, WIDTH = 1000, HEIGHT = 18, SVGNS = "http://www.w3.org/2000/svg";
  const stateClass = { Connected: "ok", Disconnected: "error", Flapping: "flapping" };
  const SEVERITY = { error: 0, warning: 1, unknown: 2, ok: 3, paused: 4 };
  const HEALTHS = ["ok", "warning", "error", "unknown", "paused"];
  const NO_ROOM = "(no room)";
  const MAX_ROWS = 1000;
  // rows per page: ?rows=N in the dashboard's address (1 to MAX_ROWS)
  const ROWS = Math.min(MAX_ROWS,
    Math.max(1, parseInt(new URLSearchParams(location.search).get("rows"), 10) || MAX_ROWS));
  let last = null, failures = 0, offset = 0;

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
    // as wide as its column: drawn on a 1000-unit axis, stretched to the cell
    const box = svg("svg", { width: "100%", height: HEIGHT, class: "timeline",
                             viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img",
                             preserveAspectRatio: "none" });
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
                                               y2: HEIGHT - 2, class: "tick",
                                               "vector-effect": "non-scaling-stroke" }));
    }
    for (const q of [0.25, 0.5, 0.75]) {
      const qx = (q * WIDTH).toFixed(1);
      box.appendChild(svg("line", { x1: qx, x2: qx, y1: 0, y2: 2, class: "quarter",
                                    "vector-effect": "non-scaling-stroke" }));
      box.appendChild(svg("line", { x1: qx, x2: qx, y1: HEIGHT - 2, y2: HEIGHT,
                                    class: "quarter", "vector-effect": "non-scaling-stroke" }));
    }
    return box;
  }
  function hhmm(t) {
    const d = new Date(t);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  function axis(now) {
    // labelled times under the "last hour" heading: an hour ago at the left, now at the right
    const box = document.getElementById("timeline-axis");
    if (!box) return;
    const labels = [];
    for (const q of [0, 0.25, 0.5, 0.75]) {
      // positioned through the CSSOM: the page's CSP allows no style attributes
      const label = el("span", { class: "tick-label" }, hhmm(now - HOUR + q * HOUR));
      label.style.left = q * 100 + "%";
      if (q) label.style.transform = "translateX(-50%)";
      labels.push(label);
    }
    labels.push(el("span", { class: "tick-label now" }, "now"));
    box.replaceChildren(...labels);
  }
  function wanted(device) {
    // what the server was asked for too (query()); here at once, before the next answer
    const state = document.getElementById("filter-state").value;
    const name = document.getElementById("filter-name").value.trim().toLowerCase();
    if (state) {
      const [field, value] = state.split(":");
      if (String(device[field]) !== value) return false;
    }
    if (/[*?[]/.test(name)) return true;  // a glob: the server's to match
    return !name || String(device.name).toLowerCase().includes(name);
  }
  function query() {
    // the filters as /status arguments: the server lists only those, a page of ROWS at a time
    const args = new URLSearchParams({ compact: "1", limit: String(ROWS) });
    if (offset > 0) args.set("offset", String(offset));
    const state = document.getElementById("filter-state").value;
    if (state) {
      const [field, value] = state.split(":");
      args.set(field === "health" ? "health" : "state", value);
    }
    const name = document.getElementById("filter-name").value.trim();
    if (name) args.set("name", name);
    return "status?" + args.toString();
  }
  function filtersChanged() {
    offset = 0;  // other rows match: from their first page
    render();
    refreshSoon();
  }
  function turnPage(step) {
    const page = (last && last.page) || {};
    const next = step > 0 ? page.next : Math.max(0, offset - ROWS);
    if (next === null || next === undefined || next === offset) return;
    offset = next;
    refreshSoon();
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
    if (endpoint) td.appendChild(el("div", { class: "endpoint" }, endpoint.split("\n")[0]));
    return td;
  }
  function stateText(d, now) {
    if (d.paused) return "Paused";
    if (d.state === "Disconnected" && d.nextAttempt) {
      const s = Math.max(0, Math.round((Date.parse(d.nextAttempt) - now) / 1000));
      return "Reconnecting: next attempt in " + s + " s (" +
        new Date(Date.parse(d.nextAttempt)).toLocaleTimeString() + ")";
    }
    return d.state;
  }
  function button(action, target, label) {
    return el("button", { type: "button", class: "action", "data-action": action,
                          "data-target": JSON.stringify(target) }, label);
  }
  function actionsCell(target, paused) {
    const td = el("td", { class: "actions" });
    if (paused) td.appendChild(button("resume", target, "resume"));
    else td.appendChild(button("pause", target, "pause"));
    td.appendChild(button("reconnect", target, "reconnect"));
    return td;
  }
  async function act(node) {
    const body = Object.assign({ action: node.dataset.action }, JSON.parse(node.dataset.target));
    const updated = document.getElementById("updated");
    node.disabled = true;
    try {
      const response = await fetch("actions", {
        method: "POST", cache: "no-store", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) });
      const answer = await response.json();
      const skipped = Object.entries(answer.skipped || {}).map(([n, why]) => n + ": " + why);
      updated.textContent = body.action + ": " + (answer.error ||
        ((answer.done || []).join(", ") || "nothing") +
        (skipped.length ? " (skipped " + skipped.join("; ") + ")" : ""));
    } catch (e) {
      updated.textContent = body.action + " failed: " + e.message;
    }
    refreshSoon();
  }
  function deviceRow(d, now) {
    const health = HEALTHS.includes(d.health) ? d.health : "unknown";
    const tr = el("tr", { class: "health-" + health, "data-name": d.name,
                          "data-state": d.paused ? "Paused" : d.state });
    // a program's link: its module class, handler and link state under the endpoint
    tr.appendChild(nameCell(d.name, [d.endpoint, d.module, d.handler && d.link && d.handler +
                                     " (link " + d.link + ")"].filter(Boolean).join("\n")));
    const shown = stateText(d, now);
    tr.appendChild(el("td", { class: "state state-" + (d.paused ? "Paused" :
                              String(d.state).replace(/[^A-Za-z]/g, "")) }, shown));
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
    tr.appendChild(actionsCell({ device: d.name }, d.paused));
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
  function roomRow(room, rollup) {
    const health = rollup && HEALTHS.includes(rollup.health) ? rollup.health : "unknown";
    const tr = el("tr", { class: "room-head health-" + health, "data-room": room });
    const th = el("th", { colspan: 8, scope: "rowgroup" });
    th.appendChild(el("span", { class: "room-name" }, room));
    th.appendChild(el("span", { class: "badge " + health }, health));
    if (rollup) {
      const counts = HEALTHS.filter((h) => rollup[h]).map((h) => rollup[h] + " " + h);
      th.appendChild(el("span", { class: "room-counts" },
                        rollup.devices + (rollup.devices === 1 ? " device: " : " devices: ") +
                        counts.join(", ")));
    }
    tr.appendChild(th);
    const paused = rollup && rollup.paused === rollup.devices;
    tr.appendChild(room === NO_ROOM ? el("td") : actionsCell({ room: room }, paused));
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
    axis(now);
    const table = document.getElementById("devices");
    // grouped by room (in the config's order), the worst first within each room
    const picked = (last.devices || []).filter(wanted);
    const groups = new Map();
    picked.slice(0, ROWS).forEach((d, i) => {
      const room = d.room || NO_ROOM;
      if (!groups.has(room)) groups.set(room, []);
      groups.get(room).push([SEVERITY[d.health] ?? 2, i, d]);
    });
    const rollups = (last.summary || {}).rooms || {};
    const bodies = [];
    for (const [room, members] of groups) {
      members.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const body = el("tbody", { class: "room", "data-room": room });
      if (room !== NO_ROOM || groups.size > 1) body.appendChild(roomRow(room, rollups[room]));
      for (const [, , d] of members) body.appendChild(deviceRow(d, now));
      bodies.push(body);
    }
    for (const old of Array.from(table.tBodies)) old.remove();
    for (const body of bodies) table.appendChild(body);
    const counts = last.summary || {}, page = last.page || {};
    const total = (counts.up || 0) + (counts.down || 0) + (counts.unknown || 0);
    const matched = page.matched === undefined ? picked.length : page.matched;
    const shown = Math.min(picked.length, ROWS);
    const paged = matched > ROWS || offset > 0;
    let text;
    if (paged) {
      const first = shown ? offset + 1 : 0;
      text = first + "\u2013" + (offset + shown) + " of " + matched + " devices";
      if (matched !== total) text += " (" + total + " in all)";
    } else {
      text = shown === total ? total + " devices" : shown + " of " + total + " devices shown";
    }
    document.getElementById("shown").textContent = text;
    document.getElementById("pager").hidden = !paged;
    document.getElementById("page-prev").disabled = offset === 0;
    document.getElementById("page-next").disabled = page.next === null || page.next === undefined;
    if (paged && offset > 0 && offset >= matched) {  // devices went: back to the last page
      offset = Math.max(0, Math.floor((matched - 1) / ROWS) * ROWS);
      refreshSoon();
    }
    const servers = document.querySelector("#servers tbody");
    const srows = document.createDocumentFragment();
    for (const s of last.servers || []) if (wanted(s)) srows.appendChild(serverRow(s));
    servers.replaceChildren(srows);
    document.getElementById("servers").hidden = !(last.servers || []).length;
  }
  let timer = null;
  function refreshSoon() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  }
  async function refresh() {
    timer = null;
    const updated = document.getElementById("updated");
    try {
      const response = await fetch(query(), { cache: "no-store" });
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
    const s = last ? last.summary || {} : {};
    const size = (s.up || 0) + (s.down || 0) + (s.unknown || 0);
    const every = Math.min(10000, Math.max(1000, 2 * size));
    const wait = failures ? Math.min(10000, 1000 * failures) : every;
    if (timer === null) timer = setTimeout(refresh, wait);
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
    document.getElementById("filter-state").addEventListener("change", filtersChanged);
    document.getElementById("filter-name").addEventListener("input", filtersChanged);
    document.getElementById("page-prev").addEventListener("click", () => turnPage(-1));
    document.getElementById("page-next").addEventListener("click", () => turnPage(1));
    document.getElementById("devices").addEventListener("click", (e) => {
      const node = e.target.closest("button.action");
      if (node) act(node);
    });
    refresh();
  });
})();
