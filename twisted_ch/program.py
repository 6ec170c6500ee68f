"""
Run ControlScript-style programs (the manual's examples, Global Scripter projects) on Twisted.

The program's module code runs on a L{ProgramThread}: C{import extronlib} resolves to
L{twisted_ch.extronlib}, objects it creates deliver their events to that thread, and waiting calls
(C{Connect}, C{SendAndWait}) block it while the reactor keeps running.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_ch import extronlib
from twisted_ch._runtime import ProgramThread

__all__ = ["Program", "runProgram"]

log = Logger(namespace="twisted_ch.program")


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
        target = Path(path).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"no program file {str(target)!r}")
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
