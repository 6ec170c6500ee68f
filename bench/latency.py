"""
C{python -m bench latency}: round trips and the handler's reaction times, against a L{bench.sim}
process (its answers carry CLOCK_MONOTONIC stamps of when it acted, so the delays below are from the
device's action to the handler's status observer call).

rtt       SendAndWait through twisted_ch vs a raw Twisted protocol writing and awaiting one line,
          interleaved in blocks; microseconds.
silence   device stops answering -> Disconnected; expected: the (DisconnectLimit+1)-th poll tick
          after the last answered poll, so between DisconnectLimit and DisconnectLimit+1 poll
          intervals after the silence starts.
close     device closes (FIN) or resets (RST) the connection -> Disconnected; target < 10 ms.
back      device listens again -> Connected; Connected means answered (issue 10), so it comes
          with the first keep-alive answered on the new link, at the handler's next poll tick:
          target < connectRetryTime + pollFrequency + 50 ms.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from statistics import mean, median
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from bench._util import now, percentile
from bench.simctl import SimProcess

ANSWER = b"Pwr1\r\n"
#: the keep-alive period of the "back" rows
POLL = 1.0


def summary(samples: list[float], scale: float = 1e6) -> dict[str, float]:
    """Median, p99, mean, min and max of C{samples} seconds, times C{scale}."""
    return {
        "n": len(samples),
        "median": round(median(samples) * scale, 2),
        "p99": round(percentile(samples, 0.99) * scale, 2),
        "mean": round(mean(samples) * scale, 2),
        "min": round(min(samples) * scale, 2),
        "max": round(max(samples) * scale, 2),
    }


class LineRequester(Protocol):
    """The raw Twisted side of the round-trip comparison: write, then await one CRLF line."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiting: Deferred[bytes] | None = None

    def request(self, data: bytes) -> Deferred[bytes]:
        self.waiting = Deferred()
        assert self.transport is not None
        self.transport.write(data)
        return self.waiting

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n")
        if end >= 0 and self.waiting is not None:
            line, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
            d, self.waiting = self.waiting, None
            d.callback(line)


class Watched:
    """A twisted_ch handler with every status change and poll stamped."""

    def __init__(self, port: int, endpoint: str = "default", **kw: Any) -> None:
        from twisted.internet import reactor
        from twisted.internet.endpoints import HostnameEndpoint

        from twisted_ch import GetConnectionHandler
        from twisted_ch.extronlib.interface import EthernetClientInterface

        self.sends: list[float] = []
        self.accepts: list[float] = []
        self.failures: list[float] = []
        self.statuses: list[tuple[str, float]] = []
        # "default": the address 127.0.0.1; "name": the host name localhost (resolved on every
        # attempt; ::1, where nothing listens, then 127.0.0.1); "twisted-hostname": localhost
        # through Twisted's HostnameEndpoint, for comparison
        host = "127.0.0.1" if endpoint == "default" else "localhost"
        chosen = (
            HostnameEndpoint(reactor, "localhost", port) if endpoint == "twisted-hostname" else None
        )
        self.handler = GetConnectionHandler(
            EthernetClientInterface(host, port, endpoint=chosen), self.keepAlive, **kw
        )
        self.handler.ReceiveData = self.onData
        self.handler.ConnectFailed = lambda h, reason: self.failures.append(now())
        self.handler.addStatusObserver(lambda s: self.statuses.append((s, now())))

    def keepAlive(self, h: Any) -> None:
        self.sends.append(now())
        h.Send(b"P")

    def onData(self, h: Any, data: bytes) -> None:
        if b"Pwr" in data:
            self.accepts.append(now())
            h.ResponseAccepted()

    def lastTime(self, status: str) -> float:
        return max(t for s, t in self.statuses if s == status)


async def rtt(reactor: Any, sim: SimProcess, rounds: int) -> dict[str, Any]:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetClientInterface

    port = sim.ports[0]
    handler = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", port), None, pollFrequency=3600
    )
    assert await handler.Connect() == "Connected"
    raw = LineRequester()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw)
    timings: dict[str, list[float]] = {"twisted_ch": [], "twisted": []}

    async def viaHandler() -> bytes:
        return await handler.SendAndWait(b"P", 2.0, deliTag=b"\r\n")  # type: ignore[no-any-return]

    async def viaRaw() -> bytes:
        return await raw.request(b"P")

    ways: dict[str, Callable[[], Any]] = {"twisted_ch": viaHandler, "twisted": viaRaw}
    block = 250
    for way in ways.values():  # warm up both
        for _ in range(100):
            await way()
    for _ in range(max(1, rounds // block)):
        for name, way in ways.items():
            samples = timings[name]
            for _ in range(block):
                t = now()
                answer = await way()
                samples.append(now() - t)
                if answer != ANSWER:
                    raise RuntimeError(f"{name} got {answer!r}")
    await handler.Disconnect()
    assert raw.transport is not None
    raw.transport.loseConnection()
    out: dict[str, Any] = {k: summary(v) for k, v in timings.items()}
    out["ratioMedian"] = round(out["twisted_ch"]["median"] / out["twisted"]["median"], 3)
    return out


async def sleep(reactor: Any, seconds: float) -> None:
    await deferLater(reactor, seconds)


async def silence(
    reactor: Any, sim: SimProcess, settings: list[tuple[int, float]], reps: int, rng: random.Random
) -> list[dict[str, Any]]:
    rows = []
    for limit, interval in settings:
        w = Watched(
            sim.ports[0], DisconnectLimit=limit, pollFrequency=interval, connectRetryTime=0.05
        )
        h = w.handler
        await h.Connect()
        measured, errors = [], []
        for _ in range(reps):
            await h.whenStatus("Connected")
            await sleep(reactor, 3 * interval)
            await sleep(reactor, rng.uniform(0, interval))
            lost = h.whenStatus("Disconnected")
            t0 = (await sim.command("silent"))["t"]
            await lost
            t1 = w.lastTime("Disconnected")
            lastAccept = max(a for a in w.accepts if a < t1)
            firstUnanswered = min(s for s in w.sends if s > lastAccept)
            measured.append(t1 - t0)
            errors.append(t1 - (firstUnanswered + limit * interval))
            await sim.command("answer")
        await h.Disconnect()
        rows.append(
            {
                "DisconnectLimit": limit,
                "pollFrequency": interval,
                "expectedMin": round(limit * interval, 4),
                "expectedMax": round((limit + 1) * interval, 4),
                "measured": [round(m, 4) for m in measured],
                "withinWindow": all(
                    limit * interval - 0.005 <= m <= (limit + 1) * interval + 0.01 for m in measured
                ),
                "errorVsTickMs": summary(errors, 1e3),
            }
        )
    return rows


async def close(reactor: Any, sim: SimProcess, reps: int, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    w = Watched(sim.ports[0], DisconnectLimit=15, pollFrequency=1, connectRetryTime=0.02)
    h = w.handler
    await h.Connect()
    for kind in ("close", "reset"):
        samples = []
        for _ in range(reps):
            await h.whenStatus("Connected")
            await sleep(reactor, rng.uniform(0.005, 0.03))
            lost = h.whenStatus("Disconnected")
            t0 = (await sim.command(kind))["t"]
            await lost
            samples.append(w.lastTime("Disconnected") - t0)
        out["FIN" if kind == "close" else "RST"] = summary(samples, 1e3)
    await h.Disconnect()
    return out


async def back(
    reactor: Any,
    sim: SimProcess,
    retryTimes: list[float],
    reps: int,
    rng: random.Random,
    endpoint: str = "default",
) -> list[dict[str, Any]]:
    rows = []
    for retry in retryTimes:
        w = Watched(
            sim.ports[0], endpoint, DisconnectLimit=15, pollFrequency=POLL, connectRetryTime=retry
        )
        h = w.handler
        await h.Connect()
        measured, afterAttempt = [], []
        for _ in range(reps):
            await h.whenStatus("Connected")
            lost = h.whenStatus("Disconnected")
            await sim.command("stop")
            await sim.command("reset")
            await lost
            failed = len(w.failures)
            while len(w.failures) == failed:  # at least one refused attempt
                await sleep(reactor, 0.01)
            await sleep(reactor, rng.uniform(0, retry + 0.3))
            connected = h.whenStatus("Connected")
            t0 = (await sim.command("start"))["t"]
            await connected
            t1 = w.lastTime("Connected")
            measured.append(t1 - t0)
            # the attempt that found the device: the last retry scheduled before Connected
            attempt = max(f + retry for f in w.failures if f + retry <= t1)
            afterAttempt.append(t1 - max(attempt, t0))
        await h.Disconnect()
        rows.append(
            {
                "endpoint": {
                    "default": "127.0.0.1 (TCPHostnameEndpoint)",
                    "name": "localhost (TCPHostnameEndpoint)",
                    "twisted-hostname": "localhost (Twisted's HostnameEndpoint, forced)",
                }[endpoint],
                "connectRetryTime": retry,
                "pollFrequency": POLL,
                "targetMs": round((retry + POLL + 0.05) * 1e3, 1),
                "backToConnectedMs": summary(measured, 1e3),
                "retryFiredToConnectedMs": summary(afterAttempt, 1e3),
                "met": max(measured) < retry + POLL + 0.05,
            }
        )
    return rows


async def runAll(reactor: Any, quick: bool = False) -> dict[str, Any]:
    rng = random.Random(2024)
    sim = SimProcess.spawn(reactor)
    await sim.ready
    try:
        result: dict[str, Any] = {}
        result["rtt"] = await rtt(reactor, sim, 1000 if quick else 4000)
        settings = [(1, 0.5), (2, 0.1), (3, 0.2), (5, 0.05), (15, 0.05)]
        result["silence"] = await silence(reactor, sim, settings, 2 if quick else 3, rng)
        result["close"] = await close(reactor, sim, 20 if quick else 50, rng)
        reps = 4 if quick else 8
        result["back"] = await back(reactor, sim, [0.2, 0.5, 1.0], reps, rng)
        result["back"] += await back(reactor, sim, [0.2, 1.0], reps, rng, endpoint="name")
        result["back"] += await back(
            reactor, sim, [0.2, 1.0], reps, rng, endpoint="twisted-hostname"
        )
        return result
    finally:
        await sim.quit()


def table(result: dict[str, Any]) -> str:
    r = result["rtt"]
    out = [
        "| round trip (µs) | n | median | p99 | mean | min | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("twisted_ch", "twisted"):
        s = r[name]
        label = "twisted_ch SendAndWait" if name == "twisted_ch" else "raw Twisted protocol"
        out.append(
            f"| {label} | {s['n']} | {s['median']:.0f} | {s['p99']:.0f} | {s['mean']:.0f} "
            f"| {s['min']:.0f} | {s['max']:.0f} |"
        )
    out += [
        "",
        f"median ratio twisted_ch / raw: {r['ratioMedian']:.2f}",
        "",
        "| silence -> Disconnected | expected window (s) | measured (s) | in window "
        "| error vs (L+1)-th tick, median / max (ms) |",
        "|---|---|---|---|---|",
    ]
    for s in result["silence"]:
        e = s["errorVsTickMs"]
        out.append(
            f"| DisconnectLimit={s['DisconnectLimit']}, pollFrequency={s['pollFrequency']:g} "
            f"| {s['expectedMin']:g} - {s['expectedMax']:g} "
            f"| {', '.join(f'{m:.3f}' for m in s['measured'])} "
            f"| {'yes' if s['withinWindow'] else 'NO'} | {e['median']:.1f} / {e['max']:.1f} |"
        )
    out += [
        "",
        "| device closes -> Disconnected (ms) | n | median | p99 | max | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for kind, s in result["close"].items():
        out.append(
            f"| {kind} | {s['n']} | {s['median']:.2f} | {s['p99']:.2f} | {s['max']:.2f} "
            f"| < 10 ms: {'met' if s['max'] < 10 else 'MISSED'} |"
        )
    out += [
        "",
        "| device back -> Connected | endpoint | n | median (ms) | max (ms) | target (ms) "
        "| retry fired -> Connected, median / max (ms) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for b in result["back"]:
        s, a = b["backToConnectedMs"], b["retryFiredToConnectedMs"]
        out.append(
            f"| connectRetryTime={b['connectRetryTime']:g} | {b['endpoint']} | {s['n']} "
            f"| {s['median']:.1f} "
            f"| {s['max']:.1f} | < {b['targetMs']:.0f}: {'met' if b['met'] else 'MISSED'} "
            f"| {a['median']:.2f} / {a['max']:.2f} |"
        )
    return "\n".join(out)


def run(quick: bool = False) -> dict[str, Any]:
    """Run every latency measurement on a fresh reactor (call once per process)."""
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    out: list[Any] = []

    def done(result: Any) -> None:
        out.append(result)
        reactor.stop()

    d = ensureDeferred(runAll(reactor, quick))
    d.addBoth(done)
    reactor.run()  # type: ignore[attr-defined]
    if not out or not isinstance(out[0], dict):
        failure = out[0] if out else None
        if failure is not None and hasattr(failure, "raiseException"):
            failure.raiseException()
        raise RuntimeError("latency benchmark did not finish")
    return out[0]  # type: ignore[no-any-return]
