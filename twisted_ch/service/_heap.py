"""
Big buffers go back to the system once freed: C{twistd chandler} fixes glibc's mmap threshold,
and its status page gives the heap's free pages back after it rendered big pages.

glibc's C{malloc} maps a buffer of C{M_MMAP_THRESHOLD} bytes or more (128 KiB at first) on its
own, and unmaps it when it is freed; but each time such a buffer is freed it raises the
threshold to that buffer's size (up to 32 MiB), so the next ones of that size come from the
heap, and a freed heap block in the middle stays the process's.  A status page of 16,000
devices (9 MB of JSON, the same again in the pieces it is joined from, the metrics' 7 MB) then
left 25 MB resident for good after the first scrapes (1.6 KiB a device).  With the threshold
set (which turns the raising off, see C{mallopt(3)}), buffers of L{MMAP_THRESHOLD} or more are
always mapped and unmapped: 12 MB less in the same test.

What is smaller than the threshold (a page's pieces, 60 KB each, and the transport's buffers;
the threshold stays above the 64 KiB a socket read asks for) comes from the heap, where the
polls' small objects are made between them: L{HeapTrimmer} has glibc give the free pages back
(C{malloc_trim}, about half a millisecond for a shard of 16,000 devices) a second after the
last piece of a megabyte or more of pages was rendered.  Measured at 16,000 devices, two rounds
of C{/status}, C{/metrics} and C{/status?compact=1}: 25 MB kept after them untuned, 8 MB with
the threshold alone, none with both.

A threshold given in the environment (C{MALLOC_MMAP_THRESHOLD_}, or C{glibc.malloc.mmap_threshold}
in C{GLIBC_TUNABLES}) is left as it is; elsewhere than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = [
    "MMAP_THRESHOLD",
    "TRIM_AFTER",
    "TRIM_DELAY",
    "TRIM_WAIT_MAX",
    "HeapTrimmer",
    "returnBigBuffers",
]

#: Bytes from which a buffer is mapped on its own (page bodies, their joins; not a poll's data).
MMAP_THRESHOLD = 1 << 20
#: Bytes rendered (or let go) that make a trim worth it.
TRIM_AFTER = 1 << 20
#: Seconds from the last of those bytes to the trim (the page has been sent by then) ...
TRIM_DELAY = 1.0
#: ... but no later than this after the first (pages rendered without a pause).
TRIM_WAIT_MAX = 5.0
#: mallopt's parameter number for the threshold (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3


def returnBigBuffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at C{threshold} bytes; whether it was set."""
    chosen = os.environ.get("GLIBC_TUNABLES", "")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc.mmap_threshold" in chosen:
        return False
    mallopt = _libcFunction("mallopt", ctypes.c_int, ctypes.c_int)
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def _libcFunction(name: str, *argtypes: Any) -> Any:
    """The C library's function C{name} returning an C{int}, else None (not glibc)."""
    try:
        function: Any = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # no such function (or no C library to ask)
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


def _libcTrim() -> Callable[[], object] | None:
    trim = _libcFunction("malloc_trim", ctypes.c_size_t)
    return None if trim is None else lambda: trim(0)


class HeapTrimmer:
    """
    Gives the heap's free pages back to the system L{TRIM_DELAY} after the last of
    L{TRIM_AFTER} bytes or more were rendered (L{used}), and at most L{TRIM_WAIT_MAX} after the
    first: one C{malloc_trim} for all of them.

    @ivar trims: trims made (for tests).
    """

    def __init__(self, clock: IReactorTime, trim: Callable[[], object] | None = None) -> None:
        self.clock = clock
        self._trim = trim if trim is not None else _libcTrim()
        self._bytes = 0
        self._call: IDelayedCall | None = None
        self._first = 0.0
        self._stopped = False
        self.trims = 0

    def used(self, nbytes: int) -> None:
        """C{nbytes} were rendered, or a body of that size let go (after L{stop}: no trim)."""
        if self._trim is None or self._stopped:
            return
        self._bytes += nbytes
        if self._bytes < TRIM_AFTER:
            return
        now = self.clock.seconds()
        if self._call is None:
            self._first = now
            self._call = self.clock.callLater(TRIM_DELAY, self._trimNow)
        elif now + TRIM_DELAY <= self._first + TRIM_WAIT_MAX:
            self._call.reset(TRIM_DELAY)  # after the page's last piece, not in its middle

    def _trimNow(self) -> None:
        self._call = None
        self._bytes = 0
        if self._trim is not None:
            self._trim()
            self.trims += 1

    def stop(self) -> None:
        """Cancel a trim pending; none is made from now on."""
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
