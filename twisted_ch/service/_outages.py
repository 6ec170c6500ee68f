# -*- test-case-name: tests.test_status_health -*-
"""
Each device's recent history and outages: a L{DeviceTrack} per device keeps what counters cannot
tell: the last hour's transitions and the current outage, which it logs once when it starts, at a
fixed period while it lasts, and once when it ends; and its health level (L{healthOf}).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.logger import Logger

from twisted_ch._stats import statsRow
from twisted_ch.service._config import HealthConfig

__all__ = [
    "HEALTH_LEVELS",
    "HISTORY_LIMIT",
    "HISTORY_SECONDS",
    "DeviceTrack",
    "healthOf",
    "isoTime",
    "outageLog",
]

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


def _noLink() -> None:
    """The link of a track that watches none (shared: no function object per track)."""
    return None


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

    # one per device: slotted (50,000 devices on a machine, issue 21)
    __slots__ = (
        "name",
        "logName",
        "_handler",
        "clock",
        "thresholds",
        "history",
        "forgotten",
        "downSince",
        "attempts",
        "_pollsAtDown",
        "_summary",
        "_linkRef",
        "_watching",
        "quietFirstConnect",
    )

    def __init__(
        self,
        name: str,
        handler: Any,
        clock: Any,
        thresholds: HealthConfig,
        logName: str | None = None,
    ) -> None:
        #: how its outage lines name the device
        self.name = name
        #: how the handler's own log lines name it (what the outage lines replace)
        self.logName = logName if logName is not None else name
        # weakly: the registry must not keep alive a handler a program has let go
        self._handler: Callable[[], Any]
        try:
            self._handler = weakref.ref(handler)
        except TypeError:  # an object that cannot be weakly referenced is held
            self._handler = lambda: handler
        self.clock = clock
        self.thresholds = thresholds
        #: (time, state, reason) of each transition, oldest first (its ISO 8601 text is made
        #: when shown: kept, it was 100 bytes a transition and device)
        # a list, not a deque(maxlen=): an empty deque holds a 64-slot block (half a KiB a device)
        # (made with its one item: no room kept for three more)
        state = getattr(handler, "ConnectionStatus", "Unknown")
        self.history: list[tuple[float, str, str | None]] = [(clock.seconds(), str(state), None)]
        #: the time of the newest transition dropped to keep L{HISTORY_LIMIT} (None: none)
        self.forgotten: float | None = None
        #: when the current outage started (None: no outage)
        self.downSince: float | None = None
        self.attempts = 0
        self._pollsAtDown = 0.0
        self._summary: Any = None
        self._linkRef: Callable[[], Any] = _noLink
        self._watching = False
        #: its first connect, if made at the first attempt, is a debug line (a big start's
        #: devices: the start-up line counts them)
        self.quietFirstConnect = False

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
        self._linkRef = _noLink
        self._cancelSummary()

    # what the handler and its link report (reactor thread)

    def statusChanged(self, status: str) -> None:
        now = self.clock.seconds()
        previous = self.history[-1][1] if self.history else "Unknown"
        reason = self._reasonFor(status)
        if len(self.history) >= HISTORY_LIMIT:
            self.forgotten = self.history[0][0]  # transitions until then are not kept
            del self.history[0]
        self.history.append((now, status, reason))
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
            previous = self.history[-1][1] if self.history else "Unknown"
            self._beginOutage(previous, reason)
        self.attempts += 1

    # the outage

    def _lastError(self) -> str | None:
        try:
            error = statsRow(self.handler.stats()).get("lastError")
        except Exception:
            return None
        return error if isinstance(error, str) else None

    def _reasonFor(self, status: str) -> str | None:
        """
        Why the device is in C{status} now: its link's last error, else (a silent drop: the
        link was still up) the unanswered sends that took it past its DisconnectLimit, or the
        module that said so.
        """
        error = self._lastError()
        if error is not None or status != "Disconnected":
            return error
        handler = self.handler
        limit = getattr(handler, "DisconnectLimit", None)
        misses = getattr(handler, "missedPolls", None)
        if isinstance(limit, int) and isinstance(misses, int) and misses > limit:
            return f"{limit} sends unanswered"
        if hasattr(handler, "moduleThread"):  # a Global Scripter module decides its own state
            return "the module reported Disconnected"
        return None

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
        """Whether the handler was told to stop (C{Disconnect()}): its link is not wanted."""
        return getattr(self.handler, "wanted", True) is False

    def _summarise(self) -> None:
        self._summary = None
        if self.downSince is None:
            return
        down = self.clock.seconds() - self.downSince
        attempts = self._attemptCount()
        backoff = None
        try:
            backoff = statsRow(self.handler.stats()).get("backoff")
        except Exception:
            pass
        outageLog.warn(
            "{device}: still down after {duration}, {attemptsText}, last error: "
            "{reason}{backoffText}",
            device=self.name,
            duration=_duration(down),
            outage=round(down, 3),
            attempts=attempts,
            attemptsText=_attempts(attempts),
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
        quiet, self.quietFirstConnect = self.quietFirstConnect, False
        if self.downSince is None:
            (outageLog.debug if quiet else outageLog.info)(
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
        (outageLog.debug if quiet and attempts == 0 else outageLog.info)(
            "{device}: {previous} -> {chStatus} after {duration} down ({attemptsText})",
            device=self.name,
            previous=previous,
            chStatus="Connected",
            duration=_duration(down),
            outage=round(down, 3),
            attempts=attempts,
            attemptsText=_attempts(attempts),
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
        found: list[list[object]] = [[isoTime(t), state, why] for t, state, why in history[first:]]
        if self.forgotten is not None and self.forgotten > since:
            found.insert(0, [isoTime(since), "Flapping", f"more than {HISTORY_LIMIT} transitions"])
        return found


def _attempts(n: int) -> str:
    """C{1 failed attempt}, C{2 failed attempts}."""
    return f"{n} failed attempt" + ("" if n == 1 else "s")


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
