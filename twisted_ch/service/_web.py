# -*- test-case-name: tests.test_status_health -*-
# mypy: disable-error-code="no-untyped-call"
# (twisted.web.http.HTTPChannel is unannotated)
"""
The status page's web resources: C{/status} (JSON per device), C{/metrics} (Prometheus text),
the dashboard (C{/}, see L{twisted_ch.service._dashboard}), and the service that serves them.

Every request to the port, whatever its resource, is first checked by the site (L{StatusSite}):
a C{Host} header that names neither this machine nor a configured name is refused (403), so a
web page served from another name that resolves to 127.0.0.1 (DNS rebinding) reads nothing, and
a request that would change something (any method but C{GET}/C{HEAD}) from another origin is
refused before any resource sees it.  Refusals are logged summarised.

Each connection (L{StatusChannel}) has at most one request rendered per reactor turn, and
none while its client is not reading the answers; a client that pipelines more than
L{STATUS_MAX_PIPELINED} requests in a row, or whose connection holds more than
L{STATUS_MAX_BUFFERED} bytes, is dropped, and so is one that does not send a whole request
within L{STATUS_HEADER_DEADLINE} of connecting or of its last answer (slowloris).  Each client
address, and each connection, has a budget of rendering time (L{ClientBudget}): past it, its
costly requests are answered 429 until it refills.

The big pages (C{/status}, C{/metrics}, the text index) are rendered a step at a time by the
site's L{RenderQueue} and streamed, with the filters of L{StatusQuery}: no request holds the
reactor for more than a few milliseconds.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from twisted_ch._hosts import namesThisMachine
from twisted_ch._summary import Summarizer
from twisted_ch._version import __version__
from twisted_ch.service._actions import mountActions
from twisted_ch.service._config import isWildcardAddress
from twisted_ch.service._dashboard import DashboardPage, addDashboard
from twisted_ch.service._gzip import GzipKeeper, acceptsGzip, gunzipped
from twisted_ch.service._heap import HeapTrimmer
from twisted_ch.service._limits import (
    STATUS_HEADER_DEADLINE,
    STATUS_MAX_BUFFERED,
    STATUS_MAX_PIPELINED,
    ClientBudget,
    ConnectionLimiter,
    refuseToStart,
)
from twisted_ch.service._metrics import METRICS_CONTENT_TYPE, metricsPieces
from twisted_ch.service._query import QueryError, StatusQuery
from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Registry
from twisted_ch.service._stream import RenderQueue, Usage, streamBody
from twisted_ch.service._trace import TraceResource, WireTrace, isLoopback

__all__ = [
    "STATUS_REUSE",
    "StatusChannel",
    "StatusService",
    "StatusSite",
    "namesThisMachine",
    "statusResource",
]

log = Logger(namespace="twisted_ch.status")

#: A compact C{/status} document (what every open dashboard fetches) that took t seconds of
#: rendering is served again for STATUS_REUSE x t seconds: however many dashboards ask the same,
#: rendering it takes at most about a tenth of the reactor.
STATUS_REUSE = 10.0
#: Compact documents (one per distinct query) kept for reuse.
STATUS_REUSE_KEPT = 4


def _badQuery(request: Request, why: str) -> bytes:
    request.setResponseCode(400)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps({"error": why}).encode("utf-8") + b"\n"


def _encoded(pieces: Generator[str, None, str]) -> Generator[bytes, None, bytes]:
    """A stepped render's pieces in UTF-8."""
    while True:
        try:
            piece = next(pieces)
        except StopIteration as e:
            return str(e.value or "").encode("utf-8")
        yield piece.encode("utf-8")


class _JSONStatus(Resource):
    """
    C{/status}: the document of L{Registry.statusPieces}, streamed a step at a time (see
    L{twisted_ch.service._stream}), for the request's L{StatusQuery}.
    """

    isLeaf = True
    #: this resource reads ?room= and ?tag= itself (L{mountActions} need not wrap it)
    filtersRooms = True

    def __init__(self, registry: Registry, timer: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.registry = registry
        self._timer = timer
        #: per query (the request's URI): a compact document (gzipped) and until when it is
        #: served again
        self._kept: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        #: per kept document, the timer that lets it go
        self._expiries: dict[bytes, IDelayedCall] = {}

    def render_GET(self, request: Request) -> bytes | int:
        if request.postpath and request.postpath != [b""]:  # /status/anything: no such page
            return _notFound(request)
        try:
            query = StatusQuery.fromArgs(request.args)
        except QueryError as e:
            return _badQuery(request, str(e))
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        # ?compact=1 (what the dashboard polls): one line, a third smaller, reused a while
        compact = (request.args or {}).get(b"compact", [b"0"])[-1] not in (b"", b"0")
        if not compact:
            return streamBody(request, _encoded(self.registry.statusPieces(query, compact)))
        request.setHeader(b"vary", b"accept-encoding")
        key = bytes(request.uri)
        kept = self._kept.get(key)
        started = self._timer()
        if kept is not None and started < kept[0]:
            if acceptsGzip(request.getHeader(b"accept-encoding")):
                request.setHeader(b"content-encoding", b"gzip")
                return kept[1]
            return streamBody(request, gunzipped(kept[1]))
        pieces = _encoded(self.registry.statusPieces(query, compact))
        first: list[float] = []
        keeper = GzipKeeper()

        def keep(written: GzipKeeper, seconds: float) -> None:
            spent = seconds + first[0] if first else seconds
            # kept gzipped (a tenth of the 8 MB at 16,000 devices), compressed piece by piece
            self._kept[key] = (self._timer() + STATUS_REUSE * spent, written.finish())
            self._kept.move_to_end(key)
            while len(self._kept) > STATUS_REUSE_KEPT:
                self._cancelExpiry(self._kept.popitem(last=False)[0])
            # let it go once it is no longer served (8 MB at 16,000 devices): not kept until
            # the next request of that query, which may never come
            self._cancelExpiry(key)
            self._expiries[key] = self.registry.clock.callLater(
                STATUS_REUSE * spent, self._expire, key
            )

        body = streamBody(request, pieces, onDone=keep, kept=keeper)
        first.append(self._timer() - started)
        if isinstance(body, bytes):  # one step: done already
            keeper.append(body)
            keep(keeper, 0.0)
        return body

    def _expire(self, key: bytes) -> None:
        self._expiries.pop(key, None)
        self._kept.pop(key, None)

    def _cancelExpiry(self, key: bytes) -> None:
        call = self._expiries.pop(key, None)
        if call is not None and call.active():
            call.cancel()

    def stop(self) -> None:
        """Let every kept document go, and leave no timer (the site stopped)."""
        for key in list(self._expiries):
            self._cancelExpiry(key)
        self._kept.clear()


def _notFound(request: Request) -> bytes:
    request.setResponseCode(404)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"no such page\n"


class _Metrics(Resource):
    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes | int:
        if request.postpath and request.postpath != [b""]:
            return _notFound(request)
        request.setHeader(b"content-type", METRICS_CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        return streamBody(request, metricsPieces(self.registry))


class _Index(Resource):
    """
    C{/}: the dashboard for browsers; a plain-text list for clients that do not ask for HTML
    (C{curl}), streamed, with the filters of C{/status} (L{StatusQuery}).
    """

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry
        self.page = DashboardPage()

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"":
            return self
        from twisted.web.pages import notFound

        return notFound()

    def render_GET(self, request: Request) -> bytes | int:
        accept = (request.getHeader(b"accept") or b"").lower()
        request.setHeader(b"vary", b"accept")
        if b"text/html" in accept or b"application/xhtml" in accept:
            return self.page.render_GET(request)
        try:
            query = StatusQuery.fromArgs(request.args)
        except QueryError as e:
            return _badQuery(request, str(e))
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return streamBody(request, _encoded(self._lines(query)))

    def _lines(
        self, query: StatusQuery, step: int = STATUS_ROWS_PER_STEP
    ) -> Generator[str, None, str]:
        registry = self.registry
        entries = [e for e in registry.entries() if query.covers(e)]
        lines: list[str] = [f"chandler {__version__}: {len(entries)} watched\n\n"]
        matched = 0
        for done, entry in enumerate(entries, 1):
            row = registry.rowOf(entry)
            if query.lists(row):
                if query.inPage(matched) or row["kind"] != "device":
                    name = _oneLine(str(row["name"]))  # a program's handler may be named anything
                    health = row.get("health", "")
                    lines.append(
                        f"{name:<24} {row['state']:<13} {health!s:<8} since {row['since']}\n"
                    )
                matched += row["kind"] == "device"
            if done % step == 0:
                yield "".join(lines)
                lines = []
        more = query.nextOffset(matched)
        if more is not None:
            lines.append(f"... {matched - more} more: ?offset={more}\n")
        lines += ["\n/status   JSON per device\n/metrics  Prometheus text\n"]
        return "".join(lines)


def _oneLine(text: str) -> str:
    """C{text} with control characters escaped (a name with a newline stays one row)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def statusResource(registry: Registry) -> Resource:
    """C{/} (the dashboard, or a text summary), C{/status}, C{/metrics} and C{/panel/}."""
    from twisted_ch.panel._web import panelResource

    root = _Index(registry)
    root.putChild(b"status", _JSONStatus(registry))
    root.putChild(b"metrics", _Metrics(registry))
    root.putChild(b"panel", panelResource())  # the program's UIDevices (issue 14)
    addDashboard(root)
    return root


#: Methods that only read: the others are refused from another origin at the site.
_READING_METHODS = frozenset((b"GET", b"HEAD", b"OPTIONS"))


class _Refused(Resource):
    """A refusal: C{code} and C{{"error": "refused: why"}}, whatever the method."""

    isLeaf = True

    def __init__(self, code: int, why: str) -> None:
        super().__init__()
        self.code = code
        self.why = why

    def render(self, request: Request) -> bytes:
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps({"error": f"refused: {self.why}"}).encode("utf-8") + b"\n"


def heldBytes(transport: object) -> int:
    """Bytes written to C{transport} (or the transport it wraps) and not yet sent (0: unknown)."""
    for _ in range(4):
        buffer = getattr(transport, "dataBuffer", None)
        if isinstance(buffer, bytes | memoryview):
            offset = getattr(transport, "offset", 0)
            tempLen = getattr(transport, "_tempDataLen", 0)
            return len(buffer) - int(offset) + int(tempLen)
        transport = getattr(transport, "transport", None)
        if transport is None:
            break
    return 0


class StatusChannel(HTTPChannel):
    """
    An HTTP/1.1 channel that renders at most one request per reactor turn, none while its
    client does not read the answers, and is dropped when its client pipelines more than
    C{maxPipelined} requests in a row or it holds more than C{maxBuffered} bytes.

    (Twisted's channel answers every pipelined request it holds at once, in one turn, however
    many there are and whether or not the client reads: 300 pipelined C{GET /status} held the
    reactor for seconds.)
    """

    maxPipelined = STATUS_MAX_PIPELINED
    maxBuffered = STATUS_MAX_BUFFERED
    headerDeadline = STATUS_HEADER_DEADLINE
    _deadline: Any = None
    #: requests answered in a row that the client had sent ahead of the previous answer
    pipelined = 0
    _next: Any = None
    _whenWritable = False
    _closeWhenAnswered = False
    site: StatusSite

    def closeWhenAnswered(self) -> None:
        """Close once the request being answered is (its connection was evicted)."""
        self._closeWhenAnswered = True
        if not self.requests:
            self.loseConnection()

    def connectionMade(self) -> None:
        #: the rendering this connection used lately (streamed renders take turns by it)
        self.usage = Usage()
        super().connectionMade()
        self._startDeadline()

    def _startDeadline(self) -> None:
        self._stopDeadline()
        self._deadline = self.callLater(self.headerDeadline, self._late)

    def _stopDeadline(self) -> None:
        pending, self._deadline = self._deadline, None
        if pending is not None and pending.active():
            pending.cancel()

    def _late(self) -> None:
        self._deadline = None
        self._drop(f"its client did not send a whole request within {self.headerDeadline:g} s")

    def allContentReceived(self) -> None:
        self._stopDeadline()
        told = getattr(self.transport, "requestReceived", None)  # a ConnectionLimiter's
        if callable(told):
            told()
        super().allContentReceived()

    def requestDone(self, request: HTTPRequest) -> None:
        if request != self.requests[0]:
            raise TypeError
        del self.requests[0]
        told = getattr(self.transport, "requestAnswered", None)
        if callable(told):
            told()
        if not self.persistent or self._closeWhenAnswered:
            self.loseConnection()
            return
        if heldBytes(self.transport) > self.maxBuffered:
            self._drop(f"its client does not read the answers ({self.maxBuffered} bytes held)")
            return
        # still "handling": data arriving now is kept, and the next request waits for a later
        # turn (and, if the client does not read, for the answers to be sent)
        self._next = self.callLater(0, self._nextRequest)

    def _nextRequest(self) -> None:
        self._next = None
        if self.transport is None or getattr(self.transport, "disconnecting", False):
            return
        if self._waitingForTransport:
            self._whenWritable = True
            return
        # data already here was sent before the last answer: a request pipelined
        self.pipelined = self.pipelined + 1 if any(self._dataBuffer) else 0
        if self.pipelined > self.maxPipelined:
            self._drop(f"its client pipelined more than {self.maxPipelined} requests")
            return
        self._handlingRequest = False
        self._startDeadline()
        self._networkProducer.resumeProducing()
        if self._savedTimeOut:
            self.setTimeout(self._savedTimeOut)
        data = b"".join(self._dataBuffer)
        self._dataBuffer = []
        self.setLineMode(data)

    def resumeProducing(self) -> None:
        super().resumeProducing()
        if self._whenWritable and self._next is None:
            self._whenWritable = False
            self._next = self.callLater(0, self._nextRequest)

    def rawDataReceived(self, data: bytes) -> None:
        if self._handlingRequest:
            self._dataBuffer.append(data)
            held = sum(map(len, self._dataBuffer))
            if held > self.maxBuffered:
                self._drop(f"its client sent more than {self.maxBuffered} bytes ahead")
            elif held > self._optimisticEagerReadSize:
                self._networkProducer.pauseProducing()  # even while the answers wait to be sent
            return
        super().rawDataReceived(data)

    def _drop(self, why: str) -> None:
        self._dataBuffer = []
        site = getattr(self, "site", None)
        if isinstance(site, StatusSite):
            site.dropped(self, why)
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            (abort if callable(abort) else transport.loseConnection)()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._stopDeadline()
        pending, self._next = self._next, None
        if pending is not None and pending.active():
            pending.cancel()
        super().connectionLost(reason)


class _BudgetedRequest(Request):
    """A request whose rendering time is charged to its client's budget (L{StatusSite})."""

    def render(self, resrc: IResource) -> None:
        site = self.site
        if not isinstance(site, StatusSite) or isinstance(resrc, _Refused):
            super().render(resrc)
            return
        started = site.timer()
        usage = getattr(self.channel, "usage", None)  # the channel is gone once it finished
        try:
            super().render(resrc)
        finally:
            spent = site.timer() - started
            client, page = _clientOf(self), _pageOf(self)
            if getattr(self, "streamed", False):  # the rest is charged step by step
                site.budget.spend(client, spent)
                self._chargeSteps(site, client, page, spent)
            else:
                site.budget.charge(client, page, spent)
                if isinstance(usage, Usage):  # the connection used it too: not fresh any more
                    usage.add(spent, site.reactor.seconds())

    def _chargeSteps(self, site: StatusSite, client: str, page: bytes, spent: float) -> None:
        total = [spent]

        def step(seconds: float) -> None:
            total[0] += seconds
            site.budget.spend(client, seconds)

        def done(_: object) -> None:
            site.budget.cost(page, total[0])

        self.onStep = step
        self.notifyFinish().addCallback(done).addErrback(lambda _: None)


def _clientOf(request: Request) -> str:
    return str(getattr(request.getClientAddress(), "host", "?"))


def _pageOf(request: Request) -> bytes:
    return bytes(request.uri[:256])


class StatusSite(Site):
    """
    The status port's site: checks every request's C{Host} (L{namesThisMachine}) and, for a
    request that changes something, its C{Origin}, before any resource sees it; does not log
    every request (scrapers poll often).

    @ivar hosts: the configured names that also name this machine (besides its own).
    @ivar refused: requests refused by these checks.
    @ivar drops: connections dropped by their L{StatusChannel}.
    @ivar budget: each client's rendering budget (L{ClientBudget}); C{timer} times renders.
    """

    noisy = False
    protocol = StatusChannel  # type: ignore[assignment]
    requestFactory = _BudgetedRequest

    def __init__(
        self,
        resource: IResource,
        hosts: Iterable[str] = (),
        reactor: Any = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(resource, reactor=reactor)
        self.hosts = tuple(hosts)
        self.timer = timer
        self.budget = ClientBudget(self.reactor)
        #: gives the heap's free pages back after big pages (see L{twisted_ch.service._heap})
        self.heap = HeapTrimmer(self.reactor)
        #: streamed renders (C{/status}, C{/metrics}, the text index), a step per turn
        self.renders = RenderQueue(self.reactor, timer, heap=self.heap)
        self.refused = 0
        self.drops = 0
        self._summary = Summarizer(reactor)

    def dropped(self, channel: StatusChannel, why: str) -> None:
        """C{channel} is dropped because C{why}: count and log it (summarised)."""
        self.drops += 1
        peer = channel.transport.getPeer() if channel.transport is not None else None
        self._summary.emit(
            log,
            ("dropped", why),
            LogLevel.warn,
            "status page: a connection from {client} dropped: {why}",
            client=str(getattr(peer, "host", peer)),
            why=why,
        )

    def log(self, request: HTTPRequest) -> None:
        pass

    def refusal(self, request: Request) -> str | None:
        """Why the site refuses C{request} (None: it is served)."""
        host = request.getHeader(b"host")
        if not namesThisMachine(host, self.hosts):
            return "the Host header does not name this machine"
        if request.method not in _READING_METHODS:
            origin = request.getHeader(b"origin")
            if origin is not None:
                if host is None or origin.split(b"://", 1)[-1].rstrip(b"/").lower() != (
                    host.strip().lower()
                ):
                    return "a request from another origin"
        return None

    def getResourceFor(self, request: Request) -> IResource:
        why = self.refusal(request)
        if why is None:
            usage = getattr(request.channel, "usage", None)
            used = usage.at(self.reactor.seconds()) if isinstance(usage, Usage) else 0.0
            if not self.budget.allows(_clientOf(request), _pageOf(request), used):
                request.site = self
                request.setHeader(b"retry-after", b"1")
                self._summary.emit(
                    log,
                    "budget",
                    LogLevel.warn,
                    "status page: {client} (or one of its connections) used its rendering "
                    "budget; its costly requests are refused (429) until it refills",
                    client=_clientOf(request),
                )
                return _Refused(429, "this client used its rendering budget: retry later")
            resource: IResource = super().getResourceFor(request)
            return resource
        request.site = self
        self.refused += 1
        self._summary.emit(
            log,
            ("refused", why),
            LogLevel.warn,
            "status page: a request from {client} refused: {why}",
            client=str(getattr(request.getClientAddress(), "host", "?")),
            why=why,
        )
        return _Refused(403, why)

    def stopFactory(self) -> None:
        """Not listening any more: log the refusals not yet told, and leave no timer."""
        self._summary.stop()
        self.heap.stop()
        status = getattr(self.resource, "children", {}).get(b"status")
        if isinstance(status, _JSONStatus):
            status.stop()
        super().stopFactory()


class _TraceResource(TraceResource):
    """L{TraceResource} whose refused C{POST}s are logged summarised by the site (a web page can
    send thousands: one line, then a count per period)."""

    def render_POST(self, request: Request) -> bytes:
        refused = self._refusal(request)
        if refused is None:
            return super().render_POST(request)
        site = getattr(request, "site", None)
        if isinstance(site, StatusSite):
            site.refused += 1
            site._summary.emit(
                log,
                ("trace refused", refused),
                LogLevel.warn,
                "wire trace request from {client} refused: {why}",
                client=_clientOf(request),
                why=refused,
            )
        return self._answer(request, 403, {"error": f"refused: {refused}"})


#: The status port's listen backlog (unless its description gives one): a crowd reconnecting
#: at once (evicted tricklers) must not fill the queue and make a client's connect wait seconds.
STATUS_BACKLOG = 1024


#: Connections the status port accepts per reactor turn (Twisted's port grows its batch without
#: bound under a connection storm: newcomers accepted in one batch would evict each other before
#: any of them could be read, the dashboard among them).
STATUS_ACCEPTS_PER_TURN = 16


def _clampAccepts(port: object, most: int) -> None:
    """Make a listening TCP C{port} accept at most C{most} connections per reactor turn."""
    original = getattr(port, "doRead", None)
    if not callable(original) or not hasattr(port, "numberAccepts"):
        return

    def doRead() -> object:
        if getattr(port, "numberAccepts", 0) > most:
            port.numberAccepts = most
        return original()

    port.doRead = doRead  # type: ignore[attr-defined]


def _withBacklog(description: str) -> str:
    """A TCP server description with L{STATUS_BACKLOG} when it gives no backlog."""
    kind = description.split(":", 1)[0].strip().lower()
    if kind in ("tcp", "tcp6") and "backlog=" not in description:
        return f"{description}:backlog={STATUS_BACKLOG}"
    return description


class StatusService(Service):
    """
    Serves the status page on a server endpoint description (bound when the service starts).

    A port that cannot be bound raises at start: twistd then exits with the error.  The log
    names the address actually bound, and warns when it is every interface (C{0.0.0.0}, C{::}):
    the page is then reachable from the network.

    Other pages mount on L{root} (C{service.root.putChild(b"panel", resource)}).  With a
    L{WireTrace}, C{/trace} starts and reads wire traces (see L{TraceResource}): allowed when
    the port is bound to loopback or the request carries C{token}.  C{hosts}: names besides
    this machine's own that a request's C{Host} may give (see L{StatusSite}).
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        registry: Registry,
        trace: WireTrace | None = None,
        token: str | None = None,
        hosts: Iterable[str] = (),
    ) -> None:
        self.reactor = reactor
        self.description = description
        self.registry = registry
        self.root = statusResource(registry)
        if trace is not None:
            self.root.putChild(b"trace", _TraceResource(trace, self.boundToLoopback, token))
        mountActions(self.root, registry, self.boundToLoopback, token)  # /actions, ?room= ?tag=
        self.site = StatusSite(self.root, hosts, reactor)
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def boundToLoopback(self) -> bool:
        """Whether the page is listening on a loopback address (or a local socket) only."""
        return self.port is not None and isLoopback(self.port.getHost())

    def startService(self) -> None:
        from twisted.internet.endpoints import serverFromString

        endpoint = serverFromString(self.reactor, _withBacklog(self.description))
        result: list[Any] = []
        # at most STATUS_MAX_CONNECTIONS at once, idle ones dropped (twisted_ch.service._limits)
        self.limiter = ConnectionLimiter(self.site, clock=self.reactor)
        endpoint.listen(self.limiter).addBoth(result.append)
        if not result:
            raise RuntimeError(f"status endpoint {self.description!r} did not listen at once")
        outcome = result[0]
        if not IListeningPort.providedBy(outcome):
            refuseToStart(f"the status page cannot listen: {outcome.getErrorMessage()}")
        self.port = outcome
        _clampAccepts(outcome, STATUS_ACCEPTS_PER_TURN)
        super().startService()
        address: Any = outcome.getHost()
        host = getattr(address, "host", None)
        if isinstance(host, str):
            bound = host or "0.0.0.0"
            shown = f"[{bound}]" if ":" in bound else bound
            self.url = f"http://{shown}:{address.port}/"
        else:  # a UNIX socket: its path
            name = getattr(address, "name", None)
            bound = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            self.url = "http://localhost/"
            log.info(
                "status page on the UNIX socket {path} (curl --unix-socket {path} "
                "http://localhost/status)",
                path=bound,
                boundAddress=bound,
            )
            return
        log.info(
            "status page at {url}status (metrics at {url}metrics)",
            url=self.url,
            statusURL=f"{self.url}status",
            boundAddress=bound,
        )
        if isinstance(host, str) and isWildcardAddress(host):
            log.warn(
                "the status page is reachable from the network: it listens on {address} (every "
                "interface) port {port}; give an interface such as 127.0.0.1 to keep it local",
                address=bound,
                port=address.port,
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        port, self.port = self.port, None
        d = port.stopListening() if port is not None else None
        return d if isinstance(d, Deferred) else succeed(None)
