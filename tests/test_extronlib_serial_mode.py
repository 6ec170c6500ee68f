"""
SerialInterface C{Mode} is put in force (Linux RS-485 settings), and a port that cannot take it
(a socat pty here) is reported once and keeps working (followups item 2).
"""

from __future__ import annotations

import array
import errno
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from helpers import LoggedEvents
from twisted.internet import reactor
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib import _serialmode
from twisted_ch.extronlib._serialmode import (
    SER_RS485_ENABLED,
    SER_RS485_RTS_AFTER_SEND,
    SER_RS485_RTS_ON_SEND,
    SER_RS485_RX_DURING_TX,
    TIOCGRS485,
    TIOCSRS485,
    ModeNotApplied,
    applyMode,
)
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import SerialInterface
from twisted_ch.testing import DeviceServer, FakeEndpoint, PtyPair, serveSerialDevice

#: a flag of the kernel's that the modes do not touch (SER_RS485_TERMINATE_BUS)
TERMINATE = 1 << 5


class FakeDriver:
    """An RS-485-capable driver's ioctls: the settings it holds, and each set made."""

    def __init__(self, flags: int = 0, supported: bool = True) -> None:
        self.settings = array.array("I", [flags, 7, 9, 0, 0, 0, 0, 0])
        self.supported = supported
        self.sets: list[int] = []

    def ioctl(self, fd: int, request: int, buf: Any) -> None:
        assert fd == 42
        if not self.supported:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        if request == TIOCGRS485:
            buf[:] = self.settings
        elif request == TIOCSRS485:
            self.settings[:] = buf
            self.sets.append(buf[0])
        else:
            raise AssertionError(hex(request))


@pytest.mark.parametrize(
    ("mode", "flags"),
    [
        ("RS232", 0),
        ("RS422", 0),
        ("RS485", SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND | SER_RS485_RX_DURING_TX),
        ("RS485-HD", SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND),
    ],
)
def test_each_mode_sets_the_drivers_rs485_flags(mode: str, flags: int) -> None:
    # from a port left in another mode (RTS after send, the bus terminated): the mode's bits are
    # set, the other flags and the delays kept
    driver = FakeDriver(SER_RS485_ENABLED | SER_RS485_RTS_AFTER_SEND | TERMINATE)
    assert applyMode(42, mode, driver.ioctl) is True
    assert driver.settings[0] == flags | TERMINATE
    assert list(driver.settings[1:3]) == [7, 9]
    # applied already: nothing written again
    assert applyMode(42, mode, driver.ioctl) is False and len(driver.sets) == 1


def test_a_driver_without_rs485() -> None:
    driver = FakeDriver(supported=False)
    for mode in ("RS232", "RS422"):  # full duplex: what such a port is anyway
        assert applyMode(42, mode, driver.ioctl) is False
    for mode in ("RS485", "RS485-HD"):
        with pytest.raises(ModeNotApplied, match="no RS-485 support"):
            applyMode(42, mode, driver.ioctl)


def test_a_driver_refusing_the_settings() -> None:
    driver = FakeDriver()

    def refusing(fd: int, request: int, buf: Any) -> None:
        if request == TIOCSRS485:
            raise OSError(errno.EPERM, "Operation not permitted")
        driver.ioctl(fd, request, buf)

    with pytest.raises(ModeNotApplied, match="not permitted"):
        applyMode(42, "RS485-HD", refusing)
    with pytest.raises(ValueError, match="Mode must be one of"):
        applyMode(42, "RS485X", driver.ioctl)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    from twisted.logger import LogLevel

    def keep(event: dict[str, Any]) -> bool:
        return event.get("log_level") == LogLevel.warn and "Mode" in str(event.get("log_format"))

    with LoggedEvents(keep, text=True) as seen:
        yield seen


def test_mode_without_a_local_serial_port_is_reported_once(
    warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    endpoint = FakeEndpoint(clock)  # not a serial port (as a ser2net TCP port)
    host = ProcessorDevice("ModeHost")
    iface = SerialInterface(host, "COM1", Mode="RS485-HD", reactor=clock, endpoint=endpoint)
    assert iface.link.connected
    assert iface.modeProblem is not None and "not a local serial port" in iface.modeProblem
    assert len(warnings) == 1 and "RS485-HD is not applied" in warnings[0]
    iface.link.abort()  # reopened later: the same problem is not told again
    clock.advance(0)
    clock.advance(iface.link.reopenDelay or 0)
    assert iface.link.connected and len(warnings) == 1
    # a full-duplex mode needs nothing from the port: no problem
    iface.Initialize(Mode="RS232")
    assert iface.modeProblem is None and len(warnings) == 1
    iface.link.close()
    clock.advance(0)


def test_initialize_applies_a_new_mode_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    clock = Clock()
    iface = SerialInterface(
        ProcessorDevice("ModeHost2"), "COM1", reactor=clock, endpoint=FakeEndpoint(clock)
    )
    monkeypatch.setattr(iface, "_serialPort", lambda: _FakePort())
    monkeypatch.setattr(
        "twisted_ch.extronlib._ports.applyMode",
        lambda fd, mode: applied.append(mode) or True,
    )
    iface.Initialize(Mode="RS485")
    assert applied == ["RS485"] and iface.Mode == "RS485"
    iface.Initialize(Mode="RS485")  # unchanged: nothing to do
    assert applied == ["RS485"]
    iface.link.close()
    clock.advance(0)


class _FakePort:
    def fileno(self) -> int:
        return 42


@pytest_twisted.async_yield_fixture
async def cable(tmp_path: Path) -> AsyncIterator[PtyPair]:
    pair = PtyPair(reactor, str(tmp_path))
    await pair.plug()
    try:
        yield pair
    finally:
        await pair.unplug()


@pytest_twisted.ensureDeferred
async def test_rs485_on_a_pty_is_reported_and_the_program_still_works(
    cable: PtyPair, warnings: list[str]
) -> None:
    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    deviceEnd = await serveSerialDevice(reactor, cable.devB, device)
    host = ProcessorDevice("PtyHost", ports={"COM1": cable.devA})
    iface = SerialInterface(host, "COM1", Baud=19200, Mode="RS485-HD")

    async def keepAlive(h: Any) -> None:
        if await h.SendAndWait("P", 0.5, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    handler = GetConnectionHandler(iface, keepAlive, pollFrequency=0.05)
    try:
        handler.Connect()
        await handler.whenStatus("Connected")  # the device answers through the pty
        assert iface.modeProblem is not None and "no RS-485 support" in iface.modeProblem
        assert len(warnings) == 1, warnings
        assert "PtyHost:COM1" in warnings[0] and "RS485-HD is not applied" in warnings[0]
        assert await iface.SendAndWait("P", 1, deliTag=b"\r\n") == b"Pwr1\r\n"
    finally:
        await handler.Disconnect()
        if deviceEnd.transport is not None:
            deviceEnd.transport.loseConnection()


def test_the_mode_table_covers_the_modes() -> None:
    assert set(_serialmode._FLAGS) == set(_serialmode.MODES)
