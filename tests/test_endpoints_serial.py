"""
SerialEndpoint over real pseudo-terminals made by socat, and the C{serial:} string parser.

socat joins two ptys (links devA and devB in a temporary directory); killing it "unplugs" the
device and starting it again with the same link names "replugs" it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import _clientParsers, clientFromString, quoteStringArgument
from twisted.internet.interfaces import (
    IAddress,
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.plugin import getPlugins
from twisted.python.failure import Failure

from twisted_ch.endpoints.serial import (
    SerialAddress,
    SerialDeviceLost,
    SerialEndpoint,
    SerialPortUnavailable,
)
from twisted_ch.testing import PtyPair

TIMEOUT = 10


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Recorder(Protocol):
    """Records bytes and every connectionLost."""

    def __init__(self) -> None:
        self.received = b""
        self.reasons: list[Failure] = []
        self._lost: list[Deferred[None]] = []
        self._wanted: list[tuple[int, Deferred[bytes]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        for pair in list(self._wanted):
            if len(self.received) >= pair[0]:
                self._wanted.remove(pair)
                pair[1].callback(self.received)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.reasons.append(reason)
        waiting, self._lost = self._lost, []
        for d in waiting:
            d.callback(None)

    def whenReceived(self, count: int) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self._wanted.append((count, d))
        self.dataReceived(b"")
        return d.addTimeout(TIMEOUT, _reactor())

    async def whenLost(self) -> Failure:
        """The first connectionLost reason, once there is one."""
        if not self.reasons:
            d: Deferred[None] = Deferred()
            self._lost.append(d)
            await d.addTimeout(TIMEOUT, _reactor())
        return self.reasons[0]


class BadStart(Recorder):
    def connectionMade(self) -> None:
        raise RuntimeError("connectionMade exploded")


@pytest_twisted.async_yield_fixture
async def ptys(tmp_path: Path) -> AsyncIterator[PtyPair]:
    pair = PtyPair(_reactor(), str(tmp_path))
    try:
        await pair.plug()
        yield pair
    finally:
        await pair.unplug()


@pytest.fixture
def quiet_reactor_ignores() -> frozenset[str]:
    """quiet_reactor (conftest) leaves out socat's pipes and the reactor's own signal wakers."""
    return frozenset({"twisted.internet.process", "twisted.internet._signals"})


async def _turns(count: int = 3) -> None:
    """Let the reactor run a few iterations (no time passes on purpose)."""
    for _ in range(count):
        await deferLater(_reactor(), 0, lambda: None)


def _isOpen(fd: int, target: str) -> bool:
    """True if this process's descriptor C{fd} is still open on C{target}."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == target
    except OSError:
        return False


async def _connect(endpoint: SerialEndpoint) -> Recorder:
    protocol = await endpoint.connect(Factory.forProtocol(Recorder))
    assert isinstance(protocol, Recorder)
    return protocol


@pytest_twisted.ensureDeferred
async def test_bytes_flow_both_ways(ptys: PtyPair, quiet_reactor: list[Any]) -> None:
    """Two endpoints on the ends of a pty pair exchange bytes and close cleanly."""
    reactor = _reactor()
    a = await _connect(SerialEndpoint(reactor, ptys.devA, baudrate=115200))
    b = await _connect(SerialEndpoint(reactor, ptys.devB, baudrate=115200))
    assert a.transport is not None and b.transport is not None
    assert a.transport.getPeer() == SerialAddress(ptys.devA)
    assert a.transport.getHost() == SerialAddress(ptys.devA)
    assert IAddress.providedBy(a.transport.getPeer())

    a.transport.write(b"hello device\r")
    assert await b.whenReceived(13) == b"hello device\r"
    b.transport.writeSequence([b"hel", b"lo ", b"controller\n"])
    assert await a.whenReceived(17) == b"hello controller\n"

    a.transport.loseConnection()
    b.transport.loseConnection()
    for protocol in (a, b):
        reason = await protocol.whenLost()
        assert reason.check(error.ConnectionDone)
    await _turns()
    assert len(a.reasons) == len(b.reasons) == 1


SETTINGS = [
    pytest.param(
        {"baudrate": 19200, "bytesize": 7, "parity": "Odd", "stopbits": 2, "xonxoff": True},
        {"speed": termios.B19200, "cstopb": True, "parodd": True, "cmspar": False, "ixon": True},
        id="19200-7O2-xonxoff",
    ),
    pytest.param(
        {"baudrate": 115200, "bytesize": 5, "parity": "M", "stopbits": 1.5, "rtscts": True},
        {"speed": termios.B115200, "cstopb": True, "parodd": True, "cmspar": True, "rts": True},
        id="115200-5M1.5-rtscts",
    ),
    pytest.param(
        {"baudrate": 9600, "bytesize": 8, "parity": "space", "stopbits": 1},
        {"speed": termios.B9600, "cstopb": False, "parodd": False, "cmspar": True},
        id="9600-8S1",
    ),
]
_CMSPAR = getattr(termios, "CMSPAR", 0o10000000000)


@pytest.mark.parametrize(("options", "expected"), SETTINGS)
@pytest_twisted.ensureDeferred
async def test_settings_are_applied(
    ptys: PtyPair, quiet_reactor: list[Any], options: dict[str, Any], expected: dict[str, Any]
) -> None:
    """
    The line settings reach the device.  Linux ptys keep speed, stop bits, odd/mark/space
    parity and flow control in termios but force CS8 and clear PARENB, so data bits and
    parity enable are checked on the pyserial port instead.
    """
    endpoint = SerialEndpoint(_reactor(), ptys.devA, **options)
    protocol = await _connect(endpoint)
    transport: Any = protocol.transport
    try:
        iflag, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(transport.fileno())
        assert ispeed == ospeed == expected["speed"]
        assert bool(cflag & termios.CSTOPB) is expected["cstopb"]
        assert bool(cflag & termios.PARODD) is expected["parodd"]
        assert bool(cflag & _CMSPAR) is expected["cmspar"]
        assert bool(cflag & termios.CRTSCTS) is expected.get("rts", False)
        assert (
            bool(iflag & termios.IXON) is bool(iflag & termios.IXOFF) is expected.get("ixon", False)
        )
        settings = transport._serial.get_settings()
        assert settings["bytesize"] == options["bytesize"]
        assert settings["parity"] == endpoint.parity == options["parity"][0].upper()
        assert settings["stopbits"] == options["stopbits"]
    finally:
        transport.loseConnection()
        await protocol.whenLost()


@pytest_twisted.ensureDeferred
async def test_missing_device_fails_with_clear_error(
    tmp_path: Path, quiet_reactor: list[Any]
) -> None:
    """A device that does not exist fails the Deferred; connect() itself does not raise."""
    device = str(tmp_path / "ttyUSB9")
    factory = Factory.forProtocol(Recorder)
    built: list[object] = []
    factory.buildProtocol = lambda addr: built.append(addr)  # type: ignore[method-assign]
    d = SerialEndpoint(_reactor(), device).connect(factory)
    with pytest.raises(SerialPortUnavailable) as caught:
        await d
    assert isinstance(caught.value, error.ConnectError)
    assert caught.value.device == device
    assert caught.value.reason == "No such file or directory"
    assert str(caught.value) == (
        f"Serial device could not be opened: {device}: No such file or directory."
    )
    assert built == []


@pytest_twisted.ensureDeferred
async def test_not_a_tty_fails_with_clear_error(tmp_path: Path, quiet_reactor: list[Any]) -> None:
    """A path that is not a terminal is reported with pyserial's reason."""
    plain = tmp_path / "plain-file"
    plain.write_bytes(b"")
    with pytest.raises(SerialPortUnavailable) as caught:
        await SerialEndpoint(_reactor(), str(plain)).connect(Factory.forProtocol(Recorder))
    assert str(plain) in str(caught.value)
    assert "Inappropriate ioctl" in caught.value.reason


@pytest.mark.parametrize("noticedBy", ["reading", "writing"])
@pytest_twisted.ensureDeferred
async def test_unplug_then_replug(ptys: PtyPair, quiet_reactor: list[Any], noticedBy: str) -> None:
    """
    Killing socat ends the link with one SerialDeviceLost and closes the descriptor;
    a new connect() after socat is back works.

    While reading, Linux reports the pty's far side closing as end of file; with reading
    paused, a write makes epoll report a bare hang-up (which Twisted calls ConnectionLost, or
    ConnectionDone while reading).
    """
    reactor = _reactor()
    endpoint = SerialEndpoint(reactor, ptys.devA)
    first = await _connect(endpoint)
    transport: Any = first.transport
    fd, pts = transport.fileno(), os.path.realpath(ptys.devA)
    assert _isOpen(fd, pts)

    if noticedBy == "writing":
        transport.pauseProducing()
    await ptys.unplug()
    if noticedBy == "writing":
        transport.write(b"anyone there?")
    reason = await first.whenLost()
    await _turns()
    assert first.reasons == [reason]
    assert reason.check(SerialDeviceLost)
    assert isinstance(reason.value, error.ConnectionLost)
    assert ptys.devA in str(reason.value)
    assert not _isOpen(fd, pts)
    assert transport not in reactor.getReaders()
    assert transport not in reactor.getWriters()
    transport.write(b"into the void")  # ignored, does not raise

    await ptys.plug()
    second = await _connect(endpoint)
    far = await _connect(SerialEndpoint(reactor, ptys.devB))
    assert second.transport is not None and far.transport is not None
    second.transport.write(b"back again")
    assert await far.whenReceived(10) == b"back again"
    for protocol in (second, far):
        assert protocol.transport is not None
        protocol.transport.loseConnection()
        await protocol.whenLost()


@pytest_twisted.ensureDeferred
async def test_abort_closes_at_once(ptys: PtyPair, quiet_reactor: list[Any]) -> None:
    """abortConnection closes the descriptor before returning; connectionLost follows."""
    reactor = _reactor()
    protocol = await _connect(SerialEndpoint(reactor, ptys.devA))
    transport: Any = protocol.transport
    fd, pts = transport.fileno(), os.path.realpath(ptys.devA)
    transport.write(b"never sent" * 1000)
    transport.abortConnection()
    assert not _isOpen(fd, pts)
    assert transport.fileno() == -1
    assert transport not in reactor.getReaders()
    assert transport not in reactor.getWriters()
    assert protocol.reasons == []
    transport.abortConnection()
    transport.loseConnection()
    reason = await protocol.whenLost()
    await _turns()
    assert reason.check(error.ConnectionAborted)
    assert protocol.reasons == [reason]


@pytest_twisted.ensureDeferred
async def test_lose_connection_closes_descriptor(ptys: PtyPair, quiet_reactor: list[Any]) -> None:
    """loseConnection ends in exactly one ConnectionDone with the descriptor closed."""
    reactor = _reactor()
    protocol = await _connect(SerialEndpoint(reactor, ptys.devA))
    transport: Any = protocol.transport
    fd, pts = transport.fileno(), os.path.realpath(ptys.devA)
    transport.loseConnection()
    transport.loseConnection()
    reason = await protocol.whenLost()
    await _turns()
    assert reason.check(error.ConnectionDone)
    assert protocol.reasons == [reason]
    assert not _isOpen(fd, pts)
    assert transport not in reactor.getReaders()


@pytest_twisted.ensureDeferred
async def test_failing_connection_made_closes_device(
    ptys: PtyPair, quiet_reactor: list[Any]
) -> None:
    """An exception in connectionMade fails the Deferred and leaves nothing open."""
    reactor = _reactor()
    readers = set(reactor.getReaders())
    factory = Factory.forProtocol(BadStart)
    protocols: list[BadStart] = []
    build = factory.buildProtocol

    def buildProtocol(addr: IAddress) -> Protocol | None:
        protocol = build(addr)
        assert isinstance(protocol, BadStart)
        protocols.append(protocol)
        return protocol

    factory.buildProtocol = buildProtocol  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="connectionMade exploded"):
        await SerialEndpoint(reactor, ptys.devA).connect(factory)
    [protocol] = protocols
    assert len(protocol.reasons) == 1
    assert protocol.reasons[0].check(RuntimeError)
    assert set(reactor.getReaders()) == readers
    pts = os.path.realpath(ptys.devA)
    assert not any(_isOpen(int(fd), pts) for fd in os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    ("kwargs", "exception", "message"),
    [
        ({"device": ""}, ValueError, "device must not be empty"),
        ({"device": 3}, TypeError, "device must be a str"),
        ({"baudrate": 0}, ValueError, "baudrate must be positive"),
        ({"baudrate": 9600.0}, TypeError, "baudrate must be an int"),
        ({"baudrate": True}, TypeError, "baudrate must be an int"),
        ({"bytesize": 9}, ValueError, "bytesize must be 5, 6, 7 or 8"),
        ({"bytesize": 4}, ValueError, "bytesize must be 5, 6, 7 or 8"),
        ({"parity": "X"}, ValueError, "parity must be one of N, E, O, M, S"),
        ({"parity": None}, TypeError, "parity must be a str"),
        ({"stopbits": 3}, ValueError, "stopbits must be 1, 1.5 or 2"),
        ({"stopbits": "1"}, TypeError, "stopbits must be a number"),
        ({"xonxoff": "yes"}, TypeError, "xonxoff must be a bool"),
        ({"rtscts": 2}, TypeError, "rtscts must be a bool"),
    ],
)
def test_bad_arguments_are_rejected_eagerly(
    kwargs: dict[str, Any], exception: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"device": "/dev/ttyUSB0", **kwargs}
    with pytest.raises(exception, match=message):
        SerialEndpoint(_reactor(), **arguments)


def test_reactor_must_watch_descriptors() -> None:
    with pytest.raises(TypeError, match="IReactorFDSet"):
        SerialEndpoint(object(), "/dev/ttyUSB0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("n", "N"), ("None", "N"), ("EVEN", "E"), ("odd", "O"), ("Mark", "M"), (" space ", "S")],
)
def test_parity_words_are_normalised(given: str, expected: str) -> None:
    assert SerialEndpoint(_reactor(), "/dev/ttyS0", parity=given).parity == expected


def test_parser_builds_endpoint() -> None:
    endpoint = clientFromString(
        _reactor(),
        "serial:/dev/ttyUSB0:baudrate=38400:bytesize=7:parity=E:stopbits=2:xonxoff=1:rtscts=0",
    )
    assert isinstance(endpoint, SerialEndpoint)
    assert IStreamClientEndpoint.providedBy(endpoint)
    assert (endpoint.device, endpoint.baudrate, endpoint.bytesize) == ("/dev/ttyUSB0", 38400, 7)
    assert (endpoint.parity, endpoint.stopbits) == ("E", 2)
    assert (endpoint.xonxoff, endpoint.rtscts) == (True, False)


def test_parser_defaults_and_escaped_path() -> None:
    path = "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0"
    endpoint = clientFromString(_reactor(), "serial:" + quoteStringArgument(path))
    assert isinstance(endpoint, SerialEndpoint)
    assert endpoint.device == path
    assert (endpoint.baudrate, endpoint.bytesize, endpoint.parity) == (9600, 8, "N")
    assert (endpoint.stopbits, endpoint.xonxoff, endpoint.rtscts) == (1, False, False)
    keyword = clientFromString(_reactor(), "serial:device=/dev/ttyS1:stopbits=1.5:parity=Mark")
    assert isinstance(keyword, SerialEndpoint)
    assert (keyword.device, keyword.stopbits, keyword.parity) == ("/dev/ttyS1", 1.5, "M")


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("serial:", "no device given"),
        ("serial:baudrate=9600", "no device given"),
        ("serial:/dev/ttyS0:baudrate=fast", "baudrate must be an integer, not 'fast'"),
        ("serial:/dev/ttyS0:bytesize=9", "bytesize must be 5, 6, 7 or 8"),
        ("serial:/dev/ttyS0:parity=Q", "parity must be one of"),
        ("serial:/dev/ttyS0:stopbits=3", "stopbits must be 1, 1.5 or 2, not '3'"),
        ("serial:/dev/ttyS0:xonxoff=maybe", "xonxoff must be 0 or 1"),
        ("serial:/dev/ttyS0:speed=9600", "unknown option 'speed'"),
        ("serial:/dev/ttyS0:device=/dev/ttyS1", "device given twice"),
        ("serial:/dev/by-path/pci-0:1", "escape colons"),
    ],
)
def test_parser_rejects_bad_strings(description: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        clientFromString(_reactor(), description)
    assert str(caught.value).startswith("serial endpoint: ")


def test_prefix_is_ours_alone() -> None:
    assert "SERIAL" not in _clientParsers
    parsers = [
        p
        for p in getPlugins(IStreamClientEndpointStringParserWithReactor)
        if p.prefix.lower() == "serial"
    ]
    assert [type(p).__module__ for p in parsers] == ["twisted.plugins.twisted_ch_serial_udp"]


def test_plugin_module_is_light() -> None:
    """Importing the plugin (as twistd's plugin scan does) loads neither endpoint nor pyserial."""
    script = (
        "import sys, twisted.plugins.twisted_ch_serial_udp; "
        "heavy = [m for m in ('serial', 'twisted_ch.endpoints.serial', "
        "'twisted_ch.endpoints.udp', 'twisted.internet.reactor') if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
