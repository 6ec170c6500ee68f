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

from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._trace import WireTrace, linkFinder
from twisted_ch.service._web import StatusService, namesThisMachine


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
