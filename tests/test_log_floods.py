"""
Log floods (issue 19 item 5): an event that repeats is logged once, then counted once a period:
a program callback that raises in every event, a program thread too far behind to take the
data, refused /trace requests a web page can send in a loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from twisted_ch import _runtime
from twisted_ch._runtime import ProgramThread, ReactorDispatcher
from twisted_ch.service._trace import TraceResource, WireTrace
from twisted_ch.service._web import StatusSite


class Lines(list[dict[str, Any]]):
    """The events logged at warn or above."""

    def texts(self) -> list[str]:
        return [formatEvent(e) for e in self]


@pytest.fixture
def lines() -> Iterator[Lines]:
    seen = Lines()

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level", LogLevel.debug) >= LogLevel.warn:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


def test_a_callback_raising_in_every_event_is_one_line_then_a_count(lines: Lines) -> None:
    now = [0.0]
    summary = _runtime._raised
    summary.stop()
    summary.now = lambda: now[0]  # the module's summariser, on a test clock
    try:

        def onData(data: bytes) -> None:
            raise ValueError(f"bad frame {data!r}")  # a new message every time

        def onState(state: str) -> None:
            raise KeyError(state)

        dispatcher = ReactorDispatcher()
        for i in range(5000):
            dispatcher.call(onData, b"%d" % i)
            dispatcher.call(onState, "Connected")
        name = "test_a_callback_raising_in_every_event_is_one_line_then_a_count.<locals>"
        lines[:] = [e for e in lines if name in str(e.get("callback"))]  # (not earlier tests')
        assert len(lines) == 2  # one per callback and exception type, with its traceback
        assert all(e.get("log_failure") is not None for e in lines)
        now[0] = 60.0
        dispatcher.call(onData, b"later")  # the next period: the count, then this one
        summary.stop()  # (the service's stop): the other count
        lines[:] = [e for e in lines if name in str(e.get("callback"))]
        assert lines.texts()[2:] == [
            f"callback {name}.onData raised (4999 more like it in the previous 60 s)",
            f"callback {name}.onData raised",
            f"callback {name}.onState raised (4999 more like it in the previous 60 s)",
        ]
    finally:
        summary.stop()
        summary.now = time.monotonic


def test_a_program_thread_far_behind_logs_one_dropped_line_then_a_count(lines: Lines) -> None:
    clock = Clock()
    thread = ProgramThread(clock, maxQueue=3)  # never started: nothing drains the queue
    for _ in range(14_253):  # a second of the chatty device
        thread.call(lambda data: None, b"x", droppable=True)
    assert thread.dropped == 14_250
    assert len(lines) == 1 and "3 callbacks behind; dropped" in lines.texts()[0]
    clock.advance(60)
    assert len(lines) == 2 and "(14249 more like it in the previous 60 s)" in lines.texts()[1]
    thread.stop()
    assert clock.getDelayedCalls() == []


def test_refused_trace_posts_from_a_web_page_are_one_line_then_a_count(lines: Lines) -> None:
    clock = Clock()
    root = Resource()
    trace = WireTrace(clock, lambda name: None)
    root.putChild(b"trace", TraceResource(trace, lambda: True))
    site = StatusSite(root, reactor=clock)
    answers: list[bytes] = []
    for i in range(3000):
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000 + i % 1000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        origin = b"http://evil.test" if i % 2 else b"http://127.0.0.1.nip.example"
        channel.dataReceived(
            b"POST /trace HTTP/1.1\r\nHost: 127.0.0.1:8790\r\nOrigin: " + origin + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 18\r\n\r\n"
            b"device=x&minutes=1"
        )
        answers.append(transport.value().split(b" ", 2)[1])
        channel.connectionLost(Failure(ConnectionDone()))
    assert answers == [b"403"] * 3000 and site.refused == 3000
    assert lines.texts() == [
        "status page: a request from 127.0.0.1 refused: a request from another origin"
    ]
    clock.advance(60)
    assert lines.texts()[1:] == [
        "status page: a request from 127.0.0.1 refused: a request from another origin "
        "(2999 more like it in the previous 60 s)"
    ]
    site.doStop()
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_the_count_of_a_raising_callback_carries_no_traceback() -> None:
    """The count line is not a failure: the traceback came with the first of its kind."""
    from twisted.logger import Logger

    from twisted_ch._summary import Summarizer

    events: list[dict[str, Any]] = []
    logger = Logger(observer=events.append)
    clock = Clock()
    summary = Summarizer(clock, period=10.0)
    failure = Failure(ValueError("boom"))
    for _ in range(3):
        summary.emit(logger, "raised", LogLevel.critical, "raised", log_failure=failure)
    clock.advance(10)
    assert [e["log_level"] for e in events] == [
        LogLevel.critical,
        LogLevel.debug,
        LogLevel.debug,
        LogLevel.critical,
    ]
    assert "log_failure" in events[0]
    assert "log_failure" not in events[-1]
    assert events[-1]["repeated"] == 2
