# -*- test-case-name: tests.test_tune_gc -*-
"""
C{twisted_ch.tuneGC()}: a Twisted application of its own asks for the fleet's garbage collector
(issue 21, seventh round); left alone, it is told once, at C{HINT_AT} handlers, that it could.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import pytest_twisted
from helpers import LoggedEvents
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel

import twisted_ch
from twisted_ch import _gctune
from twisted_ch._gctune import SETTLE_CHECK, SETTLE_CHECKS, THRESHOLD, GCTuner, handlerMade
from twisted_ch._runtime import ProgramThread, Runtime, useRuntime
from twisted_ch.program import Program


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """
    gc.freeze calls counted, not made (so the heap's freeze count stays 0); the threshold and
    the hint's state restored after.
    """
    calls: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    monkeypatch.setattr(gc, "get_freeze_count", lambda: 0)
    monkeypatch.setattr(_gctune, "_hinted", [])
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])
    try:
        yield calls
    finally:
        gc.set_threshold(*threshold)


class _Handler:
    """A stand-in handler (a runtime keeps its handlers weakly) whose link is in C{state}."""

    def __init__(self, state: str = "connected") -> None:
        self._link = SimpleNamespace(state=state)


def _runtime(*handlers: _Handler) -> Runtime:
    runtime = Runtime(Clock())
    for handler in handlers:
        runtime.handlers.add(handler)
    return runtime


def test_the_heap_is_frozen_at_once_then_each_time_connected_handlers_were_added(
    freezes: list[int],
) -> None:
    runtime = _runtime()
    clock = runtime.reactor
    tuner = GCTuner(runtime)
    tuner.start()
    assert freezes == [1] and gc.get_threshold()[0] == THRESHOLD
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]  # nothing new
    made = [_Handler("connected"), _Handler("connecting")]
    runtime.handlers.update(made)
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]  # a first connect is still being made
    made[1]._link.state = "connected"
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1] and tuner.frozenAt == 2
    runtime.handlers.discard(made[0])
    clock.advance(SETTLE_CHECK * 10)
    assert freezes == [1, 1] and tuner.frozenAt == 1  # fewer: nothing new to freeze
    tuner.stop()
    assert clock.getDelayedCalls() == [] and not tuner.running


def test_handlers_still_connecting_when_it_starts_are_frozen_once_connected(
    freezes: list[int],
) -> None:
    handler = _Handler("connecting")
    runtime = _runtime(handler)
    tuner = GCTuner(runtime)
    tuner.start()
    assert freezes == [1] and tuner.frozenAt == -1
    runtime.reactor.advance(SETTLE_CHECK)
    assert freezes == [1]
    handler._link.state = "connected"
    runtime.reactor.advance(SETTLE_CHECK)
    assert freezes == [1, 1] and tuner.frozenAt == 1
    tuner.stop()


def test_links_that_keep_connecting_delay_a_freeze_by_the_last_check_at_most(
    freezes: list[int],
) -> None:
    runtime = _runtime()
    tuner = GCTuner(runtime)
    tuner.start()
    handler = _Handler("connecting")  # a device that is off: its connect hangs
    runtime.handlers.add(handler)
    runtime.reactor.pump([SETTLE_CHECK] * (SETTLE_CHECKS - 1))
    assert freezes == [1]
    runtime.reactor.advance(SETTLE_CHECK)
    assert freezes == [1, 1]
    tuner.stop()


def test_a_threshold_chosen_by_the_application_is_kept(freezes: list[int]) -> None:
    gc.set_threshold(5000, *gc.get_threshold()[1:])
    tuner = GCTuner(_runtime())
    tuner.start()
    assert gc.get_threshold()[0] == 5000 and freezes == [1]
    tuner.stop()


def test_tuneGC_watches_the_handlers_of_the_calling_threads_runtime(freezes: list[int]) -> None:
    from twisted_ch import GetConnectionHandler
    from twisted_ch.testing import FakeEndpoint

    runtime = Runtime(Clock())
    clock = runtime.reactor
    with useRuntime(runtime):
        tuner = twisted_ch.tuneGC()
        assert twisted_ch.tuneGC() is tuner and runtime.gcTuner is tuner  # once per runtime
        assert freezes == [1]
        endpoint = FakeEndpoint(clock)
        iface = twisted_ch.EndpointInterface(endpoint)
        handler = GetConnectionHandler(iface, "q", pollFrequency=1)
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1] and tuner.frozenAt == 1  # its link was not connecting
    handler.Connect()
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1]  # the same handlers
    tuner.stop()
    assert runtime.gcTuner is None
    handler.Disconnect()
    with useRuntime(runtime):
        again = twisted_ch.tuneGC()
    assert again is not tuner and again.running  # a stopped tuner is not handed out again
    again.stop()
    clock.advance(0)  # the fake transport's close
    assert clock.getDelayedCalls() == []


def test_an_untuned_process_is_told_once_at_the_hint_count(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gctune, "HINT_AT", 3)
    runtime = Runtime(Clock())
    made = [_Handler() for _ in range(6)]
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.handlers") as events:
        for handler in made[:2]:
            handlerMade(runtime, handler)
        assert events == []
        handlerMade(runtime, made[2])
        assert set(runtime.handlers) == set(made[:3])
        (text,) = events.texts(LogLevel.info)
        assert "3 connection handlers in one runtime" in text and "twisted_ch.tuneGC()" in text
        other = Runtime(Clock())
        for handler in made[3:]:
            handlerMade(other, handler)  # once per process
    assert len(events) == 1


def test_no_hint_where_the_collector_was_tuned_or_for_a_program_thread(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gctune, "HINT_AT", 1)
    program = Runtime(Clock(), dispatcher=ProgramThread(Clock(), name="hint"))
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.handlers") as events:
        handlerMade(program, _Handler())  # a Program has a tuneGC of its own
        gc.set_threshold(THRESHOLD, *gc.get_threshold()[1:])
        handlerMade(Runtime(Clock()), _Handler())
    assert events == []
    assert not _gctune._hinted


@pytest_twisted.ensureDeferred
async def test_a_programs_own_tuneGC_ends_when_the_program_stops(freezes: list[int]) -> None:
    program = Program(reactor, name="tunes")
    try:
        tuner = await program.runCallable(twisted_ch.tuneGC)  # called on the program thread
        assert tuner.running and program.thread.runtime.gcTuner is tuner
        assert freezes == [1]
    finally:
        await program.stop()
    assert not tuner.running and program.thread.runtime.gcTuner is None
