"""
Restartable loopback servers for simulated devices (re-exported by L{twisted_ch.testing}): ports
below the kernel's ephemeral range, and a base factory with start, stop, drop and shutdown.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol


def stablePorts(count: int = 200) -> list[int]:
    """
    Candidate listening ports below the kernel's ephemeral range, in random order.

    A device that stops listening and later listens again must own a port that no outgoing
    connection can take meanwhile as its source port (or, on loopback, connect to itself through);
    ports from the ephemeral range, which port 0 gives, can be taken.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(max(1024, low - 20000), low))
    random.SystemRandom().shuffle(candidates)
    return candidates[:count]


def listenStable(
    reactor: Any, factory: Factory, interface: str = "127.0.0.1", backlog: int = 50
) -> IListeningPort:
    """Listen on a free port from L{stablePorts}; returns the listening port."""
    for port in stablePorts():
        try:
            listening: IListeningPort = reactor.listenTCP(
                port, factory, backlog=backlog, interface=interface
            )
        except CannotListenError:
            continue
        return listening
    raise RuntimeError("no free port below the ephemeral range")


def listenLoopback(reactor: Any, factory: Factory, port: int = 0) -> IListeningPort:
    """
    Listen on 127.0.0.1: on C{port}, or with 0 on a free port from L{stablePorts}, so that a
    simulated device can stop and listen on the same port again.
    """
    if port == 0:
        return listenStable(reactor, factory)
    listening: IListeningPort = reactor.listenTCP(port, factory, interface="127.0.0.1")
    return listening


def dropConnections(protocols: Iterable[Protocol], abort: bool) -> None:
    """Close the connection of each protocol that has one (RST with C{abort}, else FIN)."""
    for protocol in list(protocols):
        transport = protocol.transport
        if transport is not None:
            if abort:
                transport.abortConnection()  # type: ignore[attr-defined]
            else:
                transport.loseConnection()


class LoopbackServer(Factory):
    """
    A simulated device's TCP server on 127.0.0.1 that tests can stop and start again on the same
    port (see L{listenLoopback}).  Its protocols keep themselves in L{clients} while connected.

    @ivar reactor: the reactor it listens with.
    @ivar clients: the protocols connected now.
    @ivar port: its port (0 before the first L{start}; kept across a stop).
    @ivar listening: its listening port while it listens, else None.
    """

    noisy = False

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.clients: list[Any] = []
        self.port = 0
        self.listening: IListeningPort | None = None

    def start(self) -> int:
        """Listen (the first time below the ephemeral range, then on the same port); the port."""
        listening: Any = listenLoopback(self.reactor, self, self.port)
        self.listening = listening
        self.port = int(listening.getHost().port)
        return self.port

    def stop(self) -> Deferred[None]:
        """Stop listening (new connections are refused); connected clients stay."""
        listening, self.listening = self.listening, None
        stopped = listening.stopListening() if listening is not None else None
        return stopped if isinstance(stopped, Deferred) else succeed(None)

    def dropClients(self, abort: bool = True) -> None:
        """Close every client connection (RST with C{abort}, else FIN)."""
        dropConnections(self.clients, abort)

    def shutdown(self) -> Deferred[None]:
        """Stop listening and reset every client."""
        self.dropClients()
        return self.stop()
