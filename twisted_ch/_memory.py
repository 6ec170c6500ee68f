# -*- test-case-name: tests.test_program_memory -*-
"""
A program's memory bound: a watchdog that samples the process's resident memory and, once it
has grown by more than a limit since the program started, stops the program.

A program shares the service's process (its reactor, links and panels), so its memory cannot
be measured apart from the service's: the bound is on the growth of the whole process's resident
set (RSS, from C{/proc/self/statm}) since the program started, which is the program's growth
plus whatever the service grew by meanwhile.  A sampler thread reads it every
L{SAMPLE_PERIOD} seconds (one C{pread}, a few microseconds holding the GIL); over the limit, the
program's thread gets L{MemoryLimitExceeded} raised asynchronously (at its next bytecode) and
the program is stopped through its ordinary stop (see L{twisted_ch.program.Program}).

Overshoot: what the program allocates between two samples plus the time the sampler waits for
the GIL (at most the interpreter's switch interval, 5 ms): tens of MiB for a loop that does
nothing but allocate.  A single C call that allocates (C{b"x" * 10**10}) cannot be interrupted:
it completes (or raises MemoryError) before the exception is delivered.  No C{RLIMIT_AS}
backstop: an address-space limit applies to the whole process, so it would fail the service's
own allocations (the reactor's, the status page's) as readily as the program's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "MIN_MEMORY_LIMIT",
    "SAMPLE_PERIOD",
    "MemoryLimitExceeded",
    "MemoryWatchdog",
    "raiseInThread",
    "residentBytes",
]

#: The bound a program runs with unless its config says otherwise (C{[program] memoryLimit}).
DEFAULT_MEMORY_LIMIT = 1024 * 1024 * 1024
#: The smallest bound accepted (below it, the service's own growth would stop programs).
MIN_MEMORY_LIMIT = 16 * 1024 * 1024
#: Seconds between two samples.
SAMPLE_PERIOD = 0.01


class MemoryLimitExceeded(BaseException):
    """
    Raised in a program's thread when the process has grown past the program's memory bound:
    a BaseException, so that the program's C{except Exception} does not swallow it.
    """


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_statm: int | None = None
_statmLock = threading.Lock()


def residentBytes() -> int | None:
    """This process's resident set size in bytes, or None where it cannot be read."""
    global _statm
    try:
        if _statm is None:
            with _statmLock:
                if _statm is None:
                    _statm = os.open("/proc/self/statm", os.O_RDONLY)
        fields = os.pread(_statm, 128, 0).split()
        return int(fields[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def raiseInThread(ident: int, exception: type[BaseException] | None) -> bool:
    """
    Raise C{exception} in the thread C{ident} at its next bytecode (None: withdraw one not yet
    raised); whether the thread was found.
    """
    found = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), None if exception is None else ctypes.py_object(exception)
    )
    return bool(found == 1)


class MemoryWatchdog:
    """
    Samples the process's resident memory (L{sample}); the first sample more than C{limit}
    bytes above the one L{start} took calls C{exceeded(growth)}, once.  L{run} samples every
    C{period} seconds on a thread of its own until L{stop}; tests call L{sample} themselves.
    """

    def __init__(
        self,
        limit: int,
        exceeded: Callable[[int], object],
        read: Callable[[], int | None] = residentBytes,
        period: float = SAMPLE_PERIOD,
    ) -> None:
        self.limit = limit
        self.exceeded = exceeded
        self.read = read
        self.period = period
        self.baseline: int | None = None
        #: the largest growth sampled so far, in bytes
        self.peak = 0
        self.samples = 0
        self.tripped = False
        #: called every tenth sample once tripped, until L{stop}
        self.again: Callable[[], object] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Take the baseline (the program starts now); whether memory can be read here."""
        self.baseline = self.read()
        return self.baseline is not None

    def sample(self) -> int | None:
        """One sample: the growth since L{start}, in bytes (None: unreadable, or not started)."""
        if self.baseline is None:
            return None
        now = self.read()
        if now is None:
            return None
        growth = now - self.baseline
        self.samples += 1
        self.peak = max(self.peak, growth)
        if growth > self.limit and not self.tripped:
            self.tripped = True
            self.exceeded(growth)
        return growth

    def run(self, name: str) -> None:
        """Sample every C{period} seconds on a daemon thread until L{stop}."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=f"{name}-memory", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()
            if self.tripped and self.samples % 10 == 0 and self.again is not None:
                self.again()  # still running (say, it caught the exception): stop it again

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
