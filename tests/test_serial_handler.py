"""Serial handlers through real ptys (socat): the manual's serial examples, unplug and replug."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from twisted_ch import GetConnectionHandler, RawSimplePipeHandler
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import SerialInterface
from twisted_ch.program import Program
from twisted_ch.testing import DeviceServer, PtyPair, serveSerialDevice, waitUntil

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "manual"
TCP_LINE = (
    "EthernetClientInterface('192.168.1.1',\n"
    "                                       5000, Protocol='TCP')"
)


@pytest_twisted.async_yield_fixture
async def cable(tmp_path: Path) -> AsyncIterator[PtyPair]:
    pair = PtyPair(reactor, str(tmp_path))
    await pair.plug()
    try:
        yield pair
    finally:
        await pair.unplug()


@pytest_twisted.ensureDeferred
async def test_synchronous_example_serial(
    cable: PtyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    deviceEnd = await serveSerialDevice(reactor, cable.devB, device)
    text = (EXAMPLES / "synchronous_tcp.py").read_text()
    text = text.replace(TCP_LINE, "SerialInterface(MainProcessor, 'COM2')")
    text = text.replace(
        "    Command = msg[:3]",
        "    msg = res.decode().partition('\\r\\n')[0]\n    Command = msg[:3]",
    )
    preamble = (
        "from twisted_ch.extronlib.interface import SerialInterface\n"
        "from twisted_ch.extronlib.device import ProcessorDevice\n"
        f"MainProcessor = ProcessorDevice('Main', ports={{'COM2': {cable.devA!r}}})\n"
    )
    path = tmp_path / "main.py"
    path.write_text(preamble + text)
    program = Program(reactor)
    try:
        ns = await program.runFile(path)
        handler = ns["DeviceInterface"]
        assert isinstance(handler, RawSimplePipeHandler)
        await waitUntil(reactor, lambda: "Device is Connected." in capsys.readouterr().out)
    finally:
        await handler.Disconnect()
        await program.stop()
        deviceEnd.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_serial_unplug_and_replug(cable: PtyPair) -> None:
    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    deviceEnd = await serveSerialDevice(reactor, cable.devB, device)
    host = ProcessorDevice("Main", ports={"COM1": cable.devA})
    events: list[str] = []

    async def keepAlive(h: Any) -> None:
        if await h.SendAndWait("P", 0.2, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    handler = GetConnectionHandler(
        SerialInterface(host, "COM1", Baud=19200),
        keepAlive,
        pollFrequency=0.05,
        connectRetryTime=0.1,
        DisconnectLimit=3,
    )
    handler.Connected = lambda h, s: events.append(s)
    handler.Disconnected = lambda h, s: events.append(s)
    try:
        handler.Connect()
        await handler.whenStatus("Connected")
        await cable.unplug()  # both ends vanish: noticed at once, not after the poll limit
        await handler.whenStatus("Disconnected")
        assert "devA" in str(handler.stats().lastError)
        await cable.plug()
        deviceEnd = await serveSerialDevice(reactor, cable.devB, device)
        await handler.whenStatus("Connected")  # the port was reopened
        assert events == ["Connected", "Disconnected", "Connected"]
    finally:
        await handler.Disconnect()
        if deviceEnd.transport is not None:
            deviceEnd.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_missing_serial_port_is_an_unreached_device_not_a_crash(tmp_path: Path) -> None:
    host = ProcessorDevice("Main", ports={"COM3": str(tmp_path / "no-such-tty")})
    handler = GetConnectionHandler(
        SerialInterface(host, "COM3"), lambda h: h.Send("P"), connectRetryTime=0.05
    )
    link = handler.Interface.link
    failures: list[str] = []

    class Watch:
        def linkFailed(self, reason: str) -> None:
            failures.append(reason)

        def linkMade(self) -> None: ...
        def linkLost(self, reason: str) -> None: ...
        def linkData(self, data: bytes) -> None: ...

    link.observers.append(Watch())
    try:
        handler.Connect()
        await waitUntil(reactor, lambda: len(failures) >= 3)  # reopened every connectRetryTime
        assert "no-such-tty" in str(handler.stats().lastError)
        # never reached: Unknown, with the reason as lastError (issue 10; it was Disconnected)
        assert handler.ConnectionStatus == "Unknown"
    finally:
        await handler.Disconnect()


def test_serial_interface_rejects_bad_settings() -> None:
    host = ProcessorDevice("Main", ports={"COM1": "/dev/null"})
    with pytest.raises(ValueError, match="Parity must be one of"):
        SerialInterface(host, "COM1", Parity="Weird")
    with pytest.raises(ValueError, match="Baud must be a positive int"):
        SerialInterface(host, "COM1", Baud=0)
    with pytest.raises(TypeError, match="Host must be a ProcessorDevice"):
        SerialInterface("Main", "COM1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no port 'IR1'"):
        SerialInterface(host, "IR1")


def test_serial_initialize_validates_like_the_constructor() -> None:
    from twisted.internet.task import Clock

    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    host = ProcessorDevice("Main", ports={"COM1": "/dev/null"})
    iface = SerialInterface(host, "COM1", endpoint=FakeEndpoint(clock), reactor=clock)
    with pytest.raises(ValueError, match="Stop must be 1, 1.5 or 2"):
        iface.Initialize(Stop=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'Speed'"):
        iface.Initialize(Speed=9600)
    iface.Initialize(Baud=115200, Parity="Even")
    assert (iface.Baud, iface.Parity) == (115200, "Even")
