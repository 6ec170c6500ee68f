# -*- test-case-name: tests.test_rooms -*-
"""
What operators do to devices over HTTP (C{POST /actions}): reconnect now, pause polling for
maintenance, resume; per device or per room.  And C{/status?room=...&tag=...}: the status
document of one room's (one tag's) entries.

Requests are guarded as C{/trace}'s are (L{TraceResource}): refused unless the status port is
bound to loopback or the request carries the config's C{[status] token}, and refused from a web
page of another origin.  Each action is logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._trace import TraceResource

__all__ = ["ACTIONS", "ActionsResource", "FilteredStatus", "mountActions", "runAction"]

log = Logger(namespace="twisted_ch.actions")

#: What C{POST /actions} does: C{{"action": ..., "device": NAME}} or C{{..., "room": ROOM}}.
ACTIONS = ("reconnect", "pause", "resume")
#: The largest request body read.
MAX_BODY = 4096


def _connect(entry: Entry) -> None:
    """Start the entry's handler as the devices service does (its configured timeout)."""
    cfg = entry.config
    handler = entry.handler
    if getattr(cfg, "connection", "stream") == "stream":
        result = handler.Connect(getattr(cfg, "connectTimeout", None))
    else:
        result = handler.Connect()
    if isinstance(result, Deferred):
        result.addErrback(_logFailure, entry.name, "connect")


def _logFailure(failure: Failure, name: str, what: str) -> None:
    log.failure("{device}: {what} failed", failure, device=name, what=what)


def runAction(registry: Registry, entry: Entry, action: str) -> str | None:
    """
    Do C{action} to one entry's device; None when done, else why not (the device is left as is).
    """
    if entry.kind != "device" or entry.config is None:
        return "not a configured device (a server or a program's link)"
    handler = entry.handler
    paused = registry.pausedSince(entry) is not None
    if action == "pause":
        if paused:
            return "paused already"
        registry.setPaused(entry, True)
        done = handler.Disconnect()
        if isinstance(done, Deferred):
            done.addErrback(_logFailure, entry.name, "pause")
    elif action == "resume":
        if not paused:
            return "not paused"
        registry.setPaused(entry, False)
        _connect(entry)
    elif action == "reconnect":
        if paused:
            return "paused: resume it instead"
        done = handler.Disconnect()
        if isinstance(done, Deferred):
            done.addBoth(lambda _: _connect(entry))
        else:
            _connect(entry)
    else:
        return f"no such action {action!r}; actions: {', '.join(ACTIONS)}"
    return None


class ActionsResource(Resource):
    """
    C{POST /actions} with a JSON object: C{action} (reconnect, pause or resume) and C{device}
    (a name) or C{room}.  Answers C{{"action", "done": [names], "skipped": {name: why}}}.
    """

    isLeaf = True

    def __init__(
        self, registry: Registry, loopback: Callable[[], bool], token: str | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry
        # read by the guard /trace uses (TraceResource._refusal), so both refuse alike
        self.loopback = loopback
        self.token = token

    def _answer(self, request: Request, code: int, document: object) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(document, indent=2).encode("utf-8") + b"\n"

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"allow", b"POST")
        return self._answer(request, 405, {"error": "POST a JSON object", "actions": ACTIONS})

    def render_POST(self, request: Request) -> bytes:
        client = str(request.getClientAddress())
        refused: str | None = TraceResource._refusal(self, request)  # type: ignore[arg-type]
        if refused is not None:
            log.warn("action from {client} refused: {why}", client=client, why=refused)
            return self._answer(request, 403, {"error": f"refused: {refused}"})
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            return self._answer(request, 415, {"error": "send a JSON object (application/json)"})
        body = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        try:
            document = json.loads(body) if len(body) <= MAX_BODY else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return self._answer(request, 400, {"error": "a JSON object of at most 4096 bytes"})
        action = document.get("action")
        if action not in ACTIONS:
            return self._answer(
                request, 400, {"error": f"action: one of {', '.join(ACTIONS)}, got {action!r}"}
            )
        device, room = document.get("device"), document.get("room")
        if (device is None) == (room is None) or not isinstance(device or room, str):
            return self._answer(request, 400, {"error": "give device (a name) or room"})
        if device is not None:
            entry = self.registry.find(device)
            targets = [entry] if entry is not None else []
            what = f"device {device!r}"
        else:
            targets = [e for e in self.registry.entries() if e.room == room and e.kind == "device"]
            what = f"room {room!r}"
        if not targets:
            return self._answer(request, 404, {"error": f"no {what}"})
        done: list[str] = []
        skipped: dict[str, str] = {}
        for entry in targets:
            why = runAction(self.registry, entry, action)
            if why is None:
                done.append(entry.name)
                log.info(
                    "{device}: {action} (asked by {client})",
                    device=entry.name,
                    action=action,
                    client=client,
                    room=entry.room,
                )
            else:
                skipped[entry.name] = why
        code = 200 if done or device is None else 409
        return self._answer(request, code, {"action": action, "done": done, "skipped": skipped})


class FilteredStatus(Resource):
    """
    C{/status} with C{?room=ROOM} and/or C{?tag=TAG}: only those entries (their summary too);
    without either, the status resource it wraps answers.
    """

    isLeaf = True

    def __init__(self, registry: Registry, whole: Any) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry
        self.whole = whole

    def render_GET(self, request: Request) -> bytes:
        args = request.args or {}
        room, tag = args.get(b"room"), args.get(b"tag")
        if room is None and tag is None:
            whole: bytes = self.whole.render_GET(request)
            return whole
        if request.postpath and request.postpath != [b""]:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"no such page\n"
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        compact = args.get(b"compact", [b"0"])[-1] not in (b"", b"0")
        text = self.registry.statusJSON(
            compact,
            room=room[-1].decode("utf-8", "replace") if room else None,
            tag=tag[-1].decode("utf-8", "replace") if tag else None,
        )
        return text.encode("utf-8")


def mountActions(
    root: Resource, registry: Registry, loopback: Callable[[], bool], token: str | None
) -> None:
    """Put C{/actions} on the status site, and the room and tag filters on its C{/status}."""
    whole = root.children.get(b"status")
    if whole is not None and not getattr(whole, "filtersRooms", False):
        root.putChild(b"status", FilteredStatus(registry, whole))
    root.putChild(b"actions", ActionsResource(registry, loopback, token))
