"""
The status page against denial (issue 19 item 4), over real loopback sockets, every client on
127.0.0.1 like the dashboard: trickling (slowloris) sockets, a connect/close loop with tricklers,
and clients looping on the full /status while a dashboard asks on new connections.  Asserts the
dashboard's requests served and which connections the page kept, not times.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from twisted_ch.service._limits import STATUS_MAX_CONNECTIONS
from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Entry, Registry
from twisted_ch.service._web import StatusService


class Device:
    ConnectionStatus = "Connected"

    def stats(self) -> dict[str, object]:
        return {"status": "Connected", "since": 0.0, "polls": 5, "misses": 0}


@pytest.fixture
def status() -> Iterator[StatusService]:
    registry = Registry(clock=reactor)
    for i in range(STATUS_ROWS_PER_STEP * 3):  # a document of several steps
        registry.add(Entry(f"dev-{i}", Device(), "tcp:host=127.0.0.1:port=2"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        yield service
    finally:
        service.stopService()
        registry.stopTracking()


def portOf(service: StatusService) -> int:
    assert service.port is not None
    return int(service.port.getHost().port)


def dashboard(port: int, times: int = 16) -> int:
    """C{times} requests for the compact /status, each on a new connection: how many were 200."""
    ok = 0
    for _ in range(times):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/status?compact=1")
            response = conn.getresponse()
            if response.status == 200 and json.loads(response.read())["devices"]:
                ok += 1
            conn.close()
        except (OSError, http.client.HTTPException, ValueError) as e:
            print("dashboard failed:", repr(e))
    return ok


def tricklers(port: int, n: int) -> list[socket.socket]:
    """C{n} connections that sent the first bytes of a request and no more."""
    crowd = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /status HTTP/1.1\r\nHost: 127")
        crowd.append(s)
    return crowd


def alive(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


@pytest_twisted.inlineCallbacks
def test_trickling_sockets_are_evicted_before_a_client_that_asks(status: StatusService) -> Any:
    port = portOf(status)

    def attack() -> tuple[int, int]:
        crowd = tricklers(port, STATUS_MAX_CONNECTIONS * 2)  # twice the page's connections
        try:
            served = dashboard(port)
            # and a served keep-alive client stays while more tricklers come
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/status?compact=1")
            conn.getresponse().read()
            crowd += tricklers(port, STATUS_MAX_CONNECTIONS)
            conn.request("GET", "/status?compact=1")
            again = conn.getresponse().status
            conn.close()
            return served, again
        finally:
            for s in crowd:
                s.close()

    served, again = yield threads.deferToThread(attack)
    assert served == 16 and again == 200
    assert status.limiter.evicted >= STATUS_MAX_CONNECTIONS


@pytest_twisted.inlineCallbacks
def test_a_connect_close_loop_with_tricklers_does_not_keep_the_dashboard_out(
    status: StatusService,
) -> Any:
    port = portOf(status)
    stop = threading.Event()

    def loop() -> None:  # ~57 connections a second, as measured in the issue
        while not stop.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except OSError:
                pass
            stop.wait(1 / 57)

    def attack() -> int:
        crowd = tricklers(port, STATUS_MAX_CONNECTIONS - 1)
        looper = threading.Thread(target=loop, daemon=True)
        looper.start()
        try:
            return dashboard(port)
        finally:
            stop.set()
            looper.join(10)
            for s in crowd:
                s.close()

    served = yield threads.deferToThread(attack)
    assert served == 16


@pytest_twisted.inlineCallbacks
def test_clients_looping_on_the_full_status_leave_the_dashboard_its_turn(
    status: StatusService,
) -> Any:
    port = portOf(status)
    stop = threading.Event()
    answers = [0]

    def looping() -> None:
        conn: Any = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/status")
                response = conn.getresponse()
                response.read()
                answers[0] += response.status == 200
            except (OSError, http.client.HTTPException):
                conn = None

    def attack() -> int:
        loopers = [threading.Thread(target=looping, daemon=True) for _ in range(8)]
        for t in loopers:
            t.start()
        try:
            while answers[0] < 8:  # they are at it
                stop.wait(0.05)
            return dashboard(port)
        finally:
            stop.set()
            for t in loopers:
                t.join(20)

    served = yield threads.deferToThread(attack)
    assert served == 16 and answers[0] >= 8


def test_the_port_accepts_a_bounded_batch_per_turn_with_a_deep_backlog(
    status: StatusService,
) -> None:
    from twisted_ch.service._web import STATUS_ACCEPTS_PER_TURN, STATUS_BACKLOG, _withBacklog

    assert _withBacklog("tcp:8790:interface=127.0.0.1").endswith(f":backlog={STATUS_BACKLOG}")
    assert _withBacklog("tcp:8790:backlog=7") == "tcp:8790:backlog=7"
    assert _withBacklog("unix:/run/chandler.sock") == "unix:/run/chandler.sock"
    port: Any = status.port
    port.numberAccepts = 500  # as Twisted's port grows it under a storm
    port.doRead()  # nothing waiting: it accepts none
    assert port.numberAccepts <= STATUS_ACCEPTS_PER_TURN
    crowd = [socket.create_connection(("127.0.0.1", portOf(status))) for _ in range(40)]
    try:
        port.numberAccepts = 500
        port.doRead()
        assert 0 < status.limiter.connections <= STATUS_ACCEPTS_PER_TURN
    finally:
        for s in crowd:
            s.close()


def test_a_connection_being_answered_is_evicted_once_answered() -> None:
    """At the limit with every connection being answered, the costliest closes after its answer
    (not mid-render: clients looping on /status would evict each other for ever)."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from twisted_ch.service._limits import ConnectionLimiter
    from twisted_ch.service._web import StatusSite, statusResource

    clock = Clock()
    registry = Registry(clock=clock)
    for i in range(STATUS_ROWS_PER_STEP * 3):
        registry.add(Entry(f"dev-{i}", Device()))
    site = StatusSite(statusResource(registry), reactor=clock)
    site.renders.share = 1.0
    limiter = ConnectionLimiter(site, maxConnections=2, clock=clock)
    limiter.doStart()
    opened = []
    for i in range(3):
        address = IPv4Address("TCP", "127.0.0.1", 41000 + i)
        wrapper = limiter.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        wrapper.makeConnection(transport)
        if i < 2:
            wrapper.wrappedProtocol.usage.add(float(i + 1), clock.seconds())  # the 2nd costs more
            wrapper.dataReceived(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        opened.append((wrapper, transport))
    assert limiter.evicted == 0 and limiter.connections == 3  # the newcomer is in
    costly = opened[1][1]
    assert not costly.disconnecting  # still being answered
    for _ in range(20):
        clock.advance(0.01)
    assert costly.value().endswith(b"0\r\n\r\n") and costly.disconnecting  # answered, then closed
    assert not opened[0][1].disconnecting
    limiter.doStop()


def test_an_address_past_its_budget_is_refused_on_its_busy_connections_not_a_fresh_one() -> None:
    from twisted.internet.task import Clock

    from twisted_ch.service._limits import (
        STATUS_CONNECTION_BUDGET,
        STATUS_FRESH_CONNECTION,
        ClientBudget,
    )

    budget = ClientBudget(Clock())
    budget.charge("127.0.0.1", b"/status", 2.0)  # loopers on 127.0.0.1 spent the address's budget
    budget.cost(b"/cheap", 0.0)
    assert budget.allows("127.0.0.1", b"/status", 0.0)  # the dashboard's new connection
    assert not budget.allows("127.0.0.1", b"/status", STATUS_FRESH_CONNECTION * 2)  # a looper's
    assert budget.allows("127.0.0.1", b"/cheap", STATUS_CONNECTION_BUDGET * 2)
    assert not budget.allows("10.0.0.2", b"/status", STATUS_CONNECTION_BUDGET * 2)  # its own
    assert budget.allows("10.0.0.2", b"/status", STATUS_FRESH_CONNECTION * 2)
    assert budget.refused == 2
