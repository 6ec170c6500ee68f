"""
A TCP client endpoint for a host name that reports a failed attempt as soon as it fails.

Twisted's L{HostnameEndpoint} starts one address every C{attemptDelay} (0.3 s) and reports failure
only on the tick after the last attempt failed, so a refused connection to a name is reported
0.3 s late, and every reconnection to a device that is coming back is that much late.  Here an
attempt that fails starts the next address at once, and the last failure is reported the moment
it happens; an attempt that is merely slow still lets the next address start after
C{attemptDelay} (Happy Eyeballs, RFC 8305), and the first connection wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import error
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.address import HostnameAddress, IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHostResolution,
    IProtocol,
    IProtocolFactory,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["TCPHostnameEndpoint"]

Endpoint = TCP4ClientEndpoint | TCP6ClientEndpoint


@implementer(IStreamClientEndpoint)
class TCPHostnameEndpoint:
    """
    Connects over TCP to C{host} (a name or an IP address), trying its addresses in turn.

    Names are resolved on every C{connect} through the reactor's name resolver (so a device that
    changed address is found), and the addresses are tried alternating between IPv6 and IPv4.
    C{connect} fails with L{error.DNSLookupError} when the name has no address, else with the
    last attempt's error.
    """

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        timeout: float = 30,
        bindAddress: str | tuple[str, int] | None = None,
        attemptDelay: float = 0.25,
    ) -> None:
        self._literal = isIPAddress(host) or isIPv6Address(host)
        if not self._literal and not IReactorPluggableNameResolver.providedBy(reactor):
            raise TypeError(
                f"resolving {host!r} needs a reactor with a pluggable name resolver "
                f"(IReactorPluggableNameResolver); {type(reactor).__name__} has none"
            )
        self._reactor = reactor
        self._host = host
        self._port = port
        self._timeout = timeout
        # like HostnameEndpoint: a bare host binds to that host, any port
        self._bindAddress = (bindAddress, 0) if isinstance(bindAddress, str) else bindAddress
        self._attemptDelay = attemptDelay
        try:
            hostBytes = host.encode("idna")
        except UnicodeError:
            hostBytes = host.encode("utf-8")
        #: what a cancelled connect names
        self._address = HostnameAddress(hostBytes, port)

    def __repr__(self) -> str:
        return f"<TCPHostnameEndpoint {self._host}:{self._port}>"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """Resolve, then race the addresses; fires with the first connected protocol."""
        if self._literal:
            return self._endpoint(self._host, isIPv6Address(self._host)).connect(protocolFactory)
        race = _Race(self, protocolFactory)
        resolver = self._reactor.nameResolver
        resolver.resolveHostName(race, self._host, portNumber=self._port)
        return race.result

    def _endpoint(self, host: str, v6: bool) -> Endpoint:
        kind = TCP6ClientEndpoint if v6 else TCP4ClientEndpoint
        return kind(self._reactor, host, self._port, self._timeout, self._bindAddress)


def interleave(addresses: Sequence[IAddress]) -> list[IPv4Address | IPv6Address]:
    """The addresses alternating between families, starting with the first one's (RFC 8305)."""
    ip = [a for a in addresses if isinstance(a, IPv4Address | IPv6Address)]
    if not ip:
        return []
    first = type(ip[0])
    same = [a for a in ip if isinstance(a, first)]
    other = [a for a in ip if not isinstance(a, first)]
    out: list[IPv4Address | IPv6Address] = []
    for i in range(max(len(same), len(other))):
        out.extend(x[i] for x in (same, other) if i < len(x))
    seen: set[tuple[str, str]] = set()  # getaddrinfo may list an address once per socket type
    unique = []
    for a in out:
        key = (a.type, a.host)
        if key not in seen:
            seen.add(key)
            unique.append(a)
    return unique


@implementer(IResolutionReceiver)
class _Race:
    """One C{connect}: receives the resolution, then runs the connection attempts."""

    def __init__(self, endpoint: TCPHostnameEndpoint, factory: IProtocolFactory) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.addresses: list[IAddress] = []
        self.queue: list[IPv4Address | IPv6Address] = []
        self.pending: list[Deferred[IProtocol]] = []
        self.lastFailure: Failure | None = None
        self.timer: IDelayedCall | None = None
        self.finished = False
        self.result: Deferred[IProtocol] = Deferred(self._cancel)

    # IResolutionReceiver

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        if self.finished:
            return  # cancelled while resolving
        self.queue = interleave(self.addresses)
        if not self.queue:
            self._finish(
                Failure(error.DNSLookupError(f"no address found for {self.endpoint._host!r}"))
            )
            return
        self._startNext()

    # the attempts

    def _startNext(self) -> None:
        self._cancelTimer()
        if self.finished or not self.queue:
            return
        address = self.queue.pop(0)
        attempt = self.endpoint._endpoint(address.host, isinstance(address, IPv6Address))
        d = attempt.connect(self.factory)
        self.pending.append(d)
        # an attempt can fail (or succeed) right here, which starts the next one or finishes
        d.addCallbacks(self._connected, self._failed, callbackArgs=(d,), errbackArgs=(d,))
        if self.queue and not self.finished and d in self.pending and self.timer is None:
            self.timer = self.endpoint._reactor.callLater(
                self.endpoint._attemptDelay, self._startNext
            )

    def _connected(self, protocol: IProtocol, d: Deferred[IProtocol]) -> None:
        self.pending.remove(d)
        if self.finished:  # cannot happen (losers are cancelled at once); never leak one
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.loseConnection()
            return
        self._finish(protocol)

    def _failed(self, failure: Failure, d: Deferred[IProtocol]) -> None:
        self.pending.remove(d)
        if self.finished:
            return  # a losing attempt we cancelled
        self.lastFailure = failure
        if self.queue:
            self._startNext()  # no need to wait out the delay: this one has failed
        elif not self.pending:
            self._finish(failure)

    def _finish(self, outcome: IProtocol | Failure) -> None:
        self.finished = True
        self._cancelTimer()
        for d in list(self.pending):
            d.cancel()
        if isinstance(outcome, Failure):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)

    def _cancelTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _cancel(self, result: Deferred[IProtocol]) -> None:
        if not self.finished:
            self._finish(Failure(error.ConnectingCancelledError(self.endpoint._address)))
