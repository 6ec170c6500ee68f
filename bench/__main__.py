"""
Command line: C{python -m bench {poll,latency,paths,soak,hostile,scale,all}} (or
C{./dev bench ...}).

See C{bench/README.md} for what each measures and how.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench._util import machine, sourceState


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return value


def _positiveFloat(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a positive number, not {text!r}")
    return value


def cmdPoll(args: argparse.Namespace) -> dict[str, Any]:
    from bench import poll

    result = poll.run(
        args.devices,
        args.seconds,
        memorySizes=args.memory_devices,
        impls=tuple(args.impls.split(",")),
        repeats=args.repeat,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    result["machine"] = machine()
    report.writeJSON("poll-latest.json", result)
    print(poll.table(result))
    return result


def cmdLatency(args: argparse.Namespace) -> dict[str, Any]:
    from bench import latency

    result = latency.run(quick=args.quick)
    result["machine"] = machine()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result))
    else:
        report.writeJSON("latency-latest.json", result)
        print(latency.table(result))
    return result


def cmdPaths(args: argparse.Namespace) -> dict[str, Any]:
    from bench import paths

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = paths.run(
        args.devices,
        args.seconds,
        args.repeat,
        args.big or None,
        log=log,
        parts=args.only,
        shape=args.shape,
    )
    result["machine"] = machine()
    result["source"] = sourceState()
    report.writeJSON("paths-latest.json", result)
    print(paths.table(result))
    for t, ok, m in paths.targets(result):
        print(f"- {t}: {'met' if ok else 'NOT met'} ({m})")
    return result


def cmdSoak(args: argparse.Namespace) -> dict[str, Any]:
    from bench import soak

    result = soak.run(
        args.devices,
        args.minutes,
        pollFrequency=args.poll,
        disconnectLimit=args.limit,
        connectRetryTime=args.retry,
        seed=args.seed,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    result["machine"] = machine()
    report.writeJSON("soak-latest.json", result)
    print(soak.table(result))
    if result["handlersWithProblems"] or result["twistedChDelayedCallsAfter"]:
        sys.exit(1)
    return result


def cmdHostile(args: argparse.Namespace) -> dict[str, Any]:
    from bench import hostile

    result = hostile.run(
        args.healthy, args.seconds, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    result["machine"] = machine()
    result["source"] = sourceState()
    report.writeJSON("hostile-latest.json", result)
    print(hostile.table(result))
    return result


def cmdScale(args: argparse.Namespace) -> dict[str, Any]:
    from bench import scale

    result = scale.run(
        args.devices,
        args.shards or None,
        args.poll,
        args.seconds,
        args.scrape,
        deadline=args.deadline,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        keep=args.keep,
    )
    result["machine"] = machine()
    result["source"] = sourceState()
    report.writeJSON(args.out, result)
    print(scale.table(result))
    return result


def targets(pollResult: dict[str, Any], lat: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Each target of the brief: (target, met, the measured evidence)."""
    rows = {(r["impl"], r["devices"]): r for r in pollResult["rows"]}
    sizes = sorted({r["devices"] for r in pollResult["rows"]})
    out = []
    for n in sizes:
        ch, raw, aio = (
            rows.get(("twisted_ch", n)),
            rows.get(("twisted", n)),
            rows.get(("asyncio", n)),
        )
        # met when both the ratio of the medians and the median of per-round ratios meet it
        for base, key, name, ok in (
            (raw, "ratioToRawTwisted", "within 1.25x of raw Twisted", lambda x: x <= 1.25),
            (aio, "ratioToAsyncio", "below asyncio", lambda x: x < 1),
        ):
            if not (ch and base):
                continue
            ratio = ch["cpuMicrosPerPoll"] / base["cpuMicrosPerPoll"]
            paired = ch.get(key + "Paired", ratio)
            out.append(
                (
                    f"N={n}: twisted_ch CPU/poll {name}",
                    ok(ratio) and ok(paired),
                    f"{ch['cpuMicrosPerPoll']:.1f} vs {base['cpuMicrosPerPoll']:.1f} µs "
                    f"= {ratio:.2f}x (per round: {paired:.2f}x)",
                )
            )
    big = rows.get(("twisted_ch", 10000))
    if big:
        ok = big["pollsPerSecond"] >= 0.98 * 10000 and big["cpuFraction"] < 1.0
        out.append(
            (
                "10,000 devices at 1 Hz on one core",
                ok,
                f"{big['pollsPerSecond']:.0f} polls/s answered using "
                f"{100 * big['cpuFraction']:.0f}% of one core, {big['lostInWindow']} drops",
            )
        )
    for m in pollResult.get("memory", []):
        if m["impl"] == "twisted_ch":
            out.append(
                (
                    f"under 20 KiB per idle handler (tracemalloc, N={m['devices']})",
                    m["tracedKiBPerHandler"] < 20,
                    f"{m['tracedKiBPerHandler']:.2f} KiB connected and polling, "
                    f"{m['tracedKiBPerUnconnectedHandler']:.2f} KiB before Connect",
                )
            )
    for n in sizes:
        ch = rows.get(("twisted_ch", n))
        if ch:
            out.append(
                (
                    f"under 20 KiB per handler (RSS delta, N={n})",
                    ch["rssKiBPerHandler"] < 20,
                    f"{ch['rssKiBPerHandler']:.2f} KiB",
                )
            )
    for s in lat["silence"]:
        out.append(
            (
                f"silence -> Disconnected within [L, L+1] polls "
                f"(L={s['DisconnectLimit']}, p={s['pollFrequency']:g})",
                s["withinWindow"],
                f"measured {', '.join(f'{m:.3f}' for m in s['measured'])} s, "
                f"window {s['expectedMin']:g}-{s['expectedMax']:g} s",
            )
        )
    for kind, s in lat["close"].items():
        out.append(
            (
                f"device closes ({kind}) -> Disconnected < 10 ms",
                s["max"] < 10,
                f"median {s['median']:.2f} ms, max {s['max']:.2f} ms",
            )
        )
    for b in lat["back"]:
        s = b["backToConnectedMs"]
        out.append(
            (
                f"device back -> Connected (first answered poll) < connectRetryTime "
                f"+ pollFrequency + 50 ms "
                f"(r={b['connectRetryTime']:g}, {b['endpoint']})",
                b["met"],
                f"median {s['median']:.0f} ms, max {s['max']:.0f} ms",
            )
        )
    return out


def cmdAll(args: argparse.Namespace) -> None:
    from bench import latency, paths, poll

    started = time.time()
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    seconds = 5.0 if args.quick else 8.0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    pollResult = poll.run(
        sizes,
        seconds,
        memorySizes=[1000],
        repeats=1 if args.quick else 3,
        log=log,
    )
    pathsResult = paths.run(
        1000,
        seconds,
        repeats=1 if args.quick else 3,
        big=None if args.quick else 10000,
        log=log,
    )
    log("latency ...")
    tmp = report.RESULTS / "latency.tmp"
    report.RESULTS.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "bench", "latency", "--json-out", str(tmp)]
    if args.quick:
        cmd.append("--quick")
    subprocess.run(cmd, check=True, timeout=900)
    lat = json.loads(tmp.read_text())
    tmp.unlink()
    checks = targets(pollResult, lat) + paths.targets(pathsResult)
    facts = machine()
    result = {
        "command": "python -m bench all" + (" --quick" if args.quick else ""),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "durationSeconds": round(time.time() - started, 1),
        "machine": facts,
        "source": sourceState(),
        "poll": pollResult,
        "paths": pathsResult,
        "latency": lat,
        "targets": [{"target": t, "met": ok, "measured": m} for t, ok, m in checks],
    }
    report.writeJSON("latest.json", result)
    report.writeText(
        "latest.svg",
        report.cpuChart(
            pollResult["rows"], f"Keep-alive polling cost ({facts['nproc']} cores, 1 Hz)"
        ),
    )
    md = [
        "# twisted_ch benchmarks: latest run",
        "",
        f"`{result['command']}` on {result['when']}, {result['durationSeconds']} s.",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu'] or 'unknown model'}), "
        f"{facts['implementation']} {facts['python']}, Twisted {facts['twisted']}, "
        f"Linux {facts['kernel']}.  Source: commit {result['source']['commit']}"
        f" with {result['source']['twisted_chFilesChanged']} uncommitted twisted_ch file(s).",
        "",
        "## The paths users run (`python -m bench paths`)",
        "",
        "Each path beside a raw Twisted poller (`transport.write`, lines split in "
        "`dataReceived`), the implementations taking turns within each round; a row is the run "
        "with the median CPU per poll, the ratio is that of the medians and (in brackets) the "
        "median of the per-round ratios.  Fleet rows are `twistd chandler --config` as twistd "
        "builds it, its CPU including the scrape of `/status` and `/metrics` every 15 s (from "
        "another process) and windows of whole 15 s periods.  SNMP (UDP) is compared with a "
        "raw Twisted UDP poller using the same codec.",
        "",
        paths.table(pathsResult),
        "",
        "## Keep-alive polling (`python -m bench poll`)",
        "",
        f"{seconds:g} s steady-state window per run, {pollResult['repeats']} round(s) in which "
        "the implementations take turns; a row is the run with the median CPU per poll (every "
        "run's figure is listed).  The simulator runs in its own process.  CPU is user+sys of the "
        "poller process (getrusage) over the window divided by the polls answered in it.  "
        "twisted-direct is raw Twisted writing with socket.send as twisted_ch does: the floor "
        "for any LoopingCall poller on the reactor.  "
        "KiB/handler (RSS) is the resident-set growth from before the handlers "
        "were created to steady state, divided by N; tracemalloc counts live Python allocations "
        "(N=1000 run, separate, since tracing slows everything).",
        "",
        poll.table(pollResult),
        "",
        "![CPU per poll](latest.svg)",
        "",
        "## Latency (`python -m bench latency`)",
        "",
        latency.table(lat),
        "",
        "## Targets",
        "",
        "| target | met | measured |",
        "|---|---|---|",
        *[f"| {t} | {'yes' if ok else '**no**'} | {m} |" for t, ok, m in checks],
        "",
    ]
    report.writeText("latest.md", "\n".join(md))
    print("\n".join(md))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("poll", help="CPU and memory per keep-alive poll vs raw Twisted and asyncio")
    p.add_argument("--devices", type=_ints, default=[100, 1000, 10000])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--impls", default="twisted_ch,twisted,twisted-direct,asyncio")
    p.add_argument("--memory-devices", type=_ints, default=[1000])
    p.add_argument("--repeat", type=int, default=1, help="rounds; rows show the median run")
    p.set_defaults(func=cmdPoll)

    p = sub.add_parser("latency", help="round trips and reaction times")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    p.set_defaults(func=cmdLatency)

    p = sub.add_parser("paths", help="the paths users run, start-up, shards, event delivery")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--big", type=int, default=10000, help="also the fleet at this size (0: no)")
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--only", default="rows,startup,shards,events", help="which parts (comma-separated)"
    )
    p.add_argument(
        "--shape",
        choices=("together", "spread", "both"),
        default="both",
        help="rows: polls together in one reactor turn, spread over the second, or both",
    )
    p.set_defaults(func=cmdPaths)

    p = sub.add_parser("soak", help="long run against flapping devices")
    p.add_argument("--devices", type=int, default=300)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--poll", type=float, default=0.5, help="pollFrequency")
    p.add_argument("--limit", type=int, default=3, help="DisconnectLimit")
    p.add_argument("--retry", type=float, default=1.0, help="connectRetryTime")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmdSoak)

    p = sub.add_parser("hostile", help="healthy devices beside one hostile party of each kind")
    p.add_argument("--healthy", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.set_defaults(func=cmdHostile)

    p = sub.add_parser("scale", help="a fleet of 50,000 devices in shards on this machine")
    p.add_argument("--devices", type=_positive, default=50000)
    p.add_argument(
        "--shards", type=int, default=0, help="shards (0: the fewest the descriptor limit allows)"
    )
    p.add_argument("--poll", type=_positiveFloat, default=10.0, help="pollFrequency (s)")
    p.add_argument("--seconds", type=_positiveFloat, default=60.0, help="window after start-up")
    p.add_argument("--scrape", type=_positiveFloat, default=15.0, help="seconds between scrapes")
    p.add_argument("--deadline", type=_positiveFloat, default=30.0, help="start-up target (s)")
    p.add_argument("--keep", action="store_true", help="keep the config and logs")
    p.add_argument("--out", default="scale-latest.json", help="file in bench/results/")
    p.set_defaults(func=cmdScale)

    p = sub.add_parser("all", help="poll + latency at sizes that finish in a few minutes")
    p.add_argument("--quick", action="store_true", help="smaller sizes, shorter windows")
    p.set_defaults(func=cmdAll)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
