# -*- test-case-name: tests.test_layout,tests.test_tcp_handler,tests.test_parity -*-
"""
Deterministic fakes for Clock-driven tests: nothing moves unless the test moves it (advancing the
clock, calling a method).  No socket, no reactor.

L{FakeEndpoint} connects protocols to L{FakeTransport}s at once (or refuses, or hangs);
L{SISPump} plays an L{SISDevice} behind one, one round of bytes per L{SISPump.pump}.
The simulators on real loopback sockets are in L{twisted_ch.testing._kit}, L{_sis}, L{_probes},
L{_ssh} and L{_flapping}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import (
    IAddress,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted_ch.testing._sis import SISDevice, SISSession

__all__ = ["FakeEndpoint", "FakeTransport", "SISPump"]


class FakeTransport(StringTransport):
    """
    A StringTransport whose close reaches the protocol on the next clock turn, like a reactor.

    What the protocol writes is kept (C{value()}, C{clear()}: StringTransport's).

    @ivar clock: the clock its close is delivered on.
    @ivar protocol: the protocol it is connected to (set by L{FakeEndpoint.connect}).
    @ivar closed: True once it has been closed by either end (the protocol's connectionLost
        follows on the next clock turn).
    @ivar aborted: True once C{abortConnection} was called.
    @ivar peerStopsReading: set to make C{loseConnection} hang (only an abort closes it), as
        with a peer that stopped reading.
    @ivar disconnecting: True once a close was asked for (StringTransport's).
    """

    def __init__(self, clock: IReactorTime, peer: IAddress | None = None) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            peerAddress=peer or IPv4Address("TCP", "192.0.2.1", 23)
        )
        self.clock = clock
        self.protocol: Protocol | None = None
        self.closed = False
        self.aborted = False
        self.peerStopsReading = False

    def _lose(self, reason: Failure) -> None:
        if self.closed:
            return
        self.closed = True
        self.disconnecting = True
        protocol = self.protocol
        if protocol is not None:
            self.clock.callLater(0, protocol.connectionLost, reason)

    def loseConnection(self) -> None:
        if self.peerStopsReading:  # buffered writes never drain: only an abort closes it
            self.disconnecting = True
            return
        self._lose(Failure(error.ConnectionDone()))

    def abortConnection(self) -> None:
        self.aborted = True
        self._lose(Failure(error.ConnectionAborted()))

    def deviceCloses(self) -> None:
        """The device closed its end."""
        self._lose(Failure(error.ConnectionDone()))

    def deviceResets(self) -> None:
        """The link broke (reset, cable pulled)."""
        self._lose(Failure(error.ConnectionLost()))


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """
    A client endpoint for Clock-driven tests.

    Each C{connect} is recorded in L{attempts}; by default it succeeds at once with a
    L{FakeTransport}.  Set C{refuse = True} to fail attempts with ConnectionRefusedError, or
    C{hang = True} to leave them pending (the caller's timeout or cancel ends them).

    @ivar clock: the clock its transports deliver closes on.
    @ivar refuse: fail each new attempt at once with ConnectionRefusedError.
    @ivar hang: leave each new attempt pending (C{refuse} wins over it).
    @ivar attempts: the Deferred of every C{connect}, in order.
    @ivar protocol: the protocol of the last successful connect (None before one).
    @ivar transport: the L{FakeTransport} of the last successful connect (None before one).
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.refuse = False
        self.hang = False
        self.attempts: list[Deferred[Any]] = []
        self.protocol: Protocol | None = None
        self.transport: FakeTransport | None = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        if self.refuse:
            d: Deferred[Any] = fail(error.ConnectionRefusedError("refused by FakeEndpoint"))
            self.attempts.append(d)
            return d
        if self.hang:
            d = Deferred(lambda d: None)
            self.attempts.append(d)
            return d
        transport = FakeTransport(self.clock)
        protocol = protocolFactory.buildProtocol(transport.getPeer())  # type: ignore[no-untyped-call]
        assert isinstance(protocol, Protocol)
        transport.protocol = protocol
        self.protocol, self.transport = protocol, transport
        protocol.makeConnection(transport)
        d = Deferred()
        self.attempts.append(d)
        d.callback(protocol)
        return d

    def written(self) -> bytes:
        """Bytes written on the current transport, clearing them."""
        assert self.transport is not None
        data: bytes = self.transport.value()  # type: ignore[no-untyped-call]
        self.transport.clear()  # type: ignore[no-untyped-call]
        return data

    def respond(self, data: bytes) -> None:
        """Deliver bytes from the device."""
        assert self.protocol is not None
        self.protocol.dataReceived(data)


class _FakeEndpointLike(TypingProtocol):
    transport: Any

    def written(self) -> bytes: ...

    def respond(self, data: bytes) -> None: ...


class SISPump:
    """
    Plays an L{SISDevice} behind a L{twisted_ch.testing.FakeEndpoint}, for Clock-driven tests.

    Nothing moves by itself: L{pump} delivers what the client wrote to the device and the
    device's answer back (a new connection first gets the greeting, unless C{banner=False}, as
    on a serial port).

    @ivar endpoint: the FakeEndpoint (or one like it) the client connects through.
    @ivar device: the L{SISDevice} answering; a new transport gets a new session of it.
    @ivar banner: whether a new connection first gets the device's greeting.
    @ivar verbose: the verbose mode of each new session.
    @ivar silent: while True, what the client writes is read and never answered.
    @ivar received: everything the client wrote, answered or not, one entry per L{pump}.
    @ivar session: the current connection's L{SISSession} (None before the first pump).
    """

    def __init__(
        self,
        endpoint: _FakeEndpointLike,
        device: SISDevice,
        *,
        banner: bool = True,
        verbose: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.device = device
        self.banner = banner
        self.verbose = verbose
        self.silent = False
        self.received: list[bytes] = []
        self.session: SISSession | None = None
        self._transport: object = None

    def pump(self) -> bytes:
        """Move one round of bytes; returns what the device answered."""
        transport = self.endpoint.transport
        if transport is None or getattr(transport, "closed", False):
            return b""
        answer = b""
        if transport is not self._transport or self.session is None:
            self._transport = transport
            self.session = self.device.session(self.verbose)
            if self.banner and not self.silent:
                answer += self.session.greeting()
        data = self.endpoint.written()
        if data:
            self.received.append(data)
        if data and not self.silent:
            answer += self.session.feed(data)
        if answer:
            self.endpoint.respond(answer)
        return answer
