"""Process facts the benchmarks read: CPU time, resident memory, open fds, file limits."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import Any


def raiseFileLimit(want: int) -> int:
    """Raise RLIMIT_NOFILE to at least C{want} if allowed; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    for newHard in (max(hard, want), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, newHard), newHard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpuSeconds() -> float:
    """User plus system CPU seconds used by this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rssBytes() -> int:
    """Resident set size now (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def openFds() -> int:
    """Number of open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def now() -> float:
    """Monotonic seconds; CLOCK_MONOTONIC is shared by all processes, so stamps compare."""
    return time.monotonic()


def machine() -> dict[str, Any]:
    """The facts a reader needs to judge the numbers."""
    import twisted

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "twisted": twisted.__version__,
        "kernel": platform.release(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def sourceState() -> dict[str, Any]:
    """The checkout measured: commit and whether twisted_ch had uncommitted changes (read-only)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [line for line in git("status", "--porcelain", "--", "twisted_ch").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "twisted_chFilesChanged": len(changed)}


def percentile(values: list[float], q: float) -> float:
    """The C{q} quantile (0..1) of C{values}, nearest-rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]
