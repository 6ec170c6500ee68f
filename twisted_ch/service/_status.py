"""
The operators' view: C{/status} (JSON per device), C{/metrics} (Prometheus text), the dashboard
(C{/}, see L{twisted_ch.service._dashboard}), JSON log lines, and each device's recent history.

The page reads the handlers' counters when asked (L{Registry}); a L{DeviceTrack} per device keeps
what counters cannot tell: the last hour's transitions and the current outage, which it logs once
when it starts, at a fixed period while it lasts, and once when it ends.
"""

from __future__ import annotations

import json
import sys
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.logger import (
    ILogFilterPredicate,
    ILogObserver,
    Logger,
    LogLevel,
    PredicateResult,
    formatEvent,
)
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from twisted_ch._version import __version__
from twisted_ch.service._config import HealthConfig, isWildcardAddress, redactEndpoint
from twisted_ch.service._dashboard import DashboardPage, addDashboard
from twisted_ch.service._limits import ConnectionLimiter, refuseToStart
from twisted_ch.service._trace import TraceResource, WireTrace, isLoopback

__all__ = [
    "HEALTH_LEVELS",
    "DeviceTrack",
    "Entry",
    "Registry",
    "healthOf",
    "StatusService",
    "eventAsLine",
    "jsonLogObserver",
    "statusResource",
]

log = Logger(namespace="twisted_ch.status")
#: what L{Registry._gather} keeps of a row: the row itself, or its JSON
_Row = TypeVar("_Row")
#: The outage lines (down, still down, back): the operators' log of each device.
outageLog = Logger(namespace="twisted_ch.outage")

#: A device's health: answering; answering late or reconnecting; Disconnected; never reached.
HEALTH_LEVELS = ("ok", "warning", "error", "unknown")

#: Seconds of transitions each device keeps for the dashboard's timeline.
HISTORY_SECONDS = 3600.0
#: At most this many transitions per device are kept (a device flapping fast keeps the newest).
HISTORY_LIMIT = 200


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
    #: its health thresholds (None: the registry's)
    health: HealthConfig | None = None
    _shown: tuple[tuple[str, bool], str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def trackName(self) -> str:
        """The name the handler's own log lines use (its link's description), else the entry's."""
        name = getattr(self.handler, "logName", None)
        return name if isinstance(name, str) and name else self.name

    def shownEndpoint(self, showPaths: bool = False) -> str:
        """
        The endpoint as operators see it (L{redactEndpoint}), remembered: parsing it was a third
        of the cost of a status row.  Kept by the entry, so it goes when the device goes.
        """
        shown = self._shown
        if shown is None or shown[0] != (self.endpoint, showPaths):
            shown = self._shown = (
                (self.endpoint, showPaths),
                redactEndpoint(self.endpoint, showPaths),
            )
        return shown[1]

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
            "endpoint": self.shownEndpoint(showPaths),
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
        nextAttempt = stats.pop("nextAttempt", None)
        if self.kind == "device":
            row["nextAttempt"] = (
                isoTime(nextAttempt) if isinstance(nextAttempt, int | float) else None
            )
            row["backoff"] = stats.pop("backoff", None)
        row.update({k: v for k, v in stats.items() if _isJSONScalar(v)})
        row.update({k: v for k, v in self.extra.items() if _isJSONScalar(v) and k not in row})
        return row


def _isJSONScalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def healthOf(state: object, misses: object, down: float | None, thresholds: HealthConfig) -> str:
    """
    A device's health level (one of L{HEALTH_LEVELS}).

    @param state: its ConnectionStatus.
    @param misses: its unanswered sends.
    @param down: seconds since it went Disconnected (None: not Disconnected, or not known).
    """
    if state == "Connected":
        late = isinstance(misses, int) and misses >= thresholds.warningMisses
        return "warning" if late else "ok"
    if state == "Disconnected":
        if down is not None and down < thresholds.errorAfter:
            return "warning"  # reconnecting after a loss
        return "error"
    return "unknown"


def _duration(seconds: float) -> str:
    """C{seconds} for people: C{4.2 s}, C{3 min 20 s}, C{2 h 5 min}."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class DeviceTrack:
    """
    Watches one device handler: its transitions of the last hour (for the timeline), and its
    outage, logged once when it starts (with the reason), every C{outageSummary} seconds while it
    lasts ("still down, 37 attempts, last error ...") and once when it ends (with its length).

    An outage starts when the device goes Disconnected, or when an attempt to reach a device
    never reached fails; it ends when the device is Connected.
    """

    def __init__(self, name: str, handler: Any, clock: Any, thresholds: HealthConfig) -> None:
        self.name = name
        # weakly: the registry must not keep alive a handler a program has let go
        self._handler: Callable[[], Any]
        try:
            self._handler = weakref.ref(handler)
        except TypeError:  # an object that cannot be weakly referenced is held
            self._handler = lambda: handler
        self.clock = clock
        self.thresholds = thresholds
        #: (time, the time as ISO 8601, state, reason) of each transition, oldest first
        # a list, not a deque(maxlen=): an empty deque holds a 64-slot block (half a KiB a device)
        self.history: list[tuple[float, str | None, str, str | None]] = []
        state = getattr(handler, "ConnectionStatus", "Unknown")
        now = clock.seconds()
        self.history.append((now, isoTime(now), str(state), None))
        #: the time of the newest transition dropped to keep L{HISTORY_LIMIT} (None: none)
        self.forgotten: float | None = None
        #: when the current outage started (None: no outage)
        self.downSince: float | None = None
        self.attempts = 0
        self._pollsAtDown = 0.0
        self._summary: Any = None
        self._linkRef: Callable[[], Any] = lambda: None
        self._watching = False

    @property
    def handler(self) -> Any:
        """The handler watched (None once it is gone)."""
        return self._handler()

    def start(self) -> None:
        """Observe the handler and its link."""
        if self._watching:
            return
        self._watching = True
        add = getattr(self.handler, "addStatusObserver", None)
        if callable(add):
            add(self.statusChanged)
        link = getattr(getattr(self.handler, "Interface", None), "link", None)
        observers = getattr(link, "observers", None)
        if isinstance(observers, list):
            observers.append(self)
            try:
                self._linkRef = weakref.ref(link)
            except TypeError:
                self._linkRef = lambda: link
        if getattr(self.handler, "ConnectionStatus", None) == "Disconnected":
            self._beginOutage("Disconnected", None, logged=False)

    def stop(self) -> None:
        """Stop observing; no timer is left."""
        if not self._watching:
            return
        self._watching = False
        remove = getattr(self.handler, "removeStatusObserver", None)
        if callable(remove):
            try:
                remove(self.statusChanged)
            except ValueError:
                pass
        link = self._linkRef()
        if link is not None and self in link.observers:
            link.observers.remove(self)
        self._linkRef = lambda: None
        self._cancelSummary()

    # what the handler and its link report (reactor thread)

    def statusChanged(self, status: str) -> None:
        now = self.clock.seconds()
        previous = self.history[-1][2] if self.history else "Unknown"
        reason = self._lastError()
        if len(self.history) >= HISTORY_LIMIT:
            self.forgotten = self.history[0][0]  # transitions until then are not kept
            del self.history[0]
        self.history.append((now, isoTime(now), status, reason))
        if status == "Connected":
            self._endOutage(previous)
        elif status == "Disconnected" and self.downSince is None:
            self._beginOutage(previous, reason)

    def linkMade(self) -> None:
        pass

    def linkData(self, data: bytes) -> None:
        pass

    def linkLost(self, reason: str) -> None:
        pass

    def linkFailed(self, reason: str) -> None:
        if self.downSince is None:
            if getattr(self.handler, "ConnectionStatus", None) == "Connected":
                return
            previous = self.history[-1][2] if self.history else "Unknown"
            self._beginOutage(previous, reason)
        self.attempts += 1

    # the outage

    def _lastError(self) -> str | None:
        try:
            error = self.handler.stats().get("lastError")
        except Exception:
            return None
        return error if isinstance(error, str) else None

    def _beginOutage(self, previous: str, reason: str | None, logged: bool = True) -> None:
        self.downSince = self.clock.seconds()
        self.attempts = 0
        self._pollsAtDown = _number(getattr(self.handler, "polls", 0))
        if logged:
            if previous == "Unknown" and getattr(self.handler, "ConnectionStatus", "") != (
                "Disconnected"
            ):
                outageLog.warn(
                    "{device}: not reached ({reason})", device=self.name, reason=reason or "?"
                )
            else:
                outageLog.warn(
                    "{device}: {previous} -> {chStatus} ({reason})",
                    device=self.name,
                    previous=previous,
                    chStatus="Disconnected",
                    reason=reason or "no reason given",
                )
        self._cancelSummary()
        if self._stopped():
            self.downSince = None  # Disconnect() was called: not an outage
            return
        self._summary = self.clock.callLater(self.thresholds.outageSummary, self._summarise)

    def _stopped(self) -> bool:
        """Whether the handler was told to stop (its PollTimer is stopped by Disconnect)."""
        timer = getattr(self.handler, "PollTimer", None)
        return getattr(timer, "State", None) == "Stopped"

    def _summarise(self) -> None:
        self._summary = None
        if self.downSince is None:
            return
        down = self.clock.seconds() - self.downSince
        attempts = self._attemptCount()
        backoff = None
        try:
            backoff = self.handler.stats().get("backoff")
        except Exception:
            pass
        outageLog.warn(
            "{device}: still down after {duration}, {attempts} failed attempts, last error: "
            "{reason}{backoffText}",
            device=self.name,
            duration=_duration(down),
            outage=round(down, 3),
            attempts=attempts,
            reason=self._lastError() or "none",
            backoff=backoff,
            backoffText=f" ({backoff})" if backoff else "",
        )
        self._summary = self.clock.callLater(self.thresholds.outageSummary, self._summarise)

    def _attemptCount(self) -> int:
        if getattr(self._linkRef(), "reopenDelay", None) is not None:
            # a pipe: its polls are its attempts
            return int(_number(getattr(self.handler, "polls", 0)) - self._pollsAtDown)
        return self.attempts

    def _endOutage(self, previous: str) -> None:
        if self.downSince is None:
            outageLog.info(
                "{device}: {previous} -> {chStatus}",
                device=self.name,
                previous=previous,
                chStatus="Connected",
            )
            return
        down = self.clock.seconds() - self.downSince
        attempts = self._attemptCount()
        self.downSince = None
        self._cancelSummary()
        outageLog.info(
            "{device}: {previous} -> {chStatus} after {duration} down ({attempts} failed attempts)",
            device=self.name,
            previous=previous,
            chStatus="Connected",
            duration=_duration(down),
            outage=round(down, 3),
            attempts=attempts,
        )

    def _cancelSummary(self) -> None:
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None

    # what the status page shows

    def health(self, row: dict[str, object]) -> str:
        down = None
        if row.get("state") == "Disconnected" and self.downSince is not None:
            down = self.clock.seconds() - self.downSince
        return healthOf(row.get("state"), row.get("misses"), down, self.thresholds)

    def recent(self, seconds: float = HISTORY_SECONDS) -> list[list[object]]:
        """
        The transitions of the last C{seconds}: C{[iso time, state, reason]}, oldest first.  When
        more happened than L{HISTORY_LIMIT}, the first item covers those not kept: its state is
        C{"Flapping"}.
        """
        since = self.clock.seconds() - seconds
        history = list(self.history)
        first = 0
        while first + 1 < len(history) and history[first + 1][0] <= since:
            first += 1  # the transition in force when the window starts is kept
        found: list[list[object]] = [[iso, state, why] for _, iso, state, why in history[first:]]
        if self.forgotten is not None and self.forgotten > since:
            found.insert(0, [isoTime(since), "Flapping", f"more than {HISTORY_LIMIT} transitions"])
        return found


class Registry:
    """
    The handlers the status page and the metrics show: entries added by name, in the order they
    were added, then those of each source (a callable asked at every read, for handlers that
    come and go, such as a program's).

    Each device handler gets a L{DeviceTrack} the first time it is seen (its history, outages
    and health), stopped when its entry is removed or its source goes.
    """

    def __init__(
        self,
        showPaths: bool = False,
        shard: str | None = None,
        *,
        clock: Any = None,
        health: HealthConfig | None = None,
    ) -> None:
        #: show endpoint options holding local paths (the config's C{status.showPaths})
        self.showPaths = showPaths
        self._clock = clock
        self.health = health if health is not None else HealthConfig()
        self._entries: dict[str, Entry] = {}
        self._sources: dict[object, Callable[[], Iterable[Entry]]] = {}
        #: the shard this service is (C{'2/3'}, from C{--shard}): a label on every metric
        self.shard = shard
        #: id(handler) -> its track; per source, the handler ids it showed last
        self._tracks: dict[int, DeviceTrack] = {}
        self._sourceHandlers: dict[object, set[int]] = {}
        #: how many tracks have each name (read by the log filter at every log event)
        self._trackedNames: dict[str, int] = {}

    @property
    def clock(self) -> Any:
        """The reactor whose time the tracks use (the global reactor unless one was given)."""
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    def add(self, entry: Entry) -> None:
        """Show an entry (replacing one of the same name)."""
        old = self._entries.get(entry.name)
        if old is not None and old.handler is not entry.handler:
            self._untrack(old.handler)
        self._entries[entry.name] = entry
        self._track(entry)

    def remove(self, name: str) -> None:
        """Stop showing an entry (and tracking its handler)."""
        entry = self._entries.pop(name, None)
        if entry is not None:
            self._untrack(entry.handler)

    def addSource(self, key: object, source: Callable[[], Iterable[Entry]]) -> None:
        """Also show the entries C{source()} returns at each read, until L{removeSource}."""
        self._sources[key] = source
        self._sourceHandlers[key] = set()

    def removeSource(self, key: object) -> None:
        """Stop asking a source (and tracking its handlers)."""
        self._sources.pop(key, None)
        for handlerId in self._sourceHandlers.pop(key, set()):
            self._dropTrack(handlerId)

    def _dropTrack(self, handlerId: int) -> None:
        track = self._tracks.pop(handlerId, None)
        if track is None:
            return
        track.stop()
        n = self._trackedNames.get(track.name, 0) - 1
        if n > 0:
            self._trackedNames[track.name] = n
        else:
            self._trackedNames.pop(track.name, None)

    def _track(self, entry: Entry) -> DeviceTrack | None:
        if entry.kind != "device":
            return None
        track = self._tracks.get(id(entry.handler))
        if track is None or track.handler is not entry.handler:
            if track is not None:
                self._dropTrack(id(entry.handler))  # a dead handler's id, reused
            track = DeviceTrack(
                entry.trackName, entry.handler, self.clock, entry.health or self.health
            )
            self._tracks[id(entry.handler)] = track
            self._trackedNames[track.name] = self._trackedNames.get(track.name, 0) + 1
            track.start()
        return track

    def _untrack(self, handler: Any) -> None:
        track = self._tracks.get(id(handler))
        if track is not None and track.handler is handler:
            self._dropTrack(id(handler))

    def trackOf(self, entry: Entry) -> DeviceTrack | None:
        """The entry's track (None for servers)."""
        track = self._tracks.get(id(entry.handler))
        return track if track is not None and track.handler is entry.handler else None

    def trackedNames(self) -> Collection[str]:
        """The names (as their own log lines give them) of the devices tracked now."""
        return self._trackedNames.keys()

    def stopTracking(self) -> None:
        """Stop every track (the service stops)."""
        for handlerId in list(self._tracks):
            self._dropTrack(handlerId)
        for handlers in self._sourceHandlers.values():
            handlers.clear()

    def entries(self) -> list[Entry]:
        """
        The entries, in order; a source's entry whose name is taken already is shown as
        C{name #2} (#3, ...), so that no row hides another.
        """
        found = list(self._entries.values())
        taken = set(self._entries)
        for key, source in list(self._sources.items()):
            try:
                more = list(source())
            except Exception:
                log.failure("status source {source!r} failed", source=source)
                continue
            seen: set[int] = set()
            for entry in more:
                name, n = entry.name, 1
                while name in taken:
                    n += 1
                    name = f"{entry.name} #{n}"
                if name != entry.name:
                    entry = Entry(
                        name,
                        entry.handler,
                        entry.endpoint,
                        entry.kind,
                        entry.probe,
                        entry.extra,
                        entry.health,
                    )
                taken.add(name)
                found.append(entry)
                if self._track(entry) is not None:
                    seen.add(id(entry.handler))
            gone = self._sourceHandlers.get(key, set()) - seen
            for handlerId in gone:
                self._dropTrack(handlerId)
            self._sourceHandlers[key] = seen
        return found

    def __len__(self) -> int:
        return len(self.entries())

    def rows(self, history: bool = False) -> list[dict[str, object]]:
        """Each entry's status row, with its health (and, if asked, its recent transitions)."""
        return list(self.iterRows(history))

    def iterRows(self, history: bool = False) -> Iterator[dict[str, object]]:
        """
        L{rows}, one at a time: a page that writes each row out at once holds one row, not
        10,000 (nor do those rows reach the garbage collector's older generations).
        """
        for entry in self.entries():
            row = entry.row(self.showPaths)
            if entry.kind == "device":
                track = self.trackOf(entry)
                if track is not None:
                    row["health"] = track.health(row)
                    row["downSince"] = isoTime(track.downSince)
                    if history:
                        row["recent"] = track.recent()
                else:
                    down = None
                    row["health"] = healthOf(
                        row["state"], row.get("misses"), down, entry.health or self.health
                    )
            yield row

    def snapshot(self) -> dict[str, object]:
        """The whole C{/status} document."""
        summary, devices, servers = self._gather(lambda row: row)
        return {**self._heading(summary), "devices": devices, "servers": servers}

    def statusJSON(self, compact: bool = False) -> str:
        """
        L{snapshot} as JSON, each row encoded as soon as it is made: compact (one line), or
        readable: a key per line and a device per line, written by the C encoder (C{indent=}
        would take the pure-Python one: at 10,000 devices, ten times slower).
        """
        summary, devices, servers = self._gather((_COMPACT if compact else _READABLE).encode)
        return _documentText(
            self._heading(summary), {"devices": devices, "servers": servers}, compact
        )

    def _gather(
        self, keep: Callable[[dict[str, object]], _Row]
    ) -> tuple[_Summary, list[_Row], list[_Row]]:
        """The summary, and C{keep} of each device's and each server's row (with history)."""
        summary = _Summary()
        devices: list[_Row] = []
        servers: list[_Row] = []
        for row in self.iterRows(history=True):
            if row["kind"] == "device":
                summary.add(row)
                devices.append(keep(row))
            elif row["kind"] == "server":
                servers.append(keep(row))
        return summary, devices, servers

    def _heading(self, summary: _Summary) -> dict[str, object]:
        shard = {} if self.shard is None else {"shard": self.shard}
        return {
            "service": "chandler",
            **shard,
            "version": __version__,
            "time": isoTime(datetime.now(UTC).timestamp()),
            "summary": summary.document(),
        }


class _Summary:
    """The C{summary} of C{/status}: devices up, down and unknown, and per health level."""

    __slots__ = ("up", "down", "unknown", "health")

    def __init__(self) -> None:
        self.up = self.down = self.unknown = 0
        self.health = {level: 0 for level in HEALTH_LEVELS}

    def add(self, row: dict[str, object]) -> None:
        state = row["state"]
        if state == "Connected":
            self.up += 1
        elif state == "Disconnected":
            self.down += 1
        else:
            self.unknown += 1
        self.health[str(row.get("health", "unknown"))] += 1

    def document(self) -> dict[str, object]:
        return {"up": self.up, "down": self.down, "unknown": self.unknown, "health": self.health}


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_READABLE = json.JSONEncoder(separators=(", ", ": "))


def _documentText(heading: dict[str, object], lists: dict[str, list[str]], compact: bool) -> str:
    """A JSON object of C{heading}'s members, then C{lists}' (each item encoded already)."""
    if compact:
        encode = _COMPACT.encode
        members = [f"{encode(k)}:{encode(v)}" for k, v in heading.items()]
        members += [f"{encode(k)}:[{','.join(items)}]" for k, items in lists.items()]
        return "{" + ",".join(members) + "}"
    encode = _READABLE.encode
    lines = [f"  {encode(k)}: {encode(v)}" for k, v in heading.items()]
    for key, items in lists.items():
        if items:
            rows = ",\n    ".join(items)
            lines.append(f"  {encode(key)}: [\n    {rows}\n  ]")
        else:
            lines.append(f"  {encode(key)}: []")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# metrics


#: The Prometheus text format (version 0.0.4) that L{metricsText} writes.
METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

#: (name, type, help) of each per-device family, in the order L{metricsText} writes them.
_FAMILIES = (
    ("chandler_device_up", "gauge", "1 if the device is Connected, else 0"),
    ("chandler_device_polls_total", "counter", "Keep-alive polls sent"),
    ("chandler_device_misses", "gauge", "Keep-alive polls sent since the last good answer"),
    ("chandler_device_transitions_total", "counter", "Changes of connection status"),
    ("chandler_device_reconnects_total", "counter", "Reconnection attempts"),
    (
        "chandler_device_health",
        "gauge",
        "1, labelled with the device's health level: ok, warning, error or unknown",
    ),
)


def _labelValue(text: str) -> str:
    """A label value escaped as the text format wants (backslash, double quote, newline)."""
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _sample(value: object) -> str:
    """A counter's or gauge's value as the text format writes it (C{1.0}, C{+Inf}, C{NaN})."""
    number = _number(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def metricsText(registry: Registry) -> bytes:
    """
    C{/metrics}: every device's counters in the Prometheus text format, written directly (one
    pass over the rows, a few string joins; at 10,000 devices a scrape costs tens of
    milliseconds of the reactor, not seconds).
    """
    shard = registry.shard
    tail = "" if shard is None else f',shard="{_labelValue(shard)}"'
    columns: list[list[str]] = [[] for _ in _FAMILIES]
    up, polls, misses, transitions, reconnects, health = columns
    for row in registry.iterRows():
        if row["kind"] != "device":
            continue
        labels = f'{{device="{_labelValue(str(row["name"]))}"{tail}}} '
        up.append(labels + ("1.0" if row["state"] == "Connected" else "0.0"))
        polls.append(labels + _sample(row.get("polls")))
        misses.append(labels + _sample(row.get("misses")))
        transitions.append(labels + _sample(row.get("transitions")))
        reconnects.append(labels + _sample(row.get("reconnects")))
        # one sample per device (the others would be 0): count by (level) still works
        level = _labelValue(str(row.get("health", "unknown")))
        health.append(f'{labels[:-2]},level="{level}"}} 1.0')
    out: list[str] = []
    for (name, kind, text), samples in zip(_FAMILIES, columns, strict=True):
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
        if samples:
            out.append(name + ("\n" + name).join(samples) + "\n")
    return "".join(out).encode("utf-8")


# web resources


#: A compact C{/status} document (what every open dashboard fetches each second) that took t
#: seconds to build is served again for STATUS_REUSE x t seconds: however many dashboards are
#: open, building it takes at most about a tenth of the reactor (at 10,000 devices a build takes
#: 0.17 s, so a document is at most 2 s old; for a room's devices, well under a millisecond).
STATUS_REUSE = 10.0


class _JSONStatus(Resource):
    isLeaf = True

    def __init__(self, registry: Registry, timer: Callable[[], float] = time.monotonic) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry
        self._timer = timer
        #: the last compact document and until when (L{timer}) it is served again
        self._compact: tuple[float, bytes] | None = None

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:  # /status/anything: no such page
            return _notFound(request)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        # ?compact=1 (what the dashboard polls): one line, a third smaller
        compact = (request.args or {}).get(b"compact", [b"0"])[-1] not in (b"", b"0")
        if not compact:
            return self.registry.statusJSON().encode("utf-8")
        started = self._timer()
        kept = self._compact
        if kept is not None and started < kept[0]:
            return kept[1]
        body = self.registry.statusJSON(compact=True).encode("utf-8")
        ended = self._timer()
        self._compact = (ended + STATUS_REUSE * (ended - started), body)
        return body


def _notFound(request: Request) -> bytes:
    request.setResponseCode(404)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"no such page\n"


class _Metrics(Resource):
    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:
            return _notFound(request)
        request.setHeader(b"content-type", METRICS_CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        return metricsText(self.registry)


class _Index(Resource):
    """
    C{/}: the dashboard for browsers; a plain-text list for clients that do not ask for HTML
    (C{curl}).
    """

    def __init__(self, registry: Registry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry
        self.page = DashboardPage()

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"":
            return self
        from twisted.web.pages import notFound

        return notFound()

    def render_GET(self, request: Request) -> bytes:
        accept = (request.getHeader(b"accept") or b"").lower()
        request.setHeader(b"vary", b"accept")
        if b"text/html" in accept or b"application/xhtml" in accept:
            return self.page.render_GET(request)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        lines = [f"chandler {__version__}: {len(self.registry)} watched", ""]
        for row in self.registry.iterRows():
            name = _oneLine(str(row["name"]))  # a program's handler may be named anything
            health = row.get("health", "")
            lines.append(f"{name:<24} {row['state']:<13} {health!s:<8} since {row['since']}")
        lines += ["", "/status   JSON per device", "/metrics  Prometheus text", ""]
        return "\n".join(lines).encode("utf-8")


def _oneLine(text: str) -> str:
    """C{text} with control characters escaped (a name with a newline stays one row)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def statusResource(registry: Registry) -> Resource:
    """C{/} (the dashboard, or a text summary), C{/status}, C{/metrics} and C{/panel/}."""
    from twisted_ch.panel._web import panelResource

    root = _Index(registry)
    root.putChild(b"status", _JSONStatus(registry))
    root.putChild(b"metrics", _Metrics(registry))
    root.putChild(b"panel", panelResource())  # the program's UIDevices (issue 14)
    addDashboard(root)
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

    Other pages mount on L{root} (C{service.root.putChild(b"panel", resource)}).  With a
    L{WireTrace}, C{/trace} starts and reads wire traces (see L{TraceResource}): allowed when
    the port is bound to loopback or the request carries C{token}.
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        registry: Registry,
        trace: WireTrace | None = None,
        token: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.description = description
        self.registry = registry
        self.root = statusResource(registry)
        if trace is not None:
            self.root.putChild(b"trace", TraceResource(trace, self.boundToLoopback, token))
        self.site = _QuietSite(self.root)  # type: ignore[no-untyped-call]
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def boundToLoopback(self) -> bool:
        """Whether the page is listening on a loopback address (or a local socket) only."""
        return self.port is not None and isLoopback(self.port.getHost())

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
        #: names found tracked: their link's lines stay out also after the registry let them
        #: go (a stopping link reports the count of its last failed attempts)
        self._watched: set[str] = set()

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
        if isinstance(name, str) and (
            name in self._watched or name in self.registry.trackedNames()
        ):
            self._watched.add(name)
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

    Also usable as C{twistd --logger twisted_ch.service._status.jsonLogObserver}.
    """
    return _JSONLineObserver(out if out is not None else sys.stdout)
