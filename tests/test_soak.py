"""
Soak (the short CI variant of C{python -m bench soak}): a few hundred handlers against loopback
devices that flap at seeded-random times, going silent, closing (FIN), resetting (RST), refusing
and coming back.

Checked per handler: Connected and Disconnected strictly alternate; no event is lost or doubled (the
events equal the status-observer calls, and their count equals the handler's transition count);
each event's argument is the ConnectionStatus at that moment.  Checked for the run: after
Disconnect the process has the fds it had before, no twisted_ch DelayedCall or LoopingCall is left,
and traced memory is flat between the two halves (measured at the same state: every device calm
and every handler connected).
"""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
from collections import deque
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import waitUntil

ANSWER = b"Pwr1\r\n"
DEVICES = 24
HANDLERS_PER_DEVICE = 10  # 240 handlers
FLAP_SECONDS = 7.0  # per half
#: allowed growth of traced memory from the first half to the second
MEMORY_TOLERANCE = 192 * 1024


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
    """Answers C{P}; while flapping, misbehaves at exponential random times from its own RNG."""

    protocol = _Client

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clients: set[_Client] = set()
        self.silent = False
        self.port = 0
        self.listening: Any = None
        self.actions: list[str] = []
        self.pending: IDelayedCall | None = None
        self.closing: Deferred[None] | None = None

    def listen(self) -> int:
        if self.port:
            self.listening = reactor.listenTCP(self.port, self, interface="127.0.0.1")
            return self.port
        # the first time, a port below the ephemeral range: while the device is away, no
        # outgoing connection can take it as its source port and stop it from listening again
        for port in stablePorts():
            try:
                self.listening = reactor.listenTCP(port, self, interface="127.0.0.1")
            except CannotListenError:
                continue
            self.port = port
            return port
        raise RuntimeError("no free port below the ephemeral range")

    def flap(self) -> None:
        self._later(self.misbehave, 2.0)

    def _later(self, f: Any, mean: float) -> None:
        self.pending = reactor.callLater(self.rng.expovariate(1 / mean), f)

    def misbehave(self) -> None:
        what = self.rng.choice(("silent", "fin", "rst", "refuse"))
        self.actions.append(what)
        if what == "silent":
            self.silent = True
        else:
            self.drop(abort=what == "rst")
            if what == "refuse":
                self.stopListening()
        self._later(self.recover, 0.8)

    def recover(self) -> None:
        self.silent = False
        self.ensureListening()
        self._later(self.misbehave, 2.0)

    def stopListening(self) -> None:
        listening, self.listening = self.listening, None
        if listening is not None:
            closing = maybeDeferred(listening.stopListening)
            self.closing = closing

            def closed(result: object) -> object:
                if self.closing is closing:
                    self.closing = None
                return result

            closing.addBoth(closed)

    def ensureListening(self) -> None:
        """Listen again, once the old socket (closed on a later reactor turn) is gone."""
        if self.listening is not None:
            return
        if self.closing is not None:
            self.closing.addCallback(lambda _: self.ensureListening())
            return
        self.listen()

    def drop(self, abort: bool) -> None:
        for c in list(self.clients):
            if c.transport is not None:
                if abort:
                    c.transport.abortConnection()  # type: ignore[attr-defined]
                else:
                    c.transport.loseConnection()

    def calm(self) -> None:
        if self.pending is not None and self.pending.active():
            self.pending.cancel()
        self.pending = None
        self.silent = False
        self.ensureListening()

    async def shutdown(self) -> None:
        self.calm()
        if self.closing is not None:
            await self.closing
        self.drop(abort=True)
        self.stopListening()
        if self.closing is not None:
            await self.closing


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
        handler.Connected = self.onEvent
        handler.Disconnected = self.onEvent
        handler.ReceiveData = self.onData
        handler.addStatusObserver(self.observed.append)

    def onEvent(self, h: Any, state: str) -> None:
        if h.ConnectionStatus != state:
            self.disagreements += 1
        self.events.append(state)

    def onData(self, h: Any, data: bytes) -> None:
        if b"Pwr" in data:
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


def stablePorts() -> list[int]:
    """Candidate ports below the kernel's ephemeral port range, shuffled."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    ports = list(range(max(1024, low - 20000), low))
    random.SystemRandom().shuffle(ports)
    return ports[:200]


def openFds() -> int:
    return len(os.listdir("/proc/self/fd"))


def twistedChCalls() -> list[Any]:
    """Active DelayedCalls whose function (or LoopingCall's function) comes from twisted_ch."""
    out = []
    for call in reactor.getDelayedCalls():
        f = call.func
        owner = getattr(f, "__self__", None)
        if isinstance(owner, LoopingCall):
            f = owner.f
            owner = getattr(f, "__self__", None)
        modules = {getattr(f, "__module__", None) or ""}
        if owner is not None:
            modules.add(type(owner).__module__)
        if call.active() and any(m.startswith("twisted_ch") for m in modules):
            out.append(call)
    return out


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds)


@pytest_twisted.ensureDeferred
async def test_soak_flapping_devices() -> None:
    d = ensureDeferred(_soak())
    d.addTimeout(80, reactor)
    await d


async def _soak() -> None:
    # Twisted keeps one fd for good once anything listens (tcp._reservedFD): take it before counting
    await reactor.listenTCP(0, Factory(), interface="127.0.0.1").stopListening()
    gc.collect()
    fds0 = openFds()
    callsBefore = set(twistedChCalls())
    wasTracing = tracemalloc.is_tracing()
    if not wasTracing:
        tracemalloc.start()

    devices = [FlappingDevice(seed=1000 + i) for i in range(DEVICES)]
    logs: list[EventLog] = []
    try:
        for device in devices:
            device.listen()
        for i in range(DEVICES * HANDLERS_PER_DEVICE):
            h = GetConnectionHandler(
                EthernetClientInterface("127.0.0.1", devices[i // HANDLERS_PER_DEVICE].port),
                lambda h: h.Send("P"),
                DisconnectLimit=2,
                pollFrequency=0.2,
                connectRetryTime=0.3,
            )
            logs.append(EventLog(h))
            h.Connect(timeout=2)

        async def half() -> int:
            for device in devices:
                device.flap()
            await sleep(FLAP_SECONDS)
            for device in devices:
                device.calm()
            await waitUntil(
                reactor,
                lambda: all(g.handler.ConnectionStatus == "Connected" for g in logs),
                timeout=15,
            )
            await waitUntil(reactor, lambda: all(g.handler.missedPolls <= 1 for g in logs))
            gc.collect()
            return tracemalloc.get_traced_memory()[0]

        first = await half()
        firstSnapshot = tracemalloc.take_snapshot()
        second = await half()
        growth = second - first
        if growth > MEMORY_TOLERANCE:
            top = tracemalloc.take_snapshot().compare_to(firstSnapshot, "lineno")[:8]
            raise AssertionError(
                f"traced memory grew {growth} bytes over the second half:\n"
                + "\n".join(map(str, top))
            )

        actions = sum(len(d.actions) for d in devices)
        if os.environ.get("SOAK_REPORT"):
            events = sum(g.events.length for g in logs)
            print(f"\nsoak: {actions} misbehaviours, {events} events, growth {growth} bytes")
        assert actions >= DEVICES * 3, f"only {actions} misbehaviours: the soak did not flap"
        flapped = [g for g in logs if g.events.length >= 3]  # Connected, Disconnected, Connected
        assert len(flapped) >= 0.9 * len(logs), f"only {len(flapped)} handlers saw a disconnect"
        problems = {i: p for i, g in enumerate(logs) if (p := g.problems())}
        assert not problems, f"{len(problems)} handlers broke: {list(problems.items())[:3]}"
    finally:
        for g in logs:
            await g.handler.Disconnect()
        for device in devices:
            if device.port:  # it listened once
                await device.shutdown()
        if not wasTracing:
            tracemalloc.stop()

    for g in logs:
        assert g.events.recent[-1] == "Disconnected" and g.events.same(g.observed)
        assert not g.problems()
    await waitUntil(reactor, lambda: openFds() <= fds0, timeout=10)
    assert openFds() == fds0
    assert set(twistedChCalls()) - callsBefore == set()
