# -*- test-case-name: tests.test_panel -*-
"""
The virtual panel on the status port: C{/panel/} shows the program's UIDevices.  A UIDevice with
a layout (C{UIDevice.layout}) is drawn as its GUI Designer layout draws it (pages, popups,
controls in their states); one without is listed control by control.  Pressing a control there
fires its events in the program, as a finger on a real panel would.

C{/panel/state} is the JSON the page polls (C{204} when it has not changed since the version
the page names); C{/panel/action} (POST, C{application/json}) is what
it sends; C{/panel/layout/<alias>} is a device's layout document, with its images
(C{image/<n>.png}) and embedded fonts (C{font/<file>}).  Actions are accepted only with a JSON
content type (a browser cannot send that across origins without a preflight this resource never
grants); every request needs a C{Host} header naming this machine (no DNS rebinding), since
pressing a button can switch real equipment.  The page itself is static (C{static/}).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch import _site
from twisted_ch.extronlib.device import UIDevice, uiDevices

__all__ = ["ActionError", "panelResource", "panelState", "perform"]

log = Logger(namespace="twisted_ch.panel")

_MAX_BODY = 4096

#: What the panel page may load: its own script, style, state, images and fonts; nothing else.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)

_STATIC = {
    b"panel.js": ("panel.js", b"text/javascript; charset=utf-8"),
    b"panel.css": ("panel.css", b"text/css; charset=utf-8"),
}

_FONT_TYPES = {
    "ttf": b"font/ttf",
    "otf": b"font/otf",
    "woff": b"font/woff",
    "woff2": b"font/woff2",
}


def _staticFile(name: str) -> bytes:
    return resources.files("twisted_ch.panel").joinpath("static", name).read_bytes()


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
        blink = control.blinking
        row.update(
            text=control.Text,
            state=control.State,
            pressed=control.PressedState,
            blinking=blink is not None,
        )
        if blink is not None:
            row["blink"] = [blink[0], list(blink[1])]
    elif kind == "Label":
        row.update(text=control.Text)
    textSet = getattr(control, "textSet", None)
    if isinstance(textSet, bool):  # whether the program set the text (else the layout's shows)
        row["textSet"] = textSet
    elif kind == "Level":
        row.update(level=control.Level, min=control.Min, max=control.Max)
    elif kind == "Slider":
        row.update(fill=control.Fill, min=control.Min, max=control.Max, step=control.Step)
    return row


def _pressFeedback(alias: str) -> str:
    site = _site.current()
    if site is None:
        return "state"
    return str(site.ui.get(alias, {}).get("press_feedback", "state"))


def _layoutUrl(alias: str) -> str:
    return "layout/" + quote(alias, safe="")


def _deviceState(device: UIDevice) -> dict[str, object]:
    layout = getattr(device, "layout", None)
    row: dict[str, object] = {
        "alias": device.DeviceAlias,
        "model": device.ModelName,
        "page": device.page,
        "popups": list(device.popups),
        "sleep": device.SleepState,
        "leds": {str(k): v for k, v in device.leds.items()},
        "controls": [_controlState(c) for c in list(device.controls.values())],
        "layout": None,
    }
    if layout is not None:
        report = getattr(device, "layoutReport", None)
        row.update(
            layout=_layoutUrl(device.DeviceAlias),
            report=report() if report is not None else None,
            pressFeedback=_pressFeedback(device.DeviceAlias),
        )
    return row


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


def _refuse(request: Request, code: int, why: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps({"ok": False, "error": why}).encode("utf-8")


class _Guarded(Resource):
    """A GET resource that answers only requests whose Host names this machine."""

    def render_GET(self, request: Request) -> bytes:
        if not _trustedHost(request.getHeader(b"host")):
            return _refuse(request, 403, "the Host header does not name this machine")
        return self.get(request)

    def get(self, request: Request) -> bytes:
        raise NotImplementedError


def _immutable(request: Request, body: bytes, contentType: bytes, maxAge: int) -> bytes:
    """C{body} with an ETag (a conditional GET gets 304) and a cache lifetime."""
    etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
    request.setHeader(b"content-type", contentType)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"etag", etag)
    request.setHeader(b"cache-control", b"private, max-age=%d" % maxAge)
    if request.getHeader(b"if-none-match") == etag:
        request.setResponseCode(304)
        return b""
    return body


class _State(_Guarded):
    isLeaf = True

    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.devices = devices

    def get(self, request: Request) -> bytes:
        """The state; 204 when it is the version the page says it has (C{?known=<version>})."""
        body = json.dumps(panelState(self.devices), default=str, separators=(",", ":"))
        data = body.encode("utf-8")
        version = hashlib.sha256(data).hexdigest()[:24].encode()
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-panel-version", version)
        if (request.args or {}).get(b"known") == [version]:
            request.setResponseCode(204)
            return b""
        request.setHeader(b"content-type", b"application/json")
        return data


class _LayoutFiles(_Guarded):
    """C{layout/<alias>}, C{layout/<alias>/image/<n>.png}, C{layout/<alias>/font/<file>}."""

    isLeaf = True

    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.devices = devices

    def get(self, request: Request) -> bytes:
        path = [p.decode("utf-8", "replace") for p in request.postpath or []]
        if not path or not path[0]:
            return _refuse(request, 404, "no such layout")
        alias, rest = path[0], path[1:]
        device = next((d for d in self.devices() if d.DeviceAlias == alias), None)
        layout = getattr(device, "layout", None)
        if layout is None:
            return _refuse(request, 404, f"{alias!r} has no layout")
        if rest in ([], [""]):
            document = json.dumps(layout.document(), separators=(",", ":")).encode("utf-8")
            return _immutable(request, document, b"application/json", 0)
        if len(rest) == 2 and rest[0] == "image":
            images: Mapping[int, bytes] = layout.images
            stem, dot, ext = rest[1].partition(".")
            if dot and ext == "png" and stem.isascii() and stem.isdigit():
                body = images.get(int(stem))
                if body is not None:
                    return _immutable(request, body, b"image/png", 3600)
            return _refuse(request, 404, f"the layout of {alias!r} has no image {rest[1]!r}")
        if len(rest) == 2 and rest[0] == "font":
            fonts: Mapping[str, bytes] = layout.fonts
            body = fonts.get(rest[1])  # only a file the layout holds: no path is ever opened
            kind = _FONT_TYPES.get(rest[1].rpartition(".")[2].lower())
            if body is not None and kind is not None:
                return _immutable(request, body, kind, 3600)
            return _refuse(request, 404, f"the layout of {alias!r} has no font {rest[1]!r}")
        return _refuse(request, 404, "no such layout file")


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
            return _refuse(request, 415, "actions are application/json")
        if not _trustedHost(request.getHeader(b"host")):
            return _refuse(request, 403, "the Host header does not name this machine")
        assert request.content is not None
        body = request.content.read(_MAX_BODY + 1)
        if len(body) > _MAX_BODY:
            return _refuse(request, 413, "action too large")
        try:
            action = json.loads(body)
            if not isinstance(action, dict):
                raise ActionError("an action is a JSON object")
            perform(self.devices(), action)
        except (ValueError, TypeError, ActionError) as e:
            return _refuse(request, 400, str(e))
        log.info(
            "panel: {action} {device} {id}",
            action=action.get("action"),
            device=action.get("device"),
            id=action.get("id"),
        )
        return b'{"ok": true}'


class _Static(_Guarded):
    isLeaf = True

    def __init__(self, name: str, contentType: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name = name
        self.contentType = contentType

    def get(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return _staticFile(self.name)


class _Page(_Guarded):
    def __init__(self, devices: Callable[[], list[UIDevice]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.putChild(b"state", _State(devices))
        self.putChild(b"action", _Action(devices))
        self.putChild(b"layout", _LayoutFiles(devices))
        for path, (name, contentType) in _STATIC.items():
            self.putChild(path, _Static(name, contentType))

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        child: Resource = super().getChild(path, request)  # type: ignore[no-untyped-call]
        return child

    def get(self, request: Request) -> bytes:
        if not request.path.endswith(b"/"):
            request.redirect(request.path + b"/")
            return b""
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return _staticFile("panel.html")


def panelResource(devices: Callable[[], list[UIDevice]] = uiDevices) -> Resource:
    """C{/panel/} (the page), its state, actions, layouts and files for the given UIDevices."""
    return _Page(devices)
