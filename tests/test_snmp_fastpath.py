# -*- test-case-name: tests.test_snmp_fastpath -*-
"""
The SNMP probe's per-poll codec shortcuts give pyasn1's answers: a GetRequest patched from a
template is the bytes L{encodeMessage} writes (and pyasn1 decodes it back), and
L{decodeUptime} returns what L{decodeMessage} (and L{decodeTimeTicks}) read, or nothing at all.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from twisted.internet.task import Clock

pytest.importorskip("pyasn1")

from twisted_ch.protocols._probecodec import (  # noqa: E402
    SYS_UPTIME,
    GetRequestTemplate,
    SNMPMessage,
    _asn1,
    decodeMessage,
    decodeTimeTicks,
    decodeUptime,
    encodeMessage,
)

#: request-ids at every boundary of the INTEGER's length (1 to 5 bytes), and the extremes
RIDS = [
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFFFF,
    0x800000,
    0x7FFFFFFF,
    0x80000000 - 2,
    0x80000000 - 1,
]


@pytest.mark.parametrize("community", [b"public", b"", b"x" * 200, bytes(range(256))[:130]])
@pytest.mark.parametrize("version", [0, 1])
def test_a_patched_request_is_the_bytes_pyasn1_writes(version: int, community: bytes) -> None:
    a = _asn1()
    template = GetRequestTemplate(version, community)
    rng = random.Random(21)
    for rid in RIDS + [rng.randrange(1, 2**31 - 1) for _ in range(300)]:
        fast = template.encode(rid)
        assert fast == encodeMessage(version, community, "get-request", rid, [(SYS_UPTIME, a.NULL)])
        back = decodeMessage(fast)
        assert (back.version, back.community, back.pduKind, back.requestId) == (
            version,
            community,
            "get-request",
            rid,
        )
        assert back.binds == [(SYS_UPTIME, bytes.fromhex("0500"))]


@pytest.mark.parametrize("rid", [0, -1, -128, 2**31, 2**40])
def test_the_template_takes_only_the_probes_request_ids(rid: int) -> None:
    with pytest.raises(ValueError, match="request-id must be 1 to 2"):
        GetRequestTemplate(1, b"public").encode(rid)


def test_the_template_fails_loudly_if_pyasn1_ever_wrote_the_id_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.protocols import _probecodec

    monkeypatch.setattr(_probecodec, "encodeMessage", lambda *a: b"\x30\x03\x02\x01\x09")
    with pytest.raises(ValueError, match="request-id 7"):
        GetRequestTemplate(1, b"public").encode(7)


def _responses() -> list[bytes]:
    a = _asn1()
    found = []
    for rid in (1, 0x80, 0x7FFFFFFF, 123456):
        for ticks in (0, 5, 0x7F, 0x80, 2**31 - 1, 2**32 - 1, 10**12):
            for community in (b"public", b"site-ro"):
                for status in (0, 2):
                    found.append(
                        encodeMessage(
                            1, community, "response", rid, [(SYS_UPTIME, a.TimeTicks(ticks))]
                        )
                    )
                    if status:
                        m = a.decode(found[-1], asn1Spec=a.Message())[0]
                        m["data"]["response"]["error-status"] = status
                        found.append(a.encode(m))
    return found


def _same(fast: SNMPMessage, datagram: bytes) -> None:
    slow = decodeMessage(datagram)
    assert fast.uptimeTicks is not None
    assert (fast.version, fast.community, fast.pduKind, fast.requestId, fast.errorStatus) == (
        slow.version,
        slow.community,
        slow.pduKind,
        slow.requestId,
        slow.errorStatus,
    )
    assert fast.binds == slow.binds
    assert fast.uptimeTicks == decodeTimeTicks(slow.binds[0][1])


def test_the_usual_answer_decodes_as_pyasn1_decodes_it() -> None:
    answers = _responses()
    for datagram in answers:
        fast = decodeUptime(datagram)
        assert fast is not None, datagram.hex()
        _same(fast, datagram)
    assert {decodeUptime(d).errorStatus for d in answers} == {0, 2}  # type: ignore[union-attr]


def test_anything_else_is_left_to_pyasn1() -> None:
    a = _asn1()
    others = [
        encodeMessage(1, b"public", "get-request", 7, [(SYS_UPTIME, a.TimeTicks(5))]),
        encodeMessage(1, b"public", "response", 7, [(SYS_UPTIME, a.NULL)]),  # noSuchObject-ish
        encodeMessage(1, b"public", "response", 7, [(SYS_UPTIME, a.univ.Integer(5))]),
        encodeMessage(1, b"public", "response", 7, [("1.3.6.1.2.1.1.5.0", a.TimeTicks(5))]),
        encodeMessage(1, b"public", "response", 7, [(SYS_UPTIME, a.TimeTicks(5))] * 2),
        encodeMessage(1, b"public", "response", 7, []),
        encodeMessage(1, b"public", "response", 7, [(SYS_UPTIME, a.TimeTicks(5))]) + b"\x00",
        b"",
        b"\x30",
        b"\x30\x84\xff\xff\xff\xff",
    ]
    for datagram in others:
        assert decodeUptime(datagram) is None, datagram.hex()


def test_no_mutation_of_an_answer_decodes_differently_from_pyasn1() -> None:
    """Every byte changed, dropped or doubled, lengths made long-form: same answer, or none."""
    rng = random.Random(2112)
    seeds = _responses()
    tried = fast = 0
    variants: list[bytes] = []
    for datagram in seeds[:12]:
        for i in range(len(datagram)):
            for b in {0x00, 0x01, 0x02, 0x04, 0x30, 0x43, 0x7F, 0x80, 0x81, 0xA2, 0xFF}:
                variants.append(datagram[:i] + bytes([b]) + datagram[i + 1 :])
            variants.append(datagram[:i] + datagram[i + 1 :])
            variants.append(datagram[:i] + datagram[i : i + 1] + datagram[i:])
    for datagram in seeds:
        for _ in range(40):
            d = bytearray(datagram)
            for _ in range(rng.randint(1, 3)):
                d[rng.randrange(len(d))] = rng.randrange(256)
            variants.append(bytes(d))
    variants += [_longForm(d) for d in seeds]
    for datagram in variants:
        tried += 1
        got = decodeUptime(datagram)
        if got is None:
            continue
        fast += 1
        _same(got, datagram)  # raises ValueError if pyasn1 does not decode it at all
    assert tried > 5000 and fast > 100  # the comparison ran on many the shortcut accepted


def _longForm(datagram: bytes) -> bytes:
    """The same message with every length written in the long form (BER allows it)."""

    def item(data: bytes, at: int) -> tuple[bytes, int]:
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[at : at + n], "big")
            at += n
        content = data[at : at + length]
        if tag in (0x30, 0xA2):
            inner, k = b"", 0
            while k < len(content):
                piece, k = item(content, k)
                inner += piece
            content = inner
        return bytes([tag, 0x81, len(content)]) + content, at + length

    return item(datagram, 0)[0]


def test_long_form_lengths_take_the_shortcut_too() -> None:
    for datagram in _responses()[:6]:
        long = _longForm(datagram)
        assert long != datagram
        got = decodeUptime(long)
        assert got is not None
        _same(got, long)


def _session(community: str = "site") -> tuple[Any, Any, list[Any]]:
    from twisted_ch.service import probes

    link = type("L", (), {"clock": Clock(), "description": "ups", "observers": []})()
    probe = probes.SNMPProbe(community=community)
    session = probes._SNMPSession(link, probe)  # type: ignore[arg-type]
    answered: list[Any] = []
    return probe, session, answered


def test_the_session_takes_the_shortcut_for_the_usual_answer_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import probes

    a = _asn1()
    decoded: list[int] = []
    real = probes.decodeMessage
    monkeypatch.setattr(probes, "decodeMessage", lambda d: decoded.append(len(d)) or real(d))
    probe, session, answered = _session()
    session.expect(7, 5.0).addCallback(answered.append)
    session.linkData(encodeMessage(1, b"site", "response", 7, [(SYS_UPTIME, a.TimeTicks(5))]))
    assert decoded == [] and [m.uptimeTicks for m in answered] == [5]
    # an answer of another shape: pyasn1 decodes it, as before
    session.expect(8, 5.0).addCallback(answered.append)
    session.linkData(encodeMessage(1, b"site", "response", 8, [(SYS_UPTIME, a.NULL)]))
    assert len(decoded) == 1 and answered[1].uptimeTicks is None and answered[1].requestId == 8


def test_the_probe_judges_a_shortcut_answer_as_a_decoded_one() -> None:
    """The uptime, error-status and missing sysUpTime problems are the same either way."""
    from twisted_ch.service.probes import SNMPProbe

    a = _asn1()
    for ticks, status in ((12345, 0), (0, 0), (2**32 - 1, 0), (5, 2)):
        datagram = encodeMessage(1, b"site", "response", 7, [(SYS_UPTIME, a.TimeTicks(ticks))])
        if status:
            m = a.decode(datagram, asn1Spec=a.Message())[0]
            m["data"]["response"]["error-status"] = status
            datagram = a.encode(m)
        fast, slow = SNMPProbe(community="site"), SNMPProbe(community="site")
        shortcut = decodeUptime(datagram)
        assert shortcut is not None
        handler = object()
        assert fast._judge(shortcut, handler) == slow._judge(decodeMessage(datagram), handler)
        assert (fast.uptime, fast.lastProblem) == (slow.uptime, slow.lastProblem)


def test_the_session_counts_and_answers_alike_with_or_without_the_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Wrong community, version or id, a replay, past the budget: the same either way."""
    from twisted_ch.service import probes
    from twisted_ch.service.probes import SNMP_DATAGRAM_BUDGET

    a = _asn1()

    def good(rid: int, community: bytes = b"site", version: int = 1) -> bytes:
        return encodeMessage(version, community, "response", rid, [(SYS_UPTIME, a.TimeTicks(9))])

    def run() -> tuple[Any, ...]:
        probe, session, answered = _session()
        for rid in range(1, 4):
            session.expect(rid, 5.0).addCallback(answered.append)
        for datagram in [
            good(1, b"guess"),
            good(1, version=0),
            good(9),
            good(1),
            good(1),  # a replay
            good(2) + b"\x00",  # not the usual shape: pyasn1's
        ] + [good(3, b"guess")] * (SNMP_DATAGRAM_BUDGET * 2):
            session.linkData(datagram)
        for _ in range(SNMP_DATAGRAM_BUDGET + 5):  # the budget: charged alike
            session.expect(100, 5.0)
            session.linkData(good(100))
        seen = [(m.requestId, m.errorStatus, m.binds) for m in answered if m is not None]
        return probe.ignored, probe.dropped, seen, sorted(session.pending)

    fast = run()
    monkeypatch.setattr(probes, "decodeUptime", lambda datagram: None)
    assert run() == fast
    assert fast[0] > 0 and fast[1] > 0 and [s[0] for s in fast[2]][:2] == [1, 2]


def test_probes_of_one_community_share_one_template_and_others_get_their_own() -> None:
    from twisted_ch.service.probes import SNMPProbe

    a, b = SNMPProbe(community="site"), SNMPProbe(community="site")
    other, v1 = SNMPProbe(community="other"), SNMPProbe(community="site", version="1")
    assert a._template is b._template
    assert other._template is not a._template and v1._template is not a._template
    assert (
        a._request(77)
        == b._request(77)
        == encodeMessage(1, b"site", "get-request", 77, [(SYS_UPTIME, _asn1().NULL)])
    )
    assert other._request(77) == encodeMessage(
        1, b"other", "get-request", 77, [(SYS_UPTIME, _asn1().NULL)]
    )
    a.community = b"changed"  # a probe whose community changes gets the template of the new one
    assert a._request(5) == encodeMessage(
        1, b"changed", "get-request", 5, [(SYS_UPTIME, _asn1().NULL)]
    )
    assert b._request(5)[7:11] == b"site"


def test_a_probe_keeps_one_session_per_link_however_many_it_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import probes

    class Link:
        def __init__(self) -> None:
            self.clock = Clock()
            self.description = "ups"
            self.observers: list[Any] = []

    class Handler:
        def __init__(self, link: Link) -> None:
            self.link = link

    monkeypatch.setattr(probes, "DeviceLink", Link)
    probe = probes.SNMPProbe()
    first, second, third = Link(), Link(), Link()
    sessions = [probe._session(Handler(link)) for link in (first, second, third, second, first)]
    assert [s.link for s in sessions] == [first, second, third, second, first]
    assert sessions[0] is sessions[4] and sessions[1] is sessions[3]
    assert len({id(s) for s in sessions}) == 3
    assert [len(link.observers) for link in (first, second, third)] == [1, 1, 1]
