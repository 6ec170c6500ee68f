"""
The status page's filters (?state= ?health= ?name= ?limit= ?offset=) and its stepped renders:
a big /status, /metrics or text index is written a step per reactor turn (other calls run in
between), renders take turns by how little their connection used, a client that does not read
pauses its render; a compact document is served again for a while.  Clock-driven.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from twisted_ch.service._metrics import metricsText
from twisted_ch.service._query import QueryError, StatusQuery
from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Entry, Registry
from twisted_ch.service._web import STATUS_REUSE, STATUS_REUSE_KEPT, StatusSite, statusResource


class Device:
    def __init__(self, status: str, polls: int = 1, misses: int = 0) -> None:
        self.ConnectionStatus = status
        self._stats = {"status": status, "polls": polls, "misses": misses, "transitions": 1}

    def stats(self) -> dict[str, object]:
        return dict(self._stats)


def fleet(clock: Clock, n: int) -> Registry:
    registry = Registry(clock=clock)
    for i in range(n):
        registry.add(Entry(f"dev-{i:05d}", Device("Connected" if i % 3 else "Disconnected", i)))
    return registry


def small(clock: Clock) -> Registry:
    registry = Registry(clock=clock)
    for name, state in [
        ("Hall Projector", "Connected"),
        ("Hall Display", "Disconnected"),
        ("Board projector", "Connected"),
        ("Lobby sign", "Unknown"),
    ]:
        registry.add(Entry(name, Device(state), room="Hall" if name.startswith("Hall") else ""))
    registry.setPaused(registry._entries["Lobby sign"], True)
    return registry


def document(registry: Registry, **args: str) -> dict[str, Any]:
    query = StatusQuery.fromArgs({k.encode(): [v.encode()] for k, v in args.items()})
    doc: dict[str, Any] = json.loads("".join(_all(registry.statusPieces(query, True))))
    return doc


def _all(pieces: Any) -> list[str]:
    found = []
    while True:
        try:
            found.append(next(pieces))
        except StopIteration as e:
            found.append(e.value)
            return found


def names(doc: dict[str, Any]) -> list[str]:
    return [d["name"] for d in doc["devices"]]


def test_state_health_and_name_filters_choose_the_rows_the_summary_stays_whole() -> None:
    registry = small(Clock())
    doc = document(registry, state="Connected")
    assert names(doc) == ["Hall Projector", "Board projector"]
    assert doc["summary"]["up"] == 2 and doc["summary"]["down"] == 1  # every device counted
    assert names(document(registry, state="connected,disconnected")) == [
        "Hall Projector",
        "Hall Display",
        "Board projector",
    ]
    query = StatusQuery.fromArgs({b"state": [b"Disconnected", b"Paused"]})  # repeated
    assert query.states == {"disconnected", "paused"}
    assert names(document(registry, state="paused")) == ["Lobby sign"]
    assert names(document(registry, health="error")) == ["Hall Display"]
    assert names(document(registry, name="projector")) == ["Hall Projector", "Board projector"]
    assert names(document(registry, name="hall*")) == ["Hall Projector", "Hall Display"]
    assert names(document(registry, name="*PROJ*")) == ["Hall Projector", "Board projector"]
    assert names(document(registry, name="hall")) == ["Hall Projector", "Hall Display"]
    assert names(document(registry, name="Hall?Display")) == ["Hall Display"]
    assert names(document(registry, name="Hall")) != []  # a glob is whole-name: "hall" above
    assert names(document(registry, name="hal")) == ["Hall Projector", "Hall Display"]
    assert names(document(registry, name="hal[l]")) == []  # a glob matches the whole name
    room = document(registry, room="Hall", state="Connected")
    assert names(room) == ["Hall Projector"] and room["summary"]["down"] == 1


def test_limit_and_offset_page_the_matching_devices() -> None:
    registry = fleet(Clock(), 25)
    first = document(registry, limit="10")
    assert names(first) == [f"dev-{i:05d}" for i in range(10)]
    assert first["page"] == {"matched": 25, "offset": 0, "limit": 10, "next": 10}
    last = document(registry, limit="10", offset="20")
    assert names(last) == [f"dev-{i:05d}" for i in range(20, 25)]
    assert last["page"]["next"] is None
    down = document(registry, state="Disconnected", limit="3", offset="2")
    assert names(down) == ["dev-00006", "dev-00009", "dev-00012"]
    assert down["page"] == {"matched": 9, "offset": 2, "limit": 3, "next": 5}
    assert document(registry, limit="0")["devices"] == []
    assert sum(document(registry, limit="0")["summary"]["health"].values()) == 25
    for bad in (b"x", b"-1", b"10000000000"):
        with pytest.raises(QueryError, match=r"\?limit="):
            StatusQuery.fromArgs({b"limit": [bad]})


def test_the_readable_document_pages_too_one_device_per_line() -> None:
    registry = fleet(Clock(), 7)
    query = StatusQuery.fromArgs({b"limit": [b"2"], b"offset": [b"3"]})
    text = "".join(_all(registry.statusPieces(query, False)))
    doc = json.loads(text)
    assert names(doc) == ["dev-00003", "dev-00004"]
    assert [ln for ln in text.splitlines() if ln.strip().startswith('{"name"')] != []
    assert len([ln for ln in text.splitlines() if '"name": "dev-' in ln]) == 2


# -- over a channel


def siteOn(registry: Registry, clock: Clock, timer: Any = None) -> StatusSite:
    kw = {} if timer is None else {"timer": timer}
    site = StatusSite(statusResource(registry), reactor=clock, **kw)
    site.renders.share = 1.0  # no rest between steps (the share has its own test)
    site.renders.turn = 0.0  # a step a turn (the turn has its own test)
    return site


def connect(site: StatusSite, port: int = 40000) -> tuple[Any, StringTransport]:
    address = IPv4Address("TCP", "127.0.0.1", port)
    channel = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    return channel, transport


def ask(channel: Any, path: str, accept: str = "*/*") -> None:
    channel.dataReceived(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n".encode()
    )


def turn(clock: Clock) -> None:
    """One reactor turn: the calls due now, not those they schedule (as a real reactor does)."""
    due = [c for c in clock.calls if c.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


def body(raw: bytes) -> tuple[int, bytes]:
    """The status code and body of one HTTP/1.1 answer (chunked or not)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    code = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" not in head.lower():
        return code, rest
    out = b""
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return code, out
        out, rest = out + rest[:n], rest[n + 2 :]


def test_filters_on_the_json_and_the_text_page() -> None:
    clock = Clock()
    site = siteOn(small(clock), clock)
    channel, transport = connect(site)
    ask(channel, "/status?state=Connected&name=hall")
    code, got = body(transport.value())
    assert code == 200 and names(json.loads(got)) == ["Hall Projector"]
    channel, transport = connect(site)
    ask(channel, "/?health=error,paused")
    code, got = body(transport.value())
    assert code == 200
    text = got.decode()
    assert "Hall Display" in text and "Lobby sign" in text and "Hall Projector" not in text
    channel, transport = connect(site)
    ask(channel, "/status?limit=many")
    code, got = body(transport.value())
    assert code == 400 and b"?limit=" in got


def test_a_big_status_is_written_a_step_per_turn_with_other_calls_between() -> None:
    clock = Clock()
    n = STATUS_ROWS_PER_STEP * 10 + 7
    registry = fleet(clock, n)
    site = siteOn(registry, clock)
    channel, transport = connect(site)
    ask(channel, "/status?compact=1")
    assert b'"devices":[' in transport.value() and b'"summary"' not in transport.value()
    events: list[str] = []
    written = [len(transport.value())]

    def other() -> None:  # the devices' work: a call due every turn
        events.append("other")

    while not transport.value().endswith(b"0\r\n\r\n"):
        clock.callLater(0, other)
        turn(clock)
        if len(transport.value()) > written[-1]:
            events.append("piece")
            written.append(len(transport.value()))
        assert len(events) < 100
    pieces = events.count("piece")
    assert pieces == 10  # a step per STATUS_ROWS_PER_STEP entries (the first was at once)
    assert "piece,piece" not in ",".join(events)  # never two steps in one turn
    doc = json.loads(body(transport.value())[1])
    expected = registry.snapshot()
    assert doc.pop("time") and expected.pop("time")
    assert doc == expected and len(doc["devices"]) == n
    assert site.renders.steps == 10 and len(site.renders) == 0


def test_metrics_and_the_text_index_are_stepped_too() -> None:
    clock = Clock()
    registry = fleet(clock, STATUS_ROWS_PER_STEP * 3)
    site = siteOn(registry, clock)
    channel, transport = connect(site)
    ask(channel, "/metrics")
    assert not transport.value().endswith(b"0\r\n\r\n")
    for _ in range(20):
        turn(clock)
    assert body(transport.value())[1] == metricsText(registry)
    assert site.renders.steps >= 3
    channel, transport = connect(site, 40001)
    ask(channel, "/?limit=5")
    for _ in range(20):
        turn(clock)
    text = body(transport.value())[1].decode()
    assert text.count("dev-") == 5 and "more: ?offset=5" in text


def test_renders_take_turns_the_connection_that_used_least_first() -> None:
    clock = Clock()
    now = [0.0]

    def timer() -> float:
        now[0] += 0.0005  # each step: 1 ms (two readings)
        return now[0]

    registry = fleet(clock, STATUS_ROWS_PER_STEP * 5)
    site = siteOn(registry, clock, timer)
    looper, looperT = connect(site, 40000)
    looper.usage.add(1.0, clock.seconds())  # a client that rendered a lot lately
    ask(looper, "/status")
    dashboard, dashboardT = connect(site, 40001)
    ask(dashboard, "/status?compact=1")
    before = len(looperT.value())
    for _ in range(5):
        turn(clock)
    assert dashboardT.value().endswith(b"0\r\n\r\n")  # done while the looper waited
    assert len(looperT.value()) == before
    for _ in range(10):
        turn(clock)
    assert looperT.value().endswith(b"0\r\n\r\n")


def test_renders_take_at_most_their_share_of_the_reactor() -> None:
    clock = Clock()
    now = [0.0]

    def timer() -> float:
        now[0] += 0.001  # each step: 1 ms (two readings 1 ms apart)
        return now[0]

    site = siteOn(fleet(clock, STATUS_ROWS_PER_STEP * 3), clock, timer)
    site.renders.share = 0.5
    channel, transport = connect(site)
    ask(channel, "/status")
    turn(clock)
    (pending,) = [c for c in clock.getDelayedCalls() if c.func == site.renders._step]
    assert pending.getTime() == pytest.approx(0.001)  # half the reactor: a rest as long


def test_a_turn_takes_steps_until_they_add_up_to_its_budget() -> None:
    clock = Clock()
    now = [0.0]

    def timer() -> float:
        now[0] += 0.0005  # each step: 0.5 ms (its two readings)
        return now[0]

    site = siteOn(fleet(clock, STATUS_ROWS_PER_STEP * 10), clock, timer)
    site.renders.turn = 0.0015
    channel, transport = connect(site)
    ask(channel, "/status")
    turn(clock)
    assert site.renders.steps == 3


def test_a_client_that_does_not_read_pauses_its_render() -> None:
    clock = Clock()
    site = siteOn(fleet(clock, STATUS_ROWS_PER_STEP * 4), clock)
    channel, transport = connect(site)
    ask(channel, "/status")
    channel.pauseProducing()  # the transport's buffer is full
    steps = site.renders.steps
    for _ in range(10):
        clock.advance(1)
    assert site.renders.steps == steps
    channel.resumeProducing()
    for _ in range(20):
        clock.advance(1)
    assert transport.value().endswith(b"0\r\n\r\n")
    # a connection lost mid-render: the render ends, no timer left but the channel's own
    channel, transport = connect(site, 40001)
    ask(channel, "/status")
    channel.connectionLost(Failure(ConnectionDone()))
    clock.advance(1)
    assert len(site.renders) == 0


class CompactRig:
    """A status site on a Clock whose renders each take 0.2 s of the resource's timer."""

    def __init__(self, devices: int = 3) -> None:
        self.clock = Clock()
        self.now = [100.0]
        self.registry = fleet(self.clock, devices)
        root = statusResource(self.registry)
        self.status: Any = root.children[b"status"]
        self.status._timer = lambda: self.now[0]
        self.site = StatusSite(root, reactor=self.clock)
        self.built: list[int] = []
        real = self.registry.statusPieces

        def slow(*a: Any, **kw: Any) -> Any:
            self.built.append(1)
            self.now[0] += 0.2  # this render takes 0.2 s
            return real(*a, **kw)

        self.registry.statusPieces = slow  # type: ignore[method-assign]

    def get(self, path: str) -> bytes:
        channel, transport = connect(self.site)
        ask(channel, path)
        return body(transport.value())[1]


def test_a_compact_status_is_served_again_for_ten_times_what_it_took_to_render() -> None:
    rig = CompactRig()
    first = rig.get("/status?compact=1")
    rig.now[0] += 0.2 * STATUS_REUSE - 0.05
    assert rig.get("/status?compact=1") == first and len(rig.built) == 1
    rig.get("/status")  # the readable document: always rendered
    assert len(rig.built) == 2
    rig.get("/status?compact=1&state=Connected")  # another query: its own
    assert len(rig.built) == 3
    rig.now[0] += 0.1
    rig.registry.add(Entry("hall", Device("Disconnected")))
    assert b'"hall"' in rig.get("/status?compact=1") and len(rig.built) == 4


def test_a_compact_status_is_let_go_when_it_is_no_longer_served() -> None:
    """Not kept until the next request of its query, which may never come (8 MB at 16,000)."""
    rig = CompactRig()
    clock, status = rig.clock, rig.status
    rig.get("/status?compact=1")  # served again for 10 x 0.2 s
    assert list(status._kept) == [b"/status?compact=1"]
    clock.advance(0.2 * STATUS_REUSE - 0.05)
    assert list(status._kept) == [b"/status?compact=1"]
    clock.advance(0.1)
    assert list(status._kept) == []
    # a body rendered again after one expired is not let go by the older one's timer
    rig.get("/status?compact=1")
    rig.now[0] += 3.0
    clock.advance(1.0)
    rig.get("/status?compact=1")
    kept = status._kept[b"/status?compact=1"]
    clock.advance(1.5)  # the first's time is up, not the second's
    assert status._kept[b"/status?compact=1"] is kept
    clock.advance(1.0)
    assert status._kept == {}


def test_evicted_compact_documents_leave_no_timer_and_a_stopped_site_none() -> None:
    rig = CompactRig()
    status = rig.status
    for i in range(STATUS_REUSE_KEPT + 2):  # distinct queries (a client's cache-busting ?_=)
        rig.get(f"/status?compact=1&_={i}")
    assert list(status._expiries) == list(status._kept) and len(status._kept) == STATUS_REUSE_KEPT
    pending = [c for c in rig.clock.getDelayedCalls() if c.func == status._expire]
    assert len(pending) == STATUS_REUSE_KEPT  # the evicted ones' timers were cancelled
    rig.site.stopFactory()
    assert status._kept == {} and status._expiries == {}
    assert [c for c in rig.clock.getDelayedCalls() if c.func == status._expire] == []


def test_refused_trace_posts_are_one_line_then_a_count() -> None:
    from twisted_ch._summary import DEFAULT_PERIOD
    from twisted_ch.service._trace import WireTrace, linkFinder
    from twisted_ch.service._web import _TraceResource

    clock = Clock()
    registry = fleet(clock, 1)
    root = statusResource(registry)
    trace = WireTrace(clock, linkFinder(registry.entries))
    root.putChild(b"trace", _TraceResource(trace, lambda: True, "the-token"))
    site = StatusSite(root, reactor=clock)
    lines: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(lines.append)
    try:
        codes = []
        for i in range(3000):
            channel, transport = connect(site, 40000 + i % 1000)
            channel.dataReceived(
                b"POST /trace HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
                b"device=x&"
            )
            codes.append(body(transport.value())[0])
        clock.advance(DEFAULT_PERIOD)
        site.stopFactory()
    finally:
        globalLogPublisher.removeObserver(lines.append)
    refused = codes.count(403)  # (or 429, past the budget, on a slow machine)
    assert set(codes) <= {403, 429} and refused > 50 and site.refused == refused
    warned = [
        e
        for e in lines
        if e.get("log_level") is not None
        and e["log_level"].name in ("warn", "error")
        and "wire trace request" in str(e.get("log_format"))
    ]
    counted = [e for e in warned if e.get("repeated")]
    assert len(warned) == 2, len(warned)  # the first, then one count
    assert sum(e["repeated"] for e in counted) == refused - 1
