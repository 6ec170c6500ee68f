"""
Run ControlScript-style programs (the manual's examples, Global Scripter projects) on Twisted.

The program's module code runs on a L{ProgramThread}: C{import extronlib} resolves to
L{twisted_ch.extronlib}, objects it creates deliver their events to that thread, and waiting calls
(C{Connect}, C{SendAndWait}) block it while the reactor keeps running.

C{import ConnectionHandler} (the manual's own import) resolves to twisted_ch's handlers, unless
the program brings its own C{ConnectionHandler} module (a file next to it, or anywhere on
C{sys.path}): then that file runs, on twisted_ch's extronlib.  The program's files
(C{extronlib.system.File}) live in C{data/} next to the program unless configured otherwise.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_ch import extronlib
from twisted_ch._gctune import ProgramFreezer, raiseThreshold
from twisted_ch._memory import SAMPLE_PERIOD, MemoryWatchdog
from twisted_ch._runtime import ProgramThread
from twisted_ch._stopping import stopHandler
from twisted_ch.extronlib._lifetime import ProgramObjects

__all__ = ["CONNECTION_HANDLER_NAMES", "Program", "installConnectionHandler", "runProgram"]

log = Logger(namespace="twisted_ch.program")

#: What C{import ConnectionHandler} offers (the names of the original module).
CONNECTION_HANDLER_NAMES = (
    "GetConnectionHandler",
    "ModuleVersion",
    "RawTcpHandler",
    "RawSimplePipeHandler",
    "ModuleTcpHandler",
    "ModuleSimplePipeHandler",
    "ServerExHandler",
)


class _ConnectionHandlerLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        import twisted_ch

        module.__doc__ = "twisted_ch's ConnectionHandler (the manual's module, on Twisted)."
        for name in CONNECTION_HANDLER_NAMES:
            setattr(module, name, getattr(twisted_ch, name))
        module.__all__ = list(CONNECTION_HANDLER_NAMES)  # type: ignore[attr-defined]


class _ConnectionHandlerFinder(importlib.abc.MetaPathFinder):
    """Last on C{sys.meta_path}: C{ConnectionHandler} only when no file of that name exists."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "ConnectionHandler":
            return None
        return importlib.machinery.ModuleSpec(fullname, _ConnectionHandlerLoader())


_finder = _ConnectionHandlerFinder()


_errorsObserved = False


def _observeProgramErrors() -> None:
    """Keep twisted_ch's error log lines in the program log (L{SaveProgramLog}), once."""
    global _errorsObserved
    if not _errorsObserved:
        from twisted.logger import globalLogPublisher

        from twisted_ch.extronlib.system import programErrors

        globalLogPublisher.addObserver(programErrors)
        _errorsObserved = True


def installConnectionHandler() -> None:
    """Make C{import ConnectionHandler} find twisted_ch's handlers when nothing else is found."""
    if not any(isinstance(f, _ConnectionHandlerFinder) for f in sys.meta_path):
        sys.meta_path.append(_finder)


def _stopHandlers(thread: ProgramThread) -> Deferred[Any]:
    """Stop every connection handler the program made (reactor thread)."""
    handlers = list(thread.runtime.handlers)
    return DeferredList(
        [stopHandler(h, thread.reactor) for h in handlers if hasattr(h, "Interface")],
        consumeErrors=True,
    ).addCallback(_logStopFailures, "a connection handler")


def _logStopFailures(results: list[tuple[bool, Any]], what: str) -> None:
    for ok, value in results:
        if not ok and isinstance(value, Failure):
            log.failure("stopping {what} of a program failed", value, what=what)


class _ReleasingThread(ProgramThread):
    """
    A program thread whose stop also stops what the program made: once the thread has ended,
    its connection handlers stop and every interface, server, Timer, Wait, Clock, panel and I/O
    port it created is released (links closed, ports closed, timers cancelled), handler or not.
    """

    def __init__(self, reactor: Any, name: str) -> None:
        super().__init__(reactor, name=name)
        #: what the program created (see L{twisted_ch.extronlib._lifetime})
        self.objects = ProgramObjects.forThread(self, reactor)
        #: the program's memory watchdog, stopped with the thread
        self.watchdog: MemoryWatchdog | None = None

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """Let queued work finish, end the thread, then release what the program made."""
        ended = super().stop(timeout)

        def release(_: object) -> Deferred[None]:
            if self.watchdog is not None:
                self.watchdog.stop()
            return _stopHandlers(self).addCallback(lambda _: self.objects.release())

        return ended.addCallback(release)


class Program:
    """
    A program file or callable, run on its own program thread.  L{stop} leaves nothing of it
    running: handlers stopped, every link and listening port it opened closed, its timers gone.

    With a C{memoryLimit} (bytes), a L{MemoryWatchdog} samples the process's resident memory
    every C{samplePeriod} seconds from the program's start (None: no sampler thread; call
    C{memory.sample()}); past the limit, the program's code is interrupted
    (L{ProgramThread.abort}), one line is logged, and the program is stopped as by L{stop},
    its global variables then cleared (so that what they hold can be freed).

    With C{tuneGC} (a process of its own: C{twistd chandler --program}), the garbage collector
    is tuned as the fleet's: generation 0 collected every 20,000 allocations, and the heap
    frozen once the program's top level (its file, or the first L{runCallable}) has run and
    again once its links' first connects are over (L{twisted_ch._gctune}).
    """

    def __init__(
        self,
        reactor: Any,
        name: str = "program",
        memoryLimit: int | None = None,
        samplePeriod: float | None = SAMPLE_PERIOD,
        tuneGC: bool = False,
    ) -> None:
        self.reactor = reactor
        self.name = name
        thread = _ReleasingThread(reactor, name=name)
        self._thread = thread
        self.thread: ProgramThread = thread
        #: what the program has created that L{stop} releases
        self.objects: ProgramObjects = thread.objects
        self.namespace: dict[str, Any] = {}
        self.memoryLimit = memoryLimit
        self.samplePeriod = samplePeriod
        #: the memory watchdog, once the program started with a limit
        self.memory: MemoryWatchdog | None = None
        #: fires once the program was stopped for its memory (and all it made released)
        self.stoppedForMemory: Deferred[None] | None = None
        self._file: str | None = None
        self._globals: list[dict[str, Any]] = []
        #: freezes the heap after the top level (with tuneGC), once it started
        self.freezer: ProgramFreezer | None = None
        self._tuneGC = tuneGC

    def _topLevel(self, ran: Deferred[Any]) -> Deferred[Any]:
        """C{ran} is the program's top level (the first run): with tuneGC, freeze after it."""
        if not self._tuneGC or self.freezer is not None:
            return ran
        raiseThreshold()
        runtime = self.thread.runtime
        freezer = self.freezer = ProgramFreezer(self.reactor, lambda: list(runtime.handlers))

        def frozen(result: object) -> object:
            freezer.topLevelRan()
            return result

        return ran.addBoth(frozen)

    def _watchMemory(self) -> None:
        """Start the memory bound (reactor thread), once."""
        if self.memoryLimit is None or self.memory is not None:
            return
        watchdog = MemoryWatchdog(self.memoryLimit, self._overLimit, period=self.samplePeriod or 1)
        if not watchdog.start():
            log.warn(
                "program {name}: memoryLimit is not enforced: this system does not report the "
                "process's resident memory (/proc/self/statm)",
                name=self.name,
            )
            return
        watchdog.again = self.thread.abort
        self.memory = self._thread.watchdog = watchdog
        if self.samplePeriod is not None:
            watchdog.run(self.thread.name)

    def _overLimit(self, growth: int) -> None:
        """The watchdog found the process past the limit (on its thread, or a test's)."""
        self._globals = self._programGlobals()
        self.thread.abort()
        self.reactor.callFromThread(self._stopForMemory, growth)

    def _programGlobals(self) -> list[dict[str, Any]]:
        """The program file's global variables: from its running frames and its namespace."""
        found: list[dict[str, Any]] = []

        def add(g: object) -> None:
            if isinstance(g, dict) and g.get("__file__") == self._file:
                if not any(g is seen for seen in found):
                    found.append(g)

        ident = self.thread.ident
        frame = sys._current_frames().get(ident) if ident is not None else None
        while frame is not None:
            add(frame.f_globals)
            frame = frame.f_back
        for value in list(self.namespace.values()):
            add(getattr(value, "__globals__", None))
        return found

    def _stopForMemory(self, growth: int) -> None:
        if self.stoppedForMemory is not None:
            return
        mib = 1024 * 1024
        log.error(
            "program {name} stopped: the process grew by {growth} MiB since the program "
            "started, past its memoryLimit of {limit} MiB; its links, ports and timers are "
            "released, the service and its other devices keep running",
            name=self.name,
            growth=growth // mib,
            limit=(self.memoryLimit or 0) // mib,
        )
        self.stoppedForMemory = self.stop()

        def forget(result: object) -> object:
            if self.memory is not None:
                self.memory.stop()
            for g in self._globals:
                g.clear()
            self._globals = []
            self.namespace.clear()
            return result

        self.stoppedForMemory.addBoth(forget)

    def runFile(
        self, path: str | Path, dataDirectory: str | Path | None = None
    ) -> Deferred[dict[str, Any]]:
        """
        Execute a program file on the program thread (its directory first on C{sys.path}, so
        its device modules import); fires with the module namespace when its top level has run.
        Its files (C{File}, C{RFile}) live in C{dataDirectory}, by default C{data/} beside it.
        """
        extronlib.install()
        installConnectionHandler()
        _observeProgramErrors()
        target = Path(path).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"no program file {str(target)!r}")
        from twisted_ch.extronlib._files import setDataDirectory

        setDataDirectory(dataDirectory or target.parent / "data", program=True)
        self._file = str(target)
        self._watchMemory()
        folder = str(target.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        # program code may call the blocking face at once: let it start with the reactor
        self.reactor.callWhenRunning(self.thread.ensureStarted)

        def run() -> dict[str, Any]:
            self.namespace = runpy.run_path(str(target), run_name="__main__")
            return self.namespace

        return self._topLevel(self.thread.run(run))

    def runCallable(self, f: Any, *args: Any) -> Deferred[Any]:
        """Run C{f(*args)} on the program thread (starting it if needed)."""
        extronlib.install()
        installConnectionHandler()
        self._watchMemory()
        self.thread.ensureStarted()
        return self._topLevel(self.thread.run(f, *args))

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Stop the program: its connection handlers first (no more polling), then its thread
        (queued callbacks finish; a top level still running gets C{timeout} seconds), then
        everything it created is released.  Fires once links and ports are closed.
        """
        if self.freezer is not None:
            self.freezer.stop()
        tuner = self.thread.runtime.gcTuner  # twisted_ch.tuneGC() called by the program
        if tuner is not None:
            tuner.stop()
        return _stopHandlers(self.thread).addCallback(lambda _: self.thread.stop(timeout))


def runProgram(reactor: Any, path: str | Path) -> Program:
    """Start running C{path} as a ControlScript program; returns the L{Program}."""
    program = Program(reactor, name=Path(path).stem)
    program.runFile(path).addErrback(
        lambda f: log.failure("program {path} failed", f, path=str(path))
    )
    return program
