"""
Soak (the short CI variant of C{python -m bench soak}): a few hundred handlers against loopback
devices that flap at seeded-random times, going silent, closing (FIN), resetting (RST), refusing
and coming back.

Checked per handler: Connected and Disconnected strictly alternate; no event is lost or doubled (the
events equal the status-observer calls, and their count equals the handler's transition count);
each event's argument is the ConnectionStatus at that moment.  Checked for the run: after
Disconnect the process has the fds it had before, no twisted_ch DelayedCall or LoopingCall is left,
and traced memory is flat between the two halves (measured at the same state: every device calm
and every handler connected).
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import EventLog, FlappingDevice, twistedChDelayedCalls, waitUntil

ANSWER = b"Pwr1\r\n"
DEVICES = 24
HANDLERS_PER_DEVICE = 10  # 240 handlers
FLAP_SECONDS = 7.0  # per half
#: allowed growth of traced memory from the first half to the second
MEMORY_TOLERANCE = 192 * 1024


def openFds() -> int:
    return len(os.listdir("/proc/self/fd"))


def twistedChCalls() -> list[Any]:
    return twistedChDelayedCalls(reactor)


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds)


@pytest_twisted.ensureDeferred
async def test_soak_flapping_devices() -> None:
    d = ensureDeferred(_soak())
    d.addTimeout(80, reactor)
    await d


async def _soak() -> None:
    # Twisted keeps one fd for good once anything listens (tcp._reservedFD): take it before counting
    await reactor.listenTCP(0, Factory(), interface="127.0.0.1").stopListening()
    gc.collect()
    fds0 = openFds()
    callsBefore = set(twistedChCalls())
    wasTracing = tracemalloc.is_tracing()
    if not wasTracing:
        tracemalloc.start()

    devices = [FlappingDevice(reactor, 1000 + i, meanUp=2.0, meanDown=0.8) for i in range(DEVICES)]
    logs: list[EventLog] = []
    try:
        for device in devices:
            device.listen()
        for i in range(DEVICES * HANDLERS_PER_DEVICE):
            h = GetConnectionHandler(
                EthernetClientInterface("127.0.0.1", devices[i // HANDLERS_PER_DEVICE].port),
                lambda h: h.Send("P"),
                DisconnectLimit=2,
                pollFrequency=0.2,
                connectRetryTime=0.3,
            )
            logs.append(EventLog(h))
            h.Connect(timeout=2)

        async def half() -> int:
            for device in devices:
                device.flap()
            await sleep(FLAP_SECONDS)
            for device in devices:
                device.calm()
            await waitUntil(
                reactor,
                lambda: all(g.handler.ConnectionStatus == "Connected" for g in logs),
                timeout=15,
            )
            await waitUntil(reactor, lambda: all(g.handler.missedPolls <= 1 for g in logs))
            gc.collect()
            return tracemalloc.get_traced_memory()[0]

        first = await half()
        firstSnapshot = tracemalloc.take_snapshot()
        second = await half()
        growth = second - first
        if growth > MEMORY_TOLERANCE:
            top = tracemalloc.take_snapshot().compare_to(firstSnapshot, "lineno")[:8]
            raise AssertionError(
                f"traced memory grew {growth} bytes over the second half:\n"
                + "\n".join(map(str, top))
            )

        actions = sum(len(d.actions) for d in devices)
        if os.environ.get("SOAK_REPORT"):
            events = sum(g.events.length for g in logs)
            print(f"\nsoak: {actions} misbehaviours, {events} events, growth {growth} bytes")
        assert actions >= DEVICES * 3, f"only {actions} misbehaviours: the soak did not flap"
        flapped = [g for g in logs if g.events.length >= 3]  # Connected, Disconnected, Connected
        assert len(flapped) >= 0.9 * len(logs), f"only {len(flapped)} handlers saw a disconnect"
        problems = {i: p for i, g in enumerate(logs) if (p := g.problems())}
        assert not problems, f"{len(problems)} handlers broke: {list(problems.items())[:3]}"
    finally:
        for g in logs:
            await g.handler.Disconnect()
        for device in devices:
            if device.port:  # it listened once
                await device.shutdown()
        if not wasTracing:
            tracemalloc.stop()

    for g in logs:
        assert g.events.recent[-1] == "Disconnected" and g.events.same(g.observed)
        assert not g.problems()
    await waitUntil(reactor, lambda: openFds() <= fds0, timeout=10)
    assert openFds() == fds0
    assert set(twistedChCalls()) - callsBefore == set()


@pytest_twisted.ensureDeferred
async def test_leak_check_sees_twisted_ch_timeouts_and_not_simulators() -> None:
    from twisted_ch._runtime import describe

    before = set(twistedChCalls())  # what earlier tests left is theirs, not this one's
    d: Deferred[None] = Deferred()
    d.addTimeout(60, reactor)
    d.addBoth(describe)  # a twisted_ch callback: this timeout is twisted_ch's
    other: Deferred[None] = Deferred()
    other.addTimeout(60, reactor)  # nobody's
    device = FlappingDevice(reactor, 1)
    device.listen()
    device.flap()  # the simulator's own timer
    try:
        assert len(set(twistedChCalls()) - before) == 1
    finally:
        d.callback(None)
        other.callback(None)
        await device.shutdown()
    assert set(twistedChCalls()) - before == set()
