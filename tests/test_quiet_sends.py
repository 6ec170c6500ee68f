"""
Sends to a device that is down never raise (issue 20 item 1, issue 22): through a handler and
through an interface itself, on both faces; nothing is written, and the drops are logged once per
outage (an interface's: once per outage and call site, naming the caller's file and line).
"""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from helpers import tcpHandler
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher

from twisted_ch import GetConnectionHandler
from twisted_ch._runtime import ProgramThread
from twisted_ch.extronlib import _files
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.program import Program
from twisted_ch.testing import FakeEndpoint, listenDevice, waitUntil
from twisted_ch.testing._loopback import stablePorts

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])
ANSWER = b"Pwr1\r\n"
HERE = __file__


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


@pytest.fixture
def dropWarnings() -> Iterator[list[dict[str, Any]]]:
    """The 'sent while the link is down' warnings logged while the test runs."""
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if "sent while the link is down" in event.get("log_format", "") and (
            event["log_level"].name == "warn"
        ):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(observe)


def line() -> int:
    """The caller's line number."""
    return sys._getframe(1).f_lineno


# --- Clock: the Twisted face ------------------------------------------------------------------


def test_a_handler_drops_sends_while_down_quietly_once_per_outage(
    dropWarnings: list[dict[str, Any]], loggedFailures: list[Any]
) -> None:
    clock, ep, h, rec = tcpHandler(DisconnectLimit=2, connectRetryTime=5)
    # before any Connect()
    assert h.Send("A") is None
    assert result(h.SendAndWait("B", 1, deliTag=b"\r\n")) is None
    assert h.Send("C") is None
    assert len(dropWarnings) == 1  # one line for the outage, not one per send
    assert dropWarnings[0]["where"] == f"{HERE}:{line() - 4}"  # the first dropped send
    # after a failed attempt
    ep.refuse = True
    h.Connect()
    assert h.Send("D") is None and result(h.SendAndWait("E", 1)) is None
    assert len(dropWarnings) == 1  # still the same outage
    # connected, then the link drops: a new outage, a new line
    ep.refuse = False
    clock.advance(5)
    assert ep.transport is not None
    ep.written()
    ep.transport.deviceResets()
    clock.advance(0)
    assert h.Send("F") is None and result(h.SendAndWait("G", 1)) is None
    assert len(dropWarnings) == 2
    assert loggedFailures == []
    assert ep.written() == b""  # nothing written to a link that is down


def test_a_send_past_DisconnectLimit_drops_the_link_and_returns_None(
    dropWarnings: list[dict[str, Any]],
) -> None:
    clock, ep, h, rec = tcpHandler(DisconnectLimit=2, connectRetryTime=5)
    h.Connect()
    h.PollTimer.Pause()
    ep.written()
    assert h.Send("1") is None and h.Send("2") is None
    assert ep.written() == b"12"
    assert ep.transport is not None
    assert result(h.SendAndWait("3", 1)) is None  # the third would pass the limit: dropped
    assert ep.written() == b""
    clock.advance(0)  # the aborted transport is gone
    assert h.Send("4") is None  # the link is down now: dropped, not raised
    assert ep.written() == b""
    assert dropWarnings == []  # the drop's own log line is this outage's report
    clock.advance(5)  # reconnected, counter at 0
    assert h.Send("5") is None and ep.written() == b"5"


def test_an_interface_drops_sends_while_down_once_per_call_site(
    dropWarnings: list[dict[str, Any]], loggedFailures: list[Any]
) -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=ep)
    first = line() + 2
    for _ in range(3):
        assert iface.Send("A") is None  # one call site, three sends: one line
    second = line() + 1
    assert result(iface.SendAndWait("B", 1, deliTag=b"\r\n")) is None
    assert [e["where"] for e in dropWarnings] == [f"{HERE}:{first}", f"{HERE}:{second}"]
    with pytest.raises(TypeError):  # a bad argument is still an error
        iface.Send(3)
    with pytest.raises(ValueError):
        iface.SendAndWait("B", -1)
    iface.Connect()
    assert ep.transport is not None
    ep.transport.deviceCloses()
    clock.advance(0)
    for _ in range(2):
        iface.Send("C")  # a new outage: this call site is reported again, once
    assert len(dropWarnings) == 3 and dropWarnings[2]["where"] == f"{HERE}:{line() - 1}"
    assert ep.written() == b""
    assert loggedFailures == []


def test_a_pipe_handler_before_Connect_drops_sends_quietly(
    dropWarnings: list[dict[str, Any]],
) -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    ep.refuse = True  # the port does not open
    iface = EthernetClientInterface("192.0.2.1", 5000, Protocol="UDP", reactor=clock, endpoint=ep)
    h = GetConnectionHandler(iface, lambda h: h.Send("P"), DisconnectLimit=2)
    h.Connect()
    clock.advance(5)
    assert iface.link.state != "connected"
    assert h.Send("P") is None and result(h.SendAndWait("P", 1)) is None
    assert len(dropWarnings) == 1


# --- loopback, both faces --------------------------------------------------------------------


def bounded(seconds: float) -> Callable[[F], F]:
    def decorate(test: F) -> F:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            await ensureDeferred(test(*args, **kwargs)).addTimeout(seconds, reactor)

        return pytest_twisted.ensureDeferred(run)  # type: ignore[no-any-return]

    return decorate


def sleep(seconds: float) -> Any:
    return deferLater(reactor, seconds, lambda: None)


def refusingPort() -> int:
    """A loopback port below the ephemeral range that nothing listens on."""
    import socket

    for port in stablePorts():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no closed port")


async def onFace(face: str, thread: ProgramThread | None, f: Callable[[], Any]) -> Any:
    if thread is None:
        value = f()
        return await value if isinstance(value, Deferred) else value
    return await thread.run(f)


@pytest.mark.parametrize("face", ["reactor", "program"])
@bounded(20)
async def test_a_button_handler_sending_to_a_refusing_projector_still_reaches_the_display(
    face: str,
) -> None:
    display = listenDevice(reactor, {b"P": ANSWER})
    thread = ProgramThread(reactor) if face == "program" else None
    if thread is not None:
        thread.start()
    projector = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", refusingPort()), lambda h: h.Send("P")
    )
    screen = GetConnectionHandler(EthernetClientInterface("127.0.0.1", display.port), None)
    try:
        assert await onFace(face, thread, projector.Connect) == "Connection refused"
        assert await onFace(face, thread, screen.Connect) == "Connected"

        def pressed() -> list[Any]:
            # the manual's pattern: one command to each device, in order
            out = [projector.Send("PWR ON\r"), projector.SendAndWait("PWR?\r", 0.5)]
            out.append(screen.Send("INPUT 1\r"))
            return out

        got = await onFace(face, thread, pressed)
        assert got[0] is None and got[2] is None
        if face == "reactor":  # the Twisted face: a Deferred firing None
            assert isinstance(got[1], Deferred)
            got[1] = result(got[1])
        assert got[1] is None
        await waitUntil(reactor, lambda: b"INPUT 1" in b"".join(display.received))
    finally:
        await projector.Disconnect()
        await screen.Disconnect()
        if thread is not None:
            await thread.stop()
        await display.shutdown()


@pytest.mark.parametrize("face", ["reactor", "program"])
@bounded(20)
async def test_a_send_loop_to_a_silent_device_never_raises(face: str) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})
    thread = ProgramThread(reactor) if face == "program" else None
    if thread is not None:
        thread.start()
    h = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", device.port),
        lambda h: None,  # counts the program's sends, answers nothing
        DisconnectLimit=5,
        pollFrequency=60,
        connectRetryTime=30,
    )
    try:
        await onFace(face, thread, h.Connect)
        device.silent = True

        def loop() -> list[Any]:
            return [h.Send(f"GO{i}\r") for i in range(39)]

        assert await onFace(face, thread, loop) == [None] * 39
        await h.whenStatus("Disconnected")
        await sleep(0.1)
        assert b"".join(device.received).count(b"GO") == 5  # nothing past the limit went out
    finally:
        await h.Disconnect()
        if thread is not None:
            await thread.stop()
        await device.shutdown()


# --- a program whose top level sends before Connect -------------------------------------------


@pytest.fixture
def freshImports() -> Iterator[None]:
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if not name.startswith(("twisted", "extronlib")):
            sys.modules.pop(name, None)
    _files.setDataDirectory(None, program=True)


@bounded(20)
async def test_a_program_and_its_module_sending_before_Connect_keep_running(
    tmp_path: Path, freshImports: None, dropWarnings: list[dict[str, Any]]
) -> None:
    port = refusingPort()
    (tmp_path / "dsp_module.py").write_text(
        textwrap.dedent(
            f"""\
            from extronlib.interface import EthernetClientInterface

            class EthernetClass(EthernetClientInterface):
                def __init__(self, host, port):
                    EthernetClientInterface.__init__(self, host, port)
                    self.Send('hello\\r')  # at import time, before any Connect()

                def Set(self, command, value):
                    for _ in range(3):
                        self.Send(command + value + '\\r')
                    return self.SendAndWait(command + '?\\r', 0.2)

            DSP = EthernetClass('127.0.0.1', {port})
            """
        )
    )
    main = tmp_path / "main.py"
    main.write_text(
        textwrap.dedent(
            f"""\
            from extronlib.interface import EthernetClientInterface
            import dsp_module

            relay = EthernetClientInterface('127.0.0.1', {port})
            relay.Send('ON\\r')
            answer = dsp_module.DSP.Set('Gain', '5')
            reached = True
            """
        )
    )
    program = Program(reactor, name="quiet")
    try:
        namespace = await program.runFile(main)
        assert namespace["reached"] is True
        assert namespace["answer"] is None
    finally:
        await program.stop()
    where = sorted(e["where"] for e in dropWarnings)
    module = str(tmp_path / "dsp_module.py")
    assert where == sorted([f"{module}:6", f"{module}:10", f"{module}:11", f"{main}:5"]), (
        where
    )  # one line per call site (the loop's three sends: one)
