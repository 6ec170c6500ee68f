"""
UDPClientEndpoint over real loopback sockets, and the C{udp:} string parser.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from helpers import LoggedEvents, freePort
from twisted.internet import error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import _clientParsers, clientFromString, quoteStringArgument
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.interfaces import (
    IAddress,
    IReactorUDP,
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
    IUDPTransport,
)
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.task import Clock, LoopingCall, deferLater
from twisted.logger import globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.endpoints.udp import UDPClientEndpoint

TIMEOUT = 10


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _ipv6Loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


LOOPBACKS = [
    pytest.param("127.0.0.1", id="IPv4"),
    pytest.param(
        "::1",
        id="IPv6",
        marks=pytest.mark.skipif(not _ipv6Loopback(), reason="this machine cannot bind ::1"),
    ),
]


class Recorder(Protocol):
    """Records each dataReceived call and every connectionLost."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.reasons: list[Failure] = []
        self._data: list[tuple[int, Deferred[None]]] = []
        self._lost: list[Deferred[None]] = []

    def dataReceived(self, data: bytes) -> None:
        self.datagrams.append(data)
        for pair in list(self._data):
            if len(self.datagrams) >= pair[0]:
                self._data.remove(pair)
                pair[1].callback(None)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.reasons.append(reason)
        waiting, self._lost = self._lost, []
        for d in waiting:
            d.callback(None)

    async def whenReceived(self, count: int) -> list[bytes]:
        if len(self.datagrams) < count:
            d: Deferred[None] = Deferred()
            self._data.append((count, d))
            await d.addTimeout(TIMEOUT, _reactor())
        return self.datagrams

    async def whenLost(self) -> Failure:
        if not self.reasons:
            d: Deferred[None] = Deferred()
            self._lost.append(d)
            await d.addTimeout(TIMEOUT, _reactor())
        return self.reasons[0]


class Explosive(Recorder):
    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        raise ZeroDivisionError("dataReceived exploded")


class Echo(DatagramProtocol):
    """A UDP echo server that records what it got."""

    noisy = False

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self._first: list[Deferred[None]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.datagrams.append(datagram)
        assert self.transport is not None
        self.transport.write(datagram, addr)
        waiting, self._first = self._first, []
        for d in waiting:
            d.callback(None)

    async def whenReceived(self) -> None:
        if not self.datagrams:
            d: Deferred[None] = Deferred()
            self._first.append(d)
            await d.addTimeout(TIMEOUT, _reactor())


_UDP_NAMESPACE = "twisted_ch.endpoints.udp"


@pytest.fixture
def link_events() -> Iterator[list[dict[str, Any]]]:
    """Log events emitted by the UDP link."""
    with LoggedEvents(lambda e: e.get("log_namespace", "").startswith(_UDP_NAMESPACE)) as events:
        yield events


async def _listen(host: str, port: int = 0) -> tuple[Echo, Any]:
    echo = Echo()
    listening = _reactor().listenUDP(port, echo, interface=host)
    return echo, listening


async def _stop(listening: Any) -> None:
    stopped = listening.stopListening()
    if stopped is not None:
        await stopped


async def _connect(endpoint: UDPClientEndpoint, kind: type[Recorder] = Recorder) -> Recorder:
    protocol = await endpoint.connect(Factory.forProtocol(kind))
    assert isinstance(protocol, kind)
    return protocol


async def _close(protocol: Recorder) -> Failure:
    assert protocol.transport is not None
    protocol.transport.loseConnection()
    return await protocol.whenLost()


async def _turns(count: int = 3) -> None:
    for _ in range(count):
        await deferLater(_reactor(), 0, lambda: None)


@pytest.mark.parametrize("host", LOOPBACKS)
@pytest_twisted.ensureDeferred
async def test_echo_round_trip(host: str, quiet_reactor: list[Any]) -> None:
    """Each write is one datagram, each datagram one dataReceived; close is clean."""
    reactor = _reactor()
    echo, listening = await _listen(host)
    port = listening.getHost().port
    addressType = IPv6Address if ":" in host else IPv4Address
    try:
        protocol = await _connect(UDPClientEndpoint(reactor, host, port))
        transport: Any = protocol.transport
        assert transport.getPeer() == addressType("UDP", host, port)
        local = transport.getHost()
        assert isinstance(local, addressType) and local.type == "UDP"
        assert local.host == host and local.port != 0

        transport.write(b"first")
        assert await protocol.whenReceived(1) == [b"first"]
        transport.writeSequence([b"sec", b"ond"])
        assert await protocol.whenReceived(2) == [b"first", b"second"]
        assert echo.datagrams == [b"first", b"second"]

        reason = await _close(protocol)
        await _turns()
        assert reason.check(error.ConnectionDone)
        assert protocol.reasons == [reason]
        assert not transport.connected
        transport.write(b"after close")
        transport.loseConnection()
        transport.abortConnection()
        await _turns()
        assert protocol.reasons == [reason]
        assert echo.datagrams == [b"first", b"second"]
    finally:
        await _stop(listening)


@pytest_twisted.ensureDeferred
async def test_abort_connection(quiet_reactor: list[Any]) -> None:
    """abortConnection ends the link with ConnectionAborted, once, and closes the socket."""
    echo, listening = await _listen("127.0.0.1")
    try:
        endpoint = UDPClientEndpoint(_reactor(), "127.0.0.1", listening.getHost().port)
        protocol = await _connect(endpoint)
        assert protocol.transport is not None
        protocol.transport.abortConnection()  # type: ignore[attr-defined]
        protocol.transport.abortConnection()  # type: ignore[attr-defined]
        reason = await protocol.whenLost()
        await _turns()
        assert reason.check(error.ConnectionAborted)
        assert protocol.reasons == [reason]
    finally:
        await _stop(listening)


@pytest_twisted.ensureDeferred
async def test_localhost_is_resolved(quiet_reactor: list[Any]) -> None:
    """A host name goes through the reactor's resolver; bindAddress picks the family."""
    reactor = _reactor()
    echo, listening = await _listen("127.0.0.1")
    port = listening.getHost().port
    try:
        endpoint = UDPClientEndpoint(reactor, "localhost", port, bindAddress=("127.0.0.1", 0))
        protocol = await _connect(endpoint)
        assert protocol.transport is not None
        assert protocol.transport.getPeer() == IPv4Address("UDP", "127.0.0.1", port)
        protocol.transport.write(b"by name")
        assert await protocol.whenReceived(1) == [b"by name"]
        await _close(protocol)

        anyFamily = await _connect(UDPClientEndpoint(reactor, "localhost", port))
        assert anyFamily.transport is not None
        peer = anyFamily.transport.getPeer()
        assert isinstance(peer, IPv4Address | IPv6Address)
        assert ipaddress.ip_address(peer.host).is_loopback and peer.port == port
        await _close(anyFamily)
    finally:
        await _stop(listening)


@pytest_twisted.ensureDeferred
async def test_dns_failure(quiet_reactor: list[Any]) -> None:
    """A name that does not resolve fails the Deferred with DNSLookupError naming it."""
    built: list[IAddress] = []
    factory = Factory.forProtocol(Recorder)
    factory.buildProtocol = built.append  # type: ignore[assignment,method-assign]
    with pytest.raises(error.DNSLookupError) as caught:
        await UDPClientEndpoint(_reactor(), "no-such-device.invalid", 5000).connect(factory)
    assert "'no-such-device.invalid'" in str(caught.value)
    assert built == []


@pytest.mark.parametrize("fixedLocalPort", [False, True], ids=["ephemeral", "bound"])
@pytest_twisted.ensureDeferred
async def test_closed_remote_port_is_survived(
    fixedLocalPort: bool, quiet_reactor: list[Any], link_events: list[dict[str, Any]]
) -> None:
    """
    Writing to a closed port neither raises nor ends the link (epoll makes Twisted close the
    socket on the ICMP error: the link re-opens it); once a listener appears on that port,
    data flows both ways again.
    """
    reactor = _reactor()
    remote = freePort(udp=True)
    bindAddress = ("127.0.0.1", freePort(udp=True) if fixedLocalPort else 0)
    protocol = await _connect(UDPClientEndpoint(reactor, "127.0.0.1", remote, bindAddress))
    transport: Any = protocol.transport
    localPort = transport.getHost().port

    unreachable: Deferred[None] = Deferred()

    def watch(event: dict[str, Any]) -> None:
        if "is unreachable" in event.get("log_format", "") and not unreachable.called:
            unreachable.callback(None)

    globalLogPublisher.addObserver(watch)
    try:
        transport.write(b"anyone there?")
        await unreachable.addTimeout(TIMEOUT, reactor)
        # Resumed synchronously inside the reactor's notification: on epoll the socket has
        # just been closed and the new one is not open yet.
        socketClosed = link_events[-1]["why"] == "the reactor closed the socket"
        transport.write(b"while down")
    finally:
        globalLogPublisher.removeObserver(watch)
    if isinstance(reactor, EPollReactor):
        assert socketClosed, "epoll should have closed the socket on the ICMP error"
    if socketClosed:
        assert any("dropped" in e["log_format"] for e in link_events)

    echo, listening = await _listen("127.0.0.1", remote)
    pinger = LoopingCall(transport.write, b"ping")
    pinging = pinger.start(0.02)
    try:
        await echo.whenReceived()
        await protocol.whenReceived(1)
    finally:
        pinger.stop()
        await pinging
        await _stop(listening)
    assert set(protocol.datagrams) == {b"ping"}
    assert set(echo.datagrams) == {b"ping"}
    assert protocol.reasons == []
    if fixedLocalPort:
        assert transport.getHost().port == localPort == bindAddress[1]
    formats = [e["log_format"] for e in link_events]
    assert any("reachable again" in f for f in formats)
    if socketClosed:
        assert any("re-opened" in f for f in formats)
    reason = await _close(protocol)
    assert reason.check(error.ConnectionDone)


@pytest_twisted.ensureDeferred
async def test_connection_refused_keeps_link(
    quiet_reactor: list[Any], link_events: list[dict[str, Any]]
) -> None:
    """A reactor calling connectionRefused (as select and asyncio do) leaves the link up."""
    echo, listening = await _listen("127.0.0.1")
    try:
        endpoint = UDPClientEndpoint(_reactor(), "127.0.0.1", listening.getHost().port)
        protocol = await _connect(endpoint)
        transport: Any = protocol.transport
        transport._receiver.connectionRefused()  # what the reactor would call
        assert "is unreachable" in link_events[-1]["log_format"]
        transport.write(b"still here")
        assert await protocol.whenReceived(1) == [b"still here"]
        assert protocol.reasons == []
        await _close(protocol)
    finally:
        await _stop(listening)


@pytest_twisted.ensureDeferred
async def test_exception_in_data_received_ends_link(quiet_reactor: list[Any]) -> None:
    """As on TCP, an exception from dataReceived is logged and becomes the loss reason."""
    echo, listening = await _listen("127.0.0.1")
    try:
        endpoint = UDPClientEndpoint(_reactor(), "127.0.0.1", listening.getHost().port)
        protocol = await _connect(endpoint, Explosive)
        assert protocol.transport is not None
        protocol.transport.write(b"boom")
        reason = await protocol.whenLost()
        await _turns()
        assert reason.check(ZeroDivisionError)
        assert protocol.reasons == [reason]
        assert [f.type for f in quiet_reactor] == [ZeroDivisionError]
        quiet_reactor.clear()
    finally:
        await _stop(listening)


@pytest.mark.parametrize(
    ("args", "kwargs", "exception", "message"),
    [
        (("", 5000), {}, ValueError, "host must not be empty"),
        ((b"10.0.0.1", 5000), {}, TypeError, "host must be a str"),
        (("10.0.0.1", 0), {}, ValueError, "port must be between 1 and 65535, not 0"),
        (("10.0.0.1", 70000), {}, ValueError, "port must be between 0 and 65535"),
        (("10.0.0.1", "5000"), {}, TypeError, "port must be an int"),
        (("10.0.0.1", 5000), {"bindAddress": "10.0.0.2"}, TypeError, "bindAddress must be a"),
        (("10.0.0.1", 5000), {"bindAddress": ("eth0", 0)}, ValueError, "must be an IP address"),
        (("10.0.0.1", 5000), {"bindAddress": ("::1", 0)}, ValueError, "different address fam"),
        (("::1", 5000), {"bindAddress": ("127.0.0.1", 0)}, ValueError, "different address fam"),
        (("10.0.0.1", 5000), {"maxDatagram": 0}, ValueError, "maxDatagram must be between"),
    ],
)
def test_bad_arguments_are_rejected_eagerly(
    args: tuple[Any, ...], kwargs: dict[str, Any], exception: type[Exception], message: str
) -> None:
    with pytest.raises(exception, match=message):
        UDPClientEndpoint(_reactor(), *args, **kwargs)


def test_parser_keywords() -> None:
    endpoint = clientFromString(_reactor(), "udp:host=192.0.2.1:port=5000")
    assert isinstance(endpoint, UDPClientEndpoint)
    assert IStreamClientEndpoint.providedBy(endpoint)
    assert (endpoint.host, endpoint.port) == ("192.0.2.1", 5000)
    assert (endpoint.bindAddress, endpoint.maxDatagram) == (None, 65535)


def test_parser_positional_and_options() -> None:
    endpoint = clientFromString(
        _reactor(), "udp:projector.example:1024:bindAddress=0.0.0.0:bindPort=4000:maxDatagram=1500"
    )
    assert isinstance(endpoint, UDPClientEndpoint)
    assert (endpoint.host, endpoint.port) == ("projector.example", 1024)
    assert (endpoint.bindAddress, endpoint.maxDatagram) == (("0.0.0.0", 4000), 1500)


def test_parser_escaped_ipv6() -> None:
    endpoint = clientFromString(_reactor(), f"udp:{quoteStringArgument('2001:db8::7')}:5000")
    assert isinstance(endpoint, UDPClientEndpoint)
    assert (endpoint.host, endpoint.port) == ("2001:db8::7", 5000)


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("udp:", "no host given"),
        ("udp:host=192.0.2.1", "no port given"),
        ("udp:192.0.2.1:http", "port must be an integer, not 'http'"),
        ("udp:192.0.2.1:70000", "port must be between 0 and 65535"),
        ("udp:192.0.2.1:5000:ttl=3", "unknown option 'ttl'"),
        ("udp:192.0.2.1:5000:host=192.0.2.2", "host given twice"),
        ("udp:2001:db8::7:5000", "escape the colons"),
        ("udp:192.0.2.1:5000:bindAddress=eth0", "must be an IP address"),
        ("udp:192.0.2.1:5000:maxDatagram=big", "maxDatagram must be an integer"),
    ],
)
def test_parser_rejects_bad_strings(description: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        clientFromString(_reactor(), description)
    assert str(caught.value).startswith("udp endpoint: ")


def test_prefix_is_ours_alone() -> None:
    assert "UDP" not in _clientParsers
    parsers = [
        p
        for p in getPlugins(IStreamClientEndpointStringParserWithReactor)
        if p.prefix.lower() == "udp"
    ]
    assert [type(p).__module__ for p in parsers] == ["twisted.plugins.twisted_ch_serial_udp"]


@implementer(IUDPTransport)
class FakeUDPPort:
    """Just enough of a connected udp.Port for the link's own bookkeeping."""

    def __init__(self, clock: Clock, port: int, protocol: DatagramProtocol) -> None:
        self._clock = clock
        self._port = port
        self.protocol = protocol
        self.peer: tuple[str, int] | None = None
        self.sent: list[bytes] = []
        self.open = True
        protocol.makeConnection(self)  # type: ignore[arg-type]

    def connect(self, host: str, port: int) -> None:
        self.peer = (host, port)

    def write(self, packet: bytes, addr: Any = None) -> None:
        assert self.open
        self.sent.append(packet)

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "0.0.0.0", self._port)

    def stopListening(self) -> Deferred[None]:
        return deferLater(self._clock, 0, self.closedByReactor)

    def closedByReactor(self) -> None:
        """What the reactor does on an ICMP error under epoll: close and stop the protocol."""
        self.open = False
        self.protocol.doStop()


@implementer(IReactorUDP)
class FakeUDPReactor(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakeUDPPort] = []
        self.bindFailures = 0

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUDPPort:
        if self.bindFailures:
            self.bindFailures -= 1
            raise error.CannotListenError(interface, port, OSError(98, "Address already in use"))
        fake = FakeUDPPort(self, port or 40000 + len(self.ports), protocol)
        self.ports.append(fake)
        return fake


def test_reopen_is_retried_until_the_socket_binds(link_events: list[dict[str, Any]]) -> None:
    """
    After the reactor closes the socket, the link re-opens it on the next iteration, retries
    every reopenRetryDelay while binding fails, drops writes meanwhile, ignores the old
    socket, and leaves no DelayedCall once closed.
    """
    reactor = FakeUDPReactor()
    endpoint = UDPClientEndpoint(reactor, "192.0.2.7", 5000, bindAddress=("0.0.0.0", 4000))
    connected: list[Any] = []
    endpoint.connect(Factory.forProtocol(Recorder)).addBoth(connected.append)
    [protocol] = connected
    assert isinstance(protocol, Recorder)
    transport: Any = protocol.transport
    [first] = reactor.ports
    assert first.peer == ("192.0.2.7", 5000)
    transport.write(b"one")
    assert first.sent == [b"one"]

    reactor.bindFailures = 2
    first.closedByReactor()
    transport.write(b"dropped")
    assert len(reactor.ports) == 1
    reactor.advance(0)
    assert len(reactor.ports) == 1
    assert [c.getTime() for c in reactor.getDelayedCalls()] == [1.0]
    reactor.advance(1.0)
    assert len(reactor.ports) == 1
    reactor.advance(1.0)
    [_, second] = reactor.ports
    assert second.peer == ("192.0.2.7", 5000)
    assert transport.getHost() == IPv4Address("UDP", "0.0.0.0", 4000)
    assert reactor.getDelayedCalls() == []
    assert sum("failed" in e["log_format"] for e in link_events) == 2

    transport.write(b"two")
    assert (first.sent, second.sent) == ([b"one"], [b"two"])
    first.protocol.datagramReceived(b"stale", ("192.0.2.7", 5000))
    second.protocol.datagramReceived(b"fresh", ("192.0.2.7", 5000))
    assert protocol.datagrams == [b"fresh"]
    assert protocol.reasons == []

    transport.loseConnection()
    reactor.advance(0)
    assert not second.open
    assert len(protocol.reasons) == 1 and protocol.reasons[0].check(error.ConnectionDone)
    assert reactor.getDelayedCalls() == []


def test_close_while_reopening_cancels_the_retry() -> None:
    """Closing the link while the socket is down cancels the pending re-open."""
    reactor = FakeUDPReactor()
    connected: list[Any] = []
    UDPClientEndpoint(reactor, "192.0.2.7", 5000).connect(Factory.forProtocol(Recorder)).addBoth(
        connected.append
    )
    [protocol] = connected
    reactor.bindFailures = 1
    reactor.ports[0].closedByReactor()
    reactor.advance(0)
    assert len(reactor.getDelayedCalls()) == 1
    protocol.transport.abortConnection()
    assert protocol.reasons == []
    reactor.advance(0)
    assert len(protocol.reasons) == 1 and protocol.reasons[0].check(error.ConnectionAborted)
    assert reactor.getDelayedCalls() == []
    assert len(reactor.ports) == 1
