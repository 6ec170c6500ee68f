# -*- test-case-name: tests.test_stalls -*-
"""
The reactor's stalls: how long the reactor was kept from its next iteration.

A timer due every L{STALL_TICK} seconds measures how late it runs: a callback, a page render or a
garbage collection that holds the reactor for 80 ms makes the timer run about 80 ms late.  The
longest lateness of each period and since start are logged (C{--stall-report}, with the
period's longest garbage collection, a usual cause), and a stall of
L{STALL_WARN} or more is a warning (summarised: the first, then a count per minute).

An idle reactor is not woken for it: once a check finds that the reactor's thread used less than
L{STALL_IDLE} of the tick's time, the timer is not re-armed; the reactor's next iteration (of
C{ReactorBase}'s main loop, whatever wakes it) measures how long its dispatch held the reactor
and re-arms the timer.  A fleet whose polls fall due together sleeps most of each second: the
timer's 100 wake-ups a second were the service's largest fixed cost (issue 21).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.base import ReactorBase
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

from twisted_ch._summary import Summarizer

__all__ = [
    "STALL_IDLE",
    "STALL_OVER",
    "STALL_REPORT",
    "STALL_TICK",
    "STALL_WARN",
    "StallMonitor",
    "sleepsWithReactor",
]

log = Logger(namespace="twisted_ch.tap")

#: Seconds between two checks of the reactor (the resolution of what is measured).
STALL_TICK = 0.01
#: Stalls of at least this many seconds are counted (the fleet's target: none).
STALL_OVER = 0.05
#: Stalls of at least this many seconds are logged as warnings.
STALL_WARN = 0.25
#: Seconds between two report lines by default (0: none).
STALL_REPORT = 60.0
#: The share of a tick's time below which the reactor's thread counts as idle (the timer sleeps).
STALL_IDLE = 0.1

_MISSING = object()


def sleepsWithReactor(reactor: object) -> bool:
    """
    Whether C{reactor} runs C{ReactorBase}'s own main loop, which calls C{self.doIteration} once
    per iteration: the call L{StallMonitor} hooks while its timer sleeps.  Other reactors (the
    asyncio reactor's loop, L{twisted.internet.task.Clock}) keep the timer running.
    """
    cls = type(reactor)
    return (
        isinstance(reactor, ReactorBase)
        and getattr(cls, "run", None) is ReactorBase.run
        and getattr(cls, "mainLoop", None) is ReactorBase.mainLoop
    )


def _putBack(reactor: Any, name: str, hook: object, replaced: object) -> None:
    """
    Undo C{reactor.<name> = hook}: the attribute it replaced (L{_MISSING}: the class's own) is
    back, unless something else has replaced the hook since.
    """
    if reactor.__dict__.get(name) == hook:
        if replaced is _MISSING:
            delattr(reactor, name)
        else:
            setattr(reactor, name, replaced)


class StallMonitor:
    """
    Measures how late a timer due every C{tick} seconds runs on C{reactor}, by C{now} (a
    monotonic clock; the reactor's by default), and with C{cpu} (the reactor thread's CPU
    clock) how much CPU the thread used meanwhile: a stall the thread was busy for is the
    reactor's own, one it was not is the machine's (the process waited for a core).
    L{longest} is the longest stall since L{start}, L{periodLongest} that of the current report
    period; L{over} counts the stalls of C{over} seconds or more.  Every C{report} seconds (0:
    never) one line says both.

    With C{cpu} given and C{sleeps} true (by default: when L{sleepsWithReactor}), the timer sleeps
    while the reactor is idle (see the module's docstring); L{checks} counts the timer's runs and
    L{wakes} the iterations that ended a sleep.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        now: Callable[[], float] | None = None,
        tick: float = STALL_TICK,
        over: float = STALL_OVER,
        warn: float = STALL_WARN,
        report: float = STALL_REPORT,
        cpu: Callable[[], float] | None = None,
        sleeps: bool | None = None,
    ) -> None:
        if not tick > 0:
            raise ValueError(f"tick must be positive, got {tick!r}")
        self.reactor = reactor
        self.now = now if now is not None else reactor.seconds
        self.tick = tick
        self.overSeconds = over
        self.warnSeconds = warn
        self.report = report
        #: the CPU time of the reactor's thread (C{time.thread_time}; None: not measured): a
        #: stall whose thread used little CPU meanwhile was the machine's (other processes ran)
        self.cpu = cpu
        #: of the longest stall of the period and since start: the CPU its thread used (seconds)
        self.periodLongestCPU = 0.0
        self.longestCPU = 0.0
        #: the stall that used the most CPU in the period and since start (seconds of CPU)
        self.periodBusiest = 0.0
        self.busiest = 0.0
        self._lastCPU = 0.0
        #: the longest stall since start (seconds), and the count of stalls of C{over} or more
        self.longest = 0.0
        self.over = 0
        #: the longest stall and the count over C{over} in the current report period
        self.periodLongest = 0.0
        self.periodOver = 0
        self._last = 0.0
        self._periodStart = 0.0
        self._timer: IDelayedCall | None = None
        self._summary = Summarizer(reactor)
        #: the longest garbage collection of the period (seconds) and its generation
        self.gcLongest = 0.0
        self.gcGeneration = -1
        self._gcStarted = 0.0
        self.sleeps = cpu is not None and (sleepsWithReactor(reactor) if sleeps is None else sleeps)
        #: whether the timer sleeps now (the reactor's next iteration wakes it)
        self.asleep = False
        self.checks = 0
        self.wakes = 0
        self._replaced: Any = _MISSING
        self._started = False

    @property
    def running(self) -> bool:
        """Whether the monitor is measuring."""
        return self._timer is not None or self.asleep

    def start(self) -> None:
        """Start measuring (from now: what came before is not counted)."""
        if self.running:
            return
        self._started = True
        self._last = self._periodStart = self.now()
        self._lastCPU = self.cpu() if self.cpu is not None else 0.0
        self._timer = self.reactor.callLater(self.tick, self._check)
        gc.callbacks.append(self._collecting)

    def stop(self) -> None:
        """Stop measuring; logs a pending warning count and leaves no timer."""
        self._started = False
        self._unhook()
        self._cancelTimer()
        if self._collecting in gc.callbacks:
            gc.callbacks.remove(self._collecting)
        self._summary.stop()

    def _cancelTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _collecting(self, phase: str, info: dict[str, int]) -> None:
        """The garbage collector starts or ends a collection (it may be what stalls)."""
        if phase == "start":
            self._gcStarted = time.perf_counter()
            return
        took = time.perf_counter() - self._gcStarted
        if took > self.gcLongest:
            self.gcLongest = took
            self.gcGeneration = info.get("generation", -1)

    def _check(self) -> None:
        self.checks += 1
        now = self.now()
        elapsed = now - self._last
        stall = elapsed - self.tick
        self._last = now
        used = 0.0
        idle = False
        if self.cpu is not None:
            cpu = self.cpu()
            spent = cpu - self._lastCPU
            used, self._lastCPU = max(0.0, spent - self.tick), cpu
            idle = self.sleeps and spent < STALL_IDLE * max(elapsed, self.tick)
        self._record(now, stall, used)
        if idle:
            self._sleep(now)
        else:
            self._timer = self.reactor.callLater(self.tick, self._check)

    def _record(self, now: float, stall: float, used: float) -> None:
        """Count a stall of C{stall} seconds during which the thread used C{used} s of CPU."""
        if used > self.periodBusiest:
            self.periodBusiest = used
            self.busiest = max(self.busiest, used)
        if stall > self.periodLongest:
            self.periodLongest = stall
            self.periodLongestCPU = used
            if stall > self.longest:
                self.longest = stall
                self.longestCPU = used
        if stall >= self.overSeconds:
            self.over += 1
            self.periodOver += 1
            if stall >= self.warnSeconds:
                self._summary.emit(
                    log,
                    "stall",
                    LogLevel.warn,
                    "reactor: stalled for {stallMs:.0f} ms (nothing else ran meanwhile)",
                    stallMs=stall * 1000,
                )
        if self.report and now - self._periodStart >= self.report:
            self._reportPeriod(now)

    def _sleep(self, now: float) -> None:
        """
        Leave the timer off until the reactor's next iteration (L{_wake}); a report line due
        meanwhile still comes on time.
        """
        self.asleep = True
        reactor: Any = self.reactor
        self._replaced = reactor.__dict__.get("doIteration", _MISSING)
        reactor.doIteration = self._wake
        self._timer = (
            self.reactor.callLater(
                max(self.tick, self._periodStart + self.report - now), self._reportAsleep
            )
            if self.report
            else None
        )

    def _unhook(self) -> None:
        """Give the reactor back its own C{doIteration}."""
        if not self.asleep:
            return
        self.asleep = False
        _putBack(self.reactor, "doIteration", self._wake, self._replaced)
        self._replaced = _MISSING

    def _wake(self, timeout: float | None) -> None:
        """
        The reactor's first iteration since the timer slept: wait and dispatch as usual, count
        what held the reactor around the wait as a stall, and re-arm the timer.

        The stall is the time from the check that slept to this iteration (the rest of that
        pass over the timed calls) plus the dispatch: from the first descriptor dispatched,
        seen through the reactor's C{_doReadOrWrite} (which every posix reactor's poll calls
        for each ready descriptor), to the iteration's end.  A reactor without one is measured
        by the CPU its thread used meanwhile (the wait uses none).
        """
        self._unhook()
        self._cancelTimer()
        reactor: Any = self.reactor
        entered = self.now()
        first: list[float] = []
        dispatch = getattr(reactor, "_doReadOrWrite", None)
        if dispatch is not None:
            replaced = reactor.__dict__.get("_doReadOrWrite", _MISSING)
            now = self.now

            def firstDispatch(selectable: object, fd: int, event: int) -> None:
                if not first:
                    first.append(now())
                dispatch(selectable, fd, event)

            reactor._doReadOrWrite = firstDispatch
        try:
            reactor.doIteration(timeout)
        finally:
            if dispatch is not None:
                _putBack(reactor, "_doReadOrWrite", firstDispatch, replaced)
            if self._started:  # not stopped by what the iteration ran
                cpu = self.cpu() if self.cpu is not None else 0.0
                ended = self.now()
                used, self._lastCPU = max(0.0, cpu - self._lastCPU), cpu
                if dispatch is None:
                    stall = used
                else:
                    stall = max(0.0, entered - self._last) + (ended - first[0] if first else 0.0)
                self._last = ended
                self.wakes += 1
                self._record(ended, stall, used)
                self._timer = self.reactor.callLater(self.tick, self._check)

    def _reportAsleep(self) -> None:
        """A report line is due while the timer sleeps (nothing ran: no stall to count)."""
        self._timer = None
        now = self.now()
        if now - self._periodStart >= self.report:
            self._reportPeriod(now)
        self._timer = self.reactor.callLater(self.report, self._reportAsleep)

    def _reportPeriod(self, now: float) -> None:
        log.info(
            "reactor: longest stall {periodMs:.1f} ms in the last {period:.0f} s ({periodOver} "
            "of {overMs:.0f} ms or more); {longestMs:.1f} ms since start ({over} of {overMs:.0f} "
            "ms or more); longest garbage collection {gcMs:.1f} ms{busy}",
            reactorStall=True,
            gcMs=self.gcLongest * 1000,
            gcGeneration=self.gcGeneration,
            busy=(
                ""
                if self.cpu is None
                else f"; the busiest stall used {self.periodBusiest * 1000:.1f} ms of CPU"
            ),
            periodCPUMs=self.periodLongestCPU * 1000,
            periodBusiestMs=self.periodBusiest * 1000,
            longestCPUMs=self.longestCPU * 1000,
            busiestMs=self.busiest * 1000,
            periodMs=self.periodLongest * 1000,
            period=now - self._periodStart,
            periodOver=self.periodOver,
            longestMs=self.longest * 1000,
            over=self.over,
            overMs=self.overSeconds * 1000,
        )
        self.periodLongest = 0.0
        self.periodOver = 0
        self.gcLongest = 0.0
        self.gcGeneration = -1
        self.periodLongestCPU = self.periodBusiest = 0.0
        self._periodStart = now

    def stats(self) -> dict[str, Any]:
        """What was measured, in milliseconds."""
        return {
            "longestMs": round(self.longest * 1000, 2),
            "longestCPUMs": round(self.longestCPU * 1000, 2),
            "busiestMs": round(self.busiest * 1000, 2),
            "over": self.over,
            "overMs": self.overSeconds * 1000,
            "periodLongestMs": round(self.periodLongest * 1000, 2),
        }
