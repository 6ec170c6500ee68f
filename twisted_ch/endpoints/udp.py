"""
UDP client endpoint: a connected datagram socket presented to a stream protocol.

The protocol sees a transport whose C{write} sends one datagram and whose C{dataReceived} gets
one datagram at a time.  The link is connectionless: an unreachable remote port (ICMP port
unreachable) neither ends it nor raises.  On Linux's epoll/poll/select reactors such an ICMP
error makes Twisted close the socket; the transport then opens a new one to the same address
at once, dropping datagrams written meanwhile, as UDP may.  The protocol gets exactly one
C{connectionLost}, after C{loseConnection} or C{abortConnection} (or an exception in its own
C{dataReceived}).

String form (through the C{twisted_ch_serial_udp} plugin)::

    udp:host=192.0.2.1:port=5000[:bindAddress=HOST][:bindPort=N][:maxDatagram=N]
    udp:192.0.2.1:5000

Colons inside an IPv6 address must be escaped (L{twisted.internet.endpoints.quoteStringArgument}).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from twisted.internet import error
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHostResolution,
    IProtocol,
    IProtocolFactory,
    IReactorPluggableNameResolver,
    IReactorTime,
    IReactorUDP,
    IResolutionReceiver,
    IStreamClientEndpoint,
    ITransport,
    IUDPTransport,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.endpoints._common import (
    checkPortNumber,
    parseInt,
    requireProviders,
    stringParts,
)

__all__ = ["UDPClientEndpoint", "parseUDPEndpoint"]

_UDPAddress = IPv4Address | IPv6Address


def _udpAddress(host: str, port: int) -> _UDPAddress:
    if isIPv6Address(host):
        return IPv6Address("UDP", host, port)
    return IPv4Address("UDP", host, port)


def _isLiteral(host: str) -> bool:
    return isIPAddress(host) or isIPv6Address(host)


class _Receiver(DatagramProtocol):
    """
    The datagram protocol of one socket of a L{_DatagramLink}; a new one per socket.
    """

    noisy = False

    def __init__(self, link: _DatagramLink) -> None:
        self._link = link

    def datagramReceived(self, datagram: bytes, addr: object) -> None:
        self._link._datagramReceived(self, datagram)

    def connectionRefused(self) -> None:
        self._link._unreachable(self, "connection refused")

    def stopProtocol(self) -> None:
        self._link._socketStopped(self)


@implementer(ITransport)
class _DatagramLink:
    """
    The stream-like transport over a connected UDP socket, re-opened when the reactor closes
    it after an ICMP error.

    @ivar connected: True from C{makeConnection} until C{connectionLost}.
    @ivar disconnecting: True once C{loseConnection} or C{abortConnection} was called.
    """

    log = Logger()
    reopenRetryDelay: float = 1.0
    """Seconds between attempts when re-opening the socket fails."""

    def __init__(
        self,
        reactor: IReactorUDP,
        clock: IReactorTime,
        peer: _UDPAddress,
        interface: str,
        bindPort: int,
        maxDatagram: int,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._peer = peer
        self._interface = interface
        self._bindPort = bindPort
        self._maxDatagram = maxDatagram
        self._protocol: IProtocol | None = None
        self._receiver: _Receiver | None = None
        self._socket: IUDPTransport | None = None
        self._host: _UDPAddress = _udpAddress(interface or "0.0.0.0", bindPort)
        self._reopenCall: IDelayedCall | None = None
        self._reachable = True
        self._lost = False
        self.connected = False
        self.disconnecting = False

    def __repr__(self) -> str:
        return f"<UDP link {self._host.host}:{self._host.port} -> {self._describePeer()}>"

    def _describePeer(self) -> str:
        return f"{self._peer.host} port {self._peer.port}"

    def _openSocket(self) -> None:
        """
        Bind a new socket and connect it to the peer.

        @raise error.ConnectBindError: binding failed.
        @raise error.ConnectError: connecting the socket failed.
        """
        receiver = _Receiver(self)
        try:
            listening = self._reactor.listenUDP(
                self._bindPort, receiver, self._interface, self._maxDatagram
            )
        except error.CannotListenError as e:
            raise error.ConnectBindError(
                e.socketError, f"{self._interface or 'any'} port {self._bindPort}"
            ) from e
        socket = IUDPTransport(listening)
        try:
            socket.connect(self._peer.host, self._peer.port)
        except OSError as e:
            socket.stopListening()
            raise error.ConnectError(e, self._describePeer()) from e
        self._receiver = receiver
        self._socket = socket
        self._host = socket.getHost()

    def _attach(self, protocol: IProtocol) -> None:
        """
        Connect C{protocol} to this link.
        """
        self._protocol = protocol
        self.connected = True
        protocol.makeConnection(self)

    def _abandon(self) -> None:
        """
        Close the socket of a link no protocol was attached to.
        """
        socket, self._socket, self._receiver = self._socket, None, None
        if socket is not None:
            socket.stopListening()

    def write(self, data: bytes) -> None:
        """
        Send C{data} as one datagram; drop it while the socket is being re-opened, and log
        instead of raising if sending fails.  An empty write sends nothing, as on TCP.
        """
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if not data or not self.connected or self.disconnecting:
            return
        socket = self._socket
        if socket is None:
            self.log.debug(
                "dropped {size}-byte datagram to {peer}: socket being re-opened",
                size=len(data),
                peer=self._describePeer(),
            )
            return
        try:
            socket.write(data, None)
        except error.MessageLengthError:
            self.log.warn(
                "dropped {size}-byte datagram to {peer}: too long",
                size=len(data),
                peer=self._describePeer(),
            )
        except OSError as e:
            self.log.warn(
                "dropped {size}-byte datagram to {peer}: {error}",
                size=len(data),
                peer=self._describePeer(),
                error=e,
            )

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Send the concatenation of C{data} as one datagram.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the socket; C{connectionLost} follows with L{error.ConnectionDone}.
        """
        self._close(Failure(error.ConnectionDone()))

    def abortConnection(self) -> None:
        """
        Close the socket; C{connectionLost} follows with L{error.ConnectionAborted}.
        """
        self._close(Failure(error.ConnectionAborted()))

    def getPeer(self) -> _UDPAddress:
        return self._peer

    def getHost(self) -> _UDPAddress:
        """
        The local address of the current socket (of the last one while it is re-opened).
        """
        return self._host

    def _close(self, reason: Failure) -> None:
        if not self.connected or self.disconnecting:
            return
        self.disconnecting = True
        if self._reopenCall is not None and self._reopenCall.active():
            self._reopenCall.cancel()
        self._reopenCall = None
        socket, self._socket, self._receiver = self._socket, None, None
        closed: Deferred[None]
        if socket is None:
            closed = deferLater(self._clock, 0, lambda: None)
        else:
            stopping = socket.stopListening()
            closed = stopping if stopping is not None else succeed(None)
        closed.addErrback(lambda f: self.log.failure("closing UDP socket", f))
        closed.addCallback(lambda _: self._connectionLost(reason))

    def _connectionLost(self, reason: Failure) -> None:
        if self._lost:
            return
        self._lost = True
        self.connected = False
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return
        try:
            protocol.connectionLost(reason)
        except Exception:
            self.log.failure("connectionLost of {protocol!r} failed", protocol=protocol)

    def _datagramReceived(self, receiver: _Receiver, datagram: bytes) -> None:
        if receiver is not self._receiver or self.disconnecting or self._protocol is None:
            return
        if not self._reachable:
            self._reachable = True
            self.log.info("{peer} is reachable again", peer=self._describePeer())
        try:
            self._protocol.dataReceived(datagram)
        except Exception:
            failed = Failure()
            self.log.failure(
                "dataReceived failed; closing the link to {peer}", failed, peer=self._describePeer()
            )
            self._close(failed)

    def _unreachable(self, receiver: _Receiver, why: str) -> None:
        if receiver is self._receiver:
            self._noteUnreachable(why)

    def _noteUnreachable(self, why: str) -> None:
        if self._reachable:
            self._reachable = False
            self.log.warn("{peer} is unreachable ({why})", peer=self._describePeer(), why=why)
        else:
            self.log.debug(
                "{peer} is still unreachable ({why})", peer=self._describePeer(), why=why
            )

    def _socketStopped(self, receiver: _Receiver) -> None:
        if receiver is not self._receiver:
            return
        self._socket = self._receiver = None
        self._noteUnreachable("the reactor closed the socket")
        self.log.debug("re-opening UDP socket to {peer}", peer=self._describePeer())
        self._scheduleReopen(0)

    def _scheduleReopen(self, delay: float) -> None:
        self._reopenCall = self._clock.callLater(delay, self._reopen)

    def _reopen(self) -> None:
        self._reopenCall = None
        if self.disconnecting or not getattr(self._reactor, "running", True):
            return
        try:
            self._openSocket()
        except Exception as e:
            self.log.warn(
                "re-opening UDP socket to {peer} failed: {error}; retrying in {delay} s",
                peer=self._describePeer(),
                error=e,
                delay=self.reopenRetryDelay,
            )
            self._scheduleReopen(self.reopenRetryDelay)
        else:
            self.log.debug(
                "UDP socket {host} -> {peer} re-opened",
                host=f"{self._host.host} port {self._host.port}",
                peer=self._describePeer(),
            )


@implementer(IResolutionReceiver)
class _FirstAddress:
    """
    Collect a name resolution; fire C{deferred} with the first UDP address found.
    """

    def __init__(self, name: str, family: str) -> None:
        self.deferred: Deferred[_UDPAddress] = Deferred()
        self._name = name
        self._family = family
        self._addresses: list[_UDPAddress] = []

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        if isinstance(address, IPv4Address | IPv6Address):
            self._addresses.append(address)

    def resolutionComplete(self) -> None:
        if self._addresses:
            found = self._addresses[0]
            self.deferred.callback(_udpAddress(found.host, found.port))
        else:
            self.deferred.errback(
                error.DNSLookupError(f"no {self._family} address found for {self._name!r}")
            )


@implementer(IStreamClientEndpoint)
class UDPClientEndpoint:
    """
    A client endpoint for a UDP peer, giving a stream protocol a datagram transport.

    C{connect} resolves C{host} (IP literals are used as they are; names through the
    reactor's C{nameResolver}, without blocking), opens a UDP socket connected to the first
    address found, and fires with the protocol.

    @ivar host: the peer's name or IP address.
    @ivar port: the peer's UDP port.
    @ivar bindAddress: C{(interface, port)} to bind the local socket to, or L{None} for any
        interface of the peer's address family and an ephemeral port.  An interface of C{""}
        means any IPv4 address, C{"::"} any IPv6 address.
    @ivar maxDatagram: the largest datagram received whole; longer ones are truncated.
    """

    def __init__(
        self,
        reactor: IReactorUDP,
        host: str,
        port: int,
        bindAddress: tuple[str, int] | None = None,
        maxDatagram: int = 65535,
    ) -> None:
        """
        @raise TypeError: an argument has the wrong type, or the reactor lacks
            L{IReactorUDP}, L{IReactorTime} or (for a host name) L{IReactorPluggableNameResolver}.
        @raise ValueError: an argument is out of range, or the families of C{host} and
            C{bindAddress} differ.
        """
        requireProviders(reactor, IReactorUDP, IReactorTime)
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, not {type(host).__name__}")
        if not host:
            raise ValueError("host must not be empty")
        if checkPortNumber("port", port) == 0:
            raise ValueError("port must be between 1 and 65535, not 0")
        if bindAddress is not None:
            if not (isinstance(bindAddress, tuple) and len(bindAddress) == 2):
                raise TypeError(f"bindAddress must be a (host, port) tuple, not {bindAddress!r}")
            bindHost, bindPort = bindAddress
            if not isinstance(bindHost, str):
                raise TypeError(f"bindAddress host must be a str, not {type(bindHost).__name__}")
            if bindHost and not _isLiteral(bindHost):
                raise ValueError(f"bindAddress host must be an IP address, not {bindHost!r}")
            checkPortNumber("bindAddress port", bindPort)
            if _isLiteral(host) and isIPv6Address(host) != isIPv6Address(bindHost):
                raise ValueError(
                    f"host {host!r} and bindAddress host {bindHost!r} are of different"
                    " address families"
                )
        if not isinstance(maxDatagram, int) or isinstance(maxDatagram, bool):
            raise TypeError(f"maxDatagram must be an int, not {type(maxDatagram).__name__}")
        if not 1 <= maxDatagram <= 65535:
            raise ValueError(f"maxDatagram must be between 1 and 65535, not {maxDatagram}")
        if not _isLiteral(host):
            requireProviders(reactor, IReactorPluggableNameResolver)
        self._reactor = reactor
        self._clock = IReactorTime(reactor)
        self.host = host
        self.port = port
        self.bindAddress = bindAddress
        self.maxDatagram = maxDatagram

    def __repr__(self) -> str:
        return f"<UDPClientEndpoint {self.host} port {self.port}>"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Resolve, open the socket and connect a protocol built by C{protocolFactory}.

        @return: a Deferred firing with the protocol, or failing with
            L{error.DNSLookupError} (no address for the name), L{error.ConnectBindError}
            (binding failed), L{error.ConnectError} (connecting the socket failed),
            L{error.NoProtocol} or whatever C{buildProtocol}/C{connectionMade} raised.
        """
        try:
            resolved = self._resolve()
        except Exception:
            return fail()
        return resolved.addCallback(self._connectTo, protocolFactory)

    def _resolve(self) -> Deferred[_UDPAddress]:
        if _isLiteral(self.host):
            return succeed(_udpAddress(self.host, self.port))
        addressTypes: list[type[IAddress]]
        if self.bindAddress is None:
            family, addressTypes = "IPv4 or IPv6", [IPv4Address, IPv6Address]
        elif isIPv6Address(self.bindAddress[0]):
            family, addressTypes = "IPv6", [IPv6Address]
        else:
            family, addressTypes = "IPv4", [IPv4Address]
        receiver = _FirstAddress(self.host, family)
        resolver = IReactorPluggableNameResolver(self._reactor).nameResolver
        resolver.resolveHostName(
            receiver, self.host, self.port, addressTypes=addressTypes, transportSemantics="UDP"
        )
        return receiver.deferred

    def _connectTo(self, peer: _UDPAddress, protocolFactory: IProtocolFactory) -> IProtocol:
        if self.bindAddress is not None:
            interface, bindPort = self.bindAddress
        else:
            interface, bindPort = ("::" if isinstance(peer, IPv6Address) else ""), 0
        link = _DatagramLink(
            self._reactor, self._clock, peer, interface, bindPort, self.maxDatagram
        )
        link._openSocket()
        try:
            protocol = protocolFactory.buildProtocol(peer)
            if protocol is None:
                raise error.NoProtocol()
        except BaseException:
            link._abandon()
            raise
        try:
            link._attach(protocol)
        except BaseException:
            link._close(Failure())
            raise
        return protocol


_OPTIONS: Final = frozenset({"host", "port", "bindAddress", "bindPort", "maxDatagram"})


def parseUDPEndpoint(reactor: object, *parts: object, **options: object) -> UDPClientEndpoint:
    """
    Build a L{UDPClientEndpoint} from the parts of a C{udp:} endpoint string.

    C{host} and C{port} are given positionally (C{udp:HOST:PORT}) or by keyword;
    C{bindAddress} (an IP address), C{bindPort} and C{maxDatagram} are optional keywords.

    @raise ValueError: a part is missing, unknown, repeated or not valid.
    @raise TypeError: the reactor lacks L{IReactorUDP} or L{IReactorTime}.
    """
    requireProviders(reactor, IReactorUDP, IReactorTime)
    args, kwargs = stringParts("udp", parts, options, _OPTIONS)
    if len(args) > 2:
        raise ValueError(
            f"udp endpoint: expected at most HOST:PORT, got {list(args)!r}"
            " (escape the colons of an IPv6 address with quoteStringArgument)"
        )
    values = dict(zip(("host", "port"), args, strict=False))
    for name in values:
        if name in kwargs:
            raise ValueError(f"udp endpoint: {name} given twice")
    values.update({k: v for k, v in kwargs.items() if k in ("host", "port")})
    host = values.get("host", "")
    if not host:
        raise ValueError("udp endpoint: no host given, e.g. udp:host=192.0.2.1:port=5000")
    if "port" not in values:
        raise ValueError("udp endpoint: no port given, e.g. udp:host=192.0.2.1:port=5000")
    port = parseInt("udp", "port", values["port"])
    bindAddress = None
    if "bindAddress" in kwargs or "bindPort" in kwargs:
        bindAddress = (
            kwargs.get("bindAddress", ""),
            parseInt("udp", "bindPort", kwargs.get("bindPort", "0")),
        )
    maxDatagram = parseInt("udp", "maxDatagram", kwargs.get("maxDatagram", "65535"))
    try:
        return UDPClientEndpoint(IReactorUDP(reactor), host, port, bindAddress, maxDatagram)
    except ValueError as e:
        raise ValueError(f"udp endpoint: {e}") from None
