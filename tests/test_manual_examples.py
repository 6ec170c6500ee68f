"""
The manual's examples (examples/manual/, see its README for where each of the 11 is tested), run
with only imports changed and, where the manual's text has a bug, the smallest fix (said where it
is made): programs through the program runner (blocking face, real loopback devices, serial ones
on a socat pty mapped to the processor's COM2), Clock-driven ones on a task.Clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from helpers import freePort, rig
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from twisted_ch import Runtime, useRuntime
from twisted_ch.program import Program
from twisted_ch.testing import (
    DeviceServer,
    PtyPair,
    listenDevice,
    listenSIS,
    serveSerialDevice,
    waitUntil,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "manual"


#: how the manual's TCP examples name their device
MANUAL_DEVICE = "'192.168.1.1',\n                                       5000"


def example(name: str, replace: dict[str, str] | None = None) -> str:
    """The example's text, with each C{replace} key (which must occur) replaced by its value."""
    text = (EXAMPLES / name).read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def writeProgram(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@asynccontextmanager
async def running(tmp_path: Path, text: str) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """Run C{text} as main.py on a program thread; yields its DeviceInterface and namespace."""
    program = Program(reactor)
    ns: dict[str, Any] = {}
    try:
        ns = await program.runFile(writeProgram(tmp_path, "main.py", text))
        yield ns["DeviceInterface"], ns
    finally:
        if "DeviceInterface" in ns:
            await ns["DeviceInterface"].Disconnect()
        await program.stop()


#: The smallest fix of the synchronous example's bug: its keep-alive parses a name ``msg`` it never
#: assigned (it assigned ``res``); the fix decodes ``res``'s first line into ``msg``.
MSG_FIX = {
    "    Command = msg[:3]": "    msg = res.decode().partition('\\r\\n')[0]\n    Command = msg[:3]"
}


@pytest_twisted.ensureDeferred
async def test_synchronous_example_as_printed_is_never_Connected_through_its_NameError(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    text = example("synchronous_tcp.py", {MANUAL_DEVICE: f"'127.0.0.1', {device.port}"})
    try:
        async with running(tmp_path, text) as (handler, _):
            await waitUntil(reactor, lambda: device.requests >= 2)
            # the NameError means no response is ever accepted: never Connected (issue 10; it
            # used to be Connected as the TCP link opened); polling goes on, its queries count
            assert handler.ConnectionStatus == "Unknown"
            assert handler.missedPolls >= 1
            assert "Device is" not in capsys.readouterr().out
    finally:
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_synchronous_example_with_its_bug_fixed_blocks_on_SendAndWait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    fixed = example(
        "synchronous_tcp.py",
        {
            MANUAL_DEVICE: f"'127.0.0.1', {device.port}",
            "    Command = msg[:3]": "    RESULTS.append(res)\n"
            "    msg = res.decode().partition('\\r\\n')[0]\n"
            "    Command = msg[:3]",
        },
    )
    try:
        async with running(tmp_path, "RESULTS = []\n" + fixed) as (handler, ns):
            await waitUntil(reactor, lambda: len(ns["RESULTS"]) >= 3)
            # on the program thread SendAndWait blocked and returned bytes, not a Deferred
            assert ns["RESULTS"][:3] == [b"Pwr1\r\n"] * 3
            assert handler.missedPolls <= 1
            assert "Device is Connected." in capsys.readouterr().out
    finally:
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_asynchronous_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr2\r\n"})
    text = example("asynchronous_tcp.py", {MANUAL_DEVICE: f"'127.0.0.1', {device.port}"})
    try:
        async with running(tmp_path, text) as (handler, _):
            await waitUntil(reactor, lambda: device.requests >= 3)
            await waitUntil(reactor, lambda: handler.missedPolls == 0)
            out = capsys.readouterr().out
            assert out.count("Device is Connected.") == 1
            device.dropClients()
            await waitUntil(reactor, lambda: "Device is Disconnected." in capsys.readouterr().out)
    finally:
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_tcp_extras_example_reports_ConnectFailed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example("tcp_extras.py", {"'192.168.1.1', 5000": f"'127.0.0.1', {freePort()}"})
    async with running(tmp_path, text) as (handler, _):
        await waitUntil(
            reactor,
            lambda: "Failed to connect to Device: Connection refused" in capsys.readouterr().out,
        )
        assert handler.ConnectionStatus == "Unknown"  # never reached (issue 10)


def answeredKeepAlive(h: Any) -> None:
    """A keep-alive whose device answers at once (so the handler is Connected)."""
    h.Send("P")
    h.ResponseAccepted()


def clockAt(hour: int, minute: int = 0) -> Clock:
    clock = Clock()
    clock.advance(dt.datetime(2026, 11, 25, hour, minute).timestamp())
    return clock


def runClockExample(name: str, clock: Clock, namespace: dict[str, Any]) -> dict[str, Any]:
    with useRuntime(Runtime(clock)):
        exec(compile(example(name), name, "exec"), namespace)
    return namespace


def test_controlling_auto_reconnect_example() -> None:
    clock = clockAt(20, 59)
    r = rig(answeredKeepAlive, clock=clock, record=(), connectRetryTime=60)
    endpoint, handler = r.endpoint, r.handler
    handler.Connect()
    runClockExample("controlling_auto_reconnect.py", clock, {"DeviceInterface": handler})
    clock.advance(60)  # 21:00: nightly shutdown
    assert handler.AutoReconnect is False
    endpoint.refuse = True
    assert endpoint.transport is not None
    endpoint.transport.deviceCloses()  # the rack powers down
    for _ in range(10 * 60 + 59):  # the night passes (to 07:59): no attempts, no polls
        clock.advance(60)
    assert len(endpoint.attempts) == 1
    assert handler.ConnectionStatus == "Disconnected"
    endpoint.refuse = False
    clock.advance(60)  # 08:00: morning power-on reconnects
    assert dt.datetime.fromtimestamp(clock.seconds()).time() >= dt.time(8, 0)
    assert handler.AutoReconnect is True
    assert len(endpoint.attempts) == 2
    clock.advance(1)  # the first answer on the new link
    assert handler.ConnectionStatus == "Connected"


def test_pause_and_resume_polling_example() -> None:
    r = rig(answeredKeepAlive, record=())
    clock, endpoint, handler = r.clock, r.endpoint, r.handler
    handler.Connect()
    ns = runClockExample("pause_and_resume_polling.py", clock, {"DeviceInterface": handler})

    def power(state: str) -> None:  # the projector module reports power status
        with useRuntime(Runtime(clock)):
            ns["HandleProjectorPower"](None, state, None)

    clock.pump([1, 1])
    assert endpoint.written() == b"PP"
    power("Cooling Down")
    assert handler.PollTimer.State == "Paused"
    clock.pump([1] * 59)
    assert endpoint.written() == b""
    clock.advance(1)  # Wait(60) resumes polling
    assert handler.PollTimer.State == "Running"
    clock.advance(1)
    assert endpoint.written() == b"P"
    power("Warming Up")
    clock.pump([1] * 30)
    clock.advance(1)
    assert endpoint.written() == b"P"
    power("On")
    assert handler.ConnectionStatus == "Connected"


# --- the serial examples as printed: SerialInterface(MainProcessor, 'COM2') on a socat pty -------


def onCOM2(path: str) -> dict[str, str]:
    """Map the example's processor's COM2 to C{path} (a socat pty)."""
    return {"ProcessorDevice('Main')": f"ProcessorDevice('Main', ports={{'COM2': {path!r}}})"}


@asynccontextmanager
async def serialDevice(
    tmp_path: Path, responses: dict[bytes, bytes]
) -> AsyncIterator[tuple[PtyPair, DeviceServer, Callable[[], Deferred[Any]]]]:
    """A device answering C{responses} at the far end of a pty pair; yields a replug function."""
    cable = PtyPair(reactor, str(tmp_path))
    await cable.plug()
    device = DeviceServer(reactor, responses)
    ends = [await serveSerialDevice(reactor, cable.devB, device)]

    async def replug() -> None:
        await cable.plug()
        ends.append(await serveSerialDevice(reactor, cable.devB, device))

    try:
        yield cable, device, lambda: ensureDeferred(replug())
    finally:
        for end in ends:
            if end.transport is not None:
                end.transport.loseConnection()
        await cable.unplug()


def printedLines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[str]]:
    out: list[str] = []

    def lines() -> list[str]:
        out.extend(capsys.readouterr().out.splitlines())
        return out

    return lines


@pytest_twisted.ensureDeferred
async def test_synchronous_example_serial_COM2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = printedLines(capsys)
    async with serialDevice(tmp_path, {b"P": b"Pwr1\r\n"}) as (cable, device, _):
        text = "RESULTS = []\n" + example(
            "synchronous_serial.py",
            {
                **onCOM2(cable.devA),
                # the manual's bug, fixed (see MSG_FIX), and a record of what SendAndWait returned
                "    Command = msg[:3]": "    RESULTS.append(res)\n"
                + MSG_FIX["    Command = msg[:3]"],
            },
        )
        async with running(tmp_path, text) as (handler, ns):
            assert type(handler).__name__ == "RawSimplePipeHandler"
            assert handler.Interface.devicePath == cable.devA
            await waitUntil(reactor, lambda: "Device is Connected." in lines())
            await waitUntil(reactor, lambda: len(ns["RESULTS"]) >= 2)
            assert ns["RESULTS"][:2] == [b"Pwr1\r\n"] * 2  # blocking SendAndWait, bytes
            assert lines() == ["Device is Connected."]


@pytest_twisted.ensureDeferred
async def test_asynchronous_example_serial_COM2_cable_pulled_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = printedLines(capsys)
    async with serialDevice(tmp_path, {b"P": b"Pwr2\r\n"}) as (cable, device, replug):
        text = example("asynchronous_serial.py", onCOM2(cable.devA))
        async with running(tmp_path, text) as (handler, _):
            await waitUntil(reactor, lambda: "Device is Connected." in lines())
            await cable.unplug()  # the port vanishes: a Connected link lost
            await waitUntil(reactor, lambda: "Device is Disconnected." in lines())
            await replug()  # reopened every connectRetryTime; the next answer means Connected
            await waitUntil(reactor, lambda: lines().count("Device is Connected.") == 2, 20)
            assert lines() == [
                "Device is Connected.",
                "Device is Disconnected.",
                "Device is Connected.",
            ]


@pytest_twisted.ensureDeferred
async def test_get_connection_handler_snippet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twisted_ch._modules import ModuleTcpHandler
    from twisted_ch._server import ServerExHandler
    from twisted_ch.extronlib import _servers

    monkeypatch.setitem(_servers.INTERFACE_ADDRESSES, "Any", "127.0.0.1")  # stay on loopback
    sis = listenSIS(reactor)
    program = Program(reactor)
    ns: dict[str, Any] = {}
    try:
        async with serialDevice(tmp_path, {b"Q": b"MLC 206\r\n"}) as (cable, mlcDevice, _):
            dvsAddress = "'192.168.1.1',\n                              9000"
            text = example(
                "get_connection_handler.py",
                {
                    "EthernetServerInterfaceEx(9000)": "EthernetServerInterfaceEx(0)",
                    dvsAddress: f"'127.0.0.1', {sis.port}",
                    **onCOM2(cable.devA),
                },
            )
            ns = await program.runFile(writeProgram(tmp_path, "main.py", text))
            server, dvs, mlc = ns["Server"], ns["Dvs605"], ns["Mlc206"]
            assert type(server) is ServerExHandler and server.clientIdleTimeout == 30
            assert type(dvs) is ModuleTcpHandler
            assert dvs.DisconnectLimit == 5 and dvs.Interface.connectionCounter == 5
            assert type(mlc).__name__ == "RawSimplePipeHandler" and mlc.DisconnectLimit == 15
            await program.runCallable(server.StartListen)
            await program.runCallable(dvs.Connect)
            await program.runCallable(mlc.Connect)
            await dvs.whenStatus("Connected")
            assert sis.device.commands[:2] == [b"\x1b3CV", b"B"]
            await waitUntil(reactor, lambda: mlcDevice.requests >= 1)
            # MlcKeepAlive only sends: nobody calls ResponseAccepted, so nothing says Connected
            assert mlc.ConnectionStatus == "Unknown"
            await mlc.Disconnect()
    finally:
        if "Server" in ns:
            await ns["Server"].StopListen()
            await ns["Dvs605"].Disconnect()
        await program.stop()
        await sis.shutdown()


def test_every_manual_example_file_has_a_test() -> None:
    """Each file of examples/manual/ is run by a test of this module (tests/test_examples.py)."""
    source = Path(__file__).read_text()
    untested = [p.name for p in sorted(EXAMPLES.glob("*.py")) if f'"{p.name}"' not in source]
    assert untested == []
