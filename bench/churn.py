# -*- test-case-name: tests.test_churn -*-
"""
bench churn: the cyclic garbage a fleet leaves when its devices flap and when a reload removes
them (what a frozen fleet would never reclaim, see service/_services.py's GC_REFREEZE).

A DevicesService of N SIS devices (as twistd chandler builds them) on loopback against one
simulator; once every device is Connected the heap is collected and frozen as the service does
after start-up, the collector is switched off, and then: R rounds in which the simulator resets
(RST) or closes (FIN) every connection, R in which it also refuses new ones for a moment, each
until every device has reconnected and is Connected again; then a reload that removes half the
devices.  After each phase the heap is unfrozen and collected with DEBUG_SAVEALL: the unreachable
objects, by type, and the bytes their freeing gave back (tracemalloc), per reconnect, per connect
attempt and per removed device.  C{--full-collection N} times instead what reclaiming them costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

#: seconds after a phase before its garbage is counted: the clock's SendAndWait deadline queue
#: holds a lost connection until the deadline of its last wait (the probes' timeout) has passed
SETTLE = 3.0


def garbage() -> tuple[int, int, Counter[str]]:
    """Unfreeze and collect: (objects unreachable, bytes freed, count by type); then refreeze."""
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found = gc.collect()
    gc.set_debug(0)
    kinds = Counter(type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage)
    before = tracemalloc.get_traced_memory()[0]
    gc.garbage.clear()
    gc.collect()
    freed = before - tracemalloc.get_traced_memory()[0]
    gc.freeze()
    return found, freed, kinds


async def _run(reactor: Any, devices: int, rounds: int, poll: float, out: dict[str, Any]) -> None:
    from twisted_ch.service._config import DeviceConfig, ProbeConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService
    from twisted_ch.testing import DeviceServer
    from twisted_ch.testing._probes import SIS_RESPONSES

    sim = DeviceServer(reactor, SIS_RESPONSES)
    port = sim.start()
    configs = [
        DeviceConfig(
            f"d{i}",
            f"tcp:host=127.0.0.1:port={port}",
            probe=ProbeConfig("sis", {"query": "Q"}),
            pollFrequency=poll,
            connectRetryTime=0.1,
            DisconnectLimit=3,
        )
        for i in range(devices)
    ]
    service = DevicesService(reactor, Registry(), configs, startRate=4000)
    service.startService()

    async def until(what: str, condition: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"churn: timed out waiting for {what}")
            sim.received.clear()
            await deferLater(reactor, 0.02)

    def connected() -> int:
        return sum(1 for h in service.handlers.values() if h.ConnectionStatus == "Connected")

    def allConnected() -> bool:
        return len(sim.clients) == len(service.handlers) and connected() == len(service.handlers)

    await until("the first connects", lambda: not service.starting and allConnected())
    await deferLater(reactor, 2 * poll)
    gc.collect()
    gc.freeze()  # as ChandlerService._freezeWhenStarted does
    gc.disable()  # nothing reclaimed by the collector from here: what leaks shows
    found, freed, kinds = garbage()  # a baseline: polling while nothing flaps
    await deferLater(reactor, 2 * poll)
    found, freed, kinds = garbage()
    out["steady"] = {"objects": found, "bytes": freed, "types": dict(kinds.most_common(12))}

    from twisted_ch._link import attemptsMade

    for phase, kinds_ in (("drops", ("rst", "fin")), ("refusals", ("refuse",))):
        reconnects = 0
        attempts = attemptsMade()
        for r in range(rounds):
            how = kinds_[r % len(kinds_)]
            before = sum(h.transitions for h in service.handlers.values())
            if how == "refuse":
                await sim.stop()
                sim.dropClients(abort=True)
                await deferLater(reactor, 0.35)  # a few refused attempts per device
                sim.start()
            else:
                sim.dropClients(abort=how == "rst")

            def over(before: int = before) -> bool:
                done = sum(h.transitions for h in service.handlers.values())
                return done >= before + 2 * devices and allConnected()

            await until(f"{phase} round {r} ({how})", over)
            reconnects += devices
        await deferLater(reactor, SETTLE)
        attempts = attemptsMade() - attempts
        found, freed, kinds = garbage()
        out[phase] = {
            "reconnects": reconnects,
            "attempts": attempts,
            "objects": found,
            "bytes": freed,
            "objectsPerReconnect": round(found / reconnects, 1),
            "bytesPerReconnect": round(freed / reconnects),
            "bytesPerAttempt": round(freed / attempts),
            "types": dict(kinds.most_common(12)),
        }

    keep = configs[: devices // 2]
    removed = devices - len(keep)
    _, done = service.reload(keep, [])
    await done
    # the clock's deadline queue lets go of a wait's connection by its timeout (2 s)
    await deferLater(reactor, SETTLE)
    found, freed, kinds = garbage()
    out["removals"] = {
        "removed": removed,
        "objects": found,
        "bytes": freed,
        "objectsPerRemoval": round(found / removed, 1),
        "bytesPerRemoval": round(freed / removed),
        "types": dict(kinds.most_common(20)),
    }
    await service.stopService()
    await sim.shutdown()
    gc.enable()


def fullCollection(devices: int) -> dict[str, Any]:
    """
    What the full collection churn triggers costs: C{devices} SIS devices built by a
    DevicesService on a Clock, each connected through a FakeEndpoint (a protocol and a transport
    each, as a fleet has once it is up), frozen; then unfreeze, collect, freeze again, timed.
    """
    from twisted.internet.task import Clock

    from twisted_ch.endpoints import _strings
    from twisted_ch.service._config import DeviceConfig, ProbeConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import START_TICK, DevicesService
    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    _strings.clientFromString = lambda reactor, text: FakeEndpoint(clock)  # type: ignore[assignment]
    configs = [
        DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9", probe=ProbeConfig("sis", {}))
        for i in range(devices)
    ]
    service = DevicesService(clock, Registry(), configs, startRate=1_000_000)
    gc.collect()
    gc.freeze()
    service.startService()
    while service.starting:
        clock.advance(START_TICK)
    gc.freeze()
    frozen = gc.get_freeze_count()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        times.append(time.perf_counter() - started)
    return {"devices": devices, "frozenObjects": frozen, "seconds": [round(t, 3) for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench churn", description=__doc__)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument(
        "--full-collection",
        type=int,
        metavar="N",
        help="only time the full collection (unfreeze, collect, freeze) of N built devices",
    )
    args = parser.parse_args(argv)
    if args.full_collection:
        print(json.dumps(fullCollection(args.full_collection)))
        return 0
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    out: dict[str, Any] = {"devices": args.devices, "rounds": args.rounds}
    # as under twistd: events go to an observer (not held in the start-up buffer, which would
    # keep what they name alive)
    globalLogBeginner.beginLoggingTo([lambda event: None], redirectStandardIO=False)
    tracemalloc.start()

    def run() -> Any:
        d = ensureDeferred(_run(reactor, args.devices, args.rounds, args.poll, out))
        d.addErrback(lambda f: (out.setdefault("error", f.getTraceback()), None)[1])
        d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]

    reactor.callWhenRunning(run)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
