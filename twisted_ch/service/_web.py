# -*- test-case-name: tests.test_status_health -*-
"""
The status page's web resources: C{/status} (JSON per device), C{/metrics} (Prometheus text),
the dashboard (C{/}, see L{twisted_ch.service._dashboard}), and the service that serves them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from twisted_ch._version import __version__
from twisted_ch.service._config import isWildcardAddress
from twisted_ch.service._dashboard import DashboardPage, addDashboard
from twisted_ch.service._limits import ConnectionLimiter, refuseToStart
from twisted_ch.service._metrics import METRICS_CONTENT_TYPE, metricsText
from twisted_ch.service._registry import Registry
from twisted_ch.service._trace import TraceResource, WireTrace, isLoopback

__all__ = ["STATUS_REUSE", "StatusService", "statusResource"]

log = Logger(namespace="twisted_ch.status")

#: A compact C{/status} document (what every open dashboard fetches each second) that took t
#: seconds to build is served again for STATUS_REUSE x t seconds: however many dashboards are
#: open, building it takes at most about a tenth of the reactor (at 10,000 devices a build takes
#: 0.17 s, so a document is at most 2 s old; for a room's devices, well under a millisecond).
STATUS_REUSE = 10.0


class _JSONStatus(Resource):
    isLeaf = True

    def __init__(self, registry: Registry, timer: Callable[[], float] = time.monotonic) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
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
        super().__init__()  # type: ignore[no-untyped-call]
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
        super().__init__()  # type: ignore[no-untyped-call]
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
    from twisted_ch.service._panel import panelResource

    root = _Index(registry)
    root.putChild(b"status", _JSONStatus(registry))
    root.putChild(b"metrics", _Metrics(registry))
    root.putChild(b"panel", panelResource())  # the program's UIDevices (issue 14)
    addDashboard(root)
    return root


class _QuietSite(Site):
    """A Site that does not log every request (scrapers poll often)."""

    noisy = False

    def log(self, request: HTTPRequest) -> None:
        pass


class StatusService(Service):
    """
    Serves the status page on a server endpoint description (bound when the service starts).

    A port that cannot be bound raises at start: twistd then exits with the error.  The log
    names the address actually bound, and warns when it is every interface (C{0.0.0.0}, C{::}):
    the page is then reachable from the network.

    Other pages mount on L{root} (C{service.root.putChild(b"panel", resource)}).  With a
    L{WireTrace}, C{/trace} starts and reads wire traces (see L{TraceResource}): allowed when
    the port is bound to loopback or the request carries C{token}.
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        registry: Registry,
        trace: WireTrace | None = None,
        token: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.description = description
        self.registry = registry
        self.root = statusResource(registry)
        if trace is not None:
            self.root.putChild(b"trace", TraceResource(trace, self.boundToLoopback, token))
        self.site = _QuietSite(self.root)  # type: ignore[no-untyped-call]
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
        super().startService()  # type: ignore[no-untyped-call]
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
        super().stopService()  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        d = port.stopListening() if port is not None else None
        return d if isinstance(d, Deferred) else succeed(None)
