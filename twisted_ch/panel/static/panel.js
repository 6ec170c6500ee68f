// The virtual panel (twisted_ch.panel._web): polls "state", sends "action"s.  A UIDevice with a
// layout is drawn from its layout document ("layout/<alias>", GUI Designer's pages, popups and
// controls); one without is listed control by control (the generic view).  The DOM is built once
// per device; each poll changes only what changed.
"use strict";
(function () {
  const POLL_MS = 300;
  const PX_PER_PT = 4 / 3;
  const generic = new Map(); // "alias|id" -> {wrap, el} (generic view)
  const panels = new Map(); // alias -> Panel (layout view), or "loading"
  let lost = false;

  // ---------------------------------------------------------------- actions, in order

  const queue = [];
  let sending = false;

  function showError(text) {
    document.getElementById("error").textContent = text;
  }

  // Actions go one at a time, in order (a release never overtakes its press); slides of one
  // control still waiting are merged into the latest value.
  function post(action) {
    const last = queue[queue.length - 1];
    if (action.action === "slide" && last && last.action === "slide" &&
        last.device === action.device && last.id === action.id) {
      last.value = action.value;
    } else {
      queue.push(action);
    }
    pump();
  }

  function pump() {
    if (sending || !queue.length) return;
    sending = true;
    const action = queue.shift();
    fetch("action", { method: "POST", headers: { "content-type": "application/json" },
                      body: JSON.stringify(action) })
      .then((r) => r.json())
      .then((r) => { showError(r.ok ? "" : r.error); })
      .catch((e) => { showError(String(e)); })
      .finally(() => {
        sending = false;
        if (queue.length) pump(); else refresh();
      });
  }

  // ---------------------------------------------------------------- generic view

  function deviceBox(dev) {
    let box = document.getElementById("device-" + dev.alias);
    if (!box) {
      box = document.createElement("div");
      box.className = "device";
      box.id = "device-" + dev.alias;
      const h = document.createElement("h2");
      h.textContent = dev.alias;
      box.appendChild(h);
      const meta = document.createElement("div");
      meta.className = "meta";
      box.appendChild(meta);
      const controls = document.createElement("div");
      controls.className = "controls";
      box.appendChild(controls);
      document.getElementById("devices").appendChild(box);
    }
    return box;
  }

  function makeControl(dev, c, parent) {
    const key = dev.alias + "|" + c.id;
    const wrap = document.createElement("div");
    wrap.className = "control";
    const id = document.createElement("div");
    id.className = "id";
    id.textContent = c.kind + " " + c.id;
    wrap.appendChild(id);
    const act = (action, value) => post({ device: dev.alias, id: c.id, action: action,
                                          value: value });
    let el;
    if (c.kind === "Button") {
      el = document.createElement("button");
      el.className = "ui";
      el.dataset.id = String(c.id);
      let down = false;
      const press = (e) => { e.preventDefault(); if (!down) { down = true; act("press"); } };
      const release = () => { if (down) { down = false; act("release"); } };
      el.addEventListener("pointerdown", press);
      el.addEventListener("pointerup", release);
      el.addEventListener("pointerleave", release);
    } else if (c.kind === "Label") {
      el = document.createElement("div");
      el.className = "label";
    } else if (c.kind === "Level") {
      el = document.createElement("meter");
    } else if (c.kind === "Slider") {
      el = document.createElement("input");
      el.type = "range";
      el.addEventListener("pointerdown", () => act("press", Number(el.value)));
      el.addEventListener("input", () => act("slide", Number(el.value)));
      el.addEventListener("change", () => act("release", Number(el.value)));
    } else if (c.kind === "Knob") {
      el = document.createElement("span");
      for (const [text, steps] of [["\u25c0", -1], ["\u25b6", 1]]) {
        const b = document.createElement("button");
        b.textContent = text;
        b.addEventListener("click", () => act("turn", steps));
        el.appendChild(b);
      }
    } else {
      el = document.createElement("span");
    }
    el.dataset.key = key;
    wrap.appendChild(el);
    parent.appendChild(wrap);
    const holder = { wrap: wrap, el: el };
    generic.set(key, holder);
    return holder;
  }

  function updateGeneric(holder, c) {
    const el = holder.el;
    holder.wrap.classList.toggle("hidden", !c.visible);
    if (c.kind === "Button") {
      el.textContent = c.text || String(c.name);
      el.className = "ui state" + c.state + (c.pressed ? " pressed" : "") +
                     (c.blinking ? " blinking" : "");
      el.disabled = !c.enabled;
    } else if (c.kind === "Label") {
      el.textContent = c.text;
    } else if (c.kind === "Level") {
      el.min = c.min;
      el.max = c.max;
      el.value = c.level;
      el.title = String(c.level);
    } else if (c.kind === "Slider") {
      el.min = c.min;
      el.max = c.max;
      el.step = c.step;
      el.disabled = !c.enabled;
      if (document.activeElement !== el) el.value = c.fill;
    }
  }

  function renderGeneric(dev) {
    const box = deviceBox(dev);
    box.querySelector(".meta").textContent =
      "page " + (dev.page === null ? "-" : dev.page) +
      " | popups " + (dev.popups.length ? dev.popups.join(", ") : "-") + " | " + dev.sleep;
    const parent = box.querySelector(".controls");
    for (const c of dev.controls) {
      const holder = generic.get(dev.alias + "|" + c.id) || makeControl(dev, c, parent);
      updateGeneric(holder, c);
    }
  }

  // ---------------------------------------------------------------- .NET date patterns

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const STANDARD = { d: "M/d/yyyy", D: "dddd, MMMM d, yyyy", t: "h:mm tt", T: "h:mm:ss tt",
                     f: "dddd, MMMM d, yyyy h:mm tt", F: "dddd, MMMM d, yyyy h:mm:ss tt",
                     g: "M/d/yyyy h:mm tt", G: "M/d/yyyy h:mm:ss tt", M: "MMMM d",
                     m: "MMMM d", Y: "MMMM yyyy", y: "MMMM yyyy" };
  const TOKEN = /dddd|ddd|dd|d|MMMM|MMM|MM|M|yyyy|yyy|yy|y|HH|H|hh|h|mm|m|ss|s|fff|ff|f|tt|t|zzz|zz|z|'[^']*'|"[^"]*"|\\.|%|[\s\S]/g;

  function pad(n, width) {
    return String(n).padStart(width, "0");
  }

  // The time as a .NET custom (or one-letter standard) date and time format string shows it.
  function formatDate(pattern, d) {
    const p = STANDARD[pattern] || pattern;
    const h12 = d.getHours() % 12 || 12;
    const offset = -d.getTimezoneOffset();
    const sign = offset < 0 ? "-" : "+";
    const abs = Math.abs(offset);
    const parts = {
      dddd: DAYS[d.getDay()], ddd: DAYS[d.getDay()].slice(0, 3), dd: pad(d.getDate(), 2),
      d: String(d.getDate()), MMMM: MONTHS[d.getMonth()], MMM: MONTHS[d.getMonth()].slice(0, 3),
      MM: pad(d.getMonth() + 1, 2), M: String(d.getMonth() + 1),
      yyyy: pad(d.getFullYear(), 4), yyy: pad(d.getFullYear(), 3),
      yy: pad(d.getFullYear() % 100, 2), y: String(d.getFullYear() % 100),
      HH: pad(d.getHours(), 2), H: String(d.getHours()), hh: pad(h12, 2), h: String(h12),
      mm: pad(d.getMinutes(), 2), m: String(d.getMinutes()),
      ss: pad(d.getSeconds(), 2), s: String(d.getSeconds()),
      fff: pad(d.getMilliseconds(), 3), ff: pad(Math.floor(d.getMilliseconds() / 10), 2),
      f: String(Math.floor(d.getMilliseconds() / 100)),
      tt: d.getHours() < 12 ? "AM" : "PM", t: d.getHours() < 12 ? "A" : "P",
      zzz: sign + pad(Math.floor(abs / 60), 2) + ":" + pad(abs % 60, 2),
      zz: sign + pad(Math.floor(abs / 60), 2), z: sign + String(Math.floor(abs / 60)),
      "%": "",
    };
    return p.replace(TOKEN, (tok) => {
      if (Object.prototype.hasOwnProperty.call(parts, tok)) return parts[tok];
      if (tok[0] === "'" || tok[0] === '"') return tok.slice(1, -1);
      if (tok[0] === "\\") return tok.slice(1);
      return tok;
    });
  }

  // ---------------------------------------------------------------- layout view

  function make(tag, cls) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  function image(panel, n, cls) {
    const img = make("img", cls);
    img.alt = "";
    img.draggable = false;
    if (n !== null && n !== undefined) img.src = panel.base + "/image/" + n + ".png";
    else img.hidden = true;
    return img;
  }

  function setImage(panel, img, n) {
    if (img.dataset.n === String(n)) return;
    img.dataset.n = String(n);
    if (n === null || n === undefined) {
      img.hidden = true;
      img.removeAttribute("src");
    } else {
      img.hidden = false;
      img.src = panel.base + "/image/" + n + ".png";
    }
  }

  // Text in a font, colour and 9-way alignment, word-wrapped, "\r\n" breaking lines.
  function setText(view, text, style) {
    const key = text + "\u0000" + JSON.stringify(style);
    if (view.textKey === key) return;
    view.textKey = key;
    const box = view.text;
    const font = style.font || {};
    const align = style.align || { h: "center", v: "middle" };
    box.className = "text h-" + align.h + " v-" + align.v;
    box.style.color = style.color || "rgba(255,255,255,1)";
    box.style.fontFamily = JSON.stringify(font.family || "Arial") + ", Arial, sans-serif";
    box.style.fontSize = ((font.size || 12) * PX_PER_PT).toFixed(2) + "px";
    box.style.fontWeight = font.bold ? "700" : "400";
    box.style.fontStyle = font.italic ? "italic" : "normal";
    const deco = [];
    if (font.underline) deco.push("underline");
    if (font.strikeout) deco.push("line-through");
    box.style.textDecoration = deco.join(" ") || "none";
    view.span.textContent = String(text).replace(/\r\n?/g, "\n");
  }

  function clipFraction(img, fraction, vertical) {
    const rest = ((1 - fraction) * 100).toFixed(3) + "%";
    img.style.clipPath = vertical ? "inset(" + rest + " 0 0 0)" : "inset(0 " + rest + " 0 0)";
  }

  function fractionOf(value, min, max) {
    if (typeof value !== "number" || !(max > min)) return 0;
    return Math.max(0, Math.min(1, (value - min) / (max - min)));
  }

  function makeView(panel, container, c) {
    const node = make("div", "gc " + c.kind.toLowerCase());
    node.style.left = c.left + "px";
    node.style.top = c.top + "px";
    node.style.width = c.width + "px";
    node.style.height = c.height + "px";
    node.dataset.kind = c.kind;
    node.dataset.uid = String(c.userId);
    node.dataset.name = c.name;
    const view = { c: c, node: node, container: container, panel: panel };
    if (c.kind === "Level" || c.kind === "Slider") {
      view.min = image(panel, c.minImage !== null ? c.minImage : c.image, "min");
      view.max = image(panel, c.maxImage, "max");
      node.append(view.min, view.max);
      clipFraction(view.max, 0, c.orientation === "vertical");
      if (c.kind === "Slider") {
        const thumb = c.thumb || { image: null, width: 0, height: 0 };
        // the thumb's box, its image at its natural size in the middle
        view.thumb = make("div", "thumb");
        view.thumb.style.width = thumb.width + "px";
        view.thumb.style.height = thumb.height + "px";
        view.thumb.appendChild(image(panel, thumb.image, "thumb-face"));
        node.appendChild(view.thumb);
      }
    } else {
      view.face = image(panel, c.image, "face");
      node.appendChild(view.face);
    }
    if (c.kind === "Button" || c.kind === "Label" || c.kind === "DateTime") {
      view.text = make("div", "text");
      view.span = make("span");
      view.text.appendChild(view.span);
      node.appendChild(view.text);
    }
    if (c.kind === "Button") listenButton(view);
    if (c.kind === "Slider") listenSlider(view);
    if (c.kind === "DateTime") panel.clocks.push(view);
    return view;
  }

  function modelOf(view) {
    return view.c.userId ? view.panel.models.get(String(view.c.userId)) : undefined;
  }

  function listenButton(view) {
    const node = view.node;
    let down = null;
    const release = () => {
      if (down === null) return;
      const m = down;
      down = null;
      m.localPressed = false;
      applyModel(view.panel, m);
      post({ device: view.panel.alias, id: m.row.id, action: "release" });
    };
    node.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      const m = modelOf(view);
      if (!m || !m.row || !m.row.enabled || down !== null) return;
      down = m;
      node.setPointerCapture(e.pointerId);
      m.localPressed = true;
      applyModel(view.panel, m);
      post({ device: view.panel.alias, id: m.row.id, action: "press" });
    });
    node.addEventListener("pointerup", release);
    node.addEventListener("pointercancel", release);
    node.addEventListener("lostpointercapture", release);
  }

  function sliderValue(view, e) {
    const m = modelOf(view);
    const r = view.node.getBoundingClientRect();
    const f = view.c.orientation === "vertical"
      ? 1 - (e.clientY - r.top) / r.height
      : (e.clientX - r.left) / r.width;
    const row = m.row;
    const raw = row.min + Math.max(0, Math.min(1, f)) * (row.max - row.min);
    const step = row.step > 0 ? row.step : 1;
    return Math.min(row.max, row.min + Math.round((raw - row.min) / step) * step);
  }

  function listenSlider(view) {
    const node = view.node;
    let dragging = null;
    node.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      const m = modelOf(view);
      if (!m || !m.row || !m.row.enabled || dragging !== null) return;
      dragging = m;
      node.setPointerCapture(e.pointerId);
      m.localFill = sliderValue(view, e);
      applyModel(view.panel, m);
      post({ device: view.panel.alias, id: m.row.id, action: "press", value: m.localFill });
    });
    node.addEventListener("pointermove", (e) => {
      if (dragging === null) return;
      const value = sliderValue(view, e);
      if (value === dragging.localFill) return;
      dragging.localFill = value;
      applyModel(view.panel, dragging);
      post({ device: view.panel.alias, id: dragging.row.id, action: "slide", value: value });
    });
    const end = (e) => {
      if (dragging === null) return;
      const m = dragging;
      dragging = null;
      const value = e.type === "pointerup" ? sliderValue(view, e) : m.localFill;
      m.localFill = null;
      m.row.fill = value; // until the next poll says otherwise
      applyModel(view.panel, m);
      post({ device: view.panel.alias, id: m.row.id, action: "release", value: value });
    };
    node.addEventListener("pointerup", end);
    node.addEventListener("pointercancel", end);
  }

  // Whether the program set a button's text (shown in every state), or the states' own show:
  // the device says so (textSet), else a text other than the layout's (extronlib starts a
  // button's Text at its default state's text, or at "").
  function programText(row, c) {
    if (!row) return false;
    if (typeof row.textSet === "boolean") return row.textSet;
    return row.text !== "" && row.text !== c.text;
  }

  function buttonStateId(panel, view, m) {
    const c = view.c;
    const row = m && m.row;
    if (m && (m.localPressed || (row && row.pressed)) && c.pressState !== null &&
        c.pressState !== undefined && panel.feedback === "state") {
      return c.pressState;
    }
    if (row && row.blink) {
      const [period, states] = row.blink;
      return states[Math.floor(Date.now() / (period * 1000)) % states.length];
    }
    return row ? row.state : c.defaultState;
  }

  function renderView(panel, view, m) {
    const c = view.c;
    const row = m ? m.row : null;
    view.node.classList.toggle("off", !!row && row.visible === false);
    view.node.classList.toggle("disabled", !!row && row.enabled === false);
    if (c.kind === "Button") {
      const id = buttonStateId(panel, view, m);
      const state = c.states.find((s) => s.id === id) ||
                    c.states.find((s) => s.id === c.defaultState) || c;
      view.node.dataset.state = String(state.id !== undefined ? state.id : "");
      setImage(panel, view.face, state.image);
      setText(view, programText(row, c) ? row.text : state.text, state);
    } else if (c.kind === "Label") {
      setText(view, row && (row.textSet || row.text !== "") ? row.text : c.text, c);
    } else if (c.kind === "DateTime") {
      setText(view, formatDate(c.pattern || "h:mm tt", new Date()), c);
    } else if (c.kind === "Level" || c.kind === "Slider") {
      const vertical = c.orientation === "vertical";
      let f = 0;
      if (row && c.kind === "Level") f = fractionOf(row.level, row.min, row.max);
      if (row && c.kind === "Slider") {
        const value = m.localFill !== null && m.localFill !== undefined ? m.localFill : row.fill;
        f = fractionOf(value, row.min, row.max);
      }
      view.node.dataset.fraction = f.toFixed(4);
      clipFraction(view.max, f, vertical);
      if (view.thumb) {
        const t = c.thumb || { width: 0, height: 0 };
        if (vertical) {
          view.thumb.style.left = ((c.width - t.width) / 2) + "px";
          view.thumb.style.top = ((1 - f) * c.height - t.height / 2) + "px";
        } else {
          view.thumb.style.left = (f * c.width - t.width / 2) + "px";
          view.thumb.style.top = ((c.height - t.height) / 2) + "px";
        }
      }
    }
  }

  function applyModel(panel, m) {
    for (const view of m.views) renderView(panel, view, m);
  }

  function makeContainer(panel, k) {
    const node = make("div", "container " + k.kind);
    node.style.width = k.width + "px";
    node.style.height = k.height + "px";
    node.dataset.id = String(k.id);
    node.dataset.name = k.name;
    node.dataset.kind = k.kind;
    if (k.image !== null && k.image !== undefined) {
      const bg = image(panel, k.image, "background");
      node.appendChild(bg);
    } else if (k.fill) {
      node.style.background = k.fill;
    }
    const box = { k: k, node: node, groupRefs: new Map(), idRefs: new Map() };
    for (const c of k.controls || []) {
      if (c.kind === "PopupRef") {
        const spot = { left: c.left, top: c.top };
        if (c.group) box.groupRefs.set(c.group, spot);
        else if (c.popup !== null && c.popup !== undefined) box.idRefs.set(c.popup, spot);
        continue;
      }
      const view = makeView(panel, box, c);
      node.appendChild(view.node);
      if (c.userId) {
        const key = String(c.userId);
        let m = panel.models.get(key);
        if (!m) {
          m = { row: null, key: "", views: [], localPressed: false, localFill: null };
          panel.models.set(key, m);
        }
        m.views.push(view);
      } else {
        panel.statics.push(view);
      }
    }
    return box;
  }

  function buildPanel(dev, doc) {
    const panel = {
      alias: dev.alias, base: dev.layout, doc: doc, models: new Map(), statics: [],
      clocks: [], pages: [], popups: [], byName: new Map(), byId: new Map(),
      feedback: dev.pressFeedback || "state", shownKey: "", sideKey: "", scale: 1,
    };
    const root = make("section", "tlp");
    root.dataset.alias = dev.alias;
    const stage = make("div", "stage");
    const screen = make("div", "screen");
    screen.style.width = doc.width + "px";
    screen.style.height = doc.height + "px";
    screen.dataset.alias = dev.alias;
    stage.appendChild(screen);
    const side = make("aside", "side");
    root.append(stage, side);
    Object.assign(panel, { root: root, stage: stage, screen: screen, side: side });
    for (const font of doc.fonts || []) {
      const url = "url(" + dev.layout + "/font/" + encodeURIComponent(font.file) + ")";
      const face = new FontFace(font.family, url, { weight: font.bold ? "700" : "400",
                                                    style: font.italic ? "italic" : "normal" });
      face.load().then((f) => document.fonts.add(f)).catch(() => {});
    }
    for (const k of doc.pages) {
      const box = makeContainer(panel, k);
      panel.pages.push(box);
      screen.appendChild(box.node);
    }
    for (const k of doc.popups) {
      const box = makeContainer(panel, k);
      panel.popups.push(box);
      screen.appendChild(box.node);
    }
    for (const box of panel.pages.concat(panel.popups)) {
      const kind = box.k.kind;
      const name = kind + ":" + box.k.name, id = kind + ":" + box.k.id;
      if (!panel.byName.has(name)) panel.byName.set(name, box);
      if (!panel.byId.has(id)) panel.byId.set(id, box);
    }
    const offline = make("div", "offline generic");
    offline.textContent = "Offline";
    // asleep: the screen is dark; a touch wakes it (and presses nothing)
    const sleep = make("div", "sleep");
    sleep.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      post({ device: dev.alias, action: "touch" });
    });
    screen.append(offline, sleep);
    document.getElementById("panels").appendChild(root);
    for (const m of panel.models.values()) applyModel(panel, m);
    for (const view of panel.statics) renderView(panel, view, undefined);
    fit(panel);
    return panel;
  }

  function fit(panel) {
    const w = panel.stage.clientWidth, h = panel.stage.clientHeight;
    if (!w || !h) return;
    const scale = Math.min(w / panel.doc.width, h / panel.doc.height);
    panel.scale = scale;
    panel.screen.style.transform = "scale(" + scale + ")";
  }

  // A page or popup as the program names it: by name, else by number.
  function find(panel, kind, ref) {
    if (ref === null || ref === undefined) return undefined;
    return panel.byName.get(kind + ":" + ref) ||
           (/^\d+$/.test(String(ref)) ? panel.byId.get(kind + ":" + Number(ref)) : undefined);
  }

  function placement(panel, page, popup) {
    const k = popup.k;
    if (k.modal) return { left: 0, top: 0 };
    const refs = [page].concat(panel.pages.filter((p) => p !== page)).filter(Boolean);
    for (const box of refs) {
      const spot = k.group ? box.groupRefs.get(k.group) : box.idRefs.get(k.id);
      if (spot) return spot;
    }
    return { left: Math.max(0, (panel.doc.width - k.width) / 2),
             top: Math.max(0, (panel.doc.height - k.height) / 2) };
  }

  function showContainers(panel, dev) {
    const unknown = [];
    let page = find(panel, "page", dev.page);
    if (!page && dev.page !== null) unknown.push("page " + dev.page);
    page = page || find(panel, "page", panel.doc.defaultPage) || panel.pages[0];
    // popups in the order shown; one member per group (the last shown)
    const shown = [];
    const groups = new Map();
    for (const ref of dev.popups) {
      const box = find(panel, "popup", ref);
      if (!box) unknown.push("popup " + ref);
      if (!box || shown.includes(box)) continue;
      if (box.k.group) {
        const other = groups.get(box.k.group);
        if (other) shown.splice(shown.indexOf(other), 1);
        groups.set(box.k.group, box);
      }
      shown.push(box);
    }
    const offline = lost ? find(panel, "popup", panel.doc.offlinePage) : undefined;
    if (offline && !shown.includes(offline)) shown.push(offline);
    panel.unknown = unknown;
    const key = (page ? page.k.id : "-") + "|" + shown.map((b) => b.k.id).join(",") +
                "|" + lost;
    if (key === panel.shownKey) return;
    panel.shownKey = key;
    for (const box of panel.pages) {
      box.node.classList.toggle("shown", box === page);
      box.node.style.zIndex = "0";
    }
    for (const box of panel.popups) {
      const at = shown.indexOf(box);
      box.node.classList.toggle("shown", at >= 0);
      if (at < 0) continue;
      const spot = placement(panel, page, box);
      box.node.style.left = spot.left + "px";
      box.node.style.top = spot.top + "px";
      box.node.style.zIndex = String(1 + at);
    }
    panel.screen.classList.toggle("lost", lost && !offline);
  }

  function list(title, items) {
    const frag = document.createDocumentFragment();
    const h = make("div", "meta");
    h.textContent = title + (items.length ? "" : ": none");
    frag.appendChild(h);
    if (items.length) {
      const ul = make("ul");
      for (const item of items) {
        const li = make("li");
        li.textContent = String(item);
        ul.appendChild(li);
      }
      frag.appendChild(ul);
    }
    return frag;
  }

  function renderSide(panel, dev, missing, unwrapped) {
    const unknown = panel.unknown || [];
    const key = JSON.stringify([dev.page, dev.popups, dev.sleep, missing, unwrapped, lost,
                                unknown]);
    if (key === panel.sideKey) return;
    panel.sideKey = key;
    const h = make("h2");
    h.textContent = dev.alias;
    const meta = make("div", "meta now");
    const pageName = dev.page === null ? panel.doc.defaultPage + " (default)" : dev.page;
    meta.textContent = "page " + pageName + " | popups " +
                       (dev.popups.length ? dev.popups.join(", ") : "-") + " | " + dev.sleep +
                       (lost ? " | offline" : "");
    const a = list("Used by the program, not in the layout", missing);
    a.firstChild.classList.add("missing");
    const b = list("In the layout, never used by the program", unwrapped);
    b.firstChild.classList.add("unwrapped");
    const c = list("Shown by the program, not in the layout", unknown);
    c.firstChild.classList.add("unknown");
    const report = make("div", "report");
    report.dataset.missing = JSON.stringify(missing);
    report.dataset.unwrapped = JSON.stringify(unwrapped);
    report.dataset.unknown = JSON.stringify(unknown);
    report.append(a, b, c);
    panel.side.replaceChildren(h, meta, report);
  }

  function renderPanel(panel, dev) {
    panel.feedback = dev.pressFeedback || "state";
    const seen = new Set();
    const missing = [];
    for (const row of dev.controls) {
      const key = String(row.id);
      const m = panel.models.get(key);
      if (!m) { missing.push(row.id); continue; }
      seen.add(key);
      const rowKey = JSON.stringify(row);
      if (rowKey === m.key) continue;
      m.key = rowKey;
      m.row = row;
      applyModel(panel, m);
    }
    for (const [key, m] of panel.models) {
      if (!seen.has(key) && m.row !== null) {
        m.row = null;
        m.key = "";
        applyModel(panel, m);
      }
    }
    const report = dev.report || {
      missing: missing,
      unwrapped: Array.from(panel.models.keys()).filter((k) => !seen.has(k)).map(Number)
        .sort((a, b) => a - b),
    };
    showContainers(panel, dev);
    panel.screen.classList.toggle("asleep", dev.sleep === "Asleep");
    renderSide(panel, dev, report.missing || [], report.unwrapped || []);
  }

  // ---------------------------------------------------------------- polling

  function render(state) {
    const layouts = state.devices.filter((d) => d.layout);
    document.body.classList.toggle("layouts", layouts.length > 0);
    document.getElementById("status").textContent =
      state.devices.length ? "" : "The program has no UIDevice.";
    for (const dev of state.devices) {
      if (!dev.layout) { renderGeneric(dev); continue; }
      const panel = panels.get(dev.alias);
      if (panel === undefined) {
        panels.set(dev.alias, "loading");
        fetch(dev.layout, { cache: "no-cache" })
          .then((r) => {
            if (!r.ok) throw new Error(dev.layout + ": HTTP " + r.status);
            return r.json();
          })
          .then((doc) => {
            const built = buildPanel(dev, doc);
            panels.set(dev.alias, built);
            renderPanel(built, dev);
          })
          .catch((e) => { panels.delete(dev.alias); showError(String(e)); });
      } else if (panel !== "loading") {
        renderPanel(panel, dev);
      }
    }
  }

  let last = null;
  let version = null; // of the last state: the server answers 204 while it is unchanged
  let timer = null;
  // what tests and a curious person can read: polls applied, the last one's cost
  const stats = { polls: 0, failures: 0, renderMs: 0, maxMs: 0 };
  window.panelStats = stats;

  function refresh() {
    clearTimeout(timer);
    const url = version ? "state?known=" + encodeURIComponent(version) : "state";
    return fetch(url, { cache: "no-store" })
      .then((r) => {
        if (!r.ok) throw new Error("state: HTTP " + r.status);
        if (r.status === 204) return null; // as last time
        version = r.headers.get("x-panel-version");
        return r.json();
      })
      .then((fresh) => {
        const start = performance.now();
        if (fresh !== null) {
          lost = false;
          last = fresh;
          render(fresh);
          showError("");
        }
        stats.renderMs = performance.now() - start;
        stats.maxMs = Math.max(stats.maxMs, stats.renderMs);
        stats.polls++;
      })
      .catch((e) => {
        lost = true;
        version = null;
        stats.failures++;
        showError(String(e));
        if (last) render(last);
      })
      .finally(() => { timer = setTimeout(refresh, POLL_MS); });
  }

  // blinking buttons and clocks between polls
  function tick() {
    for (const panel of panels.values()) {
      if (panel === "loading") continue;
      for (const m of panel.models.values()) {
        if (m.row && m.row.blink) applyModel(panel, m);
      }
      for (const view of panel.clocks) renderView(panel, view, modelOf(view));
    }
  }

  window.addEventListener("resize", () => {
    for (const panel of panels.values()) if (panel !== "loading") fit(panel);
  });
  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(tick, 250);
  });
})();
