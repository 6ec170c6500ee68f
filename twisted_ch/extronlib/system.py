"""
ControlScript's C{extronlib.system}: timing (L{Timer}, L{Wait}, L{Clock}), L{MESet}, the program
log, files (L{File}, L{RFile}), network helpers (L{Ping}, L{WakeOnLan}, L{Email}, SSL contexts)
and the time-zone functions.

Time comes from the runtime's reactor (inject a L{twisted.internet.task.Clock} in tests).  Callbacks
run through the runtime's dispatcher: on the reactor for Twisted code, on the program thread for
ControlScript-style programs.  Methods may be called from either thread.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, Logger, LogLevel, formatEvent
from zope.interface import implementer

from twisted_ch._checks import period, seconds
from twisted_ch._events import Event, emit
from twisted_ch._runtime import Dispatcher, Runtime, describe, resolveRuntime
from twisted_ch.extronlib._lifetime import adopt

__all__ = [
    "Clock",
    "Email",
    "File",
    "GetCurrentTimezone",
    "GetSSLContext",
    "GetSystemUpTime",
    "GetTimezoneList",
    "GetUnverifiedContext",
    "MESet",
    "Ping",
    "ProgramLog",
    "RFile",
    "SaveProgramLog",
    "SetAutomaticTime",
    "SetTimeZone",
    "Timer",
    "Wait",
    "WakeOnLan",
]

TimerState = Literal["Running", "Paused", "Stopped"]

_programLog = Logger(namespace="twisted_ch.program")


def _checkInterval(value: object, what: str) -> float:
    return seconds(value, what)


def _checkFunction(value: object, what: str = "Function") -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{what} must be callable or None, not {type(value).__name__}")


#: The shortest Timer interval (as on a control processor); shorter ones are raised to it.
MIN_TIMER_INTERVAL = 0.1


class Timer:
    """
    Calls C{Function(timer, count)} every C{Interval} seconds (at least 0.1 s); starts running
    when created.  Also a decorator: C{@Timer(5)} makes the decorated function the timer's, its
    name standing for the timer.

    A tick that comes while the previous call is still running (a slow function on a program
    thread) is counted but not queued, so a slow function cannot pile up calls.  C{StateChanged}
    is called as C{(timer, state)} when the state ('Running', 'Paused', 'Stopped') changes.
    """

    StateChanged = Event["Timer"]("Called as C{(timer, state)} when the timer's State changes.")

    def __init__(
        self,
        Interval: float,
        Function: Callable[[Timer, int], object] | None = None,
        *,
        reactor: Any = None,
        _dispatcher: Dispatcher | None = None,
    ) -> None:
        # a handler's PollTimer (given a dispatcher) has its pollFrequency's bounds instead of
        # the program minimum: refused outside them, at creation and in Change alike
        self._pollTimer = _dispatcher is not None
        self._interval = self._checked(Interval)
        _checkFunction(Function)
        self._rt: Runtime = resolveRuntime(reactor)
        self._dispatcher: Dispatcher = _dispatcher or self._rt.dispatcher
        self._function = Function
        self._count = 0
        self._state: TimerState = "Stopped"
        self._loop: LoopingCall | None = None
        self._busy = False
        #: a skipped tick of the call running was logged
        self._skipSaid = False
        adopt(self._rt, self)
        self._rt.twoFaced(self._start)

    def _checked(self, Interval: object) -> float:
        """
        A valid interval: a program's Timer raises one under L{MIN_TIMER_INTERVAL} to it (with a
        warning); a handler's PollTimer refuses one outside L{twisted_ch._checks.period}.
        """
        if self._pollTimer:
            return period(Interval, "Interval")
        interval = _checkInterval(Interval, "Interval")
        if interval < MIN_TIMER_INTERVAL:
            _programLog.warn(
                "Timer interval {asked} s is below the minimum; using {minimum} s",
                asked=interval,
                minimum=MIN_TIMER_INTERVAL,
            )
            return MIN_TIMER_INTERVAL
        return interval

    def __call__(self, *args: Any) -> Any:
        """
        C{@Timer(Interval)} on a function makes it the timer's C{Function} and binds its name
        to the timer (so C{Tick.Stop()} works); calling the timer afterwards calls its function.
        """
        if self._function is None and len(args) == 1 and callable(args[0]):
            self._function = args[0]
            return self
        if self._function is None:
            raise TypeError("@Timer decorates a callable; this timer has no function to call")
        return self._function(*args)

    @property
    def Count(self) -> int:
        """Ticks since the timer was last restarted or stopped."""
        return self._count

    @property
    def Function(self) -> Callable[[Timer, int], object] | None:
        """The function called on every tick."""
        return self._function

    @Function.setter
    def Function(self, value: Callable[[Timer, int], object] | None) -> None:
        _checkFunction(value)
        self._function = value

    @property
    def Interval(self) -> float:
        """Seconds between ticks."""
        return self._interval

    @property
    def State(self) -> TimerState:
        """'Running', 'Paused' or 'Stopped'."""
        return self._state

    def Change(self, Interval: float) -> None:
        """
        Set a new interval; a running timer continues at the new rate.  Bounded as at creation
        (a handler's PollTimer as its pollFrequency).
        """
        interval = self._checked(Interval)
        self._rt.twoFaced(self._change, interval)

    def Pause(self) -> None:
        """Stop ticking, keeping the count."""
        self._rt.twoFaced(self._halt, "Paused")

    def Resume(self) -> None:
        """Continue ticking after Pause (or Stop)."""
        self._rt.twoFaced(self._resume)

    def Restart(self) -> None:
        """Reset the count and start ticking a full interval from now."""
        self._rt.twoFaced(self._restart)

    def Stop(self) -> None:
        """Stop ticking and reset the count."""
        self._rt.twoFaced(self._halt, "Stopped")

    def _start(self) -> None:
        self._stopLoop()
        loop = LoopingCall(self._tick)
        loop.clock = self._rt.reactor
        self._loop = loop
        self._setState("Running")
        loop.start(self._interval, now=False)

    def _setState(self, state: TimerState) -> None:
        if state != self._state:
            self._state = state
            emit(self._rt, self, "StateChanged", self, state)

    def _stopLoop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _halt(self, state: TimerState) -> None:
        self._stopLoop()
        self._setState(state)
        if state == "Stopped":
            self._count = 0

    def _resume(self) -> None:
        if self._state != "Running":
            self._start()

    def _restart(self) -> None:
        self._count = 0
        self._start()

    def _change(self, interval: float) -> None:
        self._interval = interval
        if self._state == "Running":
            self._start()

    def _release(self) -> None:
        """The program stopped: stop ticking."""
        self._halt("Stopped")

    def _tick(self) -> None:
        self._count += 1
        function = self._function
        if function is None:
            return
        if self._busy:
            if not self._skipSaid:  # once per call: its ticks meanwhile are only counted
                self._skipSaid = True
                _programLog.debug(
                    "timer function {f} still running; tick {n} skipped (and those after it "
                    "until it ends)",
                    f=describe(function),
                    n=self._count,
                )
            return
        self._skipSaid = False
        self._busy = True
        done = self._dispatcher.callTimer(function, self, self._count)
        if done is None:  # finished already (every tick of a handler's PollTimer)
            self._busy = False
        else:
            done.addBoth(self._done)

    def _done(self, _: object) -> None:
        self._busy = False

    def __repr__(self) -> str:
        return f"<Timer {self._interval}s {self._state} count={self._count}>"


class Wait:
    """
    Calls C{Function()} once, C{Time} seconds from creation.

    Also usable as a decorator: C{@Wait(2)} schedules the decorated function, whose name then
    stands for the Wait (C{Cancel}, C{Restart}...).
    """

    def __init__(
        self, Time: float, Function: Callable[[], object] | None = None, *, reactor: Any = None
    ) -> None:
        self._time = self._checkTime(Time)
        _checkFunction(Function)
        self._rt = resolveRuntime(reactor)
        self._function = Function
        self._call: IDelayedCall | None = None
        adopt(self._rt, self)
        if Function is not None:
            self._rt.twoFaced(self._schedule, self._time)

    @staticmethod
    def _checkTime(value: object) -> float:
        return seconds(value, "Time", zero=True)

    def __call__(self, *args: Any) -> Any:
        """
        C{@Wait(Time)} on a function schedules it and binds its name to the Wait (so
        C{Shutdown.Cancel()} works); calling the Wait afterwards calls its function at once.
        """
        if self._function is None and len(args) == 1:
            _checkFunction(args[0], "decorated object")
            self._function = args[0]
            self._rt.twoFaced(self._schedule, self._time)
            return self
        if self._function is None:
            raise TypeError("@Wait decorates a callable; this Wait has no function to call")
        return self._function(*args)

    @property
    def Function(self) -> Callable[[], object] | None:
        """The function to call."""
        return self._function

    @Function.setter
    def Function(self, value: Callable[[], object] | None) -> None:
        _checkFunction(value)
        self._function = value

    @property
    def Time(self) -> float:
        """The delay in seconds."""
        return self._time

    def Add(self, Time: float) -> None:
        """Add seconds to the remaining time."""
        extra = self._checkTime(Time)
        self._rt.twoFaced(self._add, extra)

    def Cancel(self) -> None:
        """Do not call the function."""
        self._rt.twoFaced(self._cancel)

    def Change(self, Time: float) -> None:
        """Set a new delay, counted from now."""
        self._time = self._checkTime(Time)
        self._rt.twoFaced(self._schedule, self._time)

    def Restart(self) -> None:
        """Start counting the delay again from now."""
        self._rt.twoFaced(self._schedule, self._time)

    def _schedule(self, delay: float) -> None:
        self._cancel()
        self._call = self._rt.reactor.callLater(delay, self._fire)

    def _add(self, extra: float) -> None:
        if self._call is not None and self._call.active():
            self._call.delay(extra)

    def _cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _fire(self) -> None:
        self._call = None
        if self._function is not None:
            self._rt.callTimer(self._function)

    def _release(self) -> None:
        """The program stopped: the function is not called."""
        self._cancel()


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Clock:
    """
    Calls C{Function(clock, datetime)} at the given times of day (C{'HH:MM:SS'}), optionally only
    on the given C{Days} (C{'Monday'} ... C{'Sunday'}).  Disabled until L{Enable} is called.

    Wall time is the runtime reactor's C{seconds()} read as local time.
    """

    def __init__(
        self,
        Times: Iterable[str],
        Days: Iterable[str] | None = None,
        Function: Callable[[Clock, _dt.datetime], object] | None = None,
        *,
        reactor: Any = None,
    ) -> None:
        self._times = self._parseTimes(Times)
        self._days = self._parseDays(Days)
        _checkFunction(Function)
        self._function = Function
        self._rt = resolveRuntime(reactor)
        self._call: IDelayedCall | None = None
        self._state: Literal["Enabled", "Disabled"] = "Disabled"
        adopt(self._rt, self)

    @staticmethod
    def _parseTimes(times: Iterable[str]) -> list[_dt.time]:
        if isinstance(times, str):
            raise TypeError("Times must be a list of 'HH:MM:SS' strings, not a single string")
        if not isinstance(times, Iterable):
            raise TypeError(f"Times must be a list of 'HH:MM:SS' strings, not {times!r}")
        parsed = []
        for t in times:
            try:
                parsed.append(_dt.datetime.strptime(t, "%H:%M:%S").time())
            except (TypeError, ValueError):
                raise ValueError(f"Clock time {t!r} is not 'HH:MM:SS'") from None
        return sorted(parsed)

    @staticmethod
    def _parseDays(days: Iterable[str] | None) -> list[str]:
        if days is None:
            return []
        out = []
        for d in days:
            if d not in _DAYS:
                raise ValueError(f"Clock day {d!r} is not one of {', '.join(_DAYS)}")
            out.append(d)
        return out

    @property
    def Days(self) -> list[str]:
        """Days the clock fires on (empty: every day)."""
        return list(self._days)

    @property
    def Times(self) -> list[str]:
        """Times of day the clock fires at."""
        return [t.strftime("%H:%M:%S") for t in self._times]

    @property
    def Function(self) -> Callable[[Clock, _dt.datetime], object] | None:
        """The function to call."""
        return self._function

    @Function.setter
    def Function(self, value: Callable[[Clock, _dt.datetime], object] | None) -> None:
        _checkFunction(value)
        self._function = value

    @property
    def State(self) -> str:
        """'Enabled' or 'Disabled'."""
        return self._state

    def Enable(self) -> None:
        """Start firing at the configured times."""
        self._rt.twoFaced(self._enable)

    def Disable(self) -> None:
        """Stop firing."""
        self._rt.twoFaced(self._disable)

    def SetDays(self, Days: Iterable[str] | None) -> None:
        """Replace the days."""
        self._days = self._parseDays(Days)
        self._rt.twoFaced(self._reschedule)

    def SetTimes(self, Times: Iterable[str]) -> None:
        """Replace the times."""
        self._times = self._parseTimes(Times)
        self._rt.twoFaced(self._reschedule)

    def _now(self) -> _dt.datetime:
        return localTime(self._rt.reactor.seconds())

    def _next(self, now: _dt.datetime) -> _dt.datetime | None:
        if not self._times:
            return None
        for dayOffset in range(8):
            day = now.date() + _dt.timedelta(days=dayOffset)
            if self._days and _DAYS[day.weekday()] not in self._days:
                continue
            for t in self._times:
                at = _dt.datetime.combine(day, t)
                if at > now:
                    return at
        return None

    def _enable(self) -> None:
        self._state = "Enabled"
        self._reschedule()

    def _disable(self) -> None:
        self._state = "Disabled"
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _release(self) -> None:
        """The program stopped: no more calls."""
        self._disable()

    def _reschedule(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._state != "Enabled":
            return
        now = self._now()
        at = self._next(now)
        if at is not None:
            self._call = self._rt.reactor.callLater((at - now).total_seconds(), self._fire, at)

    def _fire(self, at: _dt.datetime) -> None:
        self._call = None
        if self._function is not None:
            self._rt.callTimer(self._function, self, at)
        self._reschedule()


_SEVERITIES = {"info": LogLevel.info, "warning": LogLevel.warn, "error": LogLevel.error}

#: The program log's most recent lines, as L{SaveProgramLog} writes them.
PROGRAM_LOG_LINES = 2000
_programLogLines: deque[str] = deque(maxlen=PROGRAM_LOG_LINES)
_programLogLock = threading.Lock()


def ProgramLog(Entry: str, Severity: str = "error") -> None:
    """
    Write a line to the program log ('info', 'warning' or 'error'): a Twisted log event
    (namespace C{twisted_ch.program}) and a line that L{SaveProgramLog} saves.
    """
    level = _SEVERITIES.get(Severity)
    if level is None:
        raise ValueError(f"Severity must be one of {', '.join(_SEVERITIES)}, got {Severity!r}")
    entry = str(Entry)
    _keepLine(Severity, entry)
    _programLog.emit(level, "{entry}", entry=entry)


def _keepLine(severity: str, text: str) -> None:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with _programLogLock:
        _programLogLines.append(f"{stamp} {severity}: {text}")


@implementer(ILogObserver)
def programErrors(event: dict[str, Any]) -> None:
    """
    A log observer keeping twisted_ch's errors (a program's callback that raised, with its
    traceback) in the program log, as a processor's program log shows them.
    """
    namespace = event.get("log_namespace") or ""
    if not namespace.startswith("twisted_ch") or "entry" in event:
        return
    level = event.get("log_level")
    if level not in (LogLevel.error, LogLevel.critical):
        return
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        text += "\n" + failure.getTraceback().rstrip()
    _keepLine("error", text)


def SaveProgramLog(path: Any) -> None:
    """
    Write the program log (its last L{PROGRAM_LOG_LINES} lines) to C{path}: an open L{File}
    (or any object with C{write}) or a file name in the program's user area.
    """
    with _programLogLock:
        text = "".join(line + "\n" for line in _programLogLines)
    if hasattr(path, "write"):
        path.write(text)
        return
    if not isinstance(path, str):
        raise TypeError(f"path must be a File or a file name, not {type(path).__name__}")
    with File(path, "w") as f:
        f.write(text)


def GetSystemUpTime() -> int:
    """Seconds since the host started (C{/proc/uptime}; else since this process started)."""
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            return int(float(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return int(time.monotonic() - _STARTED)


_STARTED = time.monotonic()


class MESet:
    """
    A mutually exclusive set: at most one of its objects (buttons, or anything with
    C{SetState}) is current; L{SetCurrent} sets it to its on state and the others to their off
    state (by default 1 and 0, see L{SetStates}).
    """

    def __init__(self, Objects: Iterable[Any]) -> None:
        if isinstance(Objects, str) or not isinstance(Objects, Iterable):
            raise TypeError(f"Objects must be a list of objects, not {type(Objects).__name__}")
        self._objects: list[Any] = list(Objects)
        self._states: dict[int, tuple[int, int]] = {}
        self._current: Any = None

    @property
    def Objects(self) -> list[Any]:
        """The objects of the set (a copy)."""
        return list(self._objects)

    def Append(self, obj: Any) -> None:
        """Add an object to the set."""
        self._objects.append(obj)

    def GetCurrent(self) -> Any:
        """The current object, or None."""
        return self._current

    def Remove(self, obj: Any) -> None:
        """Remove an object, given itself or its index."""
        if isinstance(obj, int) and not isinstance(obj, bool):
            obj = self._index(obj)
        if obj not in self._objects:
            raise ValueError(f"{obj!r} is not in this MESet")
        self._objects.remove(obj)
        self._states.pop(id(obj), None)
        if self._current is obj:
            self._current = None

    def SetCurrent(self, obj: Any) -> None:
        """
        Make C{obj} (the object, its index, or None for no current object) current: it gets its
        on state and every other object its off state.
        """
        if obj is not None and isinstance(obj, int) and not isinstance(obj, bool):
            obj = self._index(obj)
        if obj is not None and obj not in self._objects:
            raise ValueError(f"{obj!r} is not in this MESet")
        self._current = obj
        for o in self._objects:
            off, on = self._states.get(id(o), (0, 1))
            setState = getattr(o, "SetState", None)
            if callable(setState):
                setState(on if o is obj else off)

    def SetStates(self, obj: Any, offState: int, onState: int) -> None:
        """The off and on states of C{obj} (the object, or its index)."""
        if isinstance(obj, int) and not isinstance(obj, bool):
            obj = self._index(obj)
        if obj not in self._objects:
            raise ValueError(f"{obj!r} is not in this MESet")
        self._states[id(obj)] = (offState, onState)

    def _index(self, index: int) -> Any:
        try:
            return self._objects[index]
        except IndexError:
            raise IndexError(
                f"MESet index {index} out of range ({len(self._objects)} objects)"
            ) from None

    def __repr__(self) -> str:
        return f"<MESet of {len(self._objects)}>"


# time and time zones: the program's zone is its own (the host's clock is not changed)

_zone: ZoneInfo | None = None
_timeServer: str | None = None


class Timezone(NamedTuple):
    """A time zone as ControlScript describes it."""

    id: str
    description: str
    MSFTID: str


def _describe(zone: str) -> Timezone:
    now = _dt.datetime.now(ZoneInfo(zone))
    offset = now.strftime("%z")
    return Timezone(zone, f"(UTC{offset[:3]}:{offset[3:]}) {zone}", zone)


def localTime(seconds: float) -> _dt.datetime:
    """Seconds since the epoch as a naive date and time in the program's time zone."""
    if _zone is None:
        return _dt.datetime.fromtimestamp(seconds)
    return _dt.datetime.fromtimestamp(seconds, _zone).replace(tzinfo=None)


def GetTimezoneList() -> list[Timezone]:
    """Every IANA time zone this host knows, as C{(id, description, MSFTID)}."""
    return [_describe(z) for z in sorted(available_timezones())]


def GetCurrentTimezone() -> Timezone:
    """The program's time zone (L{SetTimeZone}), else the host's."""
    if _zone is not None:
        return _describe(_zone.key)
    local = _dt.datetime.now().astimezone()
    name = _hostZoneName() or (local.tzname() or "UTC")
    try:
        return _describe(name)
    except (ZoneInfoNotFoundError, ValueError):
        offset = local.strftime("%z")
        return Timezone(name, f"(UTC{offset[:3]}:{offset[3:]}) {name}", name)


def _hostZoneName() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def SetTimeZone(id: str) -> None:  # noqa: A002 - ControlScript's name
    """
    Set the program's time zone (an IANA id such as C{'Europe/Berlin'}): L{Clock} times and
    L{localTime} use it.  The host's own zone is not changed.
    """
    global _zone
    if not isinstance(id, str):
        raise TypeError(f"id must be a time zone name, not {type(id).__name__}")
    try:
        _zone = ZoneInfo(id)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {id!r} (see GetTimezoneList())") from None


def SetAutomaticTime(TimeServer: str) -> None:
    """
    Record the NTP server the program asks for.  An ordinary host keeps its clock with its own
    time service: nothing is changed, the request is logged.
    """
    global _timeServer
    if not isinstance(TimeServer, str) or not TimeServer:
        raise TypeError(f"TimeServer must be a host name or address, not {TimeServer!r}")
    _timeServer = TimeServer
    _programLog.info(
        "SetAutomaticTime({server!r}): the host's own time service keeps its clock",
        server=TimeServer,
    )


from twisted_ch.extronlib._files import File, RFile  # noqa: E402
from twisted_ch.extronlib._net import (  # noqa: E402
    Email,
    GetSSLContext,
    GetUnverifiedContext,
    Ping,
    WakeOnLan,
)
