"""
Repeated identical log events are one line then a count per period: the summarizer, a device
that stays down, and a server's refusals.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from twisted_ch.testing import FakeEndpoint


def _logLines() -> tuple[list[str], list[str], Any]:
    """Lines logged at info level and above, those logged at debug level, and the logger."""
    from twisted.logger import Logger, LogLevel, formatEvent

    lines: list[str] = []
    debug: list[str] = []

    def observe(event: Any) -> None:
        (debug if event["log_level"] == LogLevel.debug else lines).append(formatEvent(event))

    return lines, debug, Logger(observer=observe)


def test_repeated_identical_events_are_one_line_then_a_count_per_period() -> None:
    from twisted.logger import LogLevel

    from twisted_ch._summary import Summarizer

    clock = Clock()
    lines, debug, logger = _logLines()
    summary = Summarizer(clock, period=10.0)
    for i in range(1600):  # 64 per second for 25 s, as a client retrying in a loop
        summary.emit(logger, "full", LogLevel.warn, "refused {peer}", peer=f"p{i}")
        clock.advance(1 / 64)
    summary.emit(logger, "other", LogLevel.warn, "refused {peer}: other", peer="b")
    assert lines == [
        "refused p0",
        "refused p639 (639 more like it in the previous 10 s)",  # at 10 s, by the timer
        "refused p1279 (640 more like it in the previous 10 s)",  # at 20 s
        "refused b: other",  # another kind: at once
    ]
    assert len(debug) == 1599  # each counted one at debug level
    clock.advance(10)  # the burst stopped at 25 s: its last count is still told, at 30 s
    assert lines[-1] == "refused p1599 (320 more like it in the previous 10 s)"
    assert clock.getDelayedCalls() == []  # nothing pending: no timer
    clock.advance(100)
    summary.emit(logger, "full", LogLevel.warn, "refused {peer}", peer="c")
    assert lines[-1] == "refused c"  # a new run: at once
    assert clock.getDelayedCalls() == []


def test_a_burst_that_stops_is_counted_at_the_end_of_its_period() -> None:
    """697 refusals in 7 s, then none: the count is logged at 10 s, not with a later event."""
    from twisted.logger import LogLevel

    from twisted_ch._summary import Summarizer

    clock = Clock()
    lines, _, logger = _logLines()
    summary = Summarizer(clock, period=10.0)
    for i in range(697):
        summary.emit(logger, "full", LogLevel.info, "refused {peer}", peer=f"p{i}")
        clock.advance(0.01)
    counted = [line for line in lines if "more like it" in line]
    assert counted == [] and len(clock.getDelayedCalls()) == 1
    clock.advance(3.1)  # past 10 s
    assert [line for line in lines if "more like it" in line] == [
        "refused p696 (696 more like it in the previous 10 s)"
    ]
    assert clock.getDelayedCalls() == []


def test_stopping_a_summarizer_tells_its_counts_and_leaves_no_timer() -> None:
    from twisted.logger import LogLevel

    from twisted_ch._summary import Summarizer

    clock = Clock()
    lines, _, logger = _logLines()
    summary = Summarizer(clock, period=60.0)
    for name in ("a", "a", "a", "b", "b", "c"):
        summary.emit(logger, name, LogLevel.info, "event {name}", name=name)
    clock.advance(5)
    assert summary.pending == 2 and len(clock.getDelayedCalls()) == 2
    summary.stop()
    assert clock.getDelayedCalls() == [] and summary.pending == 0
    assert [line for line in lines if "more like it" in line] == [
        "event a (2 more like it in the previous 5 s)",
        "event b (1 more like it in the previous 5 s)",
    ]


def test_a_device_that_stays_down_logs_its_connect_failures_once_then_a_count() -> None:
    """
    The per-attempt "connect failed" line, every connectRetryTime forever for a device that is
    down, is one line then a count per minute; a new reason is logged at once, and connecting
    tells the count so far.
    """
    from twisted_ch._link import CLOSE_GRACE, DeviceLink

    clock = Clock()
    lines, _, logger = _logLines()
    endpoint = FakeEndpoint(clock)
    endpoint.refuse = True
    link = DeviceLink(endpoint, clock, "projector", reopenDelay=7)
    link.log = logger
    link.open()  # attempts at 0, 7, 14, ... s
    clock.pump([1.0] * 130)
    assert lines == [
        "projector: connect failed: Connection refused",
        "projector: connect failed: Connection refused (8 more like it in the previous 60 s)",
        "projector: connect failed: Connection refused (9 more like it in the previous 60 s)",
    ]
    assert len(endpoint.attempts) == 19
    endpoint.refuse, endpoint.hang = False, True  # attempt at 133 s, timed out at 143 s
    clock.pump([1.0] * 13)
    assert lines[3:] == [
        "projector: connect failed: Connection refused (1 more like it in the previous 23 s)",
        "projector: connect failed: Timed out",  # a different reason: at once
    ]
    endpoint.hang = False  # the attempt at 150 s connects
    clock.pump([1.0] * 7)
    assert link.connected and lines[5:] == ["projector: connected"]
    link.close()
    clock.advance(CLOSE_GRACE)
    assert clock.getDelayedCalls() == []  # no summary timer left behind


def test_a_servers_refusals_are_counted_until_it_stops_listening_then_told() -> None:
    """A server refusing a client in a loop: one line, and the rest counted when it stops."""
    from types import SimpleNamespace

    from twisted.internet.address import IPv4Address

    from twisted_ch.extronlib._servers import ClientsFactory

    clock = Clock()
    lines, debug, logger = _logLines()
    server = SimpleNamespace(
        _rt=SimpleNamespace(reactor=clock), log=logger, _refusal=lambda addr: "MaxClients reached"
    )
    factory = ClientsFactory(server)  # type: ignore[arg-type]
    factory.doStart()
    for port in range(1000, 1050):
        assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port)) is None
        clock.advance(0.1)
    assert factory.refused == 50 and len(lines) == 1 and len(debug) == 49
    factory.doStop()  # the last port stopped listening
    assert clock.getDelayedCalls() == []
    assert lines[1].endswith("(49 more like it in the previous 5 s)")
