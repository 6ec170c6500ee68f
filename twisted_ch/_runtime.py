"""
Where user code runs: the two faces of twisted_ch.

Twisted code runs on the reactor thread: its callbacks are called there, and waiting calls
(C{Connect}, C{SendAndWait}, ...) return Deferreds.  ControlScript-style program code runs on a
L{ProgramThread}: callbacks created from it are queued to that thread in order, and the same waiting
calls block the program thread (never the reactor) and return plain values.

The rule: a waiting call made on the reactor thread (or before any reactor ran) returns a Deferred;
made from any other thread, it blocks until the reactor has the answer.
"""

from __future__ import annotations

import inspect
import itertools
import os
import queue
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import get_ident
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from twisted.internet._signals import _UnixWaker
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, ensureDeferred, succeed
from twisted.logger import Logger, LogLevel
from twisted.python import threadable
from twisted.python.failure import Failure

from twisted_ch._memory import MemoryLimitExceeded, raiseInThread
from twisted_ch._summary import Summarizer
from twisted_ch.protocols.device import tellInstead

if TYPE_CHECKING:
    from twisted_ch._gctune import GCTuner

P = ParamSpec("P")
T = TypeVar("T")

log = Logger(namespace="twisted_ch")


class _Repeats:
    """
    Like L{Summarizer}, without a timer (user callbacks fail on every reactor, a test's Clock
    included, and a timer on the global one would outlive them): the first event of a kind is
    logged, the next ones within C{period} seconds counted, and the count logged with the first
    event after the period, or by L{stop}.  Reactor thread only.
    """

    def __init__(self, period: float = 60.0, now: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.now = now
        #: per kind: (period start, count, logger, level, format, fields)
        self._kinds: dict[Hashable, list[Any]] = {}

    def emit(
        self, logger: Logger, kind: Hashable, level: LogLevel, fmt: str, **fields: Any
    ) -> None:
        now = self.now()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.period:
            state[1] += 1
            state[2:] = [logger, level, fmt, fields]
            logger.emit(LogLevel.debug, fmt, **fields)
            return
        if state is not None:
            self._report(state, now)
        elif len(self._kinds) >= 1000:
            self.stop()
        self._kinds[kind] = [now, 0, logger, level, fmt, fields]
        logger.emit(level, fmt, **fields)

    @staticmethod
    def _report(state: list[Any], now: float) -> None:
        start, count, logger, level, fmt, fields = state
        if count:
            logger.emit(
                level,
                fmt + " ({repeated} more like it in the previous {since:.0f} s)",
                **{**fields, "repeated": count, "since": now - start},
            )

    def stop(self) -> None:
        """Log every count not yet logged, and forget."""
        now = self.now()
        for state in self._kinds.values():
            self._report(state, now)
        self._kinds.clear()


#: A callback that raises in every event is logged once (with its traceback), then counted: one
#: line per period per callback and exception type.
_raised = _Repeats()


def describe(f: object) -> str:
    """A short name for a callable, for log lines."""
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


class Dispatcher(Protocol):
    """Runs user callbacks somewhere; a raising callback is logged, never propagated."""

    def call(
        self, f: Callable[..., object], *args: object, droppable: bool = False
    ) -> Deferred[None] | None:
        """
        Run C{f(*args)}.  Returns None when it has already finished, else a Deferred that fires
        (with None) once it has (see L{afterCall}).  A C{droppable} call (received data) may be
        dropped when the dispatcher is too far behind.
        """

    def callTimer(self, f: Callable[..., object], *args: object) -> Deferred[None] | None:
        """
        Run a timer's function (a PollTimer's keep-alive, a C{Timer}, C{Wait} or C{Clock}
        firing) as L{call} does; a program thread may run events queued after it first.
        """


def logCallbackFailure(failure: Failure, f: object) -> None:
    """
    Log a user callback's failure with its traceback, unless the exception reports itself
    (C{reportUnhandled(where)}: an expected event such as a send on a link just dropped).
    The same callback raising the same exception type again is counted, and the count logged
    once per period (L{Summarizer}).  Called from another thread, the logging is done on the
    reactor thread.
    """
    report = getattr(failure.value, "reportUnhandled", None)
    if callable(report):
        report(describe(f))
        return
    if isinstance(failure.value, SystemExit):  # (an async callback's)
        logCallbackExit(failure.value, f)
        return
    ioThread = threadable.ioThread
    if ioThread is not None and ioThread != get_ident():
        from twisted.internet import reactor

        reactor.callFromThread(_logRaised, failure, describe(f))
        return
    _logRaised(failure, describe(f))


def logCallbackExit(exit: SystemExit, f: object) -> None:
    """
    A user callback called C{sys.exit()}: one clear line (summarised like failures), not a
    traceback nor an unhandled error; the program and the service keep running.
    """
    ioThread = threadable.ioThread
    if ioThread is not None and ioThread != get_ident():
        from twisted.internet import reactor

        reactor.callFromThread(logCallbackExit, exit, f)
        return
    _raised.emit(
        log,
        ("exit", describe(f)),
        LogLevel.error,
        "callback {callback} called sys.exit({code}): ignored, a callback cannot end the "
        "program (it keeps running)",
        callback=describe(f),
        code=repr(exit.code) if not isinstance(exit.code, int | None) else exit.code,
    )


def _logRaised(failure: Failure, callback: str) -> None:
    exception = failure.type
    name = getattr(exception, "__qualname__", str(exception))
    _raised.emit(
        log,
        ("raised", callback, name),
        LogLevel.critical,
        "callback {callback} raised",
        log_failure=failure,
        callback=callback,
    )


def afterCall(done: Deferred[None] | None, then: Callable[..., object], *args: object) -> None:
    """Call C{then(None, *args)} once a dispatched call (L{Dispatcher.call}'s result) finished."""
    if done is None:
        then(None, *args)
    else:
        done.addBoth(then, *args)


class ReactorDispatcher:
    """
    Calls user callbacks at once on the reactor thread (the Twisted face).

    This is on every poll's path, so a callback that returns None (nearly all) costs one call and
    no Deferred.
    """

    def call(
        self, f: Callable[..., object], *args: object, droppable: bool = False
    ) -> Deferred[None] | None:
        try:
            result = f(*args)
        except Exception:
            logCallbackFailure(Failure(), f)
            return None
        except SystemExit as e:
            logCallbackExit(e, f)
            return None
        if result is None:
            return None
        if isinstance(result, Deferred):
            # the callback's own Deferred carries the end (its result goes nowhere else): no
            # second Deferred and no closures per keep-alive poll
            return result.addBoth(_ended, f)
        if not inspect.isawaitable(result):
            return None
        # a coroutine (an async keep-alive): its Deferred is ours alone
        return ensureDeferred(result).addBoth(_ended, f)  # type: ignore[arg-type]

    #: on the reactor, a timer's function runs at once like any callback
    callTimer = call


def _ended(result: object, f: Callable[..., object]) -> None:
    """A dispatched callback's Deferred fired: log its failure, if any (the result is dropped)."""
    if isinstance(result, Failure):
        logCallbackFailure(result, f)


#: Callbacks a program thread holds queued before received data is dropped.
DEFAULT_MAX_QUEUE = 10_000
#: Bytes of received data a program thread holds queued before more is dropped.
DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024


def _dataSize(args: tuple[object, ...]) -> int:
    """The bytes of data (bytes, bytearray, memoryview, str) among a callback's arguments."""
    size = 0
    for a in args:
        if isinstance(a, bytes | bytearray | str):
            size += len(a)
        elif isinstance(a, memoryview):
            size += a.nbytes
    return size


#: a queued callback: its function, arguments, what the reactor is told once it ran, the data
#: bytes it holds, whether its failure is logged (its end is then None) rather than returned, and
#: how it is told: None, the third item is a Deferred fired with the end; else the third item is
#: a function called as C{(end, *these)} (L{ProgramThread.callTimerThen})
_Entry = tuple[Callable[..., object], tuple[object, ...], Any, int, bool, tuple[object, ...] | None]

#: While timer firings wait on a program thread, at most this many events run between two of
#: them (so a flood of events delays timers, it cannot starve them).
EVENTS_AHEAD = 10


class ProgramThread:
    """
    A thread that runs ControlScript-style program code and, in order, the callbacks it registered.

    Callbacks are queued from the reactor thread, in two lanes.  I{Events} (L{call}: received
    data, Connected and Disconnected, button presses, every callback but a timer's, and L{run})
    run in the order they were queued.  I{Timer firings} (L{callTimer}: a handler's keep-alive,
    a C{Timer}, C{Wait} or C{Clock} function) run in the order they fell due, but an event queued
    while timer firings wait runs ahead of them: handlers polling together queue their blocking
    keep-alives at once, and an event then waits for the keep-alive running, not for all of
    them.  While timer firings wait, at most L{EVENTS_AHEAD} events run between two of them.
    One callback runs at a time, to its end (a keep-alive blocked in C{SendAndWait} included):
    nothing runs inside another.

    When C{maxQueue} callbacks are waiting, or the data they carry (their bytes and str
    arguments) comes to C{maxQueueBytes}, further received data callbacks are dropped with an
    error logged, once, then counted once a period (a device flooding data can neither exhaust
    memory nor flood the log); state events (Connected, Disconnected, ...) and timer firings are
    never dropped.  One chunk larger than C{maxQueueBytes} is queued when nothing else is, so the
    queue holds at most C{maxQueueBytes} plus one chunk.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        reactor: Any,
        name: str | None = None,
        maxQueue: int = DEFAULT_MAX_QUEUE,
        maxQueueBytes: int = DEFAULT_MAX_QUEUE_BYTES,
    ) -> None:
        self.reactor = reactor
        self.name = name or f"twisted_ch-program-{next(self._ids)}"
        # the two lanes; the thread waits on _queue, one token per entry appended to a lane
        # (bounded by call(), so the reactor never blocks on it)
        self._events: deque[_Entry] = deque()
        self._timers: deque[_Entry] = deque()
        self._queue: queue.SimpleQueue[None] = queue.SimpleQueue()
        #: events run since the oldest waiting timer firing was queued (see EVENTS_AHEAD)
        self._ahead = 0
        self.maxQueue = maxQueue
        self.maxQueueBytes = maxQueueBytes
        # data bytes queued: added by the reactor thread, taken by the program thread (one writer
        # each, so no lock); see queuedBytes
        self._bytesIn = 0
        self._bytesOut = 0
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.runtime = Runtime(reactor, self)
        self.dropped = 0
        self.droppedBytes = 0
        #: set by L{abort}: the program's code is being stopped
        self.aborted = False
        self._inCall = False
        self._abortLock = threading.Lock()
        self._stopping = False
        self._summary = Summarizer(reactor)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def ensureStarted(self) -> None:
        """Start the thread unless it runs already."""
        if not self._thread.is_alive() and not self._stopping:
            self._thread.start()

    @property
    def ident(self) -> int | None:
        """The thread's identifier (None before it started)."""
        return self._thread.ident

    @property
    def isCurrent(self) -> bool:
        """Whether the calling thread is this program thread."""
        return threading.current_thread() is self._thread

    @property
    def queued(self) -> int:
        """Callbacks waiting to run (both lanes)."""
        return len(self._events) + len(self._timers)

    def call(
        self, f: Callable[..., object], *args: object, droppable: bool = False
    ) -> Deferred[None]:
        """Queue an event's callback (see the class docstring)."""
        d: Deferred[None] = Deferred()
        size = _dataSize(args) if droppable else 0
        if droppable:
            held = self.queuedBytes
            n = self.queued
            if n >= self.maxQueue or (held and held + size > self.maxQueueBytes):
                self.dropped += 1
                self.droppedBytes += size
                self._summary.emit(
                    log,
                    "dropped",
                    LogLevel.error,
                    "program thread {name} is {n} callbacks behind; dropped {callback} "
                    "({held} bytes of data queued; the limits are {maxQueue} callbacks and "
                    "{maxQueueBytes} bytes)",
                    name=self.name,
                    n=n,
                    callback=describe(f),
                    held=held,
                    maxQueue=self.maxQueue,
                    maxQueueBytes=self.maxQueueBytes,
                )
                d.callback(None)
                return d
        self._put(self._events, f, args, d, True, size)
        return d

    def callTimer(self, f: Callable[..., object], *args: object) -> Deferred[None]:
        """Queue a timer's function (never dropped; see the class docstring)."""
        d: Deferred[None] = Deferred()
        self._put(self._timers, f, args, d, True)
        return d

    def callTimerThen(
        self,
        then: Callable[..., object],
        thenArgs: tuple[object, ...],
        f: Callable[..., object],
        *args: object,
    ) -> None:
        """
        L{callTimer}, told differently: once C{f} has run, the reactor calls C{then(end,
        *thenArgs)} (C{end} is None, or the L{Failure} of an exception that is not logged) where
        L{callTimer}'s Deferred would fire.  A handler's keep-alive queued behind a busy thread
        then holds three objects, not a Deferred, its callback list and their tuples (at 10,000
        handlers, half of what each young-generation collection walked).
        """
        self._put(self._timers, f, args, then, True, 0, thenArgs)

    @property
    def queuedBytes(self) -> int:
        """The bytes of data the queued callbacks carry (an estimate while both threads run)."""
        return self._bytesIn - self._bytesOut

    def run(self, f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """
        Run C{f} on the program thread (in the events' lane); the Deferred fires with its
        result or failure.
        """
        d: Deferred[T] = Deferred()

        def call() -> T:
            return f(*args, **kwargs)

        self._put(self._events, call, (), d, False)
        return d

    def _put(
        self,
        lane: deque[_Entry],
        f: Callable[..., object],
        args: tuple[object, ...],
        d: Any,
        logged: bool,
        size: int = 0,
        thenArgs: tuple[object, ...] | None = None,
    ) -> None:
        if self._stopping:
            _tell(d, thenArgs, None)
            return
        self._bytesIn += size
        lane.append((f, args, d, size, logged, thenArgs))
        self._queue.put_nowait(None)  # after the append: a token always finds its entry

    def _run(self) -> None:
        _local.runtime = self.runtime
        while True:
            try:
                self._loop()
                return
            except MemoryLimitExceeded:
                # raised by abort() just as a callback ended: that callback is over (its
                # end untold), the thread goes on to the queue (its stop, soon)
                continue

    def _loop(self) -> None:
        toReactor = bridgeTo(self.reactor).post
        get = self._queue.get
        events, timers = self._events, self._timers
        lock = self._abortLock
        while True:
            get()
            # the lanes' rule (only this thread takes entries, abort() aside: a lane seen
            # non-empty stays so)
            try:
                if timers and (not events or self._ahead >= EVENTS_AHEAD):
                    self._ahead = 0
                    entry = timers.popleft()
                elif events:
                    if timers:
                        self._ahead += 1
                    entry = events.popleft()
                else:
                    continue  # abort() took it
            except IndexError:
                continue
            f, args, d, size, logged, thenArgs = entry
            if f is _STOP:
                toReactor(d.callback, None)
                return
            self._inCall = True
            try:
                result = f(*args)
            except BaseException as e:
                result = Failure()
                if logged and isinstance(e, Exception | SystemExit | MemoryLimitExceeded):
                    _logFailure(result, f)
                    result = None
            else:
                if logged:
                    result = None
            finally:
                self._bytesOut += size  # (before the Deferred fires: its data is no longer held)
                # abort() sets aborted, then reads _inCall; this clears _inCall, then reads
                # aborted: so one raised and not yet delivered is withdrawn here
                self._inCall = False
                if self.aborted:
                    with lock:
                        raiseInThread(get_ident(), None)
            toReactor(_tell, d, thenArgs, result)

    def abort(self) -> bool:
        """
        Stop the program's code now (another thread, e.g. a watchdog's): no more callbacks
        are queued, those queued are dropped, and the callback (or top level) running gets
        L{MemoryLimitExceeded} raised at its next bytecode.  Called again, raises it again if
        the program's code still runs (it caught the exception).  Whether code was running.
        """
        self.aborted = True
        self._stopping = True  # (its summary's timer is the reactor's: stop() cancels it)
        kept = []
        for lane in (self._events, self._timers):
            while True:
                try:
                    entry = lane.popleft()
                except IndexError:
                    break
                if entry[0] is _STOP:
                    kept.append(entry)
                else:
                    self.reactor.callFromThread(_tell, entry[2], entry[5], None)
        for entry in kept:
            self._timers.append(entry)
            self._queue.put_nowait(None)
        with self._abortLock:
            ident = self._thread.ident
            if self._inCall and ident is not None and self._thread.is_alive():
                return raiseInThread(ident, MemoryLimitExceeded)
        return False

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Let queued work finish, then end the thread; fires when it has ended, or after
        C{timeout} seconds with a warning (a program stuck in its own code is left behind).
        """
        self._stopping = True
        self._summary.stop()
        if not self._thread.is_alive():
            return succeed(None)
        d: Deferred[None] = Deferred()
        # last in the timers' lane: after every event and timer firing queued before it
        self._timers.append((_STOP, (), d, 0, False, None))
        self._queue.put_nowait(None)

        def stuck(failure: Failure) -> None:
            failure.trap(TimeoutError, CancelledError)
            log.warn("program thread {name} did not finish within {t} s", name=self.name, t=timeout)

        return d.addTimeout(timeout, self.reactor).addErrback(stuck)


def _tell(d: Any, thenArgs: tuple[object, ...] | None, end: object) -> None:
    """
    Tell a queued callback's end (reactor thread): fire its Deferred (its errback for a
    L{Failure}), or call its function (L{_Entry}).
    """
    if thenArgs is not None:
        d(end, *thenArgs)
    elif isinstance(end, Failure):
        d.errback(end)
    else:
        d.callback(end)


def _logFailure(failure: Failure, f: object) -> None:
    """Log a queued callback's failure (not the stop's L{MemoryLimitExceeded}: its watchdog did)."""
    value = failure.value
    if isinstance(value, SystemExit):
        logCallbackExit(value, f)
    elif not isinstance(value, MemoryLimitExceeded):
        logCallbackFailure(failure, f)


def _STOP() -> None:  # noqa: N802 - sentinel
    """Sentinel that ends a program thread."""


@dataclass
class Runtime:
    """The reactor objects use, and the dispatcher their user callbacks go through."""

    reactor: Any
    dispatcher: Dispatcher = field(default_factory=ReactorDispatcher)
    #: the handlers GetConnectionHandler made with this runtime (a program's, for its clean
    #: stop); changed and read on the reactor thread only
    handlers: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet, repr=False)
    #: the reactor's L{Bridge}, once a call from another thread needed it
    _bridge: Bridge | None = field(default=None, init=False, repr=False, compare=False)
    #: the L{twisted_ch._gctune.GCTuner} that twisted_ch.tuneGC() started for this runtime
    gcTuner: GCTuner | None = field(default=None, init=False, repr=False, compare=False)

    def call(
        self, f: Callable[..., object], *args: object, droppable: bool = False
    ) -> Deferred[None]:
        """
        Run a user callback through the dispatcher; the Deferred fires (with None) once it has
        finished.  (Hot paths call C{dispatcher.call}, which returns None for that instead.)
        """
        done = self.dispatcher.call(f, *args, droppable=droppable)
        return succeed(None) if done is None else done

    def callTimer(self, f: Callable[..., object], *args: object) -> Deferred[None]:
        """L{call} for a timer's function (see L{Dispatcher.callTimer})."""
        done = self.dispatcher.callTimer(f, *args)
        return succeed(None) if done is None else done

    def twoFaced(self, f: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """
        Call C{f} (which may return a Deferred) the way the calling thread expects.

        On the reactor thread, return what C{f} returns; from another thread, run C{f} on the
        reactor and block until its result, raising its exception.
        """
        ioThread = threadable.ioThread
        if ioThread is not None and ioThread == get_ident():  # the reactor thread: most calls
            return f(*args, **kwargs)
        if ioThread is not None or onProgramThread():
            bridge = self._bridge
            if bridge is None:
                bridge = self._bridge = bridgeTo(self.reactor)
            return bridge.call(f, *args, **kwargs)
        return f(*args, **kwargs)  # before any reactor ran


class _Waiter:
    """What one thread blocked in L{Bridge.call} waits on: a lock the reactor releases."""

    __slots__ = ("lock", "result", "failure")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.result: object = None
        self.failure: Failure | None = None

    def fire(self, result: object) -> None:
        if isinstance(result, Failure):
            self.failure = result
        else:
            self.result = result
        self.lock.release()


_ThreadCalls = list[tuple[Callable[..., object], tuple[object, ...], dict[str, object]]]
#: the keywords of every call a L{Bridge} appends to a reactor's queue (never changed)
_NO_KEYWORDS: dict[str, object] = {}


class Bridge:
    """
    How other threads call into one reactor, in call order.

    Twisted's C{blockingCallFromThread} makes a C{queue.Queue} (a Condition and its locks) and
    a Deferred per call; a program thread polling a thousand devices makes thousands of such
    calls a second, so that hand-off cost more than the work it handed off.  Here a blocked
    thread waits on a lock of its own, made once per thread, and the call goes through the
    reactor's C{callFromThread} queue like any other: so it keeps its place among every other
    call made from that thread (a batch of our own would run ahead of C{callFromThread} calls
    queued before it).

    Wake-ups are coalesced: C{callFromThread} writes to the reactor's waker on every call, but a
    program thread posts twice per blocking poll (the keep-alive's end, then the next keep-alive's
    SendAndWait), usually before the reactor has woken for the first.  On a Twisted reactor whose
    C{callFromThread} is C{ReactorBase}'s, a post appends to the same C{threadCallQueue} (so the
    order with every other C{callFromThread} call is kept) and wakes the reactor only when no
    wake-up of ours is pending: the wake appends a marker after the call, and the reactor
    clearing the marker ends the pending wake-up.  A call appended while the marker waits is
    run by the same pass of the reactor over its queue, or by the next, which the reactor wakes
    itself for (C{runUntilCurrent} does when calls were added while it ran them).
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        #: the reactor's thread-call queue, when posts may go there directly (see above)
        self._calls: _ThreadCalls | None = _threadCalls(reactor)
        #: a wake-up of ours is written and its marker not yet run by the reactor
        self._wakePending = False
        #: waker writes made (a count, for tests and benchmarks)
        self.wakeUps = 0

    def post(self, f: Callable[..., object], *args: object) -> None:
        """Call C{f(*args)} on the reactor thread soon, after every call posted before it."""
        calls = self._calls
        if calls is None:
            self.wakeUps += 1
            self.reactor.callFromThread(_logged, f, args)
            return
        calls.append((_logged, (f, args), _NO_KEYWORDS))
        # read after the append: True means the marker has not run, so this call runs in the
        # pass that runs it, or in the next
        if not self._wakePending:
            self._wakePending = True
            calls.append((self._woken, (), _NO_KEYWORDS))
            self.wakeUps += 1
            _wakeUp(self.reactor)

    def _woken(self) -> None:
        """The marker (reactor thread): calls posted from now on wake the reactor again."""
        self._wakePending = False

    def call(self, f: Callable[..., Any], *args: object, **kwargs: object) -> Any:
        """
        Run C{f} on the reactor thread (after every call posted before it) and block the
        calling thread until its result (a Deferred's, once fired); raise its exception.
        """
        waiter = _local.waiter
        if waiter is None:
            waiter = _local.waiter = _Waiter()
        self.post(_runFor, waiter, f, args, kwargs)
        try:
            waiter.lock.acquire()
        except BaseException:
            _local.waiter = None  # interrupted: the reactor will still release that one
            raise
        result, failure = waiter.result, waiter.failure
        waiter.result = waiter.failure = None
        if failure is not None:
            failure.raiseException()
        return result


def _wakeUp(reactor: Any) -> None:
    """
    C{reactor.wakeUp()} (C{ReactorBase}'s, see L{_threadCalls}), writing to the pipe of a
    Twisted C{_UnixWaker} directly: its own write goes through C{util.untilConcludes}, whose
    module is wrapped for a deprecation (an attribute look-up costing a few microseconds).
    """
    waker = reactor.waker
    if type(waker) is not _UnixWaker:
        reactor.wakeUp()
        return
    fd = getattr(waker, "o", None)  # (None, or gone: the reactor stopped)
    if fd is None:
        return
    while True:
        try:
            os.write(fd, b"x")
        except InterruptedError:
            continue
        except BlockingIOError:
            pass  # the pipe is full: the reactor has a wake-up to read already
        return


def _threadCalls(reactor: Any) -> _ThreadCalls | None:
    """
    The C{threadCallQueue} of a reactor whose C{callFromThread} and C{wakeUp} are
    C{ReactorBase}'s (append, then wake), else None (any other reactor: its own C{callFromThread}).
    """
    from twisted.internet.base import ReactorBase

    kind = type(reactor)
    calls = getattr(reactor, "threadCallQueue", None)
    if (
        isinstance(reactor, ReactorBase)
        and isinstance(calls, list)
        and getattr(kind, "callFromThread", None) is getattr(ReactorBase, "callFromThread", 0)
        and getattr(kind, "wakeUp", None) is ReactorBase.wakeUp
        and getattr(kind, "runUntilCurrent", None) is ReactorBase.runUntilCurrent
    ):
        return calls
    return None


def _logged(f: Callable[..., object], args: tuple[object, ...]) -> None:
    try:
        f(*args)
    except Exception:
        log.failure("call from another thread {f} raised", f=describe(f))


def _runFor(
    waiter: _Waiter, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Run a L{Bridge.call} on the reactor thread and release its waiter with the outcome."""
    try:
        result = f(*args, **kwargs)
    except BaseException:
        waiter.fire(Failure())
        return
    if isinstance(result, Deferred):
        # a SendAndWait's wait releases the thread itself: no callback (see tellInstead)
        if not tellInstead(result, _release, waiter):
            result.addBoth(waiter.fire)
    elif inspect.iscoroutine(result):
        ensureDeferred(result).addBoth(waiter.fire)
    else:
        waiter.fire(result)


def _release(result: object, waiter: _Waiter) -> None:
    """A wait's end releases the thread blocked on it (L{tellInstead})."""
    waiter.fire(result)


_bridges: weakref.WeakKeyDictionary[Any, Bridge] = weakref.WeakKeyDictionary()
_bridgesLock = threading.Lock()


def bridgeTo(reactor: Any) -> Bridge:
    """The one L{Bridge} into C{reactor}."""
    bridge = _bridges.get(reactor)
    if bridge is None:
        with _bridgesLock:
            bridge = _bridges.get(reactor)
            if bridge is None:
                bridge = _bridges[reactor] = Bridge(reactor)
    return bridge


class _Local(threading.local):
    runtime: Runtime | None = None
    waiter: _Waiter | None = None


_local = _Local()
_default: Runtime | None = None


def onProgramThread() -> bool:
    """Whether the calling thread is a L{ProgramThread} (even before the reactor runs)."""
    rt = _local.runtime
    return rt is not None and isinstance(rt.dispatcher, ProgramThread) and rt.dispatcher.isCurrent


def currentRuntime() -> Runtime:
    """The runtime of the calling thread: its program's, else the global reactor's."""
    rt = _local.runtime
    if rt is not None:
        return rt
    global _default
    if _default is None:
        from twisted.internet import reactor

        _default = Runtime(reactor)
    return _default


def resolveRuntime(reactor: Any = None) -> Runtime:
    """The runtime for an object created now: an explicit reactor wins over the thread's runtime."""
    if reactor is not None:
        # the installed reactor's runtime is shared (a fleet builds several objects per device
        # with reactor=, and a runtime per object cost a WeakSet each: 2 KiB a device)
        global _default
        if _default is not None and _default.reactor is reactor:
            return _default
        if _default is None and sys.modules.get("twisted.internet.reactor") is reactor:
            _default = Runtime(reactor)
            return _default
        return Runtime(reactor)
    return currentRuntime()


@contextmanager
def useRuntime(runtime: Runtime) -> Iterator[Runtime]:
    """Objects created inside the block (on this thread) use C{runtime}."""
    previous = _local.runtime
    _local.runtime = runtime
    try:
        yield runtime
    finally:
        _local.runtime = previous
