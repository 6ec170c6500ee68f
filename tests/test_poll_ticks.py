"""
PollTimers tick from one DelayedCall per clock (L{twisted_ch._ticks}), at the times a
LoopingCall per timer gave.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock, LoopingCall

from twisted_ch._handlers import HandlerTimer
from twisted_ch._runtime import ReactorDispatcher
from twisted_ch.extronlib.system import Timer


def pollTimer(clock: Clock, interval: float, ticks: list[float]) -> HandlerTimer:
    def poll(timer: Timer, count: int) -> None:
        ticks.append(clock.seconds())

    return HandlerTimer(interval, poll, reactor=clock, _dispatcher=ReactorDispatcher())


def loopingTicks(clock: Clock, interval: float, ticks: list[float]) -> LoopingCall:
    loop = LoopingCall(lambda: ticks.append(clock.seconds()))
    loop.clock = clock
    loop.start(interval, now=False)
    return loop


def test_ticks_come_when_a_looping_call_s_would() -> None:
    # phases and intervals mixed, the clock advanced in uneven steps (some later than a tick,
    # some more than an interval at once): each timer ticks when its own LoopingCall would
    clock = Clock()
    ours: dict[tuple[float, float], list[float]] = {}
    theirs: dict[tuple[float, float], list[float]] = {}
    for start, interval in [(0, 1), (0.25, 1), (0.9, 1), (0.5, 0.3), (1.7, 2.5), (0.5, 1)]:
        if start > clock.seconds():
            clock.advance(start - clock.seconds())
        pollTimer(clock, interval, ours.setdefault((start, interval), []))
        loopingTicks(clock, interval, theirs.setdefault((start, interval), []))
    for step in [0.05, 0.4, 1.3, 0.01, 3.7, 0.2, 0.2, 0.6, 2.05, 0.33] * 3:
        clock.advance(step)
    assert ours == theirs
    assert all(len(t) >= 5 for t in ours.values()), {k: len(t) for k, t in ours.items()}


def test_a_late_tick_is_not_repeated_and_the_grid_is_kept() -> None:
    clock = Clock()
    ticks: list[float] = []
    pollTimer(clock, 1, ticks)
    clock.advance(3.5)  # three ticks due: one runs
    clock.advance(0.5)
    clock.advance(1)
    assert ticks == [3.5, 4.0, 5.0]


def test_phases_that_cross_after_a_late_tick_keep_their_own_times() -> None:
    # A at 1, 2, ...; B at 1.9, 2.9, ...: after a late turn at 2.95 both ran once, and then A's
    # next (3.0) comes before B's (3.9) although B was queued first
    clock = Clock()
    a: list[float] = []
    b: list[float] = []
    pollTimer(clock, 1, a)
    clock.advance(0.9)
    pollTimer(clock, 1, b)
    clock.advance(0.1)  # 1.0
    clock.advance(1.95)  # 2.95: B's 1.9 and A's 2.0 are late
    clock.advance(0.05)  # 3.0
    clock.advance(0.9)  # 3.9
    assert a == [1.0, 2.95, 3.0]
    assert b == [2.95, 3.9]


def test_one_delayed_call_serves_every_running_timer_and_none_is_left_when_all_stop() -> None:
    clock = Clock()
    ticks: list[float] = []
    timers = [pollTimer(clock, 1 + (i % 3) * 0.5, ticks) for i in range(100)]
    assert len(clock.getDelayedCalls()) == 1
    clock.pump([0.5] * 12)
    assert len(ticks) == 34 * 6 + 33 * 4 + 33 * 3  # intervals 1, 1.5 and 2 s over 6 s
    assert len(clock.getDelayedCalls()) == 1
    for timer in timers:
        timer.Stop()
    assert clock.getDelayedCalls() == []


def test_stopped_paused_restarted_and_changed_timers_tick_only_on_their_new_schedule() -> None:
    clock = Clock()
    stopped: list[float] = []
    paused: list[float] = []
    restarted: list[float] = []
    changed: list[float] = []
    s = pollTimer(clock, 1, stopped)
    p = pollTimer(clock, 1, paused)
    r = pollTimer(clock, 1, restarted)
    c = pollTimer(clock, 1, changed)
    clock.advance(0.5)
    s.Stop()
    p.Pause()
    r.Restart()  # ticks at 1.5, 2.5, ...
    c.Change(2)  # ticks at 2.5, 4.5, ...
    clock.pump([0.5] * 6)  # to 3.5
    p.Resume()  # ticks at 4.5, ...
    clock.pump([0.5] * 3)  # to 5.0
    assert stopped == [] and s.State == "Stopped"
    assert paused == [4.5] and p.Count == 1
    assert restarted == [1.5, 2.5, 3.5, 4.5]
    assert changed == [2.5, 4.5]


def test_a_tick_that_restarts_a_timer_for_later_does_not_delay_the_others() -> None:
    # the tick of A (interval 1) restarts B with a 10 s interval while C (interval 1, due
    # 0.5 s later) is queued: C still ticks on time
    clock = Clock()
    c: list[float] = []
    b: list[float] = []
    timers: dict[str, Any] = {}

    def restartB(timer: Timer, count: int) -> None:
        if count > 1:
            return
        timers["b"].Stop()
        timers["b"].Change(10)
        timers["b"].Resume()

    timers["a"] = HandlerTimer(1, restartB, reactor=clock, _dispatcher=ReactorDispatcher())
    timers["b"] = pollTimer(clock, 1, b)
    clock.advance(0.5)
    pollTimer(clock, 1, c)
    clock.advance(0.5)  # 1.0: A ticks and restarts B (next tick at 11)
    clock.advance(0.5)  # 1.5: C's first tick
    assert c == [1.5] and b == []
    clock.advance(9.5)
    assert b == [11.0]


def test_a_timer_whose_function_is_replaced_ticks_the_replacement() -> None:
    clock = Clock()
    ticks: list[float] = []
    other: list[int] = []
    timer = pollTimer(clock, 1, ticks)
    clock.advance(1)
    timer.Function = lambda t, count: other.append(count)
    clock.advance(1)
    clock.advance(1)
    assert ticks == [1.0] and other == [2, 3]
