"""
Hardening (issue 11): no single device can stall the reactor. Worst-case answers for the stock
probes' patterns, SNMP junk and floods, and a device that stopped reading.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, Watch, bounded, sleep
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler, LinkDown
from twisted_ch.extronlib.interface import (
    EndpointInterface,
    EthernetClientInterface,
)
from twisted_ch.testing import listenDevice, waitUntil

# -- hardening (issue 11): no single device can stall the reactor


def _hostileSIS(answer: bytes, greeting: bytes = b"") -> Factory:
    """A device that answers everything it receives with C{answer}."""

    class Hostile(Protocol):
        def connectionMade(self) -> None:
            if greeting and self.transport is not None:
                self.transport.write(greeting)

        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(answer)
            factory.answered += 1

    factory = Factory.forProtocol(Hostile)
    factory.answered = 0  # type: ignore[attr-defined]
    return factory


#: worst cases for the stock probes' answer patterns, each up to maxResponse (64 KiB)
ADVERSARIAL = {
    "sis Q digits": ("sis", {"query": "Q"}, b"1." + b"9" * 65000),
    "sis *Q digits": ("sis", {"query": "*Q"}, b"1." + b"9" * 65000),
    "sis N": ("sis", {"query": "N"}, b"60-1234-01" + b"x" * 65000),
    "pjlink POWR": ("pjlink", {}, b"%1POWR=" * 9000),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest_twisted.ensureDeferred
@bounded(60)
async def test_a_device_answering_the_worst_case_for_its_probe_costs_the_others_nothing(
    case: str,
) -> None:
    """
    The hostile device answers every probe with maxResponse bytes built to make the probe's
    pattern backtrack (the SIS Q pattern took 42 s on 60,000 digits).  A witness polled every
    0.2 s on the same reactor misses no poll; were any pattern super-linear, the reactor would
    stall for seconds per probe and the witness would be Disconnected (or the test time out).
    """
    from twisted_ch.service.probes import makeProbe

    kind, options, answer = ADVERSARIAL[case]
    answering = _hostileSIS(answer, b"PJLINK 0\r" if kind == "pjlink" else b"")
    hostile = reactor.listenTCP(0, answering, interface="127.0.0.1")
    witness = listenDevice(reactor, {b"P": ANSWER})
    probe = makeProbe(kind, {**options, "timeout": 0.15})
    bad = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", hostile.getHost().port), probe, pollFrequency=0.2
    )
    w = Watch(witness.port, pollFrequency=0.2, DisconnectLimit=5)
    try:
        await w.handler.Connect()
        await bad.Connect()
        await waitUntil(reactor, lambda: answering.answered >= 5, 30)  # type: ignore[attr-defined]
        assert w.states() == ["Connected"]
        assert len(w.accepts) >= len(w.sends) - 1
        assert probe.accepted == 0  # none of it was a good answer
    finally:
        await bad.Disconnect()
        await w.handler.Disconnect()
        await hostile.stopListening()
        await witness.shutdown()


def test_stock_patterns_accept_what_they_accepted_before_on_ordinary_answers() -> None:
    """The linear patterns classify ordinary lines as the old backtracking ones did."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from twisted_ch.service.probes import SIS_ANSWERS

    old = {
        b"Q": rb"(?:Ver\d+\*)?\d+\.\d+[\w.\-]*",
        b"*Q": rb"\d+\.\d+[^\r\n]*",
        b"N": rb"(?:Pno)?\d{2}-\d{3,4}-\d{2}[^\r\n]*",
        b"I": rb"[^\r\n]+",
    }

    def compiled(answer: bytes) -> re.Pattern[bytes]:
        return re.compile(rb"(?m)^(?:(?P<sisError>E\d\d)|(?P<sisAnswer>" + answer + rb"))\r?\n")

    pairs = [(compiled(old[q]), compiled(SIS_ANSWERS[q])) for q in old]
    alphabet = st.sampled_from(
        [b"1", b"9", b".", b"-", b"*", b"Ver", b"Pno", b"E1", b"x", b"\r", b"\n", b" "]
    )

    @settings(max_examples=400, deadline=None)
    @given(st.lists(alphabet, max_size=30))
    def check(pieces: list[bytes]) -> None:
        text = b"".join(pieces)
        for before, after in pairs:
            a, b = before.search(text), after.search(text)
            assert (a and a.span()) == (b and b.span()), text

    check()


def test_snmp_datagrams_that_answer_no_request_are_rejected_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Work counted: a flood of big or foreign datagrams costs no decoding; a budget per device."""
    from twisted_ch.service import probes
    from twisted_ch.service.probes import SNMP_DATAGRAM_BUDGET, SYS_UPTIME, SNMPProbe, encodeMessage

    clock = Clock()
    link = type("L", (), {"clock": clock, "description": "ups", "observers": []})()
    probe = SNMPProbe(community="site")
    session = probes._SNMPSession(link, probe)  # type: ignore[arg-type]
    decoded: list[int] = []
    real = probes.decodeMessage
    monkeypatch.setattr(probes, "decodeMessage", lambda d: decoded.append(len(d)) or real(d))
    a = probes._asn1()
    big = encodeMessage(1, b"site", "response", 7, [(SYS_UPTIME, a.NULL)] * 300)
    assert len(big) > probes.MAX_SNMP_DATAGRAM
    answered: list[Any] = []
    session.expect(7, 5.0).addCallback(answered.append)
    floods = [
        big,  # too big
        encodeMessage(1, b"guess", "response", 7, [(SYS_UPTIME, a.NULL)]),  # wrong community
        encodeMessage(0, b"site", "response", 7, [(SYS_UPTIME, a.NULL)]),  # wrong version
        encodeMessage(1, b"site", "response", 8, [(SYS_UPTIME, a.NULL)]),  # no such request
        encodeMessage(1, b"site", "get-request", 7, [(SYS_UPTIME, a.NULL)]),  # not a response
        b"\x30\x84\xff\xff\xff\xff",  # a length past the datagram
        b"",
    ]
    for datagram in floods * 3:
        session.linkData(datagram)
    assert decoded == [] and answered == []
    assert probe.ignored == len(floods) * 3
    good = encodeMessage(1, b"site", "response", 7, [(SYS_UPTIME, a.TimeTicks(5))])
    session.linkData(good)
    session.linkData(good)  # a replay: the request is answered already
    # (the usual answer is read without pyasn1: decodeUptime; tests/test_snmp_fastpath.py)
    assert decoded == [] and len(answered) == 1
    # junk never touches the budget: cheap rejections are not charged
    for _ in range(SNMP_DATAGRAM_BUDGET * 3):
        session.linkData(big)
    assert probe.dropped == 0
    # datagrams that pass the cheap checks but do not decode are charged: at most the budget
    # of them is decoded per second
    session.expect(9, 5.0)
    good9 = encodeMessage(1, b"site", "response", 9, [(SYS_UPTIME, a.TimeTicks(5))])
    at = good9.index(bytes([0x02, 0x01, 0x09])) + 3
    spoof = good9[:at] + b"\x04" + good9[at + 1 :]  # the header of 9's answer, a broken body
    decoded.clear()
    clock.advance(1.0)  # a second of its own (the good answer above was charged)
    for _ in range(SNMP_DATAGRAM_BUDGET * 3):
        session.linkData(spoof)
    assert len(decoded) == SNMP_DATAGRAM_BUDGET
    assert probe.dropped == SNMP_DATAGRAM_BUDGET * 2
    clock.advance(1.0)  # a new second: the budget is back
    session.linkData(spoof)
    assert len(decoded) == SNMP_DATAGRAM_BUDGET + 1
    assert probe.dropped == SNMP_DATAGRAM_BUDGET * 2


def test_a_junk_snmp_flood_does_not_starve_the_real_answer() -> None:
    """Junk (any amount, in one second) is rejected before the budget: the answer still counts."""
    from twisted_ch.service import probes
    from twisted_ch.service.probes import SNMP_DATAGRAM_BUDGET, SYS_UPTIME, SNMPProbe, encodeMessage

    clock = Clock()
    link = type("L", (), {"clock": clock, "description": "ups", "observers": []})()
    probe = SNMPProbe(community="site")
    session = probes._SNMPSession(link, probe)  # type: ignore[arg-type]
    a = probes._asn1()
    answered: list[Any] = []
    session.expect(7, 5.0).addCallback(answered.append)
    junk = [
        encodeMessage(1, b"site", "response", 8, [(SYS_UPTIME, a.NULL)]),  # another request-id
        encodeMessage(1, b"guess", "response", 7, [(SYS_UPTIME, a.NULL)]),  # another community
        b"\x00" * 40,
    ]
    for _ in range(SNMP_DATAGRAM_BUDGET * 10):
        for datagram in junk:
            session.linkData(datagram)
    session.linkData(encodeMessage(1, b"site", "response", 7, [(SYS_UPTIME, a.TimeTicks(5))]))
    assert len(answered) == 1 and answered[0].requestId == 7
    assert probe.dropped == 0 and probe.ignored == SNMP_DATAGRAM_BUDGET * 10 * len(junk)


@pytest_twisted.ensureDeferred
@bounded(60)
async def test_an_snmp_agent_sending_junk_before_each_answer_is_still_polled() -> None:
    from twisted_ch.service import probes
    from twisted_ch.service.probes import SNMP_DATAGRAM_BUDGET, SYS_UPTIME, SNMPProbe, encodeMessage
    from twisted_ch.testing import listenSNMP

    agent = listenSNMP(reactor, "site")
    a = probes._asn1()
    # more junk before every answer than the budget allows in a second
    agent.junk = [encodeMessage(1, b"site", "response", 1, [(SYS_UPTIME, a.NULL)])] * (
        SNMP_DATAGRAM_BUDGET * 2
    )
    probe = SNMPProbe(community="site", timeout=1.0)
    endpoint = clientFromString(reactor, f"udp:host=127.0.0.1:port={agent.port}")
    h = GetConnectionHandler(
        EndpointInterface(endpoint, reactor=reactor, connectionOriented=False),
        probe,
        pollFrequency=0.2,
    )
    probe.attach(h)
    try:
        h.Connect()
        await waitUntil(reactor, lambda: probe.accepted >= 5, 30)
        assert probe.dropped == 0
        assert probe.ignored >= SNMP_DATAGRAM_BUDGET * 2  # the junk arrived and was looked at
        assert h.ConnectionStatus == "Connected"
    finally:
        await h.Disconnect()
        await agent.shutdown()


@pytest_twisted.ensureDeferred
@bounded(60)
async def test_an_snmp_agent_flooding_big_datagrams_is_still_polled_and_costs_no_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import probes
    from twisted_ch.service.probes import SYS_UPTIME, SNMPProbe, encodeMessage
    from twisted_ch.testing import listenSNMP

    decoded: list[int] = []
    real = probes.decodeMessage
    monkeypatch.setattr(probes, "decodeMessage", lambda d: decoded.append(len(d)) or real(d))
    agent = listenSNMP(reactor, "site")
    a = probes._asn1()
    agent.junk = [encodeMessage(1, b"site", "response", 1, [(SYS_UPTIME, a.NULL)] * 1500)] * 20
    probe = SNMPProbe(community="site", timeout=1.0)
    endpoint = clientFromString(reactor, f"udp:host=127.0.0.1:port={agent.port}")
    h = GetConnectionHandler(
        EndpointInterface(endpoint, reactor=reactor, connectionOriented=False),
        probe,
        pollFrequency=0.2,
    )
    probe.attach(h)
    try:
        h.Connect()
        await waitUntil(reactor, lambda: probe.accepted >= 5, 30)
        assert probe.ignored + probe.dropped >= 20  # (the kernel may drop some of the flood)
        assert all(n < probes.MAX_SNMP_DATAGRAM for n in decoded)
        assert len(decoded) <= probe.accepted + 1
        assert h.ConnectionStatus == "Connected"
    finally:
        await h.Disconnect()
        await agent.shutdown()


class _NotReading(Protocol):
    """A device that stops reading at once: whatever is sent piles up in the buffers."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.pauseProducing()  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
@bounded(60)
async def test_Send_to_a_device_that_stopped_reading_is_refused_past_the_write_buffer() -> None:
    from twisted_ch.protocols.device import DEFAULT_MAX_WRITE_BUFFER, WriteBufferFull, queuedBytes

    listening = reactor.listenTCP(0, Factory.forProtocol(_NotReading), interface="127.0.0.1")
    # no keep-alive: the handler counts no sends (with one, the 16th unanswered Send would drop
    # the link, issue 10) and is Connected while the link is up
    w = Watch(listening.getHost().port, keepAlive=None, pollFrequency=60)
    h = w.handler
    chunk = b"x" * 65536
    sent = 0
    try:
        await h.Connect()
        protocol = h.Interface.link.protocol
        with pytest.raises(WriteBufferFull) as info:
            for _ in range(2000):  # 128 MiB: far more than the kernel's buffers and ours
                h.Send(chunk)
                sent += len(chunk)
                await sleep(0)  # the reactor writes what the kernel takes
        assert isinstance(info.value, LinkDown) and isinstance(info.value, IOError)
        assert "not reading" in str(info.value)
        queued = queuedBytes(protocol.transport)
        assert DEFAULT_MAX_WRITE_BUFFER - len(chunk) < queued <= DEFAULT_MAX_WRITE_BUFFER
        assert sent < 64 * 2**20  # refused long before: the kernel holds a few MiB at most
        with pytest.raises(WriteBufferFull):
            h.Send(chunk)
        assert protocol.writesRefused == 2
        assert h.ConnectionStatus == "Connected"
    finally:
        await h.Disconnect()
        await listening.stopListening()
