"""
The virtual panel: on the status port, C{/panel} shows the program's UIDevices (touch panels)
with their buttons, labels, levels, sliders and knobs by ID, as the program set them; pressing a
control there fires its events in the program, as a finger on a real panel would.

C{/panel/state} is the JSON the page polls; C{/panel/action} (POST, C{application/json}) is what
it sends.  Actions are accepted only with a JSON content type (a browser cannot send that across
origins without a preflight this resource never grants) and a C{Host} header naming this machine
(no DNS rebinding), since pressing a button can switch real equipment.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch.extronlib.device import UIDevice, uiDevices

__all__ = ["panelResource", "panelState"]

log = Logger(namespace="twisted_ch.panel")

_MAX_BODY = 4096


def _controlState(control: Any) -> dict[str, object]:
    kind = type(control).__name__
    row: dict[str, object] = {
        "id": control.ID,
        "kind": kind,
        "name": control.Name,
        "visible": control.Visible,
        "enabled": control.Enabled,
    }
    if kind == "Button":
        row.update(
            text=control.Text,
            state=control.State,
            pressed=control.PressedState,
            blinking=control.BlinkState == "Blinking",
        )
    elif kind == "Label":
        row.update(text=control.Text)
    elif kind == "Level":
        row.update(level=control.Level, min=control.Min, max=control.Max)
    elif kind == "Slider":
        row.update(fill=control.Fill, min=control.Min, max=control.Max, step=control.Step)
    return row


def _deviceState(device: UIDevice) -> dict[str, object]:
    return {
        "alias": device.DeviceAlias,
        "model": device.ModelName,
        "page": device.page,
        "popups": list(device.popups),
        "sleep": device.SleepState,
        "leds": {str(k): v for k, v in device.leds.items()},
        "controls": [_controlState(c) for c in list(device.controls.values())],
    }


def panelState(devices: Callable[[], list[UIDevice]] = uiDevices) -> dict[str, object]:
    """What C{/panel/state} returns: every UIDevice and its controls."""
    return {"devices": [_deviceState(d) for d in devices()]}


def _trustedHost(header: bytes | None) -> bool:
    if not header:
        return False
    text = header.decode("latin-1").strip().lower()
    host = text[1:].split("]", 1)[0] if text.startswith("[") else text.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    return host in names


class _State(Resource):
    isLeaf = True

    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.devices = devices

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(panelState(self.devices), default=str).encode("utf-8")


class ActionError(Exception):
    """A panel action that cannot be done (the message says why)."""


def perform(devices: list[UIDevice], action: dict[str, Any]) -> None:
    """Do one panel action: C{{device, id, action, value}} (press, release, turn, slide...)."""
    alias, what = action.get("device"), action.get("action")
    device = next((d for d in devices if d.DeviceAlias == alias), None)
    if device is None:
        raise ActionError(f"no UIDevice {alias!r}")
    if what == "touch":
        device.touch()
        return
    key = str(action.get("id"))
    control = next((c for c in list(device.controls.values()) if str(c.ID) == key), None)
    if control is None:
        raise ActionError(f"{alias} has no control {key!r}")
    kind = type(control).__name__
    value = action.get("value")
    if kind == "Button" and what in ("press", "release"):
        getattr(control, what)()
    elif kind == "Knob" and what == "turn" and isinstance(value, int) and value:
        control.turn(value)
    elif kind == "Slider" and what in ("press", "slide", "release"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ActionError("a slider action needs a number value")
        getattr(control, what)(value)
    else:
        raise ActionError(f"cannot {what!r} a {kind}")


class _Action(Resource):
    isLeaf = True

    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.devices = devices

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        contentType = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
        if contentType != b"application/json":
            return self._refuse(request, 415, "actions are application/json")
        if not _trustedHost(request.getHeader(b"host")):
            return self._refuse(request, 403, "the Host header does not name this machine")
        assert request.content is not None
        body = request.content.read(_MAX_BODY + 1)
        if len(body) > _MAX_BODY:
            return self._refuse(request, 413, "action too large")
        try:
            action = json.loads(body)
            if not isinstance(action, dict):
                raise ActionError("an action is a JSON object")
            perform(self.devices(), action)
        except (ValueError, TypeError, ActionError) as e:
            return self._refuse(request, 400, str(e))
        log.info(
            "panel: {action} {device} {id}",
            action=action.get("action"),
            device=action.get("device"),
            id=action.get("id"),
        )
        return b'{"ok": true}'

    @staticmethod
    def _refuse(request: Request, code: int, why: str) -> bytes:
        request.setResponseCode(code)
        return json.dumps({"ok": False, "error": why}).encode("utf-8")


class _Page(Resource):
    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.putChild(b"state", _State(devices))
        self.putChild(b"action", _Action(devices))

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        child: Resource = super().getChild(path, request)  # type: ignore[no-untyped-call]
        return child

    def render_GET(self, request: Request) -> bytes:
        if not request.path.endswith(b"/"):
            request.redirect(request.path + b"/")
            return b""
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return PAGE.encode("utf-8")


def panelResource(devices: Callable[[], list[UIDevice]] = uiDevices) -> Resource:
    """C{/panel/} (the page), C{/panel/state} and C{/panel/action} for the given UIDevices."""
    return _Page(devices)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>twisted_ch virtual panel</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1em; background: #f3f3f3; color: #222; }
.device { background: #fff; border: 1px solid #ccc; border-radius: 8px; padding: 1em;
          margin-bottom: 1em; max-width: 60em; }
.device h2 { margin: 0 0 .3em 0; font-size: 1.2em; }
.meta { color: #666; margin-bottom: .6em; }
.controls { display: flex; flex-wrap: wrap; gap: .6em; }
.control { border: 1px solid #ddd; border-radius: 6px; padding: .5em; min-width: 9em; }
.control .id { color: #888; font-size: .8em; }
.control.hidden { opacity: .35; }
button.ui { min-width: 8em; min-height: 3em; font-size: 1em; border-radius: 6px;
            border: 1px solid #888; background: #e8e8e8; cursor: pointer; user-select: none; }
button.ui.state1 { background: #7fc97f; }
button.ui.state2 { background: #fdc086; }
button.ui.state3 { background: #beaed4; }
button.ui.pressed { outline: 3px solid #333; }
button.ui:disabled { cursor: not-allowed; opacity: .5; }
button.ui.blinking { animation: blink 1s steps(2, start) infinite; }
@keyframes blink { to { visibility: hidden; } }
.label { font-size: 1.1em; min-height: 1.4em; }
#error { color: #b00; }
</style></head>
<body>
<h1>Virtual panel</h1>
<p id="status">loading...</p>
<p id="error"></p>
<div id="devices"></div>
<script>
"use strict";
const known = new Map();  // "alias|id" -> element holder
function post(action) {
  return fetch("action", {method: "POST", headers: {"content-type": "application/json"},
                          body: JSON.stringify(action)})
    .then(r => r.json()).then(r => {
      document.getElementById("error").textContent = r.ok ? "" : r.error;
    }).then(refresh);
}
function deviceBox(dev) {
  let box = document.getElementById("device-" + dev.alias);
  if (!box) {
    box = document.createElement("div");
    box.className = "device"; box.id = "device-" + dev.alias;
    const h = document.createElement("h2"); h.textContent = dev.alias; box.appendChild(h);
    const meta = document.createElement("div"); meta.className = "meta"; box.appendChild(meta);
    const controls = document.createElement("div"); controls.className = "controls";
    box.appendChild(controls);
    document.getElementById("devices").appendChild(box);
  }
  return box;
}
function makeControl(dev, c, parent) {
  const key = dev.alias + "|" + c.id;
  const wrap = document.createElement("div");
  wrap.className = "control";
  const id = document.createElement("div"); id.className = "id";
  id.textContent = c.kind + " " + c.id; wrap.appendChild(id);
  const act = (action, value) => post({device: dev.alias, id: c.id, action: action, value: value});
  let el;
  if (c.kind === "Button") {
    el = document.createElement("button"); el.className = "ui";
    el.dataset.id = String(c.id);
    let down = false;
    const press = e => { e.preventDefault(); if (!down) { down = true; act("press"); } };
    const release = e => { if (down) { down = false; act("release"); } };
    el.addEventListener("pointerdown", press);
    el.addEventListener("pointerup", release);
    el.addEventListener("pointerleave", release);
  } else if (c.kind === "Label") {
    el = document.createElement("div"); el.className = "label";
  } else if (c.kind === "Level") {
    el = document.createElement("meter");
  } else if (c.kind === "Slider") {
    el = document.createElement("input"); el.type = "range";
    el.addEventListener("pointerdown", () => act("press", Number(el.value)));
    el.addEventListener("input", () => act("slide", Number(el.value)));
    el.addEventListener("change", () => act("release", Number(el.value)));
  } else if (c.kind === "Knob") {
    el = document.createElement("span");
    for (const [text, steps] of [["\\u25c0", -1], ["\\u25b6", 1]]) {
      const b = document.createElement("button"); b.textContent = text;
      b.addEventListener("click", () => act("turn", steps)); el.appendChild(b);
    }
  } else {
    el = document.createElement("span");
  }
  el.dataset.key = key;
  wrap.appendChild(el);
  parent.appendChild(wrap);
  const holder = {wrap: wrap, el: el};
  known.set(key, holder);
  return holder;
}
function update(holder, c) {
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
    el.min = c.min; el.max = c.max; el.value = c.level; el.title = String(c.level);
  } else if (c.kind === "Slider") {
    el.min = c.min; el.max = c.max; el.step = c.step; el.disabled = !c.enabled;
    if (document.activeElement !== el) el.value = c.fill;
  }
}
function render(state) {
  document.getElementById("status").textContent =
    state.devices.length ? "" : "The program has no UIDevice.";
  for (const dev of state.devices) {
    const box = deviceBox(dev);
    box.querySelector(".meta").textContent =
      "page " + (dev.page === null ? "-" : dev.page) +
      " | popups " + (dev.popups.length ? dev.popups.join(", ") : "-") + " | " + dev.sleep;
    const parent = box.querySelector(".controls");
    for (const c of dev.controls) {
      const holder = known.get(dev.alias + "|" + c.id) || makeControl(dev, c, parent);
      update(holder, c);
    }
  }
}
function refresh() {
  return fetch("state", {cache: "no-store"}).then(r => r.json()).then(render)
    .catch(e => { document.getElementById("error").textContent = String(e); });
}
refresh();
setInterval(refresh, 300);
</script>
</body></html>
"""
