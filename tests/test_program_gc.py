# -*- test-case-name: tests.test_program_gc -*-
"""
A program run's garbage collector, tuned as the fleet's (issue 21): the heap frozen once the
program's top level has run and once its first connects are over; the fleet's threshold.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from twisted_ch import _gctune
from twisted_ch._gctune import SETTLE_CHECK, SETTLE_CHECKS, THRESHOLD, ProgramFreezer
from twisted_ch.program import Program


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """gc.freeze calls counted, not made (a test process's heap is left as it is)."""
    calls: list[int] = []
    monkeypatch.setattr(_gctune.gc, "freeze", lambda: calls.append(1))
    threshold = gc.get_threshold()
    try:
        yield calls
    finally:
        gc.set_threshold(*threshold)


def _handler(state: str) -> Any:
    handler = SimpleNamespace()
    handler._link = SimpleNamespace(state=state)
    return handler


def test_the_constants_are_the_fleets() -> None:
    from twisted_ch.service import _services

    assert THRESHOLD == _services.GC_THRESHOLD
    assert SETTLE_CHECK == _services.GC_SETTLE_CHECK
    assert SETTLE_CHECKS == _services.GC_SETTLE_CHECKS


def test_frozen_after_the_top_level_then_once_no_link_connects(freezes: list[int]) -> None:
    clock = Clock()
    handlers = [_handler("connected"), _handler("connecting")]
    freezer = ProgramFreezer(clock, lambda: handlers)
    freezer.topLevelRan()
    assert freezes == [1]
    clock.advance(SETTLE_CHECK)
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]  # a link still makes its first connect
    handlers[1]._link.state = "closed"  # (refused: it waits to retry)
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1]
    assert clock.getDelayedCalls() == []
    freezer.topLevelRan()  # once only
    assert freezes == [1, 1]


def test_a_link_that_never_connects_stops_the_watch_after_the_last_check(
    freezes: list[int],
) -> None:
    clock = Clock()
    freezer = ProgramFreezer(clock, lambda: [_handler("connecting")])
    freezer.topLevelRan()
    clock.pump([SETTLE_CHECK] * (SETTLE_CHECKS - 1))
    assert freezes == [1]
    clock.advance(SETTLE_CHECK)
    assert freezes == [1, 1]
    assert clock.getDelayedCalls() == []


def test_stop_cancels_the_watch(freezes: list[int]) -> None:
    clock = Clock()
    freezer = ProgramFreezer(clock, lambda: [_handler("connecting")])
    freezer.topLevelRan()
    freezer.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(SETTLE_CHECK)
    assert freezes == [1]


@pytest_twisted.ensureDeferred
async def test_a_tuned_program_freezes_after_its_top_level(freezes: list[int]) -> None:
    gc.set_threshold(700, *gc.get_threshold()[1:])
    ran: list[int] = []
    program = Program(reactor, name="tuned", tuneGC=True)
    try:

        def topLevel() -> int:
            ran.append(len(freezes))  # not frozen before it ran
            return 7

        assert await program.runCallable(topLevel) == 7
        assert ran == [0] and freezes == [1]
        assert gc.get_threshold()[0] == THRESHOLD
        await program.runCallable(lambda: None)  # a later call is no top level
        assert freezes == [1]
    finally:
        await program.stop()
    assert program.freezer is not None and program.freezer._timer is None


@pytest_twisted.ensureDeferred
async def test_a_program_left_untuned_changes_nothing(freezes: list[int]) -> None:
    gc.set_threshold(700, *gc.get_threshold()[1:])
    program = Program(reactor, name="untuned")
    try:
        await program.runCallable(lambda: None)
        assert freezes == [] and gc.get_threshold()[0] == 700
        assert program.freezer is None
    finally:
        await program.stop()
