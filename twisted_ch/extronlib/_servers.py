"""
ControlScript's server interfaces: C{EthernetServerInterfaceEx} (many clients, each a
L{ClientObject}) and the single-client C{EthernetServerInterface}.

An interface owns a L{ClientsFactory} (one L{ServerClientProtocol} per accepted client) and listens
through it; a connection handler adds its policy by wrapping that factory (L{listenThrough}), so
there is one listening code path with or without a handler.

Where the socket binds: C{Interface='Any'} and C{'LAN'} mean every IPv4 interface (0.0.0.0), as on
a control processor: a program that creates a server asks for it to be reachable.  An IP literal
binds that address; C{'AVLAN'} binds only if L{INTERFACE_ADDRESSES} names an address for it (a
deployment edits that mapping, tests map C{'Any'} to loopback); the keyword C{bindAddress=}
overrides all of these for one interface.

Methods may be called from the reactor thread (waiting calls return Deferreds) or from a program
thread (they block and return values), see L{twisted_ch._runtime}.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections import OrderedDict
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import error
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IAddress, IDelayedCall, IListeningPort, IProtocolFactory
from twisted.internet.protocol import DatagramProtocol, Protocol, ServerFactory
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from twisted_ch._events import Event, emit
from twisted_ch._framing import toBytes
from twisted_ch._link import CLOSE_GRACE
from twisted_ch._runtime import Runtime, resolveRuntime
from twisted_ch._summary import Summarizer
from twisted_ch.extronlib._lifetime import adopt
from twisted_ch.protocols.device import LinkDown

__all__ = [
    "INTERFACE_ADDRESSES",
    "ClientObject",
    "ClientsFactory",
    "EthernetServerInterface",
    "EthernetServerInterfaceEx",
    "ServerClientProtocol",
    "ServerObserver",
]

#: The address each ControlScript interface name binds to; edit it to match the host.
INTERFACE_ADDRESSES: dict[str, str] = {"Any": "0.0.0.0", "LAN": "0.0.0.0"}

_INTERFACE_NAMES = ("Any", "LAN", "AVLAN")
_SERVER_PROTOCOLS = ("TCP", "UDP")
#: UDP senders remembered (so one peer keeps one ClientObject); the oldest is forgotten first.
_UDP_PEERS = 256

_PORT_ERRNOS = {errno.EADDRINUSE, errno.EACCES}

ListenResult = str


def checkListenTimeout(timeout: object) -> float:
    """Validate StartListen's C{timeout}: a non-negative number of seconds (0: forever)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout >= 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    return float(timeout)


class ServerObserver(TypingProtocol):
    """Told about a server's clients, on the reactor thread (a connection handler is one)."""

    def clientConnected(self, client: ClientObject) -> None:
        """A client connected."""

    def clientLost(self, client: ClientObject, reason: str) -> None:
        """A connected client is gone (called once per client)."""

    def clientData(self, client: ClientObject, data: bytes) -> None:
        """A client sent bytes."""


class ClientObject:
    """
    A handle to one client of a server interface (created by the server, never by programs).

    Its addresses are read when the client connects, so they stay readable after it is gone.
    """

    def __init__(
        self,
        server: _ServerInterface,
        transport: Any,
        peer: tuple[str, int],
        localPort: int,
        *,
        datagram: bool = False,
    ) -> None:
        self._server = server
        self._transport = transport
        self._peer = peer
        self._localPort = localPort
        self._datagram = datagram
        self.connected = True

    @property
    def IPAddress(self) -> str:
        """The client's IP address."""
        return self._peer[0]

    @property
    def Hostname(self) -> str:
        """The client's name: its IP address (no reverse lookup is made)."""
        return self._peer[0]

    @property
    def ServicePort(self) -> int:
        """The client's port."""
        return self._peer[1]

    @property
    def IPPort(self) -> int:
        """The server's port this client connected to."""
        return self._localPort

    def Send(self, data: bytes | str) -> None:
        """Send bytes to the client (str is encoded as ISO-8859-1); IOError once it is gone."""
        payload = toBytes(data)
        self._server._rt.twoFaced(self._send, payload)

    def _send(self, payload: bytes) -> None:
        if not self.connected:
            raise LinkDown(f"client {self} is not connected")
        if self._datagram:
            self._transport.write(payload, self._peer)
        else:
            self._transport.write(payload)

    def Disconnect(self) -> None:
        """Close the connection to the client gracefully (after what was sent is written)."""
        self._server._rt.twoFaced(self._disconnect)

    def _disconnect(self) -> None:
        if self._datagram:
            self._server._forgetPeer(self)
        elif self.connected:
            self._transport.loseConnection()

    def __repr__(self) -> str:
        return f"<ClientObject {self._peer[0]}:{self._peer[1]}>"


class ServerClientProtocol(Protocol):
    """Moves one client's bytes between its transport and its server; no policy of its own."""

    def __init__(self, server: _ServerInterface) -> None:
        self.server = server
        self.client: ClientObject | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        peer = transport.getPeer()
        host = transport.getHost()
        self.client = ClientObject(
            self.server,
            transport,
            (str(getattr(peer, "host", "")), int(getattr(peer, "port", 0))),
            int(getattr(host, "port", 0)),
        )
        self.server._clientMade(self.client)

    def dataReceived(self, data: bytes) -> None:
        if self.client is not None:
            self.server._clientData(self.client, data)

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        client, self.client = self.client, None
        if client is not None:
            client.connected = False
            self.server._clientLost(client, reason)


class ClientsFactory(ServerFactory):
    """
    The server interface's own factory: one L{ServerClientProtocol} per client, and none (the
    socket is closed at once) when the server refuses the client.
    """

    noisy = False

    def __init__(self, server: _ServerInterface) -> None:
        self.server = server
        self.refused = 0
        self._refusals = Summarizer(server._rt.reactor)

    def buildProtocol(self, addr: IAddress) -> ServerClientProtocol | None:  # type: ignore[override]
        why = self.server._refusal(addr)
        if why is not None:
            self.refused += 1
            # summarised: one line, then how many more per minute (a client retrying in a loop
            # would otherwise write a line per attempt)
            self._refusals.emit(
                self.server.log,
                why,
                LogLevel.warn,
                "{server}: refused client {peer}: {why}",
                server=self.server,
                peer=addr,
                why=why,
            )
            return None
        return ServerClientProtocol(self.server)

    def stopFactory(self) -> None:
        """Not listening any more: log the refusals not yet told, and leave no timer."""
        self._refusals.stop()
        super().stopFactory()  # type: ignore[no-untyped-call]


class _DatagramReceiver(DatagramProtocol):
    """UDP: every datagram becomes ReceiveData from the sender's L{ClientObject}."""

    noisy = False

    def __init__(self, server: _ServerInterface) -> None:
        self.server = server

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.server._datagram(self.transport, datagram, (str(addr[0]), int(addr[1])))


def _resolveInterface(Interface: str) -> str | None:
    if Interface in INTERFACE_ADDRESSES:
        return INTERFACE_ADDRESSES[Interface]
    if Interface in _INTERFACE_NAMES:
        return None
    return Interface


class _ServerInterface:
    """What both server interfaces share: the listening port, its window, and the clients."""

    log = Logger()

    Connected = Event["_ServerInterface"]("Called as C{(client, 'Connected')}.")
    Disconnected = Event["_ServerInterface"]("Called as C{(client, 'Disconnected')}.")
    ReceiveData = Event["_ServerInterface"]("Called as C{(client, data)}.")

    def __init__(
        self,
        IPPort: int,
        Protocol: str,
        Interface: str,
        maxClients: int | None,
        *,
        reactor: Any,
        bindAddress: str | None,
    ) -> None:
        if isinstance(IPPort, bool) or not isinstance(IPPort, int):
            raise TypeError(f"IPPort must be an int, not {type(IPPort).__name__}")
        if not 0 <= IPPort <= 65535:
            raise ValueError(f"IPPort must be 0-65535 (0: any free port), got {IPPort}")
        if not isinstance(Protocol, str):
            raise TypeError(f"Protocol must be a str, not {type(Protocol).__name__}")
        if Protocol not in _SERVER_PROTOCOLS:
            raise ValueError(f"Protocol must be 'TCP' or 'UDP', got {Protocol!r}")
        if not isinstance(Interface, str):
            raise TypeError(f"Interface must be a str, not {type(Interface).__name__}")
        for address in (Interface, bindAddress):
            if address is None or address in _INTERFACE_NAMES:
                continue
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(
                    f"Interface must be 'Any', 'LAN', 'AVLAN' or an IP address, got {address!r}"
                ) from None
        self._rt: Runtime = resolveRuntime(reactor)
        self._port = IPPort
        self._protocol = Protocol
        self._interface = Interface
        self._bindAddress = bindAddress
        self._maxClients = maxClients
        self.factory = ClientsFactory(self)
        self._listeningFactory: IProtocolFactory = self.factory
        self.observers: list[ServerObserver] = []
        self._clients: list[ClientObject] = []
        self._udpPeers: OrderedDict[tuple[str, int], ClientObject] = OrderedDict()
        self._listening: Any = None
        self._stopWaiters: list[Deferred[None]] | None = None
        self._window: IDelayedCall | None = None
        self._generation = 0
        self.lastError: str | None = None
        self._tls: Any = None  # the SSLWrap settings (extronlib._tls.TLSSettings)
        #: clients being closed by L{_release}: id -> (the client, its abort, the Deferred)
        self._closing: dict[int, tuple[ClientObject, IDelayedCall, Deferred[None]]] = {}
        adopt(self._rt, self)

    def SSLWrap(
        self,
        certificate: str | None = None,
        cert_reqs: str = "CERT_NONE",
        ssl_version: str = "TLSv2",
        ca_certs: str | None = None,
    ) -> None:
        """
        Serve TLS from the next StartListen: C{certificate} names the server's certificate with
        its key (an alias in the program data directory's C{certificates/}); C{cert_reqs}
        C{'CERT_REQUIRED'} demands a client certificate signed by C{ca_certs},
        C{'CERT_OPTIONAL'} verifies one if sent.  TCP only.
        """
        if self._protocol != "TCP":
            raise ValueError(f"SSLWrap needs a TCP server, not {self._protocol}")
        if certificate is None:
            raise ValueError("a TLS server needs certificate= (its certificate and key)")
        if cert_reqs != "CERT_NONE" and ca_certs is None:
            raise ValueError(f"cert_reqs={cert_reqs!r} needs ca_certs= to verify clients against")
        from twisted_ch.extronlib._tls import TLSSettings

        self._tls = TLSSettings.make(certificate, cert_reqs, ssl_version, ca_certs)

    # configuration

    @property
    def IPPort(self) -> int:
        """The listening port (with 0 given, the port the system picked, once it did)."""
        return self._port

    @property
    def Protocol(self) -> str:
        """'TCP' or 'UDP'."""
        return self._protocol

    @property
    def Interface(self) -> str:
        """The interface name or address given ('Any', 'LAN', 'AVLAN' or an IP literal)."""
        return self._interface

    @property
    def MaxClients(self) -> int | None:
        """The most clients served at once (None: no limit)."""
        return self._maxClients

    @property
    def Clients(self) -> list[ClientObject]:
        """The connected clients (a copy; UDP servers have none)."""
        return list(self._clients)

    @property
    def listening(self) -> bool:
        """Whether the port is listening now."""
        return self._listening is not None

    @property
    def refused(self) -> int:
        """Clients refused so far (MaxClients reached, or a wrong ServicePort)."""
        return self.factory.refused

    def listenThrough(self, factory: IProtocolFactory) -> None:
        """
        Accept TCP clients through C{factory}, which must wrap L{factory} (how a connection handler
        adds its policy).  Only before the interface listens, so that every client gets it.
        """
        if self._listening is not None:
            raise ValueError(f"{self!r} is listening already: wrap it before StartListen")
        if self._listeningFactory is not self.factory:
            raise ValueError(f"{self!r} already accepts clients through {self._listeningFactory!r}")
        self._listeningFactory = factory

    # listening

    def StartListen(self, timeout: float = 0) -> Any:
        """
        Listen for clients, for C{timeout} seconds if given (0: until StopListen); clients that
        connected stay when the time is up.  Returns 'Listening', 'ListeningAlready',
        'PortUnavailable' or 'InterfaceUnavailable: <name>' (a Deferred of it on the reactor).
        """
        seconds = checkListenTimeout(timeout)
        return self._rt.twoFaced(self.startListening, seconds)

    def startListening(self, timeout: float = 0) -> Deferred[ListenResult]:
        """L{StartListen} for the reactor thread; waits for a StopListen in progress first."""
        if self._stopWaiters is None:
            return succeed(self._listenNow(timeout))
        generation = self._generation

        def afterStop(_: None) -> ListenResult:
            if generation != self._generation:
                return "Cancelled"  # StopListen was called again meanwhile
            return self._listenNow(timeout)

        return self._whenStopped().addCallback(afterStop)

    def _listenNow(self, timeout: float) -> ListenResult:
        if self._listening is not None:
            self._setWindow(timeout)
            return "ListeningAlready"
        name = self._interface
        address = self._bindAddress or _resolveInterface(name)
        if address is None:
            self.lastError = f"no address is configured for interface {name}"
            self.log.warn("{server}: {why}", server=self, why=self.lastError)
            return f"InterfaceUnavailable: {name}"
        reactor = self._rt.reactor
        try:
            if self._protocol == "TCP":
                factory = self._listeningFactory
                if self._tls is not None:
                    factory = self._tls.serverFactory(factory)
                port = reactor.listenTCP(self._port, factory, interface=address)
            else:
                port = reactor.listenUDP(self._port, _DatagramReceiver(self), interface=address)
        except error.CannotListenError as e:
            return self._listenFailed(address, e)
        self._listening = port
        self._port = int(getattr(port.getHost(), "port", self._port))
        self.lastError = None
        self.log.info("{server}: listening on {address}", server=self, address=address)
        self._setWindow(timeout)
        return "Listening"

    def _listenFailed(self, address: str, e: error.CannotListenError) -> ListenResult:
        cause = e.socketError
        self.lastError = f"cannot listen on {address} port {self._port}: {cause}"
        self.log.warn("{server}: {why}", server=self, why=self.lastError)
        if isinstance(cause, socket.gaierror):
            return f"InterfaceUnavailable: {self._interface}"
        if isinstance(cause, OSError) and cause.errno not in _PORT_ERRNOS:
            return f"InterfaceUnavailable: {self._interface}"
        return "PortUnavailable"

    def _setWindow(self, timeout: float) -> None:
        self._cancelWindow()
        if timeout > 0:
            self._window = self._rt.reactor.callLater(timeout, self._windowEnded)

    def _cancelWindow(self) -> None:
        if self._window is not None:
            if self._window.active():
                self._window.cancel()
            self._window = None

    def _windowEnded(self) -> None:
        self._window = None
        self.log.info("{server}: listening time is up", server=self)
        self._closePort()

    def StopListen(self) -> Any:
        """Stop listening (clients stay); on the reactor, a Deferred of the port closing."""
        return self._rt.twoFaced(self.stopListening)

    def stopListening(self) -> Deferred[None]:
        """L{StopListen} for the reactor thread."""
        self._generation += 1
        self._cancelWindow()
        if self._listening is None:
            return self._whenStopped()
        return self._closePort()

    def _closePort(self) -> Deferred[None]:
        port: IListeningPort = self._listening
        self._listening = None
        for peer in self._udpPeers.values():
            peer.connected = False
        self._udpPeers.clear()
        waiters: list[Deferred[None]] = []
        self._stopWaiters = waiters
        closed = self._whenStopped()

        def done(result: object) -> None:
            if self._stopWaiters is waiters:
                self._stopWaiters = None
            if isinstance(result, Failure):
                self.log.failure("{server}: closing the port failed", result, server=self)
            for d in waiters:
                d.callback(None)

        maybeDeferred(port.stopListening).addBoth(done)
        return closed

    def _release(self) -> Deferred[Any]:
        """
        The program stopped: no more listening, and every client closed (gracefully, aborted
        after L{CLOSE_GRACE} seconds if it does not go); fires once the port and clients are gone.
        """
        waits = [self.stopListening()]
        for client in list(self._clients):
            if not client.connected or id(client) in self._closing:
                continue
            gone: Deferred[None] = Deferred()
            transport = client._transport
            abort = getattr(transport, "abortConnection", transport.loseConnection)
            later = self._rt.reactor.callLater(CLOSE_GRACE, abort)
            self._closing[id(client)] = (client, later, gone)
            waits.append(gone)
            transport.loseConnection()
        return DeferredList(waits, consumeErrors=True)

    def _whenStopped(self) -> Deferred[None]:
        """A Deferred firing once no port is closing."""
        if self._stopWaiters is None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._stopWaiters.append(d)
        return d

    # clients (reactor thread)

    def _refusal(self, addr: IAddress) -> str | None:
        """Why a new client is refused, or None to accept it."""
        limit = self._maxClients
        if limit is not None and len(self._clients) >= limit:
            return f"MaxClients ({limit}) reached"
        return None

    def _eventSource(self, client: ClientObject) -> object:
        """The first argument of this interface's events."""
        return client

    def _clientMade(self, client: ClientObject) -> None:
        self._clients.append(client)
        self.log.debug("{server}: client {client} connected", server=self, client=client)
        emit(self._rt, self, "Connected", self._eventSource(client), "Connected")
        for o in list(self.observers):
            o.clientConnected(client)

    def _clientData(self, client: ClientObject, data: bytes) -> None:
        emit(self._rt, self, "ReceiveData", self._eventSource(client), data)
        for o in list(self.observers):
            o.clientData(client, data)

    def _clientLost(self, client: ClientObject, reason: Failure) -> None:
        if client in self._clients:
            self._clients.remove(client)
        closing = self._closing.pop(id(client), None)
        if closing is not None:
            _, abort, gone = closing
            if abort.active():
                abort.cancel()
            gone.callback(None)
        why = _describeLoss(reason)
        self.log.debug(
            "{server}: client {client} gone ({why})", server=self, client=client, why=why
        )
        emit(self._rt, self, "Disconnected", self._eventSource(client), "Disconnected")
        for o in list(self.observers):
            o.clientLost(client, why)

    def _datagram(self, transport: Any, data: bytes, peer: tuple[str, int]) -> None:
        client = self._udpPeers.get(peer)
        if client is None:
            client = ClientObject(self, transport, peer, self._port, datagram=True)
            self._udpPeers[peer] = client
            while len(self._udpPeers) > _UDP_PEERS:
                self._udpPeers.popitem(last=False)
        else:
            self._udpPeers.move_to_end(peer)
        self._clientData(client, data)

    def _forgetPeer(self, client: ClientObject) -> None:
        self._udpPeers.pop((client.IPAddress, client.ServicePort), None)

    def __repr__(self) -> str:
        where = self._bindAddress or self._interface
        return f"<{type(self).__name__} {self._protocol} {where}:{self._port}>"


def _describeLoss(reason: Failure) -> str:
    e = reason.value
    if isinstance(e, error.ConnectionAborted):
        return "aborted"
    if isinstance(e, error.ConnectionDone):
        return "closed"
    return str(e) or type(e).__name__


class EthernetServerInterfaceEx(_ServerInterface):
    """
    A TCP or UDP server for many clients; events get the L{ClientObject} concerned.

    C{MaxClients} bounds the clients served at once (None: no limit): beyond it, new clients are
    closed at once.  UDP servers get C{ReceiveData(client, data)} per datagram, C{client.Send}
    answering its sender; they have no Connected/Disconnected events and no L{Clients}.
    Keyword-only extras: C{reactor}, and C{bindAddress} (an IP address to bind instead of the one
    C{Interface} names).
    """

    def __init__(
        self,
        IPPort: int,
        Protocol: str = "TCP",
        Interface: str = "Any",
        MaxClients: int | None = None,
        *,
        reactor: Any = None,
        bindAddress: str | None = None,
    ) -> None:
        if MaxClients is not None:
            if isinstance(MaxClients, bool) or not isinstance(MaxClients, int):
                raise TypeError(f"MaxClients must be an int or None, not {MaxClients!r}")
            if MaxClients < 1:
                raise ValueError(
                    f"MaxClients must be at least 1 (None: no limit), got {MaxClients}"
                )
        super().__init__(
            IPPort, Protocol, Interface, MaxClients, reactor=reactor, bindAddress=bindAddress
        )

    def Disconnect(self, client: ClientObject) -> None:
        """Close the connection to C{client} gracefully (same as C{client.Disconnect()})."""
        if not isinstance(client, ClientObject):
            raise TypeError(f"client must be a ClientObject, not {type(client).__name__}")
        client.Disconnect()


class EthernetServerInterface(_ServerInterface):
    """
    ControlScript's single-client server: events get the interface itself, and L{Send} and
    L{Disconnect} act on the connected client.  A non-zero C{ServicePort} accepts only clients
    sending from that port.  Not supported by connection handlers (use the Ex interface).
    """

    def __init__(
        self,
        IPPort: int,
        Protocol: str = "TCP",
        Interface: str = "Any",
        ServicePort: int = 0,
        *,
        reactor: Any = None,
        bindAddress: str | None = None,
    ) -> None:
        if isinstance(ServicePort, bool) or not isinstance(ServicePort, int):
            raise TypeError(f"ServicePort must be an int, not {type(ServicePort).__name__}")
        if not 0 <= ServicePort <= 65535:
            raise ValueError(f"ServicePort must be 0-65535, got {ServicePort}")
        self._servicePort = ServicePort
        self._last: ClientObject | None = None
        super().__init__(IPPort, Protocol, Interface, 1, reactor=reactor, bindAddress=bindAddress)

    @property
    def ServicePort(self) -> int:
        """The client port accepted (0: any)."""
        return self._servicePort

    @property
    def IPAddress(self) -> str:
        """The connected (or last) client's address, '' before any."""
        return self._last.IPAddress if self._last is not None else ""

    @property
    def Hostname(self) -> str:
        """Same as L{IPAddress}."""
        return self.IPAddress

    def _refusal(self, addr: IAddress) -> str | None:
        port = getattr(addr, "port", None)
        if self._servicePort and port != self._servicePort:
            return f"its port {port} is not ServicePort {self._servicePort}"
        return super()._refusal(addr)

    def _eventSource(self, client: ClientObject) -> object:
        return self

    def _clientMade(self, client: ClientObject) -> None:
        self._last = client
        super()._clientMade(client)

    def _datagram(self, transport: Any, data: bytes, peer: tuple[str, int]) -> None:
        if self._servicePort and peer[1] != self._servicePort:
            return
        super()._datagram(transport, data, peer)
        self._last = self._udpPeers.get(peer)

    def Send(self, data: bytes | str) -> None:
        """Send to the connected client (UDP: the last sender); IOError when there is none."""
        client = self._last
        if client is None:
            raise LinkDown(f"{self!r} has no client")
        client.Send(data)

    def Disconnect(self) -> None:
        """Close the connection to the client, if any."""
        client = self._last
        if client is not None:
            client.Disconnect()
