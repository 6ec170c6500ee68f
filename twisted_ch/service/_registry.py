# -*- test-case-name: tests.test_status_health -*-
"""
What the status page shows: the handlers watched (L{Registry}, one L{Entry} each), read when
asked, and the C{/status} document built from their rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from twisted.logger import Logger

from twisted_ch._stats import statsRow
from twisted_ch._version import __version__
from twisted_ch.service._config import HealthConfig, redactEndpoint
from twisted_ch.service._outages import HEALTH_LEVELS, DeviceTrack, healthOf, isoTime
from twisted_ch.service._query import StatusQuery

__all__ = [
    "ROOM_ORDER",
    "STATUS_ROWS_PER_STEP",
    "Entry",
    "allOf",
    "Registry",
    "isObjectRepr",
    "roomHealth",
]

log = Logger(namespace="twisted_ch.status")
_Piece = TypeVar("_Piece", str, bytes)
#: Entries a status document reads per step (L{Registry.statusPieces}): a few ms of the reactor.
STATUS_ROWS_PER_STEP = 50


#: the extra fields of an entry that has none (shared: an entry's are only read)
_NO_EXTRA: Mapping[str, object] = MappingProxyType({})


@dataclass(slots=True)
class Entry:
    """One watched handler: its name, what kind of thing it is, where it connects."""

    name: str
    handler: Any
    endpoint: str = ""
    kind: str = "device"
    probe: Any = None
    #: more fields for its status row (JSON scalars)
    extra: Mapping[str, object] = field(default_factory=lambda: _NO_EXTRA)
    #: its health thresholds (None: the registry's)
    health: HealthConfig | None = None
    #: the room it is in ("": none) and its tags (the config's C{room} and C{tags})
    room: str = ""
    tags: tuple[str, ...] = ()
    #: the device's config (a configured device: actions such as pause apply), else None
    config: Any = None
    #: the endpoint as shown (L{shownEndpoint}), for C{showPaths} L{_shownPaths}
    _shown: str | None = field(default=None, init=False, repr=False, compare=False)
    _shownPaths: bool = field(default=False, init=False, repr=False, compare=False)

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
        if shown is None or self._shownPaths != showPaths:
            shown = redactEndpoint(self.endpoint, showPaths)
            if shown == self.endpoint:  # nothing hidden (most endpoints): no copy of its text
                shown = self.endpoint
            self._shown, self._shownPaths = shown, showPaths
        return shown

    def row(self, showPaths: bool = False, brief: bool = False) -> dict[str, object]:
        """
        The status JSON object for this entry (local paths in its endpoint hidden unless
        C{showPaths}).  C{brief}: only its name, kind, state, room and counters, and C{since} as
        the handler tells it (C{/metrics} reads no more, at a third of the cost).
        """
        stats: dict[str, Any] = {}
        statsOf = getattr(self.handler, "stats", None)
        if callable(statsOf):
            stats = _statsDict(statsOf())
        if self.kind == "server":
            state = "Listening" if stats.get("listening") else "Not listening"
        else:
            state = stats.pop("status", getattr(self.handler, "ConnectionStatus", "Unknown"))
        since = stats.pop("since", None)
        if brief:
            short: dict[str, object] = {
                "name": self.name,
                "kind": self.kind,
                "state": state,
                "since": since,
                "room": self.room,
            }
            if self.kind == "device":
                short.update(_takeCounters(stats))
            return short
        lastError = stats.pop("lastError", None)
        row: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "handler": type(self.handler).__name__,
            "endpoint": self.shownEndpoint(showPaths),
            "state": state,
            "since": isoTime(since) if isinstance(since, int | float) else since,
            "room": self.room,
            "tags": list(self.tags),
        }
        if self.kind == "device":
            row.update(_takeCounters(stats))
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


#: a device row's counters, in the order its row lists them
_COUNTERS = ("polls", "misses", "transitions", "reconnects")


def _takeCounters(stats: dict[str, Any]) -> dict[str, object]:
    """A device's counters taken out of its C{stats} (0 where the handler has none)."""
    return {name: stats.pop(name, 0) for name in _COUNTERS}


_OBJECT_REPR = re.compile(r"<.* (?:object )?at 0x[0-9a-fA-F]+>", re.S)


def isObjectRepr(text: str) -> bool:
    """Whether C{text} is Python's default repr of an object (C{<X object at 0x7f...>})."""
    return _OBJECT_REPR.fullmatch(text) is not None


def _isJSONScalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


#: a stats record's type -> its fields' names (L{_statsDict})
_RECORD_FIELDS: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _statsDict(stats: object) -> dict[str, Any]:
    """
    L{statsRow}: a record of scalars read field by field (C{dataclasses.asdict} deep-copies each
    value, a third of a status row's cost); any other record or mapping as L{statsRow} reads it.
    """
    names = _RECORD_FIELDS.get(type(stats))
    if names is None:
        if not is_dataclass(stats) or isinstance(stats, type):
            return statsRow(stats)
        names = _RECORD_FIELDS[type(stats)] = tuple(f.name for f in fields(stats))
    row = {name: getattr(stats, name) for name in names}
    for value in row.values():
        if type(value) not in _SCALARS:
            return statsRow(stats)  # a nested or mutable value: asdict copies it
    return row


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
        #: the names no track has any more (their links' last lines are still the tracks')
        self._formerNames: set[str] = set()
        #: per entry whose handler tells no C{since} (a server): its state, and since when
        self._stateSince: dict[str, tuple[object, float]] = {}
        #: devices paused for maintenance: name -> (the handler paused, since when)
        self._paused: dict[str, tuple[Any, float]] = {}

    @property
    def clock(self) -> Any:
        """The reactor whose time the tracks use (the global reactor unless one was given)."""
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    def add(self, entry: Entry, quietFirstConnect: bool = False) -> None:
        """
        Show an entry (replacing one of the same name).  With C{quietFirstConnect}, its
        device's outage line for a first connect made at the first attempt is at debug level.
        """
        old = self._entries.get(entry.name)
        if old is not None and old.handler is not entry.handler:
            self._untrack(old.handler)
        self._entries[entry.name] = entry
        self._stateSince.pop(entry.name, None)
        track = self._track(entry)
        if track is not None and quietFirstConnect:
            track.quietFirstConnect = True

    def remove(self, name: str) -> None:
        """Stop showing an entry (and tracking its handler)."""
        entry = self._entries.pop(name, None)
        self._stateSince.pop(name, None)
        self._paused.pop(name, None)
        if entry is not None:
            self._untrack(entry.handler)

    # maintenance: paused devices (see L{twisted_ch.service._actions})

    def setPaused(self, entry: Entry, paused: bool) -> None:
        """Mark an entry's device paused (not polled, not an error) or not."""
        if paused:
            self._paused[entry.name] = (entry.handler, self.clock.seconds())
        else:
            self._paused.pop(entry.name, None)

    def pausedSince(self, entry: Entry) -> float | None:
        """When the entry's device was paused (None: it is not; a new handler is not)."""
        paused = self._paused.get(entry.name)
        if paused is None or paused[0] is not entry.handler:
            return None
        return paused[1]

    def find(self, name: str) -> Entry | None:
        """The entry of that name shown now, else None."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        return next((e for e in self.entries() if e.name == name), None)

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
        n = self._trackedNames.get(track.logName, 0) - 1
        if n > 0:
            self._trackedNames[track.logName] = n
        else:
            self._trackedNames.pop(track.logName, None)
            # (also an object's repr: its handler's last lines come after it let go)
            self._formerNames.add(track.logName)

    def _track(self, entry: Entry) -> DeviceTrack | None:
        if entry.kind != "device":
            return None
        track = self._tracks.get(id(entry.handler))
        if track is None or track.handler is not entry.handler:
            if track is not None:
                self._dropTrack(id(entry.handler))  # a dead handler's id, reused
            logName = entry.trackName
            # a handler with no link names itself by its interface's repr: the row's name reads
            shown = entry.name if isObjectRepr(logName) else logName
            track = DeviceTrack(
                shown, entry.handler, self.clock, entry.health or self.health, logName
            )
            self._tracks[id(entry.handler)] = track
            self._trackedNames[logName] = self._trackedNames.get(logName, 0) + 1
            self._formerNames.discard(logName)
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

    def wasTracked(self, name: str) -> bool:
        """Whether a device named C{name} (as its log lines name it) is or was tracked."""
        return name in self._trackedNames or name in self._formerNames

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
        if not self._sources:
            return found
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
                    entry = replace(entry, name=name)
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

    def rows(
        self, history: bool = False, room: str | None = None, tag: str | None = None
    ) -> list[dict[str, object]]:
        """Each entry's status row, with its health (and, if asked, its recent transitions)."""
        return list(self.iterRows(history, room, tag))

    def iterRows(
        self, history: bool = False, room: str | None = None, tag: str | None = None
    ) -> Iterator[dict[str, object]]:
        """
        L{rows}, one at a time: a page that writes each row out at once holds one row, not
        10,000 (nor do those rows reach the garbage collector's older generations).  Only the
        entries in C{room} and with C{tag}, when given.
        """
        for entry in self.entries():
            if (room is not None and entry.room != room) or (
                tag is not None and tag not in entry.tags
            ):
                continue
            yield self.rowOf(entry, history)

    def rowOf(self, entry: Entry, history: bool = False, brief: bool = False) -> dict[str, object]:
        """
        C{entry}'s status row, with its health (and, if asked, its recent transitions).
        C{brief}: L{Entry.row}'s brief row with its health and C{paused} (no times as text).
        """
        row = entry.row(self.showPaths, brief)
        if row["since"] is None and entry.name in self._entries:
            since = self._since(entry.name, row["state"])
            row["since"] = since if brief else isoTime(since)
        paused = self.pausedSince(entry) if self._paused else None
        if paused is not None:
            row["paused"] = True
            if not brief:
                row["pausedSince"] = isoTime(paused)
                row["nextAttempt"] = None
        if entry.kind == "device":
            track = self.trackOf(entry)
            if track is not None:
                row["health"] = track.health(row)
                if not brief:
                    row["downSince"] = isoTime(track.downSince)
                if history:
                    row["recent"] = track.recent()
            else:
                down = None
                row["health"] = healthOf(
                    row["state"], row.get("misses"), down, entry.health or self.health
                )
            if paused is not None:
                row["health"] = "paused"  # maintenance: not an error
        return row

    def addHistory(self, entry: Entry, row: dict[str, object]) -> None:
        """Add C{recent} (the last hour's transitions) to C{entry}'s C{row}, if it is tracked."""
        track = self.trackOf(entry)
        if track is not None:
            row["recent"] = track.recent()

    def _since(self, name: str, state: object) -> float:
        """Since when an entry that tells no time of its own has been in C{state} (as seen)."""
        known = self._stateSince.get(name)
        if known is None or known[0] != state:
            known = self._stateSince[name] = (state, self.clock.seconds())
        return known[1]

    def snapshot(self, room: str | None = None, tag: str | None = None) -> dict[str, object]:
        """The whole C{/status} document (only C{room}'s and C{tag}'s entries, when given)."""
        document: dict[str, object] = json.loads(self.statusJSON(True, room, tag))
        return document

    def statusJSON(
        self, compact: bool = False, room: str | None = None, tag: str | None = None
    ) -> str:
        """L{statusPieces} at once, as one text (tests, small registries)."""
        return allOf(self.statusPieces(StatusQuery(room=room, tag=tag), compact))

    def statusPieces(
        self,
        query: StatusQuery | None = None,
        compact: bool = False,
        step: int = STATUS_ROWS_PER_STEP,
    ) -> Generator[str, None, str]:
        """
        The C{/status} document for C{query}, in pieces: each C{next()} reads at most C{step}
        entries, so a caller can give the reactor back between pieces (L{_stream.RenderQueue});
        the last piece is the generator's return value (a document of one step is just that).

        Compact (one line), or readable: a key per line and a device per line, each row written
        by the C encoder (C{indent=} would take the pure-Python one, ten times slower).  The
        heading first, then C{devices} (those C{query} lists, in order), C{servers}, and last
        the C{summary} (every device C{query} covers, listed or not) and C{page}.
        """
        query = query or StatusQuery()
        entries = filter(query.covers, self.entries())  # (filtered a step at a time)
        encode = (_COMPACT if compact else _READABLE).encode
        heading = self._heading()
        if compact:
            opening = "{" + ",".join(f"{encode(k)}:{encode(v)}" for k, v in heading.items())
            opening += ',"devices":['
            first, later = "", ","
        else:
            opening = "{\n" + "".join(f"  {encode(k)}: {encode(v)},\n" for k, v in heading.items())
            opening += '  "devices": ['
            first, later = "\n    ", ",\n    "
        summary = _Summary()
        servers: list[str] = []
        matched = 0
        out: list[str] = [opening]
        for done, entry in enumerate(entries, 1):
            row = self.rowOf(entry)
            if row["kind"] == "device":
                summary.add(row)
                if query.lists(row):
                    if query.inPage(matched):
                        self.addHistory(entry, row)
                        out.append((later if matched > query.offset else first) + encode(row))
                    matched += 1
            elif row["kind"] == "server" and query.lists(row):
                servers.append(encode(row))
            if done % step == 0:
                yield "".join(out)
                out = []
        listed = matched > query.offset and (query.limit is None or query.limit > 0)
        page = {
            "matched": matched,
            "offset": query.offset,
            "limit": query.limit,
            "next": query.nextOffset(matched),
        }
        if compact:
            out.append(f'],"servers":[{",".join(servers)}],')
            out.append(f'"summary":{encode(summary.document())},"page":{encode(page)}}}')
        else:
            out.append("\n  ]," if listed else "],")
            if servers:
                out.append('\n  "servers": [\n    ' + ",\n    ".join(servers) + "\n  ],")
            else:
                out.append('\n  "servers": [],')
            out.append(f'\n  "summary": {encode(summary.document())},')
            out.append(f'\n  "page": {encode(page)}\n}}\n')
        return "".join(out)

    def _heading(self) -> dict[str, object]:
        shard = {} if self.shard is None else {"shard": self.shard}
        return {
            "service": "chandler",
            **shard,
            "version": __version__,
            "time": isoTime(datetime.now(UTC).timestamp()),
        }


#: Health levels from best to worst, for a room's roll-up (a paused device counts least).
ROOM_ORDER = ("paused", "ok", "unknown", "warning", "error")


def roomHealth(counts: dict[str, int]) -> str:
    """A room's health: its worst device's (C{counts}: devices per health level)."""
    worst = "ok"
    for level in ROOM_ORDER:
        if counts.get(level):
            worst = level
    return worst


def allOf(pieces: Generator[_Piece, None, _Piece]) -> _Piece:
    """Every piece of a stepped render (its yields, then its return value) joined."""
    found: list[_Piece] = []
    while True:
        try:
            found.append(next(pieces))
        except StopIteration as e:
            found.append(e.value)
            return found[0][:0].join(found)


class _Summary:
    """
    The C{summary} of C{/status}: devices up, down and unknown, per health level, and per room
    (each room's devices per level, and its health: its worst device's).
    """

    __slots__ = ("up", "down", "unknown", "health", "rooms")

    def __init__(self) -> None:
        self.up = self.down = self.unknown = 0
        self.health = {level: 0 for level in (*HEALTH_LEVELS, "paused")}
        self.rooms: dict[str, dict[str, int]] = {}

    def add(self, row: dict[str, object]) -> None:
        state = row["state"]
        if state == "Connected":
            self.up += 1
        elif state == "Disconnected":
            self.down += 1
        else:
            self.unknown += 1
        level = str(row.get("health", "unknown"))
        self.health[level] = self.health.get(level, 0) + 1
        room = row.get("room")
        if isinstance(room, str) and room:
            counts = self.rooms.get(room)
            if counts is None:
                counts = self.rooms[room] = {lv: 0 for lv in (*HEALTH_LEVELS, "paused")}
            counts[level] = counts.get(level, 0) + 1

    def document(self) -> dict[str, object]:
        rooms = {
            room: {"health": roomHealth(counts), "devices": sum(counts.values()), **counts}
            for room, counts in self.rooms.items()
        }
        return {
            "up": self.up,
            "down": self.down,
            "unknown": self.unknown,
            "health": self.health,
            "rooms": rooms,
        }


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_READABLE = json.JSONEncoder(separators=(", ", ": "))
