"""
C{python -m bench.micro}: the twisted_ch cost of one keep-alive poll and its answer, without the
reactor or sockets (a Clock and a fake transport), for each path.  For profiling, not a target.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, LoopingCall
from twisted.python import threadable

from bench.pollers import Counters, Lines
from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EndpointInterface
from twisted_ch.testing import FakeEndpoint

ANSWERS = {
    "raw": b"Pwr1\r\n",
    "send": b"Pwr1\r\n",
    "async": b"Pwr1\r\n",
    "sis": b"1.23\r\n",
    "pjlink": b"%1POWR=1\r",
}


class _RawPoller(Protocol):
    """The floor: bench.pollers' raw Twisted poller (a LoopingCall writing, its CRLF lines)."""

    def __init__(self, clock: Clock) -> None:
        self.loop = LoopingCall(self.poll)
        self.loop.clock = clock
        self.lines = Lines(Counters())

    @property
    def answered(self) -> int:
        return self.lines.counters.answered

    def connectionMade(self) -> None:
        self.loop.start(1, now=False)

    def poll(self) -> None:
        self.transport.write(b"P")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.lines.feed(data)


class _RawHandler:
    """What L{run} checks of a handler, for the raw poller."""

    def __init__(self, poller: _RawPoller) -> None:
        self.poller = poller
        self.missedPolls = 0

    @property
    def ConnectionStatus(self) -> str:
        return "Connected" if self.poller.answered else "Disconnected"


def build(path: str, clock: Clock) -> tuple[Any, FakeEndpoint]:
    endpoint = FakeEndpoint(clock)
    if path == "raw":
        poller = _RawPoller(clock)
        endpoint.connect(Factory.forProtocol(lambda: poller))
        return _RawHandler(poller), endpoint
    keepAlive: Any
    if path == "send":

        def keepAlive(h: Any) -> None:
            h.Send(b"P")

    elif path == "async":

        async def keepAlive(h: Any) -> None:
            if (await h.SendAndWait(b"P", 2, deliTag=b"\r\n")).startswith(b"Pwr"):
                h.ResponseAccepted()

    else:
        from twisted_ch.service.probes import makeProbe

        keepAlive = makeProbe(path, {})
    iface = EndpointInterface(endpoint, reactor=clock)
    h = GetConnectionHandler(iface, keepAlive, pollFrequency=1, reactor=clock)
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


def run(path: str, polls: int) -> float:
    # this thread stands for the reactor's (a Twisted application's calls come from it)
    threadable.registerAsIOThread()
    clock = Clock()
    h, endpoint = build(path, clock)
    answer = ANSWERS[path]
    protocol = endpoint.protocol
    assert protocol is not None
    transport = endpoint.transport
    assert transport is not None
    started = time.process_time()
    for _ in range(polls):
        clock.advance(1)
        transport.clear()  # type: ignore[no-untyped-call]
        protocol.dataReceived(answer)
    spent = time.process_time() - started
    assert h.ConnectionStatus == "Connected" and h.missedPolls == 0, (h, h.missedPolls)
    return spent / polls * 1e6


def inFlight(path: str, handlers: int = 200) -> float:
    """
    GC-tracked objects alive per poll while every handler's poll is in flight (C{handlers} on
    one Clock, all polling in one turn, the collector off): what polls together feed the
    cyclic collector, and what it promotes when it runs meanwhile.
    """
    import gc

    threadable.registerAsIOThread()
    clock = Clock()
    built = [build(path, clock) for _ in range(handlers)]
    answer = ANSWERS[path]

    def answerAll() -> None:
        for _h, endpoint in built:
            assert endpoint.protocol is not None and endpoint.transport is not None
            endpoint.transport.clear()  # type: ignore[no-untyped-call]
            endpoint.protocol.dataReceived(answer)

    for _ in range(3):
        clock.advance(1)
        answerAll()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        clock.advance(1)  # every handler's poll is in flight
        alive = (len(gc.get_objects()) - before) / handlers
        answerAll()
    finally:
        gc.enable()
    return alive


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("--polls", type=int, default=20000)
    parser.add_argument("--profile", help="a path to cProfile into /tmp/micro-PATH.prof")
    parser.add_argument(
        "--objects",
        action="store_true",
        help="also count the GC-tracked objects alive per poll in flight (200 polling together)",
    )
    parser.add_argument("paths", nargs="*", default=["raw", "send", "async", "sis", "send-expect"])
    args = parser.parse_args()
    for path in args.paths:
        name = "send" if path == "send-expect" else path
        if path == "send-expect":
            print("send-expect: see fleet rows (needs options)")
            continue
        if args.profile == path:
            import cProfile

            cProfile.runctx("run(path, args.polls)", globals(), locals(), f"/tmp/micro-{path}.prof")
        best = min(run(name, args.polls) for _ in range(3))
        extra = ""
        if args.objects:
            alive = inFlight(name)
            extra = f", {alive:4.1f} tracked objects alive per poll in flight"
        print(f"{path:8s} {best:6.1f} µs per poll and answer{extra}")


if __name__ == "__main__":
    main()
