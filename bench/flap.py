"""
Flapping device simulators and the event bookkeeping the soak checks (in-process, loopback).

A L{FlappingDevice} answers C{P} with C{Pwr1\\r\\n} and, driven by its own seeded RNG, now and then
goes silent, drops its clients (FIN or RST), stops listening, and comes back.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

ANSWER = b"Pwr1\r\n"


class _Client(Protocol):
    factory: FlappingDevice

    def connectionMade(self) -> None:
        self.factory.clients.add(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.factory.clients.discard(self)

    def dataReceived(self, data: bytes) -> None:
        n = data.count(b"P")
        if n and not self.factory.silent and self.transport is not None:
            self.transport.write(ANSWER * n)


class FlappingDevice(Factory):
    """A loopback device that misbehaves at random times (seeded); see the module docstring."""

    protocol = _Client  # type: ignore[assignment]

    def __init__(self, reactor: Any, seed: int, meanUp: float, meanDown: float) -> None:
        self.reactor = reactor
        self.rng = random.Random(seed)
        self.meanUp = meanUp
        self.meanDown = meanDown
        self.clients: set[_Client] = set()
        self.silent = False
        self.port = 0
        self.listening: Any = None
        self.actions: list[str] = []
        self._next: IDelayedCall | None = None
        self._closing: Deferred[None] | None = None
        self._listenWhenClosed = False

    def start(self) -> int:
        from bench._util import listenStable

        # below the ephemeral range: no client can hold the port while the device is away
        self.listening = listenStable(self.reactor, self)
        self.port = self.listening.getHost().port
        self._schedule(self._misbehave, self.meanUp)
        return self.port

    def _listen(self) -> None:
        if self.listening is not None:
            return
        if self._closing is not None:  # the old socket closes on the next reactor turn
            if not self._listenWhenClosed:
                self._listenWhenClosed = True
                self._closing.addCallback(lambda _: self._listen())
            return
        self.listening = self.reactor.listenTCP(self.port, self, interface="127.0.0.1")

    def _stopListening(self) -> None:
        listening, self.listening = self.listening, None
        if listening is not None:
            closing: Deferred[None] = Deferred()
            self._closing, self._listenWhenClosed = closing, False

            def closed(_: object) -> None:
                self._closing = None
                closing.callback(None)

            maybeDeferred(listening.stopListening).addBoth(closed)

    def _schedule(self, f: Callable[[], None], mean: float) -> None:
        self._next = self.reactor.callLater(self.rng.expovariate(1 / mean), f)

    def _misbehave(self) -> None:
        what = self.rng.choice(("silent", "fin", "rst", "stop"))
        self.actions.append(what)
        if what == "silent":
            self.silent = True
        elif what in ("fin", "rst"):
            self.drop(abort=what == "rst")
        elif what == "stop":
            self.drop(abort=self.rng.random() < 0.5)
            self._stopListening()
        self._schedule(self._recover, self.meanDown)

    def _recover(self) -> None:
        self.silent = False
        self._listen()
        self._schedule(self._misbehave, self.meanUp)

    def drop(self, abort: bool) -> None:
        for c in list(self.clients):
            if c.transport is not None:
                if abort:
                    c.transport.abortConnection()  # type: ignore[attr-defined]
                else:
                    c.transport.loseConnection()

    def calm(self) -> None:
        """Stop misbehaving; answer and listen from now on."""
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        self.silent = False
        self._listen()

    async def shutdown(self) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        if self._closing is not None:
            await self._closing
        self.drop(abort=True)
        self._stopListening()
        if self._closing is not None:
            await self._closing


class Sequence:
    """
    A sequence of states kept in constant memory: its length, a polynomial fingerprint, the last
    few items, and how often an item repeated the one before it.
    """

    _MOD = (1 << 61) - 1

    def __init__(self) -> None:
        self.length = 0
        self.fingerprint = 0
        self.repeats = 0
        self.recent: deque[str] = deque(maxlen=6)

    def append(self, state: str) -> None:
        if self.recent and self.recent[-1] == state:
            self.repeats += 1
        self.recent.append(state)
        self.length += 1
        code = 1 if state == "Connected" else 2 if state == "Disconnected" else 3
        self.fingerprint = (self.fingerprint * 1_000_003 + code) % self._MOD

    def same(self, other: Sequence) -> bool:
        return (self.length, self.fingerprint) == (other.length, other.fingerprint)

    def __repr__(self) -> str:
        return f"<{self.length} states, last {list(self.recent)}>"


class EventLog:
    """
    A handler's Connected/Disconnected events and status-observer calls, checked as they come.

    The bookkeeping takes constant memory, so that the soak's memory measurement sees twisted_ch,
    not a growing record of the run.
    """

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.events = Sequence()
        self.observed = Sequence()
        self.disagreements = 0
        self.failed = 0
        self.accepted = 0
        handler.Connected = self.onEvent
        handler.Disconnected = self.onEvent
        handler.ConnectFailed = self.onFailed
        handler.ReceiveData = self.onData
        handler.addStatusObserver(self.observed.append)

    def onEvent(self, h: Any, state: str) -> None:
        if h.ConnectionStatus != state:
            self.disagreements += 1
        self.events.append(state)

    def onFailed(self, h: Any, reason: str) -> None:
        self.failed += 1

    def onData(self, h: Any, data: bytes) -> None:
        if b"Pwr" in data:
            self.accepted += 1
            h.ResponseAccepted()

    def problems(self) -> list[str]:
        """What breaks the rules: alternation, events vs observer calls vs transitions."""
        out = []
        if not self.events.same(self.observed):
            out.append(f"events {self.events} differ from observer calls {self.observed}")
        if self.events.repeats:
            out.append(f"{self.events.repeats} repeated events, {self.events}")
        if self.events.length != self.handler.transitions:
            out.append(f"{self.events.length} events but {self.handler.transitions} transitions")
        if self.disagreements:
            out.append(f"{self.disagreements} events disagree with ConnectionStatus")
        return out


def keepAlive(h: Any) -> None:
    h.Send(b"P")


def twistedChDelayedCalls(reactor: Any) -> list[Any]:
    """Pending reactor calls whose function belongs to twisted_ch (directly or via LoopingCall)."""
    from twisted.internet.task import LoopingCall

    out = []
    for call in reactor.getDelayedCalls():
        f = call.func
        owner = getattr(f, "__self__", None)
        if isinstance(owner, LoopingCall):
            f = owner.f
            owner = getattr(f, "__self__", None)
        module = getattr(f, "__module__", "") or ""
        if owner is not None:
            module = type(owner).__module__ + " " + module
        if "twisted_ch" in module and call.active():
            out.append(call)
    return out
