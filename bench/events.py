"""
C{python -m bench.events --handlers N --ports P --seconds S}: how long device data takes to reach
a program thread's ReceiveData callback while that thread polls N handlers (their keep-alive
blocks it in SendAndWait, at 1 Hz, against the simulator on ports P).

A device in this process writes its CLOCK_MONOTONIC time every 5-20 ms (random); the program's
callback subtracts it from its own clock.  Prints one JSON line: n, median, p99, max (ms), and
queuedMedian, queuedP99: from the reactor's receipt of the data to the callback (the wait on the
program thread's queue, without the wait for the reactor to read it); keepAlivesAheadP99 and
keepAlivesAheadMax: how many keep-alives started between that receipt and the callback;
over1ms: the events delivered more than 1 ms after they were written.

The program connects its handlers one blocking C{Connect()} after another, which spreads their
PollTimers over a few milliseconds; with C{--shape together} (the default) every PollTimer is
then restarted in one reactor turn (L{bench.pollers.together}), so the N keep-alives fall due
together every second, as for handlers started at once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any

from twisted.internet.protocol import Factory, Protocol

from bench._util import percentile, raiseFileLimit


class Pusher(Protocol):
    """The event source's side of one connection."""

    factory: Pushers

    def connectionMade(self) -> None:
        self.factory.clients.append(self)


class Pushers(Factory):
    protocol = Pusher  # type: ignore[assignment]

    def __init__(self) -> None:
        self.clients: list[Pusher] = []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("--handlers", type=int, default=50)
    parser.add_argument("--ports", type=lambda s: [int(p) for p in s.split(",")], required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--shape", choices=("together", "spread"), default="together")
    args = parser.parse_args(argv)
    raiseFileLimit(args.handlers + 256)

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import deferLater

    from twisted_ch.program import Program
    from twisted_ch.testing import listenStable

    pushers = Pushers()
    port = listenStable(reactor, pushers).getHost().port  # type: ignore[attr-defined]
    delays: list[float] = []
    #: from the reactor's receipt of the data to the callback: the program thread's queue
    queued: list[float] = []
    received: dict[bytes, tuple[float, int]] = {}
    #: keep-alives started on the program thread (so far), and per event, how many started
    #: between the reactor's receipt of its data and its callback (the lane: at most one)
    started = [0]
    ahead: list[int] = []
    measuring = [False]
    rng = random.Random(7)

    def build() -> list[Any]:
        # program code: runs on the program thread
        from twisted_ch import GetConnectionHandler
        from twisted_ch.extronlib.interface import EthernetClientInterface

        def keepAlive(h: Any) -> None:
            started[0] += 1
            if h.SendAndWait("P", 2, deliTag=b"\r\n").startswith(b"Pwr"):
                h.ResponseAccepted()

        handlers = []
        for i in range(args.handlers):
            iface = EthernetClientInterface("127.0.0.1", args.ports[i % len(args.ports)])
            h = GetConnectionHandler(iface, keepAlive, pollFrequency=1)
            h.Connect()
            handlers.append(h)

        def onData(interface: Any, data: bytes) -> None:
            now = time.monotonic()
            got = received.pop(data, None)
            if measuring[0]:
                for line in data.split(b"\n"):
                    if line:
                        delays.append(now - float(line))
                if got is not None:
                    queued.append(now - got[0])
                    ahead.append(started[0] - got[1])

        events = EthernetClientInterface("127.0.0.1", port)
        events.ReceiveData = onData
        reactorSide = events.linkData  # (reactor thread) when the data reached the reactor

        def linkData(data: bytes) -> None:
            received[data] = (time.monotonic(), started[0])
            reactorSide(data)

        events.linkData = linkData
        events.Connect()
        return handlers

    def push() -> None:
        for client in pushers.clients:
            if client.transport is not None:
                client.transport.write(b"%.9f\n" % time.monotonic())
        reactor.callLater(rng.uniform(0.005, 0.02), push)

    async def main() -> None:
        program = Program(reactor, name="events")
        handlers = await program.runCallable(build)
        if args.shape == "together":
            from bench.pollers import together

            together(handlers)
        await deferLater(reactor, 2.0)  # every poll phase settled
        push()
        measuring[0] = True
        await deferLater(reactor, args.seconds)
        measuring[0] = False
        ms = [d * 1e3 for d in delays]
        result = {
            "handlers": args.handlers,
            "shape": args.shape,
            "n": len(ms),
            "median": round(percentile(ms, 0.5), 3),
            "p99": round(percentile(ms, 0.99), 3),
            "max": round(max(ms), 3) if ms else None,
            "queuedMedian": round(percentile([q * 1e3 for q in queued], 0.5), 3),
            "queuedP99": round(percentile([q * 1e3 for q in queued], 0.99), 3),
            "over1ms": sum(1 for x in ms if x > 1.0),
            "keepAlivesAheadP99": percentile(ahead, 0.99) if ahead else None,
            "keepAlivesAheadMax": max(ahead) if ahead else None,
        }
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()

    d = ensureDeferred(main())
    d.addErrback(lambda f: f.printTraceback())
    d.addBoth(lambda _: os._exit(0))
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
