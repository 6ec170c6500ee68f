# -*- test-case-name: tests.test_status_health -*-
"""The service's log: the outage-lines filter, and JSON log lines."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from twisted.logger import (
    ILogFilterPredicate,
    ILogObserver,
    LogLevel,
    PredicateResult,
    formatEvent,
)
from zope.interface import implementer

from twisted_ch.service._outages import isoTime, outageLog
from twisted_ch.service._registry import Registry, _isJSONScalar

__all__ = ["OutageLinesOnly", "eventAsLine", "jsonLogObserver"]

# the operators' log: one line per outage event, not one per attempt


@implementer(ILogFilterPredicate)
class OutageLinesOnly:
    """
    A log filter for the service's log: for a device L{DeviceTrack}s watch, its outage lines
    (namespace C{twisted_ch.outage}) replace the core's transition lines and its link's
    per-attempt lines ("connect failed", "connected", "disconnected"), which at debug level
    still show.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, event: dict[str, Any]) -> Any:  # a PredicateResult constant
        namespace = event.get("log_namespace") or ""
        if namespace == outageLog.namespace:
            return PredicateResult.maybe
        level = event.get("log_level")
        if "chStatus" in event:
            name = event.get("device")
        elif namespace.startswith("twisted_ch._link") and level in (LogLevel.debug, LogLevel.info):
            name = event.get("link")
        else:
            return PredicateResult.maybe
        # also once the registry let it go: a stopping link reports the count of its last
        # failed attempts
        if isinstance(name, str) and self.registry.wasTracked(name):
            return PredicateResult.no
        return PredicateResult.maybe


# JSON log lines

_LEVELS = {
    LogLevel.debug: "debug",
    LogLevel.info: "info",
    LogLevel.warn: "warning",
    LogLevel.error: "error",
    LogLevel.critical: "critical",
}


def _jsonable(value: object) -> object:
    if _isJSONScalar(value):
        if isinstance(value, float) and value != value:  # NaN
            return None
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list | tuple) and all(_isJSONScalar(v) for v in value):
        return list(value)
    return str(value)


def eventAsLine(event: dict[str, Any]) -> str:
    """One log event as one line of JSON: time, level, namespace, text, then its fields."""
    level = event.get("log_level")
    record: dict[str, object] = {
        "time": isoTime(event.get("log_time")),
        "level": _LEVELS.get(level, str(level)) if level is not None else None,
        "namespace": event.get("log_namespace"),
        "text": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in record or key in ("format", "message", "isError"):
            continue
        record[key] = _jsonable(value)
    if "device" not in record:
        device = _deviceOf(event)
        if device is not None:
            record["device"] = device
    failure = event.get("log_failure")
    if failure is not None:
        record["failure"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False, default=str)


def _deviceOf(event: dict[str, Any]) -> str | None:
    """The device a handler's or link's log line is about (its link description)."""
    link = event.get("link")
    if isinstance(link, str):
        return link
    handler = event.get("handler")
    if handler is None:
        return None
    try:
        description = handler.Interface.link.description
    except Exception:
        return None
    return description if isinstance(description, str) else None


@implementer(ILogObserver)
class _JSONLineObserver:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = eventAsLine(event)
        except Exception as e:  # a log line must never break the program
            line = json.dumps({"level": "error", "text": f"unloggable event: {e!r}"})
        self.out.write(line + "\n")
        self.out.flush()


def jsonLogObserver(out: IO[str] | None = None) -> ILogObserver:
    """
    An observer writing one JSON object per line to C{out} (standard output by default).

    Also usable as C{twistd --logger twisted_ch.service._logs.jsonLogObserver}.
    """
    return _JSONLineObserver(out if out is not None else sys.stdout)
