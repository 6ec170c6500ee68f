"""
An C{async def} keep-alive on the reactor runs as a L{CoroutineRun} (not through
C{ensureDeferred}): it must behave as Twisted runs a coroutine, and a poll in flight must hold
few objects for the cyclic collector.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Generator
from contextvars import ContextVar
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from bench.micro import inFlight
from twisted_ch import GetConnectionHandler
from twisted_ch._coroutines import CoroutineRun
from twisted_ch.extronlib.interface import EndpointInterface
from twisted_ch.testing import FakeEndpoint


class Boom(RuntimeError):
    pass


def handler(keepAlive: Any, pollFrequency: float = 1) -> tuple[Clock, FakeEndpoint, Any]:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    h = GetConnectionHandler(
        EndpointInterface(endpoint, reactor=clock),
        keepAlive,
        pollFrequency=pollFrequency,
        reactor=clock,
    )
    h.Connect()
    return clock, endpoint, h


class Owner:
    def __init__(self) -> None:
        self.ended: list[int] = []

    def _coroutineEnded(self, token: int) -> None:
        self.ended.append(token)


def test_a_failing_async_keepalive_is_logged_and_polling_goes_on(
    loggedFailures: list[Failure],
) -> None:
    runs: list[float] = []

    async def keepAlive(h: Any) -> None:
        runs.append(clock.seconds())
        answer = await h.SendAndWait("P", 0.5, deliTag=b"\r\n")
        if answer == b"Pwr1\r\n":
            h.ResponseAccepted()
        raise Boom(f"after {answer!r}")

    clock, endpoint, h = handler(keepAlive)
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")
    clock.pump([1] * 3 + [0.5])  # unanswered: each times out after 0.5 s, then raises
    assert runs == [1, 2, 3, 4]
    assert [f.check(Boom) for f in loggedFailures] == [Boom] * 4
    assert h.ConnectionStatus == "Connected" and h.missedPolls == 3
    assert not h._keepAliveBusy


def test_sys_exit_in_an_async_keepalive_ends_that_run_only() -> None:
    runs: list[int] = []

    async def keepAlive(h: Any) -> None:
        runs.append(1)
        await h.SendAndWait("P", 0.5, deliTag=b"\r\n")
        raise SystemExit(3)

    clock, endpoint, h = handler(keepAlive)
    clock.pump([1] * 3 + [0.5])
    assert len(runs) == 3 and not h._keepAliveBusy


def test_awaiting_many_deferreds_that_fired_already_does_not_recurse() -> None:
    # each already-fired Deferred answers inside addBoth: the run goes on in its loop, not in
    # a nested call (10,000 nested calls would pass the recursion limit)
    seen: list[int] = []

    async def work() -> None:
        total = 0
        for i in range(10_000):
            total += await succeed(i)
        seen.append(total)

    owner = Owner()
    CoroutineRun(work(), work, owner, 7).start()
    assert seen == [sum(range(10_000))] and owner.ended == [7]


def test_a_failure_is_thrown_into_the_coroutine_and_consumed(
    loggedFailures: list[Failure],
) -> None:
    caught: list[str] = []
    later: Deferred[int] = Deferred()

    async def work() -> None:
        try:
            await fail(Boom("now"))
        except Boom as e:
            caught.append(str(e))
        try:
            await later
        except Boom as e:
            caught.append(str(e))

    owner = Owner()
    CoroutineRun(work(), work, owner, 1).start()
    assert caught == ["now"] and owner.ended == []
    later.errback(Boom("later"))
    assert caught == ["now", "later"] and owner.ended == [1]
    assert later.result is None  # consumed: no "Unhandled error in Deferred"
    gc.collect()
    assert loggedFailures == []


def test_a_raising_coroutine_is_logged_naming_its_callable(
    loggedFailures: list[Failure],
) -> None:
    d: Deferred[None] = Deferred()

    async def work() -> None:
        await d
        raise Boom("late")

    owner = Owner()
    CoroutineRun(work(), work, owner, 2).start()
    d.callback(None)
    assert [f.check(Boom) for f in loggedFailures] == [Boom] and owner.ended == [2]


def test_what_is_yielded_is_awaited_as_twisted_does() -> None:
    # a plain value is sent back, a generator is run by ensureDeferred (as _inlineCallbacks)
    def inner() -> Generator[Any, Any, str]:
        value = yield succeed("from inner")
        return str(value)

    @types.coroutine
    def raw() -> Generator[Any, Any, tuple[Any, Any]]:
        plain = yield 42
        nested = yield inner()
        return plain, nested

    got: list[Any] = []

    async def work() -> None:
        got.append(await raw())

    owner = Owner()
    CoroutineRun(work(), work, owner, 3).start()
    assert got == [(42, "from inner")] and owner.ended == [3]


VAR: ContextVar[str] = ContextVar("VAR", default="outside")


def test_each_run_has_its_own_context() -> None:
    # as ensureDeferred: a run sees what it set across its awaits, the caller and the next run
    # do not
    seen: list[str] = []

    async def keepAlive(h: Any) -> None:
        seen.append(VAR.get())
        VAR.set(f"run at {clock.seconds()}")
        await h.SendAndWait("P", 0.5, deliTag=b"\r\n")
        seen.append(VAR.get())

    clock, endpoint, h = handler(keepAlive)
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")
    assert seen == ["outside", "run at 1.0", "outside", "run at 2.0"]
    assert VAR.get() == "outside"


def test_a_keepalive_that_never_ends_is_given_up_after_its_bound() -> None:
    # DisconnectLimit 2, poll 1 s, no SendAndWait: the bound is 3 s; then a new run starts
    never: Deferred[None] = Deferred()
    runs: list[float] = []

    async def keepAlive(h: Any) -> None:
        runs.append(clock.seconds())
        await never

    clock = Clock()
    endpoint = FakeEndpoint(clock)
    h = GetConnectionHandler(
        EndpointInterface(endpoint, reactor=clock),
        keepAlive,
        DisconnectLimit=2,
        pollFrequency=1,
        reactor=clock,
    )
    h.Connect()
    clock.pump([1] * 8)
    assert runs == [1, 4, 7]
    never.callback(None)  # every run ends; the last one's end frees the next tick
    assert not h._keepAliveBusy


def test_an_async_poll_in_flight_holds_few_objects_for_the_collector() -> None:
    # ensureDeferred's run held 24 tracked objects per poll in flight (its Deferred, a
    # cancellation status, callbacks with their argument tuples, ...); the CoroutineRun's holds
    # the coroutine, its await, its context, the wait and its matcher
    assert inFlight("async") <= 10


def test_an_answer_s_callbacks_on_the_reactor_run_as_the_dispatcher_ran_them(
    loggedFailures: list[Failure],
) -> None:
    # ReceiveData on the reactor face is called inline (no dispatcher Deferred): a coroutine it
    # returns runs, a Deferred's failure and a raise are logged, polling goes on
    later: Deferred[None] = Deferred()
    seen: list[bytes] = []

    def keepAlive(h: Any) -> None:
        h.Send("P")

    clock, endpoint, h = handler(keepAlive)

    async def asyncReceive(handler: Any, data: bytes) -> None:
        await later
        seen.append(data)
        handler.ResponseAccepted()

    h.ReceiveData = asyncReceive
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")
    assert seen == [] and h.ConnectionStatus == "Unknown"
    later.callback(None)
    assert seen == [b"Pwr1\r\n"] and h.ConnectionStatus == "Connected"

    h.ReceiveData = lambda handler, data: fail(Boom("deferred"))
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")

    def raising(handler: Any, data: bytes) -> None:
        raise Boom("raised")

    h.ReceiveData = raising
    clock.advance(1)
    endpoint.respond(b"Pwr1\r\n")
    assert [str(f.value) for f in loggedFailures] == ["deferred", "raised"]
    clock.advance(1)
    assert endpoint.written().count(b"P") >= 1 and h.polls == 4
