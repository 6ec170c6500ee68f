"""
ControlScript's C{extronlib.system} timing API (L{Timer}, L{Wait}, L{Clock}) and L{ProgramLog}.

Time comes from the runtime's reactor (inject a L{twisted.internet.task.Clock} in tests).  Callbacks
run through the runtime's dispatcher: on the reactor for Twisted code, on the program thread for
ControlScript-style programs.  Methods may be called from either thread.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from typing import Any, Literal

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel

from twisted_ch._checks import seconds
from twisted_ch._runtime import Dispatcher, Runtime, describe, resolveRuntime

__all__ = ["Clock", "ProgramLog", "Timer", "Wait"]

TimerState = Literal["Running", "Paused", "Stopped"]

_programLog = Logger(namespace="twisted_ch.program")


def _checkInterval(value: object, what: str) -> float:
    return seconds(value, what)


def _checkFunction(value: object, what: str = "Function") -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{what} must be callable or None, not {type(value).__name__}")


class Timer:
    """
    Calls C{Function(timer, count)} every C{Interval} seconds; starts running when created.

    A tick that comes while the previous call is still running (a slow function on a program
    thread) is counted but not queued, so a slow function cannot pile up calls.
    """

    def __init__(
        self,
        Interval: float,
        Function: Callable[[Timer, int], object] | None = None,
        *,
        reactor: Any = None,
        _dispatcher: Dispatcher | None = None,
    ) -> None:
        self._interval = _checkInterval(Interval, "Interval")
        _checkFunction(Function)
        self._rt: Runtime = resolveRuntime(reactor)
        self._dispatcher: Dispatcher = _dispatcher or self._rt.dispatcher
        self._function = Function
        self._count = 0
        self._state: TimerState = "Stopped"
        self._loop: LoopingCall | None = None
        self._busy = False
        self._rt.twoFaced(self._start)

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
        """Set a new interval; a running timer continues at the new rate."""
        interval = _checkInterval(Interval, "Interval")
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
        self._state = "Running"
        loop.start(self._interval, now=False)

    def _stopLoop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _halt(self, state: TimerState) -> None:
        self._stopLoop()
        self._state = state
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

    def _tick(self) -> None:
        self._count += 1
        function = self._function
        if function is None:
            return
        if self._busy:
            _programLog.debug(
                "timer function {f} still running; tick {n} skipped",
                f=describe(function),
                n=self._count,
            )
            return
        self._busy = True
        done = self._dispatcher.call(function, self, self._count)
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

    Also usable as a decorator: C{@Wait(2)} schedules the decorated function.
    """

    def __init__(
        self, Time: float, Function: Callable[[], object] | None = None, *, reactor: Any = None
    ) -> None:
        self._time = self._checkTime(Time)
        _checkFunction(Function)
        self._rt = resolveRuntime(reactor)
        self._function = Function
        self._call: IDelayedCall | None = None
        if Function is not None:
            self._rt.twoFaced(self._schedule, self._time)

    @staticmethod
    def _checkTime(value: object) -> float:
        return seconds(value, "Time", zero=True)

    def __call__(self, function: Callable[[], object]) -> Callable[[], object]:
        _checkFunction(function, "decorated object")
        self._function = function
        self._rt.twoFaced(self._schedule, self._time)
        return function

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
            self._rt.call(self._function)


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
        return _dt.datetime.fromtimestamp(self._rt.reactor.seconds())

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
            self._rt.call(self._function, self, at)
        self._reschedule()


_SEVERITIES = {"info": LogLevel.info, "warning": LogLevel.warn, "error": LogLevel.error}


def ProgramLog(Entry: str, Severity: str = "error") -> None:
    """Write a line to the program log ('info', 'warning' or 'error')."""
    level = _SEVERITIES.get(Severity)
    if level is None:
        raise ValueError(f"Severity must be one of {', '.join(_SEVERITIES)}, got {Severity!r}")
    _programLog.emit(level, "{entry}", entry=str(Entry))
