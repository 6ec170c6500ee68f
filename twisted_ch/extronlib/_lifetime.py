"""
What a ControlScript-style program created that holds the reactor's resources (links, listening
ports, timers), so that stopping the program releases all of it.

Objects register themselves when created on a program thread whose program tracks them
(L{ProgramObjects.forThread}); objects Twisted code creates are never tracked.  Each has a
C{_release()} method, called on the reactor thread, that stops its timers and closes what it holds
(returning a Deferred when closing takes time, such as a link flushing its writes).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_ch._runtime import Runtime

__all__ = ["ProgramObjects", "Releasable", "adopt"]

log = Logger(namespace="twisted_ch.program")


class Releasable(Protocol):
    """An object holding reactor resources for a program."""

    def _release(self) -> Deferred[Any] | None:
        """Stop its timers and close what it holds (reactor thread); idempotent."""


class ProgramObjects:
    """
    The objects one program created, released when it stops (L{release}).

    Kept by weak reference: whatever still holds a reactor resource is kept alive by the reactor
    (a connected transport, a pending call), and an object gone holds nothing.  Once released, an
    object created afterwards (by a program thread that did not finish in time) is released as
    soon as it has been made.
    """

    _byThread: weakref.WeakKeyDictionary[Any, ProgramObjects] = weakref.WeakKeyDictionary()

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._lock = threading.Lock()
        self._objects: list[weakref.ref[Releasable]] = []
        self.released = False
        #: how many objects were added so far (a reader sees at a glance whether any is new)
        self.generation = 0

    @classmethod
    def forThread(cls, thread: Any, reactor: Any) -> ProgramObjects:
        """Track what is created on C{thread} (a program thread, its runtime's dispatcher)."""
        objects = cls._byThread.get(thread)
        if objects is None:
            objects = cls._byThread[thread] = cls(reactor)
        return objects

    @classmethod
    def of(cls, runtime: Runtime) -> ProgramObjects | None:
        """The tracker of C{runtime}'s program, if it has one."""
        try:
            return cls._byThread.get(runtime.dispatcher)
        except TypeError:  # an unhashable dispatcher is no program thread
            return None

    def add(self, obj: Releasable) -> None:
        """Track C{obj} (any thread)."""
        with self._lock:
            released = self.released
            if not released:
                self._objects.append(weakref.ref(obj))
                self.generation += 1
        if released:
            log.warn("{obj} was created after its program stopped; releasing it", obj=obj)
            self.reactor.callFromThread(_releaseOne, obj)

    def live(self) -> list[Releasable]:
        """The tracked objects that still exist, oldest first (any thread)."""
        with self._lock:
            refs = list(self._objects)
        return [obj for obj in (ref() for ref in refs) if obj is not None]

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for ref in self._objects if ref() is not None)

    def release(self) -> Deferred[None]:
        """
        Release every tracked object, newest first (reactor thread); fires once each has
        (links closed, ports closed).  A failing release is logged and the others still run.
        """
        with self._lock:
            self.released = True
            refs, self._objects = self._objects, []
        waits = []
        for ref in reversed(refs):
            obj = ref()
            if obj is not None:
                d = _releaseOne(obj)
                if d is not None:
                    waits.append(d)
        done: Deferred[None] = DeferredList(waits, consumeErrors=True).addCallback(_logFailures)
        return done


def _releaseOne(obj: Releasable) -> Deferred[Any] | None:
    try:
        return obj._release()
    except Exception:
        log.failure("releasing {obj} at the program's stop failed", obj=obj)
        return None


def _logFailures(results: list[tuple[bool, Any]]) -> None:
    for ok, value in results:
        if not ok and isinstance(value, Failure):
            log.failure("closing a program's object at its stop failed", value)


def adopt(runtime: Runtime, obj: Releasable) -> None:
    """Track C{obj} if C{runtime} is a tracked program's (called by constructors; cheap)."""
    objects = ProgramObjects.of(runtime)
    if objects is not None:
        objects.add(obj)
