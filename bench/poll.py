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
from typing import Any

IMPLS = ("twisted_ch", "twisted", "asyncio")


@contextmanager
def simulator(maxDevices: int) -> Iterator[tuple[subprocess.Popen[bytes], list[int]]]:
    """A running L{bench.sim} process with enough ports for C{maxDevices} connections."""
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
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        yield proc, json.loads(line)["ports"]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def runChild(impl: str, devices: int, ports: list[int], seconds: float, *extra: str) -> Any:
    if impl.endswith("+fastpath"):
        impl, extra = impl.removesuffix("+fastpath"), (*extra, "--fastpath")
    cmd = [
        sys.executable, "-m", "bench.pollers", "--impl", impl, "--devices", str(devices),
        "--ports", ",".join(map(str, ports)), "--seconds", str(seconds), *extra,
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
    fastpathSizes: list[int] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """
    Run every implementation at every size (and twisted_ch with L{bench.fastpath} at
    C{fastpathSizes}); returns the rows plus the tracemalloc runs at C{memorySizes}.
    """
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    with simulator(max(sizes + (memorySizes or []))) as (_, ports):
        for n in sizes:
            extra = ("twisted_ch+fastpath",) if n in (fastpathSizes or []) else ()
            for impl in (*impls[:1], *extra, *impls[1:]):
                log(f"poll: {impl} N={n} ({seconds:g} s window)")
                rows.append(runChild(impl, n, ports, seconds))
        for n in memorySizes or []:
            for impl in impls:
                log(f"poll: {impl} N={n} tracemalloc")
                memory.append(runChild(impl, n, ports, 2, "--memory"))
    byKey = {(r["impl"], r["devices"]): r for r in rows}
    for r in rows:
        raw = byKey.get(("twisted", r["devices"]))
        r["ratioToRawTwisted"] = (
            round(r["cpuMicrosPerPoll"] / raw["cpuMicrosPerPoll"], 3) if raw else None
        )
    traced = {(m["impl"], m["devices"]): m for m in memory}
    for r in rows:
        m = traced.get((r["impl"], r["devices"]))
        if m is not None:
            r["tracedKiBPerHandler"] = m["tracedKiBPerHandler"]
            r["tracedKiBPerUnconnectedHandler"] = m["tracedKiBPerUnconnectedHandler"]
    return {"rows": rows, "memory": memory, "seconds": seconds}


def table(result: dict[str, Any]) -> str:
    """The markdown table of a L{run} result."""
    out = [
        "| implementation | N | polls/s | CPU µs/poll | ratio to raw Twisted | CPU of one core "
        "| KiB/handler (RSS) | KiB/handler (tracemalloc) | fds | drops |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        traced = r.get("tracedKiBPerHandler")
        out.append(
            f"| {r['impl']} | {r['devices']} | {r['pollsPerSecond']:.0f} "
            f"| {r['cpuMicrosPerPoll']:.1f} | {r['ratioToRawTwisted']:.2f} "
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
