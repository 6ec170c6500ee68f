# -*- test-case-name: tests.test_poll_ticks -*-
"""
The PollTimer ticks of every handler on one clock, served by one DelayedCall.

A LoopingCall per PollTimer put a new DelayedCall (and its two bound methods) on the reactor's
timer heap for every tick of every handler, each costing a dozen Python-level comparisons in a
heap of thousands of timers, and wrapped each tick in a Deferred with two callbacks; the
DelayedCalls, alive for a whole interval, are also what the cyclic collector promotes and
walks.  Here a running timer's next tick is a float in the queue of its interval (ticks of one
interval mostly come in the order they are due), and one DelayedCall is armed for the earliest
tick due: when it fires, every timer whose tick has come ticks, then is queued for its next one.

Each timer keeps LoopingCall's times: its first tick one interval after it starts, then on the
grid of its start time; a tick that comes late (a busy reactor) is not repeated, the next one
is the next grid point after it ran.
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from twisted_ch._runtime import logCallbackFailure

__all__ = ["Ticking", "PollTimerTicks", "ticksOf"]


class Ticking(Protocol):
    """What a L{PollTimerTicks} ticks: a handler's PollTimer."""

    #: the schedule the timer is on now (an entry of an earlier one is stale)
    _schedule: int
    #: when the current schedule started (the grid of its ticks)
    _startedAt: float
    _interval: float

    def _tick(self) -> None:
        """One tick."""


class PollTimerTicks:
    """The ticks of every running PollTimer of one clock (see the module docstring)."""

    def __init__(self, clock: IReactorTime, strong: bool = False) -> None:
        # weakly: this object is the value of its clock's entry in a WeakKeyDictionary
        self._clock: Callable[[], IReactorTime | None] = (
            (lambda: clock) if strong else weakref.ref(clock)
        )
        #: per interval: when each tick is due, its timer, and the timer's schedule then
        self._queues: dict[float, tuple[deque[float], deque[Ticking], deque[int]]] = {}
        self._timer: IDelayedCall | None = None
        self._timerAt = 0.0
        #: timers running (with a tick queued)
        self.running = 0

    @property
    def clock(self) -> IReactorTime:
        clock = self._clock()
        assert clock is not None, "a PollTimer outlived its clock"
        return clock

    def start(self, timer: Ticking) -> None:
        """C{timer} starts a new schedule (its C{_schedule} bumped already): ticks from now."""
        clock = self.clock
        now = clock.seconds()
        timer._startedAt = now
        self.running += 1
        self._queue(timer, now + timer._interval, now)

    def stop(self, timer: Ticking) -> None:
        """C{timer} stopped (its C{_schedule} bumped already: its queued tick is stale)."""
        self.running -= 1
        if self.running == 0 and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._queues.clear()

    def _queue(self, timer: Ticking, due: float, now: float) -> None:
        interval = timer._interval
        queue = self._queues.get(interval)
        if queue is None:
            queue = self._queues[interval] = (deque(), deque(), deque())
        dues, timers, schedules = queue
        if dues and due < dues[-1]:  # (a late tick, or phases crossing: keep the queue sorted)
            at = bisect_right(dues, due)
            dues.insert(at, due)
            timers.insert(at, timer)
            schedules.insert(at, timer._schedule)
        else:
            dues.append(due)
            timers.append(timer)
            schedules.append(timer._schedule)
        if self._timer is None:
            self._arm(now, due)
        elif due < self._timerAt:
            self._timer.cancel()
            self._arm(now, due)

    def _arm(self, now: float, due: float) -> None:
        self._timerAt = due
        self._timer = self.clock.callLater(max(0.0, due - now), self._fired)

    def _fired(self) -> None:
        self._timer = None
        clock = self.clock
        now = clock.seconds()
        due = max(now, self._timerAt)  # the timer was armed for exactly that tick
        ticking: list[Ticking] = []
        onSchedule: list[int] = []
        for interval, (dues, timers, schedules) in list(self._queues.items()):
            while dues and dues[0] <= due:
                timer = timers.popleft()
                schedule = schedules.popleft()
                if schedule == timer._schedule:  # not stale
                    ticking.append(timer)
                    onSchedule.append(schedule)
                dues.popleft()
            if not dues:
                del self._queues[interval]
        for timer, schedule in zip(ticking, onSchedule, strict=True):
            if timer._schedule != schedule:
                continue  # stopped or restarted by an earlier tick of this turn
            try:
                timer._tick()
            except Exception:  # (a timer's tick logs its function's failures itself)
                logCallbackFailure(Failure(), timer)
            if timer._schedule == schedule:  # not stopped, restarted or changed meanwhile
                # LoopingCall's next time: the next point of the grid after now
                at = clock.seconds()
                interval = timer._interval
                until = interval - ((at - timer._startedAt) % interval)
                if at == at + until:
                    until = interval
                self._queue(timer, at + until, at)
        if self._queues:  # (a tick may have armed the timer for a later tick than another's)
            earliest = min(dues[0] for dues, _, _ in self._queues.values())
            if self._timer is None:
                self._arm(now, earliest)
            elif earliest < self._timerAt:
                self._timer.cancel()
                self._arm(now, earliest)

    def __repr__(self) -> str:
        return f"<PollTimerTicks: {self.running} Timers running>"


_clocks: weakref.WeakKeyDictionary[Any, PollTimerTicks] = weakref.WeakKeyDictionary()


def ticksOf(clock: IReactorTime) -> PollTimerTicks:
    """The one L{PollTimerTicks} of C{clock}."""
    try:
        ticks = _clocks.get(clock)
    except TypeError:  # a clock that cannot be weakly referenced: ticks per timer
        return PollTimerTicks(clock, strong=True)
    if ticks is None:
        ticks = _clocks[clock] = PollTimerTicks(clock)
    return ticks
