# -*- test-case-name: tests.test_wait_fire -*-
"""
A SendAndWait's Deferred (a C{_Wait}) whose one callback is a coroutine's step calls it without
Twisted's generic callback loop: the coroutine, and anything else holding the Deferred, must see
exactly what that loop gives them.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from twisted_ch._coroutines import CoroutineRun
from twisted_ch._framing import ResponseMatcher
from twisted_ch.protocols.device import _FAST_FIRE, _Wait


class Owner:
    def __init__(self) -> None:
        self.ended: list[int] = []

    def _coroutineEnded(self, token: int) -> None:
        self.ended.append(token)


def wait() -> _Wait:
    return _Wait(b"P", 2.0, ResponseMatcher.fromKeywords({"deliTag": b"\r\n"}))


def awaiting(w: _Wait, seen: list[object], owner: Owner) -> CoroutineRun:
    async def keepAlive() -> None:
        seen.append(await w)

    run = CoroutineRun(keepAlive(), keepAlive, owner, 7)
    run.start()
    return run


@pytest.fixture
def countedLoops(monkeypatch: pytest.MonkeyPatch) -> list[Deferred[Any]]:
    """The Deferreds whose generic callback loop ran."""
    ran: list[Deferred[Any]] = []
    original = Deferred._runCallbacks

    def counted(self: Deferred[Any]) -> None:
        ran.append(self)
        original(self)

    monkeypatch.setattr(Deferred, "_runCallbacks", counted)
    return ran


def test_the_deferred_internals_it_relies_on_are_there() -> None:
    assert _FAST_FIRE  # a Twisted that renamed them: the shortcut is off, and this says so


def test_an_awaiting_coroutine_is_stepped_without_the_generic_loop(
    countedLoops: list[Deferred[Any]],
) -> None:
    w, seen, owner = wait(), [], Owner()
    awaiting(w, seen, owner)
    w.callback(b"Pwr1\r\n")
    assert seen == [b"Pwr1\r\n"] and owner.ended == [7]
    assert w not in countedLoops
    # what Twisted's loop leaves: called, the step's result (None), nothing pending
    assert w.called and w.result is None and not w._callbacks


def test_callbacks_added_while_the_step_runs_get_its_result_after_it() -> None:
    w, order = wait(), []

    async def keepAlive() -> None:
        answer = await w
        w.addCallback(lambda r: order.append(("added", r)))
        order.append(("coroutine", answer))

    CoroutineRun(keepAlive(), keepAlive, Owner(), 1).start()
    w.callback(b"ok\r\n")
    assert order == [("coroutine", b"ok\r\n"), ("added", None)]


def test_with_other_callbacks_the_generic_loop_runs_them_in_order(
    countedLoops: list[Deferred[Any]],
) -> None:
    w, seen, order = wait(), [], []
    w.addCallback(lambda r: order.append(r) or b"changed")
    awaiting(w, seen, Owner())
    w.callback(b"ok\r\n")
    assert order == [b"ok\r\n"] and seen == [b"changed"] and w in countedLoops


def test_a_failure_takes_the_generic_errback_path() -> None:
    w, seen, owner = wait(), [], Owner()

    async def keepAlive() -> None:
        try:
            await w
        except KeyError as e:
            seen.append(e)

    CoroutineRun(keepAlive(), keepAlive, owner, 3).start()
    w.callback(Failure(KeyError("x")))  # type: ignore[arg-type]
    assert [type(e) for e in seen] == [KeyError] and owner.ended == [3]


def test_a_step_that_raises_leaves_its_failure_on_the_deferred() -> None:
    class Step:
        stepsAwait = True

        def __call__(self, result: object) -> None:
            raise ZeroDivisionError

    w = wait()
    w.addBoth(Step())
    w.callback(b"x")
    assert isinstance(w.result, Failure) and w.result.check(ZeroDivisionError)
    w.addErrback(lambda f: None)  # handled: nothing logged at collection


def test_in_debug_mode_the_generic_loop_runs(countedLoops: list[Deferred[Any]]) -> None:
    defer.setDebugging(True)
    try:
        w, seen = wait(), []
        awaiting(w, seen, Owner())
        w.callback(b"ok\r\n")
    finally:
        defer.setDebugging(False)
    assert seen == [b"ok\r\n"] and w in countedLoops


def test_a_handler_keepalive_is_answered_through_the_shortcut(
    countedLoops: list[Deferred[Any]],
) -> None:
    from bench.micro import build

    clock = Clock()
    h, endpoint = build("async", clock)
    clock.advance(1)
    assert endpoint.protocol is not None
    (w,) = endpoint.protocol._waits  # type: ignore[attr-defined]
    endpoint.protocol.dataReceived(b"Pwr1\r\n")
    assert h.ConnectionStatus == "Connected" and w not in countedLoops
