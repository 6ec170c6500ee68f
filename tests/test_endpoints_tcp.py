"""TCPHostnameEndpoint: a failed attempt starts the next address, or fails the connect, at once."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from helpers import assertNoResult, failureResultOf, freePort, successResultOf
from twisted.internet import error, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.endpoints.tcp import TCPHostnameEndpoint, interleave


@implementer(IHostnameResolver)
class Resolver:
    """Answers with fixed addresses, at once or (C{hold=True}) when L{finish} is called."""

    def __init__(self, *hosts: str, hold: bool = False) -> None:
        self.hosts = hosts
        self.hold = hold
        self.receivers: list[tuple[IResolutionReceiver, int]] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IResolutionReceiver:
        self.receivers.append((resolutionReceiver, portNumber))
        if not self.hold:
            self.finish()
        return resolutionReceiver

    def finish(self) -> None:
        for receiver, port in self.receivers:
            receiver.resolutionBegan(None)  # type: ignore[arg-type]
            for host in self.hosts:
                kind = IPv6Address if ":" in host else IPv4Address
                receiver.addressResolved(kind("TCP", host, port))
            receiver.resolutionComplete()
        self.receivers = []


def setUp(*hosts: str, hold: bool = False) -> tuple[MemoryReactorClock, Resolver, Any]:
    clock = MemoryReactorClock()
    resolver = Resolver(*hosts, hold=hold)
    clock.installNameResolver(resolver)
    return clock, resolver, TCPHostnameEndpoint(clock, "device.example", 23)


def refuse(clock: MemoryReactorClock, i: int) -> None:
    factory = clock.tcpClients[i][2]
    factory.clientConnectionFailed(clock.connectors[i], Failure(error.ConnectionRefusedError()))


def accept(clock: MemoryReactorClock, i: int) -> Protocol:
    """Connect attempt C{i}; returns the caller's protocol (inside the endpoint's wrapper)."""
    factory = clock.tcpClients[i][2]
    wrapper = factory.buildProtocol(None)
    wrapper.makeConnection(StringTransport())
    protocol: Protocol = wrapper._wrappedProtocol
    return protocol


def test_a_refused_name_fails_at_once() -> None:
    clock, _, endpoint = setUp("192.0.2.7")
    d = endpoint.connect(Factory.forProtocol(Protocol))
    assert [c[:2] for c in clock.tcpClients] == [("192.0.2.7", 23)]
    refuse(clock, 0)
    failureResultOf(d, error.ConnectionRefusedError)
    assert not clock.getDelayedCalls()


def test_a_failed_attempt_starts_the_next_address_at_once_alternating_families() -> None:
    clock, _, endpoint = setUp("2001:db8::1", "2001:db8::2", "192.0.2.7")
    d = endpoint.connect(Factory.forProtocol(Protocol))
    refuse(clock, 0)
    assert [c[0] for c in clock.tcpClients] == ["2001:db8::1", "192.0.2.7"]
    refuse(clock, 1)
    assert [c[0] for c in clock.tcpClients][2] == "2001:db8::2"
    assertNoResult(d)
    protocol = accept(clock, 2)
    assert successResultOf(d) is protocol
    assert not clock.getDelayedCalls()


def test_a_slow_attempt_lets_the_next_start_after_the_delay_and_the_loser_is_cancelled() -> None:
    clock, _, endpoint = setUp("2001:db8::1", "192.0.2.7")
    d = endpoint.connect(Factory.forProtocol(Protocol))
    assert len(clock.tcpClients) == 1
    clock.advance(0.24)
    assert len(clock.tcpClients) == 1
    clock.advance(0.01)
    assert len(clock.tcpClients) == 2
    protocol = accept(clock, 1)
    assert successResultOf(d) is protocol
    assert clock.connectors[0].stoppedConnecting
    assert not clock.getDelayedCalls()


def test_no_address_is_a_dns_lookup_error() -> None:
    clock, _, endpoint = setUp()
    d = endpoint.connect(Factory.forProtocol(Protocol))
    assert "device.example" in str(failureResultOf(d, error.DNSLookupError).value)
    assert not clock.tcpClients


def test_cancel_while_resolving_ignores_the_late_answer() -> None:
    clock, resolver, endpoint = setUp("192.0.2.7", hold=True)
    d = endpoint.connect(Factory.forProtocol(Protocol))
    d.cancel()
    failureResultOf(d, error.ConnectingCancelledError)
    resolver.finish()
    assert not clock.tcpClients


def test_cancel_while_connecting_stops_every_attempt() -> None:
    clock, _, endpoint = setUp("2001:db8::1", "192.0.2.7")
    d = endpoint.connect(Factory.forProtocol(Protocol))
    clock.advance(0.25)
    d.cancel()
    failureResultOf(d, error.ConnectingCancelledError)
    assert all(c.stoppedConnecting for c in clock.connectors)
    assert not clock.getDelayedCalls()


@pytest.mark.parametrize("host", ["192.0.2.7", "2001:db8::1"])
def test_an_address_is_not_resolved(host: str) -> None:
    clock, resolver, _ = setUp(hold=True)
    endpoint = TCPHostnameEndpoint(clock, host, 23)
    endpoint.connect(Factory.forProtocol(Protocol))
    assert not resolver.receivers
    assert [c[:2] for c in clock.tcpClients] == [(host, 23)]


def test_interleave_alternates_and_drops_repeats() -> None:
    a6, b6 = IPv6Address("TCP", "::1", 1), IPv6Address("TCP", "::2", 1)
    a4 = IPv4Address("TCP", "127.0.0.1", 1)
    assert interleave([a6, b6, a4, IPv4Address("TCP", "127.0.0.1", 1)]) == [a6, a4, b6]
    assert interleave([]) == []


@pytest_twisted.ensureDeferred
async def test_localhost_refused_fails_without_waiting_for_the_attempt_delay() -> None:
    # with an hour between attempts, only failing each attempt at once can finish this test
    endpoint = TCPHostnameEndpoint(reactor, "localhost", freePort(), attemptDelay=3600)
    attempt = endpoint.connect(Factory.forProtocol(Protocol)).addTimeout(10, reactor)
    with pytest.raises(error.ConnectionRefusedError):
        await attempt
    assert not [c for c in reactor.getDelayedCalls() if "_startNext" in repr(c)]


@pytest_twisted.ensureDeferred
async def test_localhost_connects() -> None:
    port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")  # type: ignore[attr-defined]
    try:
        endpoint = TCPHostnameEndpoint(reactor, "localhost", port.getHost().port)
        protocol = await endpoint.connect(Factory.forProtocol(Protocol))
        assert protocol.transport.getPeer().host == "127.0.0.1"
        protocol.transport.loseConnection()
    finally:
        await port.stopListening()


def test_a_bare_bind_host_binds_any_port() -> None:
    clock = MemoryReactorClock()
    clock.installNameResolver(Resolver("192.0.2.7"))
    TCPHostnameEndpoint(clock, "device.example", 23, bindAddress="192.0.2.1").connect(
        Factory.forProtocol(Protocol)
    )
    assert clock.tcpClients[0][4] == ("192.0.2.1", 0)


def test_attempts_failing_in_the_call_leave_no_timer() -> None:
    clock, _, endpoint = setUp("2001:db8::1", "2001:db8::2", "192.0.2.7")
    started: list[str] = []
    real = endpoint._endpoint

    def attempt(host: str, v6: bool) -> Any:
        started.append(host)
        if host != "192.0.2.7":
            return _FailsAtOnce()
        return real(host, v6)

    endpoint._endpoint = attempt
    d = endpoint.connect(Factory.forProtocol(Protocol))
    assert started == ["2001:db8::1", "192.0.2.7"]  # the first failed in its connect call
    refuse(clock, 0)
    assert started == ["2001:db8::1", "192.0.2.7", "2001:db8::2"]
    failureResultOf(d, ValueError)  # the last attempt's error
    assert not clock.getDelayedCalls()


class _FailsAtOnce:
    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        d.errback(ValueError("no route"))
        return d


def test_a_name_needs_a_reactor_that_resolves() -> None:
    from twisted.internet.task import Clock

    with pytest.raises(TypeError, match="name resolver"):
        TCPHostnameEndpoint(Clock(), "device.example", 23)
    TCPHostnameEndpoint(Clock(), "192.0.2.7", 23)  # an address needs none


def test_cancel_works_for_a_name_idna_cannot_encode() -> None:
    clock, _, _ = setUp("192.0.2.7", hold=True)
    endpoint = TCPHostnameEndpoint(clock, "x" * 64 + ".example", 23)
    d = endpoint.connect(Factory.forProtocol(Protocol))
    d.cancel()
    failureResultOf(d, error.ConnectingCancelledError)
