# -*- test-case-name: tests.test_program_gc,tests.test_tune_gc -*-
"""
The garbage collector of a process running a ControlScript program, tuned as the fleet's is
(C{twistd chandler}'s service, L{twisted_ch.service._services}): what a program builds at its
top level (handlers, interfaces, their links) lives as long as the program, so once built it is
frozen (C{gc.freeze}), and full collections no longer go through it again and again; a
generation-0 collection comes every L{THRESHOLD} allocations, not CPython's 700.

Without it, at 10,000 handlers polling, full collections of a heap holding every handler took
hundreds of milliseconds of every second: objects alive while polls are in flight get promoted
to the oldest generation, and each full collection walks every handler again.

A Twisted application of its own asks for the same with L{tuneGC} (the library leaves the
process's collector alone otherwise, and says once, at L{HINT_AT} handlers, that it could).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twisted_ch._objects import ownAttribute
from twisted_ch._runtime import ProgramThread, Runtime, currentRuntime

__all__ = [
    "HINT_AT",
    "SETTLE_CHECK",
    "SETTLE_CHECKS",
    "THRESHOLD",
    "GCTuner",
    "ProgramFreezer",
    "handlerMade",
    "raiseThreshold",
    "tuneGC",
]

log = Logger(namespace="twisted_ch.program")

#: Allocations between generation-0 collections (the fleet's C{GC_THRESHOLD}).
THRESHOLD = 20_000
#: CPython's own generation-0 threshold: a process still at it has chosen none.
CPYTHON_THRESHOLD = 700
#: How often (seconds) to look whether the program's links are still making first connects, and
#: at most how many times (the fleet's C{GC_SETTLE_CHECK} and C{GC_SETTLE_CHECKS}).
SETTLE_CHECK = 1.0
SETTLE_CHECKS = 300
#: Handlers in one runtime at which an untuned process is told, once, that L{tuneGC} exists.
HINT_AT = 1000


def raiseThreshold() -> None:
    """Collect generation 0 every L{THRESHOLD} allocations, unless someone chose a threshold."""
    threshold = gc.get_threshold()
    if threshold[0] == CPYTHON_THRESHOLD:  # nobody chose another
        gc.set_threshold(THRESHOLD, *threshold[1:])


def _anyConnecting(handlers: Iterable[Any]) -> bool:
    """Whether any of C{handlers} (a copy is walked) has a link still making its connect."""
    for handler in list(handlers):
        link = ownAttribute(handler, "_link")
        if getattr(link, "state", None) == "connecting":
            return True
    return False


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
        if checks < SETTLE_CHECKS and _anyConnecting(self.handlers()):
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


class GCTuner:
    """
    What L{tuneGC} runs for one runtime: the heap frozen at once, and again whenever its
    handlers have grown since the last freeze and none of them is making a first connect, looked
    at every L{SETTLE_CHECK} seconds (a look goes through the handlers only when there are more
    than at the last freeze; after L{SETTLE_CHECKS} looks with links still connecting, the new
    ones are frozen anyway).  Started and stopped on the reactor thread (L{Runtime.twoFaced}).

    Frozen objects are never collected: a garbage cycle made before a freeze stays.  What a
    handler's polls make is freed by reference counting, frozen or not.

    @ivar freezes: freezes made (read only).
    @ivar frozenAt: the handlers there were at the last freeze, or -1 when the handlers frozen
        then still had first connects to make (read only).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.freezes = 0
        self.frozenAt = -1
        self._waited = 0
        self._looks: LoopingCall | None = None

    @property
    def running(self) -> bool:
        """Whether it still watches the handlers."""
        return self._looks is not None

    def start(self) -> None:
        """Raise the threshold (unless someone chose one), freeze now, then watch."""
        self.runtime.twoFaced(self._start)

    def _start(self) -> None:
        if self._looks is not None:
            return
        raiseThreshold()
        handlers = self.runtime.handlers
        self._freeze(len(handlers))
        if _anyConnecting(handlers):
            self.frozenAt = -1  # their connections are frozen once made
        looks = self._looks = LoopingCall(self._look)
        looks.clock = self.runtime.reactor
        looks.start(SETTLE_CHECK, now=False)

    def _look(self) -> None:
        handlers = self.runtime.handlers
        count = len(handlers)
        if count <= self.frozenAt:
            self.frozenAt = count  # (some went: nothing new to freeze)
            return
        self._waited += 1
        if self._waited < SETTLE_CHECKS and _anyConnecting(handlers):
            return
        self._freeze(count)

    def _freeze(self, count: int) -> None:
        gc.freeze()
        self.freezes += 1
        self.frozenAt, self._waited = count, 0
        log.debug(
            "heap frozen with {count} handlers: {n} objects", count=count, n=gc.get_freeze_count()
        )

    def stop(self) -> None:
        """No more freezing; the threshold and what was frozen stay as they are."""
        self.runtime.twoFaced(self._stop)

    def _stop(self) -> None:
        looks, self._looks = self._looks, None
        if looks is not None and looks.running:
            looks.stop()
        if self.runtime.gcTuner is self:
            self.runtime.gcTuner = None


#: whether an untuned process was told about L{tuneGC}
_hinted: list[bool] = []
#: the hint's logger (it is about the handlers, on the reactor thread)
_hintLog = Logger(namespace="twisted_ch.handlers")


def tuneGC() -> GCTuner:
    """
    Tune this process's garbage collector for many handlers, as C{twistd chandler} does: a
    generation-0 collection every L{THRESHOLD} allocations (unless a threshold was chosen), the
    heap frozen now and again each time the handlers of the calling thread's runtime (the
    installed reactor's, or a program's) have grown and are done with their first connects.

    Call it once at start, before or after making the handlers.  At 10,000 C{async def}
    keep-alives polling, Python's defaults spent 100-330 ms of every second in collections that
    walk every handler (C{bench/README.md}, issue 21, seventh round).  Calling it again in the
    same runtime returns the same tuner while it runs; L{GCTuner.stop} ends it (a program's
    ends when the program stops).
    """
    runtime = currentRuntime()

    def startOnce() -> GCTuner:  # on the reactor thread: one tuner per runtime
        tuner: GCTuner | None = runtime.gcTuner
        if tuner is None or not tuner.running:
            tuner = runtime.gcTuner = GCTuner(runtime)
            tuner._start()
        return tuner

    tuner: GCTuner = runtime.twoFaced(startOnce)
    return tuner


def _untuned() -> bool:
    return (
        gc.isenabled() and gc.get_threshold()[0] == CPYTHON_THRESHOLD and gc.get_freeze_count() == 0
    )


def handlerMade(runtime: Runtime, handler: Any) -> None:
    """
    Record a handler in its runtime's set (on the reactor thread); at L{HINT_AT} of them in a
    process whose collector is CPython's default, say once that L{tuneGC} exists (not for a
    program thread's handlers: a L{twisted_ch.program.Program} is tuned by its own C{tuneGC}).
    """
    handlers = runtime.handlers
    handlers.add(handler)
    if len(handlers) != HINT_AT or _hinted or isinstance(runtime.dispatcher, ProgramThread):
        return
    if _untuned() and runtime.gcTuner is None:
        _hinted.append(True)
        _hintLog.info(
            "{n} connection handlers in one runtime, and Python's default garbage collector: "
            "its full collections walk every handler while their polls are in flight; call "
            "twisted_ch.tuneGC() once at start (README, 'Many handlers in one process')",
            n=HINT_AT,
        )
