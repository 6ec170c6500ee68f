"""
An answered keep-alive poll leaves no cyclic garbage: everything it allocates (Deferreds, the
wait and its matcher, a coroutine) is freed by reference counting, so polls in flight never
feed the cyclic collector's generations (a Clock and a FakeEndpoint, the collector disabled).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from bench.micro import ANSWERS, build  # the paths bench.micro measures, built the same way


@pytest.fixture
def collectorOff() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def garbageAfter(path: str, polls: int) -> int:
    """What C{gc.collect()} finds unreachable after C{polls} answered polls (collector off)."""
    clock = Clock()
    h, endpoint = build(path, clock)
    protocol, transport = endpoint.protocol, endpoint.transport
    assert protocol is not None and transport is not None
    for _ in range(20):  # warm up: first polls, lazily built state
        clock.advance(1)
        transport.clear()  # type: ignore[no-untyped-call]
        protocol.dataReceived(ANSWERS[path])
    gc.collect()
    for _ in range(polls):
        clock.advance(1)
        transport.clear()  # type: ignore[no-untyped-call]
        protocol.dataReceived(ANSWERS[path])
    assert h.ConnectionStatus == "Connected" and h.missedPolls == 0
    return gc.collect()


@pytest.mark.parametrize("path", sorted(ANSWERS))
@pytest.mark.usefixtures("collectorOff")
def test_answered_polls_leave_no_cyclic_garbage(path: str) -> None:
    # a cycle per poll (a Deferred and its callback, a Failure's frames, a wait holding its
    # timer) would show as a count growing with the polls
    assert garbageAfter(path, 500) <= 5
    assert garbageAfter(path, 2000) <= 5


def test_a_stock_probe_s_poll_in_flight_holds_no_callback() -> None:
    """
    A stock probe's poll in flight: the wait, its matcher, its (empty) callback list and the
    arguments of the function its end calls instead of firing (L{tellInstead}: the probe's
    judge and the handler's end of keep-alive in one, no callback); 11 objects in the sixth
    round, 9 with two callbacks as functions, 4 now; 0 for a Send keep-alive.
    """
    from bench.micro import inFlight

    assert inFlight("sis") <= 4
    assert inFlight("pjlink") <= 4  # greeted: its usual poll is a stock probe's (18 before)
    assert inFlight("send") == 0
