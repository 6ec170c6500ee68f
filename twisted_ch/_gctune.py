# -*- test-case-name: tests.test_program_gc -*-
"""
The garbage collector of a process running a ControlScript program, tuned as the fleet's is
(C{twistd chandler}'s service, L{twisted_ch.service._services}): what a program builds at its
top level (handlers, interfaces, their links) lives as long as the program, so once built it is
frozen (C{gc.freeze}), and full collections no longer go through it again and again; a
generation-0 collection comes every L{THRESHOLD} allocations, not CPython's 700.

Without it, at 10,000 handlers polling, full collections of a heap holding every handler took
hundreds of milliseconds of every second: objects alive while polls are in flight get promoted
to the oldest generation, and each full collection walks every handler again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from twisted_ch._objects import ownAttribute

__all__ = ["SETTLE_CHECK", "SETTLE_CHECKS", "THRESHOLD", "ProgramFreezer", "raiseThreshold"]

log = Logger(namespace="twisted_ch.program")

#: Allocations between generation-0 collections (the fleet's C{GC_THRESHOLD}).
THRESHOLD = 20_000
#: How often (seconds) to look whether the program's links are still making first connects, and
#: at most how many times (the fleet's C{GC_SETTLE_CHECK} and C{GC_SETTLE_CHECKS}).
SETTLE_CHECK = 1.0
SETTLE_CHECKS = 300


def raiseThreshold() -> None:
    """Collect generation 0 every L{THRESHOLD} allocations, unless someone chose a threshold."""
    threshold = gc.get_threshold()
    if threshold[0] == 700:  # CPython's default: nobody chose another
        gc.set_threshold(THRESHOLD, *threshold[1:])


def _connecting(handler: Any) -> bool:
    link = ownAttribute(handler, "_link")
    return getattr(link, "state", None) == "connecting"


class ProgramFreezer:
    """
    Freezes the heap when a program's top level has run, and again once none of its handlers'
    links is connecting (checked every L{SETTLE_CHECK} seconds, at most L{SETTLE_CHECKS}
    times): the connections opened after the top level are the program's too.
    """

    def __init__(self, clock: Any, handlers: Callable[[], Iterable[Any]]) -> None:
        self.clock = clock
        self.handlers = handlers
        #: freezes made (a count, for tests)
        self.freezes = 0
        self._timer: IDelayedCall | None = None
        self._stopped = False

    def topLevelRan(self) -> None:
        """The top level has run (or raised): freeze, then watch the first connects."""
        if self._stopped or self.freezes:
            return
        self._freeze()
        self._timer = self.clock.callLater(SETTLE_CHECK, self._check, 1)

    def _check(self, checks: int) -> None:
        self._timer = None
        if self._stopped:
            return
        if checks < SETTLE_CHECKS and any(_connecting(h) for h in list(self.handlers())):
            self._timer = self.clock.callLater(SETTLE_CHECK, self._check, checks + 1)
            return
        self._freeze()

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1
        log.debug("program heap frozen: {n} objects", n=gc.get_freeze_count())

    def stop(self) -> None:
        """The program stopped: no more freezing."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
