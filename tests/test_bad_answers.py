"""
Slow, garbled and endless answers from real loopback devices: a one-byte-per-poll drip, garbage
around (or instead of) answers, and endless bytes without a delimiter (memory stays bounded).
"""

from __future__ import annotations

import re
import tracemalloc
from random import Random
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, Watch, bounded, sleep
from twisted.internet import reactor
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.testing import waitUntil

# -- slow, garbled and endless answers


class _Drip(Protocol):
    """Answers a C{P} (when not already answering) one byte every C{factory.interval} seconds."""

    factory: _DripFactory

    def connectionMade(self) -> None:
        self.queue = b""
        self.call: Any = None

    def dataReceived(self, data: bytes) -> None:
        if b"P" in data and not self.queue:
            self.queue = ANSWER
            self.call = reactor.callLater(self.factory.interval, self.drip)

    def drip(self) -> None:
        assert self.transport is not None
        byte, self.queue = self.queue[:1], self.queue[1:]
        self.transport.write(byte)
        self.factory.sent += 1
        self.call = reactor.callLater(self.factory.interval, self.drip) if self.queue else None

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()


class _DripFactory(Factory):
    protocol = _Drip

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sent = 0


@pytest.mark.parametrize(("limit", "stays"), [(10, True), (3, False)])
@pytest_twisted.ensureDeferred
@bounded(15)
async def test_slow_drip_answer_one_byte_per_poll(limit: int, stays: bool) -> None:
    """
    Six bytes at one per poll interval: every byte reaches ReceiveData once, in order; a
    DisconnectLimit above the drip time keeps the device Connected, one below it does not.
    """
    interval = 0.05
    factory = _DripFactory(interval)
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    w = Watch(
        listening.getHost().port, DisconnectLimit=limit, pollFrequency=interval, connectRetryTime=5
    )
    h = w.handler
    try:
        await h.Connect()
        if stays:
            await waitUntil(reactor, lambda: len(w.accepts) >= 3)
            assert w.states() == ["Connected"]
            assert set(w.lines) == {ANSWER}
            assert len(w.chunks) > len(w.lines)  # it really came in pieces
            assert h.missedPolls <= limit
            # nothing lost: what the device sent has arrived (between two drips)
            await waitUntil(reactor, lambda: len(b"".join(w.chunks)) == factory.sent)
        else:
            await h.whenStatus("Disconnected")
            assert w.accepts == []
        stream = b"".join(w.chunks)
        # in order, nothing doubled or skipped
        assert stream == (ANSWER * (len(stream) // len(ANSWER) + 1))[: len(stream)]
        assert stream
    finally:
        await h.Disconnect()
        await listening.stopListening()


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_SendAndWait_over_a_drip_collects_or_passes_every_byte_on() -> None:
    interval = 0.03
    factory = _DripFactory(interval)
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    w = Watch(listening.getHost().port, keepAlive=None, pollFrequency=60)
    h = w.handler
    try:
        await h.Connect()
        started = reactor.seconds()
        assert await h.SendAndWait("P", 3, deliTag=b"\r\n") == ANSWER
        assert reactor.seconds() - started >= 5 * interval
        assert w.chunks == []
        # a wait shorter than the drip: nothing claimed, and the bytes go on to ReceiveData
        assert await h.SendAndWait("P", 2.5 * interval, deliTag=b"\r\n") == b""
        await waitUntil(reactor, lambda: factory.sent == 2 * len(ANSWER))
        await waitUntil(reactor, lambda: b"".join(w.chunks) == ANSWER)
    finally:
        await h.Disconnect()
        await listening.stopListening()


class _Garbage(Protocol):
    """Answers each C{P} with seeded random bytes, with the real answer inside if C{mixed}."""

    factory: _GarbageFactory

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        rng = self.factory.rng
        for _ in range(data.count(b"P")):
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48)))
            noise = noise.replace(b"Pwr", b"pwr")
            tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 16)))
            tail = tail.replace(b"Pwr", b"pwr").replace(b"P", b"p")
            self.transport.write(noise + (ANSWER + tail if self.factory.mixed else b""))


class _GarbageFactory(Factory):
    protocol = _Garbage

    def __init__(self, mixed: bool) -> None:
        self.mixed = mixed
        self.rng = Random(1234)


@pytest.mark.parametrize("mixed", [True, False], ids=["garbage-around-answers", "only-garbage"])
@pytest_twisted.ensureDeferred
@bounded(15)
async def test_garbage_bytes(mixed: bool, loggedFailures: list[Failure]) -> None:
    listening = reactor.listenTCP(0, _GarbageFactory(mixed), interface="127.0.0.1")
    accepted: list[bytes] = []
    unclaimed: list[bytes] = []

    async def keepAlive(h: Any) -> None:
        response = await h.SendAndWait("P", 0.08, deliRex=re.compile(rb"Pwr\d\r\n"))
        if response and response.endswith(ANSWER):  # None: dropped, the link is down
            accepted.append(response)
            h.ResponseAccepted()

    w = Watch(
        listening.getHost().port,
        keepAlive=keepAlive,
        DisconnectLimit=3,
        pollFrequency=0.05,
        connectRetryTime=0.1,
    )
    h = w.handler
    h.ReceiveData = lambda _, data: unclaimed.append(data)
    try:
        await h.Connect()
        if mixed:
            await waitUntil(reactor, lambda: len(accepted) >= 10)
            assert w.states() == ["Connected"]
            assert h.missedPolls <= 2
        else:
            # never a good answer: one Disconnected at the limit, then quiet reconnecting
            await waitUntil(reactor, lambda: h.reconnects >= 2)
            assert accepted == []
            assert w.states() == ["Disconnected"]
        assert unclaimed, "bytes around the answers must reach ReceiveData"
        assert loggedFailures == []
    finally:
        await h.Disconnect()
        await listening.stopListening()


@implementer(IPullProducer)
class _Flood(Protocol):
    """Sends C{LIMIT} bytes of C{x} as fast as the client reads them; never a delimiter."""

    LIMIT = 16 * 2**20
    CHUNK = b"x" * 2**16

    def connectionMade(self) -> None:
        self.sent = 0
        assert self.transport is not None
        self.transport.registerProducer(self, False)  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:
        assert self.transport is not None
        if self.sent >= self.LIMIT:
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
            return
        self.transport.write(self.CHUNK)
        self.sent += len(self.CHUNK)

    def stopProducing(self) -> None:
        pass


def _heldByWaits(h: Any) -> int:
    """Bytes the link holds for pending SendAndWait calls."""
    protocol = h.Interface.link.protocol
    waits = getattr(protocol, "_waits", ())
    return max((len(wait.matcher.pending()) for wait in waits), default=0)


@pytest_twisted.ensureDeferred
@bounded(30)
async def test_endless_bytes_without_delimiter_keep_memory_bounded() -> None:
    maxResponse = 4096
    listening = reactor.listenTCP(0, Factory.forProtocol(_Flood), interface="127.0.0.1")
    w = Watch(listening.getHost().port, maxResponse=maxResponse, pollFrequency=60)
    h = w.handler
    received = [0]
    h.ReceiveData = lambda _, data: received.__setitem__(0, received[0] + len(data))
    held: list[int] = []
    wasTracing = tracemalloc.is_tracing()
    try:
        await h.Connect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        pending = h.SendAndWait("go", 1.0, deliTag=b"\r")
        while not pending.called:
            held.append(_heldByWaits(h))
            await sleep(0.01)
        assert await pending == b""
        link = h.Interface.link
        await waitUntil(reactor, lambda: link.protocol.bytesReceived >= _Flood.LIMIT, timeout=20)
        peak = tracemalloc.get_traced_memory()[1]
        assert max(held) <= maxResponse
        assert max(held) > 0, "the wait saw the flood"
        assert peak < 4 * 2**20, f"{peak} bytes traced at peak while 16 MiB flowed"
        assert 0 < received[0] <= _Flood.LIMIT
        assert link.connected
    finally:
        if not wasTracing:
            tracemalloc.stop()
        await h.Disconnect()
        await listening.stopListening()
