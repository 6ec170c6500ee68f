"""
Global Scripter module handlers (ModuleTcpHandler, ModuleSimplePipeHandler) with the SIS example
module (twisted_ch.devices.extr_sis_generic) and its simulator: routing, Clock-driven semantics,
the manual's module examples (program runner on loopback, Online/Offline on a Clock) and the
Twisted face's module thread.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from helpers import LoggedEvents, Recorder
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock, deferLater

import twisted_ch.devices.extr_sis_generic as sis
from twisted_ch import GetConnectionHandler, Runtime, useRuntime
from twisted_ch._modules import ModuleSimplePipeHandler, ModuleTcpHandler, moduleThread
from twisted_ch.extronlib.device import ProcessorDevice, SPDevice
from twisted_ch.program import Program
from twisted_ch.testing import FakeEndpoint, waitUntil
from twisted_ch.testing._sis import SISDevice, SISPump, SISServer, listenSIS

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])


def onReactor(seconds: float) -> Callable[[F], F]:
    """An async test on the global reactor, failed (never hung) after C{seconds}."""

    def decorate(test: F) -> F:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            d = ensureDeferred(test(*args, **kwargs))
            d.addTimeout(seconds, reactor)
            await d

        return pytest_twisted.ensureDeferred(run)  # type: ignore[no-any-return]

    return decorate


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


@pytest.fixture
def programLog(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What the SIS module writes to the program log."""
    entries: list[tuple[str, str]] = []
    monkeypatch.setattr(sis, "ProgramLog", lambda e, s="error": entries.append((e, s)))
    return entries


# --- Clock rigs ---------------------------------------------------------------------------------


@dataclass
class Rig:
    clock: Clock
    endpoint: FakeEndpoint
    device: SISDevice
    module: Any
    handler: Any
    pump: SISPump
    rec: Recorder

    def run(self, seconds: float, step: float = 0.5) -> None:
        """Advance the clock in steps; the device answers after each."""
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.pump.pump()

    def states(self) -> list[str]:
        return [n for n in self.rec.names() if n in ("Connected", "Disconnected")]


def rig(
    kind: str = "tcp",
    device: SISDevice | None = None,
    moduleClass: type[Any] = sis.EthernetClass,
    **kw: Any,
) -> Rig:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    device = device if device is not None else SISDevice()
    with useRuntime(Runtime(clock)):
        if kind == "tcp":
            module = moduleClass("192.0.2.1", 23, Model="DVS 605", endpoint=endpoint)
        else:
            host = ProcessorDevice("Main")
            module = sis.SerialClass(host, "COM1", Model="DVS 605", endpoint=endpoint)
        handler = GetConnectionHandler(module, kw.pop("keepAlive", "VideoMute"), **kw)
    rec = Recorder()
    rec.hook(handler, "Connected", "Disconnected")
    if kind == "tcp":
        rec.hook(handler, "ConnectFailed")
    pump = SISPump(endpoint, device, banner=kind == "tcp")
    return Rig(clock, endpoint, device, module, handler, pump, rec)


def connected(kind: str = "tcp", **kw: Any) -> Rig:
    r = rig(kind, **kw)
    r.handler.Connect()
    r.pump.pump()
    r.run(1)
    assert r.states() == ["Connected"]
    return r


class HttpModule:
    """The shape of a Global Scripter HTTP module: no interface; its Update makes the request."""

    ConnectionType = "HTTP"

    def __init__(self) -> None:
        self.connectionCounter = 15
        self.counter = 0
        self.answers = True
        self.updates: list[Any] = []
        self.callbacks: dict[str, Any] = {}
        self.status: dict[str, Any] = {}

    def UpdatePower(self, value: Any, qualifier: Any) -> None:
        self.updates.append(qualifier)
        self.counter += 1
        if self.answers:
            self.counter = 0
            self.WriteStatus("ConnectionStatus", "Connected")
        elif self.counter > self.connectionCounter:
            self.WriteStatus("ConnectionStatus", "Disconnected")

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


# --- routing ------------------------------------------------------------------------------------


def test_tcp_and_ssh_modules_get_ModuleTcpHandler() -> None:
    clock = Clock()
    for protocol in ("TCP", "SSH"):
        module = sis.EthernetClass(
            "192.0.2.1", 22023, protocol, reactor=clock, endpoint=FakeEndpoint(clock)
        )
        handler = GetConnectionHandler(module, "VideoMute")
        assert type(handler) is ModuleTcpHandler, protocol
        assert handler.Interface is module
        assert handler.keepAliveQuery == "VideoMute"


def test_udp_serial_sp_and_http_modules_get_ModuleSimplePipeHandler() -> None:
    clock = Clock()
    with useRuntime(Runtime(clock)):
        modules = [
            sis.EthernetClass("192.0.2.1", 5000, "UDP", endpoint=FakeEndpoint(clock)),
            sis.SerialClass(ProcessorDevice("P"), "COM1", endpoint=FakeEndpoint(clock)),
            sis.SPIClass(SPDevice("SP"), endpoint=FakeEndpoint(clock)),
        ]
    for module in modules:
        handler = GetConnectionHandler(module, "Input")
        assert type(handler) is ModuleSimplePipeHandler, module
    http = GetConnectionHandler(HttpModule(), "Power", reactor=clock)
    assert type(http) is ModuleSimplePipeHandler


@pytest.mark.parametrize("kind", ["serial", "tcp"])
def test_a_module_handler_logs_its_skipped_polls_once_per_running_Update(kind: str) -> None:
    # a module thread behind its polls skips most ticks: one debug line per Update running, not
    # one per tick (each costs the reactor its log observers); a skipped tick is not a poll
    r = connected(kind)
    driver = r.handler._driver
    before = r.handler.polls
    with LoggedEvents(text=True) as logged:
        for _ in range(2):
            driver._polling = True  # an Update still runs (as on a busy module thread)
            for _ in range(5):
                r.handler._pollTick(r.handler.PollTimer, 0)
            driver._polling = False
            r.handler._pollTick(r.handler.PollTimer, 0)  # the next Update runs
            r.pump.pump()
    skipped = [line for line in logged if "still running" in line]
    assert len(skipped) == 2 and "polls skipped until it ends" in skipped[0]
    assert r.handler.polls - before == 2  # the two that ran


def test_connectionCounter_is_set_from_DisconnectLimit() -> None:
    r = rig(DisconnectLimit=7)
    assert r.module.connectionCounter == 7
    assert r.handler.DisconnectLimit == 7
    serial = rig("serial", DisconnectLimit=3)
    assert serial.module.connectionCounter == 3


def test_unknown_keepAliveQuery_is_a_ValueError_for_the_module_handler_itself() -> None:
    # (GetConnectionHandler builds a raw handler for it, as the reference: tests/test_parity.py)
    clock = Clock()
    module = sis.EthernetClass("192.0.2.1", 23, reactor=clock, endpoint=FakeEndpoint(clock))
    with pytest.raises(ValueError, match="UpdatePower not found"):
        ModuleTcpHandler(module, 5, 1, "Power")
    with pytest.raises(TypeError, match="keepAliveQualifiers must be a dict"):
        ModuleTcpHandler(module, 5, 1, "VideoMute", "not a dict")  # type: ignore[arg-type]


def test_install_lets_device_modules_import_extronlib() -> None:
    import extronlib  # type: ignore[import-not-found]
    import extronlib.system  # type: ignore[import-not-found]

    import twisted_ch.extronlib
    import twisted_ch.extronlib.system

    assert extronlib is twisted_ch.extronlib
    assert extronlib.system.Wait is twisted_ch.extronlib.system.Wait
    twisted_ch.extronlib.install()  # idempotent
    assert sys.modules["extronlib.interface"] is twisted_ch.extronlib.interface
    # in a fresh interpreter, importing the device package is enough
    code = (
        "import sys\n"
        "assert 'extronlib' not in sys.modules\n"
        "import twisted_ch.devices.extr_sis_generic as m\n"
        "import extronlib.interface, twisted_ch.extronlib.interface as t\n"
        "assert issubclass(m.EthernetClass, t.EthernetClientInterface)\n"
        "assert m.ProgramLog is sys.modules['twisted_ch.extronlib.system'].ProgramLog\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout == "ok\n", done.stderr


# --- the simulator ------------------------------------------------------------------------------


def test_sis_session_commands_verbose_tagging_and_errors() -> None:
    device = SISDevice(inputs=4)
    s = device.session()
    assert s.greeting().startswith(b"(c) Copyright 2024, Extron Electronics, DVS 605, V1.05")
    assert s.feed(b"!") == b"1\r\n"  # verbose mode 0: bare values
    assert s.feed(b"3!") == b"In3 All\r\n"  # set answers are always tagged
    assert s.feed(b"\x1b3CV") == b"Vrb3\r\n"
    assert s.feed(b"!B") == b"In3 All\r\nVmt0\r\n"
    assert s.feed(b"2") == b""  # a command still arriving
    assert s.feed(b"B\r\n1F") == b"Vmt2\r\nFrz1\r\n"
    assert s.feed(b"F") == b"Frz1\r\n"
    assert s.feed(b"9!") == b"E01\r\n"
    assert s.feed(b"5B7F") == b"E13\r\nE13\r\n"
    assert s.feed(b"X12Q") == b"E10\r\nE10\r\n"
    assert (device.input, device.videoMute, device.freeze) == (3, 2, 1)
    assert device.commands[:3] == [b"!", b"3!", b"\x1b3CV"]


def test_sis_session_password_login() -> None:
    device = SISDevice(password="abc123")
    s = device.session()
    assert s.greeting().endswith(b"\r\n\r\nPassword:")
    assert s.feed(b"B") == b""  # taken as part of a password
    assert s.feed(b"\r") == b"\r\nPassword:"
    assert s.feed(b"abc1") == b""
    assert s.feed(b"23\r\nB") == b"\r\nLogin Administrator\r\n0\r\n"
    assert device.passwordAttempts == [b"B", b"abc123"]


# --- module handler semantics on a Clock --------------------------------------------------------


def test_Update_is_called_every_pollFrequency_with_the_qualifier() -> None:
    r = rig(pollFrequency=2, keepAliveQueryQualifier={"Output": "1"})
    calls: list[tuple[float, str, Any]] = []
    update = r.module.Update

    def spy(command: str, qualifier: Any = None) -> None:
        calls.append((r.clock.seconds(), command, qualifier))
        update(command, qualifier)

    r.module.Update = spy
    r.handler.Connect()
    r.pump.pump()
    r.run(7)
    assert calls == [(t, "VideoMute", {"Output": "1"}) for t in (2.0, 4.0, 6.0)]
    assert r.device.commands == [b"\x1b3CV", b"B", b"B", b"B"]
    assert r.states() == ["Connected"]
    assert r.module.ReadStatus("VideoMute") == "Off"


def test_silent_device_counter_passes_connectionCounter_disconnects_once_then_connects_once() -> (
    None
):
    r = connected("serial", DisconnectLimit=3)
    r.pump.silent = True
    r.run(3)  # polls 2, 3, 4: counter 1..3, not yet beyond the limit
    assert r.module.counter == 3
    assert r.states() == ["Connected"]
    r.run(1)  # the 4th unanswered update
    assert r.module.counter == 4
    assert r.states() == ["Connected", "Disconnected"]
    assert r.module.ReadStatus("ConnectionStatus") == "Disconnected"
    r.run(10)
    assert r.states() == ["Connected", "Disconnected"]
    r.pump.silent = False
    r.run(1)
    assert r.states() == ["Connected", "Disconnected", "Connected"]
    r.run(5)
    assert r.states() == ["Connected", "Disconnected", "Connected"]
    assert r.handler.transitions == 3


@pytest.mark.parametrize("kind", ["tcp", "serial"])
def test_misses_are_the_modules_unanswered_polls_for_both_module_handlers(kind: str) -> None:
    # /status misses: the one meaning of the send counter, the sends since the last good
    # answer (the module counts them: it parses the answers); was always 0 for a module
    r = connected(kind, DisconnectLimit=5)
    assert r.handler.missedPolls == 0 and r.handler.stats().misses == 0
    r.pump.silent = True
    r.run(3)
    assert r.module.counter == 3
    assert r.handler.missedPolls == 3 and r.handler.stats().misses == 3
    assert r.handler.ConnectionStatus == "Connected"
    r.pump.silent = False
    r.run(1)
    assert r.handler.stats().misses == 0


def test_a_handlers_stats_are_a_frozen_record() -> None:
    import dataclasses

    from twisted_ch._stats import LinkStats, statsRow

    r = connected("tcp")
    stats = r.handler.stats()
    assert isinstance(stats, LinkStats) and stats.status == "Connected"
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.misses = 3  # type: ignore[misc]
    assert statsRow(stats)["reconnects"] == stats.reconnects == 0


def test_tcp_drop_tells_the_module_and_reconnects_after_connectRetryTime() -> None:
    r = connected(connectRetryTime=3)
    first = r.endpoint.transport
    assert first is not None
    first.deviceResets()
    r.clock.advance(0)
    assert r.module.ReadStatus("ConnectionStatus") == "Disconnected"
    assert r.module.connectionFlag is False
    assert r.states() == ["Connected", "Disconnected"]
    r.clock.advance(2.9)
    assert len(r.endpoint.attempts) == 1
    r.clock.advance(0.1)  # connectRetryTime after the drop
    assert len(r.endpoint.attempts) == 2
    assert r.endpoint.transport is not first
    assert r.states() == ["Connected", "Disconnected"]  # the module, not TCP, says Connected
    assert r.module.Authenticated == "Pending"  # waiting for the banner of the new session
    r.pump.pump()
    r.run(1.5)
    assert r.states() == ["Connected", "Disconnected", "Connected"]
    assert r.device.commands.count(b"\x1b3CV") == 2  # verbose mode again for the new session


def test_a_lost_serial_port_tells_the_module_and_is_reopened(
    programLog: list[tuple[str, str]],
) -> None:
    r = connected("serial", connectRetryTime=3)
    assert r.endpoint.transport is not None
    r.endpoint.transport.deviceResets()
    r.clock.advance(0)
    assert r.states() == ["Connected", "Disconnected"]
    assert r.module.ReadStatus("ConnectionStatus") == "Disconnected"
    r.endpoint.refuse = True  # the port cannot be opened again yet
    r.run(3)
    assert len(r.endpoint.attempts) == 2
    assert r.states() == ["Connected", "Disconnected"]
    r.endpoint.refuse = False
    r.run(2.5)
    assert programLog == []  # no Update was sent to the closed port
    r.run(0.5)  # reopened connectRetryTime after the failed attempt; the next poll answers
    assert len(r.endpoint.attempts) == 3
    r.run(1)
    assert r.states() == ["Connected", "Disconnected", "Connected"]


def test_never_reached_fires_ConnectFailed_per_attempt_and_stays_Unknown() -> None:
    # issue 10: a module never reached is not Disconnected (it used to be), nor told so
    r = rig(connectRetryTime=5)
    told: list[str] = []
    r.module.OnDisconnected = lambda: told.append("OnDisconnected")
    r.endpoint.refuse = True
    assert result(r.handler.Connect()) == "Connection refused"
    assert r.rec.names() == ["ConnectFailed"]
    assert r.rec.calls[0] == ("ConnectFailed", (r.handler, "Connection refused"))
    r.clock.advance(5)
    r.clock.advance(5)
    assert r.rec.names() == ["ConnectFailed"] * 3
    assert r.handler.ConnectionStatus == "Unknown"
    assert r.handler.stats().lastError == "Connection refused"
    assert told == []
    r.endpoint.refuse = False
    r.clock.advance(5)
    r.pump.pump()
    r.run(1)
    assert r.states() == ["Connected"]


def test_a_device_that_accepts_tcp_but_never_answers_is_dropped_and_retried() -> None:
    r = rig(DisconnectLimit=3, connectRetryTime=2)
    r.pump.silent = True
    r.handler.Connect()
    r.run(3)  # polls at 1, 2, 3 go out, unanswered
    assert b"".join(r.pump.received) == b"\x1b3CVB" * 3
    first = r.endpoint.transport
    assert first is not None and not first.aborted
    r.run(1)  # t=4: DisconnectLimit polls without Connected: the link is dropped
    assert first.closed
    assert r.states() == ["Disconnected"]
    assert r.module.ReadStatus("ConnectionStatus") == "Disconnected"
    r.run(2)  # retried connectRetryTime later
    assert len(r.endpoint.attempts) == 2
    r.run(4)  # and dropped again: still silent
    assert r.endpoint.transport is not None and r.endpoint.transport.closed
    r.run(2)
    assert len(r.endpoint.attempts) == 3
    assert r.states() == ["Disconnected"]  # reported once
    assert r.rec.names().count("ConnectFailed") == 0
    assert r.handler.PollTimer.State == "Running"
    r.pump.silent = False
    r.pump.pump()
    r.run(1.5)
    assert r.states() == ["Disconnected", "Connected"]


def test_raising_module_and_user_callbacks_do_not_stop_polling(
    programLog: list[tuple[str, str]],
) -> None:
    r = rig(DisconnectLimit=2, connectRetryTime=1)
    calls: list[float] = []
    update = r.module.Update

    def flaky(command: str, qualifier: Any = None) -> None:
        calls.append(r.clock.seconds())
        if len(calls) in (2, 3):
            raise RuntimeError("module bug")
        update(command, qualifier)

    def bad(*args: Any) -> None:
        r.rec.calls.append(("bad", args))
        raise ValueError("user bug")

    r.module.Update = flaky
    r.handler.Connected = bad
    r.handler.Disconnected = bad
    r.handler.SubscribeStatus("VideoMute", None, bad)
    r.handler.SubscribeStatus("ConnectionStatus", None, bad)
    r.handler.Connect()
    r.pump.pump()
    r.run(6)
    assert calls == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert r.handler.ConnectionStatus == "Connected"
    bad_args = [a for n, a in r.rec.calls if n == "bad"]
    assert (r.handler, "Connected") in bad_args
    assert ("VideoMute", "Off", None) in bad_args
    assert ("ConnectionStatus", "Connected", None) in bad_args
    assert any("VideoMute status callback failed" in e for e, _ in programLog)
    # the device goes away and comes back: still reported, through the raising callbacks
    r.pump.silent = True
    r.run(3)
    assert r.handler.ConnectionStatus == "Disconnected"
    r.pump.silent = False
    r.run(2)  # the link was dropped: reconnected connectRetryTime later, then answered
    assert r.handler.ConnectionStatus == "Connected"
    assert len(calls) == 10


def test_wrong_password_is_retried_every_loginRetryTime_with_the_corrected_password(
    programLog: list[tuple[str, str]],
) -> None:
    r = rig(device=SISDevice(password="abc123"))
    r.handler.Interface.devicePassword = "wrong"
    r.handler.Connect()
    r.pump.pump()  # banner and prompt: the module answers with its password
    r.pump.pump()  # refused: prompted again
    assert r.device.passwordAttempts == [b"wrong"]
    assert r.module.Authenticated == "None"
    where = f"Module: {sis.__name__} IP Address/Host: 192.0.2.1:23 Error Message:"
    assert programLog == [(f"{where} Log in failed: check devicePassword", "warning")]
    r.run(4.5)
    assert r.device.passwordAttempts == [b"wrong"]  # no hammering, and no commands at the prompt
    assert r.device.commands == []
    r.handler.devicePassword = "abc123"  # the handler sets the module's attribute
    assert r.module.devicePassword == "abc123"
    r.run(0.5)  # loginRetryTime (5 s) after the refusal
    assert r.device.passwordAttempts == [b"wrong", b"abc123"]
    assert r.module.Authenticated == "Admin"
    r.run(1)
    assert r.states() == ["Connected"]


def test_device_errors_and_bad_values_go_to_the_program_log(
    programLog: list[tuple[str, str]],
) -> None:
    r = connected()
    r.module.counter = 5
    r.handler.Send("X")
    r.pump.pump()
    assert programLog[-1][0].endswith("Error Message: E10: Invalid command")
    assert r.module.counter == 0  # an error answer shows the device is there
    r.handler.Set("Input", "9")  # beyond the DVS 605's 6 inputs
    assert programLog[-1][0].endswith("Invalid Command for SetInput")
    r.handler.Update("Volume")
    assert programLog[-1][0].endswith("Volume does not support Update.")
    assert r.states() == ["Connected"]


def test_handler_falls_through_to_the_module_and_OnDisconnected_forwards_to_it() -> None:
    r = connected(connectRetryTime=2)
    h, module = r.handler, r.module
    assert h.InputCount == 6
    assert h.ReadStatus("VideoMute") == "Off"
    assert result(h.Update("Freeze")) is None  # reactor face: a Deferred
    r.pump.pump()
    assert h.ReadStatus("Freeze") == "Off"
    h.devicePassword = "abc123"
    assert module.devicePassword == "abc123"
    h.notAModuleAttribute = 1
    assert "notAModuleAttribute" not in vars(module)
    with pytest.raises(AttributeError, match="nor has the wrapped 'EthernetClass'"):
        h.NoSuchThing  # noqa: B018

    seen: list[tuple[Any, ...]] = []
    h.SubscribeStatus("ConnectionStatus", None, lambda *a: seen.append(a))
    assert module.Subscription["ConnectionStatus"]["callback"] is not None
    h.OnDisconnected()
    h.OnDisconnected()
    r.clock.advance(0)
    assert seen == [("ConnectionStatus", "Disconnected", None)]
    assert r.states() == ["Connected", "Disconnected"]
    # the link is kept (the reference's rule): the next answered poll is Connected on it
    assert r.endpoint.transport is not None and not r.endpoint.transport.closed
    r.pump.pump()
    r.run(1.5)
    assert r.states() == ["Connected", "Disconnected", "Connected"]
    assert seen[-1] == ("ConnectionStatus", "Connected", None)
    assert len(r.endpoint.attempts) == 1


class ClassicStatusModule(sis.EthernetClass):
    """
    The SIS module with the status code many Global Scripter modules have: the first update
    reports Connected, and every WriteStatus, even OnDisconnected's, first calls OnConnected while
    connectionFlag is False.
    """

    initializationChk = True

    def UpdateVideoMute(self, value: Any, qualifier: Any) -> None:
        if self.initializationChk:
            self.OnConnected()
            self.initializationChk = False
        super().UpdateVideoMute(value, qualifier)

    def OnDisconnected(self) -> None:
        self.WriteStatus("ConnectionStatus", "Disconnected")
        self.connectionFlag = False

    def WriteStatus(self, command: str, value: Any, qualifier: Any = None) -> None:
        self.counter = 0
        if not self.connectionFlag:
            self.OnConnected()
        status = self.Commands[command]["Status"]
        if status.get("Live") != value:
            status["Live"] = value
            self.NewStatus(command, value, qualifier)


def test_a_disconnected_module_is_told_OnDisconnected_again_without_a_spurious_Connected() -> None:
    # issue 10: OnDisconnected runs on every loss, also when the module said Disconnected already
    # (it used to be skipped then); what it reports on the way is relayed once, when it returns
    r = connected(moduleClass=ClassicStatusModule, connectRetryTime=10)
    told: list[str] = []
    onDisconnected = r.module.OnDisconnected

    def spy() -> None:
        told.append(r.module.ReadStatus("ConnectionStatus"))
        onDisconnected()

    r.module.OnDisconnected = spy
    seen: list[tuple[Any, ...]] = []
    r.handler.SubscribeStatus("ConnectionStatus", None, lambda *a: seen.append(a))
    r.handler.OnDisconnected()
    r.handler.OnDisconnected()
    r.clock.advance(0)
    assert r.endpoint.transport is not None and not r.endpoint.transport.closed  # kept
    # by hand twice: the repeat makes this module report Connected and Disconnected at once,
    # neither of which is relayed
    assert told == ["Connected", "Disconnected"]
    assert seen == [("ConnectionStatus", "Disconnected", None)]
    assert r.states() == ["Connected", "Disconnected"]
    assert r.module.ReadStatus("ConnectionStatus") == "Disconnected"


def test_http_module_is_polled_without_a_link() -> None:
    clock = Clock()
    module = HttpModule()
    h = GetConnectionHandler(
        module, "Power", {"Zone": "1"}, DisconnectLimit=2, pollFrequency=1, reactor=clock
    )
    assert h.moduleThread is None  # a Clock has no threads: module code runs inline
    rec = Recorder()
    rec.hook(h, "Connected", "Disconnected")
    h.Connect()
    clock.advance(1)
    assert module.updates == [{"Zone": "1"}]
    assert rec.names() == ["Connected"]
    module.answers = False
    clock.pump([1] * 3)
    assert rec.names() == ["Connected", "Disconnected"]
    result(h.Disconnect())
    clock.pump([1] * 3)
    assert len(module.updates) == 4
    assert clock.getDelayedCalls() == []


class OverridingModule(sis.EthernetClass):
    """The SIS module recording the calls the handler makes of the methods modules override."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[Any] = []

    def Connect(self, timeout: float | None = None) -> Any:
        self.calls.append(("Connect", timeout))
        return sis.EthernetClass.Connect(self, timeout)

    def Disconnect(self) -> Any:
        self.calls.append("Disconnect")
        return super().Disconnect()

    def OnDisconnected(self) -> None:
        self.calls.append("OnDisconnected")
        super().OnDisconnected()


def test_the_module_connects_and_drops_through_its_own_Connect_Disconnect_OnDisconnected() -> None:
    # issue 10: the handler drove the link directly (a handshake in Connect was never sent)
    r = rig(moduleClass=OverridingModule, DisconnectLimit=3, connectRetryTime=2)
    calls = r.module.calls
    assert result(r.handler.Connect(4)) == "Connected"
    assert calls == [("Connect", 4)]
    r.pump.pump()
    r.run(1)
    assert r.states() == ["Connected"]
    # the device drops the connection: OnDisconnected, then the module's Connect again
    calls.clear()
    assert r.endpoint.transport is not None
    r.endpoint.transport.deviceResets()
    r.clock.advance(0)
    assert calls == ["OnDisconnected"]
    r.clock.advance(2)
    assert calls == ["OnDisconnected", ("Connect", 4)]
    r.pump.pump()
    r.run(1)
    assert r.states() == ["Connected", "Disconnected", "Connected"]
    # silence: the module says Disconnected, the handler drops through its Disconnect (which
    # calls OnDisconnected) and tells it OnDisconnected for the loss, also when already told
    calls.clear()
    r.pump.silent = True
    r.run(4)
    assert calls[:4] == ["OnDisconnected", "Disconnect", "OnDisconnected", "OnDisconnected"]
    assert r.states() == ["Connected", "Disconnected", "Connected", "Disconnected"]
    # still silent after the reconnect: dropped again quietly, through the module each time
    calls.clear()
    r.run(8)
    assert calls.count(("Connect", 4)) == len(r.endpoint.attempts) - 2 >= 2
    assert calls.count("Disconnect") >= 1
    assert r.states() == ["Connected", "Disconnected", "Connected", "Disconnected"]
    r.pump.silent = False
    r.run(4)
    assert r.states()[-1] == "Connected"
    calls.clear()
    done = r.handler.Disconnect()
    r.clock.advance(0)
    assert result(done) is None
    assert calls[0] == "Disconnect" and "OnDisconnected" in calls
    assert r.clock.getDelayedCalls() == []


def test_a_module_send_after_a_drop_is_one_warning_per_outage(
    loggedFailures: list[Any],
) -> None:
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        r = connected(connectRetryTime=2)

        def delayedSends() -> None:  # module code whose Waits fire after the link is gone
            for _ in range(3):
                r.module._rt.call(lambda: r.module.Send("F"))

        for _ in range(2):
            assert r.endpoint.transport is not None
            r.endpoint.transport.deviceResets()
            r.clock.advance(0)
            delayedSends()
            r.run(2)
            r.pump.pump()
            r.run(1)
            assert r.handler.ConnectionStatus == "Connected"
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert loggedFailures == []  # no traceback
    warned = [e for e in events if "sent while the link is down" in e.get("log_format", "")]
    assert len(warned) == 2 and {e["log_level"].name for e in warned} == {"warn"}


# --- the manual's "Online/Offline Port Host" example on a Clock ---------------------------------

ONLINE_OFFLINE = """\
# The manual's "Online/Offline Port Host" example.  Fixed transcription typos: its first two lines
# read "MainProcessor('PrimaryAlias')" and "ScondaryProcessor('SecondaryAlias')", the first
# @event named "ScondaryProcessor", and both handlers lacked "def".  The projector and display
# modules are played by the SIS module, whose keep-alive query is 'VideoMute' (not 'Power').
from extronlib import event
from extronlib.device import ProcessorDevice, SPDevice
from twisted_ch import GetConnectionHandler

MainProcessor = ProcessorDevice('PrimaryAlias')
SecondaryProcessor = ProcessorDevice('SecondaryAlias')
SecureDevice = SPDevice('SDAlias')

MainProjector = GetConnectionHandler(
    ProjecorModule.SerialClass(SecondaryProcessor, 'COM1'),
    'VideoMute')
ConfidenceMonitor = GetConnectionHandler(
    DisplayModule.SerialClass(SecureDevice, 'COM2'),
    'VideoMute')
Switcher = GetConnectionHandler(
    SwitcherModule.SPIClass(SecureDevice),
    'Input')

@event(SecondaryProcessor, ['Offline', 'Online'])
def HandleSecondaryOffOnline(device, state):
    if state == 'Offline':
        MainProjector.PollTimer.Pause()
        MainProjector.OnDisconnected()
    else:
        MainProjector.PollTimer.Restart()

@event(SecureDevice, ['Offline', 'Online'])
def HandleSecondaryOffOnline(device, state):
    if state == 'Offline':
        ConfidenceMonitor.PollTimer.Pause()
        ConfidenceMonitor.OnDisconnected()
        Switcher.PollTimer.Pause()
        Switcher.OnDisconnected()
    else:
        ConfidenceMonitor.PollTimer.Restart()
        Switcher.PollTimer.Restart()
"""


class SISPortsOnFakeEndpoints:
    """The example's device modules: the SIS module, each port on a FakeEndpoint and a device."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pumps: dict[str, SISPump] = {}

    def _port(self, name: str) -> FakeEndpoint:
        endpoint = FakeEndpoint(self.clock)
        self.pumps[name] = SISPump(endpoint, SISDevice(), banner=False)
        return endpoint

    def SerialClass(self, Host: Any, Port: str, **kw: Any) -> Any:
        return sis.SerialClass(Host, Port, endpoint=self._port(f"{Host.DeviceAlias}:{Port}"), **kw)

    def SPIClass(self, Host: Any, **kw: Any) -> Any:
        return sis.SPIClass(Host, endpoint=self._port(f"{Host.DeviceAlias}:SP"), **kw)


def test_manual_online_offline_port_host_example() -> None:
    clock = Clock()
    modules = SISPortsOnFakeEndpoints(clock)
    ns: dict[str, Any] = {
        "ProjecorModule": modules,
        "DisplayModule": modules,
        "SwitcherModule": modules,
    }
    with useRuntime(Runtime(clock)):
        exec(compile(ONLINE_OFFLINE, "online_offline.py", "exec"), ns)
    projector, monitor, switcher = ns["MainProjector"], ns["ConfidenceMonitor"], ns["Switcher"]
    events: dict[str, list[str]] = {"projector": [], "monitor": [], "switcher": []}
    for name, h in (("projector", projector), ("monitor", monitor), ("switcher", switcher)):
        h.Connected = h.Disconnected = lambda h, s, name=name: events[name].append(s)
        h.Connect()  # the example's (elided) Initialize

    def run(seconds: float) -> None:
        for _ in range(round(seconds / 0.5)):
            clock.advance(0.5)
            for p in modules.pumps.values():
                p.pump()

    run(1)
    assert events == {k: ["Connected"] for k in events}
    projectorDevice = modules.pumps["SecondaryAlias:COM1"].device
    assert projectorDevice.commands == [b"\x1b3CV", b"B"]
    assert modules.pumps["SDAlias:SP"].device.commands == [b"\x1b3CV", b"!"]

    # the projector's host goes offline: its polling pauses and it is Disconnected
    ns["SecondaryProcessor"].setOnline(False)
    assert projector.PollTimer.State == "Paused"
    assert projector.ConnectionStatus == "Disconnected"
    assert projector.Interface.ReadStatus("ConnectionStatus") == "Disconnected"
    sent = len(projectorDevice.commands)
    run(5)
    assert len(projectorDevice.commands) == sent  # no polls while offline
    assert events["projector"] == ["Connected", "Disconnected"]
    assert events["monitor"] == events["switcher"] == ["Connected"]

    # back online: the timer restarts and the module answers again
    ns["SecondaryProcessor"].setOnline(True)
    assert projector.PollTimer.State == "Running"
    assert projector.PollTimer.Count == 0
    run(1)
    assert events["projector"] == ["Connected", "Disconnected", "Connected"]

    # the Secure Platform device hosts two: both pause and disconnect, then both come back
    ns["SecureDevice"].setOnline(False)
    assert monitor.PollTimer.State == switcher.PollTimer.State == "Paused"
    assert monitor.ConnectionStatus == switcher.ConnectionStatus == "Disconnected"
    assert projector.PollTimer.State == "Running"
    run(3)
    ns["SecureDevice"].setOnline(True)
    assert monitor.PollTimer.State == switcher.PollTimer.State == "Running"
    run(1)
    assert events == {
        "projector": ["Connected", "Disconnected", "Connected"],
        "monitor": ["Connected", "Disconnected", "Connected"],
        "switcher": ["Connected", "Disconnected", "Connected"],
    }


# --- the manual's module examples through the program runner, on loopback ------------------------

CREATING = """\
# The manual's "Creating a Connection Handler"; imports changed, the placeholders (address,
# module, model and command names) pointed at the SIS simulator and module.
from twisted_ch import GetConnectionHandler
import twisted_ch.devices.extr_sis_generic as DevNameModule

Device = GetConnectionHandler(DevNameModule.EthernetClass('127.0.0.1',
                              {port}, Model='DVS 605'), 'VideoMute')

def Initialize():
    # The Connect method will make the initial connection attempt and kick
    # off the keep alive polling loop.
    Device.Connect()

# ... The rest of the system code ...

Initialize()
"""

GLOBAL_SCRIPTER = """\
# The manual's "Global Scripter Modules" example; imports changed, address pointed at the
# simulator.  Fixed: its typo 'Disonnected' (as printed, the timer never paused).
from extronlib import event
from extronlib.system import Timer
from twisted_ch import GetConnectionHandler
import twisted_ch.devices.extr_sis_generic as DvsModule

# Here we are using Video Mute as the keep alive query.
Dvs605 = GetConnectionHandler(DvsModule.EthernetClass('127.0.0.1', {port},
                              Model='DVS 605'), 'VideoMute')

def Initialize():
    Dvs605.Connect()

@event(Dvs605, ['Connected', 'Disconnected'])
def HandleDvsConnect(interface, state):
    print('DVS', state)
    if state == 'Disconnected':
        # Pause status polling on disconnect to prevent spurious Program Log
        # errors.
        FreezePollTimer.Pause()
    else:
        FreezePollTimer.Restart()

def DvsFreezeStatus(dev, state, qualifier):
    print('Freeze state:', state)

def DvsFreezeUpate(timer, count):
    # ConnectionHandler ensures that the Module's Update() function is
    # called.
    Dvs605.Update('Freeze')

def DvsVideoMuteStatus(dev, state, qualifier):
    print('Video Mute state:', state)

Dvs605.SubscribeStatus('Freeze', None, DvsFreezeStatus)
Dvs605.SubscribeStatus('VideoMute', None, DvsVideoMuteStatus)

FreezePollTimer = Timer(2, DvsFreezeUpate)
# The timer will be started in HandleDvsConnect once a connection has been
# established.
FreezePollTimer.Pause()

Initialize()
"""

SETTING_PROPERTIES = """\
# The manual's "Setting Interface Properties" example; imports changed, address pointed at the
# simulator.  (It defines Initialize without calling it: the test calls it.)
from twisted_ch import GetConnectionHandler
import twisted_ch.devices.extr_sis_generic as DvsModule

Dvs605 = GetConnectionHandler(DvsModule.EthernetClass('127.0.0.1', {port},
                              Model='DVS 605'), 'VideoMute')
Dvs605.Interface.devicePassword = 'abc123'

def Initialize():
    Dvs605.Connect()
"""


def writeProgram(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(text))
    return path


@onReactor(20)
async def test_manual_creating_a_connection_handler_example(tmp_path: Path) -> None:
    server = listenSIS(reactor)
    program = Program(reactor)
    ns: dict[str, Any] = {}
    try:
        ns = await program.runFile(writeProgram(tmp_path, CREATING.format(port=server.port)))
        device = ns["Device"]
        assert type(device) is ModuleTcpHandler
        assert device.moduleThread is program.thread
        await device.whenStatus("Connected")
        assert device.transitions == 1
        assert device.ReadStatus("VideoMute") == "Off"
        assert server.device.commands[:2] == [b"\x1b3CV", b"B"]
    finally:
        if "Device" in ns:
            await ns["Device"].Disconnect()
        await program.stop()
        await server.shutdown()


@onReactor(20)
async def test_manual_global_scripter_modules_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = listenSIS(reactor, SISDevice(videoMute=1, freeze=1))
    program = Program(reactor)
    out: list[str] = []

    def printed(line: str) -> bool:
        out.extend(capsys.readouterr().out.splitlines())
        return line in out

    ns: dict[str, Any] = {}
    try:
        ns = await program.runFile(writeProgram(tmp_path, GLOBAL_SCRIPTER.format(port=server.port)))
        await waitUntil(reactor, lambda: printed("Freeze state: On"))
        assert out == ["Video Mute state: On", "DVS Connected", "Freeze state: On"]
        assert ns["Dvs605"].ConnectionStatus == "Connected"
        assert b"F" in server.device.commands
        assert ns["FreezePollTimer"].State == "Running"
        # the device goes away: Disconnected pauses the Freeze polling, as the example means to
        await server.stop()
        server.dropClients()
        await waitUntil(reactor, lambda: printed("DVS Disconnected"))
        await waitUntil(reactor, lambda: ns["FreezePollTimer"].State == "Paused")
    finally:
        if "Dvs605" in ns:
            ns["FreezePollTimer"].Stop()
            await ns["Dvs605"].Disconnect()
        await program.stop()
        await server.shutdown()


@onReactor(20)
async def test_manual_setting_interface_properties_example(tmp_path: Path) -> None:
    server = listenSIS(reactor, SISDevice(password="abc123"))
    program = Program(reactor)
    ns: dict[str, Any] = {}
    try:
        ns = await program.runFile(
            writeProgram(tmp_path, SETTING_PROPERTIES.format(port=server.port))
        )
        handler = ns["Dvs605"]
        await program.runCallable(ns["Initialize"])
        await handler.whenStatus("Connected")
        assert server.device.passwordAttempts == [b"abc123"]
        assert handler.Interface.Authenticated == "Admin"
        assert [c.session.loggedIn for c in server.clients] == [True]
    finally:
        if "Dvs605" in ns:
            await ns["Dvs605"].Disconnect()
        await program.stop()
        await server.shutdown()


# --- the Twisted face: module code on the reactor's module thread -------------------------------


async def connectedOnReactor(server: SISServer, **kw: Any) -> Any:
    module = sis.EthernetClass("127.0.0.1", server.port, Model="DVS 605")
    handler = GetConnectionHandler(module, "VideoMute", **kw)
    assert await handler.Connect() == "Connected"
    await handler.whenStatus("Connected")
    return handler


@onReactor(20)
async def test_reactor_face_runs_module_code_on_the_module_thread() -> None:
    server = listenSIS(reactor)
    handler = None
    try:
        handler = await connectedOnReactor(server, pollFrequency=0.1)
        assert handler.moduleThread is moduleThread(reactor)
        seen: list[tuple[str, str]] = []
        handler.SubscribeStatus(
            "Freeze", None, lambda c, v, q: seen.append((v, threading.current_thread().name))
        )
        # Update only sends: the answer reaches the module's own ReceiveData parser
        assert await handler.Update("Freeze") is None
        await waitUntil(reactor, lambda: bool(seen))
        assert seen == [("Off", "twisted_ch-modules")]
        # Set blocks in SendAndWait on the module thread; the reactor serves it meanwhile
        d = handler.Set("Freeze", "On")
        assert isinstance(d, Deferred)
        assert await d is None
        assert server.device.freeze == 1
        assert seen == [("Off", "twisted_ch-modules"), ("On", "twisted_ch-modules")]
        assert await handler.SetInput("4", None) is None
        assert server.device.input == 4
        assert handler.ReadStatus("Input") == "4"
        # a Set the device never answers waits out its timeout, the reactor keeps running
        server.silent = True
        ticks: list[int] = []
        pending = handler.Set("VideoMute", "On")
        while not pending.called:
            await deferLater(reactor, 0.05, lambda: None)
            ticks.append(1)
        assert len(ticks) >= 10  # DefaultResponseTimeout is 1 s
    finally:
        if handler is not None:
            await handler.Disconnect()
        await server.shutdown()


@onReactor(20)
async def test_keepalive_Update_is_skipped_while_the_previous_one_still_runs() -> None:
    server = listenSIS(reactor)
    handler = None
    release = threading.Event()
    try:
        handler = await connectedOnReactor(server, pollFrequency=0.05, DisconnectLimit=100)
        module = handler.Interface
        calls: list[float] = []
        update = module.Update

        def slow(command: str, qualifier: Any = None) -> None:
            calls.append(reactor.seconds())
            if len(calls) == 1:
                release.wait(10)  # blocks the module thread, never the reactor
            update(command, qualifier)

        module.Update = slow
        await waitUntil(reactor, lambda: len(calls) == 1)
        polls, ticks = handler.polls, handler.PollTimer.Count
        await deferLater(reactor, 0.5, lambda: None)
        assert handler.PollTimer.Count >= ticks + 5
        assert handler.polls == polls  # skipped ticks send and count nothing
        assert len(calls) == 1  # ticks came, none was queued behind the running Update
        release.set()
        await deferLater(reactor, 0.02, lambda: None)
        assert len(calls) <= 2  # no burst of queued Updates after the release
        await waitUntil(reactor, lambda: len(calls) >= 4)
        assert handler.ConnectionStatus == "Connected"
    finally:
        release.set()
        if handler is not None:
            await handler.Disconnect()
        await server.shutdown()


@onReactor(30)
async def test_loopback_drop_refuse_silence_and_return() -> None:
    server = listenSIS(reactor)
    handler = None
    try:
        # DisconnectLimit x pollFrequency must leave room for the module's session start (its
        # greetingTime of 0.5 s): the handler drops a link whose module says nothing for that long
        handler = await connectedOnReactor(
            server, pollFrequency=0.2, DisconnectLimit=4, connectRetryTime=0.2
        )
        failures: list[str] = []
        handler.ConnectFailed = lambda h, reason: failures.append(reason)

        # the device closes the connection and refuses new ones while away
        await server.stop()
        server.dropClients()
        await handler.whenStatus("Disconnected")
        await waitUntil(
            reactor, lambda: handler.Interface.ReadStatus("ConnectionStatus") == "Disconnected"
        )
        await waitUntil(reactor, lambda: len(failures) >= 2)
        assert set(failures) == {"Connection refused"}
        server.start()
        await handler.whenStatus("Connected")

        # a hung device: the module reports it, then the link is dropped and retried
        server.silent = True
        await handler.whenStatus("Disconnected")
        reconnects = handler.reconnects
        await waitUntil(reactor, lambda: handler.reconnects > reconnects)
        server.silent = False
        await handler.whenStatus("Connected")
        assert handler.transitions == 5
    finally:
        if handler is not None:
            await handler.Disconnect()
        await server.shutdown()


# --- the order of the handler's calls into the module -----------------------------------------


def test_call_order_a_connect_waits_for_the_calls_before_it_and_holds_those_after() -> None:
    from twisted_ch._modules import _CallOrder

    order = _CallOrder()
    log: list[str] = []
    order.started()  # a poll runs where module code runs
    order.call(lambda: log.append("call 1"))  # nothing runs aside: at once
    order.connect(lambda: (log.append("connect"), setattr(order, "aside", [])), lambda: None)
    order.call(lambda: log.append("call 2"))
    assert log == ["call 1"] and order.held  # the Connect waits for the poll
    order.finished()
    assert log == ["call 1", "connect"]  # it runs aside; call 2 waits for it to return
    returned = order.cancelConnects()
    assert not returned.called
    waiters, order.aside = order.aside, None
    assert waiters == [returned]
    order.next()
    assert log == ["call 1", "connect", "call 2"] and not order.held


def test_call_order_cancels_the_connects_that_have_not_started() -> None:
    from twisted_ch._modules import _CallOrder

    order = _CallOrder()
    cancelled: list[int] = []
    order.started()
    order.connect(lambda: cancelled.append(-1), lambda: cancelled.append(1))
    order.call(lambda: cancelled.append(2))
    done = order.cancelConnects()
    assert done.called and cancelled == [1, 2]  # the call behind it runs now
    order.finished()
    assert cancelled == [1, 2] and not order.held
