# mypy: disable-error-code="no-untyped-call"
# (twisted.protocols.policies is unannotated)
"""
Descriptor and connection limits of C{twistd chandler}: no client, however many, can take the
descriptors the devices need, nor make the status page unreachable.

  - At start the soft limit on open descriptors is raised to the hard limit (systemd's default
    soft limit is 1,024), and the service checks its budget: a reserve per device, each server's
    C{MaxClients}, the status page's connection limit.  A configuration that does not fit refuses
    to start with one line saying what to change.
  - The status page (L{ConnectionLimiter}) serves at most L{STATUS_MAX_CONNECTIONS} connections: a
    newcomer beyond them takes the place of a half-open one (no whole request: connected, or
    trickling it) first, then of one waiting between requests, then of the costliest of those
    being answered; so idle, trickling or connect-and-close clients can never lock the page out
    of a client that asks.  A connection
    silent for L{STATUS_IDLE_TIMEOUT} is dropped; one that does not complete a request within
    L{STATUS_HEADER_DEADLINE} too.
  - Each client (address), and each of its connections, has a budget of rendering time
    (L{ClientBudget}): past it, its requests that are costly to render are refused (429) until
    the budget refills.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NoReturn

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.protocols.policies import ProtocolWrapper, TimeoutMixin, WrappingFactory
from twisted.python.failure import Failure

from twisted_ch._summary import Summarizer

try:
    import resource
except ImportError:  # pragma: no cover (not POSIX)
    resource = None  # type: ignore[assignment]

__all__ = [
    "DESCRIPTORS_PER_DEVICE",
    "DESCRIPTORS_PER_SSH_DEVICE",
    "descriptorsPerDevice",
    "SPARE_DESCRIPTORS",
    "STATUS_BUDGET_BURST",
    "STATUS_BUDGET_RATE",
    "STATUS_CHEAP_RENDER",
    "STATUS_CONNECTION_BUDGET",
    "STATUS_FRESH_CONNECTION",
    "STATUS_HEADER_DEADLINE",
    "STATUS_IDLE_TIMEOUT",
    "STATUS_MAX_BUFFERED",
    "STATUS_MAX_CONNECTIONS",
    "STATUS_MAX_HELD",
    "STATUS_MAX_PIPELINED",
    "ClientBudget",
    "ConnectionLimiter",
    "DescriptorBudgetError",
    "checkDescriptorBudget",
    "raiseDescriptorLimit",
    "refuseToStart",
]

log = Logger(namespace="twisted_ch.tap")

#: Connections the status page serves at once.
STATUS_MAX_CONNECTIONS = 32
#: The status page's connections at the most: a connection being answered when a newcomer comes
#: closes once answered, the newcomer let in meanwhile, up to twice L{STATUS_MAX_CONNECTIONS}.
STATUS_MAX_HELD = 2 * STATUS_MAX_CONNECTIONS
#: Seconds a status-page connection may stay silent before it is dropped.
STATUS_IDLE_TIMEOUT = 30.0
#: Seconds a status-page connection has to send a whole request (head and body) once it connected
#: or was answered: a client trickling its request (slowloris) is dropped after them.
STATUS_HEADER_DEADLINE = 10.0
#: Seconds of rendering per second a status-page client (an address) may use, and how many it
#: may use at once: past them, its costly requests are refused until the budget refills.  (Above
#: the share streamed renders may take, L{twisted_ch.service._stream.STATUS_RENDER_SHARE}: on
#: loopback, where every client is one address, streamed pages alone do not spend it.)
STATUS_BUDGET_RATE = 0.6
STATUS_BUDGET_BURST = 1.0
#: Seconds of rendering one status-page connection may have used lately (decayed over
#: L{twisted_ch.service._stream.STATUS_USAGE_MEMORY} seconds): past them, its costly requests
#: are refused until it used less.
STATUS_CONNECTION_BUDGET = 2.0
#: Seconds of rendering under which a connection counts as fresh: its address's budget does not
#: refuse it (on loopback every client is one address: the dashboard beside clients looping on
#: /status), its own does.
STATUS_FRESH_CONNECTION = 0.05
#: Seconds under which a page's last render counts as cheap: never refused for the budget.
STATUS_CHEAP_RENDER = 0.002
#: Requests a status-page client may send ahead of the answers (HTTP pipelining) in a row:
#: one more and the connection is dropped.
STATUS_MAX_PIPELINED = 16
#: Bytes held for one status-page connection (answers its client has not read, requests it sent
#: ahead): past them the connection is dropped.
STATUS_MAX_BUFFERED = 8 << 20
#: Descriptors kept per device: its connection (a socket, a serial port; closed before the next
#: attempt opens another).
DESCRIPTORS_PER_DEVICE = 1
#: Descriptors kept per SSH device: its connection, and its ssh-agent's while it logs in.
DESCRIPTORS_PER_SSH_DEVICE = 2
#: Endpoint types whose devices keep L{DESCRIPTORS_PER_SSH_DEVICE}.
_SSH_TYPES = frozenset(("ssh",))
#: Descriptors kept for the service itself (log files, the reactor's wakers, DNS, listening ports).
SPARE_DESCRIPTORS = 64
#: The soft limit asked for when the hard limit is unlimited.
_UNLIMITED_SOFT = 1 << 20


class DescriptorBudgetError(RuntimeError):
    """The configured clients and devices need more descriptors than the process may open."""


def refuseToStart(message: str) -> NoReturn:
    """Log C{message} and end twistd with it as one line on standard error (exit status 1)."""
    log.critical("cannot start: {message}", message=message)
    raise SystemExit(f"twistd chandler: cannot start: {message}")


def raiseDescriptorLimit() -> tuple[int, int]:
    """
    Raise the soft limit on open descriptors to the hard limit.

    @return: C{(soft, hard)} after the change (C{-1} for unlimited); C{(-1, -1)} where the
        platform has no such limit.
    """
    if resource is None:  # pragma: no cover
        return -1, -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, _UNLIMITED_SOFT)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as e:
            log.warn(
                "cannot raise the open-descriptor limit from {soft} to {wanted}: {error}",
                soft=soft,
                wanted=wanted,
                error=e,
            )
        else:
            log.info(
                "open-descriptor limit raised from {soft} to {wanted}", soft=soft, wanted=wanted
            )
            soft = wanted
    infinite = resource.RLIM_INFINITY
    return (-1 if soft == infinite else soft), (-1 if hard == infinite else hard)


def descriptorsPerDevice(endpointType: str) -> int:
    """The descriptors a device of this endpoint type (C{tcp}, C{ssh}, ...) keeps at most."""
    if endpointType.lower() in _SSH_TYPES:
        return DESCRIPTORS_PER_SSH_DEVICE
    return DESCRIPTORS_PER_DEVICE


def checkDescriptorBudget(
    devices: int,
    serverShares: dict[str, int],
    statusShare: int,
    limit: int,
    deviceDescriptors: int | None = None,
    hard: int | None = None,
) -> int:
    """
    Check that C{devices} (keeping C{deviceDescriptors} between them; by default
    L{DESCRIPTORS_PER_DEVICE} each), the servers' client shares (their C{MaxClients}, by name)
    and the status page's share fit in C{limit} descriptors with L{SPARE_DESCRIPTORS} to spare.
    C{hard} is the hard limit (-1: unlimited; None: not known): when the soft C{limit} is below
    what is needed but the hard limit is not, the message says that the soft limit could not be
    raised; when the hard limit is too low, how many shards would fit.

    @return: the descriptors the configuration may use at most.
    @raise DescriptorBudgetError: they do not fit; the message says what to change.
    """
    if deviceDescriptors is None:
        deviceDescriptors = devices * DESCRIPTORS_PER_DEVICE
    servers = sum(serverShares.values())
    fixed = SPARE_DESCRIPTORS + servers + len(serverShares) + statusShare + 1
    needed = fixed + deviceDescriptors
    if limit >= 0 and needed > limit:
        largest = sorted(serverShares.items(), key=lambda kv: -kv[1])[:3]
        shares = ", ".join(f"{name!r} MaxClients={n}" for name, n in largest)
        if hard is not None and (hard < 0 or hard >= needed):
            change = (
                f"the soft limit could not be raised to the hard limit "
                f"({'unlimited' if hard < 0 else hard}): raise it (LimitNOFILE= in a systemd "
                "unit, ulimit -n)"
            )
        else:
            shards = math.ceil(deviceDescriptors / (limit - fixed)) if limit > fixed else 0
            split = (
                f"split the devices over {shards} or more processes (--shard I/{shards}), "
                if shards > 1 and deviceDescriptors
                else ""
            )
            change = (
                f"{split}lower MaxClients or raise the limit (LimitNOFILE= in a systemd unit, "
                "ulimit -n; a hard limit only as root)"
            )
        raise DescriptorBudgetError(
            f"the configuration may need {needed} open descriptors ({devices} devices: "
            f"{deviceDescriptors}, {servers} server clients{': ' + shares if shares else ''}"
            f", {statusShare} status-page connections, {SPARE_DESCRIPTORS} spare) but the "
            f"process may open {limit}: {change}"
        )
    return needed


class _LimitedProtocol(ProtocolWrapper, TimeoutMixin):
    """
    One connection: dropped after C{idleTimeout} seconds without data from the client.  Its
    protocol tells it (L{requestReceived}, L{requestAnswered}) when its client has sent a whole
    request and when that was answered; C{usage} is its protocol's (a L{_stream.Usage}), if any.
    """

    factory: ConnectionLimiter
    #: its client sent a whole request (or was answered): not half-open any more
    proven = False
    #: a request of its client is being answered
    busy = False

    def connectionMade(self) -> None:
        self.callLater = self.factory.clock.callLater  # type: ignore[method-assign,assignment]
        self.setTimeout(self.factory.idleTimeout)
        super().connectionMade()

    def write(self, data: bytes) -> None:
        self.factory.answered(self)
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.factory.answered(self)
        super().writeSequence(data)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self.factory.active(self)
        super().dataReceived(data)

    def requestReceived(self) -> None:
        """Its client sent a whole request: it is served, not evicted before half-open ones."""
        self.busy = True
        self.factory.answered(self)

    def requestAnswered(self) -> None:
        """Its request was answered (it waits for the next)."""
        self.busy = False

    def used(self) -> float:
        """The rendering its protocol used lately (0: unknown)."""
        usage = getattr(self.wrappedProtocol, "usage", None)
        at = getattr(usage, "at", None)
        return float(at(self.factory.clock.seconds())) if callable(at) else 0.0

    def timeoutConnection(self) -> None:
        self.factory.idleDropped += 1
        self.abort()

    def abort(self) -> None:
        transport = self.transport
        abort = getattr(transport, "abortConnection", None)
        if callable(abort):
            abort()
        elif transport is not None:
            transport.loseConnection()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.setTimeout(None)
        super().connectionLost(reason)


class ConnectionLimiter(WrappingFactory):
    """
    Wraps a server factory: at most C{maxConnections} connections at once, each dropped after
    C{idleTimeout} seconds without data from its client.

    At the limit a newcomer takes the place of: a connection whose client has not sent a whole
    request (half-open: connected, trickling), the least recently active first; else one waiting
    between requests, the least recently active first; else, of those being answered, the one
    whose rendering cost the most lately.  So a crowd of idle, trickling or connect-and-close
    clients cannot keep out a client that sends its request, and a client looping on costly
    pages goes before one that asks little.  (The status port accepts a bounded batch per reactor
    turn, L{twisted_ch.service._web.STATUS_ACCEPTS_PER_TURN}: a newcomer's request is read before
    a storm's next batch can evict it.)  Evictions are logged summarised.
    """

    protocol = _LimitedProtocol
    noisy = False

    def __init__(
        self,
        wrappedFactory: Any,
        maxConnections: int = STATUS_MAX_CONNECTIONS,
        idleTimeout: float = STATUS_IDLE_TIMEOUT,
        clock: IReactorTime | None = None,
        name: str = "status page",
    ) -> None:
        super().__init__(wrappedFactory)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.clock: IReactorTime = clock
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.name = name
        self.evicted = 0
        self.idleDropped = 0
        #: connections not proven (no whole request yet), oldest first; then the proven ones,
        #: least recently active first
        self._halfOpen: OrderedDict[int, Any] = OrderedDict()
        self._byActivity: OrderedDict[int, Any] = OrderedDict()
        #: connections being answered that close once answered (evicted gently)
        self._closing: set[int] = set()
        self._summary = Summarizer(clock)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._byActivity) + len(self._halfOpen)

    def active(self, protocol: _LimitedProtocol) -> None:
        """C{protocol}'s client sent data: it is the most recently active."""
        for connections in (self._halfOpen, self._byActivity):
            if id(protocol) in connections:
                connections.move_to_end(id(protocol))

    def answered(self, protocol: _LimitedProtocol) -> None:
        """C{protocol} sent a whole request or was written to: it is no longer half-open."""
        protocol.proven = True
        if id(protocol) in self._halfOpen:
            self._byActivity[id(protocol)] = self._halfOpen.pop(id(protocol))

    def _victim(self, closing: bool = True) -> Any:
        if self._halfOpen:
            return next(iter(self._halfOpen.values()))
        waiting = [p for p in self._byActivity.values() if not p.busy]
        if waiting:
            return waiting[0]
        busy = [p for p in self._byActivity.values() if closing or id(p) not in self._closing]
        return max(busy, key=lambda p: p.used()) if busy else None

    def _evict(self) -> None:
        hard = self.connections >= 2 * self.maxConnections  # STATUS_MAX_HELD by default
        victim = self._victim(closing=hard)
        if victim is None:
            return
        if victim.busy and not hard:
            # being answered: it closes once answered (its work is not thrown away, nor does
            # its client's reconnecting throw away another's), and the newcomer is let in
            self._closing.add(id(victim))
            close = getattr(victim.wrappedProtocol, "closeWhenAnswered", None)
            if callable(close):
                close()
            return
        self._halfOpen.pop(id(victim), None)
        self._byActivity.pop(id(victim), None)
        self.evicted += 1
        self._summary.emit(
            log,
            "evicted",
            LogLevel.warn,
            "{name}: {limit} connections open; the least recently active one was dropped for "
            "a new client (half-open ones first, the costliest of those answered last)",
            name=self.name,
            limit=self.maxConnections,
        )
        victim.abort()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        while self.connections - len(self._closing) >= self.maxConnections:
            before = (self.connections, len(self._closing))
            self._evict()
            if (self.connections, len(self._closing)) == before:
                break
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            self._halfOpen[id(protocol)] = protocol
        return protocol

    def stopFactory(self) -> None:
        """Not listening any more: log the evictions not yet told, and leave no timer."""
        self._summary.stop()
        super().stopFactory()

    def unregisterProtocol(self, p: Any) -> None:
        self._closing.discard(id(p))
        self._halfOpen.pop(id(p), None)
        self._byActivity.pop(id(p), None)
        super().unregisterProtocol(p)


class ClientBudget:
    """
    Rendering time per client: each client (a hashable key, its address) may use C{rate}
    seconds of rendering per second, C{burst} at once, and each of its connections
    C{connectionBudget} seconds lately.  A connection past its budget, or past its client's
    unless it is fresh (used under L{STATUS_FRESH_CONNECTION} lately), is refused the pages
    whose last render took C{cheap} seconds or more (a page never rendered is allowed);
    cheap ones (a reused document) are always served.  At most C{maxClients} are remembered.
    """

    def __init__(
        self,
        clock: IReactorTime,
        rate: float = STATUS_BUDGET_RATE,
        burst: float = STATUS_BUDGET_BURST,
        cheap: float = STATUS_CHEAP_RENDER,
        maxClients: int = 1024,
        connectionBudget: float = STATUS_CONNECTION_BUDGET,
    ) -> None:
        self.clock = clock
        self.connectionBudget = connectionBudget
        self.rate = rate
        self.burst = burst
        self.cheap = cheap
        self.maxClients = maxClients
        #: per client: (seconds left, when counted)
        self._left: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        #: per page: the seconds its last render took
        self._cost: OrderedDict[bytes, float] = OrderedDict()
        self.refused = 0

    def _now(self, client: Hashable) -> float:
        now = self.clock.seconds()
        left, then = self._left.get(client, (self.burst, now))
        return min(self.burst, left + (now - then) * self.rate)

    def allows(self, client: Hashable, page: bytes, connectionUsed: float = 0.0) -> bool:
        """
        Whether C{client} may have C{page} rendered now, on a connection that used
        C{connectionUsed} seconds of rendering lately (counted in L{refused} if not).
        """
        if self._cost.get(page, 0.0) < self.cheap:
            return True
        if connectionUsed <= self.connectionBudget and (
            self._now(client) > 0 or connectionUsed < STATUS_FRESH_CONNECTION
        ):
            return True
        self.refused += 1
        return False

    def charge(self, client: Hashable, page: bytes, seconds: float) -> None:
        """C{page}, rendered for C{client}, took C{seconds}."""
        self.cost(page, seconds)
        self.spend(client, seconds)

    def cost(self, page: bytes, seconds: float) -> None:
        """C{page}'s last render took C{seconds} in all."""
        self._cost[page] = seconds
        self._cost.move_to_end(page)
        while len(self._cost) > self.maxClients:
            self._cost.popitem(last=False)

    def spend(self, client: Hashable, seconds: float) -> None:
        """C{client} used C{seconds} of rendering (a render, or a step of one)."""
        self._left[client] = (self._now(client) - seconds, self.clock.seconds())
        self._left.move_to_end(client)
        while len(self._left) > self.maxClients:
            self._left.popitem(last=False)
