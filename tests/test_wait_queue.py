"""
The SendAndWait queue: a wait whose send fails ends with that error and never stalls the waits
around it, and the queue is bounded (issue 11, review of the write-buffer bound).
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import pytest_twisted
from helpers import rig
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure

from twisted_ch import (
    GetConnectionHandler,
    LinkDown,
    ProgramThread,
    WaitQueueFull,
    WriteBufferFull,
)
from twisted_ch.extronlib.interface import EndpointInterface, EthernetClientInterface
from twisted_ch.testing import FakeEndpoint, waitUntil


class _Full:
    """A FakeTransport's queuedBytes while the device 'stopped reading' (C{full} set)."""

    def __init__(self, endpoint: FakeEndpoint) -> None:
        self.full = False
        assert endpoint.transport is not None
        endpoint.transport.queuedBytes = self  # type: ignore[attr-defined]

    def __call__(self) -> int:
        return 1 << 30 if self.full else 0


def connected(clock: Clock) -> tuple[Any, FakeEndpoint, _Full]:
    r = rig(clock=clock, interface=lambda c, e: EndpointInterface(e, reactor=c), handler=False)
    r.interface.Connect()
    return r.interface, r.endpoint, _Full(r.endpoint)


def outcome(d: Deferred[bytes]) -> list[object]:
    out: list[object] = []

    def record(result: object) -> None:
        out.append(result.value if isinstance(result, Failure) else result)

    d.addBoth(record)
    return out


def test_an_answered_wait_fires_even_when_the_next_send_fails() -> None:
    clock = Clock()
    iface, endpoint, device = connected(clock)
    a = outcome(iface.SendAndWait(b"A", 1, deliTag=b"\r\n"))
    b = outcome(iface.SendAndWait(b"B", 1, deliTag=b"\r\n"))
    c = outcome(iface.SendAndWait(b"C", 1, deliTag=b"\r\n"))
    assert endpoint.written() == b"A"
    device.full = True
    endpoint.respond(b"ok\r\n")
    assert a == [b"ok\r\n"]
    # each queued wait whose send is refused ends with the refusal: none is left hanging
    assert len(b) == 1 and isinstance(b[0], WriteBufferFull) and isinstance(b[0], LinkDown)
    assert len(c) == 1 and isinstance(c[0], WriteBufferFull)
    assert endpoint.written() == b""
    clock.advance(1)  # the answered wait's stale deadline entry is dropped: no timer left
    assert not clock.getDelayedCalls()
    assert endpoint.protocol._waits == []  # type: ignore[union-attr]


def test_the_queue_moves_on_after_a_wait_whose_send_failed() -> None:
    clock = Clock()
    iface, endpoint, device = connected(clock)
    a = outcome(iface.SendAndWait(b"A", 1, deliTag=b"\r\n"))
    db = iface.SendAndWait(b"B", 1, deliTag=b"\r\n")
    b = outcome(db)
    c = outcome(iface.SendAndWait(b"C", 1, deliTag=b"\r\n"))
    endpoint.written()
    device.full = True

    def readsAgain(_: object) -> None:
        device.full = False  # b's caller saw the refusal; the device reads again before c's turn

    db.addBoth(readsAgain)
    endpoint.respond(b"ok\r\n")
    assert a == [b"ok\r\n"]
    assert len(b) == 1 and isinstance(b[0], WriteBufferFull)
    assert endpoint.written() == b"C"  # c is in flight, with its own deadline
    clock.advance(1 - 1e-3)
    assert c == []
    endpoint.respond(b"c\r\n")
    assert c == [b"c\r\n"]
    clock.advance(1)
    assert not clock.getDelayedCalls()


def test_a_timed_out_wait_fires_even_when_the_next_send_fails() -> None:
    clock = Clock()
    iface, endpoint, device = connected(clock)
    a = outcome(iface.SendAndWait(b"A", 1, deliTag=b"\r\n"))
    b = outcome(iface.SendAndWait(b"B", 1, deliTag=b"\r\n"))
    device.full = True
    clock.advance(1)
    assert a == [b""]
    assert len(b) == 1 and isinstance(b[0], WriteBufferFull)
    assert not clock.getDelayedCalls()  # no deadline left for a wait that was never sent


def test_a_first_send_that_raises_leaves_no_wait_behind() -> None:
    clock = Clock()
    iface, endpoint, device = connected(clock)
    device.full = True
    with pytest.raises(WriteBufferFull):
        iface.SendAndWait(b"A", 1, deliTag=b"\r\n")
    assert not clock.getDelayedCalls()
    device.full = False
    b = outcome(iface.SendAndWait(b"B", 1, deliTag=b"\r\n"))
    assert endpoint.written() == b"B"  # sent at once: nothing queued ahead of it
    endpoint.respond(b"b\r\n")
    assert b == [b"b\r\n"]


def test_a_callback_that_sends_again_keeps_the_order() -> None:
    clock = Clock()
    iface, endpoint, _ = connected(clock)
    order: list[bytes] = []
    da = iface.SendAndWait(b"A", 1, deliTag=b"\r\n")
    b = outcome(iface.SendAndWait(b"B", 1, deliTag=b"\r\n"))
    later: list[Deferred[bytes]] = []
    da.addCallback(lambda r: later.append(iface.SendAndWait(b"D", 1, deliTag=b"\r\n")))
    endpoint.written()
    endpoint.respond(b"a\r\n")
    order.append(endpoint.written())
    endpoint.respond(b"b\r\n")
    order.append(endpoint.written())
    endpoint.respond(b"d\r\n")
    assert order == [b"B", b"D"]
    assert b == [b"b\r\n"]
    assert outcome(later[0]) == [b"d\r\n"]


def test_pending_waits_are_bounded_in_number() -> None:
    clock = Clock()
    iface, endpoint, _ = connected(clock)
    protocol = endpoint.protocol
    protocol.maxPendingWaits = 3  # type: ignore[union-attr]
    results = [outcome(iface.SendAndWait(b"%d" % i, 1, deliTag=b"\r\n")) for i in range(4)]
    with pytest.raises(WaitQueueFull, match="3 SendAndWait calls are queued") as info:
        iface.SendAndWait(b"x", 1, deliTag=b"\r\n")
    assert isinstance(info.value, WriteBufferFull) and isinstance(info.value, LinkDown)
    assert endpoint.written() == b"0"
    for i in range(4):  # the queued ones are served in order; nothing of the refused one is sent
        endpoint.respond(b"r%d\r\n" % i)
        assert results[i] == [b"r%d\r\n" % i]
        assert endpoint.written() == (b"%d" % (i + 1) if i < 3 else b"")
    # room again once the queue drained
    outcome(iface.SendAndWait(b"y", 1, deliTag=b"\r\n"))
    assert endpoint.written() == b"y"


def test_pending_waits_are_bounded_in_bytes() -> None:
    clock = Clock()
    iface, endpoint, _ = connected(clock)
    protocol = endpoint.protocol
    protocol.maxWriteBuffer = 10  # type: ignore[union-attr]
    outcome(iface.SendAndWait(b"in flight", 1, deliTag=b"\r\n"))
    b = outcome(iface.SendAndWait(b"123456", 1, deliTag=b"\r\n"))
    with pytest.raises(WaitQueueFull, match="hold 6 bytes"):
        iface.SendAndWait(b"12345", 1, deliTag=b"\r\n")
    outcome(iface.SendAndWait(b"1234", 1, deliTag=b"\r\n"))  # fits: 10 bytes queued
    endpoint.written()
    endpoint.respond(b"\r\n")  # the first is answered; b is sent and no longer counts
    assert endpoint.written() == b"123456"
    outcome(iface.SendAndWait(b"123456", 1, deliTag=b"\r\n"))
    endpoint.respond(b"\r\n")
    assert b == [b"\r\n"]


# real loopback: a device that stopped reading fills the 1 MiB write buffer


class _NotReading(Protocol):
    #: the connections made: a server transport that neither reads nor writes is in none of the
    #: reactor's sets, so nothing else keeps it, and a garbage collection closed its socket
    #: (the client saw "Connection lost": a flake of the whole suite, never of this file alone)
    held: list[_NotReading] = []

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.held.append(self)
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self in self.held:
            self.held.remove(self)


async def _fill(handler: Any) -> None:
    """
    Send until the link's write buffer refuses (the device does not read); then lower the bound
    to 2 bytes, so that a 2-byte send is refused for as long as anything is queued (the kernel's
    buffers, growing, may take a few more KiB meanwhile).
    """
    link = handler.Interface.link
    protocol = link.protocol
    assert protocol is not None, f"the link is {link.state}: {link.lastError}"
    protocol.maxWriteBuffer = type(protocol).maxWriteBuffer
    chunk = b"x" * 65536
    with pytest.raises(WriteBufferFull):
        for n in range(2000):
            handler.Send(chunk)
            if n % 16 == 15:
                await deferLater(reactor, 0.01, lambda: None)
    handler.Interface.link.protocol.maxWriteBuffer = 2
    gc.collect()  # as a busy suite may at any time: the device's connection must survive it


@pytest_twisted.ensureDeferred
async def test_a_wait_behind_a_full_write_buffer_fails_on_the_twisted_face() -> None:
    listening = reactor.listenTCP(0, Factory.forProtocol(_NotReading), interface="127.0.0.1")
    h = GetConnectionHandler(EthernetClientInterface("127.0.0.1", listening.getHost().port), None)
    try:
        await h.Connect()
        d1 = h.SendAndWait(b"Q", 0.2, deliTag=b"\r\n")
        a = outcome(d1)
        await _fill(h)
        b = outcome(h.SendAndWait(b"Q2", 0.2, deliTag=b"\r\n"))
        await waitUntil(reactor, lambda: bool(a and b), timeout=5)
        assert a == [b""]
        assert type(b[0]) is WriteBufferFull  # refused when sent, not when queued
        # filled again: meanwhile the kernel's growing buffers may have taken what was queued
        await _fill(h)
        with pytest.raises(WriteBufferFull):  # nothing in flight: refused at once
            h.SendAndWait(b"Q3", 0.2, deliTag=b"\r\n")
        assert h.Interface.link.protocol._waits == []
    finally:
        await h.Disconnect()
        await listening.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_wait_behind_a_full_write_buffer_fails_on_a_program_thread() -> None:
    listening = reactor.listenTCP(0, Factory.forProtocol(_NotReading), interface="127.0.0.1")
    h = GetConnectionHandler(EthernetClientInterface("127.0.0.1", listening.getHost().port), None)
    thread = ProgramThread(reactor)
    thread.start()
    try:
        await h.Connect()
        a = outcome(h.SendAndWait(b"Q", 0.3, deliTag=b"\r\n"))  # in flight, never answered
        await _fill(h)

        def program() -> object:
            # queued behind a; when a ends its send is refused: the thread gets the error
            try:
                return h.SendAndWait(b"Q2", 0.3, deliTag=b"\r\n")
            except LinkDown as e:
                return e

        got = await waitForThread(thread.run(program))
        assert a == [b""]
        assert type(got) is WriteBufferFull  # refused when sent, not when queued
        await _fill(h)  # filled again, as above

        def again() -> object:
            try:
                return h.SendAndWait(b"Q3", 0.3, deliTag=b"\r\n")
            except LinkDown as e:
                return e

        assert isinstance(await waitForThread(thread.run(again)), WriteBufferFull)
    finally:
        await h.Disconnect()
        await thread.stop()
        await listening.stopListening()


async def waitForThread(d: Deferred[Any]) -> Any:
    """The program thread's result, failing the test (not hanging it) after 5 s."""
    done: list[Any] = []
    d.addBoth(done.append)
    await waitUntil(reactor, lambda: bool(done), timeout=5)
    if isinstance(done[0], Failure):
        done[0].raiseException()
    return done[0]
