"""
Loopback simulators for the stock probes' protocols: a PJLink projector (with or without
authentication) and an SNMP agent answering sysUpTime.  Re-exported by L{twisted_ch.testing}.
"""

from __future__ import annotations

import secrets
import socket
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from twisted_ch.protocols._probecodec import (
    SYS_UPTIME,
    _asn1,
    decodeMessage,
    encodeMessage,
    pjlinkDigest,
)
from twisted_ch.testing._loopback import LoopbackServer

__all__ = [
    "PJLinkServer",
    "SNMPAgent",
    "SIS_RESPONSES",
    "listenPJLink",
    "listenSNMP",
]

#: Answers of a small Extron SIS device, for L{twisted_ch.testing.DeviceServer}.
SIS_RESPONSES: dict[bytes, bytes] = {
    b"Q": b"1.23\r\n",
    b"*Q": b"1.23.0001-b002\r\n",
    b"N": b"60-1234-01\r\n",
    b"I": b"V1X1 A1X1 Vmt0 Amt0 Exe0\r\n",
}


class _Projector(LineOnlyReceiver):
    """One PJLink class 1 connection: greeting, optional authentication, a few commands."""

    delimiter = b"\r"
    MAX_LENGTH = 512

    def __init__(self, server: PJLinkServer) -> None:
        self.server = server
        self.random = b""
        self.authenticated = server.password is None

    def _send(self, line: bytes) -> None:
        if self.transport is not None:
            self.transport.write(line + self.delimiter)

    def connectionMade(self) -> None:
        self.server.clients.append(self)
        if self.server.password is None:
            self._send(b"PJLINK 0")
        else:
            self.random = secrets.token_hex(4).encode("ascii")
            self._send(b"PJLINK 1 " + self.random)

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if self in self.server.clients:
            self.server.clients.remove(self)

    def lineReceived(self, line: bytes) -> None:
        server = self.server
        if not self.authenticated:
            digest, command = line[:32], line[32:]
            assert server.password is not None
            if digest != pjlinkDigest(self.random, server.password):
                server.authFailures += 1
                self._send(b"PJLINK ERRA")
                return
            self.authenticated = True
            line = command
        server.commands.append(line)
        if server.silent:
            return
        if line == b"%1POWR ?":
            self._send(b"%1POWR=" + str(server.power).encode("ascii"))
        elif line.startswith(b"%1POWR ") and line[7:] in (b"0", b"1"):
            server.power = int(line[7:])
            self._send(b"%1POWR=OK")
        elif line.startswith(b"%1") and len(line) >= 6:
            self._send(line[:6] + b"=ERR1")


class PJLinkServer(LoopbackServer):
    """
    A PJLink class 1 projector on loopback TCP.

    With a C{password} it greets with C{PJLINK 1 <random>} and answers a wrong digest with
    C{PJLINK ERRA}; without one it greets with C{PJLINK 0}.  C{power} is the state it reports
    (0 off, 1 on, 2 cooling, 3 warming up); while C{silent} it answers nothing.  It can be
    stopped, started again and shut down as a L{LoopbackServer}.

    @ivar password: the PJLink password (None: no authentication).
    @ivar power: the power state it reports; C{%1POWR 0|1} sets it.
    @ivar silent: while True, commands are recorded and not answered.
    @ivar authFailures: how many commands came with a wrong digest.
    @ivar commands: every authenticated command line, in order.
    """

    def __init__(self, reactor: Any, password: str | None = None, power: int = 1) -> None:
        super().__init__(reactor)
        self.password = password
        self.power = power
        self.silent = False
        self.authFailures = 0
        self.commands: list[bytes] = []

    def buildProtocol(self, addr: IAddress | None) -> _Projector:
        return _Projector(self)


def _stopped(port: IListeningPort) -> Deferred[None]:
    d = port.stopListening()
    return d if isinstance(d, Deferred) else succeed(None)


def listenPJLink(reactor: Any, password: str | None = None, power: int = 1) -> PJLinkServer:
    """Start a L{PJLinkServer} on a free loopback port."""
    server = PJLinkServer(reactor, password, power)
    server.start()
    return server


class SNMPAgent(DatagramProtocol):
    """
    An SNMP v1/v2c agent on loopback UDP that answers GETs of sysUpTime.0 (needs pyasn1).

    Requests with another community are dropped, as agents do.  Test knobs: C{silent} answers
    nothing; C{decoy} sends first a response with a wrong request-id; C{wrongIdOnly} sends only
    that wrong one.

    @ivar reactor: the reactor it listens with (sysUpTime counts from its start).
    @ivar community: the community it answers (bytes).
    @ivar started: the reactor time it was built at.
    @ivar silent: while True, requests are counted and not answered.
    @ivar decoy: send a response with a wrong request-id before each answer.
    @ivar wrongIdOnly: send only the wrong-request-id response.
    @ivar junk: datagrams sent before each answer (a hostile agent's flood).
    @ivar requests: how many GETs with its community arrived.
    @ivar dropped: how many datagrams were dropped (undecodable, not a GET, other community).
    @ivar port: its port (0 before the first start).
    @ivar listening: its listening port while it listens, else None.
    """

    noisy = False

    def __init__(self, reactor: Any, community: str = "public") -> None:
        self.reactor = reactor
        self.community = community.encode("utf-8")
        self.started = reactor.seconds()
        self.silent = False
        self.decoy = False
        self.wrongIdOnly = False
        self.junk: list[bytes] = []
        self.requests = 0
        self.dropped = 0
        self.port = 0
        self.listening: IListeningPort | None = None

    def start(self) -> int:
        """Listen on 127.0.0.1 (the same port again after a stop); returns the port."""
        self.listening = self.reactor.listenUDP(self.port, self, interface="127.0.0.1")
        sock = getattr(self.listening, "socket", None)
        if sock is not None:
            # room for a burst of GETs from a thousand pollers at once (the default queue
            # drops all but ~300); the kernel caps it at net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        address: Any = self.listening.getHost()
        self.port = int(address.port)
        return self.port

    def shutdown(self) -> Deferred[None]:
        """Stop listening."""
        listening, self.listening = self.listening, None
        if listening is None:
            return succeed(None)
        return _stopped(listening)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        try:
            request = decodeMessage(datagram)
        except ValueError:
            self.dropped += 1
            return
        if request.pduKind != "get-request" or request.community != self.community:
            self.dropped += 1
            return
        self.requests += 1
        if self.silent or self.transport is None:
            return
        a = _asn1()
        ticks = int((self.reactor.seconds() - self.started) * 100) % 2**32
        binds: list[tuple[str, Any]] = []
        errorStatus = 0
        for oid, _ in request.binds:
            if oid == SYS_UPTIME:
                binds.append((oid, a.TimeTicks(ticks)))
            else:
                binds.append((oid, a.NULL))
                errorStatus = 2  # noSuchName
        for datagram in self.junk:
            self.transport.write(datagram, addr)
        if self.decoy or self.wrongIdOnly:
            wrong = encodeMessage(
                request.version, request.community, "response", request.requestId ^ 0x5A5A, binds
            )
            self.transport.write(wrong, addr)
            if self.wrongIdOnly:
                return
        answer = encodeMessage(
            request.version, request.community, "response", request.requestId, binds
        )
        if errorStatus:
            answer = _withErrorStatus(request, binds, errorStatus)
        self.transport.write(answer, addr)


def _withErrorStatus(request: Any, binds: list[tuple[str, Any]], status: int) -> bytes:
    a = _asn1()
    message, _ = a.decode(
        encodeMessage(request.version, request.community, "response", request.requestId, binds),
        asn1Spec=a.Message(),
    )
    message["data"]["response"]["error-status"] = status
    message["data"]["response"]["error-index"] = 1
    return a.encode(message)  # type: ignore[no-any-return]


def listenSNMP(reactor: Any, community: str = "public") -> SNMPAgent:
    """Start an L{SNMPAgent} on a free loopback UDP port."""
    agent = SNMPAgent(reactor, community)
    agent.start()
    return agent
