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
address has a budget of rendering time (L{ClientBudget}): past it, its costly requests are
answered 429 until it refills.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from twisted_ch._summary import Summarizer
from twisted_ch._version import __version__
from twisted_ch.service._config import isWildcardAddress
from twisted_ch.service._dashboard import DashboardPage, addDashboard
from twisted_ch.service._limits import (
    STATUS_HEADER_DEADLINE,
    STATUS_MAX_BUFFERED,
    STATUS_MAX_PIPELINED,
    ClientBudget,
    ConnectionLimiter,
    refuseToStart,
)
from twisted_ch.service._metrics import METRICS_CONTENT_TYPE, metricsText
from twisted_ch.service._registry import Registry
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

#: A compact C{/status} document (what every open dashboard fetches each second) that took t
#: seconds to build is served again for STATUS_REUSE x t seconds: however many dashboards are
#: open, building it takes at most about a tenth of the reactor (at 10,000 devices a build takes
#: 0.17 s, so a document is at most 2 s old; for a room's devices, well under a millisecond).
STATUS_REUSE = 10.0


class _JSONStatus(Resource):
    isLeaf = True

    def __init__(self, registry: Registry, timer: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.registry = registry
        self._timer = timer
        #: the last compact document and until when (L{timer}) it is served again
        self._compact: tuple[float, bytes] | None = None

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:  # /status/anything: no such page
            return _notFound(request)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        # ?compact=1 (what the dashboard polls): one line, a third smaller
        compact = (request.args or {}).get(b"compact", [b"0"])[-1] not in (b"", b"0")
        if not compact:
            return self.registry.statusJSON().encode("utf-8")
        started = self._timer()
        kept = self._compact
        if kept is not None and started < kept[0]:
            return kept[1]
        body = self.registry.statusJSON(compact=True).encode("utf-8")
        ended = self._timer()
        self._compact = (ended + STATUS_REUSE * (ended - started), body)
        return body


def _notFound(request: Request) -> bytes:
    request.setResponseCode(404)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"no such page\n"


class _Metrics(Resource):
    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        if request.postpath and request.postpath != [b""]:
            return _notFound(request)
        request.setHeader(b"content-type", METRICS_CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        return metricsText(self.registry)


class _Index(Resource):
    """
    C{/}: the dashboard for browsers; a plain-text list for clients that do not ask for HTML
    (C{curl}).
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

    def render_GET(self, request: Request) -> bytes:
        accept = (request.getHeader(b"accept") or b"").lower()
        request.setHeader(b"vary", b"accept")
        if b"text/html" in accept or b"application/xhtml" in accept:
            return self.page.render_GET(request)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        lines = [f"chandler {__version__}: {len(self.registry)} watched", ""]
        for row in self.registry.iterRows():
            name = _oneLine(str(row["name"]))  # a program's handler may be named anything
            health = row.get("health", "")
            lines.append(f"{name:<24} {row['state']:<13} {health!s:<8} since {row['since']}")
        lines += ["", "/status   JSON per device", "/metrics  Prometheus text", ""]
        return "\n".join(lines).encode("utf-8")


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


def _hostOf(header: bytes) -> str:
    """The host part of a C{Host} header (or of an origin's authority), lower case."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8790
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        text = text.rsplit(":", 1)[0]
    return text.rstrip(".")


def namesThisMachine(header: bytes | None, names: Iterable[str] = ()) -> bool:
    """
    Whether a C{Host} header names this machine: an IP address literal, C{localhost} (or a
    name under C{.localhost}), this machine's host name or fully qualified name, or one of
    C{names} (the configured ones).  A request without a C{Host} header is not a browser's
    (a browser always sends one), so it is accepted.
    """
    if header is None:
        return True
    host = _hostOf(header)
    if not host:
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return True
    known = {socket.gethostname().lower(), socket.getfqdn().lower()}
    known.update(name.strip().lower().rstrip(".") for name in names)
    return host in known


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
    site: StatusSite

    def connectionMade(self) -> None:
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
        super().allContentReceived()

    def requestDone(self, request: HTTPRequest) -> None:
        if request != self.requests[0]:
            raise TypeError
        del self.requests[0]
        if not self.persistent:
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
        try:
            super().render(resrc)
        finally:
            site.budget.charge(_clientOf(self), _pageOf(self), site.timer() - started)


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
            if not self.budget.allows(_clientOf(request), _pageOf(request)):
                request.site = self
                request.setHeader(b"retry-after", b"1")
                self._summary.emit(
                    log,
                    "budget",
                    LogLevel.warn,
                    "status page: {client} used its rendering budget; its costly requests "
                    "are refused (429) until it refills",
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
        super().stopFactory()


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
            self.root.putChild(b"trace", TraceResource(trace, self.boundToLoopback, token))
        self.site = StatusSite(self.root, hosts, reactor)
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def boundToLoopback(self) -> bool:
        """Whether the page is listening on a loopback address (or a local socket) only."""
        return self.port is not None and isLoopback(self.port.getHost())

    def startService(self) -> None:
        from twisted.internet.endpoints import serverFromString

        endpoint = serverFromString(self.reactor, self.description)
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
