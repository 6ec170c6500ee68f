# -*- test-case-name: tests.test_probe_fastpath -*-
"""
A stock probe's poll chains its send and its judge in one callback (L{Probe._once}); a probe whose
C{query} is replaced takes the documented path (C{query}'s Deferred, then the judge).  Both give
the same answer, problem, count and log lines for every outcome.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import LogEvent, globalLogPublisher

from twisted_ch.protocols.device import LinkDown
from twisted_ch.service.probes import Probe, SendExpectProbe, SISProbe


class NotADeferred:
    """What a handler of another kind might answer SendAndWait with on the reactor thread."""


class FakeHandler:
    """What a probe calls: SendAndWait (answered as told) and ResponseAccepted (counted)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.accepted = 0
        self.sent: list[bytes] = []
        self.raw = False

    def SendAndWait(self, data: bytes, timeout: float, **delimiter: Any) -> Any:
        self.sent.append(data)
        answer = self.answer
        if isinstance(answer, NotADeferred | bytes) and self.raw:
            return answer
        if isinstance(answer, BaseException):
            if isinstance(answer, LinkDown | ValueError):
                return fail(answer)
            raise answer
        return succeed(answer)

    def ResponseAccepted(self) -> None:
        self.accepted += 1


def _slow(probe: Probe) -> Probe:
    """The same probe taking the documented path: its query replaced by an equal one."""
    stock = type(probe).query
    probe.query = lambda handler: stock(probe, handler)  # type: ignore[method-assign]
    return probe


def _poll(probe: Probe, answer: Any, raw: bool = False) -> tuple[Any, ...]:
    handler = FakeHandler(answer)
    handler.raw = raw
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        results: list[Any] = []
        d: Deferred[bool] = probe(handler)
        d.addBoth(results.append)
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [
        (e.get("log_level"), e.get("log_format"), e.get("problem"))
        for e in events
        if e.get("log_namespace") == "twisted_ch.service.probes"
    ]
    return results, probe.lastProblem, probe.accepted, handler.accepted, handler.sent, logged


class Boom(Exception):
    pass


ANSWERS = [
    b"1.23\r\n",
    b"",
    None,
    b"E10\r\n",
    LinkDown("gone"),
    ValueError("bad"),
    Boom("raised"),
]


@pytest.mark.parametrize(
    "make",
    [
        lambda: SISProbe(),
        lambda: SISProbe("N", expect=rb"\d+"),
        lambda: SendExpectProbe(b"P", rb"E10|1\.23"),
        lambda: SendExpectProbe(b"PIN", b"OK", secret=True),
    ],
)
def test_the_one_callback_path_answers_as_the_query_path(make: Any) -> None:
    fast, slow = make(), _slow(make())
    for sequence in (ANSWERS, ANSWERS[::-1], [ANSWERS[0], ANSWERS[3], ANSWERS[0]]):
        for answer in sequence:
            assert _poll(fast, answer) == _poll(slow, answer), answer


def test_a_judge_that_raises_is_a_problem_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    def judge(self: Any, response: bytes, handler: Any) -> bool:
        raise Boom("judge")

    monkeypatch.setattr(SISProbe, "_judge", judge)
    fast, slow = SISProbe(), _slow(SISProbe())
    one, other = _poll(fast, b"1.23\r\n"), _poll(slow, b"1.23\r\n")
    assert one == other
    assert one[0] == [False] and "Boom: judge" in str(fast.lastProblem)


def test_the_fast_path_is_taken_only_for_the_stock_query(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def answered(self: Any, response: bytes, handler: Any) -> bool:
        calls.append("fast")
        return Probe._answered(self, response, handler)

    monkeypatch.setattr(SISProbe, "_answered", answered)
    _poll(SISProbe(), b"1.23\r\n")
    assert calls == ["fast"]

    class Mine(SISProbe):
        def query(self, handler: Any) -> Any:
            calls.append("mine")
            return super().query(handler)

    _poll(Mine(), b"1.23\r\n")
    _poll(_slow(SISProbe()), b"1.23\r\n")
    assert calls == ["fast", "mine"]


def test_a_send_answered_with_no_deferred_fails_as_the_query_path_fails() -> None:
    for answer in (b"1.23\r\n", NotADeferred()):
        fast, slow = SISProbe(), _slow(SISProbe())
        one, other = _poll(fast, answer, raw=True), _poll(slow, answer, raw=True)
        assert one == other
        assert one[0] == [False] and "AttributeError" in str(fast.lastProblem)
