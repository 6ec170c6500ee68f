"""extronlib.system Timer/Wait/Clock/ProgramLog and the event decorator, on a task.Clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from helpers import LoggedEvents
from twisted.internet.task import Clock as TaskClock

from twisted_ch.extronlib import event
from twisted_ch.extronlib.system import Clock, ProgramLog, Timer, Wait


def test_timer_ticks_with_count_and_starts_running() -> None:
    clock = TaskClock()
    ticks: list[tuple[Any, int]] = []
    t = Timer(2, lambda timer, count: ticks.append((timer, count)), reactor=clock)
    assert t.State == "Running"
    clock.pump([1, 1, 2, 2])
    assert ticks == [(t, 1), (t, 2), (t, 3)]
    assert t.Count == 3


def test_timer_pause_resume_restart_stop_change() -> None:
    clock = TaskClock()
    ticks: list[int] = []
    t = Timer(1, lambda timer, count: ticks.append(count), reactor=clock)
    clock.pump([1, 1])
    t.Pause()
    clock.pump([1] * 5)
    assert ticks == [1, 2] and t.State == "Paused"
    t.Resume()
    clock.advance(1)
    assert ticks == [1, 2, 3]
    t.Restart()
    clock.advance(1)
    assert ticks[-1] == 1
    t.Change(5)
    clock.pump([1] * 4)
    assert ticks[-1] == 1
    clock.advance(1)
    assert ticks[-1] == 2
    t.Stop()
    assert t.State == "Stopped" and t.Count == 0
    assert clock.getDelayedCalls() == []


def test_timer_survives_a_raising_function() -> None:
    clock = TaskClock()
    ticks: list[int] = []

    def bad(timer: Timer, count: int) -> None:
        ticks.append(count)
        raise RuntimeError("boom")

    Timer(1, bad, reactor=clock)
    clock.pump([1] * 5)
    assert ticks == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        ((0, None), ValueError),
        (("1", None), TypeError),
        ((1, 5), TypeError),
        ((-1, None), ValueError),
    ],
)
def test_timer_rejects_bad_arguments(args: tuple[Any, Any], exc: type) -> None:
    with pytest.raises(exc):
        Timer(*args, reactor=TaskClock())


def test_wait_calls_once_and_can_be_cancelled_changed_restarted() -> None:
    clock = TaskClock()
    calls: list[str] = []
    w = Wait(3, lambda: calls.append("a"), reactor=clock)
    clock.advance(2.9)
    assert calls == []
    clock.advance(0.1)
    assert calls == ["a"]
    clock.advance(10)
    assert calls == ["a"]
    w2 = Wait(3, lambda: calls.append("b"), reactor=clock)
    w2.Cancel()
    clock.advance(5)
    assert calls == ["a"]
    w2.Restart()
    w2.Add(2)
    clock.advance(4.9)
    assert calls == ["a"]
    clock.advance(0.1)
    assert calls == ["a", "b"]
    w.Change(1)
    clock.advance(1)
    assert calls == ["a", "b", "a"]
    assert clock.getDelayedCalls() == []


def test_wait_as_decorator() -> None:
    clock = TaskClock()
    calls: list[int] = []

    @Wait(2, reactor=clock)
    def later() -> None:
        calls.append(1)

    clock.advance(2)
    assert calls == [1]


def test_clock_fires_at_times_of_day_and_on_days() -> None:
    reactor = TaskClock()
    start = dt.datetime(2026, 11, 25, 7, 0)  # a Wednesday
    reactor.advance(start.timestamp())
    fired: list[dt.datetime] = []
    c = Clock(
        ["08:00:00", "21:30:00"],
        ["Wednesday", "Friday"],
        lambda clk, when: fired.append(when),
        reactor=reactor,
    )
    assert c.State == "Disabled"
    reactor.advance(3600)
    assert fired == []
    c.Enable()
    reactor.pump([600] * (3 * 24 * 6))
    assert [f.strftime("%a %H:%M") for f in fired] == ["Wed 21:30", "Fri 08:00", "Fri 21:30"]
    c.Disable()
    assert reactor.getDelayedCalls() == []


def test_clock_rejects_bad_times_and_days() -> None:
    with pytest.raises(ValueError, match="'25:00:00' is not 'HH:MM:SS'"):
        Clock(["25:00:00"], reactor=TaskClock())
    with pytest.raises(ValueError, match="'Funday'"):
        Clock(["08:00:00"], ["Funday"], reactor=TaskClock())
    with pytest.raises(TypeError, match="not a single string"):
        Clock("08:00:00", reactor=TaskClock())


def test_program_log_levels() -> None:
    with LoggedEvents() as seen:
        ProgramLog("hello", "info")
        ProgramLog("careful", "warning")
        ProgramLog("bad")
    mine = [(e["log_level"].name, e["entry"]) for e in seen if "entry" in e]
    assert mine == [("info", "hello"), ("warn", "careful"), ("error", "bad")]
    with pytest.raises(ValueError, match="Severity"):
        ProgramLog("x", "fatal")


def test_event_decorator_sets_lists_of_objects_and_events() -> None:
    from helpers import tcpHandler

    _, _, h1, _ = tcpHandler()
    _, _, h2, _ = tcpHandler()

    @event([h1, h2], ["Connected", "Disconnected"])
    def handler(interface: Any, state: str) -> None:
        pass

    assert h1.Connected is handler and h2.Disconnected is handler
    with pytest.raises(AttributeError, match="no event 'Exploded'"):
        event(h1, "Exploded")(handler)
