"""
The dashboard: C{GET /} on the status port, a page a person reads instead of C{/status}.

Every device and server with its state, health, since, misses, last error and probe, colour-coded
by health, the worst first; filters by state or health and by name; a summary line; per device an
SVG timeline of the last hour's transitions.  The page polls C{/status} (every second; a fleet of
thousands less often) and redraws without a reload.  It needs nothing from the network: its
script and style (files in C{static/}) are served from the status port (C{/dashboard.js},
C{/dashboard.css}), and a
Content-Security-Policy allows nothing else.  Device strings (names, errors, probe options) only
ever reach the page as text nodes and attribute values, never as markup.
"""

from __future__ import annotations

from html import escape
from importlib import resources

from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch._version import __version__

__all__ = ["DashboardPage", "addDashboard"]

#: What the dashboard page may load: its own script, style and /status; nothing else.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> str:
    """One of the dashboard's files (C{twisted_ch/service/static/})."""
    return resources.files("twisted_ch.service").joinpath("static", name).read_text("utf-8")


class _Static(Resource):
    isLeaf = True

    def __init__(self, body: str, contentType: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.body = body.encode("utf-8")
        self.contentType = contentType

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return self.body


class DashboardPage(_Static):
    """The dashboard's HTML (the same for everyone: the data comes from C{/status})."""

    def __init__(self) -> None:
        page = _static("dashboard.html").replace("{version}", escape(__version__))
        super().__init__(page, b"text/html; charset=utf-8")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return super().render_GET(request)


def addDashboard(root: Resource) -> None:
    """Serve the dashboard's script and style under C{root} (the page itself is C{root}'s)."""
    root.putChild(
        b"dashboard.js", _Static(_static("dashboard.js"), b"text/javascript; charset=utf-8")
    )
    root.putChild(b"dashboard.css", _Static(_static("dashboard.css"), b"text/css; charset=utf-8"))
