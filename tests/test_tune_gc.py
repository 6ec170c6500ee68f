# -*- test-case-name: tests.test_tune_gc -*-
"""
C{twisted_ch.tuneGC()}: a Twisted application of its own asks for the fleet's garbage collector
(issue 21, seventh round); left alone, it is told once, at C{HINT_AT} handlers, that it could.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import LoggedEvents
from twisted.internet.task import Clock
from twisted.logger import LogLevel

import twisted_ch
from twisted_ch import _gctune
from twisted_ch._gctune import SETTLE_CHECK, SETTLE_CHECKS, THRESHOLD, GCTuner, handlerMade
from twisted_ch._runtime import Runtime, useRuntime


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """gc.freeze calls counted, not made; the threshold and the hint's state restored after."""
    calls: list[int] = []
    monkeypatch.setattr(_gctune.gc, "freeze", lambda: calls.append(1))
    monkeypatch.setattr(_gctune, "_hinted", [])
    monkeypatch.setattr(_gctune, "_tuners", [])
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])
    try:
        yield calls
    finally:
        gc.set_threshold(*threshold)


def _handler(state: str) -> Any:
    handler = SimpleNamespace()
    handler._link = SimpleNamespace(state=state)
    return handler


def test_the_heap_is_frozen_at_once_then_each_time_connected_handlers_were_added(
    freezes: list[int],
) -> None:
    clock = Clock()
    handlers: list[Any] = []
    tuner = GCTuner(clock, lambda: handlers)
    tuner.start()
    assert freezes == [1] and gc.get_threshold()[0] == THRESHOLD
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]  # nothing new
    handlers += [_handler("connected"), _handler("connecting")]
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]  # a first connect is still being made
    handlers[1]._link.state = "connected"
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1] and tuner.frozenAt == 2
    clock.advance(SETTLE_CHECK * 10)
    assert freezes == [1, 1]  # the same handlers: no look through them, no freeze
    tuner.stop()
    assert clock.getDelayedCalls() == [] and not tuner.running


def test_links_that_keep_connecting_delay_a_freeze_by_the_last_check_at_most(
    freezes: list[int],
) -> None:
    clock = Clock()
    handlers = [_handler("connecting")]
    tuner = GCTuner(clock, lambda: handlers)
    handlers.clear()
    tuner.start()
    handlers.append(_handler("connecting"))  # a device that is off: its connect hangs
    clock.pump([SETTLE_CHECK] * (SETTLE_CHECKS - 1))
    assert freezes == [1]
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1]
    tuner.stop()


def test_a_threshold_chosen_by_the_application_is_kept(freezes: list[int]) -> None:
    gc.set_threshold(5000, *gc.get_threshold()[1:])
    tuner = GCTuner(Clock(), lambda: [])
    tuner.start()
    assert gc.get_threshold()[0] == 5000 and freezes == [1]
    tuner.stop()


def test_tuneGC_watches_the_handlers_of_the_calling_threads_runtime(freezes: list[int]) -> None:
    from twisted_ch import GetConnectionHandler
    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    with useRuntime(Runtime(clock)):
        tuner = twisted_ch.tuneGC()
        assert twisted_ch.tuneGC() is tuner  # once per runtime
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
    handler.Disconnect()
    with useRuntime(Runtime(clock)):
        assert twisted_ch.tuneGC() is not tuner  # a stopped tuner is not handed out again


def test_an_untuned_process_is_told_once_at_the_hint_count(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gctune, "HINT_AT", 3)
    handlers: set[object] = set()
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.program") as events:
        for _ in range(2):
            handlerMade(handlers, object())
        assert events == []
        handlerMade(handlers, object())
        assert len(handlers) == 3
        (text,) = events.texts(LogLevel.info)
        assert "3 connection handlers" in text and "twisted_ch.tuneGC()" in text
        handlers.clear()
        for _ in range(3):
            handlerMade(handlers, object())  # once per process
    assert len(events) == 1


def test_no_hint_where_the_collector_was_tuned(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gctune, "HINT_AT", 1)
    gc.set_threshold(THRESHOLD, *gc.get_threshold()[1:])
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.program") as events:
        handlerMade(set(), object())
    assert events == []
