"""
C{python -m bench poll}: keep-alive polling cost of twisted_ch against raw Twisted and asyncio.

One simulator process (L{bench.sim}) serves every run; each implementation and size runs in its own
child process (L{bench.pollers}), one after the other, so they never share a core's time with each
other (the simulator has the other core).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

from bench.pollers import IMPLS

PAIRS = (
    ("ratioToRawTwisted", "twisted"),
    ("ratioToRawSNMP", "twisted-snmp"),
    ("ratioToTwistedDirect", "twisted-direct"),
    ("ratioToAsyncio", "asyncio"),
)


#: the simulator's port line of the running L{simulator} (passed to every child)
SIM: dict[str, Any] = {}


@contextmanager
def simulator(
    maxDevices: int, backlog: int = 4096
) -> Iterator[tuple[subprocess.Popen[bytes], list[int]]]:
    """
    A running L{bench.sim} process with enough ports for C{maxDevices} connections (of each
    protocol: P/Pwr, SIS, PJLink, and an SNMP agent on UDP).
    """
    nports = max(1, math.ceil(maxDevices / 2000))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.sim",
            "--ports",
            str(nports),
            "--max-clients",
            str(3 * maxDevices),
            "--backlog",
            str(backlog),
            "--protocols",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        SIM.clear()
        SIM.update(json.loads(line))
        yield proc, SIM["ports"]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: the fleet rows' window is at least this long: /status and /metrics are scraped every 15 s,
#: and a window must hold that scrape at its real weight (one per 15 s)
FLEET_WINDOW = 15.0


def windowFor(impl: str, seconds: float) -> float:
    """The measurement window of a run: fleet rows take whole scrape periods."""
    if impl.startswith("fleet-"):
        return max(FLEET_WINDOW, FLEET_WINDOW * round(seconds / FLEET_WINDOW))
    return seconds


def runChild(impl: str, devices: int, ports: list[int], seconds: float, *extra: str) -> Any:
    cmd = [
        sys.executable, "-m", "bench.pollers", "--impl", impl, "--devices", str(devices),
        "--ports", ",".join(map(str, ports)), "--seconds", str(seconds),
        "--sim", json.dumps(SIM), *extra,
    ]  # fmt: skip
    budget = 120 + seconds + devices / 100
    done = subprocess.run(cmd, capture_output=True, timeout=budget, check=False)
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{impl} N={devices} failed: {done.stderr.decode()[-2000:]}")
    return json.loads(lines[-1])


def run(
    sizes: list[int],
    seconds: float,
    memorySizes: list[int] | None = None,
    impls: tuple[str, ...] = IMPLS,
    repeats: int = 1,
    log: Any = print,
    backlog: int = 4096,
) -> dict[str, Any]:
    """
    Run every implementation at every size, C{repeats} rounds (the implementations take turns
    within a round, so slow drifts of the machine hit them alike); each row is the run with the
    median CPU per poll, with every run's figure in C{cpuRuns}.  Also returns the tracemalloc
    runs at C{memorySizes}.
    """
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    with simulator(max(sizes + (memorySizes or [])), backlog) as (_, ports):
        for n in sizes:
            runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
            for r in range(repeats):
                for impl in impls:
                    window = windowFor(impl, seconds)
                    log(f"poll: {impl} N={n} round {r + 1}/{repeats} ({window:g} s window)")
                    # fleet rows: first connects (so polls) spread over 1 s, as the others'
                    extra = ("--start-rate", str(n)) if impl.startswith("fleet-") else ()
                    runs[impl].append(runChild(impl, n, ports, window, *extra))
            for impl in impls:
                ordered = sorted(runs[impl], key=lambda x: x["cpuMicrosPerPoll"])
                row = ordered[(len(ordered) - 1) // 2]
                row["cpuRuns"] = [x["cpuMicrosPerPoll"] for x in runs[impl]]
                # the ratio within each round (same machine state), then the median of those
                for key, other in PAIRS:
                    if other in runs:
                        row[key + "Paired"] = round(
                            median(
                                [
                                    a["cpuMicrosPerPoll"] / b["cpuMicrosPerPoll"]
                                    for a, b in zip(runs[impl], runs[other], strict=True)
                                ]
                            ),
                            3,
                        )
                rows.append(row)
        for n in memorySizes or []:
            for impl in impls:
                log(f"poll: {impl} N={n} tracemalloc")
                memory.append(runChild(impl, n, ports, 2, "--memory"))
    byKey = {(r["impl"], r["devices"]): r for r in rows}
    for r in rows:
        for key, other in PAIRS:
            base = byKey.get((other, r["devices"]))
            r[key] = round(r["cpuMicrosPerPoll"] / base["cpuMicrosPerPoll"], 3) if base else None
    traced = {(m["impl"], m["devices"]): m for m in memory}
    for r in rows:
        m = traced.get((r["impl"], r["devices"]))
        if m is not None:
            r["tracedKiBPerHandler"] = m["tracedKiBPerHandler"]
            r["tracedKiBPerUnconnectedHandler"] = m["tracedKiBPerUnconnectedHandler"]
    return {"rows": rows, "memory": memory, "seconds": seconds, "repeats": repeats}


def _ratios(row: dict[str, Any], key: str) -> str:
    """The ratio of medians, and in brackets the median of the per-round ratios."""
    value, paired = row.get(key), row.get(key + "Paired")
    if value is None:
        return "-"
    return f"{value:.2f}" + ("" if paired is None else f" ({paired:.2f})")


def table(result: dict[str, Any]) -> str:
    """The markdown table of a L{run} result."""
    out = [
        "| implementation | N | polls/s | CPU µs/poll (median) | every run "
        "| ratio to raw Twisted | to twisted-direct | to asyncio "
        "| CPU of one core | KiB/handler (RSS) | KiB/handler (tracemalloc) | fds | drops |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        traced = r.get("tracedKiBPerHandler")
        every = ", ".join(f"{v:.1f}" for v in r.get("cpuRuns", [r["cpuMicrosPerPoll"]]))
        out.append(
            f"| {r['impl']} | {r['devices']} | {r['pollsPerSecond']:.0f} "
            f"| {r['cpuMicrosPerPoll']:.1f} | {every} | {_ratios(r, 'ratioToRawTwisted')} "
            f"| {_ratios(r, 'ratioToTwistedDirect')} | {_ratios(r, 'ratioToAsyncio')} "
            f"| {100 * r['cpuFraction']:.0f}% | {r['rssKiBPerHandler']:.2f} "
            f"| {'-' if traced is None else f'{traced:.2f}'} | {r['fds']} | {r['lostInWindow']} |"
        )
    for m in result["memory"]:
        if m.get("tracedKiBPerUnconnectedHandler") is not None:
            out.append("")
            out.append(
                f"tracemalloc, {m['impl']} N={m['devices']}: "
                f"{m['tracedKiBPerHandler']:.2f} KiB per connected, polling handler; "
                f"{m['tracedKiBPerUnconnectedHandler']:.2f} KiB per handler before Connect."
            )
    return "\n".join(out)
