"""
Secrets never reach a trace output (issue 19 item 3): a C{secret = true} probe's payload on
every poll, a password the device echoes back (whole or byte by byte, also when its prompt came
before the trace started), and an SNMP community in any BER encoding: absent from C{/trace}'s
JSON, the trace's log lines and their JSON form.  Real loopback devices.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import eventAsJSON, formatEvent, globalLogPublisher

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.protocols.device import WIRE_TAPS
from twisted_ch.service._logs import eventAsLine
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._trace import WireTrace, _Masker, _maskSNMPCommunity, linkFinder
from twisted_ch.service._web import StatusService
from twisted_ch.service.probes import SendExpectProbe


class Outputs(list[dict[str, Any]]):
    """The trace's log events while it runs: as the log file writes them, and as JSON."""

    def __enter__(self) -> Outputs:
        globalLogPublisher.addObserver(self.append)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self.append)

    def traced(self) -> list[dict[str, Any]]:
        return [e for e in self if e.get("log_namespace") == "twisted_ch.trace" and e.get("trace")]

    def text(self) -> str:
        """The log file's lines: text, C{--log-format json}'s, and Twisted's own JSON form."""
        events = self.traced()
        return "\n".join(
            [formatEvent(e) for e in events]
            + [eventAsLine(e) for e in events]
            + [eventAsJSON(e) for e in events]
        )


def forms(secret: bytes) -> list[str]:
    """Every way a trace output could show C{secret} (or its longest part)."""
    core = secret.strip(b"\r\n")
    return [core.decode(), core.hex(" "), core.hex(), json.dumps(core.decode())[1:-1]]


def assertAbsent(secret: bytes, *outputs: str) -> None:
    for output in outputs:
        for form in forms(secret):
            assert form not in output, (form, output[:2000])


class Echo(Protocol):
    """A device that echoes what it gets, byte by byte when asked, then answers OK."""

    def connectionMade(self) -> None:
        self.factory.connections.append(self)  # type: ignore[attr-defined]
        prompt = self.factory.prompt  # type: ignore[attr-defined]
        if prompt:
            self.transport.write(prompt)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.factory.received.append(data)  # type: ignore[attr-defined]
        if self.factory.byteByByte:  # type: ignore[attr-defined]
            for i, b in enumerate(data):
                reactor.callLater(0.002 * i, self.transport.write, bytes([b]))  # type: ignore
            reactor.callLater(0.002 * len(data), self.transport.write, b"OK\r\n")  # type: ignore
        else:
            self.transport.write(data + b"OK\r\n")  # type: ignore[union-attr]


def echoDevice(prompt: bytes = b"", byteByByte: bool = False) -> tuple[Any, Factory]:
    factory = Factory.forProtocol(Echo)
    factory.prompt = prompt  # type: ignore[attr-defined]
    factory.byteByByte = byteByByte  # type: ignore[attr-defined]
    factory.received = []  # type: ignore[attr-defined]
    factory.connections = []  # type: ignore[attr-defined]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    return port, factory


def until(condition: Callable[[], bool]) -> Generator[Deferred[None], None, None]:
    """A bounded wait for what the loopback peers do (never a timing assertion)."""
    for _ in range(400):
        if condition():
            return
        yield deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("the loopback peers did not get there")


def readTrace(service: StatusService, name: str) -> str:
    with urllib.request.urlopen(f"{service.url}trace?device={name}", timeout=10) as r:
        return str(r.read().decode("utf-8"))


def setUp(name: str, port: Any, probe: Any = None) -> tuple[Any, WireTrace, StatusService]:
    iface = EthernetClientInterface("127.0.0.1", port.getHost().port)
    handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=60, DisconnectLimit=100)
    registry = Registry(clock=reactor)
    registry.add(Entry(name, handler, "", probe=probe))
    trace = WireTrace(reactor, linkFinder(registry.entries))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry, trace)
    service.startService()
    return handler, trace, service


@pytest_twisted.inlineCallbacks
def test_a_secret_probes_payload_is_masked_on_every_poll_and_in_its_echo() -> Any:
    secret = b"PIN 7319-kz\r"
    port, device = echoDevice(byteByByte=False)
    probe = SendExpectProbe(secret, b"OK", secret=True)
    handler, trace, service = setUp("keypad", port, probe)
    try:
        with Outputs() as outputs:
            trace.start("keypad", minutes=5)  # before the link is up
            yield handler.Connect()
            answered = 0
            for _ in range(5):  # five polls
                answered += bool((yield probe.query(handler)))
            page = yield threads.deferToThread(readTrace, service, "keypad")
        assert answered == 5
        assert device.received.count(secret) == 5 or b"".join(device.received) == secret * 5
        records = json.loads(page)["records"]
        assert [r["direction"] for r in records] == ["tx", "rx"] * 5
        assert all(r["masked"] for r in records)
        assert len(outputs.traced()) == 10
        assertAbsent(secret, page, outputs.text())
        assert "4f 4b 0d 0a" in page  # the answer itself is shown
    finally:
        yield service.stopService()
        trace.stopAll()
        yield handler.Disconnect()
        yield port.stopListening()
    assert len(WIRE_TAPS) == 0


@pytest_twisted.inlineCallbacks
def test_a_password_echoed_byte_by_byte_is_masked() -> Any:
    password = b"hunter2-xyz\r\n"
    port, device = echoDevice(prompt=b"login ok\r\nPassword: ", byteByByte=True)
    handler, trace, service = setUp("codec", port)
    try:
        with Outputs() as outputs:
            trace.start("codec", minutes=5)
            handler.Connect()
            yield from until(lambda: bool(trace.records("codec")))  # the prompt
            handler.Send(password)
            yield from until(lambda: b"OK" in b"".join(r.data for r in trace.records("codec")))
            handler.Send(b"STATUS\r")
            yield from until(lambda: len(b"".join(device.received)) == len(password) + 7)
            yield from until(
                lambda: b"".join(r.data for r in trace.records("codec")).count(b"OK") == 2
            )
            page = yield threads.deferToThread(readTrace, service, "codec")
        assertAbsent(password, page, outputs.text())
        assert "STATUS" in page  # what is not a secret is shown
    finally:
        yield service.stopService()
        trace.stopAll()
        yield handler.Disconnect()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_the_answer_to_a_prompt_that_came_before_the_trace_is_masked() -> Any:
    password = b"Sesame-4411\r"
    port, device = echoDevice(prompt=b"Password: ")
    received: list[bytes] = []
    handler, trace, service = setUp("display", port)
    handler.Interface.ReceiveData = lambda iface, data: received.append(data)
    try:
        with Outputs() as outputs:
            handler.Connect()
            yield from until(lambda: b"Password" in b"".join(received))
            trace.start("display", minutes=5)  # the prompt is gone by: the trace never saw it
            handler.Send(password)
            yield from until(lambda: b"OK" in b"".join(r.data for r in trace.records("display")))
            handler.Send(b"PWR?\r")
            yield from until(
                lambda: b"".join(r.data for r in trace.records("display")).count(b"OK") == 2
            )
            page = yield threads.deferToThread(readTrace, service, "display")
        assertAbsent(password, page, outputs.text())
        assert "PWR?" in page
    finally:
        yield service.stopService()
        trace.stopAll()
        yield handler.Disconnect()
        yield port.stopListening()


# SNMP, every encoding of a community

COMMUNITY = b"site-ro-secret"


def snmpGet(lengths: Callable[[int], bytes], community: bytes = COMMUNITY) -> bytes:
    """A v2c GetRequest for sysUpTime.0, every length written with C{lengths(n)}."""

    def tlv(tag: int, content: bytes) -> bytes:
        return bytes([tag]) + lengths(len(content)) + content

    varbind = tlv(0x30, tlv(0x06, bytes.fromhex("2b06010201010300")) + tlv(0x05, b""))
    pdu = tlv(
        0xA0, tlv(0x02, b"\x2a") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + tlv(0x30, varbind)
    )
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, community) + pdu)


def longForm(width: int) -> Callable[[int], bytes]:
    return lambda n: bytes([0x80 | width]) + n.to_bytes(width, "big")


ENCODINGS = {
    "short": lambda n: bytes([n]),
    "long-1": longForm(1),
    "long-2": longForm(2),
    "long-4": longForm(4),
    "long-8": longForm(8),
}


def test_every_length_form_of_a_community_is_masked() -> None:
    for name, lengths in ENCODINGS.items():
        message = snmpGet(lengths)
        masked = _maskSNMPCommunity(message)
        assert masked is not None, name
        assert COMMUNITY not in masked and len(masked) == len(message), name
        assert masked.count(b"*" * len(COMMUNITY)) == 1, name
    # the version with a leading zero, an indefinite outer length, a constructed community
    odd = [
        b"\x30\x80\x02\x02\x00\x01\x04\x0e" + COMMUNITY + b"\xa0\x00\x00\x00",
        b"\x30\x1a\x02\x01\x01\x24\x80\x04\x07site-ro\x04\x07-secret\x00\x00",
    ]
    for message in odd:
        masked = _maskSNMPCommunity(message)
        assert masked is not None and b"site-ro" not in masked and b"-secret" not in masked


def test_the_masker_masks_a_community_in_a_response_too() -> None:
    mask = _Masker()
    shown, masked = mask("rx", snmpGet(longForm(2)).replace(b"\xa0", b"\xa2", 1))
    assert masked and COMMUNITY not in shown


class UDPEcho(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        self.transport.write(datagram, addr)  # type: ignore[union-attr]


@pytest_twisted.inlineCallbacks
def test_long_form_snmp_over_loopback_udp_is_masked_both_ways() -> Any:
    echo = UDPEcho()
    port = reactor.listenUDP(0, echo, interface="127.0.0.1")  # type: ignore[attr-defined]
    iface = EthernetClientInterface("127.0.0.1", port.getHost().port, Protocol="UDP")
    handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=60, DisconnectLimit=100)
    registry = Registry(clock=reactor)
    registry.add(Entry("agent", handler, ""))
    trace = WireTrace(reactor, linkFinder(registry.entries))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry, trace)
    service.startService()
    messages = [snmpGet(lengths) for lengths in ENCODINGS.values()]
    try:
        with Outputs() as outputs:
            trace.start("agent", minutes=5)
            yield handler.Connect()
            for message in messages:
                handler.Send(message)
            yield from until(lambda: len(trace.records("agent")) == 2 * len(messages))
            page = yield threads.deferToThread(readTrace, service, "agent")
        assert echo.received == messages  # the agent got them all, community and all
        records = json.loads(page)["records"]
        assert {r["direction"] for r in records} == {"tx", "rx"}
        assert all(r["masked"] for r in records)
        assertAbsent(COMMUNITY, page, outputs.text())
    finally:
        yield service.stopService()
        trace.stopAll()
        yield handler.Disconnect()
        yield port.stopListening()


def test_a_secret_split_over_chunks_is_masked_and_other_text_is_not() -> None:
    mask = _Masker([b"PIN 7319-kz\r"])
    shown = [mask("tx", b"PIN 7319-kz\r")[0]]
    for piece in (b"PI", b"N 73", b"19-k", b"z\r\nOK\r\n"):
        shown.append(mask("rx", piece)[0])
    assert b"7319" not in b"".join(shown) and b"73" not in b"".join(shown)
    assert shown[-1] == b"**\nOK\r\n"  # "z\r" ends the secret
    assert mask("rx", b"PLAIN TEXT 42\r\n") == (b"PLAIN TEXT 42\r\n", False)
    # a secret inside a larger chunk sent
    shown2, masked = mask("tx", b"LOGIN PIN 7319-kz\r")
    assert masked and b"7319" not in shown2 and shown2.startswith(b"LOGIN ")


# the whole service: twistd chandler --trace, its log as written


@pytest_twisted.ensureDeferred
async def test_twistd_traces_a_secret_probe_without_its_payload(tmp_path: Path) -> None:
    from test_tap import chandler, stop

    port, device = echoDevice()
    try:
        (tmp_path / "site.toml").write_text(
            "[[device]]\n"
            'name = "keypad"\n'
            f'endpoint = "tcp:host=127.0.0.1:port={port.getHost().port}"\n'
            'probe = { type = "send", send = "PIN 7319-kz\\\\r", expect = "OK", secret = true }\n'
            "pollFrequency = 0.2\n"
        )
        for logFormat in ("text", "json"):
            device.received.clear()
            process = chandler(
                tmp_path, "--config", "site.toml", "--trace", "keypad", "--log-format", logFormat
            )
            try:
                await process.waitFor(rb"wire trace on", 30)
                for _ in range(400):  # bounded: three polls answered
                    if b"".join(device.received).count(b"PIN 7319-kz\r") >= 3:
                        break
                    await deferLater(reactor, 0.01, lambda: None)
            finally:
                await stop(process)
            assert b"".join(device.received).count(b"PIN 7319-kz\r") >= 3
            assert process.text.count("<secret: 12 bytes>") >= 3, process.text  # each poll
            assertAbsent(b"PIN 7319-kz\r", process.text)
    finally:
        await port.stopListening()
