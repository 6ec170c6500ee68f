"""
C{python -m bench paths}: the paths users run (issue 12), each beside a raw Twisted poller in the
same rounds, plus the fleet's start-up, its scaling over shards, and event delivery on a busy
program thread.

* rows: the implementations of L{bench.pollers.PATHS} beside raw Twisted (and SNMP beside a raw
  Twisted UDP poller), in both shapes (polls together in one reactor turn, as a ControlScript
  program's handlers poll, and spread over the second, as the fleet's do), the implementations
  and shapes taking turns within each round; each row gives its ratio to raw Twisted and its
  CPU µs per poll above raw, per shape;
* startup: C{twistd chandler} with 10,000 configured devices against a simulator whose ports
  have an ordinary listen backlog (128): seconds until every device is Connected, and the
  kernel's listen-queue overflows meanwhile (a SYN storm shows there);
* shards: a fleet of n devices as one C{--shard 1/1} process, then a fleet of 2n as two
  concurrent shards (C{1/2}, C{2/2}), each near a core's worth: answered polls per second;
* events: a program thread polling 50 handlers (blocking SendAndWait at 1 Hz) and receiving
  device data: the delay from the device's write to the program's ReceiveData callback, against
  the same program without the 50 handlers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from statistics import median
from typing import Any

from bench import poll
from bench.pollers import PATHS, SHAPES, SNMP_IMPLS, THREAD_IMPLS

#: the rows; the thread row, the program row's floor (no target of its own), right below it
_AT = PATHS.index("twisted_ch-program") + 1
ROW_IMPLS = ("twisted", "twisted_ch", *PATHS[:_AT], *THREAD_IMPLS, *PATHS[_AT:])


def listenOverflows() -> int:
    """The kernel's count of connections dropped from full listen queues (TcpExt)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return -1
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0)) + int(table.get("ListenDrops", 0))
    return -1


def _paired(
    n: int,
    ports: list[int],
    impls: tuple[str, ...],
    base: str,
    key: str,
    seconds: float,
    repeats: int,
    shapes: tuple[str, ...],
    log: Any,
) -> list[dict[str, Any]]:
    """
    Every implementation in every shape, C{repeats} rounds (within a round, each shape in turn,
    and within a shape the implementations in turn); per (implementation, shape) the median run,
    with its ratio to C{base} and its µs above C{base} (of the medians, and per round).
    """
    runs: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for r in range(repeats):
        for shape in shapes:
            for impl in impls:
                window = poll.windowFor(impl, seconds)
                log(f"paths: {impl} N={n} {shape} round {r + 1}/{repeats} ({window:g} s window)")
                extra = ["--shape", shape]
                if impl.startswith("fleet-") and shape == "spread":
                    # first connects (so polls) spread over 1 s, as the raw pollers' connects are
                    extra += ["--start-rate", str(n)]
                try:
                    got: dict[str, Any] | None = poll.runChild(impl, n, ports, window, *extra)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    # one failed run costs its round's pair, not the whole benchmark
                    log(f"paths: {impl} N={n} {shape} round {r + 1} failed: {str(e)[-300:]}")
                    got = None
                runs.setdefault((impl, shape), []).append(got)
    out = []
    for (_impl, shape), every in runs.items():
        # the rounds in which both this implementation and the base ran
        pairs = [(a, b) for a, b in zip(every, runs[(base, shape)], strict=True) if a and b]
        if not pairs:
            continue
        these = [a for a, _ in pairs]
        ordered = sorted(these, key=lambda x: x["cpuMicrosPerPoll"])
        row = dict(ordered[(len(ordered) - 1) // 2])
        row["shape"] = shape
        row["cpuRuns"] = [x["cpuMicrosPerPoll"] for x in these]
        row["failedRuns"] = sum(1 for a in every if a is None)
        cpu = [x["cpuMicrosPerPoll"] for x in these]
        baseCpu = [b["cpuMicrosPerPoll"] for _, b in pairs]
        row[key] = round(median(cpu) / median(baseCpu), 3)
        row[key + "Paired"] = round(median(a / b for a, b in zip(cpu, baseCpu, strict=True)), 3)
        row["microsAboveRaw"] = round(median(cpu) - median(baseCpu), 1)
        row["microsAboveRawPaired"] = round(
            median(a - b for a, b in zip(cpu, baseCpu, strict=True)), 1
        )
        out.append(row)
    return out


def rows(
    n: int,
    seconds: float,
    repeats: int,
    log: Any,
    big: int | None = None,
    shapes: tuple[str, ...] = SHAPES,
) -> dict[str, Any]:
    """Every path at N=n (and the fleet and raw Twisted at N=big), in each shape, by round."""
    out: list[dict[str, Any]] = []
    with poll.simulator(max(n, big or 0)) as (_, ports):
        args = (seconds, repeats, shapes, log)
        out += _paired(n, ports, ROW_IMPLS, "twisted", "ratioToRawTwisted", *args)
        out += _paired(n, ports, SNMP_IMPLS, "twisted-snmp", "ratioToRawSNMP", *args)
        if big:
            large = (
                "twisted",
                "twisted_ch",
                "twisted_ch-async",
                "twisted_ch-async-tuned",
                "twisted_ch-program",
                "twisted-thread",
                "fleet-sis",
            )
            out += _paired(big, ports, large, "twisted", "ratioToRawTwisted", *args)
    return {"rows": out, "seconds": seconds, "repeats": repeats, "shapes": list(shapes)}


def startup(n: int, backlog: int, log: Any) -> dict[str, Any]:
    """C{twistd chandler} with n SIS devices: seconds until all are Connected."""
    with poll.simulator(n, backlog) as (_, ports):
        before = listenOverflows()
        log(f"startup: {n} devices, listen backlog {backlog}")
        run = poll.runChild("fleet-sis", n, ports, 2)
        after = listenOverflows()
    return {
        "devices": n,
        "backlog": backlog,
        "connected": run["connected"],
        "secondsToAllConnected": run["connectSeconds"],
        "listenOverflows": after - before if before >= 0 else None,
        "slowestFirstConnect": run["slowestFirstConnect"],
        "firstConnectsOverOneSecond": run["firstConnectsOverOneSecond"],
        "cpuMicrosPerPoll": run["cpuMicrosPerPoll"],
        "cpuFraction": run["cpuFraction"],
        "rssKiBPerDevice": run["rssKiBPerHandler"],
        "notes": run["notes"],
    }


def _concurrent(
    shards: int, n: int, ports: list[int], seconds: float, pollFrequency: float
) -> list[dict[str, Any]]:
    procs = []
    for i in range(1, shards + 1):
        cmd = [
            sys.executable, "-m", "bench.pollers", "--impl", "fleet-send", "--devices", str(n),
            "--ports", ",".join(map(str, ports)), "--seconds", str(seconds),
            "--sim", json.dumps(poll.SIM), "--shard", f"{i}/{shards}",
            "--poll-frequency", str(pollFrequency),
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=300 + seconds)
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def shards(n: int, pollFrequency: float, seconds: float, repeats: int, log: Any) -> dict[str, Any]:
    """
    One shard with a fleet of n devices, then two concurrent shards with a fleet of 2n (each
    shard watches about n): answered polls per second, by round.  Twice the fleet at the same
    cost per shard is what "two shards carry twice what one carries" means on two cores; the
    simulator needs CPU as well and shares those cores.
    """
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with poll.simulator(2 * n) as (_, ports):
        for r in range(repeats):
            for k in (1, 2):
                log(
                    f"shards: {k} shard(s), {k * n} devices every {pollFrequency:g} s, "
                    f"round {r + 1}/{repeats}"
                )
                parts = _concurrent(k, k * n, ports, seconds, pollFrequency)
                runs[k].append(
                    {
                        "answeredPerSecond": round(sum(p["pollsPerSecond"] for p in parts), 1),
                        "cpuFraction": [p["cpuFraction"] for p in parts],
                        "cpuMicrosPerPoll": [p["cpuMicrosPerPoll"] for p in parts],
                        "devices": [p["devices"] for p in parts],
                        "drops": sum(p["lostInWindow"] for p in parts),
                    }
                )
    factors = [
        b["answeredPerSecond"] / a["answeredPerSecond"]
        for a, b in zip(runs[1], runs[2], strict=True)
    ]
    return {
        "devicesPerShard": n,
        "pollFrequency": pollFrequency,
        "runs": runs,
        "oneShard": median(x["answeredPerSecond"] for x in runs[1]),
        "twoShards": median(x["answeredPerSecond"] for x in runs[2]),
        "factor": round(median(factors), 2),
        "factors": [round(f, 2) for f in factors],
    }


def events(seconds: float, log: Any, shapes: tuple[str, ...] = SHAPES) -> dict[str, Any]:
    """
    Event delivery on a program thread, without and with 50 polling handlers (their polls
    together, and spread: keys C{50} and C{50-spread}).
    """
    out: dict[str, Any] = {}
    runs = [("0", 0, "together")] + [
        ("50" if shape == "together" else "50-spread", 50, shape) for shape in shapes
    ]
    with poll.simulator(100) as (_, ports):
        for key, busy, shape in runs:
            log(f"events: a program thread with {busy} polling handlers ({shape})")
            cmd = [
                sys.executable, "-m", "bench.events", "--handlers", str(busy),
                "--ports", ",".join(map(str, ports)), "--seconds", str(seconds),
                "--shape", shape,
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, timeout=120 + seconds, check=False)
            lines = done.stdout.decode().strip().splitlines()
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"bench.events failed: {done.stderr.decode()[-2000:]}")
            out[key] = json.loads(lines[-1])
    quiet = out["0"]
    for key, name in (("50", "addedMs"), ("50-spread", "addedMsSpread")):
        if key in out:
            out[name] = {
                k: round(out[key][k] - quiet[k], 3)
                for k in ("median", "p99", "max")
                if k in out[key]
            }
    return out


def run(
    n: int = 1000,
    seconds: float = 8.0,
    repeats: int = 3,
    big: int | None = 10000,
    log: Any = print,
    parts: str = "rows,startup,shards,events",
    shape: str = "both",
) -> dict[str, Any]:
    """Everything above, in one go (or the C{parts} named; rows in C{shape}: one, or both)."""
    if shape not in (*SHAPES, "both"):
        raise ValueError(f"shape must be together, spread or both, not {shape!r}")
    shapes = SHAPES if shape == "both" else (shape,)
    wanted = set(parts.split(","))
    out: dict[str, Any] = {"rows": {"rows": []}}
    if "rows" in wanted:
        out["rows"] = rows(n, seconds, repeats, log, big, shapes)
    if "startup" in wanted:
        out["startup"] = startup(10000, 128, log)
    if "shards" in wanted:
        out["shards"] = shards(2000, 0.25, 10.0, repeats, log)
    if "events" in wanted:
        out["events"] = events(10.0, log, shapes)
    return out


def _shapeCells(row: dict[str, Any] | None) -> str:
    """A row's cells for one shape: µs per poll (every round), ratio (per round), µs above raw."""
    if row is None:
        return "| - | - | - "
    every = ", ".join(f"{v:.0f}" for v in row.get("cpuRuns", [row["cpuMicrosPerPoll"]]))
    cpu = f"{row['cpuMicrosPerPoll']:.0f} ({every})"
    if row["impl"] in ("twisted", "twisted-snmp"):
        return f"| {cpu} | 1.00 | 0 "
    for key in ("ratioToRawTwisted", "ratioToRawSNMP"):
        value, paired = row.get(key), row.get(key + "Paired")
        if value is not None:
            ratio = f"{value:.2f}" + (f" ({paired:.2f})" if paired is not None else "")
            above = row.get("microsAboveRaw")
            abovePaired = row.get("microsAboveRawPaired")
            extra = (
                "-"
                if above is None
                else f"{above:+.0f}" + (f" ({abovePaired:+.0f})" if abovePaired is not None else "")
            )
            return f"| {cpu} | {ratio} | {extra} "
    return f"| {cpu} | - | - "


LABELS = {
    "twisted": "raw Twisted poller (`transport.write`, lines split in `dataReceived`)",
    "twisted_ch": "twisted_ch, Send + ReceiveData → ResponseAccepted",
    "twisted_ch-async": "twisted_ch, `async def` keep-alive awaiting `SendAndWait(deliTag=)`",
    "twisted_ch-async-tuned": "the same, `twisted_ch.tuneGC()` at start (README: many handlers)",
    "twisted_ch-program": "twisted_ch, blocking `SendAndWait` on one program thread",
    "twisted-thread": "raw Twisted, one thread blocking on each round trip (the row above's floor)",
    "fleet-sis": "`twistd chandler --config` fleet, SIS probe",
    "fleet-pjlink": "`twistd chandler --config` fleet, PJLink probe",
    "fleet-send": "`twistd chandler --config` fleet, send/expect probe",
    "fleet-snmp": "`twistd chandler --config` fleet, SNMP probe (UDP)",
    "twisted-snmp": "raw Twisted SNMP poller (UDP, same codec)",
}


def table(result: dict[str, Any]) -> str:
    """The markdown tables of a L{run} result."""
    byKey: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in result["rows"]["rows"]:
        byKey.setdefault((r["impl"], r["devices"]), {})[r.get("shape", "spread")] = r
    out = [
        "| path | N | together: CPU µs per answered poll (every round) | ratio to raw "
        "(per round) | µs above raw (per round) | spread: CPU µs per answered poll (every round) "
        "| ratio to raw (per round) | µs above raw (per round) | polls/s | CPU of one core "
        "(together, spread) | KiB RSS per device |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (impl, n), shapes in byKey.items():
        any_ = shapes.get("spread") or next(iter(shapes.values()))
        cpuOf = ", ".join(
            f"{100 * shapes[k]['cpuFraction']:.0f}%" if k in shapes else "-"
            for k in ("together", "spread")
        )
        out.append(
            f"| {LABELS.get(impl, impl)} | {n:,} "
            f"{_shapeCells(shapes.get('together'))}{_shapeCells(shapes.get('spread'))}"
            f"| {any_['pollsPerSecond']:.0f} | {cpuOf} | {any_['rssKiBPerHandler']:.1f} |"
        )
    s = result.get("startup")
    if s:
        out += [
            "",
            f"Start-up: {s['devices']:,} configured devices (SIS), simulator ports with a listen "
            f"backlog of {s['backlog']}: {s['connected']:,} Connected "
            f"{s['secondsToAllConnected']:.1f} s after the service started (handlers built "
            f"and first connects spread by the service itself); the slowest first connect took "
            f"{1e3 * s['slowestFirstConnect']:.0f} ms and {s['firstConnectsOverOneSecond']} "
            "took 1 s or more (the kernel's SYN retransmission: a SYN dropped by a full listen "
            f"queue); the machine-wide listen-overflow counter rose by {s['listenOverflows']} "
            "(it counts other processes' queues too).",
        ]
    sh = result.get("shards")
    if sh:
        one, two = (sh["runs"].get(k, sh["runs"].get(str(k))) for k in (1, 2))
        cpu1 = median(c for x in one for c in x["cpuFraction"])
        cpu2 = median(c for x in two for c in x["cpuFraction"])
        out += [
            "",
            f"Shards (send/expect probe, every {sh['pollFrequency']:g} s): one shard with "
            f"{sh['devicesPerShard']:,} devices answered {sh['oneShard']:,.0f} polls/s "
            f"({100 * cpu1:.0f}% of a core); two concurrent shards with "
            f"{2 * sh['devicesPerShard']:,} devices answered {sh['twoShards']:,.0f} polls/s "
            f"({100 * cpu2:.0f}% of a core each): **{sh['factor']:.2f}x** "
            f"(per round: {', '.join(f'{f:.2f}' for f in sh['factors'])}).  The simulator "
            "shares the same two cores.",
        ]
    ev = result.get("events")
    if ev:
        q = ev["0"]
        out += [
            "",
            "| event delivery on a program thread (ms, device write → ReceiveData callback) "
            "| n | median | p99 | max |",
            "|---|---:|---:|---:|---:|",
            f"| program alone | {q['n']} | {q['median']:.3f} | {q['p99']:.3f} | {q['max']:.3f} |",
        ]
        for key, added, shape in (
            ("50", "addedMs", "together"),
            ("50-spread", "addedMsSpread", "spread"),
        ):
            b, a = ev.get(key), ev.get(added)
            if b is None or a is None:
                continue
            out += [
                f"| with 50 handlers polling, {shape} (blocking SendAndWait, 1 Hz) | {b['n']} "
                f"| {b['median']:.3f} | {b['p99']:.3f} | {b['max']:.3f} |",
                f"| added ({shape}) | | {a['median']:.3f} | {a['p99']:.3f} | {a['max']:.3f} |",
            ]
    return "\n".join(out)


#: issue 21's per-poll targets: the ratio to raw a path may cost, in both shapes, at every N
LIMITS = {
    "twisted_ch": (1.1, "ratioToRawTwisted"),
    "twisted_ch-async": (1.3, "ratioToRawTwisted"),
    "twisted_ch-async-tuned": (1.3, "ratioToRawTwisted"),
    "twisted_ch-program": (2.5, "ratioToRawTwisted"),
    "fleet-sis": (1.3, "ratioToRawTwisted"),
    "fleet-pjlink": (1.3, "ratioToRawTwisted"),
    "fleet-send": (1.3, "ratioToRawTwisted"),
    "fleet-snmp": (1.3, "ratioToRawSNMP"),
}


def targets(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Issue 12's and 21's targets: (target, met, evidence)."""
    out: list[tuple[str, bool, str]] = []
    rowsShaped = {
        (r["impl"], r["devices"], r.get("shape", "spread")): r for r in result["rows"]["rows"]
    }
    # one row per (impl, N) for the targets that are not per shape: the spread one if run
    rowsBy: dict[tuple[str, int], dict[str, Any]] = {}
    for (impl, n, shape), r in rowsShaped.items():
        if shape == "spread" or (impl, n) not in rowsBy:
            rowsBy[(impl, n)] = r
    for (impl, n, shape), r in sorted(rowsShaped.items()):
        if impl not in LIMITS:
            continue
        limit, key = LIMITS[impl]
        got = r.get(key)
        if got is None:
            continue
        paired = r.get(key + "Paired", got)
        out.append(
            (
                f"N={n:,}, {shape}: {LABELS[impl]} ≤ {limit}x raw",
                got <= limit and paired <= limit,
                f"{got:.2f}x (per round {paired:.2f}x), "
                f"{r.get('microsAboveRaw', 0):+.0f} µs above raw",
            )
        )
    for (impl, size), r in sorted(rowsBy.items()):
        if impl == "fleet-sis" and size >= 10000 and r.get("shape", "spread") == "spread":
            ok = r["cpuFraction"] <= 0.6 and r["pollsPerSecond"] >= 0.98 * size
            out.append(
                (
                    f"{size:,} devices at 1 Hz in ≤ 60% of one core (scraped every 15 s)",
                    ok,
                    f"{100 * r['cpuFraction']:.0f}% of one core, {r['pollsPerSecond']:.0f} polls/s",
                )
            )
        if impl.startswith("fleet-"):
            out.append(
                (
                    f"≤ 10 KiB RSS per device ({impl}, N={size:,})",
                    r["rssKiBPerHandler"] <= 10,
                    f"{r['rssKiBPerHandler']:.1f} KiB",
                )
            )
    s = result.get("startup")
    if s:
        out.append(
            (
                f"{s['devices']:,} devices all Connected within 15 s, no SYN storm",
                s["connected"] >= s["devices"]
                and s["secondsToAllConnected"] <= 15
                and s["firstConnectsOverOneSecond"] == 0,
                f"{s['secondsToAllConnected']:.1f} s; slowest first connect "
                f"{1e3 * s['slowestFirstConnect']:.0f} ms, "
                f"{s['firstConnectsOverOneSecond']} SYNs retransmitted",
            )
        )
    sh = result.get("shards")
    if sh:
        out.append(
            (
                "2 shards carry about twice what one carries (≥ 1.8x)",
                sh["factor"] >= 1.8,
                f"{sh['factor']:.2f}x the answered polls/s",
            )
        )
    ev = result.get("events")
    for added, shape in (("addedMs", "together"), ("addedMsSpread", "spread")):
        a = (ev or {}).get(added)
        if a:
            out.append(
                (
                    f"50 handlers polling ({shape}) add ≤ 1 ms to an event's delivery (p99)",
                    a["p99"] <= 1.0,
                    f"added median {a['median']:.3f} ms, p99 {a['p99']:.3f} ms, "
                    f"max {a['max']:.3f} ms",
                )
            )
    return out
