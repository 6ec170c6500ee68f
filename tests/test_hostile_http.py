"""
The status port against hostile HTTP clients (issue 19): DNS rebinding (a Host that does not name
this machine), pipelining, slowloris, connect/close loops and clients that loop on /status.
Real loopback sockets; a headless Chromium with a host-resolver rule for the rebinding case.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from browser import CHROMEDRIVER, CHROMIUM
from twisted.internet import reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from twisted_ch.service._limits import STATUS_MAX_PIPELINED
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._trace import WireTrace, linkFinder
from twisted_ch.service._web import (
    StatusChannel,
    StatusService,
    StatusSite,
    heldBytes,
    namesThisMachine,
)


class Calm:
    ConnectionStatus = "Connected"

    def stats(self) -> dict[str, object]:
        return {"status": "Connected", "since": 0.0, "polls": 5, "misses": 0, "lastError": None}


def exchange(port: int, data: bytes, limit: int = 1 << 22) -> bytes:
    """Send C{data} to 127.0.0.1:C{port} and read until the server closes (a blocking call)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while sum(map(len, chunks)) < limit:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def get(port: int, path: str, host: str, method: str = "GET", extra: str = "") -> tuple[int, bytes]:
    """One request with the given C{Host} (the connection closed after it); status and body."""
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n"
    if method == "POST":
        request += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"
    answer = exchange(port, (request + "\r\n").encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_a_host_names_this_machine_if_it_is_an_address_localhost_or_a_configured_name() -> None:
    own = socket.gethostname()
    for header in (
        b"127.0.0.1:8790",
        b"[::1]:8790",
        b"localhost",
        b"LOCALHOST.:80",
        b"app.localhost:8790",
        own.encode(),
        b"10.0.0.7",
        b"panel.example:8790",
    ):
        assert namesThisMachine(header, ["Panel.Example"]), header
    assert namesThisMachine(None)  # not a browser's request
    for header in (
        b"evil.test",
        b"evil.test:8790",
        b"",
        b"127.0.0.1.evil.test",
        b"localhost.evil.test",
        b"panel.example.evil",
    ):
        assert not namesThisMachine(header, ["panel.example"]), header


@pytest.fixture
def status() -> Iterator[StatusService]:
    registry = Registry(clock=reactor)
    registry.add(Entry("projector", Calm(), "tcp:host=127.0.0.1:port=2"))
    trace = WireTrace(reactor, linkFinder(registry.entries))
    service = StatusService(
        reactor, "tcp:0:interface=127.0.0.1", registry, trace, hosts=["av.example"]
    )
    service.startService()
    try:
        yield service
    finally:
        service.stopService()
        registry.stopTracking()


def _port(service: StatusService) -> int:
    assert service.port is not None
    return int(service.port.getHost().port)


RESOURCES = [
    "/",
    "/status",
    "/status?compact=1",
    "/metrics",
    "/trace",
    "/panel/state",
    "/dashboard.js",
    "/nothing-here",
]


@pytest_twisted.inlineCallbacks
def test_every_resource_refuses_a_host_that_does_not_name_this_machine(
    status: StatusService,
) -> Any:
    port = _port(status)
    for path in RESOURCES:
        code, body = yield threads.deferToThread(get, port, path, f"evil.test:{port}")
        assert code == 403, path
        assert json.loads(body) == {"error": "refused: the Host header does not name this machine"}
        for host in (f"127.0.0.1:{port}", "localhost", f"av.example:{port}"):
            code, body = yield threads.deferToThread(get, port, path, host)
            assert code != 403, (path, host, body)
    code, body = yield threads.deferToThread(get, port, "/trace", f"evil.test:{port}", "POST")
    assert code == 403
    assert status.site.refused == len(RESOURCES) + 1


@pytest_twisted.inlineCallbacks
def test_a_post_from_another_origin_is_refused_before_any_resource(
    status: StatusService,
) -> Any:
    port = _port(status)
    host = f"127.0.0.1:{port}"
    for path in ("/trace", "/panel/action"):
        code, body = yield threads.deferToThread(
            get, port, path, host, "POST", "Origin: http://evil.test\r\n"
        )
        assert (code, json.loads(body)) == (
            403,
            {"error": "refused: a request from another origin"},
        )
    code, _ = yield threads.deferToThread(
        get, port, "/trace", host, "POST", f"Origin: http://{host}\r\n"
    )
    assert code == 400  # the trace's own answer (no device given): the site let it through


def rebindingBrowser() -> Any:
    """Headless Chromium where evil.test and av.example resolve to 127.0.0.1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        "--no-proxy-server",
        "--host-resolver-rules=MAP evil.test 127.0.0.1, MAP av.example 127.0.0.1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@pytest_twisted.inlineCallbacks
def test_a_page_from_a_rebound_name_reads_nothing_in_a_browser(status: StatusService) -> Any:
    port = _port(status)
    browser = yield threads.deferToThread(rebindingBrowser)
    try:

        def check() -> dict[str, Any]:
            # the attacker's page, served "from" evil.test (which resolves to 127.0.0.1): its
            # own-origin requests reach the status port with Host: evil.test
            browser.get(f"http://evil.test:{port}/")
            assert "does not name this machine" in browser.page_source
            script = """
                const done = arguments[arguments.length - 1];
                const paths = ["/status", "/metrics", "/panel/state", "/trace"];
                Promise.all(paths.map((p) => fetch(p).then(async (r) => [p, r.status,
                    await r.text()]))).then((all) => done(all),
                    (e) => done(String(e)));
            """
            answers = browser.execute_async_script(script)
            posted = browser.execute_async_script(
                """const done = arguments[arguments.length - 1];
                fetch("/trace", {method: "POST", body: "device=projector&minutes=1",
                    headers: {"content-type": "application/x-www-form-urlencoded"}})
                    .then((r) => done(r.status), (e) => done(String(e)));"""
            )
            # the configured name is served, in the same browser
            browser.get(f"http://av.example:{port}/status")
            configured = browser.find_element("tag name", "body").text
            return {"answers": answers, "posted": posted, "configured": configured}

        seen = yield threads.deferToThread(check)
    finally:
        yield threads.deferToThread(browser.quit)
    for path, code, text in seen["answers"]:
        assert code == 403 and "projector" not in text, (path, code, text)
    assert seen["posted"] == 403
    assert status.root.children[b"trace"].trace.describe() == {}  # type: ignore[attr-defined]
    assert "projector" in seen["configured"]


# -- pipelining (item 1)


class Counter(Resource):
    """A leaf that counts its renders and answers C{size} bytes."""

    isLeaf = True

    def __init__(self, size: int = 10) -> None:
        super().__init__()
        self.renders = 0
        self.size = size

    def render_GET(self, request: Any) -> bytes:
        self.renders += 1
        return b"x" * self.size


def channelOn(size: int = 10) -> tuple[Clock, Counter, StatusSite, Any, StringTransport]:
    clock = Clock()
    root = Resource()
    counter = Counter(size)
    root.putChild(b"count", counter)
    site = StatusSite(root, reactor=clock)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    channel.makeConnection(transport)
    return clock, counter, site, channel, transport


def turn(clock: Clock) -> None:
    """One reactor turn: the calls due now, not those they schedule (as a real reactor does)."""
    due = [c for c in clock.calls if c.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


REQUEST = b"GET /count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_pipelined_requests_are_answered_one_per_reactor_turn() -> None:
    clock, counter, site, channel, transport = channelOn()
    channel.dataReceived(REQUEST * 5)
    assert counter.renders == 1  # the other four wait for later turns
    for renders in range(2, 6):
        turn(clock)
        assert counter.renders == renders
    assert transport.value().count(b"HTTP/1.1 200") == 5
    turn(clock)
    assert all(c.getTime() > 0 for c in clock.getDelayedCalls())  # only timeouts wait
    assert not transport.disconnecting
    channel.dataReceived(REQUEST)  # one more, not pipelined: answered at once
    assert counter.renders == 6 and channel.pipelined == 0
    channel.dataReceived(REQUEST * 2)
    channel.connectionLost(Failure(ConnectionDone()))  # they wait for a turn: no timer left
    assert counter.renders == 6 and clock.getDelayedCalls() == []


def test_a_client_pipelining_too_deep_is_dropped() -> None:
    clock, counter, site, channel, transport = channelOn()
    channel.dataReceived(REQUEST * 300)  # 12 KB, as in the measurement
    for _ in range(300):
        if transport.disconnecting:
            break
        turn(clock)
    assert transport.disconnecting
    assert counter.renders == STATUS_MAX_PIPELINED + 1
    assert site.drops == 1


def test_nothing_more_is_rendered_while_the_client_does_not_read() -> None:
    clock, counter, site, channel, transport = channelOn()
    channel.dataReceived(REQUEST)
    channel.pauseProducing()  # the transport: its send buffer is full
    channel.dataReceived(REQUEST * 3)
    for _ in range(5):
        turn(clock)
    assert counter.renders == 1
    channel.resumeProducing()  # the client read
    turn(clock)
    assert counter.renders == 2
    turn(clock)
    turn(clock)
    assert counter.renders == 4


def test_a_client_sending_far_ahead_is_paused_then_dropped() -> None:
    clock, counter, site, channel, transport = channelOn()
    channel.dataReceived(REQUEST)
    channel.pauseProducing()
    channel.dataReceived(REQUEST * 1000)  # more than Twisted's eager read size: paused
    assert transport.producerState == "paused"
    channel.maxBuffered = 100_000
    channel.dataReceived(b"x" * 100_000)
    assert transport.disconnecting and site.drops == 1 and channel._dataBuffer == []


@pytest_twisted.inlineCallbacks
def test_a_client_that_pipelines_and_never_reads_holds_one_answer_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    from twisted.internet.task import deferLater

    root = Resource()
    counter = Counter(1 << 20)  # a 1 MB answer
    root.putChild(b"count", counter)
    site = StatusSite(root, reactor=reactor)
    monkeypatch.setattr(StatusChannel, "maxBuffered", 4 << 20)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        client.sendall(REQUEST * 100)  # 4 KB of requests for 100 MB of answers; never read
        seen = -1
        for _ in range(200):  # a bounded wait until rendering stops
            yield deferLater(reactor, 0.02, lambda: None)
            if counter.renders == seen and counter.renders > 0:
                break
            seen = counter.renders
        # rendering stopped once the kernel buffers were full: a few answers, not 100
        assert 1 <= counter.renders < 20, counter.renders
        channels = [
            p
            for p in reactor.getReaders()
            if isinstance(getattr(p, "protocol", None), StatusChannel)
        ]  # type: ignore[attr-defined]
        assert channels and all(heldBytes(c) <= 2 << 20 for c in channels)
    finally:
        client.close()
        yield port.stopListening()


# -- denial of the status page (item 4)


def limiterWith(clock: Clock, slots: int) -> tuple[Any, list[tuple[Any, StringTransport]]]:
    from twisted.internet.protocol import Factory, Protocol

    from twisted_ch.service._limits import ConnectionLimiter

    limiter = ConnectionLimiter(
        Factory.forProtocol(Protocol), maxConnections=slots, idleTimeout=30, clock=clock
    )
    limiter.doStart()
    return limiter, []


def connect(limiter: Any, opened: list[tuple[Any, StringTransport]]) -> tuple[Any, Any]:
    p = limiter.buildProtocol(IPv4Address("TCP", "127.0.0.1", 41000 + len(opened)))
    t = StringTransport()
    t.abortConnection = lambda t=t, p=p: (  # type: ignore[method-assign]
        setattr(t, "aborted", True),
        p.connectionLost(Failure(ConnectionDone())),
    )
    p.makeConnection(t)
    opened.append((p, t))
    return p, t


def test_a_client_that_was_answered_is_evicted_after_every_half_open_one() -> None:
    clock = Clock()
    limiter, opened = limiterWith(clock, 4)
    served, servedT = connect(limiter, opened)
    served.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    served.write(b"HTTP/1.1 200 OK\r\n\r\n")  # answered
    tricklers = [connect(limiter, opened) for _ in range(3)]
    for _ in range(20):  # connect/close loop newcomers, tricklers more active than the served
        for p, _t in tricklers:
            p.dataReceived(b"X")
        newcomer, _ = connect(limiter, opened)
        clock.advance(1)  # the surplus goes once the newcomer could send its request
        tricklers = tricklers[1:] + [(newcomer, _)]
    assert not getattr(servedT, "aborted", False)
    assert limiter.evicted == 20 and limiter.connections == 4
    # when every connection was answered, the least recently active goes
    for p, _t in tricklers:
        p.write(b"HTTP/1.1 200 OK\r\n\r\n")
    for p, _t in tricklers:
        p.dataReceived(b"GET")
    asking, askingT = connect(limiter, opened)
    asking.requestReceived()  # it sent a whole request within its grace
    clock.advance(1)
    assert getattr(servedT, "aborted", False) and not getattr(askingT, "aborted", False)
    limiter.doStop()


def test_a_client_trickling_its_request_is_dropped_at_the_header_deadline() -> None:
    from twisted_ch.service._limits import STATUS_HEADER_DEADLINE

    clock, counter, site, channel, transport = channelOn()
    for _ in range(int(STATUS_HEADER_DEADLINE) - 1):
        channel.dataReceived(b"X")  # slowloris: a byte a second, never a whole request
        clock.advance(1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting and site.drops == 1 and counter.renders == 0
    # a client that sent its request in time, then went quiet, is dropped at the deadline too
    clock, counter, site, channel, transport = channelOn()
    channel.dataReceived(REQUEST)
    turn(clock)
    clock.advance(STATUS_HEADER_DEADLINE - 0.5)
    channel.dataReceived(REQUEST)
    turn(clock)
    assert counter.renders == 2 and not transport.disconnecting
    clock.advance(STATUS_HEADER_DEADLINE)
    assert transport.disconnecting


def test_a_client_past_its_rendering_budget_is_refused_costly_pages_only() -> None:
    from twisted_ch.service._limits import STATUS_BUDGET_BURST, STATUS_BUDGET_RATE

    clock = Clock()
    now = [0.0]
    root = Resource()

    class Costly(Counter):
        def render_GET(self, request: Any) -> bytes:
            now[0] += 0.2  # 0.2 s a render
            return super().render_GET(request)

    costly, cheap = Costly(), Counter()
    root.putChild(b"count", costly)
    root.putChild(b"cheap", cheap)
    site = StatusSite(root, reactor=clock, timer=lambda: now[0])

    channels: dict[str, tuple[Any, StringTransport]] = {}

    def ask(path: bytes, host: str = "127.0.0.1") -> int:
        # one kept-alive connection per client: a fresh connection is served whatever its
        # client's budget (tests/test_status_port_dos.py), a busy one is held to it
        if host not in channels:
            channel = site.buildProtocol(IPv4Address("TCP", host, 40000))
            transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
            channel.makeConnection(transport)
            channels[host] = (channel, transport)
        channel, transport = channels[host]
        transport.clear()
        channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x.localhost\r\n\r\n")
        turn(clock)  # a kept-alive connection's next request is read in the next turn
        return int(transport.value().split(b" ", 2)[1])

    allowed = int(STATUS_BUDGET_BURST / 0.2) + 1  # until the budget is spent
    codes = [ask(b"/count") for _ in range(allowed + 3)]
    assert codes == [200] * allowed + [429] * 3
    assert [ask(b"/cheap") for _ in range(5)] == [200] * 5  # cheap pages: still served
    assert ask(b"/count", "127.0.0.2") == 200  # another client: its own budget
    clock.advance(0.2 / STATUS_BUDGET_RATE + 1)  # refilled
    assert ask(b"/count") == 200
    assert costly.renders == allowed + 2 and site.budget.refused == 3
