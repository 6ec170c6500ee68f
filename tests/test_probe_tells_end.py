# -*- test-case-name: tests.test_probe_tells_end -*-
"""
A stock probe's keep-alive on the reactor thread: its wait judges the answer and ends the
handler's keep-alive itself (L{twisted_ch.protocols.device.tellInstead}), with no Deferred
callback.  Every outcome a poll can have ends the keep-alive, so the next tick polls again, and
gives the answers, problems and counts the Deferred path gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import LoggedEvents, deviceProtocol, rig
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from bench.micro import build
from twisted_ch._framing import ResponseMatcher
from twisted_ch.protocols.device import DeviceProtocol, WriteBufferFull, tellInstead
from twisted_ch.service.probes import PJLinkProbe, SISProbe, _answeredEnded
from twisted_ch.testing import FakeEndpoint

#: per probe: what it sends, a good answer, an error answer
PROBES = {
    "sis": (b"Q", b"1.23\r\n", b"E10\r\n"),
    "pjlink": (b"%1POWR ?\r", b"%1POWR=1\r", b"PJLINK ERRA\r"),
}


class Rig:
    def __init__(self, slow: bool = False, path: str = "sis") -> None:
        self.clock = Clock()
        self.handler, self.endpoint = build(path, self.clock)
        self.probe: SISProbe = self.handler._keepAliveQuery
        if slow:  # the Deferred path: no _pollTellingEnd for the handler to find
            self.handler._tellsEnd = None
        self.endpoint.written()

    def tick(self) -> bytes:
        """One PollTimer tick; what it sent."""
        self.clock.advance(1)
        return self.endpoint.written()

    @property
    def wait(self) -> Any:
        protocol = self.endpoint.protocol
        assert isinstance(protocol, DeviceProtocol)
        return protocol._waits[0] if protocol._waits else None

    def outcome(self) -> tuple[object, ...]:
        h = self.handler
        return (h.ConnectionStatus, h.missedPolls, h._keepAliveBusy, self.probe.accepted,
                self.probe.lastProblem)  # fmt: skip


def test_a_stock_probes_wait_tells_the_handlers_end_with_no_callback() -> None:
    r = Rig()
    assert r.tick() == b"Q"
    wait = r.wait
    assert wait._then is _answeredEnded and not wait._callbacks
    r.endpoint.respond(b"1.23\r\n")
    assert r.outcome() == ("Connected", 0, False, 1, None)
    assert not wait.called  # told instead of fired: nobody holds it


@pytest.mark.parametrize("path", sorted(PROBES))
@pytest.mark.parametrize(
    "outcome",
    ["answered", "error", "silent", "lost", "accepted raises"],
)
def test_every_outcome_ends_the_keep_alive_as_the_deferred_path_does(
    path: str, outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query, good, bad = PROBES[path]

    def play(r: Rig) -> list[object]:
        seen: list[object] = []
        with LoggedEvents(text=True) as logged:
            for _ in range(3):
                sent = r.tick()
                if outcome == "answered":
                    r.endpoint.respond(good)
                elif outcome == "error":
                    r.endpoint.respond(bad)
                elif outcome == "silent":
                    r.clock.advance(2.5)  # past the probe's 2 s timeout
                elif outcome == "lost":
                    assert r.endpoint.transport is not None
                    r.endpoint.transport.deviceResets()
                    r.clock.advance(0)
                    r.clock.advance(5)  # reconnected
                    if path == "pjlink":
                        r.endpoint.respond(b"PJLINK 0\r")
                    r.endpoint.written()
                else:
                    r.endpoint.respond(good)
                seen.append((sent, *r.outcome()))
        seen.append(sorted(line.split(": ", 1)[-1][:60] for line in logged))
        return seen

    if outcome == "accepted raises":
        calls = []

        def accepted(self: Any) -> None:
            calls.append(self)
            raise RuntimeError("accepted")

        monkeypatch.setattr(type(Rig().handler), "ResponseAccepted", accepted)
    fast, slow = Rig(path=path), Rig(slow=True, path=path)
    played = play(fast)
    assert played == play(slow)
    assert [step[0] for step in played[:3]] == [query] * 3  # every tick polled
    # the next tick polls again (a keep-alive left busy would skip it), telling its end
    assert fast.tick() == query and fast.wait._then is _answeredEnded


def test_a_pjlink_probe_not_yet_greeted_takes_its_query_and_then_tells_its_end() -> None:
    clock = Clock()
    handler, endpoint = build("pjlink", clock)
    endpoint.written()
    assert endpoint.transport is not None
    endpoint.transport.deviceResets()
    clock.advance(0)
    clock.advance(5)  # reconnected, no greeting yet: the tick waits for it
    endpoint.written()
    clock.advance(1)
    assert endpoint.written() == b""
    endpoint.respond(b"PJLINK 1 498e4a67\r")  # it asks for authentication: no password set
    probe = handler._keepAliveQuery
    assert "no password is configured" in str(probe.lastProblem)
    assert not handler._keepAliveBusy


def test_a_queued_wait_that_cannot_be_sent_tells_its_failure() -> None:
    protocol, endpoint = deviceProtocol()
    first = protocol.sendAndWait(b"A", 1, ResponseMatcher.fromKeywords({"deliLen": 1}))
    queued = protocol.sendAndWait(b"B", 1, ResponseMatcher.fromKeywords({"deliLen": 1}))
    told: list[object] = []
    assert tellInstead(queued, lambda result, *args: told.append((result, args)), 7)

    def full(data: bytes) -> None:
        raise WriteBufferFull("full")

    protocol.send = full  # type: ignore[method-assign]  # B cannot be sent when its turn comes
    first.addCallback(lambda _: None)
    endpoint.respond(b"a")
    assert len(told) == 1
    failure, args = told[0]
    assert args == (7,) and failure.check(WriteBufferFull)  # type: ignore[attr-defined]


def test_an_end_that_raises_is_logged_and_the_next_wait_is_sent() -> None:
    protocol, endpoint = deviceProtocol()
    first = protocol.sendAndWait(b"A", 1, ResponseMatcher.fromKeywords({"deliLen": 1}))
    second = protocol.sendAndWait(b"B", 1, ResponseMatcher.fromKeywords({"deliLen": 1}))

    def boom(result: object) -> None:
        raise RuntimeError("end")

    assert tellInstead(first, boom)
    assert endpoint.written() == b"A"
    with LoggedEvents(text=True) as logged:
        endpoint.respond(b"a")
    assert any("end raised" in line for line in logged)
    assert endpoint.written() == b"B"
    endpoint.respond(b"b")
    assert second.result == b"b"


def test_tellInstead_refuses_what_must_fire() -> None:
    protocol, endpoint = deviceProtocol()
    matcher = ResponseMatcher.fromKeywords({"deliLen": 1})
    withCallback = protocol.sendAndWait(b"A", 1, matcher)
    withCallback.addCallback(lambda _: None)
    assert not tellInstead(withCallback, print)
    assert not tellInstead(succeed(b"x"), print)  # not a wait
    assert not tellInstead(Deferred(), print)
    endpoint.respond(b"a")
    assert not tellInstead(withCallback, print)  # fired
    again = protocol.sendAndWait(b"B", 1, ResponseMatcher.fromKeywords({"deliLen": 1}))
    told: list[object] = []
    assert tellInstead(again, told.append)
    assert not tellInstead(again, print)  # told once
    endpoint.respond(b"b")
    assert told == [b"b"] and not again.called
    assert not tellInstead(again, print)  # ended: never told again


def _handlerWith(probe: Any, clock: Clock) -> tuple[Any, FakeEndpoint]:
    r = rig(probe, clock=clock, pollFrequency=1, record=())
    probe.attach(r.handler)
    r.handler.Connect()
    r.endpoint.written()
    return r.handler, r.endpoint


def test_a_probe_with_a_call_of_its_own_is_called_on_every_tick() -> None:
    calls: list[object] = []

    class Counted(SISProbe):
        def __call__(self, handler: Any) -> Any:
            calls.append(handler)
            return super().__call__(handler)

    clock = Clock()
    h, endpoint = _handlerWith(Counted(), clock)
    for _ in range(3):
        clock.advance(1)
        assert endpoint.written() == b"Q"
        endpoint.respond(b"1.23\r\n")
    assert calls == [h] * 3 and h.ConnectionStatus == "Connected"


def test_a_pjlink_probe_asking_its_own_way_takes_its_query() -> None:
    asked: list[bytes] = []

    class Mine(PJLinkProbe):
        def _ask(self, handler: Any, session: Any, prefix: bytes) -> Any:
            asked.append(prefix)
            return super()._ask(handler, session, prefix)

    clock = Clock()
    h, endpoint = _handlerWith(Mine(), clock)
    endpoint.respond(b"PJLINK 0\r")
    for _ in range(2):
        clock.advance(1)
        assert endpoint.written() == b"%1POWR ?\r"
        endpoint.respond(b"%1POWR=1\r")
    assert asked == [b"", b""] and h.ConnectionStatus == "Connected"
