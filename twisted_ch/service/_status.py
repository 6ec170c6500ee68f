"""
The operators' view: C{/status} (JSON per device), C{/metrics} (Prometheus text) and JSON log
lines.

The page reads the handlers' counters when asked (L{Registry}); it keeps no state of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.logger import ILogObserver, Logger, LogLevel, formatEvent
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from twisted_ch._version import __version__
from twisted_ch.service._config import isWildcardAddress, redactEndpoint
from twisted_ch.service._limits import ConnectionLimiter, refuseToStart

__all__ = [
    "Entry",
    "Registry",
    "StatusService",
    "eventAsLine",
    "jsonLogObserver",
    "statusResource",
]

log = Logger(namespace="twisted_ch.status")


def isoTime(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC (millisecond precision)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass
class Entry:
    """One watched handler: its name, what kind of thing it is, where it connects."""

    name: str
    handler: Any
    endpoint: str = ""
    kind: str = "device"
    probe: Any = None
    #: more fields for its status row (JSON scalars)
    extra: dict[str, object] = field(default_factory=dict)

    def row(self, showPaths: bool = False) -> dict[str, object]:
        """The status JSON object for this entry (local paths in its endpoint hidden unless
        C{showPaths})."""
        stats: dict[str, Any] = {}
        statsOf = getattr(self.handler, "stats", None)
        if callable(statsOf):
            stats = dict(statsOf())
        if self.kind == "server":
            state = "Listening" if stats.get("listening") else "Not listening"
        else:
            state = stats.pop("status", getattr(self.handler, "ConnectionStatus", "Unknown"))
        since = stats.pop("since", None)
        lastError = stats.pop("lastError", None)
        row: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "handler": type(self.handler).__name__,
            "endpoint": redactEndpoint(self.endpoint, showPaths),
            "state": state,
            "since": isoTime(since) if isinstance(since, int | float) else since,
        }
        if self.kind == "device":
            row.update(
                polls=stats.pop("polls", 0),
                misses=stats.pop("misses", 0),
                transitions=stats.pop("transitions", 0),
                reconnects=stats.pop("reconnects", 0),
            )
        probe = self.probe
        probeProblem = getattr(probe, "lastProblem", None)
        row["lastError"] = lastError if lastError is not None else probeProblem
        if probe is not None:
            describe = getattr(probe, "describe", None)
            row["probe"] = {
                **(describe() if callable(describe) else {"type": type(probe).__name__}),
                "lastProblem": probeProblem,
            }
        row.update({k: v for k, v in stats.items() if _isJSONScalar(v)})
        row.update({k: v for k, v in self.extra.items() if _isJSONScalar(v) and k not in row})
        return row


def _isJSONScalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class Registry:
    """
    The handlers the status page and the metrics show: entries added by name, in the order they
    were added, then those of each source (a callable asked at every read, for handlers that
    come and go, such as a program's).
    """

    def __init__(self, showPaths: bool = False, shard: str | None = None) -> None:
        #: show endpoint options holding local paths (the config's C{status.showPaths})
        self.showPaths = showPaths
        self._entries: dict[str, Entry] = {}
        self._sources: dict[object, Callable[[], Iterable[Entry]]] = {}
        #: the shard this service is (C{'2/3'}, from C{--shard}): a label on every metric
        self.shard = shard

    def add(self, entry: Entry) -> None:
        """Show an entry (replacing one of the same name)."""
        self._entries[entry.name] = entry

    def remove(self, name: str) -> None:
        """Stop showing an entry."""
        self._entries.pop(name, None)

    def addSource(self, key: object, source: Callable[[], Iterable[Entry]]) -> None:
        """Also show the entries C{source()} returns at each read, until L{removeSource}."""
        self._sources[key] = source

    def removeSource(self, key: object) -> None:
        """Stop asking a source."""
        self._sources.pop(key, None)

    def entries(self) -> list[Entry]:
        """
        The entries, in order; a source's entry whose name is taken already is shown as
        C{name #2} (#3, ...), so that no row hides another.
        """
        found = list(self._entries.values())
        taken = set(self._entries)
        for source in list(self._sources.values()):
            try:
                more = list(source())
            except Exception:
                log.failure("status source {source!r} failed", source=source)
                continue
            for entry in more:
                name, n = entry.name, 1
                while name in taken:
                    n += 1
                    name = f"{entry.name} #{n}"
                if name != entry.name:
                    entry = Entry(
                        name, entry.handler, entry.endpoint, entry.kind, entry.probe, entry.extra
                    )
                taken.add(name)
                found.append(entry)
        return found

    def __len__(self) -> int:
        return len(self.entries())

    def snapshot(self) -> dict[str, object]:
        """The whole C{/status} document."""
        rows = [e.row(self.showPaths) for e in self.entries()]
        shard = {} if self.shard is None else {"shard": self.shard}
        return {
            "service": "chandler",
            **shard,
            "version": __version__,
            "time": isoTime(datetime.now(UTC).timestamp()),
            "devices": [r for r in rows if r["kind"] == "device"],
            "servers": [r for r in rows if r["kind"] == "server"],
        }


# metrics


class _HandlerCollector:
    """Reads the registry's counters at scrape time."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        shard = self.registry.shard
        labels = ["device"] if shard is None else ["device", "shard"]
        up = GaugeMetricFamily(
            "chandler_device_up", "1 if the device is Connected, else 0", labels=labels
        )
        polls = CounterMetricFamily("chandler_device_polls", "Keep-alive polls sent", labels=labels)
        misses = GaugeMetricFamily(
            "chandler_device_misses",
            "Keep-alive polls sent since the last good answer",
            labels=labels,
        )
        transitions = CounterMetricFamily(
            "chandler_device_transitions", "Changes of connection status", labels=labels
        )
        reconnects = CounterMetricFamily(
            "chandler_device_reconnects", "Reconnection attempts", labels=labels
        )
        for entry in self.registry.entries():
            if entry.kind != "device":
                continue
            row = entry.row()
            name = [entry.name] if shard is None else [entry.name, shard]
            up.add_metric(name, 1.0 if row["state"] == "Connected" else 0.0)
            polls.add_metric(name, _number(row.get("polls")))
            misses.add_metric(name, _number(row.get("misses")))
            transitions.add_metric(name, _number(row.get("transitions")))
            reconnects.add_metric(name, _number(row.get("reconnects")))
        yield from (up, polls, misses, transitions, reconnects)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def metricsRegistry(registry: Registry) -> CollectorRegistry:
    """A dedicated Prometheus registry (not the global one) exposing C{registry}'s handlers."""
    prometheus = CollectorRegistry(auto_describe=False)
    prometheus.register(_HandlerCollector(registry))
    return prometheus


# web resources


class _JSONStatus(Resource):
    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:  # /status/anything: no such page
            return _notFound(request)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self.registry.snapshot(), indent=2).encode("utf-8") + b"\n"


def _notFound(request: Request) -> bytes:
    request.setResponseCode(404)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"no such page\n"


class _Metrics(Resource):
    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.prometheus = metricsRegistry(registry)

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:
            return _notFound(request)
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.prometheus)


class _Index(Resource):
    def __init__(self, registry: Registry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        child: Resource = super().getChild(path, request)  # type: ignore[no-untyped-call]
        return child

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        lines = [f"chandler {__version__}: {len(self.registry)} watched", ""]
        for row in (e.row() for e in self.registry.entries()):
            name = _oneLine(str(row["name"]))  # a program's handler may be named anything
            lines.append(f"{name:<24} {row['state']:<13} since {row['since']}")
        lines += ["", "/status   JSON per device", "/metrics  Prometheus text", ""]
        return "\n".join(lines).encode("utf-8")


def _oneLine(text: str) -> str:
    """C{text} with control characters escaped (a name with a newline stays one row)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def statusResource(registry: Registry) -> Resource:
    """C{/} (a text summary), C{/status} and C{/metrics} for C{registry}."""
    from twisted_ch.service._panel import panelResource

    root = _Index(registry)
    root.putChild(b"status", _JSONStatus(registry))
    root.putChild(b"metrics", _Metrics(registry))
    root.putChild(b"panel", panelResource())  # the program's UIDevices (issue 14)
    return root


class _QuietSite(Site):
    """A Site that does not log every request (scrapers poll often)."""

    noisy = False

    def log(self, request: HTTPRequest) -> None:
        pass


class StatusService(Service):
    """
    Serves the status page on a server endpoint description (bound when the service starts).

    A port that cannot be bound raises at start: twistd then exits with the error.  The log
    names the address actually bound, and warns when it is every interface (C{0.0.0.0}, C{::}):
    the page is then reachable from the network.
    """

    def __init__(self, reactor: Any, description: str, registry: Registry) -> None:
        self.reactor = reactor
        self.description = description
        self.registry = registry
        self.site = _QuietSite(statusResource(registry))  # type: ignore[no-untyped-call]
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def startService(self) -> None:
        from twisted.internet.endpoints import serverFromString

        endpoint = serverFromString(self.reactor, self.description)
        result: list[Any] = []
        # at most STATUS_MAX_CONNECTIONS at once, idle ones dropped (twisted_ch.service._limits)
        self.limiter = ConnectionLimiter(self.site, clock=self.reactor)
        endpoint.listen(self.limiter).addBoth(result.append)
        if not result:
            raise RuntimeError(f"status endpoint {self.description!r} did not listen at once")
        outcome = result[0]
        if not IListeningPort.providedBy(outcome):
            refuseToStart(f"the status page cannot listen: {outcome.getErrorMessage()}")
        self.port = outcome
        super().startService()  # type: ignore[no-untyped-call]
        address: Any = outcome.getHost()
        host = getattr(address, "host", None)
        if isinstance(host, str):
            bound = host or "0.0.0.0"
            shown = f"[{bound}]" if ":" in bound else bound
            self.url = f"http://{shown}:{address.port}/"
        else:  # a UNIX socket: its path
            name = getattr(address, "name", None)
            bound = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            self.url = "http://localhost/"
            log.info(
                "status page on the UNIX socket {path} (curl --unix-socket {path} "
                "http://localhost/status)",
                path=bound,
                boundAddress=bound,
            )
            return
        log.info(
            "status page at {url}status (metrics at {url}metrics)",
            url=self.url,
            statusURL=f"{self.url}status",
            boundAddress=bound,
        )
        if isinstance(host, str) and isWildcardAddress(host):
            log.warn(
                "the status page is reachable from the network: it listens on {address} (every "
                "interface) port {port}; give an interface such as 127.0.0.1 to keep it local",
                address=bound,
                port=address.port,
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        d = port.stopListening() if port is not None else None
        return d if isinstance(d, Deferred) else succeed(None)


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

    Also usable as C{twistd --logger twisted_ch.service._status.jsonLogObserver}.
    """
    return _JSONLineObserver(out if out is not None else sys.stdout)
