"""
An answered keep-alive poll leaves no cyclic garbage: everything it allocates (Deferreds, the
wait and its matcher, a coroutine) is freed by reference counting, so polls in flight never
feed the cyclic collector's generations (a Clock and a FakeEndpoint, the collector disabled).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EndpointInterface
from twisted_ch.service.probes import makeProbe
from twisted_ch.testing import FakeEndpoint

ANSWERS = {"send": b"Pwr1\r\n", "async": b"Pwr1\r\n", "sis": b"1.23\r\n", "pjlink": b"%1POWR=1\r"}


def build(path: str, clock: Clock) -> tuple[Any, FakeEndpoint]:
    endpoint = FakeEndpoint(clock)
    keepAlive: Any
    if path == "send":

        def keepAlive(h: Any) -> None:
            h.Send(b"P")

    elif path == "async":

        async def keepAlive(h: Any) -> None:
            if (await h.SendAndWait(b"P", 2, deliTag=b"\r\n")).startswith(b"Pwr"):
                h.ResponseAccepted()

    else:
        keepAlive = makeProbe(path, {})
    h = GetConnectionHandler(
        EndpointInterface(endpoint, reactor=clock), keepAlive, pollFrequency=1, reactor=clock
    )
    if path == "send":

        def onData(handler: Any, data: bytes) -> None:
            if b"Pwr" in data:
                handler.ResponseAccepted()

        h.ReceiveData = onData
    if hasattr(keepAlive, "attach"):
        keepAlive.attach(h)
    h.Connect()
    if path == "pjlink":
        endpoint.respond(b"PJLINK 0\r")
    return h, endpoint


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
