"""
Issue 10's measured cases, on real loopback sockets: the reference implementation's behaviour,
on both faces (Twisted code on the reactor, ControlScript code on a program thread).

  1. a device that accepts TCP but never answers       test_black_hole_is_never_Connected
  2. a device answering every query late                test_late_answers_stay_Connected
  3. a program's commands to a device that stopped      test_program_sends_the_device_ignores
     answering
  4. silence, then the device is back                   test_one_outage_one_pair_of_events
  5. refused at start, then listening                   test_refused_at_start_then_listening
  6. a module's handshake in Connect; its password      test_module_handshake_in_Connect_every_
     login after every reconnect                        reconnect, test_module_password_login_...
  7. a module's delayed send after a drop               test_module_send_after_a_drop_is_one_warning

and the cost of those module rules to other modules: a module device that never completes the
connect blocks no other module (test_a_module_device_that_never_completes_the_connect_...), while
nothing else the handler calls runs on a module during its Connect (test_nothing_the_handler_...).

The time scale is shrunk (pollFrequency 0.1 s rather than 0.5 s) so that each runs in seconds.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import pytest_twisted
from helpers import LoggedEvents
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import deferLater

import twisted_ch.devices.extr_sis_generic as sis
from twisted_ch import GetConnectionHandler, LinkDown
from twisted_ch._runtime import ProgramThread
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import DeviceServer, SimulatedDevice, listenDevice, listenSIS, waitUntil
from twisted_ch.testing._sis import SISDevice, SISServer

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])
ANSWER = b"Pwr1\r\n"
FACES = ["reactor", "program"]


def bounded(seconds: float) -> Callable[[F], F]:
    """An async test on the global reactor, failed (never hung) after C{seconds}."""

    def decorate(test: F) -> F:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            await ensureDeferred(test(*args, **kwargs)).addTimeout(seconds, reactor)

        return pytest_twisted.ensureDeferred(run)  # type: ignore[no-any-return]

    return decorate


def sleep(seconds: float) -> Any:
    return deferLater(reactor, seconds, lambda: None)


def keepAliveFor(face: str, timeout: float) -> Callable[[Any], Any]:
    """The manual's synchronous keep-alive, for the face: SendAndWait, ResponseAccepted if good."""
    if face == "reactor":

        async def onReactor(h: Any) -> None:
            if await h.SendAndWait("P", timeout, deliTag=b"\r\n") == ANSWER:
                h.ResponseAccepted()

        return onReactor

    def onProgramThread(h: Any) -> None:
        if h.SendAndWait("P", timeout, deliTag=b"\r\n") == ANSWER:
            h.ResponseAccepted()

    return onProgramThread


class Face:
    """Builds and drives a handler as Twisted code or as ControlScript program code would."""

    def __init__(self, face: str) -> None:
        self.face = face
        self.thread: ProgramThread | None = None
        if face == "program":
            self.thread = ProgramThread(reactor)
            self.thread.start()

    async def run(self, f: Callable[..., Any], *args: Any) -> Any:
        """Call C{f} where this face's code runs (a program thread blocks there)."""
        if self.thread is None:
            return await ensureDeferred(_awaitable(f(*args)))
        return await self.thread.run(f, *args)

    async def stop(self) -> None:
        if self.thread is not None:
            await self.thread.stop()


async def _awaitable(value: Any) -> Any:
    if hasattr(value, "addCallback") or hasattr(value, "__await__"):
        return await value
    return value


@asynccontextmanager
async def rawHandler(
    face: str, port: int, timeout: float = 0.5, **kw: Any
) -> AsyncIterator[tuple[Any, list[str], Face]]:
    """A RawTcpHandler for C{port} made and connected by C{face}; yields it and its states."""
    f = Face(face)
    keepAlive = keepAliveFor(face, timeout)
    h = await f.run(
        lambda: GetConnectionHandler(EthernetClientInterface("127.0.0.1", port), keepAlive, **kw)
    )
    states: list[str] = []
    h.addStatusObserver(states.append)
    try:
        await f.run(h.Connect)
        yield h, states, f
    finally:
        await h.Disconnect()
        await f.stop()


# --- 1. a black hole --------------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_black_hole_is_never_Connected(face: str) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})
    device.silent = True  # accepts TCP, reads, never answers
    try:
        async with rawHandler(
            face, device.port, timeout=0.05, pollFrequency=0.1, DisconnectLimit=2,
            connectRetryTime=0.2,
        ) as (h, states, _):  # fmt: skip
            await waitUntil(reactor, lambda: h.reconnects >= 4)
            # one Disconnected after the limit, then quiet reconnecting; never Connected
            assert states == ["Disconnected"]
            assert h.transitions == 1
            assert h.polls >= 2 * 4
    finally:
        await device.shutdown()


# --- 2. answers that come late -----------------------------------------------------------------


class LateDevice(SimulatedDevice):
    """Answers each C{P} C{server.delay} seconds after it arrived."""

    def __init__(self, server: DeviceServer) -> None:
        super().__init__(server)
        self.pending: list[IDelayedCall] = []

    def dataReceived(self, data: bytes) -> None:
        for _ in range(data.count(b"P")):
            self.server.requests += 1
            self.pending.append(reactor.callLater(self.server.delay, self._answer))  # type: ignore[attr-defined]

    def _answer(self) -> None:
        if self.transport is not None:
            self.transport.write(ANSWER)

    def connectionLost(self, reason: Any = None) -> None:
        for call in self.pending:
            if call.active():
                call.cancel()
        super().connectionLost(reason)


class LateServer(DeviceServer):
    delay = 0.24

    def buildProtocol(self, addr: Any) -> SimulatedDevice:
        return LateDevice(self)


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_late_answers_stay_Connected(face: str) -> None:
    # every answer comes 2.4 poll intervals late: the ticks meanwhile are skipped, not counted
    device = LateServer(reactor, {})
    device.start()
    try:
        async with rawHandler(
            face, device.port, timeout=0.6, pollFrequency=0.1, DisconnectLimit=2,
            connectRetryTime=0.2,
        ) as (h, states, _):  # fmt: skip
            await h.whenStatus("Connected")
            requests = device.requests
            await sleep(2)
            assert device.requests >= requests + 5
            assert states == ["Connected"]
            assert h.reconnects == 0
    finally:
        await device.shutdown()


# --- 3. commands the device ignores ------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_program_sends_the_device_ignores(face: str) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})
    try:
        async with rawHandler(
            face, device.port, pollFrequency=0.1, DisconnectLimit=3, connectRetryTime=5
        ) as (h, states, f):
            await h.whenStatus("Connected")
            h.PollTimer.Pause()  # only the program's own commands from now on
            await sleep(0.2)  # let a keep-alive under way finish
            device.silent = True
            link = h.Interface.link

            def commands(n: int) -> list[str]:
                results = []
                for _ in range(n):
                    try:
                        results.append(repr(h.Send("GO")))
                    except LinkDown:
                        results.append("LinkDown")
                return results

            assert await f.run(commands, 3) == ["None"] * 3
            assert h.ConnectionStatus == "Connected"
            assert h.missedPolls == 3
            await waitUntil(reactor, lambda: b"".join(device.received).count(b"GO") == 3)
            # the 4th would pass DisconnectLimit: the link is dropped instead of sending it, and
            # like the 5th it returns None (the reference's rule: a send to a device that is down
            # never raises)
            assert await f.run(commands, 2) == ["None"] * 2
            await h.whenStatus("Disconnected")
            await waitUntil(reactor, lambda: not link.connected)
            assert states == ["Connected", "Disconnected"]
            assert b"".join(device.received).count(b"GO") == 3
    finally:
        await device.shutdown()


# --- 4. silence, then back ----------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@bounded(25)
async def test_one_outage_one_pair_of_events(face: str) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})
    try:
        async with rawHandler(
            face, device.port, timeout=0.05, pollFrequency=0.1, DisconnectLimit=2,
            connectRetryTime=0.2,
        ) as (h, states, _):  # fmt: skip
            await h.whenStatus("Connected")
            device.silent = True
            await h.whenStatus("Disconnected")
            reconnects = h.reconnects
            await waitUntil(reactor, lambda: h.reconnects >= reconnects + 3)
            assert states == ["Connected", "Disconnected"]  # reconnecting is not an answer
            device.silent = False
            await h.whenStatus("Connected")
            await sleep(0.5)
            assert states == ["Connected", "Disconnected", "Connected"]
    finally:
        await device.shutdown()


# --- 5. refused at start, then listening -------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_refused_at_start_then_listening(face: str) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})
    port = device.port
    await device.stop()  # refused while away (the port is kept for start())
    try:
        async with rawHandler(face, port, pollFrequency=0.1, connectRetryTime=0.1) as (
            h,
            states,
            f,
        ):
            failures: list[str] = []
            h.ConnectFailed = lambda _, reason: failures.append(reason)
            await waitUntil(reactor, lambda: len(failures) >= 3)
            assert set(failures) == {"Connection refused"}
            assert h.ConnectionStatus == "Unknown" and states == []
            assert h.stats()["lastError"] == "Connection refused"
            device.start()
            await h.whenStatus("Connected")
            assert states == ["Connected"]
    finally:
        await device.shutdown()


# --- 6. module overrides -------------------------------------------------------------------------


class HandshakeModule(sis.EthernetClass):  # type: ignore[misc]
    """The SIS module with a protocol handshake in Connect, as projector modules have."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.handshakes = 0
        self.greetingTime = 0.2

    def Connect(self, timeout: float | None = None) -> Any:
        result = sis.EthernetClass.Connect(self, timeout)
        if result in ("Connected", "ConnectedAlready"):
            self.handshakes += 1
            self.Send("F")  # a query the device answers, never a password here
        return result


@asynccontextmanager
async def moduleHandler(
    face: str, server: SISServer, moduleClass: type[Any], **kw: Any
) -> AsyncIterator[tuple[Any, list[str], Face]]:
    f = Face(face)

    def make() -> Any:
        module = moduleClass("127.0.0.1", server.port, Model="DVS 605")
        module.greetingTime = 0.2
        module.devicePassword = "abc123"
        return GetConnectionHandler(module, "VideoMute", **kw)

    h = await f.run(make)
    states: list[str] = []
    h.addStatusObserver(states.append)
    try:
        await f.run(h.Connect)
        yield h, states, f
    finally:
        await h.Disconnect()
        await f.stop()


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_module_handshake_in_Connect_every_reconnect(face: str) -> None:
    server = listenSIS(reactor)
    try:
        async with moduleHandler(
            face, server, HandshakeModule, pollFrequency=0.1, DisconnectLimit=4,
            connectRetryTime=0.2,
        ) as (h, states, _):  # fmt: skip
            await h.whenStatus("Connected")
            for _ in range(2):  # the device drops the connection
                server.dropClients()
                await h.whenStatus("Disconnected")
                await h.whenStatus("Connected")
            for _ in range(2):  # the device goes silent, then answers again
                server.silent = True
                await h.whenStatus("Disconnected")
                await waitUntil(reactor, lambda n=h.reconnects: h.reconnects > n)
                server.silent = False
                await h.whenStatus("Connected")
            module = h.Interface
            assert module.handshakes == server.connections >= 5
            # sent on every connection (those made while silent were read, not executed)
            assert b"".join(server.received).count(b"F") == server.connections
            assert states == ["Connected", "Disconnected"] * 4 + ["Connected"]
    finally:
        await server.shutdown()


@pytest.mark.parametrize("face", FACES)
@bounded(40)
async def test_module_password_login_succeeds_after_every_reconnect(
    face: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    monkeypatch.setattr(sis, "ProgramLog", lambda entry, severity="error": log.append(entry))
    server = listenSIS(reactor, SISDevice(password="abc123"))
    try:
        async with moduleHandler(
            face, server, sis.EthernetClass, pollFrequency=0.1, DisconnectLimit=4,
            connectRetryTime=0.2,
        ) as (h, states, _):  # fmt: skip
            await h.whenStatus("Connected")
            # a device that hangs after its password prompt: each reconnect is prompted, the
            # module answers, nothing comes back; the link is dropped quietly, again and again
            server.mute = True
            await h.whenStatus("Disconnected")
            await waitUntil(reactor, lambda: server.connections >= 4)
            server.mute = False
            await h.whenStatus("Connected")
            server.dropClients()  # and a plain drop
            await h.whenStatus("Disconnected")
            await h.whenStatus("Connected")
            device = server.device
            # every session was prompted once and answered once, with the right password (a
            # muted device reads the attempt without executing it)
            sent = b"".join(server.received)
            assert sent.count(b"abc123\r") == server.connections
            assert device.passwordAttempts == [b"abc123"] * 3
            assert device.logins == 3
            assert not [e for e in log if "Log in failed" in e], log
            assert h.Interface.Authenticated == "Admin"
            assert states == ["Connected", "Disconnected", "Connected", "Disconnected", "Connected"]
    finally:
        await server.shutdown()


# --- 7. a module's delayed send after a drop ----------------------------------------------------


class DelayedSendModule(sis.EthernetClass):  # type: ignore[misc]
    """Sends a follow-up command a while after each Update, without catching a send error."""

    followUp = 0.15

    def UpdateVideoMute(self, value: Any, qualifier: Any) -> None:
        super().UpdateVideoMute(value, qualifier)
        sis.Wait(self.followUp, lambda: self.Send("F"))


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_module_send_after_a_drop_is_one_warning_per_outage(face: str) -> None:
    server = listenSIS(reactor)
    try:
        with LoggedEvents() as events:
            async with moduleHandler(
                face, server, DelayedSendModule, pollFrequency=0.05, DisconnectLimit=8,
                connectRetryTime=0.4,
            ) as (h, states, _):  # fmt: skip
                await h.whenStatus("Connected")
                for _ in range(2):
                    server.dropClients()
                    await h.whenStatus("Disconnected")
                    await h.whenStatus("Connected")
                await sleep(0.3)
                seen = [e for e in events if e.get("link") == h.Interface.link.description]
    finally:
        await server.shutdown()
    assert [e for e in events if "log_failure" in e] == []  # no traceback
    warnings = [e for e in seen if "sent while the link is down" in e["log_format"]]
    assert 1 <= len(warnings) <= 2  # two outages: at most one warning each
    assert all(e["log_level"].name == "warn" for e in warnings)


# --- a module device that never completes the connect costs the other modules nothing ----------


class BlackHolePort:
    """
    A loopback port that refuses connections, until L{swallow}: then it never completes a TCP
    handshake (a listener that never accepts, its accept queue full, drops every SYN).
    """

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))  # bound, not listening: refused
        self.port = self.socket.getsockname()[1]
        self.fillers: list[socket.socket] = []

    def swallow(self) -> None:
        self.socket.listen(0)
        self.fillers.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))

    def close(self) -> None:
        for s in [*self.fillers, self.socket]:
            s.close()


class WatchedModule(sis.EthernetClass):  # type: ignore[misc]
    """The SIS module noting any of its Connect/Disconnect/OnDisconnected/Update that overlap."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[str] = []
        self.running: list[str] = []
        self.overlaps: list[tuple[str, ...]] = []

    def _watch(self, name: str, method: Callable[..., Any], *args: Any) -> Any:
        if self.running:
            self.overlaps.append((*self.running, name))
        self.running.append(name)
        self.calls.append(name)
        try:
            return method(*args)
        finally:
            self.running.remove(name)

    def Connect(self, timeout: float | None = None) -> Any:
        return self._watch("Connect", super().Connect, timeout)

    def Disconnect(self) -> Any:
        return self._watch("Disconnect", sis.EthernetClass.Disconnect, self)

    def OnDisconnected(self) -> None:
        if self.running[-1:] == ["Disconnect"]:  # the SIS module's Disconnect calls it
            super().OnDisconnected()
        else:
            self._watch("OnDisconnected", super().OnDisconnected)

    def Update(self, command: str, qualifier: Any = None) -> None:
        self._watch("Update", super().Update, command, qualifier)


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_a_module_device_that_never_completes_the_connect_blocks_no_other_module(
    face: str,
) -> None:
    # issue 10's reconnect through the module's own Connect(timeout) ran on the thread the
    # module's code shares with the other modules (the reactor's module thread, or the program
    # thread that made them): an attempt on a black hole stopped every one of them until it timed
    # out (default 10 s)
    server = listenSIS(reactor)
    hole = BlackHolePort()
    f = Face(face)
    hh = hd = None
    try:

        def make() -> tuple[Any, Any]:
            healthy = sis.EthernetClass("127.0.0.1", server.port, Model="DVS 605")
            dead = WatchedModule("127.0.0.1", hole.port, Model="DVS 605")
            healthy.greetingTime = dead.greetingTime = 0.2
            return (
                GetConnectionHandler(healthy, "VideoMute", pollFrequency=0.1, DisconnectLimit=8),
                GetConnectionHandler(
                    dead, "VideoMute", pollFrequency=0.1, DisconnectLimit=8, connectRetryTime=0.2
                ),
            )

        hh, hd = await f.run(make)
        failures: list[str] = []
        hd.ConnectFailed = lambda h, reason: failures.append(reason)
        await f.run(hh.Connect)
        await hh.whenStatus("Connected")
        # refused at once; the handler retries with the same (long) timeout
        assert await f.run(hd.Connect, 60) == "Connection refused"
        hole.swallow()
        link = hd.Interface.link
        await waitUntil(reactor, lambda: hd.reconnects >= 1 and link.state == "connecting")

        # while that attempt runs, the healthy module polls, its device answers, its Set returns
        polls, answered = hh.polls, len(server.device.commands)
        await waitUntil(reactor, lambda: hh.polls >= polls + 10)
        assert len(server.device.commands) >= answered + 9
        assert await f.run(hh.Set, "Freeze", "On") is None
        assert server.device.freeze == 1
        # ... and the attempt is still the one that started before
        assert link.state == "connecting" and failures == ["Connection refused"]
        assert hd.ConnectionStatus == "Unknown" and hh.ConnectionStatus == "Connected"
        assert hd.Interface.calls == ["Connect", "Connect"]

        # Disconnect cancels the attempt and calls the module's Disconnect once Connect returned
        await f.run(hd.Disconnect)
        assert link.state == "closed"
        dead = hd.Interface
        assert dead.calls[:3] == ["Connect", "Connect", "Disconnect"]
        assert dead.overlaps == []
    finally:
        if hd is not None:
            await hd.Disconnect()
        if hh is not None:
            await hh.Disconnect()
        await f.stop()
        hole.close()
        await server.shutdown()


class SlowHandshakeModule(WatchedModule):
    """A module whose Connect, once the link is up, waits for its handshake (for L{release})."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.release = threading.Event()
        self.release.set()
        self.inHandshake = threading.Event()

    def Connect(self, timeout: float | None = None) -> Any:
        def handshake(timeout: float | None) -> Any:
            result = sis.EthernetClass.Connect(self, timeout)
            self.inHandshake.set()
            self.release.wait(10)
            return result

        return self._watch("Connect", handshake, timeout)


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_nothing_the_handler_calls_runs_on_a_module_while_its_Connect_runs(
    face: str,
) -> None:
    # the module's Connect no longer runs on the module's thread: its polls, its OnDisconnected
    # and its Disconnect still wait for it, as when they shared that thread
    server = listenSIS(reactor)
    f = Face(face)
    h = None
    try:

        def make() -> Any:
            module = SlowHandshakeModule("127.0.0.1", server.port, Model="DVS 605")
            module.greetingTime = 0.2
            return GetConnectionHandler(
                module, "VideoMute", pollFrequency=0.05, DisconnectLimit=20, connectRetryTime=0.2
            )

        h = await f.run(make)
        module = h.Interface
        await f.run(h.Connect)
        await h.whenStatus("Connected")
        module.release.clear()
        module.inHandshake.clear()
        server.dropClients()
        await h.whenStatus("Disconnected")
        await waitUntil(reactor, module.inHandshake.is_set)
        # the link is up again and Connect still runs: ticks come, no Update is called
        calls, ticks = len(module.calls), h.PollTimer.Count
        await waitUntil(reactor, lambda: h.PollTimer.Count >= ticks + 5)
        assert module.calls[calls - 1 :] == ["Connect"]
        server.dropClients()  # lost meanwhile: OnDisconnected waits for Connect too
        await waitUntil(reactor, lambda: server.connections == 2 and not h.Interface.link.connected)
        await waitUntil(reactor, lambda: h.PollTimer.Count >= ticks + 10)
        assert module.calls[calls - 1 :] == ["Connect"]
        module.release.set()
        await h.whenStatus("Connected")
        assert module.calls[calls - 1 : calls + 1] == ["Connect", "OnDisconnected"]
        assert "Update" in module.calls[calls + 1 :]
        await f.run(h.Disconnect)
        assert module.overlaps == []
    finally:
        if h is not None:
            h.Interface.release.set()
            await h.Disconnect()
        await f.stop()
        await server.shutdown()


# --- the fleet service: its probes drive the same handlers, by the same rules -------------------


@bounded(25)
async def test_fleet_probes_follow_the_same_rules() -> None:
    from twisted_ch.service._config import DeviceConfig, ProbeConfig
    from twisted_ch.service._registry import Entry
    from twisted_ch.service._services import buildHandler
    from twisted_ch.testing import SIS_RESPONSES

    device = listenDevice(reactor, SIS_RESPONSES)
    port = device.port
    await device.stop()  # refused at start
    cfg = DeviceConfig(
        "switcher",
        f"tcp:host=127.0.0.1:port={port}",
        probe=ProbeConfig("sis", {"timeout": 0.05}),
        DisconnectLimit=2,
        pollFrequency=0.1,
        connectRetryTime=0.1,
    )
    h, probe = buildHandler(reactor, cfg)
    entry = Entry("switcher", h, cfg.endpoint, probe=probe)
    states: list[str] = []
    h.addStatusObserver(states.append)
    try:
        h.Connect()
        await waitUntil(reactor, lambda: h.reconnects >= 2)
        row = entry.row()
        # never reached: 'Unknown', with the last error on the status page
        assert (row["state"], row["lastError"]) == ("Unknown", "Connection refused")
        device.start()
        await h.whenStatus("Connected")
        device.silent = True  # a black hole: one Disconnected, then quiet reconnecting
        await h.whenStatus("Disconnected")
        reconnects = h.reconnects
        await waitUntil(reactor, lambda: h.reconnects >= reconnects + 3)
        assert entry.row()["state"] == "Disconnected"
        device.silent = False
        await h.whenStatus("Connected")
        assert states == ["Connected", "Disconnected", "Connected"]
    finally:
        await h.Disconnect()
        await device.shutdown()
