"""
Soak-test helpers (re-exported by L{twisted_ch.testing}): loopback devices that flap at seeded
random times, constant-memory bookkeeping of a handler's events, stable listening ports, and a
check for leftover twisted_ch timers.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from twisted_ch.testing._loopback import dropConnections, listenLoopback


class _FlappingClient(Protocol):
    factory: FlappingDevice

    def connectionMade(self) -> None:
        self.factory.clients.add(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.factory.clients.discard(self)

    def dataReceived(self, data: bytes) -> None:
        factory = self.factory
        n = data.count(factory.request)
        if n and not factory.silent and self.transport is not None:
            self.transport.write(factory.answer * n)


class FlappingDevice(Factory):
    """
    A loopback TCP device that answers every C{request} byte string with C{answer} and, while
    flapping, misbehaves at exponential random times (mean C{meanUp} s) from its own seeded RNG:
    it goes silent, closes its clients (FIN), resets them (RST), or stops listening.  It recovers
    after a mean of C{meanDown} s.  Actions taken are listed in L{actions}.

    @ivar reactor: the reactor it listens and schedules its misbehaviour with.
    @ivar rng: its seeded random number generator (the same seed, the same actions).
    @ivar meanUp: the mean time in seconds between recovering and misbehaving.
    @ivar meanDown: the mean time in seconds a misbehaviour lasts.
    @ivar request: the bytes it answers.
    @ivar answer: its answer to each C{request}.
    @ivar clients: the protocols connected now.
    @ivar silent: while True, requests are read and not answered.
    @ivar port: its port (0 before the first L{listen}).
    @ivar listening: its listening port while it listens, else None.
    @ivar actions: each misbehaviour (silent, fin, rst, stop) and failed relisten, in order.
    """

    protocol = _FlappingClient  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        reactor: Any,
        seed: int,
        meanUp: float = 8.0,
        meanDown: float = 3.0,
        request: bytes = b"P",
        answer: bytes = b"Pwr1\r\n",
    ) -> None:
        self.reactor = reactor
        self.rng = random.Random(seed)
        self.meanUp = meanUp
        self.meanDown = meanDown
        self.request = request
        self.answer = answer
        self.clients: set[_FlappingClient] = set()
        self.silent = False
        self.port = 0
        self.listening: IListeningPort | None = None
        self.actions: list[str] = []
        self._next: IDelayedCall | None = None
        self._closing: Deferred[None] | None = None
        self._listenWhenClosed = False

    def listen(self) -> int:
        """Listen (on a port below the ephemeral range, the same one every time); the port."""
        if self.port == 0:
            self.listening = listenLoopback(self.reactor, self)
            self.port = self.listening.getHost().port  # type: ignore[attr-defined]
        else:
            self._listen()
        return self.port

    def flap(self) -> None:
        """Start misbehaving (after a random up time)."""
        self._cancelNext()
        self._schedule(self._misbehave, self.meanUp)

    def calm(self) -> None:
        """Stop misbehaving: answer, and listen, from now on."""
        self._cancelNext()
        self.silent = False
        self._listen()

    def drop(self, abort: bool) -> None:
        """Close every client connection (RST with C{abort}, else FIN)."""
        dropConnections(self.clients, abort)

    async def shutdown(self) -> None:
        """Stop flapping, reset every client and stop listening."""
        self._cancelNext()
        if self._closing is not None:
            await self._closing
        self.drop(abort=True)
        self._stopListening()
        if self._closing is not None:
            await self._closing

    def _listen(self) -> None:
        if self.listening is not None:
            return
        if self._closing is not None:  # the old socket closes on a later reactor turn
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

    def _cancelNext(self) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def _misbehave(self) -> None:
        what = self.rng.choice(("silent", "fin", "rst", "stop"))
        self.actions.append(what)
        if what == "silent":
            self.silent = True
        elif what in ("fin", "rst"):
            self.drop(abort=what == "rst")
        else:
            self.drop(abort=self.rng.random() < 0.5)
            self._stopListening()
        self._schedule(self._recover, self.meanDown)

    def _recover(self) -> None:
        self.silent = False
        try:
            self._listen()
        except CannotListenError:
            # the port is taken for now (it is below the ephemeral range, so rarely): try again
            self.actions.append("listen failed")
            self._schedule(self._recover, self.meanDown)
            return
        self._schedule(self._misbehave, self.meanUp)


class StateSequence:
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

    def same(self, other: StateSequence) -> bool:
        """Whether both saw the same states in the same order (up to a fingerprint collision)."""
        return (self.length, self.fingerprint) == (other.length, other.fingerprint)

    def __repr__(self) -> str:
        return f"<{self.length} states, last {list(self.recent)}>"


class EventLog:
    """
    Watches a handler: its Connected/Disconnected events and status-observer calls, checked as
    they come, in constant memory (a soak's memory measurement sees twisted_ch, not the record).
    It also takes the handler's ReceiveData (calling ResponseAccepted on C{accept} in the data)
    and ConnectFailed events.
    """

    def __init__(self, handler: Any, accept: bytes = b"Pwr") -> None:
        self.handler = handler
        self.accept = accept
        self.events = StateSequence()
        self.observed = StateSequence()
        self.disagreements = 0
        self.failed = 0
        self.accepted = 0
        handler.Connected = self._onEvent
        handler.Disconnected = self._onEvent
        handler.ConnectFailed = self._onFailed
        handler.ReceiveData = self._onData
        handler.addStatusObserver(self.observed.append)

    def _onEvent(self, h: Any, state: str) -> None:
        if h.ConnectionStatus != state:
            self.disagreements += 1
        self.events.append(state)

    def _onFailed(self, h: Any, reason: str) -> None:
        self.failed += 1

    def _onData(self, h: Any, data: bytes) -> None:
        if self.accept in data:
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


#: modules whose timers are the test's own, not twisted_ch's
_TEST_HELPERS = (
    "twisted_ch.testing._flapping",
    "twisted_ch.testing",
    "twisted_ch.testing._sis",
    "twisted_ch.testing._probes",
)


def _modulesOf(f: Callable[..., object]) -> set[str]:
    """Modules a timer's function belongs to: its own, its object's, its LoopingCall's."""
    owner = getattr(f, "__self__", None)
    if isinstance(owner, LoopingCall):
        f = owner.f
        owner = getattr(f, "__self__", None)
    modules = {getattr(f, "__module__", None) or ""}
    if owner is not None:
        modules.add(type(owner).__module__)
    return modules


def twistedChDelayedCalls(reactor: Any) -> list[IDelayedCall]:
    """
    Active reactor calls that belong to twisted_ch, not counting its test helpers'
    (simulators'): their function (or LoopingCall's function) comes from twisted_ch, or they are
    a C{Deferred.addTimeout} timer on a Deferred with a twisted_ch callback.
    """
    out = []
    for call in reactor.getDelayedCalls():
        if not call.active():
            continue
        modules = _modulesOf(call.func)
        for cell in getattr(call.func, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, Deferred):  # addTimeout's timer: whose Deferred is it?
                # (the public Deferred.callbacks is deprecated; a test helper may look inside)
                chain: Any = getattr(value, "_callbacks", ())
                for callback, errback in chain:
                    modules |= _modulesOf(callback[0]) | _modulesOf(errback[0])
        if any(m.startswith("twisted_ch") and not m.startswith(_TEST_HELPERS) for m in modules):
            out.append(call)
    return out


__all__ = [
    "EventLog",
    "FlappingDevice",
    "StateSequence",
    "twistedChDelayedCalls",
]
