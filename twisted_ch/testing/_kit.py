"""
Device simulators on real loopback sockets (TCP, UDP, serial ptys through socat) and
L{waitUntil}.  The Clock-driven fakes are in L{twisted_ch.testing._fakes}.  Usable from trial or
pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
)
from twisted.internet.protocol import DatagramProtocol, ProcessProtocol, Protocol
from twisted.python.failure import Failure

from twisted_ch.testing._loopback import LoopbackServer

__all__ = [
    "DeviceServer",
    "PtyPair",
    "SimulatedDevice",
    "UDPDeviceServer",
    "listenDevice",
    "listenUDPDevice",
    "serveSerialDevice",
    "waitUntil",
]


Responder = Callable[[bytes], bytes | None]


class SimulatedDevice(Protocol):
    """
    A device that answers known requests: C{responses} maps each request (bytes) to its reply.

    Bytes that start no known request are skipped one at a time.  While the server is
    C{silent}, requests are read and not answered.

    @ivar server: the L{DeviceServer} it belongs to (its C{responses}, C{silent} and counters).
    @ivar buffer: bytes received that may still be the start of a request.
    """

    def __init__(self, server: DeviceServer) -> None:
        self.server = server
        self.buffer = b""

    def connectionMade(self) -> None:
        self.server.clients.append(self)

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if self in self.server.clients:
            self.server.clients.remove(self)

    def dataReceived(self, data: bytes) -> None:
        self.server.received.append(data)
        self.buffer += data
        responses = self.server.responses
        while self.buffer:
            for request in sorted(responses, key=len, reverse=True):
                if self.buffer.startswith(request):
                    self.buffer = self.buffer[len(request) :]
                    self.server.requests += 1
                    if not self.server.silent and self.transport is not None:
                        self.transport.write(responses[request])
                    break
            else:
                if any(r.startswith(self.buffer) for r in responses):
                    return  # a request may still be arriving
                self.buffer = self.buffer[1:]


class DeviceServer(LoopbackServer):
    """
    A loopback TCP device simulator that tests can silence, stop, restart and reset (see
    L{LoopbackServer}).

    @ivar responses: each request (bytes) and its reply; the longest request matching wins.
    @ivar silent: while True, requests are read, counted and not answered.
    @ivar received: every chunk of bytes a client sent, in order.
    @ivar requests: how many known requests arrived (answered or not).
    """

    protocol = SimulatedDevice

    def __init__(self, reactor: Any, responses: Mapping[bytes, bytes]) -> None:
        super().__init__(reactor)
        self.responses = dict(responses)
        self.silent = False
        self.received: list[bytes] = []
        self.requests = 0

    def buildProtocol(self, addr: IAddress | None) -> SimulatedDevice:
        return SimulatedDevice(self)


def listenDevice(reactor: Any, responses: Mapping[bytes, bytes]) -> DeviceServer:
    """Start a L{DeviceServer} on a free loopback port."""
    server = DeviceServer(reactor, responses)
    server.start()
    return server


class UDPDeviceServer(DatagramProtocol):
    """
    A loopback UDP device: each datagram that is a known request gets its reply, sent back to
    the sender.  Tests can silence it, stop it (its port then answers ICMP unreachable) and restart
    it on the same port.

    @ivar reactor: the reactor it listens with.
    @ivar responses: each request datagram and its reply.
    @ivar silent: while True, requests are read, counted and not answered.
    @ivar requests: how many known requests arrived (answered or not).
    @ivar received: every datagram received, in order.
    @ivar port: its port (0 before the first L{start}; kept across a stop).
    @ivar listening: its listening port while it listens, else None.
    """

    def __init__(self, reactor: Any, responses: Mapping[bytes, bytes]) -> None:
        self.reactor = reactor
        self.responses = dict(responses)
        self.silent = False
        self.requests = 0
        self.received: list[bytes] = []
        self.port = 0
        self.listening: Any = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        reply = self.responses.get(datagram)
        if reply is not None:
            self.requests += 1
            if not self.silent and self.transport is not None:
                self.transport.write(reply, addr)

    def start(self) -> int:
        """Listen on 127.0.0.1 (the same port again after a stop); returns the port."""
        self.listening = self.reactor.listenUDP(self.port, self, interface="127.0.0.1")
        self.port = self.listening.getHost().port
        return self.port

    def stop(self) -> Deferred[None]:
        """Close the socket."""
        listening, self.listening = self.listening, None
        if listening is None:
            return succeed(None)
        d = listening.stopListening()
        return d if isinstance(d, Deferred) else succeed(None)


def listenUDPDevice(reactor: Any, responses: Mapping[bytes, bytes]) -> UDPDeviceServer:
    """Start a L{UDPDeviceServer} on a free loopback port."""
    server = UDPDeviceServer(reactor, responses)
    server.start()
    return server


class _Socat(ProcessProtocol):
    def __init__(self) -> None:
        self.stderr = b""
        self.ready: Deferred[None] = Deferred()
        self.ended: Deferred[None] = Deferred()

    def errReceived(self, data: bytes) -> None:
        self.stderr += data
        if b"starting data transfer loop" in self.stderr and not self.ready.called:
            self.ready.callback(None)

    def processEnded(self, reason: Failure) -> None:
        if not self.ready.called:
            self.ready.errback(RuntimeError(f"socat ended early: {self.stderr.decode()}"))
        self.ended.callback(None)


class PtyPair:
    """
    Two linked pseudo-terminals made by socat, at the stable paths C{devA} and C{devB}: a serial
    cable for tests.  L{unplug} kills socat (both ends vanish); L{plug} brings them back.

    @ivar reactor: the reactor that runs socat.
    @ivar devA: one end's path (a symbolic link socat makes while plugged in).
    @ivar devB: the other end's path.
    """

    def __init__(self, reactor: Any, directory: str) -> None:
        import os
        import shutil

        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is needed for serial tests: apt-get install socat")
        self.reactor = reactor
        self._socat = socat
        self.devA = os.path.join(directory, "devA")
        self.devB = os.path.join(directory, "devB")
        self._process: _Socat | None = None

    def plug(self, timeout: float = 10.0) -> Deferred[None]:
        """Start socat; fires once both paths exist."""
        import os

        process = _Socat()
        args = [self._socat, "-d", "-d"]
        args += [f"pty,raw,echo=0,link={dev}" for dev in (self.devA, self.devB)]
        self.reactor.spawnProcess(process, self._socat, args, env=dict(os.environ))
        self._process = process

        def linked(_: None) -> None:
            for dev in (self.devA, self.devB):
                if not os.path.exists(dev):
                    raise RuntimeError(f"socat is ready but {dev} is missing")

        return process.ready.addTimeout(timeout, self.reactor).addCallback(linked)

    def unplug(self, timeout: float = 10.0) -> Deferred[None]:
        """Kill socat; fires once it has ended."""
        process, self._process = self._process, None
        if process is None or process.ended.called:
            return succeed(None)
        try:
            process.transport.signalProcess("KILL")  # type: ignore[union-attr]
        except error.ProcessExitedAlready:
            pass
        return process.ended.addTimeout(timeout, self.reactor)


def serveSerialDevice(reactor: Any, path: str, server: DeviceServer) -> Deferred[Any]:
    """Attach a simulated device (a L{DeviceServer}'s protocol) to the serial port at C{path}."""
    from twisted_ch.endpoints.serial import SerialEndpoint

    return SerialEndpoint(reactor, path).connect(server)


def waitUntil(
    reactor: Any, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> Deferred[None]:
    """
    Fire once C{predicate()} is true, checking every C{interval} seconds of C{reactor} time; fail
    with L{TimeoutError} after C{timeout} seconds.  Leaves no timer behind.
    """
    d: Deferred[None] = Deferred()
    deadline = reactor.seconds() + timeout

    def check() -> None:
        if predicate():
            d.callback(None)
        elif reactor.seconds() >= deadline:
            d.errback(TimeoutError(f"condition not met within {timeout} s"))
        else:
            reactor.callLater(interval, check)

    check()
    return d
