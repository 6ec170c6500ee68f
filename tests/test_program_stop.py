"""
A stopped program leaves nothing running: the interfaces it created with or without a handler are
closed, its servers stop listening, and its Timers, Waits, Clocks, panels and I/O ports leave no
timer on the reactor (followups item 1).
"""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from twisted_ch._runtime import ReactorDispatcher, Runtime, useRuntime
from twisted_ch.extronlib import _files
from twisted_ch.extronlib._lifetime import ProgramObjects
from twisted_ch.extronlib.device import ProcessorDevice, UIDevice
from twisted_ch.extronlib.interface import EndpointInterface, IRInterface, RelayInterface
from twisted_ch.extronlib.system import Clock as ScheduleClock
from twisted_ch.extronlib.system import Timer, Wait
from twisted_ch.extronlib.ui import Button
from twisted_ch.program import Program
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import ProgramService
from twisted_ch.testing import FakeEndpoint


class Peer(Protocol):
    def connectionMade(self) -> None:
        self.factory.made.put(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.lost.put(self)  # type: ignore[attr-defined]


class Sink(Factory):
    """A loopback server telling each connection made and lost."""

    protocol = Peer
    noisy = False

    def __init__(self) -> None:
        self.made: DeferredQueue[Peer] = DeferredQueue()
        self.lost: DeferredQueue[Peer] = DeferredQueue()


async def within(d: Deferred[Any], seconds: float = 10) -> Any:
    return await d.addTimeout(seconds, reactor)


@pytest.fixture
def freshImports() -> Iterator[None]:
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if not name.startswith("twisted"):
            sys.modules.pop(name, None)
    _files.setDataDirectory(None, program=True)


PROGRAM = """
import stop_hooks
from extronlib.device import ProcessorDevice, UIDevice
from extronlib.interface import (EthernetClientInterface, EthernetServerInterfaceEx,
                                 IRInterface, RelayInterface)
from extronlib.system import Clock, Timer, Wait
from extronlib.ui import Button
from twisted_ch import GetConnectionHandler

Bare = EthernetClientInterface('127.0.0.1', stop_hooks.PORT)
stop_hooks.report(('bare', Bare.Connect(5)))
Bare.StartKeepAlive(1, 'q')
Handled = EthernetClientInterface('127.0.0.1', stop_hooks.PORT)
Handler = GetConnectionHandler(Handled, lambda i: i.Send('q'), pollFrequency=1)
Handler.Connect()
Datagrams = EthernetClientInterface('127.0.0.1', 9, Protocol='UDP')
Listener = EthernetServerInterfaceEx(0, bindAddress='127.0.0.1')
stop_hooks.report(('listen', Listener.StartListen(), Listener.IPPort))

ticks = []
Poll = Timer(1, lambda timer, count: ticks.append(count))
Later = Wait(600, lambda: stop_hooks.report('wait fired'))
Daily = Clock(['03:00:00'], None, lambda clock, when: None)
Daily.Enable()
Panel = UIDevice('StopPanel')
Panel.SetInactivityTime([300])
Panel.SetSleepTimer(True, 900)
Panel.ShowPopup('Info', 600)
Held = Button(Panel, 1, repeatTime=0.5)
Held.press()
Processor = ProcessorDevice('StopProcessor')
Relay = RelayInterface(Processor, 'RLY1')
Relay.Pulse(600)
IR = IRInterface(Processor, 'IRS1', 'projector.eir')
IR.PlayContinuous('Power')
stop_hooks.report('ran')
"""


def hooks(port: int) -> DeferredQueue[Any]:
    reports: DeferredQueue[Any] = DeferredQueue()
    module: Any = types.ModuleType("stop_hooks")
    module.PORT = port
    module.report = lambda value: reactor.callFromThread(reports.put, value)
    sys.modules["stop_hooks"] = module
    return reports


async def connectedProgram(sink: Sink, reports: DeferredQueue[Any]) -> tuple[int, list[Peer]]:
    """Wait for the program's top level: its two TCP links made; the listener's port."""
    assert await within(reports.get()) == ("bare", "Connected")
    listen = await within(reports.get())
    assert listen[:2] == ("listen", "Listening"), listen
    port = listen[2]
    assert await within(reports.get()) == "ran"
    peers = [await within(sink.made.get()), await within(sink.made.get())]
    return port, peers


def active() -> set[Any]:
    return {c for c in reactor.getDelayedCalls() if c.active()}  # type: ignore[attr-defined]


async def assertStopped(sink: Sink, listenerPort: int, before: set[Any]) -> None:
    # the server saw both links (the bare one and the handler's) closed
    await within(sink.lost.get())
    await within(sink.lost.get())
    # the program's server no longer listens
    client = await within(
        _connectFails(listenerPort),
    )
    assert client == "refused"
    assert active() - before == set()


def _connectFails(port: int) -> Deferred[str]:
    from twisted.internet.endpoints import TCP4ClientEndpoint

    d = TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(Protocol))

    def connected(p: Protocol) -> str:
        assert p.transport is not None
        p.transport.loseConnection()
        return "connected"

    return d.addCallbacks(connected, lambda f: "refused")


@pytest_twisted.ensureDeferred
async def test_program_stop_closes_every_interface_and_timer(
    tmp_path: Path, freshImports: None, quiet_reactor: list[Failure]
) -> None:
    sink = Sink()
    server = reactor.listenTCP(0, sink, interface="127.0.0.1")  # type: ignore[attr-defined]
    reports = hooks(server.getHost().port)
    main = tmp_path / "main.py"
    main.write_text(textwrap.dedent(PROGRAM))
    before = active()
    program = Program(reactor, name="stop-test")
    try:
        ran = program.runFile(main)
        ran.addErrback(lambda f: reports.put(("failed", f.getTraceback())))
        listenerPort, _ = await connectedProgram(sink, reports)
        ns = await within(ran)
        assert len(program.objects) >= 10
        assert ns["IR"].playing == ("Continuous", "Power", None)
        assert ns["Relay"].State == "Close"
        await within(program.stop())
        await assertStopped(sink, listenerPort, before)
        # what the program left in its objects: stopped, not just forgotten
        assert ns["Poll"].State == "Stopped"
        assert not ns["Bare"].link.connected and not ns["Handled"].link.connected
        assert ns["Datagrams"].link.state == "closed"
        assert ns["IR"].playing is None and ns["Relay"].State == "Open"
        assert not ns["Listener"].listening
    finally:
        await program.stop()  # again: harmless, and a failed test leaves nothing either
        sys.modules.pop("stop_hooks", None)
        await server.stopListening()


@pytest_twisted.ensureDeferred
async def test_twistd_program_service_stop_releases_the_same(
    tmp_path: Path, freshImports: None, quiet_reactor: list[Failure]
) -> None:
    sink = Sink()
    server = reactor.listenTCP(0, sink, interface="127.0.0.1")  # type: ignore[attr-defined]
    reports = hooks(server.getHost().port)
    main = tmp_path / "main.py"
    main.write_text(textwrap.dedent(PROGRAM))
    before = active()
    service = ProgramService(reactor, str(main), Registry(clock=reactor))
    try:
        service.startService()
        listenerPort, _ = await connectedProgram(sink, reports)
        await within(service.stopService())
        await assertStopped(sink, listenerPort, before)
    finally:
        if service.running:
            await service.stopService()
        sys.modules.pop("stop_hooks", None)
        await server.stopListening()


def trackedRuntime(clock: Clock) -> tuple[Runtime, ProgramObjects]:
    dispatcher = ReactorDispatcher()
    return Runtime(clock, dispatcher), ProgramObjects.forThread(dispatcher, clock)


class Backend:
    def __init__(self) -> None:
        self.applied: list[tuple[str, str, object]] = []

    def apply(self, port: Any, setting: str, value: object) -> None:
        self.applied.append((port.Port, setting, value))


def test_release_leaves_no_delayed_call() -> None:
    clock = Clock()
    runtime, objects = trackedRuntime(clock)
    backend = Backend()
    endpoint = FakeEndpoint(clock)
    with useRuntime(runtime):
        timer = Timer(1, lambda t, n: None)
        Wait(5, lambda: None)
        schedule = ScheduleClock(["03:00:00"], None, lambda c, t: None)
        schedule.Enable()
        panel = UIDevice("Unit")
        panel.SetInactivityTime([30])
        panel.ShowPopup("P", 10)
        button = Button(panel, 1, holdTime=1, repeatTime=0.5)
        button.press()
        host = ProcessorDevice("UnitHost")
        relay = RelayInterface(host, "RLY1", backend=backend)
        relay.Pulse(5)
        ir = IRInterface(host, "IRS1", "tv.eir", backend=backend)
        ir.PlayTime("Power", 30)
        link = EndpointInterface(endpoint, connectionOriented=False, reopenDelay=2)
    assert len(objects) == 7  # the timer, wait, clock, panel (with its button), relay, IR, link
    assert clock.getDelayedCalls() != []
    applied = len(backend.applied)
    released = objects.release()
    assert not released.called  # the link is closing
    clock.advance(0)  # its transport is gone
    assert released.called
    assert clock.getDelayedCalls() == []
    assert timer.State == "Stopped" and relay.State == "Open" and ir.playing is None
    # the hardware is told: the IR emitter stops, the pulsed relay opens
    assert sorted(backend.applied[applied:]) == [("IRS1", "Play", None), ("RLY1", "State", "Open")]
    # a pipe link does not reopen after its release
    assert link.link.state == "closed"
    clock.advance(10)
    assert clock.getDelayedCalls() == [] and len(endpoint.attempts) == 1


def test_objects_made_by_another_runtime_are_not_tracked() -> None:
    clock = Clock()
    _, objects = trackedRuntime(clock)
    Timer(1, lambda t, n: None, reactor=clock)  # Twisted code's own: not the program's
    assert len(objects) == 0


def test_an_object_created_after_release_is_released_at_once() -> None:
    clock = Clock()
    runtime, objects = trackedRuntime(clock)
    objects.release()
    posted: list[Any] = []
    clock.callFromThread = lambda f, *a: posted.append((f, a))  # type: ignore[attr-defined]
    with useRuntime(runtime):
        timer = Timer(1, lambda t, n: None)
    assert timer.State == "Running" and len(posted) == 1
    f, args = posted[0]
    f(*args)
    assert timer.State == "Stopped" and clock.getDelayedCalls() == []
