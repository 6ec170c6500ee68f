"""
The manual's examples (examples/manual/), run with only imports changed: programs through the
program runner (blocking face, real loopback device), Clock-driven ones on a task.Clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler, Runtime, useRuntime
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.program import Program
from twisted_ch.testing import FakeEndpoint, listenDevice, waitUntil

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


@pytest_twisted.ensureDeferred
async def test_synchronous_example_as_printed_keeps_polling_through_its_NameError(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    text = example("synchronous_tcp.py", {MANUAL_DEVICE: f"'127.0.0.1', {device.port}"})
    try:
        async with running(tmp_path, text) as (handler, _):
            await waitUntil(reactor, lambda: device.requests >= 2)
            assert handler.ConnectionStatus == "Connected"  # TCP: the link itself says so
            assert handler.missedPolls >= 1  # the NameError means no response is ever accepted
            await waitUntil(reactor, lambda: "Device is Connected." in capsys.readouterr().out)
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
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = example("tcp_extras.py", {"'192.168.1.1', 5000": f"'127.0.0.1', {port}"})
    async with running(tmp_path, text) as (handler, _):
        await waitUntil(
            reactor,
            lambda: "Failed to connect to Device: Connection refused" in capsys.readouterr().out,
        )
        assert handler.ConnectionStatus == "Disconnected"


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
    endpoint = FakeEndpoint(clock)
    handler = GetConnectionHandler(
        EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=endpoint),
        lambda h: h.Send("P"),
        connectRetryTime=60,
    )
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
    assert handler.ConnectionStatus == "Connected"


def test_pause_and_resume_polling_example() -> None:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    handler = GetConnectionHandler(
        EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=endpoint),
        lambda h: h.Send("P"),
    )
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
