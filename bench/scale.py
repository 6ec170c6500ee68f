# -*- test-case-name: tests.test_bench_scale -*-
"""
C{python -m bench scale}: a fleet of many devices (50,000 by default) on this machine, as
C{twistd chandler --config ... --shard I/N} processes, against simulators split the same way.

It starts one SIS simulator (L{bench.sim} C{--kind sis}) per shard, writes a config of
C{--devices} SIS devices polled every C{--poll} s (each shard's devices on its simulator's
ports), starts the N shards as real C{twistd} processes with JSON logs, and reads:

* start-up: the time from launching a shard to its "start-up: N of N devices Connected" line
  (the service logs it once every device is Connected), per shard and overall;
* RSS per device: each shard's resident set (C{/proc/PID/status}) over its devices, in total and
  above an empty shard (a C{twistd chandler} with a config of no devices);
* stalls: each shard's longest reactor stall (its C{--stall-report 1} lines: the longest gap
  between reactor iterations of each second), during start-up and during the window, and in
  the window's seconds with and without a scrape;
* scrapes: C{/status}, C{/metrics}, C{/status?compact=1} and the dashboard (C{/} as a browser
  asks for it) of every shard every C{--scrape} s during the window of C{--seconds}: latency.

The number of shards is, unless given, the fewest whose devices (by the shards' name hash) fit
the descriptor limit of a process (C{ulimit -Hn}) with the service's reserve.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import IO, Any

from twisted_ch.service._limits import SPARE_DESCRIPTORS, STATUS_MAX_CONNECTIONS
from twisted_ch.service._services import Shard

#: Devices one simulator port serves (so that no port's listen queue gets all the SYNs).
DEVICES_PER_PORT = 2000
#: Descriptors a process keeps besides its devices' (the service's reserve, its status page).
RESERVE = SPARE_DESCRIPTORS + STATUS_MAX_CONNECTIONS + 1
TWISTD = str(Path(sys.executable).with_name("twistd"))


def deviceNames(devices: int) -> list[str]:
    """The configured devices' names."""
    width = max(5, len(str(devices - 1)))
    return [f"sis-{i:0{width}d}" for i in range(devices)]


def shardSizes(names: Iterable[str], shards: int) -> list[int]:
    """How many of C{names} each of C{shards} shards watches."""
    sizes = [0] * shards
    for name in names:
        sizes[Shard.of(name, shards) - 1] += 1
    return sizes


def descriptorLimit() -> int:
    """The most descriptors a process may open here (the hard limit; -1: unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return -1 if hard == resource.RLIM_INFINITY else hard


def fewestShards(names: Sequence[str], limit: int) -> int:
    """
    The fewest shards whose largest one (devices plus L{RESERVE}) fits C{limit} descriptors.

    @raise ValueError: the limit leaves no room for a device.
    """
    if limit < 0:
        return 1
    room = limit - RESERVE
    if room < 1:
        raise ValueError(f"a descriptor limit of {limit} leaves no room for devices")
    n = max(1, math.ceil(len(names) / room))
    while max(shardSizes(names, n)) > room:
        n += 1
    return n


def fleetConfig(
    names: Sequence[str], shards: int, ports: Sequence[Sequence[int]], poll: float, status: int
) -> str:
    """
    A TOML config of SIS devices: each device on a port of its shard's simulator (C{ports[I-1]},
    taken in turn), polled every C{poll} s; the status page on 127.0.0.1 port C{status} (shard
    I on C{status + I - 1}).
    """
    if len(ports) != shards or not all(ports):
        raise ValueError(f"one non-empty list of simulator ports per shard, got {ports!r}")
    lines = ["[status]", f'listen = "127.0.0.1:{status}"', ""]
    used = [0] * shards
    for name in names:
        i = Shard.of(name, shards) - 1
        port = ports[i][used[i] % len(ports[i])]
        used[i] += 1
        lines += [
            "[[device]]",
            f'name = "{name}"',
            f'endpoint = "tcp:host=127.0.0.1:port={port}"',
            'probe = { type = "sis", query = "Q" }',
            f"pollFrequency = {poll:g}",
            "",
        ]
    return "\n".join(lines)


def _ephemeralLow() -> int:
    """The lowest port the kernel picks for outgoing connections (32768 if unknown)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def freePorts(n: int) -> int:
    """
    A loopback port P with P .. P+n-1 free now (for the shards' status pages), below the
    ephemeral range first: on a machine whose other benchmarks hold tens of thousands of
    connections, few runs of n free ports are left in it.
    """
    import random

    low = _ephemeralLow()
    for attempt in range(200):
        if attempt < 100 and low - n > 10000:
            base = random.randrange(10000, low - n)
        else:
            with socket.socket() as s:
                # (SO_REUSEADDR, as the status page's listenTCP: a port whose connections of
                # the last run are in TIME_WAIT is free for it)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", 0))
                base = s.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free loopback ports found")


def logTime(record: dict[str, Any]) -> float | None:
    """A JSON log line's time (epoch seconds)."""
    text = record.get("time")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rssKiB(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def cpuSeconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Simulator:
    """A L{bench.sim} process serving C{clients} SIS devices on enough loopback ports."""

    def __init__(self, clients: int) -> None:
        nports = max(1, math.ceil(clients / DEVICES_PER_PORT))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sim",
                "--kind",
                "sis",
                "--ports",
                str(nports),
                "--max-clients",
                str(clients),
                "--backlog",
                "4096",
            ],  # fmt: skip
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a simulator did not start")
        self.ports: list[int] = json.loads(line)["ports"]

    def command(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def quit(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ShardRun:
    """One C{twistd chandler --shard I/N} process and what its log said."""

    index: int
    devices: int
    statusPort: int
    proc: subprocess.Popen[bytes]
    launched: float
    logPath: Path
    _log: IO[str] | None = None
    connectedAt: float | None = None
    startupLine: dict[str, Any] | None = None
    #: (time, longest stall of that second in ms, the most CPU a stall of it used in ms) of
    #: each --stall-report line
    stalls: list[tuple[float, float, float]] = field(default_factory=list)
    longestMs: float = 0.0
    longestCPUMs: float = 0.0
    gcMs: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def read(self) -> None:
        """Take the log lines written since the last call."""
        if self._log is None:
            if not self.logPath.exists():
                return
            self._log = open(self.logPath)
        while True:
            where = self._log.tell()
            line = self._log.readline()
            if not line.endswith("\n"):
                self._log.seek(where)
                return
            try:
                record = json.loads(line)
            except ValueError:
                continue
            when = logTime(record)
            if record.get("reactorStall") and when is not None:
                busy = float(record.get("periodBusiestMs", 0.0))
                self.stalls.append((when, float(record.get("periodMs", 0.0)), busy))
                self.longestMs = max(self.longestMs, float(record.get("longestMs", 0.0)))
                self.longestCPUMs = max(self.longestCPUMs, float(record.get("longestCPUMs", 0)))
                self.gcMs = max(self.gcMs, float(record.get("gcMs", 0.0)))
            elif record.get("startup") and self.startupLine is None:
                self.startupLine = record
                if record.get("connected") == record.get("devices"):
                    self.connectedAt = when
            elif record.get("level") in ("warning", "error", "critical"):
                if len(self.warnings) < 20:
                    self.warnings.append(str(record.get("text")))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def startShard(
    index: int, shards: int, config: Path, folder: Path, devices: int, status: int
) -> ShardRun:
    """Launch C{twistd -n chandler --config CONFIG --shard I/N} with JSON logs to a file."""
    logPath = folder / f"shard-{index}.log"
    argv = [
        TWISTD, "-n", "--pidfile=", "chandler", "--config", str(config),
        "--shard", f"{index}/{shards}", "--log-format", "json", "--stall-report", "1",
    ]  # fmt: skip
    out = open(logPath, "w")
    err = open(folder / f"shard-{index}.err", "w")
    launched = time.time()
    proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=folder)
    out.close()
    err.close()
    return ShardRun(index, devices, status + index - 1, proc, launched, logPath)


def fetch(url: str, html: bool = False) -> tuple[float, int, int]:
    """Seconds to fetch C{url} whole, its size (-1: it failed) and HTTP status (0: none)."""
    headers = {"Accept": "text/html"} if html else {}
    started = time.monotonic()
    status = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            size = len(r.read())
            status = r.status
    except urllib.error.HTTPError as e:
        size, status = -1, e.code
    except OSError:
        size = -1
    return time.monotonic() - started, size, status


#: What a scrape fetches from each shard: (label, path, as a browser).
PAGES = (
    ("status", "/status", False),
    ("metrics", "/metrics", False),
    ("dashboard", "/", True),
    ("status?compact=1", "/status?compact=1", False),
)


def scrapeAll(shards: Sequence[ShardRun]) -> list[dict[str, Any]]:
    """Every page of every shard, the shards at once (one thread each), pages in turn."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(run: ShardRun) -> None:
        for label, path, html in PAGES:
            started = time.time()
            seconds, size, status = fetch(f"http://127.0.0.1:{run.statusPort}{path}", html)
            with lock:
                results.append(
                    {
                        "shard": run.index,
                        "page": label,
                        "at": started,
                        "seconds": seconds,
                        "bytes": size,
                        "status": status,
                    }
                )

    threads = [threading.Thread(target=one, args=(r,)) for r in shards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def emptyShardRSS(folder: Path) -> int:
    """The RSS (KiB) of a C{twistd chandler} watching no device, once started."""
    config = folder / "empty.toml"
    config.write_text('[status]\nlisten = "off"\n')
    logPath = folder / "empty.log"
    with open(logPath, "w") as out:
        proc = subprocess.Popen(
            [
                TWISTD,
                "-n",
                "--pidfile=",
                "chandler",
                "--config",
                str(config),
                "--log-format",
                "json",
            ],  # fmt: skip
            stdout=out,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "start-up:" in logPath.read_text():
                time.sleep(1)
                return rssKiB(proc.pid)[0]
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        return 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(
    devices: int,
    shards: int | None,
    poll: float,
    seconds: float,
    scrape: float,
    deadline: float = 30.0,
    log: Callable[[str], None] = print,
    keep: bool = False,
) -> dict[str, Any]:
    """The whole run (see the module's docstring): a JSON-able result."""
    names = deviceNames(devices)
    limit = descriptorLimit()
    count = shards if shards else fewestShards(names, limit)
    sizes = shardSizes(names, count)
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    loadBefore = os.getloadavg()
    log(
        f"scale: {devices} devices in {count} shard(s) {sizes}, poll every {poll:g} s, "
        f"descriptor limit {limit}, load {loadBefore[0]:.2f}; in {folder}"
    )
    baseline = emptyShardRSS(folder)
    sims: list[Simulator] = []
    runs: list[ShardRun] = []
    try:
        for size in sizes:
            sims.append(Simulator(max(size, 1)))
        status = freePorts(count)
        config = folder / "fleet.toml"
        config.write_text(fleetConfig(names, count, [s.ports for s in sims], poll, status))
        log(f"scale: config written ({config.stat().st_size >> 10} KiB); starting {count} shards")
        for i in range(1, count + 1):
            runs.append(startShard(i, count, config, folder, sizes[i - 1], status))
        launched = min(r.launched for r in runs)
        # start-up: until every shard said all its devices are Connected (or gave up)
        limitAt = time.time() + max(120.0, 3 * deadline)
        while time.time() < limitAt:
            for r in runs:
                r.read()
                if r.proc.poll() is not None:
                    raise RuntimeError(
                        f"shard {r.index} ended (status {r.proc.returncode}): "
                        + (folder / f"shard-{r.index}.err").read_text()[-2000:]
                    )
            if all(r.startupLine is not None for r in runs):
                break
            time.sleep(0.25)
        startupEnd = time.time()
        log("scale: start-up over; " + ", ".join(_startupText(r) for r in runs))
        # the window: scrapes every `scrape` s, the stall lines read meanwhile
        requestsBefore = [s.command("stats")["requests"] for s in sims]
        cpuBefore = [cpuSeconds(r.proc.pid) for r in runs]
        windowStart = time.time()
        scrapes: list[dict[str, Any]] = []
        nextScrape = windowStart + 1.0
        while time.time() < windowStart + seconds:
            if time.time() >= nextScrape:
                scrapes += scrapeAll(runs)
                nextScrape += scrape
            for r in runs:
                r.read()
            time.sleep(0.2)
        windowEnd = time.time()
        requestsAfter = [s.command("stats") for s in sims]
        cpuAfter = [cpuSeconds(r.proc.pid) for r in runs]
        memory = [rssKiB(r.proc.pid) for r in runs]
        time.sleep(1.5)  # the last stall line of the window
        for r in runs:
            r.read()
    finally:
        for r in runs:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        for r in runs:
            try:
                r.proc.wait(60)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            r.close()
        for s in sims:
            s.quit()
    window = windowEnd - windowStart
    perShard = []
    for i, r in enumerate(runs):
        startupStalls = [ms for t, ms, _ in r.stalls if t <= startupEnd]
        windowStalls = [(t, ms) for t, ms, _ in r.stalls if windowStart <= t <= windowEnd + 1.5]
        scraping = [(s["at"], s["at"] + s["seconds"]) for s in scrapes if s["shard"] == r.index]

        # a stall line covers the second before it: while a page of it was fetched, or not
        withScrape = [ms for t, ms in windowStalls if _during(t, scraping)]
        withoutScrape = [ms for t, ms in windowStalls if not _during(t, scraping)]
        busiest = max((cpu for _, _, cpu in r.stalls), default=0.0)
        rss, hwm = memory[i]
        perShard.append(
            {
                "shard": f"{r.index}/{count}",
                "devices": r.devices,
                "secondsToAllConnected": (
                    round(r.connectedAt - r.launched, 2) if r.connectedAt is not None else None
                ),
                "startupLine": r.startupLine.get("text") if r.startupLine else None,
                "rssKiB": rss,
                "peakRssKiB": hwm,
                "rssKiBPerDevice": round(rss / max(1, r.devices), 2),
                "rssKiBPerDeviceAboveEmpty": round((rss - baseline) / max(1, r.devices), 2),
                "stallLines": len(r.stalls),
                "longestStallMs": round(r.longestMs, 1),
                "longestStallCPUMs": round(r.longestCPUMs, 1),
                "busiestStallCPUMs": round(busiest, 1),
                "longestGCMs": round(r.gcMs, 1),
                "longestStallStartupMs": round(max(startupStalls, default=0.0), 1),
                "longestStallWindowMs": round(max((ms for _, ms in windowStalls), default=0), 1),
                "longestStallWindowWithScrapeMs": round(max(withScrape, default=0.0), 1),
                "longestStallWindowWithoutScrapeMs": round(max(withoutScrape, default=0.0), 1),
                "cpuFraction": round((cpuAfter[i] - cpuBefore[i]) / window, 3),
                "simulatorClients": requestsAfter[i]["clients"],
                "answeredPerSecond": round(
                    (requestsAfter[i]["requests"] - requestsBefore[i]) / window, 1
                ),
                "warnings": r.warnings,
            }
        )
    pages = {}
    for label, _, _ in PAGES:
        times = [s["seconds"] for s in scrapes if s["page"] == label and s["bytes"] >= 0]
        failed = sum(1 for s in scrapes if s["page"] == label and s["bytes"] < 0)
        refused = sum(1 for s in scrapes if s["page"] == label and s["status"] == 429)
        sizes_ = [s["bytes"] for s in scrapes if s["page"] == label and s["bytes"] >= 0]
        pages[label] = {
            "fetches": len(times),
            "failed": failed,
            "refused429": refused,
            "medianMs": round(median(times) * 1000, 1) if times else None,
            "maxMs": round(max(times) * 1000, 1) if times else None,
            "medianBytes": int(median(sizes_)) if sizes_ else None,
        }
    allConnected = [s["secondsToAllConnected"] for s in perShard]
    result: dict[str, Any] = {
        "command": (
            f"python -m bench scale --devices {devices} --shards {count} --poll {poll:g} "
            f"--seconds {seconds:g} --scrape {scrape:g}"
        ),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "devices": devices,
        "shards": count,
        "pollFrequency": poll,
        "descriptorLimit": limit,
        "loadBefore": [round(x, 2) for x in loadBefore],
        "loadAfter": [round(x, 2) for x in os.getloadavg()],
        "emptyShardRssKiB": baseline,
        "windowSeconds": round(window, 1),
        "scrapeEvery": scrape,
        "secondsToAllConnected": (
            round(max(r.connectedAt or 0.0 for r in runs) - launched, 2)
            if all(a is not None for a in allConnected)
            else None
        ),
        "perShard": perShard,
        "pages": pages,
        "scrapes": scrapes,
        "folder": str(folder) if keep else None,
    }
    result["targets"] = [
        {"target": t, "met": ok, "measured": m} for t, ok, m in targets(result, deadline)
    ]
    if not keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return result


def _during(t: float, spans: list[tuple[float, float]]) -> bool:
    """Whether the second before C{t} overlaps one of the C{(start, end)} spans."""
    return any(a <= t and b >= t - 1.2 for a, b in spans)


def _startupText(r: ShardRun) -> str:
    if r.connectedAt is not None:
        seconds = r.connectedAt - r.launched
        return f"shard {r.index}: all {r.devices} Connected after {seconds:.1f} s"
    text = r.startupLine.get("text") if r.startupLine else "no start-up line"
    return f"shard {r.index}: {text}"


def targets(result: dict[str, Any], deadline: float = 30.0) -> list[tuple[str, bool, str]]:
    """The issue's targets: (target, met, measured)."""
    shards = result["perShard"]
    overall = result["secondsToAllConnected"]
    perDevice = max(s["rssKiBPerDevice"] for s in shards)
    stall = max(s["longestStallMs"] for s in shards)
    return [
        (
            f"all {result['devices']} Connected within {deadline:g} s of start",
            overall is not None and overall <= deadline,
            f"{overall} s" if overall is not None else "not all Connected",
        ),
        (
            "at most 10 KiB RSS per device",
            perDevice <= 10,
            f"{perDevice:.2f} KiB (largest shard; above an empty shard: "
            f"{max(s['rssKiBPerDeviceAboveEmpty'] for s in shards):.2f} KiB)",
        ),
        (
            "no reactor stall over 50 ms at any time",
            stall <= 50,
            f"{stall:.1f} ms (start-up "
            f"{max(s['longestStallStartupMs'] for s in shards):.1f}, window with scrapes "
            f"{max(s['longestStallWindowWithScrapeMs'] for s in shards):.1f}, without "
            f"{max(s['longestStallWindowWithoutScrapeMs'] for s in shards):.1f}; the most "
            f"CPU the reactor's thread used in one stall: "
            f"{max(s['busiestStallCPUMs'] for s in shards):.1f} ms)",
        ),
    ]


def table(result: dict[str, Any]) -> str:
    """The result as Markdown tables."""
    out = [
        f"`{result['command']}` on {result['when']}, load {result['loadBefore'][0]:.2f} before, "
        f"{result['loadAfter'][0]:.2f} after; descriptor limit {result['descriptorLimit']}; "
        f"empty shard {result['emptyShardRssKiB'] / 1024:.1f} MiB.",
        "",
        "| shard | devices | all Connected (s) | RSS MiB | KiB/device (above empty) | longest "
        "stall ms (start-up / window with scrape / without) | CPU ms of the longest / most CPU "
        "in a stall | longest GC ms | CPU | answered/s |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for s in result["perShard"]:
        out.append(
            f"| {s['shard']} | {s['devices']} | {s['secondsToAllConnected']} | "
            f"{s['rssKiB'] / 1024:.0f} | {s['rssKiBPerDevice']:.2f} "
            f"({s['rssKiBPerDeviceAboveEmpty']:.2f}) | {s['longestStallMs']:.1f} "
            f"({s['longestStallStartupMs']:.1f} / {s['longestStallWindowWithScrapeMs']:.1f} / "
            f"{s['longestStallWindowWithoutScrapeMs']:.1f}) | {s['longestStallCPUMs']:.1f} / "
            f"{s['busiestStallCPUMs']:.1f} | {s['longestGCMs']:.1f} | "
            f"{100 * s['cpuFraction']:.0f}% | "
            f"{s['answeredPerSecond']:.0f} |"
        )
    out += [
        "",
        f"Overall: all Connected {result['secondsToAllConnected']} s after the first launch.",
        "",
        "| page (every shard, every "
        f"{result['scrapeEvery']:g} s) | answered | failed (of which 429: the client's "
        "rendering budget) | median ms | max ms | bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, p in result["pages"].items():
        out.append(
            f"| {label} | {p['fetches']} | {p['failed']} ({p['refused429']}) | {p['medianMs']} | "
            f"{p['maxMs']} | {p['medianBytes']} |"
        )
    out += ["", "| target | met | measured |", "|---|---|---|"]
    for t in result["targets"]:
        out.append(f"| {t['target']} | {'yes' if t['met'] else '**no**'} | {t['measured']} |")
    return "\n".join(out)
