# -*- test-case-name: tests.test_parity -*-
"""
Reference parity, second round (issue 20 items 2-8): what a program written and tested on the
processor sees, on a Clock and over loopback, on both faces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Recorder
from test_fidelity import ANSWER, FACES, Face, bounded, moduleHandler, sleep
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from twisted_ch import GetConnectionHandler, RawSimplePipeHandler, RawTcpHandler
from twisted_ch._runtime import Runtime, useRuntime
from twisted_ch.devices import extr_sis_generic as sis
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import FakeEndpoint, listenDevice, listenSIS, listenUDPDevice, waitUntil
from twisted_ch.testing._sis import SISDevice, SISPump


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """Every log event while the test runs."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)


def failures(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "log_failure" in e]


# --- 2. a string keep-alive that names no Update command --------------------------------------


class InputlessModule(EthernetClientInterface):
    """A Global Scripter module's shape, with UpdatePower but no UpdateInput."""

    def UpdatePower(self, value: Any, qualifier: Any) -> None:
        self.Send("PWR?\r")

    def Update(self, command: str, qualifier: Any = None) -> None:
        getattr(self, "Update" + command)(None, qualifier)

    def SubscribeStatus(self, command: str, qualifier: Any, callback: Any) -> None:
        pass


def test_a_keepAliveQuery_naming_no_Update_command_builds_a_raw_handler_that_polls_nothing(
    logged: list[dict[str, Any]],
) -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    module = InputlessModule("192.0.2.1", 23, reactor=clock, endpoint=ep)
    h = GetConnectionHandler(module, "Input", pollFrequency=1, DisconnectLimit=2)
    assert type(h) is RawTcpHandler  # as the reference builds it
    errors = [e for e in logged if e["log_level"] == LogLevel.error]
    assert len(errors) == 1
    text = errors[0]["log_format"].format(**errors[0])
    assert "'Input'" in text and "'Power'" in text and "InputlessModule" in text, text
    rec = Recorder()
    rec.hook(h, "Connected", "Disconnected")
    h.Connect()
    clock.pump([1] * 20)
    assert ep.written() == b""  # nothing sent, so never Connected, never dropped
    assert h.ConnectionStatus == "Unknown" and rec.names() == [] and len(ep.attempts) == 1
    assert h.polls == 20
    assert failures(logged) == []  # no traceback per poll
    assert len([e for e in logged if e["log_level"] == LogLevel.error]) == 1
    done = h.Disconnect()
    clock.advance(0)
    assert result(done) is None


def test_a_string_keepAliveQuery_on_a_plain_serial_interface_builds_a_pipe_handler(
    logged: list[dict[str, Any]],
) -> None:
    clock = Clock()
    iface = EthernetClientInterface(
        "192.0.2.1", 5000, Protocol="UDP", reactor=clock, endpoint=FakeEndpoint(clock)
    )
    h = GetConnectionHandler(iface, "Power")
    assert type(h) is RawSimplePipeHandler
    errors = [e for e in logged if e["log_level"] == LogLevel.error]
    assert len(errors) == 1 and "it has no Update commands" in errors[0]["available"]


@bounded(20)
async def test_a_program_with_a_missing_Update_command_runs_over_loopback(
    logged: list[dict[str, Any]],
) -> None:
    device = listenDevice(reactor, {b"PWR?\r": b"PWR1\r\n"})
    h = GetConnectionHandler(
        InputlessModule("127.0.0.1", device.port), "Input", pollFrequency=0.1, DisconnectLimit=2
    )
    try:
        assert await h.Connect() == "Connected"
        await sleep(0.6)
        assert h.ConnectionStatus == "Unknown" and h.polls >= 3
        assert device.received == [] and h.Interface.link.connected
        assert failures(logged) == []
    finally:
        await h.Disconnect()
        await device.shutdown()


# --- 3. a module handler's OnDisconnected() keeps the link ------------------------------------


def sisRig(**kw: Any) -> tuple[Clock, FakeEndpoint, Any, Any, SISPump, Recorder]:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    device = SISDevice()
    with useRuntime(Runtime(clock)):
        module = kw.pop("moduleClass", sis.EthernetClass)(
            "192.0.2.1", 23, Model="DVS 605", endpoint=endpoint
        )
        handler = GetConnectionHandler(module, kw.pop("keepAlive", "VideoMute"), **kw)
    rec = Recorder()
    rec.hook(handler, "Connected", "Disconnected")
    pump = SISPump(endpoint, device, banner=True)
    return clock, endpoint, module, handler, pump, rec


def advance(clock: Clock, pump: SISPump, seconds: float) -> None:
    for _ in range(round(seconds / 0.25)):
        clock.advance(0.25)
        pump.pump()


def test_a_module_OnDisconnected_called_by_the_program_keeps_the_tcp_link() -> None:
    clock, ep, module, h, pump, rec = sisRig(connectRetryTime=2, DisconnectLimit=5)
    h.Connect()
    pump.pump()
    advance(clock, pump, 1)
    assert rec.names() == ["Connected"]
    # the manual's Online/Offline example
    h.PollTimer.Pause()
    h.OnDisconnected()
    clock.advance(0)
    assert rec.names() == ["Connected", "Disconnected"]
    assert h.Interface.ReadStatus("ConnectionStatus") == "Disconnected"
    advance(clock, pump, 5)
    assert ep.transport is not None and not ep.transport.closed
    assert len(ep.attempts) == 1  # one connection, not a drop and a new one
    h.PollTimer.Restart()
    advance(clock, pump, 2)
    assert rec.names() == ["Connected", "Disconnected", "Connected"]
    assert len(ep.attempts) == 1


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_a_module_OnDisconnected_keeps_the_one_loopback_connection(
    face: str, logged: list[dict[str, Any]]
) -> None:
    server = listenSIS(reactor)
    try:
        async with moduleHandler(
            face, server, sis.EthernetClass, pollFrequency=0.1, DisconnectLimit=5,
            connectRetryTime=0.2,
        ) as (h, states, f):  # fmt: skip
            await h.whenStatus("Connected")
            await f.run(h.PollTimer.Pause)
            await f.run(h.OnDisconnected)
            await h.whenStatus("Disconnected")
            await sleep(0.5)
            await f.run(h.PollTimer.Restart)
            await h.whenStatus("Connected")
            text = "\n".join(formatEvent(e) for e in logged)
            assert states == ["Connected", "Disconnected", "Connected"], text
            assert server.connections == 1, text
    finally:
        await server.shutdown()


# --- 4. a second Connect() on a connected module handler --------------------------------------


class CountingConnects(sis.EthernetClass):
    connects = 0

    def Connect(self, timeout: float | None = None) -> Any:
        type(self).connects += 1
        return super().Connect(timeout)


def test_a_second_Connect_on_a_connected_module_handler_does_not_call_the_modules_Connect() -> None:
    CountingConnects.connects = 0
    clock, ep, module, h, pump, rec = sisRig(moduleClass=CountingConnects)
    assert result(h.Connect()) == "Connected"
    pump.pump()
    advance(clock, pump, 1)
    assert h.ConnectionStatus == "Connected"
    assert result(h.Connect()) == "ConnectedAlready"
    assert CountingConnects.connects == 1
    assert len(ep.attempts) == 1


@pytest.mark.parametrize("face", FACES)
@bounded(30)
async def test_a_second_Connect_over_loopback_calls_the_modules_Connect_once(face: str) -> None:
    CountingConnects.connects = 0
    server = listenSIS(reactor)
    try:
        async with moduleHandler(
            face, server, CountingConnects, pollFrequency=0.1, DisconnectLimit=5
        ) as (h, states, f):
            await h.whenStatus("Connected")
            assert await f.run(h.Connect) == "ConnectedAlready"
            assert CountingConnects.connects == 1 and server.connections == 1
    finally:
        await server.shutdown()


# --- 5. a module Update that raises before it sends -------------------------------------------


class RaisingUpdate(sis.EthernetClass):
    """Its keep-alive Update raises before sending (a module bug), until C{fixed}."""

    fixed = False

    def UpdateVideoMute(self, value: Any, qualifier: Any) -> None:
        if not self.fixed:
            raise KeyError("Tag")
        super().UpdateVideoMute(value, qualifier)


def test_an_Update_that_raises_before_sending_is_not_counted_and_reported_once(
    logged: list[dict[str, Any]],
) -> None:
    clock, ep, module, h, pump, rec = sisRig(
        moduleClass=RaisingUpdate, DisconnectLimit=3, connectRetryTime=1
    )
    h.Connect()
    pump.pump()
    advance(clock, pump, 10)  # ten polls, each raising
    assert h.ConnectionStatus == "Unknown"  # the reference: Unknown, the link kept
    assert len(ep.attempts) == 1 and ep.transport is not None and not ep.transport.closed
    assert h.missedPolls == 0
    raised = [e for e in failures(logged) if e.get("query") == "VideoMute"]
    raised = [e for e in raised if e["log_level"] != LogLevel.debug]
    assert len(raised) == 1  # the first, with its traceback (the others: debug)
    assert raised[0]["log_level"] == LogLevel.error and "KeyError" in raised[0]["error"]
    advance(clock, pump, 60)
    counts = [e for e in logged if "repeated" in e and e.get("query") == "VideoMute"]
    assert counts and counts[0]["repeated"] >= 50  # then a count
    module.fixed = True
    advance(clock, pump, 2)
    assert rec.names() == ["Connected"]
    done = h.Disconnect()
    advance(clock, pump, 1)
    assert result(done) is None
    assert clock.getDelayedCalls() == []


@bounded(20)
async def test_an_Update_that_raises_over_loopback_keeps_the_link() -> None:
    server = listenSIS(reactor)
    try:
        async with moduleHandler(
            "reactor", server, RaisingUpdate, pollFrequency=0.1, DisconnectLimit=2,
            connectRetryTime=0.2,
        ) as (h, states, f):  # fmt: skip
            await sleep(1.2)
            assert states == [] and server.connections == 1
            h.Interface.fixed = True
            await h.whenStatus("Connected")
            assert server.connections == 1
    finally:
        await server.shutdown()


# --- 6. the PollTimer is an extronlib Timer: at least 0.1 s -----------------------------------


def test_a_pollFrequency_below_a_tenth_is_raised_to_it_with_a_warning(
    logged: list[dict[str, Any]],
) -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=ep)
    polls: list[float] = []
    h = GetConnectionHandler(iface, lambda h: polls.append(clock.seconds()), pollFrequency=0.05)
    assert h.PollTimer.Interval == 0.1
    warned = [e for e in logged if e["log_level"] == LogLevel.warn and "minimum" in e["log_format"]]
    assert len(warned) == 1 and warned[0]["asked"] == 0.05
    h.Connect()
    clock.pump([0.05] * 20)
    assert len(polls) == 10  # every 0.1 s, not every 0.05 s
    h.PollTimer.Change(0.005)  # the reference accepts it, as 0.1
    assert h.PollTimer.Interval == 0.1
    assert len([e for e in logged if e.get("asked") == 0.005]) == 1
    h.PollTimer.Change(0.25)
    assert h.PollTimer.Interval == 0.25
    with pytest.raises(ValueError, match="Interval must be positive"):
        h.PollTimer.Change(0)


@bounded(10)
async def test_a_program_changing_its_PollTimer_below_a_tenth_gets_a_tenth() -> None:
    f = Face("program")
    try:

        def program() -> tuple[float, float]:
            h = GetConnectionHandler(
                EthernetClientInterface("127.0.0.1", 9), lambda h: None, pollFrequency=0.01
            )
            first = h.PollTimer.Interval
            h.PollTimer.Change(0.005)
            return first, h.PollTimer.Interval

        assert await f.run(program) == (0.1, 0.1)
    finally:
        await f.stop()


# --- 7. a pipe handler reports Disconnected inside the send that passes the limit -------------


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_a_udp_pipe_reports_Disconnected_before_the_query_past_the_limit_goes_out(
    face: str,
) -> None:
    device = listenUDPDevice(reactor, {b"P": ANSWER})
    f = Face(face)
    order: list[str] = []

    if face == "reactor":

        async def keepAlive(h: Any) -> None:
            order.append("send")
            answer = await h.SendAndWait("P", 0.5, deliTag=b"\r\n")
            order.append("returned")
            if answer == ANSWER:
                h.ResponseAccepted()

    else:

        def keepAlive(h: Any) -> None:  # type: ignore[misc]
            order.append("send")
            answer = h.SendAndWait("P", 0.5, deliTag=b"\r\n")
            order.append("returned")
            if answer == ANSWER:
                h.ResponseAccepted()

    def make() -> Any:
        h = GetConnectionHandler(
            EthernetClientInterface("127.0.0.1", device.port, Protocol="UDP"),
            keepAlive,
            DisconnectLimit=2,
            pollFrequency=0.1,
        )
        h.Disconnected = lambda h, state: order.append(state)
        h.Connected = lambda h, state: order.append(state)
        return h

    h = await f.run(make)
    try:
        await f.run(h.Connect)
        await h.whenStatus("Connected")
        await waitUntil(reactor, lambda: order[-1:] == ["returned"])
        device.silent = True
        await h.whenStatus("Disconnected")
        await waitUntil(reactor, lambda: "Disconnected" in order and order[-1] == "returned")
        at = order.index("Disconnected")
        # the third unanswered send passes the limit: Disconnected is reported inside it, before
        # its query goes out and its wait ends, not one timeout later
        assert order[at - 1 : at + 2] == ["send", "Disconnected", "returned"], order
        assert order[at - 3 : at - 1] == ["send", "returned"], order
    finally:
        await f.run(h.Disconnect)
        await f.stop()
        await device.stop()


class UDPModule(EthernetClientInterface):
    """
    A Global Scripter module's shape over UDP: its keep-alive Update counts, says Disconnected
    once the count passes connectionCounter (before it sends, as Extron's modules do), then
    waits for the answer.
    """

    def __init__(self, port: int, order: list[str]) -> None:
        super().__init__("127.0.0.1", port, Protocol="UDP")
        self.order = order
        self.connectionCounter = 15
        self.counter = 0
        self.callbacks: dict[str, Any] = {}
        self.status: dict[str, Any] = {}

    def UpdatePower(self, value: Any, qualifier: Any) -> None:
        self.counter += 1
        if self.counter > self.connectionCounter:
            self.OnDisconnected()
        self.order.append(f"send {self.counter}")
        answer = self.SendAndWait("P", 0.5, deliTag=b"\r\n")
        self.order.append("returned")
        if answer == ANSWER:
            self.counter = 0
            self.WriteStatus("ConnectionStatus", "Connected")

    def Update(self, command: str, qualifier: Any = None) -> None:
        getattr(self, "Update" + command)(None, qualifier)

    def SubscribeStatus(self, command: str, qualifier: Any, callback: Any) -> None:
        self.callbacks[command] = callback

    def WriteStatus(self, command: str, value: Any, qualifier: Any = None) -> None:
        if self.status.get(command) != value:
            self.status[command] = value
            if command in self.callbacks:
                self.callbacks[command](command, value, qualifier)

    def OnDisconnected(self) -> None:
        self.WriteStatus("ConnectionStatus", "Disconnected")


@bounded(20)
async def test_a_udp_module_reports_Disconnected_inside_the_update_that_passes_the_limit() -> None:
    # a program's module over UDP: the handler's Disconnected runs inside the Update whose count
    # passes the limit, before its query goes out (the reference), not after its wait
    device = listenUDPDevice(reactor, {b"P": ANSWER})
    f = Face("program")
    order: list[str] = []

    def make() -> Any:
        module = UDPModule(device.port, order)
        h = GetConnectionHandler(module, "Power", DisconnectLimit=2, pollFrequency=0.1)
        h.Disconnected = lambda h, state: order.append(state)
        h.Connected = lambda h, state: order.append(state)
        return h

    h = await f.run(make)
    try:
        await f.run(h.Connect)
        await h.whenStatus("Connected")
        await waitUntil(reactor, lambda: order[-1:] == ["returned"])
        device.silent = True
        await h.whenStatus("Disconnected")
        await waitUntil(reactor, lambda: "Disconnected" in order and order[-1] == "returned")
        at = order.index("Disconnected")
        # the third unanswered update passes the limit (2): Disconnected comes inside it
        inside = ["send 2", "returned", "Disconnected", "send 3", "returned"]
        assert order[at - 2 : at + 3] == inside, order
    finally:
        await f.run(h.Disconnect)
        await f.stop()
        await device.stop()


# --- 8. dropping a link closes it gracefully (a FIN), aborted only past a bound ---------------


def test_a_silent_tcp_link_is_closed_gracefully_and_aborted_only_if_the_close_hangs() -> None:
    from helpers import tcpHandler

    from twisted_ch._link import CLOSE_GRACE

    clock, ep, h, rec = tcpHandler(DisconnectLimit=2, connectRetryTime=5)
    h.Connect()
    first = ep.transport
    clock.pump([1] * 3)  # the third send would pass the limit: dropped
    clock.advance(0)
    assert first is not None and first.closed and not first.aborted
    assert rec.names() == ["Disconnected"]
    clock.advance(5)  # reconnected
    second = ep.transport
    assert second is not None and second is not first
    second.peerStopsReading = True  # a close that cannot complete
    clock.pump([1] * 3)
    assert not second.closed and not second.aborted
    assert h.Send("X") is None  # nothing more is written while it closes
    clock.advance(CLOSE_GRACE)
    clock.advance(0)
    assert second.aborted
    assert len(ep.attempts) == 2
    clock.advance(5)
    assert len(ep.attempts) == 3  # reconnecting goes on


def test_an_idle_server_client_is_closed_gracefully_and_aborted_only_if_the_close_hangs() -> None:
    from test_server import clockServer, connected

    from twisted_ch._link import CLOSE_GRACE

    clock, h, ev = clockServer(serverTimeout=10)
    h.StartListen()
    t = connected(clock)
    clock.advance(10)
    assert t.closed and not t.aborted
    stuck = connected(clock)
    stuck.peerStopsReading = True
    clock.advance(10)
    assert not stuck.closed
    clock.advance(CLOSE_GRACE)
    assert stuck.aborted
    clock.advance(0)
    assert h.Clients == []


class _Peer(Protocol):
    """A loopback device or client that records how its connection ended."""

    def __init__(self, ends: list[str]) -> None:
        self.ends = ends

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.ends.append(type(reason.value).__name__)


@pytest.mark.parametrize("face", FACES)
@bounded(20)
async def test_the_silent_device_sees_a_FIN(face: str) -> None:
    ends: list[str] = []
    factory = Factory.forProtocol(lambda: _Peer(ends))
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    f = Face(face)
    h = await f.run(
        lambda: GetConnectionHandler(
            EthernetClientInterface("127.0.0.1", listening.getHost().port),
            lambda h: h.Send("P"),
            DisconnectLimit=2,
            pollFrequency=0.1,
            connectRetryTime=60,
        )
    )
    try:
        await f.run(h.Connect)
        await waitUntil(reactor, lambda: ends != [])
        assert ends == ["ConnectionDone"]  # a FIN, not a reset (ConnectionLost)
    finally:
        await f.run(h.Disconnect)
        await f.stop()
        await listening.stopListening()


@bounded(20)
async def test_an_idle_loopback_client_of_a_server_sees_a_FIN() -> None:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from twisted_ch.extronlib.interface import EthernetServerInterfaceEx
    from twisted_ch.testing._loopback import stablePorts

    for port in stablePorts():
        server = GetConnectionHandler(
            EthernetServerInterfaceEx(port, Interface="127.0.0.1"), serverTimeout=0.3
        )
        if await server.StartListen() == "Listening":
            break
    ends: list[str] = []
    try:
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), _Peer(ends))
        await waitUntil(reactor, lambda: ends != [])
        assert ends == ["ConnectionDone"]
    finally:
        await server.StopListen()
