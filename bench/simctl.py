"""Drive a L{bench.sim} process from a running reactor: start it, send commands, await answers."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure


class SimProcess(ProcessProtocol):
    """A simulator child; L{command} returns a Deferred of its JSON answer."""

    def __init__(self) -> None:
        self.buffer = b""
        self.ports: list[int] = []
        self.ready: Deferred[list[int]] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.waiting: list[Deferred[dict[str, Any]]] = []

    @classmethod
    def spawn(cls, reactor: Any, ports: int = 1, maxClients: int = 1000) -> SimProcess:
        proto = cls()
        argv = [sys.executable, "-m", "bench.sim", "--ports", str(ports)]
        argv += ["--max-clients", str(maxClients)]
        reactor.spawnProcess(
            proto, sys.executable, argv, env=os.environ, childFDs={0: "w", 1: "r", 2: 2}
        )
        return proto

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "ports" in message:
                self.ports = message["ports"]
                self.ready.callback(self.ports)
            elif self.waiting:
                self.waiting.pop(0).callback(message)

    def command(self, cmd: str) -> Deferred[dict[str, Any]]:
        d: Deferred[dict[str, Any]] = Deferred()
        self.waiting.append(d)
        assert self.transport is not None
        self.transport.write(cmd.encode() + b"\n")
        return d

    def processEnded(self, reason: Failure) -> None:
        for d in self.waiting:
            d.errback(reason)
        self.waiting = []
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(None)

    async def quit(self) -> None:
        if self.transport is not None and not self.ended.called:
            self.transport.closeStdin()  # type: ignore[attr-defined]
            await self.ended
