"""
Serial-port client endpoint (POSIX).

L{SerialEndpoint} opens a serial device through Twisted's L{SerialPort}.  The protocol gets a
transport that also has C{getPeer}, C{getHost} (both the L{SerialAddress}) and
C{abortConnection}, and that reports a device going away (USB adapter unplugged, far side of a
pty closed) as L{SerialDeviceLost} exactly once.

String form (through the C{twisted_ch_serial_udp} plugin)::

    serial:/dev/ttyUSB0:baudrate=9600:bytesize=8:parity=N:stopbits=1:xonxoff=0:rtscts=0

Colons inside a device path must be escaped (L{twisted.internet.endpoints.quoteStringArgument}).
"""

from __future__ import annotations

import errno
import os
import termios
from dataclasses import dataclass
from typing import Any, Final

import serial as pyserial  # type: ignore[import-untyped]
from twisted.internet import abstract, error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IReactorFDSet,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.serialport import SerialPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.endpoints._common import parseBool, parseInt, requireProviders, stringParts

__all__ = [
    "SerialAddress",
    "SerialDeviceLost",
    "SerialEndpoint",
    "SerialPortUnavailable",
]

_PARITIES: Final[dict[str, str]] = {
    "N": "N",
    "NONE": "N",
    "E": "E",
    "EVEN": "E",
    "O": "O",
    "ODD": "O",
    "M": "M",
    "MARK": "M",
    "S": "S",
    "SPACE": "S",
}
_STOPBITS: Final[tuple[float, ...]] = (1, 1.5, 2)
_READ_SIZE: Final = 8192


@implementer(IAddress)
@dataclass(frozen=True)
class SerialAddress:
    """
    The address of a serial link: the device path it was opened with.
    """

    device: str


class SerialPortUnavailable(error.ConnectError):
    """
    The serial device could not be opened (missing, busy, no permission, not a tty).

    @ivar device: the device path.
    @ivar reason: the operating system's explanation.
    """

    MESSAGE = "Serial device could not be opened"

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(string=f"{device}: {reason}")  # type: ignore[no-untyped-call]
        self.device = device
        self.reason = reason


class SerialDeviceLost(error.ConnectionLost):
    """
    An open serial device went away (read/write error, hang-up, end of file).

    @ivar device: the device path.
    @ivar reason: what was observed.
    """

    MESSAGE = "Serial device went away"

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"{device}: {reason}")
        self.device = device
        self.reason = reason


def _describe(exc: BaseException) -> str:
    """
    The operating system's reason behind C{exc}, as short text.
    """
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return os.strerror(code)
    return str(exc) or type(exc).__name__


class _SerialTransport(SerialPort):
    """
    A POSIX L{SerialPort} with C{getPeer}, C{getHost}, C{abortConnection}, an idempotent
    C{connectionLost} and device-loss reasons that name the device.

    Twisted's own port reports a device that went away as a clean close (C{ConnectionDone}:
    read() returns end of file, or epoll sees a bare hang-up); this one says
    L{SerialDeviceLost}.  Unlike Twisted's constructor, this one only opens the device:
    L{_attach} connects the protocol afterwards, so a failure to open and a failing
    C{connectionMade} are told apart and neither leaks the descriptor.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorFDSet,
        clock: IReactorTime,
        address: SerialAddress,
        settings: dict[str, Any],
    ) -> None:
        abstract.FileDescriptor.__init__(self, reactor)
        self._clock = clock
        self._address = address
        self._fdClosed = False
        self._lostDelivered = False
        self._closingLocally = False
        self._serial = self._serialFactory(address.device, timeout=0, **settings)
        try:
            self.flushInput()  # type: ignore[no-untyped-call]
            self.flushOutput()  # type: ignore[no-untyped-call]
        except BaseException:
            self._serial.close()
            raise

    def _attach(self, protocol: IProtocol) -> None:
        """
        Connect C{protocol} to this port and start reading.
        """
        self.protocol = protocol
        protocol.makeConnection(self)
        self.startReading()

    def logPrefix(self) -> str:
        return f"SerialPort {self._address.device}"

    def getPeer(self) -> SerialAddress:
        return self._address

    def getHost(self) -> SerialAddress:
        return self._address

    def fileno(self) -> int:
        if self._fdClosed:
            return -1
        fd: int = self._serial.fd
        return fd

    def startReading(self) -> None:
        if not self._fdClosed and not self.disconnecting:
            super().startReading()  # type: ignore[no-untyped-call]

    def startWriting(self) -> None:
        if not self._fdClosed:
            super().startWriting()  # type: ignore[no-untyped-call]

    def doRead(self) -> BaseException | None:
        if self._fdClosed:
            return None
        try:
            data = os.read(self.fileno(), _READ_SIZE)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return None
            return SerialDeviceLost(self._address.device, _describe(e))
        if not data:
            return SerialDeviceLost(self._address.device, "end of file")
        self.protocol.dataReceived(data)
        return None

    def doWrite(self) -> BaseException | None:
        if self._fdClosed:
            return None
        result: BaseException | None = super().doWrite()  # type: ignore[no-untyped-call]
        return result

    def writeSomeData(self, data: bytes) -> int | BaseException:
        try:
            return os.write(self.fileno(), data)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return 0
            return SerialDeviceLost(self._address.device, _describe(e))

    def loseConnection(self) -> None:
        if self.connected and not self.disconnecting:
            self._closingLocally = True
        super().loseConnection()  # type: ignore[no-untyped-call]

    def abortConnection(self) -> None:
        """
        Close the device at once, dropping unwritten data; C{connectionLost} follows with
        L{error.ConnectionAborted} on the next reactor iteration.
        """
        if self._lostDelivered or self._fdClosed:
            return
        self._closingLocally = True
        self.connected = 0
        self.stopReading()  # type: ignore[no-untyped-call]
        self.stopWriting()  # type: ignore[no-untyped-call]
        self._closeFD()
        self._clock.callLater(0, self.connectionLost, Failure(error.ConnectionAborted()))

    def connectionLost(self, reason: Failure) -> None:
        if self._lostDelivered:
            return
        self._lostDelivered = True
        if not self._closingLocally and reason.check(error.ConnectionDone, error.ConnectionLost):
            if not reason.check(SerialDeviceLost):
                # The reactor saw a bare hang-up: Twisted calls it ConnectionDone (while
                # reading) or ConnectionLost; a device that hangs up has gone away.
                reason = Failure(SerialDeviceLost(self._address.device, "hung up"))
        abstract.FileDescriptor.connectionLost(self, reason)
        self._closeFD()
        self.protocol.connectionLost(reason)

    def _closeFD(self) -> None:
        if self._fdClosed:
            return
        self._fdClosed = True
        try:
            self._serial.close()
        except OSError:
            self.log.failure("closing serial device {device}", device=self._address.device)


def _checkDevice(device: object) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device must be a str, not {type(device).__name__}")
    if not device:
        raise ValueError("device must not be empty")
    return device


def _checkBaudrate(baudrate: object) -> int:
    if not isinstance(baudrate, int) or isinstance(baudrate, bool):
        raise TypeError(f"baudrate must be an int, not {type(baudrate).__name__}")
    if baudrate <= 0:
        raise ValueError(f"baudrate must be positive, not {baudrate}")
    return baudrate


def _checkBytesize(bytesize: object) -> int:
    if not isinstance(bytesize, int) or isinstance(bytesize, bool):
        raise TypeError(f"bytesize must be an int, not {type(bytesize).__name__}")
    if not 5 <= bytesize <= 8:
        raise ValueError(f"bytesize must be 5, 6, 7 or 8, not {bytesize}")
    return bytesize


def _checkParity(parity: object) -> str:
    if not isinstance(parity, str):
        raise TypeError(f"parity must be a str, not {type(parity).__name__}")
    try:
        return _PARITIES[parity.strip().upper()]
    except KeyError:
        raise ValueError(
            f"parity must be one of N, E, O, M, S (or None, Even, Odd, Mark, Space), not {parity!r}"
        ) from None


def _checkStopbits(stopbits: object) -> float:
    if not isinstance(stopbits, int | float) or isinstance(stopbits, bool):
        raise TypeError(f"stopbits must be a number, not {type(stopbits).__name__}")
    for allowed in _STOPBITS:
        if stopbits == allowed:
            return allowed
    raise ValueError(f"stopbits must be 1, 1.5 or 2, not {stopbits!r}")


def _checkFlag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be a bool, not {value!r}")


@implementer(IStreamClientEndpoint)
class SerialEndpoint:
    """
    A client endpoint that opens a local serial device.

    C{connect} fires with the protocol once the device is open, or fails with
    L{SerialPortUnavailable}; it never raises.  Arguments are checked here, eagerly.

    @ivar device: the device path, e.g. C{/dev/ttyUSB0}.
    @ivar baudrate: bits per second.
    @ivar bytesize: data bits, 5 to 8.
    @ivar parity: one of C{"N"}, C{"E"}, C{"O"}, C{"M"}, C{"S"}.
    @ivar stopbits: 1, 1.5 or 2.
    @ivar xonxoff: software flow control.
    @ivar rtscts: hardware (RTS/CTS) flow control.
    """

    def __init__(
        self,
        reactor: IReactorFDSet,
        device: str,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        xonxoff: bool = False,
        rtscts: bool = False,
    ) -> None:
        """
        @param parity: a letter or a word (C{"None"}, C{"Even"}, C{"Odd"}, C{"Mark"},
            C{"Space"}), in any case.
        @raise TypeError: an argument has the wrong type, or the reactor lacks
            L{IReactorFDSet} or L{IReactorTime}.
        @raise ValueError: an argument is out of range.
        """
        requireProviders(reactor, IReactorFDSet, IReactorTime)
        self._reactor = reactor
        self._clock = IReactorTime(reactor)
        self.device = _checkDevice(device)
        self.baudrate = _checkBaudrate(baudrate)
        self.bytesize = _checkBytesize(bytesize)
        self.parity = _checkParity(parity)
        self.stopbits = _checkStopbits(stopbits)
        self.xonxoff = _checkFlag("xonxoff", xonxoff)
        self.rtscts = _checkFlag("rtscts", rtscts)

    def __repr__(self) -> str:
        return (
            f"<SerialEndpoint {self.device} {self.baudrate} "
            f"{self.bytesize}{self.parity}{self.stopbits:g}"
            f"{' xonxoff' if self.xonxoff else ''}{' rtscts' if self.rtscts else ''}>"
        )

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Open the device and connect a protocol built by C{protocolFactory} to it.

        @return: a Deferred firing with the protocol, or failing with
            L{SerialPortUnavailable} if the device cannot be opened, L{error.NoProtocol} if
            the factory builds none, or whatever C{buildProtocol}/C{connectionMade} raised
            (the device is then closed again).
        """
        address = SerialAddress(self.device)
        settings = {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
            "xonxoff": self.xonxoff,
            "rtscts": self.rtscts,
        }
        try:
            transport = _SerialTransport(self._reactor, self._clock, address, settings)
        except (pyserial.SerialException, OSError, ValueError, termios.error) as e:
            return fail(SerialPortUnavailable(self.device, _describe(e)))
        try:
            protocol = protocolFactory.buildProtocol(address)
            if protocol is None:
                raise error.NoProtocol()
        except Exception:
            transport._closeFD()
            return fail()
        try:
            transport._attach(protocol)
        except Exception:
            failed = Failure()
            try:
                transport.connectionLost(failed)
            except Exception:
                _SerialTransport.log.failure("connectionLost after a failed connectionMade")
            return fail(failed)
        return succeed(protocol)


_OPTIONS: Final = frozenset(
    {"device", "baudrate", "bytesize", "parity", "stopbits", "xonxoff", "rtscts"}
)


def _parseStopbits(text: str) -> float:
    try:
        return {"1": 1, "1.5": 1.5, "2": 2}[text.strip()]
    except KeyError:
        raise ValueError(f"serial endpoint: stopbits must be 1, 1.5 or 2, not {text!r}") from None


def parseSerialEndpoint(reactor: object, *parts: object, **options: object) -> SerialEndpoint:
    """
    Build a L{SerialEndpoint} from the parts of a C{serial:} endpoint string.

    The device is the first positional part (or C{device=}); the options are the keyword
    arguments of L{SerialEndpoint}, with C{xonxoff}/C{rtscts} given as 0/1.

    @raise ValueError: a part is missing, unknown, repeated or not valid.
    @raise TypeError: the reactor lacks L{IReactorFDSet} or L{IReactorTime}.
    """
    requireProviders(reactor, IReactorFDSet, IReactorTime)
    args, kwargs = stringParts("serial", parts, options, _OPTIONS)
    if len(args) > 1:
        raise ValueError(
            f"serial endpoint: expected one device path, got {list(args)!r}"
            " (escape colons in the path with quoteStringArgument)"
        )
    if args and "device" in kwargs:
        raise ValueError("serial endpoint: device given twice")
    device = args[0] if args else kwargs.get("device", "")
    if not device:
        raise ValueError("serial endpoint: no device given, e.g. serial:/dev/ttyUSB0")
    settings: dict[str, Any] = {}
    for name in ("baudrate", "bytesize"):
        if name in kwargs:
            settings[name] = parseInt("serial", name, kwargs[name])
    for name in ("xonxoff", "rtscts"):
        if name in kwargs:
            settings[name] = parseBool("serial", name, kwargs[name])
    if "parity" in kwargs:
        settings["parity"] = kwargs["parity"]
    if "stopbits" in kwargs:
        settings["stopbits"] = _parseStopbits(kwargs["stopbits"])
    try:
        return SerialEndpoint(IReactorFDSet(reactor), device, **settings)
    except ValueError as e:
        raise ValueError(f"serial endpoint: {e}") from None
