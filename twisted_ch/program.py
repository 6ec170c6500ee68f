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

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_ch import extronlib
from twisted_ch._runtime import ProgramThread

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


class Program:
    """A program file or callable, run on its own program thread."""

    def __init__(self, reactor: Any, name: str = "program") -> None:
        self.reactor = reactor
        self.thread = ProgramThread(reactor, name=name)
        self.namespace: dict[str, Any] = {}

    def runFile(self, path: str | Path) -> Deferred[dict[str, Any]]:
        """
        Execute a program file on the program thread (its directory first on C{sys.path}, so
        its device modules import); fires with the module namespace when its top level has run.
        """
        extronlib.install()
        installConnectionHandler()
        _observeProgramErrors()
        target = Path(path).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"no program file {str(target)!r}")
        from twisted_ch.extronlib._files import setDataDirectory

        setDataDirectory(target.parent / "data", program=True)
        folder = str(target.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        # program code may call the blocking face at once: let it start with the reactor
        self.reactor.callWhenRunning(self.thread.ensureStarted)

        def run() -> dict[str, Any]:
            self.namespace = runpy.run_path(str(target), run_name="__main__")
            return self.namespace

        return self.thread.run(run)

    def runCallable(self, f: Any, *args: Any) -> Deferred[Any]:
        """Run C{f(*args)} on the program thread (starting it if needed)."""
        extronlib.install()
        installConnectionHandler()
        self.thread.ensureStarted()
        return self.thread.run(f, *args)

    def stop(self) -> Deferred[None]:
        """Let queued callbacks finish and end the program thread."""
        return self.thread.stop()


def runProgram(reactor: Any, path: str | Path) -> Program:
    """Start running C{path} as a ControlScript program; returns the L{Program}."""
    program = Program(reactor, name=Path(path).stem)
    program.runFile(path).addErrback(
        lambda f: log.failure("program {path} failed", f, path=str(path))
    )
    return program
