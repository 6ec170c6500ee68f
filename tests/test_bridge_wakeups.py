# -*- test-case-name: tests.test_bridge_wakeups -*-
"""
L{twisted_ch._runtime.Bridge} coalesces its wake-ups of the reactor (issue 21): posts made while a
wake-up of its own is pending write nothing to the waker, and every post still runs, in order with
every other C{callFromThread} call.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest_twisted
from helpers import deviceProtocol
from twisted.internet import reactor
from twisted.internet._signals import _UnixWaker
from twisted.internet.base import ReactorBase
from twisted.internet.defer import Deferred

from twisted_ch._runtime import Bridge, bridgeTo


class CountingWaker:
    def __init__(self) -> None:
        self.writes = 0

    def wakeUp(self) -> None:
        self.writes += 1


class PassReactor(ReactorBase):
    """A reactor that never polls: a test runs its passes (C{runUntilCurrent}) by hand."""

    def installWaker(self) -> None:
        self.waker = CountingWaker()


class OwnCallFromThread(PassReactor):
    """A reactor with a C{callFromThread} of its own: the bridge must use it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def callFromThread(self, f: Any, *args: object, **kwargs: object) -> None:
        self.calls.append((f, args))
        super().callFromThread(f, *args, **kwargs)


def test_posts_while_a_wakeup_is_pending_share_it() -> None:
    r = PassReactor()
    bridge = Bridge(r)
    ran: list[int] = []
    for i in range(5):
        bridge.post(ran.append, i)
    assert r.waker.writes == 1
    assert bridge.wakeUps == 1
    r.runUntilCurrent()
    assert ran == [0, 1, 2, 3, 4]
    # the marker ran: the next post wakes the reactor again
    bridge.post(ran.append, 5)
    assert r.waker.writes == 2
    r.runUntilCurrent()
    assert ran == [0, 1, 2, 3, 4, 5]
    assert r.threadCallQueue == []


def test_order_with_other_callFromThread_calls_is_kept() -> None:
    r = PassReactor()
    bridge = Bridge(r)
    ran: list[str] = []
    bridge.post(ran.append, "a")
    r.callFromThread(ran.append, "x")
    bridge.post(ran.append, "b")
    r.callFromThread(ran.append, "y")
    r.runUntilCurrent()
    assert ran == ["a", "x", "b", "y"]


def test_a_post_appended_after_the_pass_began_runs_in_the_next() -> None:
    """
    A post appended while the reactor runs its queue, before the marker ran, writes nothing:
    the reactor's pass leaves it queued and wakes the reactor itself.
    """
    r = PassReactor()
    bridge = Bridge(r)
    ran: list[str] = []

    def first() -> None:
        ran.append("first")
        bridge.post(ran.append, "second")  # as another thread would, mid-pass

    bridge.post(first)
    assert r.waker.writes == 1
    r.runUntilCurrent()
    assert ran == ["first"]
    assert r.waker.writes == 2  # the reactor's own wake-up (calls were left in its queue)
    r.runUntilCurrent()
    assert ran == ["first", "second"]


def test_a_reactor_with_its_own_callFromThread_is_called_for_every_post() -> None:
    r = OwnCallFromThread()
    bridge = Bridge(r)
    ran: list[int] = []
    for i in range(3):
        bridge.post(ran.append, i)
    assert len(r.calls) == 3
    assert r.waker.writes == 3
    assert bridge.wakeUps == 3
    r.runUntilCurrent()
    assert ran == [0, 1, 2]


def test_a_raising_post_does_not_stop_the_ones_after_it() -> None:
    r = PassReactor()
    bridge = Bridge(r)
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    bridge.post(boom)
    bridge.post(ran.append, 1)
    r.runUntilCurrent()
    assert ran == [1]
    assert not bridge._wakePending


@pytest_twisted.ensureDeferred
async def test_real_threads_every_post_and_call_runs_in_order() -> None:
    """
    Two threads post and make blocking calls against the running reactor, interleaved with
    plain callFromThread calls: every one runs, each thread's in its order, and the blocking
    calls return their results.
    """
    bridge = bridgeTo(reactor)
    count = 2000
    seen: dict[str, list[int]] = {"a": [], "b": []}
    done: list[Deferred[None]] = [Deferred(), Deferred()]
    results: dict[str, list[int]] = {"a": [], "b": []}
    writes0 = bridge.wakeUps

    def work(name: str, d: Deferred[None]) -> None:
        for i in range(count):
            if i % 3 == 0:
                reactor.callFromThread(seen[name].append, i)
            elif i % 3 == 1:
                bridge.post(seen[name].append, i)
            else:
                results[name].append(bridge.call(lambda i=i: seen[name].append(i) or i))
        bridge.post(d.callback, None)

    threads = [
        threading.Thread(target=work, args=(name, d)) for name, d in zip("ab", done, strict=True)
    ]
    for t in threads:
        t.start()
    for d in done:
        await d
    for t in threads:
        t.join()
    for name in "ab":
        assert seen[name] == list(range(count))
        assert results[name] == list(range(2, count, 3))
    posts = 2 * (2 * count // 3 + 1)
    assert bridge.wakeUps - writes0 <= posts


class PipeReactor(ReactorBase):
    """A reactor that never polls, with Twisted's own pipe waker."""

    def installWaker(self) -> None:
        self.waker = _UnixWaker()


def test_a_unix_waker_is_written_directly() -> None:
    r = PipeReactor()
    try:
        own: list[int] = []
        r.waker.wakeUp = lambda: own.append(1)  # Twisted's path (untilConcludes) is not taken
        bridge = Bridge(r)
        ran: list[int] = []
        bridge.post(ran.append, 1)
        bridge.post(ran.append, 2)
        assert os.read(r.waker.i, 100) == b"x"  # one wake-up for both
        assert own == []
        r.runUntilCurrent()
        assert ran == [1, 2]
        # a full pipe: the reactor has a wake-up to read already; the post is not lost
        while True:
            try:
                os.write(r.waker.o, b"y" * 65536)
            except BlockingIOError:
                break
        bridge.post(ran.append, 3)
        r.runUntilCurrent()
        assert ran == [1, 2, 3]
    finally:
        r.waker.connectionLost(None)
    # its pipe closed (the reactor stopped): a post still queues, nothing is written
    bridge.post(ran.append, 4)
    r.runUntilCurrent()
    assert ran == [1, 2, 3, 4]


class SignallingWaker(CountingWaker):
    def __init__(self) -> None:
        super().__init__()
        self.woken = threading.Event()

    def wakeUp(self) -> None:
        super().wakeUp()
        self.woken.set()


class SignallingReactor(ReactorBase):
    def installWaker(self) -> None:
        self.waker = SignallingWaker()


def test_a_blocking_SendAndWait_is_released_by_its_wait_with_no_callback() -> None:
    # the wait tells the blocked thread its end itself (tellInstead): its response, or the
    # failure of a queued wait that could not be sent, raised in the thread
    from twisted_ch._framing import ResponseMatcher
    from twisted_ch._runtime import _release
    from twisted_ch.protocols.device import WriteBufferFull

    protocol, endpoint = deviceProtocol()
    r = SignallingReactor()
    bridge = Bridge(r)
    first = protocol.sendAndWait(b"A", 5, ResponseMatcher.fromKeywords({"deliLen": 1}))
    got: list[object] = []

    def blocked() -> None:
        for data in (b"B", b"C"):
            matcher = ResponseMatcher.fromKeywords({"deliLen": 1})
            try:
                got.append(bridge.call(protocol.sendAndWait, data, 5, matcher))
            except WriteBufferFull as e:
                got.append(e)

    thread = threading.Thread(target=blocked, daemon=True)  # (a broken release: no hang)
    thread.start()
    assert r.waker.woken.wait(10)
    r.waker.woken.clear()
    r.runUntilCurrent()  # B queued behind A, its wait releasing the thread
    queued = protocol._waits[1]
    assert queued._then is _release and not queued._callbacks
    endpoint.respond(b"a")  # A answered: B sent
    assert endpoint.written() == b"AB"
    endpoint.respond(b"b")
    assert r.waker.woken.wait(10)
    r.waker.woken.clear()

    def full(data: bytes) -> None:
        raise WriteBufferFull("full")

    # C: queued behind a wait of the reactor's own, then not sendable when its turn comes
    blocker = protocol.sendAndWait(b"X", 5, ResponseMatcher.fromKeywords({"deliLen": 1}))
    r.runUntilCurrent()
    protocol.send = full  # type: ignore[method-assign]
    endpoint.respond(b"x")
    thread.join(10)
    assert not thread.is_alive()
    assert got[0] == b"b" and isinstance(got[1], WriteBufferFull)
    assert first.result == b"a" and blocker.result == b"x"
