"""
The wire trace: Tx/Rx per device for N minutes then off by itself, secrets masked, and the
HTTP switch refused unless the status port is loopback-only or the request carries the token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.protocols.device import WIRE_TAPS
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._trace import TraceResource, WireTrace, linkFinder, printable
from twisted_ch.service._web import StatusService
from twisted_ch.testing import FakeEndpoint


class Events(list[dict[str, Any]]):
    def __enter__(self) -> Events:
        globalLogPublisher.addObserver(self.append)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self.append)

    def trace(self) -> list[str]:
        return [formatEvent(e) for e in self if e.get("log_namespace") == "twisted_ch.trace"]


def traced(clock: Clock) -> tuple[Any, FakeEndpoint, Registry, WireTrace]:
    endpoint = FakeEndpoint(clock)
    iface = EthernetClientInterface("127.0.0.1", 4352, reactor=clock, endpoint=endpoint)
    iface.link.description = "projector"
    handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=60)
    registry = Registry(clock=clock)
    registry.add(Entry("projector", handler, ""))
    return handler, endpoint, registry, WireTrace(clock, linkFinder(registry.entries))


def test_printable() -> None:
    assert printable(b"\x02PWR?\x03\r\n\\ok\xff") == "\\x02PWR?\\x03\\r\\n\\\\ok\\xff"


def test_a_trace_records_both_ways_and_stops_by_itself() -> None:
    clock = Clock()
    handler, endpoint, registry, trace = traced(clock)
    with Events() as events:
        trace.start("projector", minutes=2)  # before the link is up: attached anyway
        handler.Connect()
        handler.Send(b"%1POWR ?\r")
        endpoint.respond(b"%1POWR=1\r")
        clock.advance(119)
        handler.Send(b"Q")
        clock.advance(1)  # two minutes: off by itself
        handler.Send(b"not traced")
    records = [r.asJSON() for r in trace.records("projector")]
    assert records == []  # gone with the trace; the log has every line
    lines = events.trace()
    assert lines[0] == "projector: wire trace on for 2 min"
    assert re.fullmatch(r"projector tx +9 B  %1POWR \?\\r  \| 25 31 50 4f 57 52 20 3f 0d", lines[1])
    assert re.fullmatch(r"projector rx +9 B  %1POWR=1\\r  \| .*", lines[2])
    assert "projector tx     1 B  Q  | 51" == lines[3]
    assert lines[4] == "projector: wire trace off (its time is up)"
    assert len(lines) == 5
    assert len(WIRE_TAPS) == 0
    handler.Disconnect()
    clock.advance(0)
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_records_while_it_runs() -> None:
    clock = Clock()
    handler, endpoint, registry, trace = traced(clock)
    handler.Connect()
    trace.start("projector", minutes=1)
    endpoint.respond(b"\r")  # started mid-session: a first send before any rx is masked
    handler.Send(b"\x02PWR?\x03")
    (_, record) = [r.asJSON() for r in trace.records("projector")]
    assert record["direction"] == "tx" and record["hex"] == "02 50 57 52 3f 03"
    assert record["text"] == "\\x02PWR?\\x03" and record["bytes"] == 6
    assert trace.describe()["projector"]["attached"] is True  # type: ignore[index]
    trace.stopAll()
    handler.Disconnect()


def test_a_device_found_later_is_traced() -> None:
    clock = Clock()
    registry = Registry(clock=clock)
    trace = WireTrace(clock, linkFinder(registry.entries))
    trace.start("late", minutes=1)
    clock.advance(5)
    endpoint = FakeEndpoint(clock)
    iface = EthernetClientInterface("127.0.0.1", 23, reactor=clock, endpoint=endpoint)
    handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=60)
    registry.add(Entry("late", handler, ""))
    handler.Connect()
    clock.advance(1)
    handler.Send(b"x")
    handler.Send(b"y")
    # found connected: the first send may answer a prompt the trace did not see
    assert [r.data for r in trace.records("late")] == [b"<secret: 1 bytes>", b"y"]
    clock.advance(60)
    assert trace.traces == {} and len(WIRE_TAPS) == 0
    handler.Disconnect()


def test_secrets_are_masked() -> None:
    from twisted_ch.service.probes import pjlinkDigest

    clock = Clock()
    handler, endpoint, registry, trace = traced(clock)
    trace.start("projector", minutes=5)
    digest = pjlinkDigest(b"498e4a67", "hunter2")
    with Events() as events:
        handler.Connect()
        endpoint.respond(b"PJLINK 1 498e4a67\r")
        handler.Send(digest + b"%1POWR ?\r")
        endpoint.respond(b"login\r\nPassword:")
        handler.Send(b"hunter2\r\n")
        endpoint.respond(b"Login Administrator\r\n")
        handler.Send(b"Q")
    text = "\n".join(events.trace())
    for secret in ("498e4a67", digest.decode(), "hunter2", b"hunter2".hex(" ")):
        assert secret not in text
    records = trace.records("projector")
    assert [r.masked for r in records] == [True, True, False, True, False, False]
    assert records[0].data == b"PJLINK 1 <random>\r"
    assert records[1].data == b"<digest>%1POWR ?\r"
    assert records[3].data == b"<secret: 9 bytes>"
    assert records[5].data == b"Q"  # only the answer to the prompt is masked
    trace.stopAll()
    handler.Disconnect()


def test_snmp_communities_are_masked() -> None:
    from twisted_ch.service.probes import SYS_UPTIME, _asn1, encodeMessage

    clock = Clock()
    handler, endpoint, registry, trace = traced(clock)
    trace.start("projector", minutes=5)
    handler.Connect()
    request = encodeMessage(1, b"site-ro-secret", "get-request", 4242, [(SYS_UPTIME, _asn1().NULL)])
    handler.Send(request)
    (record,) = trace.records("projector")
    assert record.masked and b"site-ro-secret" not in record.data
    assert record.data.count(b"*") == len("site-ro-secret") and len(record.data) == len(request)
    for junk in (b"\x30", b"\x30\x82\xff\xff\x02\x01\x01\x04\x7f", b"\x30\x05abc"):
        handler.Send(junk)
    assert [r.data for r in trace.records("projector")[1:]] == [
        b"\x30",
        b"\x30\x82\xff\xff\x02\x01\x01\x04\x7f",
        b"\x30\x05abc",
    ]
    trace.stopAll()
    handler.Disconnect()


def test_a_program_handler_is_found_by_its_variable() -> None:
    clock = Clock()
    handler, endpoint, _, _ = traced(clock)
    registry = Registry(clock=clock)
    registry.addSource(
        "program",
        lambda: [Entry("tcp:127.0.0.1:4352", handler, "", extra={"variable": "Projector"})],
    )
    find = linkFinder(registry.entries)
    assert find("Projector") is handler.Interface.link
    assert find("tcp:127.0.0.1:4352") is handler.Interface.link
    assert find("Screen") is None
    registry.removeSource("program")


def test_bounds() -> None:
    clock = Clock()
    trace = WireTrace(clock, lambda name: None)
    for minutes in (0, -1, 1e9):
        with pytest.raises(ValueError, match="minutes"):
            trace.start("x", minutes)
    assert trace.traces == {}


# the HTTP switch


class FakeRequest:
    def __init__(self, headers: dict[bytes, bytes], args: dict[bytes, list[bytes]]) -> None:
        self.headers = headers
        self.args = args
        self.content = None
        self.code = 200
        self.sent: dict[bytes, bytes] = {}

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name)

    def setResponseCode(self, code: int) -> None:
        self.code = code

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.sent[name] = value

    def getClientAddress(self) -> str:
        return "127.0.0.1"


TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize(
    ("loopback", "token", "headers", "code"),
    [
        (True, None, {}, 200),
        (False, None, {}, 403),
        (False, TOKEN, {}, 403),
        (False, TOKEN, {b"authorization": b"Bearer " + TOKEN.encode()}, 200),
        (False, TOKEN, {b"authorization": b"Bearer wrong-token-0123456789"}, 403),
        (True, TOKEN, {b"authorization": b"Bearer wrong-token-0123456789"}, 403),
        (True, None, {b"origin": b"http://evil.example", b"host": b"127.0.0.1:8790"}, 403),
        (True, None, {b"origin": b"http://127.0.0.1:8790", b"host": b"127.0.0.1:8790"}, 200),
    ],
)
def test_who_may_start_a_trace(
    loopback: bool, token: str | None, headers: dict[bytes, bytes], code: int
) -> None:
    clock = Clock()
    trace = WireTrace(clock, lambda name: None)
    resource = TraceResource(trace, lambda: loopback, token)
    request = FakeRequest(headers, {b"device": [b"projector"], b"minutes": [b"5"]})
    body = resource.render_POST(request)  # type: ignore[arg-type]
    assert request.code == code, body
    assert ("projector" in trace.traces) == (code == 200)
    read = FakeRequest(headers, {})
    resource.render_GET(read)  # type: ignore[arg-type]
    assert read.code == code
    trace.stopAll()


@pytest_twisted.inlineCallbacks
def test_http_trace_on_a_loopback_status_port(tmp_path: Path) -> Any:
    import json
    import urllib.error
    import urllib.request

    from twisted_ch.testing import DeviceServer
    from twisted_ch.testing._probes import SIS_RESPONSES

    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    iface = EthernetClientInterface("127.0.0.1", device.port)
    handler = GetConnectionHandler(
        iface, lambda h: h.Send(b"Q"), pollFrequency=0.1, DisconnectLimit=100
    )
    registry = Registry(clock=reactor)
    registry.add(Entry("switcher", handler, ""))
    trace = WireTrace(reactor, linkFinder(registry.entries))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry, trace, TOKEN)
    service.startService()
    try:
        yield handler.Connect()
        base = str(service.url)

        def post(data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
            request = urllib.request.Request(base + "trace", data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        code, answer = yield threads.deferToThread(post, b"device=switcher&minutes=0.5", {})
        assert code == 200 and answer["device"] == "switcher", answer
        code, answer = yield threads.deferToThread(
            post, b"device=switcher", {"Origin": "http://192.0.2.1"}
        )
        assert code == 403 and "another origin" in answer["error"]
        from twisted.internet.task import deferLater

        for _ in range(100):  # a bounded wait for a few polls
            if len(trace.records("switcher")) >= 4:
                break
            yield deferLater(reactor, 0.05, lambda: None)

        def read() -> Any:
            with urllib.request.urlopen(base + "trace?device=switcher", timeout=10) as r:
                return json.load(r)

        document = yield threads.deferToThread(read)
        directions = {rec["direction"] for rec in document["records"]}
        assert directions == {"tx", "rx"}, document
        assert document["traces"]["switcher"]["attached"] is True
        code, answer = yield threads.deferToThread(post, b"device=switcher&stop=1", {})
        assert (code, answer["stopped"]) == (200, True)
        assert len(WIRE_TAPS) == 0
    finally:
        yield service.stopService()
        trace.stopAll()
        yield handler.Disconnect()
        yield device.shutdown()
