"""
Connections that fail on real loopback sockets: resets during SendAndWait, refusals, connect
timeouts and unknown host names; each attempt is reported and retried.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, Watch, bounded, freePort, sleep
from twisted.internet import reactor
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import (
    EthernetClientInterface,
)
from twisted_ch.testing import waitUntil

# -- resets, refusals, DNS


class _ResetOnR(Protocol):
    """Answers C{P}; resets the connection when it receives C{R}."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        if b"R" in data:
            self.transport.abortConnection()  # type: ignore[attr-defined]
        elif b"P" in data:
            self.transport.write(ANSWER)


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_reset_during_SendAndWait_ends_it_and_the_queue_at_once_then_reconnects() -> None:
    listening = reactor.listenTCP(0, Factory.forProtocol(_ResetOnR), interface="127.0.0.1")
    w = Watch(listening.getHost().port, keepAlive=None, pollFrequency=60, connectRetryTime=0.1)
    h = w.handler
    try:
        await h.Connect()
        started = reactor.seconds()
        first = h.SendAndWait("R", 5, deliTag=b"\r\n")
        queued = h.SendAndWait("P", 5, deliTag=b"\r\n")  # sent only after the first finishes
        assert await first == b""
        assert await queued == b""
        assert reactor.seconds() - started < 2, "the reset must end the waits, not their timeout"
        await h.whenStatus("Disconnected")
        await waitUntil(reactor, lambda: w.states()[-1:] == ["Connected"])
        assert await h.SendAndWait("P", 2, deliTag=b"\r\n") == ANSWER
        assert w.states() == ["Connected", "Disconnected", "Connected"]
    finally:
        await h.Disconnect()
        await listening.stopListening()


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_refused_connection_reports_each_attempt_and_retries_until_told_not_to() -> None:
    retry = 0.1
    w = Watch(freePort(), connectRetryTime=retry)
    h = w.handler
    try:
        assert await h.Connect() == "Connection refused"
        await waitUntil(reactor, lambda: len(w.names("ConnectFailed")) >= 3)
        failures = [t for n, _, t in w.events if n == "ConnectFailed"]
        gaps = [b - a for a, b in zip(failures, failures[1:], strict=False)]
        assert all(g >= retry - 0.01 for g in gaps), gaps  # paced by connectRetryTime, no spin
        assert {r for n, r, _ in w.events if n == "ConnectFailed"} == {"Connection refused"}
        # never reached: no transition at all, Unknown with the reason (issue 10; it was one
        # transition to Disconnected)
        assert w.states() == []
        assert h.ConnectionStatus == "Unknown"
        assert h.stats()["lastError"] == "Connection refused"

        h.AutoReconnect = False
        # an attempt already in flight still reports; then nothing more
        await waitUntil(reactor, lambda: h.Interface.link.state == "closed")
        count = len(w.names("ConnectFailed"))
        await sleep(3 * (retry + 0.3))
        assert len(w.names("ConnectFailed")) == count
    finally:
        await h.Disconnect()


@pytest.fixture
def unanswered() -> Iterator[int]:
    """A loopback port whose SYNs go unanswered: its accept queue is full (nobody accepts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.socket()
    filler.connect(("127.0.0.1", port))  # takes the only slot
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass
    else:
        pytest.skip("this kernel answers SYNs beyond a full accept queue")
    finally:
        probe.close()
    try:
        yield port
    finally:
        filler.close()
        listener.close()


async def _timedOutAttempts(port: int) -> tuple[str, Watch]:
    w = Watch(port, connectRetryTime=0.1)
    first = await w.handler.Connect(timeout=0.2)
    await waitUntil(reactor, lambda: len(w.names("ConnectFailed")) >= 3)
    return first, w


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_connect_timeout_fails_the_attempt_and_retries(unanswered: int) -> None:
    started = reactor.seconds()
    first, w = await _timedOutAttempts(unanswered)
    try:
        assert first == "Timed out"
        failures = [t for n, _, t in w.events if n == "ConnectFailed"]
        assert failures[0] - started >= 0.19  # the attempt ran for its timeout
        gaps = [b - a for a, b in zip(failures, failures[1:], strict=False)]
        assert all(0.29 <= g < 1.5 for g in gaps), gaps  # timeout + connectRetryTime
        assert w.states() == []  # never reached: Unknown (issue 10)
        assert {r for n, r, _ in w.events if n == "ConnectFailed"} == {first}
    finally:
        await w.handler.Disconnect()


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class _InvalidNames:
    """Answers NXDOMAIN for C{.invalid} names (RFC 6761) without any network; else delegates."""

    def __init__(self, fallback: IHostnameResolver) -> None:
        self.fallback = fallback
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        if hostName.rstrip(".").endswith(".invalid"):
            self.asked.append(hostName)
            resolution = _Resolution(hostName)
            resolutionReceiver.resolutionBegan(resolution)
            resolutionReceiver.resolutionComplete()
            return resolution
        return self.fallback.resolveHostName(  # type: ignore[no-any-return]
            resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
        )


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_unknown_host_fails_each_attempt_with_a_clear_reason_and_retries() -> None:
    resolver = _InvalidNames(reactor.nameResolver)
    previous = reactor.installNameResolver(resolver)
    iface = EthernetClientInterface("projector.invalid", 23)
    h = GetConnectionHandler(iface, lambda h: h.Send("P"), connectRetryTime=0.1)
    reasons: list[str] = []
    states: list[str] = []
    h.ConnectFailed = lambda _, reason: reasons.append(reason)
    h.addStatusObserver(states.append)
    try:
        first = await h.Connect()
        assert "projector.invalid" in first and "not found" in first.lower(), first
        await waitUntil(reactor, lambda: len(reasons) >= 3)
        assert set(reasons) == {first}
        assert states == []  # never reached: Unknown (issue 10)
        assert resolver.asked.count("projector.invalid") >= 3
    finally:
        await h.Disconnect()
        reactor.installNameResolver(previous)
