"""
The stall monitor does not wake an idle reactor: its timer sleeps until the reactor's next
iteration, which measures what its dispatch cost (issue 21: the 10 ms timer's 100 wake-ups a
second were the fleet service's largest fixed cost).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from twisted_ch.service._stalls import StallMonitor, sleepsWithReactor

reactor: Any = _reactor  # the global reactor pytest-twisted runs


class LoopClock(Clock):
    """
    A Clock driven as C{ReactorBase.mainLoop} drives a reactor: L{turn} runs the due calls, then
    C{self.doIteration}, which waits (the clock moves, no CPU is used) and dispatches C{work}
    seconds of CPU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cpu = 0.0
        self.iterations = 0
        self.work = 0.0
        self.during: Callable[[], None] | None = None

    def doIteration(self, timeout: float | None) -> None:
        self.iterations += 1
        self.rightNow += timeout or 0.0
        self.rightNow += self.work
        self.cpu += self.work
        self.work = 0.0
        if self.during is not None:
            self.during()

    def turn(self, wait: float, work: float = 0.0) -> None:
        self.advance(0)
        self.work = work
        self.doIteration(wait)  # the monitor's while its timer sleeps, as in mainLoop
        self.advance(0)


def _monitor(clock: LoopClock, **kwargs: Any) -> StallMonitor:
    kwargs.setdefault("report", 0)
    return StallMonitor(clock, tick=0.01, cpu=lambda: clock.cpu, sleeps=True, **kwargs)


def test_an_idle_reactor_is_checked_once_not_every_tick() -> None:
    clock = LoopClock()
    monitor = _monitor(clock)
    monitor.start()
    clock.advance(0.01)  # the first check: the thread used no CPU, so the timer sleeps
    assert monitor.asleep and monitor.running
    assert clock.getDelayedCalls() == []  # nothing wakes the reactor for the monitor
    assert clock.__dict__["doIteration"] == monitor._wake
    clock.turn(wait=5.0)  # 5 s idle, then something woke the reactor
    assert (monitor.checks, monitor.wakes) == (1, 1)
    assert not monitor.asleep and "doIteration" not in clock.__dict__
    assert monitor.longest == 0.0
    clock.advance(0.01)
    assert monitor.asleep and monitor.checks == 2

    awake = StallMonitor(clock, tick=0.01, report=0, cpu=lambda: clock.cpu, sleeps=False)
    awake.start()
    for _ in range(500):
        clock.advance(0.01)
    assert awake.checks == 500 and not awake.asleep
    awake.stop()
    monitor.stop()


def test_a_stall_in_the_iteration_that_wakes_the_timer_is_measured() -> None:
    clock = LoopClock()
    monitor = _monitor(clock)
    monitor.start()
    clock.advance(0.01)
    assert monitor.asleep
    clock.turn(wait=1.0, work=0.08)  # a page render of 80 ms after a second of idling
    assert monitor.longest == pytest.approx(0.08)
    assert monitor.longestCPU == pytest.approx(0.08)  # the thread's own: not the idle wait
    assert monitor.over == 1
    assert [c.getTime() for c in clock.getDelayedCalls()] == [pytest.approx(1.1)]
    monitor.stop()


def test_a_busy_reactor_keeps_the_timer_and_its_lateness_is_measured_as_before() -> None:
    clock = LoopClock()
    monitor = _monitor(clock)
    monitor.start()
    for _ in range(100):
        clock.cpu += 0.005  # half of each tick busy
        clock.advance(0.01)
    assert monitor.checks == 100 and monitor.wakes == 0 and not monitor.asleep
    clock.cpu += 0.1
    clock.advance(0.1)  # 90 ms late, the thread busy all the while
    assert monitor.longest == pytest.approx(0.09)
    assert monitor.busiest == pytest.approx(0.09)
    monitor.stop()


def test_the_report_line_comes_on_time_while_the_timer_sleeps() -> None:
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        clock = LoopClock()
        monitor = _monitor(clock, report=1.0)
        monitor.start()
        clock.advance(0.01)
        assert monitor.asleep
        clock.advance(0.99)  # the period ends with no iteration at all
        clock.advance(1.0)
    finally:
        globalLogPublisher.removeObserver(seen.append)
    reports = [e for e in seen if e.get("reactorStall")]
    assert [round(e["period"]) for e in reports] == [1, 1]
    assert [e["periodMs"] for e in reports] == [0.0, 0.0]
    assert monitor.asleep
    monitor.stop()
    assert clock.getDelayedCalls() == []


def test_stopped_asleep_or_by_what_the_waking_iteration_ran_it_leaves_nothing() -> None:
    clock = LoopClock()
    monitor = _monitor(clock, report=5.0)
    monitor.start()
    clock.advance(0.01)
    monitor.stop()
    assert not monitor.running and "doIteration" not in clock.__dict__
    assert clock.getDelayedCalls() == []

    monitor.start()
    clock.advance(0.01)
    assert monitor.asleep
    clock.during = monitor.stop  # the iteration stops the service
    clock.turn(wait=0.5)
    assert not monitor.running and clock.getDelayedCalls() == []
    assert "doIteration" not in clock.__dict__


def test_another_hook_on_do_iteration_is_kept() -> None:
    clock = LoopClock()
    calls: list[float | None] = []
    ownIteration = clock.doIteration

    def theirs(timeout: float | None) -> None:
        calls.append(timeout)
        ownIteration(timeout)

    clock.doIteration = theirs  # type: ignore[method-assign]
    monitor = _monitor(clock)
    monitor.start()
    clock.advance(0.01)
    assert monitor.asleep
    clock.turn(wait=0.3)
    assert calls == [0.3] and clock.__dict__["doIteration"] is theirs
    monitor.stop()


def test_which_reactors_it_sleeps_with() -> None:
    assert sleepsWithReactor(reactor)  # epoll: ReactorBase's own main loop
    assert not sleepsWithReactor(Clock())
    assert not sleepsWithReactor(MemoryReactorClock())
    loop = asyncio.new_event_loop()
    try:
        assert not sleepsWithReactor(AsyncioSelectorReactor(loop))  # asyncio runs its loop
    finally:
        loop.close()
    assert not StallMonitor(Clock()).sleeps  # without a CPU clock it cannot tell idle
    assert StallMonitor(reactor, cpu=time.thread_time).sleeps


def _burn(seconds: float) -> None:
    """Hold the thread for C{seconds} of its own CPU (a stall made on purpose)."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


class _Readable:
    """A pipe's read end whose dispatch holds the reactor for 100 ms (C{hold})."""

    def __init__(self, fd: int, done: Deferred[None], hold: Callable[[float], None]) -> None:
        self.fd = fd
        self.done = done
        self.hold = hold

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        os.read(self.fd, 1)
        self.hold(0.1)
        reactor.removeReader(self)
        # after this iteration (the test's code runs where the Deferred fires)
        reactor.callLater(0, self.done.callback, None)

    def logPrefix(self) -> str:
        return "readable"

    def connectionLost(self, reason: object) -> None:
        pass


@pytest.mark.parametrize("hold", [_burn, time.sleep], ids=["busy", "blocked"])
@pytest_twisted.ensureDeferred
async def test_on_the_real_reactor_it_sleeps_and_measures_what_wakes_it(
    hold: Callable[[float], None],
) -> None:
    """
    A dispatch that holds the reactor in the iteration ending the sleep is measured, whether it
    uses the CPU or blocks (a synchronous call in a callback: the thread uses no CPU).
    """
    readEnd, writeEnd = os.pipe()
    done: Deferred[None] = Deferred()

    class Monitor(StallMonitor):
        def _sleep(self, now: float) -> None:
            super()._sleep(now)
            if not done.called and self.wakes == 0:
                os.write(writeEnd, b"x")  # what will wake the reactor: readable now

    monitor = Monitor(reactor, now=time.monotonic, report=0, cpu=time.thread_time)
    assert monitor.sleeps
    readable = _Readable(readEnd, done, hold)
    reactor.addReader(readable)
    monitor.start()
    done.addTimeout(10, reactor)  # a monitor that never sleeps fails here, not hangs
    try:
        await done
        assert monitor.wakes >= 1
        # only the waking iteration can see it: the timer is re-armed after the dispatch
        assert monitor.longest >= 0.1
        if hold is time.sleep:
            assert monitor.longestCPU < 0.05  # the thread waited: the wall time was counted
        quiet: Deferred[None] = Deferred()
        reactor.callLater(0.1, quiet.callback, None)
        await quiet
        assert monitor.checks < 10  # 100 ms idle: a timer that never slept would run 10 times
    finally:
        monitor.stop()
        reactor.removeReader(readable)
        os.close(readEnd)
        os.close(writeEnd)
    assert "doIteration" not in reactor.__dict__
    assert "_doReadOrWrite" not in reactor.__dict__
