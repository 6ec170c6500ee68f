# -*- test-case-name: tests.test_event_lane -*-
"""
A program thread's two lanes (issue 21): an event queued while timer firings (keep-alives,
Timer, Wait and Clock functions) wait runs ahead of them, after the callback running ends;
events keep their order, timer firings keep theirs, and a flood of events cannot starve timers.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.base import ReactorBase

from twisted_ch import GetConnectionHandler
from twisted_ch._runtime import EVENTS_AHEAD, ProgramThread, useRuntime
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import listenDevice, waitUntil


class _Waker:
    def wakeUp(self) -> None:
        pass


class PassReactor(ReactorBase):
    """A reactor that never polls: what the program thread posts back waits in its queue."""

    def installWaker(self) -> None:
        self.waker = _Waker()


class Blocked:
    """A program thread held inside a first callback until L{release}."""

    def __init__(self) -> None:
        self.thread = ProgramThread(PassReactor())
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.finished = threading.Event()
        self.order: list[str] = []
        self.thread.start()
        self.thread.call(self._hold)
        assert self.entered.wait(10)

    def _hold(self) -> None:
        self.entered.set()
        assert self.gate.wait(10)

    def event(self, name: str) -> None:
        self.thread.call(self.order.append, name)

    def timer(self, name: str) -> None:
        self.thread.callTimer(self.order.append, name)

    def release(self) -> list[str]:
        """Let the thread run everything queued; what ran, in order."""
        # stop() queues its end last in the timers' lane: after every event and timer firing
        self.thread.stop()
        self.gate.set()
        self.thread._thread.join(10)
        assert not self.thread._thread.is_alive()
        return self.order


@pytest.fixture
def blocked() -> Iterator[Blocked]:
    b = Blocked()
    yield b
    b.gate.set()


def test_events_run_ahead_of_timer_firings_queued_before_them(blocked: Blocked) -> None:
    blocked.timer("t1")
    blocked.timer("t2")
    blocked.event("e1")
    blocked.timer("t3")
    blocked.event("e2")
    assert blocked.thread.queued == 5
    assert blocked.release() == ["e1", "e2", "t1", "t2", "t3"]


def test_run_and_events_share_one_order(blocked: Blocked) -> None:
    blocked.timer("t1")
    blocked.event("e1")
    blocked.thread.run(blocked.order.append, "run")
    blocked.event("e2")
    assert blocked.release() == ["e1", "run", "e2", "t1"]


def test_a_flood_of_events_cannot_starve_a_timer_firing(blocked: Blocked) -> None:
    blocked.timer("t1")
    blocked.timer("t2")
    for i in range(2 * EVENTS_AHEAD + 5):
        blocked.event(f"e{i}")
    order = blocked.release()
    assert order == (
        [f"e{i}" for i in range(EVENTS_AHEAD)]
        + ["t1"]
        + [f"e{i}" for i in range(EVENTS_AHEAD, 2 * EVENTS_AHEAD)]
        + ["t2"]
        + [f"e{i}" for i in range(2 * EVENTS_AHEAD, 2 * EVENTS_AHEAD + 5)]
    )


def test_events_run_while_no_timer_waits_are_not_counted_against_one(blocked: Blocked) -> None:
    for i in range(EVENTS_AHEAD + 3):
        blocked.event(f"early{i}")
    again, gate = threading.Event(), threading.Event()
    blocked.thread.call(lambda: (again.set(), gate.wait(10)))
    blocked.gate.set()
    assert again.wait(10)  # the early events ran, with no timer firing waiting
    blocked.timer("t")
    for i in range(EVENTS_AHEAD + 1):
        blocked.event(f"e{i}")
    gate.set()
    order = blocked.release()
    assert order.index("t") - order.index("e0") == EVENTS_AHEAD


def test_timer_firings_are_never_dropped() -> None:
    thread = ProgramThread(PassReactor(), maxQueue=3)  # never started: nothing drains it
    for _ in range(5):
        thread.call(lambda: None, droppable=True)
    for _ in range(3):
        thread.callTimer(lambda: None)
    assert thread.dropped == 2
    assert thread.queued == 6


def test_abort_drops_both_lanes_and_keeps_the_stop(blocked: Blocked) -> None:
    thread = blocked.thread
    ends = [thread.callTimer(blocked.order.append, "t"), thread.call(blocked.order.append, "e")]
    stopped = thread.stop()
    thread.abort()  # (the thread's callback is not interrupted: it waits in a C function)
    assert thread.queued == 1  # the stop
    blocked.gate.set()
    thread._thread.join(10)
    assert not thread._thread.is_alive()
    assert blocked.order == []
    reactorOf: Any = thread.reactor
    reactorOf.runUntilCurrent()  # what the threads posted back
    assert all(d.called for d in ends) and stopped.called


def test_a_timer_firing_told_by_a_function_keeps_its_place_and_its_end(blocked: Blocked) -> None:
    ends: list[tuple[object, ...]] = []
    thread = blocked.thread
    thread.callTimerThen(lambda *end: ends.append(end), ("k1",), blocked.order.append, "t1")
    thread.callTimer(blocked.order.append, "t2").addCallback(lambda end: ends.append((end, "t2")))
    thread.callTimerThen(lambda *end: ends.append(end), ("k3",), blocked.order.append, "t3")
    blocked.event("e1")
    assert blocked.release() == ["e1", "t1", "t2", "t3"]
    assert ends == []  # told on the reactor thread, not the program's
    reactorOf: Any = thread.reactor
    reactorOf.runUntilCurrent()  # what the thread posted back
    # the ends in the order the firings ran, a Deferred's among them
    assert ends == [(None, "k1"), (None, "t2"), (None, "k3")]


def test_abort_and_a_stopped_thread_tell_a_function_s_end_too(blocked: Blocked) -> None:
    ends: list[tuple[object, ...]] = []
    thread = blocked.thread
    thread.callTimerThen(lambda *end: ends.append(end), ("queued",), blocked.order.append, "t")
    thread.stop()
    thread.abort()
    thread.callTimerThen(lambda *end: ends.append(end), ("after",), blocked.order.append, "u")
    assert ends == [(None, "after")]  # a stopping thread queues nothing: told at once
    blocked.gate.set()
    thread._thread.join(10)
    reactorOf: Any = thread.reactor
    reactorOf.runUntilCurrent()
    assert blocked.order == [] and ends == [(None, "after"), (None, "queued")]


def trackedPerCall(n: int, call: Callable[[int], object]) -> float:
    """GC-tracked objects that stay alive per C{call(i)}, i in range(n) (the collector off)."""
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for i in range(n):
            call(i)
        return (len(gc.get_objects()) - before) / n
    finally:
        gc.enable()


def test_a_timer_firing_told_by_a_function_holds_three_objects_while_queued() -> None:
    """
    What a handler's keep-alive queued behind a busy program thread holds (10,000 handlers
    behind one thread: the young generation each collection walks): the entry, its arguments
    and the end's arguments; callTimer's Deferred and its callback add four more.
    """
    thread = ProgramThread(PassReactor())  # never started: what is queued stays queued
    handler = object()

    def end(result: object, h: object, run: int) -> None:
        pass

    told = trackedPerCall(
        200, lambda run: thread.callTimerThen(end, (handler, run), print, handler)
    )
    fired = trackedPerCall(
        200, lambda run: thread.callTimer(print, handler).addBoth(end, handler, run)
    )
    assert told <= 3 and fired >= told + 4, (told, fired)


def test_a_handler_s_keep_alive_queued_behind_its_program_thread_holds_three_objects() -> None:
    thread = ProgramThread(PassReactor())  # never started: the keep-alives stay queued
    with useRuntime(thread.runtime):
        handlers = [
            GetConnectionHandler(EthernetClientInterface("127.0.0.1", 9), lambda h: None)
            for _ in range(100)
        ]
    # each handler's tick, the link aside
    held = trackedPerCall(
        len(handlers), lambda i: handlers[i]._runKeepAlive(handlers[i]._keepAliveQuery, handlers[i])
    )
    assert thread.queued == len(handlers)
    assert held <= 3, held  # with callTimer's Deferred and its callback: 7


# a real program thread polling handlers over loopback


@pytest_twisted.ensureDeferred
async def test_an_event_waits_for_the_running_keep_alive_only() -> None:
    """
    Three handlers' keep-alives fall due together; data for the program arrives while the first
    blocks in SendAndWait: its callback runs once that keep-alive returns (not inside it), before
    the two keep-alives queued.
    """
    devices = [listenDevice(reactor, {b"P": b"Pwr1\r\n"}) for _ in range(3)]
    source = listenDevice(reactor, {})
    thread = ProgramThread(reactor)
    thread.start()
    order: list[str] = []

    def keepAlive(name: str) -> Callable[[Any], None]:
        def poll(h: Any) -> None:
            order.append("start " + name)
            answer = h.SendAndWait("P", 5, deliTag=b"\r\n")
            order.append(f"end {name} {answer!r}")

        return poll

    def program() -> tuple[list[Any], Any]:
        handlers = []
        for i, device in enumerate(devices):
            h = GetConnectionHandler(
                EthernetClientInterface("127.0.0.1", device.port),
                keepAlive(f"k{i + 1}"),
                pollFrequency=3600,  # its ticks are the test's
            )
            h.Connect()
            handlers.append(h)
        events = EthernetClientInterface("127.0.0.1", source.port)
        events.ReceiveData = lambda iface, data: order.append("event " + data.decode())
        events.Connect()
        return handlers, events

    handlers, events = await thread.run(program)
    try:
        await waitUntil(reactor, lambda: len(source.clients) == 1)
        for device in devices:
            device.silent = True  # k1 waits until the test answers
        for h in handlers:
            h.PollTimer._tick()  # their ticks fall due together
        await waitUntil(reactor, lambda: devices[0].requests == 1)  # k1 is in its SendAndWait
        assert thread.queued == 2
        source.clients[0].transport.write(b"e1")
        await waitUntil(reactor, lambda: thread.queued == 3)  # the event is queued
        assert order == ["start k1"]
        for device in devices:
            device.silent = False
        devices[0].clients[0].transport.write(b"Pwr1\r\n")
        await waitUntil(reactor, lambda: len(order) == 7)
        assert order == [
            "start k1",
            "end k1 b'Pwr1\\r\\n'",
            "event e1",
            "start k2",
            "end k2 b'Pwr1\\r\\n'",
            "start k3",
            "end k3 b'Pwr1\\r\\n'",
        ]
    finally:
        for h in handlers:
            await h.Disconnect()
        await events.Disconnect()
        await thread.stop()
        for server in [*devices, source]:
            await server.shutdown()
