"""
C{python -m bench paths}: the paths users run (issue 12), each beside a raw Twisted poller in the
same rounds, plus the fleet's start-up, its scaling over shards, and event delivery on a busy
program thread.

* rows: L{bench.poll.run} over the implementations of L{bench.pollers.PATHS} with raw Twisted
  (and SNMP beside a raw Twisted UDP poller), taking turns within each round;
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
from bench.pollers import PATHS, SNMP_IMPLS

ROW_IMPLS = ("twisted", "twisted_ch", *PATHS)


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


def rows(n: int, seconds: float, repeats: int, log: Any, big: int | None = None) -> dict[str, Any]:
    """Every path at N=n (and the fleet and raw Twisted at N=big), paired by round."""
    result = poll.run([n], seconds, [], ROW_IMPLS, repeats, log)
    snmp = poll.run([n], seconds, [], SNMP_IMPLS, repeats, log)
    result["rows"] += snmp["rows"]
    if big:
        large = poll.run([big], seconds, [], ("twisted", "fleet-sis"), repeats, log)
        result["rows"] += large["rows"]
    return result


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


def events(seconds: float, log: Any) -> dict[str, Any]:
    """Event delivery on a program thread, without and with 50 polling handlers."""
    out: dict[str, Any] = {}
    with poll.simulator(100) as (_, ports):
        for busy in (0, 50):
            log(f"events: a program thread with {busy} polling handlers")
            cmd = [
                sys.executable, "-m", "bench.events", "--handlers", str(busy),
                "--ports", ",".join(map(str, ports)), "--seconds", str(seconds),
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, timeout=120 + seconds, check=False)
            lines = done.stdout.decode().strip().splitlines()
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"bench.events failed: {done.stderr.decode()[-2000:]}")
            out[str(busy)] = json.loads(lines[-1])
    quiet, busy = out["0"], out["50"]
    out["addedMs"] = {
        k: round(busy[k] - quiet[k], 3) for k in ("median", "p99", "max") if k in busy
    }
    return out


def run(
    n: int = 1000,
    seconds: float = 8.0,
    repeats: int = 3,
    big: int | None = 10000,
    log: Any = print,
    parts: str = "rows,startup,shards,events",
) -> dict[str, Any]:
    """Everything above, in one go (or the C{parts} named)."""
    wanted = set(parts.split(","))
    out: dict[str, Any] = {"rows": {"rows": []}}
    if "rows" in wanted:
        out["rows"] = rows(n, seconds, repeats, log, big)
    if "startup" in wanted:
        out["startup"] = startup(10000, 128, log)
    if "shards" in wanted:
        out["shards"] = shards(2000, 0.25, 10.0, repeats, log)
    if "events" in wanted:
        out["events"] = events(10.0, log)
    return out


def _ratio(row: dict[str, Any]) -> str:
    for key in ("ratioToRawTwisted", "ratioToRawSNMP"):
        value, paired = row.get(key), row.get(key + "Paired")
        if value is not None and row["impl"] not in ("twisted", "twisted-snmp"):
            return f"{value:.2f} ({paired:.2f})" if paired is not None else f"{value:.2f}"
    return "1.00"


LABELS = {
    "twisted": "raw Twisted poller (`transport.write`, lines split in `dataReceived`)",
    "twisted_ch": "twisted_ch, Send + ReceiveData → ResponseAccepted",
    "twisted_ch-async": "twisted_ch, `async def` keep-alive awaiting `SendAndWait(deliTag=)`",
    "twisted_ch-program": "twisted_ch, blocking `SendAndWait` on one program thread",
    "fleet-sis": "`twistd chandler --config` fleet, SIS probe",
    "fleet-pjlink": "`twistd chandler --config` fleet, PJLink probe",
    "fleet-send": "`twistd chandler --config` fleet, send/expect probe",
    "fleet-snmp": "`twistd chandler --config` fleet, SNMP probe (UDP)",
    "twisted-snmp": "raw Twisted SNMP poller (UDP, same codec)",
}


def table(result: dict[str, Any]) -> str:
    """The markdown tables of a L{run} result."""
    out = [
        "| path | N | polls/s | CPU µs per answered poll (median) | every round "
        "| ratio to raw Twisted (per round) | CPU of one core | KiB RSS per device | GC ms/s |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]["rows"]:
        every = ", ".join(f"{v:.0f}" for v in r.get("cpuRuns", [r["cpuMicrosPerPoll"]]))
        out.append(
            f"| {LABELS.get(r['impl'], r['impl'])} | {r['devices']:,} | {r['pollsPerSecond']:.0f} "
            f"| {r['cpuMicrosPerPoll']:.0f} | {every} | {_ratio(r)} "
            f"| {100 * r['cpuFraction']:.0f}% | {r['rssKiBPerHandler']:.1f} "
            f"| {r.get('gcMillisPerSecond') or 0:.1f} |"
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
        q, b = ev["0"], ev["50"]
        out += [
            "",
            "| event delivery on a program thread (ms, device write → ReceiveData callback) "
            "| n | median | p99 | max |",
            "|---|---:|---:|---:|---:|",
            f"| program alone | {q['n']} | {q['median']:.3f} | {q['p99']:.3f} | {q['max']:.3f} |",
            f"| with 50 handlers polling (blocking SendAndWait, 1 Hz) | {b['n']} "
            f"| {b['median']:.3f} | {b['p99']:.3f} | {b['max']:.3f} |",
            f"| added | | {ev['addedMs']['median']:.3f} | {ev['addedMs']['p99']:.3f} "
            f"| {ev['addedMs']['max']:.3f} |",
        ]
    return "\n".join(out)


def targets(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Issue 12's targets: (target, met, evidence)."""
    out: list[tuple[str, bool, str]] = []
    rowsBy = {(r["impl"], r["devices"]): r for r in result["rows"]["rows"]}

    def ratio(impl: str, n: int, key: str = "ratioToRawTwisted") -> tuple[float, float] | None:
        r = rowsBy.get((impl, n))
        if r is None or r.get(key) is None:
            return None
        return r[key], r.get(key + "Paired", r[key])

    sizes = sorted({n for _, n in rowsBy})
    n = sizes[0] if sizes else 0
    for impl, limit, key in (
        ("twisted_ch", 1.1, "ratioToRawTwisted"),
        ("twisted_ch-async", 1.3, "ratioToRawTwisted"),
        ("twisted_ch-program", 3.0, "ratioToRawTwisted"),
        ("fleet-sis", 1.5, "ratioToRawTwisted"),
        ("fleet-pjlink", 1.5, "ratioToRawTwisted"),
        ("fleet-send", 1.5, "ratioToRawTwisted"),
        ("fleet-snmp", 1.5, "ratioToRawSNMP"),
    ):
        got = ratio(impl, n, key)
        if got is not None:
            out.append(
                (
                    f"N={n}: {LABELS[impl]} ≤ {limit}x raw",
                    got[0] <= limit and got[1] <= limit,
                    f"{got[0]:.2f}x (per round {got[1]:.2f}x)",
                )
            )
    for (impl, size), r in sorted(rowsBy.items()):
        if impl == "fleet-sis" and size >= 10000:
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
    if ev:
        out.append(
            (
                "50 polling handlers add ≤ 1 ms to any event's delivery",
                ev["addedMs"]["max"] <= 1.0,
                f"added median {ev['addedMs']['median']:.3f} ms, "
                f"p99 {ev['addedMs']['p99']:.3f} ms, max {ev['addedMs']['max']:.3f} ms",
            )
        )
    return out
