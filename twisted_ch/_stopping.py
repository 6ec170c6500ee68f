# -*- test-case-name: tests.test_program_stop -*-
"""Stopping a connection handler: a client's link closed, or a server's port and its clients."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["CLIENT_CLOSE_GRACE", "closeClients", "stopHandler"]

log = Logger(namespace="twisted_ch.tap")

#: Seconds a server's client gets to close gracefully at stop before its connection is aborted.
CLIENT_CLOSE_GRACE = 2.0


def stopHandler(
    handler: Any, reactor: Any = None, grace: float = CLIENT_CLOSE_GRACE
) -> Deferred[Any]:
    """
    Stop a client handler (Disconnect) or a server handler (StopListen, then close each client:
    gracefully, aborted after C{grace} seconds).  Fires once the link is closed, or the port is
    closed and every client gone.
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        if hasattr(type(handler), "StopListen"):
            # the port first (no client arrives once it is closed), then the clients
            def clients(result: object) -> Deferred[None]:
                if isinstance(result, Failure):
                    log.failure("{server}: stopping listening failed", result, server=handler)
                return closeClients(handler, reactor, grace)

            return maybeDeferred(handler.StopListen).addBoth(clients)
        result = handler.Disconnect()
    except Exception:
        return fail()
    return result if isinstance(result, Deferred) else succeed(result)


class _ClientsGone:
    """A server observer firing a Deferred per client as it goes (see L{closeClients})."""

    def __init__(self) -> None:
        self.waiting: dict[int, tuple[Any, Any, Deferred[None]]] = {}

    def clientConnected(self, client: Any) -> None:
        pass

    def clientData(self, client: Any, data: bytes) -> None:
        pass

    def clientLost(self, client: Any, reason: str) -> None:
        entry = self.waiting.pop(id(client), None)
        if entry is not None:
            entry[2].callback(None)


def closeClients(handler: Any, reactor: Any, grace: float = CLIENT_CLOSE_GRACE) -> Deferred[None]:
    """
    Close every client of a server handler: gracefully first (what was sent is written), and
    those still connected after C{grace} seconds are aborted (a client that stopped reading would
    keep a graceful close waiting forever).  Fires when every client is gone; no timer is left.
    """
    iface = handler.Interface
    # the connection wrappers (IdleClientProtocol) hold the transports, for the abort
    wrappers: dict[int, Any] = {}
    factory = getattr(handler, "factory", None)
    for wrapper in list(getattr(factory, "protocols", {})):
        client = getattr(wrapper.wrappedProtocol, "client", None)
        if client is not None:
            wrappers[id(client)] = wrapper
    clients = [c for c in handler.Clients if getattr(c, "connected", True)]
    if not clients:
        return succeed(None)
    gone = _ClientsGone()
    for client in clients:
        gone.waiting[id(client)] = (client, wrappers.get(id(client)), Deferred())
    everyone = [d for _, _, d in gone.waiting.values()]
    iface.observers.append(gone)
    timers: list[Any] = []

    def abortTheRest() -> None:
        rest = list(gone.waiting.values())
        log.warn(
            "{server}: {n} clients did not close within {grace} s; aborting them",
            server=handler,
            n=len(rest),
            grace=grace,
        )
        for _client, wrapper, _ in rest:
            transport = getattr(wrapper, "transport", None)
            abort = getattr(transport, "abortConnection", None)
            if callable(abort):
                abort()
        # an aborted connection is lost at the next reactor iteration; never wait forever
        timers.append(reactor.callLater(1.0, giveUp))

    def giveUp() -> None:
        rest = list(gone.waiting.values())
        gone.waiting.clear()
        log.error("{server}: {n} clients never reported lost", server=handler, n=len(rest))
        for _, _, d in rest:
            d.callback(None)

    timers.append(reactor.callLater(grace, abortTheRest))
    for client in clients:
        try:
            client.Disconnect()
        except Exception:
            log.failure("{server}: closing {client} failed", server=handler, client=client)

    def allGone(result: object) -> None:
        for timer in timers:
            if timer.active():
                timer.cancel()
        if gone in iface.observers:
            iface.observers.remove(gone)

    return DeferredList(everyone).addBoth(allGone)
