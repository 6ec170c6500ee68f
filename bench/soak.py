"""
C{python -m bench soak}: many handlers against flapping loopback devices for a long time, checking
that events alternate, that no event is lost or doubled, and that memory, fds and timers do not
leak.  The short CI variant is C{tests/test_soak.py}.
"""

from __future__ import annotations

import gc
import math
import tracemalloc
from typing import Any

from twisted.internet.task import deferLater

from bench._util import now, openFds, rssBytes
from twisted_ch.testing import EventLog, FlappingDevice, twistedChDelayedCalls


async def soak(
    reactor: Any,
    devices: int,
    minutes: float,
    perDevice: int = 10,
    seed: int = 7,
    pollFrequency: float = 0.5,
    disconnectLimit: int = 3,
    connectRetryTime: float = 1.0,
    sampleEvery: float | None = None,
    log: Any = print,
) -> dict[str, Any]:
    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetClientInterface

    async def sleep(s: float) -> None:
        await deferLater(reactor, s)

    # the first listening port makes Twisted reserve one fd for good (tcp._reservedFD): take it now
    from twisted.internet.protocol import Factory

    await reactor.listenTCP(0, Factory(), interface="127.0.0.1").stopListening()
    gc.collect()
    fds0 = openFds()
    tracemalloc.start()
    servers = [
        FlappingDevice(reactor, seed + i, meanUp=8.0, meanDown=3.0)
        for i in range(math.ceil(devices / perDevice))
    ]
    ports = [s.listen() for s in servers]
    for s in servers:
        s.flap()
    logs = []
    for i in range(devices):
        h = GetConnectionHandler(
            EthernetClientInterface("127.0.0.1", ports[i // perDevice]),
            lambda h: h.Send(b"P"),
            DisconnectLimit=disconnectLimit,
            pollFrequency=pollFrequency,
            connectRetryTime=connectRetryTime,
        )
        logs.append(EventLog(h))
        reactor.callLater(i / devices, h.Connect)

    if sampleEvery is None:
        sampleEvery = min(30.0, minutes * 6)  # at least ten samples
    samples: list[dict[str, Any]] = []
    start = now()
    end = start + minutes * 60
    while True:
        await sleep(min(sampleEvery, max(0.0, end - now())))
        gc.collect()
        sample = {
            "t": round(now() - start, 1),
            "connected": sum(1 for g in logs if g.handler.ConnectionStatus == "Connected"),
            "transitions": sum(g.handler.transitions for g in logs),
            "failedAttempts": sum(g.failed for g in logs),
            "answers": sum(g.accepted for g in logs),
            "fds": openFds(),
            "rssMiB": round(rssBytes() / 2**20, 1),
            "tracedMiB": round(tracemalloc.get_traced_memory()[0] / 2**20, 2),
        }
        samples.append(sample)
        log(" ".join(f"{k}={v}" for k, v in sample.items()))
        if now() >= end:
            break

    for s in servers:
        s.calm()
    deadline = now() + 30
    while now() < deadline and any(g.handler.ConnectionStatus != "Connected" for g in logs):
        await sleep(0.2)
    connectedAtEnd = sum(1 for g in logs if g.handler.ConnectionStatus == "Connected")
    for g in logs:
        await g.handler.Disconnect()
    for s in servers:
        await s.shutdown()
    deadline = now() + 10
    while now() < deadline and openFds() > fds0:
        await sleep(0.05)
    gc.collect()
    tracemalloc.stop()

    half = len(samples) // 2
    middle, last = samples[max(0, half - 1)], samples[-1]
    problems = {i: p for i, g in enumerate(logs) if (p := g.problems())}
    return {
        "devices": devices,
        "minutes": minutes,
        "settings": {
            "pollFrequency": pollFrequency,
            "DisconnectLimit": disconnectLimit,
            "connectRetryTime": connectRetryTime,
            "handlersPerDevice": perDevice,
            "seed": seed,
        },
        "deviceActions": sum(len(s.actions) for s in servers),
        "events": sum(g.events.length for g in logs),
        "connectedAfterCalm": connectedAtEnd,
        "handlersWithProblems": len(problems),
        "problems": {str(k): v for k, v in list(problems.items())[:10]},
        "fdsBaseline": fds0,
        "fdsAfter": openFds(),
        "twistedChDelayedCallsAfter": len(twistedChDelayedCalls(reactor)),
        "tracedGrowthSecondHalfMiB": round(last["tracedMiB"] - middle["tracedMiB"], 2),
        "samples": samples,
    }


def run(devices: int, minutes: float, **kw: Any) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from bench._util import raiseFileLimit

    raiseFileLimit(4 * devices + 256)
    out: list[Any] = []

    def done(result: Any) -> None:
        out.append(result)
        reactor.stop()

    ensureDeferred(soak(reactor, devices, minutes, **kw)).addBoth(done)
    reactor.run()  # type: ignore[attr-defined]
    if not out or not isinstance(out[0], dict):
        if out and hasattr(out[0], "raiseException"):
            out[0].raiseException()
        raise RuntimeError("soak did not finish")
    return out[0]  # type: ignore[no-any-return]


def table(result: dict[str, Any]) -> str:
    s = result
    ok = (
        s["handlersWithProblems"] == 0
        and s["fdsAfter"] <= s["fdsBaseline"]
        and s["twistedChDelayedCallsAfter"] == 0
    )
    return "\n".join(
        [
            f"soak: {s['devices']} handlers, {s['minutes']:g} min, {s['deviceActions']} device "
            f"misbehaviours, {s['events']} Connected/Disconnected events",
            f"- handlers breaking alternation / losing or doubling events: "
            f"{s['handlersWithProblems']}",
            f"- connected after the devices calmed down: {s['connectedAfterCalm']}/{s['devices']}",
            f"- fds: baseline {s['fdsBaseline']}, after Disconnect {s['fdsAfter']}",
            f"- twisted_ch DelayedCalls left: {s['twistedChDelayedCallsAfter']}",
            f"- traced memory growth over the second half: {s['tracedGrowthSecondHalfMiB']} MiB",
            f"- verdict: {'clean' if ok else 'PROBLEMS'}",
        ]
    )
