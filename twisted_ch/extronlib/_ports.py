"""Serial, Secure Platform and Dante interfaces: pipes and links whose endpoint is configured."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.serialport import SerialPort
from twisted.logger import Logger

from twisted_ch import _checks, _site
from twisted_ch._framing import DEFAULT_MAX_RESPONSE
from twisted_ch.extronlib._base import LinkInterface
from twisted_ch.extronlib._pacing import PacedEndpoint, pacedSendAndWait
from twisted_ch.extronlib._serialmode import MODES, ModeNotApplied, applyMode, flagsFor
from twisted_ch.extronlib.device import SPDevice, _Host

__all__ = ["DANTE_HOSTS", "DanteInterface", "SPInterface", "SerialInterface"]

_PARITY = {"None": "N", "Even": "E", "Odd": "O", "Mark": "M", "Space": "S"}
_FLOW = ("Off", "HW", "SW")
_MODES = MODES


def _checkSerialSettings(**settings: Any) -> None:
    """Validate serial port settings (the ControlScript names), raising a clear error."""
    for key, value in settings.items():
        if key == "Baud":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Baud must be a positive int, got {value!r}")
        elif key == "Data":
            if value not in (5, 6, 7, 8):
                raise ValueError(f"Data must be 5, 6, 7 or 8, got {value!r}")
        elif key == "Parity":
            if value not in _PARITY:
                raise ValueError(f"Parity must be one of {', '.join(_PARITY)}, got {value!r}")
        elif key == "Stop":
            if value not in (1, 1.5, 2):
                raise ValueError(f"Stop must be 1, 1.5 or 2, got {value!r}")
        elif key == "FlowControl":
            if value not in _FLOW:
                raise ValueError(f"FlowControl must be one of {', '.join(_FLOW)}, got {value!r}")
        elif key == "CharDelay":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"CharDelay must be a non-negative number, got {value!r}")
        elif key == "Mode":
            if value not in _MODES:
                raise ValueError(f"Mode must be one of {', '.join(_MODES)}, got {value!r}")
        else:
            raise TypeError(f"unexpected serial setting {key!r}")


class SerialInterface(LinkInterface):
    """
    A serial port of C{Host} (a L{ProcessorDevice} or L{SPDevice}) by alias (C{'COM1'}).

    The port opens when the interface is created and reopens after it vanishes; like
    ControlScript's, it has no Connect: its keep-alive handler decides the device's state.
    With C{CharDelay} (seconds) the bytes of each Send go out one at a time that far apart
    (timed by C{pacingClock}, the reactor unless a test sets a Clock).  C{Mode} is put in force
    each time the port opens (Linux RS-485 settings: C{'RS485-HD'} half duplex with RTS direction
    control, C{'RS485'} full duplex, C{'RS232'}/C{'RS422'} without); a port that cannot take it
    (a pty, a driver without RS-485, a port served over TCP) is reported once in the log and in
    L{modeProblem}, and keeps working.
    """

    connectionOriented = False
    log = Logger(namespace="twisted_ch.serial")

    def __init__(
        self,
        Host: _Host,
        Port: str,
        Baud: int = 9600,
        Data: int = 8,
        Parity: str = "None",
        Stop: int = 1,
        FlowControl: str = "Off",
        CharDelay: float = 0,
        Mode: str = "RS232",
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
        reopenDelay: float = 5.0,
    ) -> None:
        if not isinstance(Host, _Host):
            raise TypeError(
                f"Host must be a ProcessorDevice or SPDevice, not {type(Host).__name__}"
            )
        if not isinstance(Port, str):
            raise TypeError(f"Port must be a port alias such as 'COM1', not {Port!r}")
        _checkSerialSettings(
            Baud=Baud,
            Data=Data,
            Parity=Parity,
            Stop=Stop,
            FlowControl=FlowControl,
            CharDelay=CharDelay,
            Mode=Mode,
        )
        self.Host = Host
        self.Port = Port
        self.Baud = Baud
        self.Data = Data
        self.Parity = Parity
        self.Stop = Stop
        self.FlowControl = FlowControl
        self.CharDelay = CharDelay
        self.Mode = Mode
        #: why L{Mode} is not in force on the port (None: it is, or the port is not open yet)
        self.modeProblem: str | None = None
        self._modeReported: tuple[str, str] | None = None
        self.devicePath = Host.portPath(Port) if endpoint is None else Port
        super().__init__(
            f"serial:{Host.DeviceAlias}:{Port}",
            reactor=reactor,
            # every byte written goes through the CharDelay pacing (a new endpoint per attempt)
            endpoint=PacedEndpoint(endpoint if endpoint is not None else self._makeEndpoint, self),
            maxResponse=maxResponse,
            reopenDelay=reopenDelay,
        )
        self.pacingClock: Any = self._rt.reactor
        self._rt.twoFaced(self._link.open)

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        from twisted_ch.endpoints.serial import SerialEndpoint

        if _site.isEndpointDescription(self.devicePath):  # a ser2net port, a serial: string
            from twisted_ch.endpoints._strings import clientFromString

            return clientFromString(self._rt.reactor, self.devicePath)
        return SerialEndpoint(
            self._rt.reactor,
            self.devicePath,
            baudrate=self.Baud,
            bytesize=self.Data,
            parity=_PARITY[self.Parity],
            stopbits=self.Stop,
            xonxoff=self.FlowControl == "SW",
            rtscts=self.FlowControl == "HW",
        )

    def linkMade(self) -> None:
        self._applyMode()  # before Connected and the first keep-alive
        super().linkMade()

    def _serialPort(self) -> SerialPort | None:
        """The open serial port under the link (through the pacing wrapper), if it is one."""
        transport = getattr(self._link.protocol, "transport", None)
        for _ in range(4):
            if transport is None or isinstance(transport, SerialPort):
                return transport
            transport = getattr(transport, "transport", None)
        return None

    def _applyMode(self) -> None:
        """
        Put L{Mode} in force on the open port (the kernel's RS-485 settings, see
        L{twisted_ch.extronlib._serialmode}); a port that cannot take it is reported once per
        mode, in the log and L{modeProblem}, and keeps working as it is.
        """
        if not self._link.connected:
            return
        mode = self.Mode
        port = self._serialPort()
        try:
            if port is None:
                if flagsFor(mode).enabled:
                    raise ModeNotApplied(
                        f"{self.devicePath} is not a local serial port: set RS-485 on the device "
                        "that serves it"
                    )
                written = False
            else:
                written = applyMode(port.fileno(), mode)
        except ModeNotApplied as e:
            self.modeProblem = str(e)
            if self._modeReported != (mode, self.modeProblem):
                self._modeReported = (mode, self.modeProblem)
                self.log.warn(
                    "{port}: Mode {mode} is not applied: {why}; the port keeps working as it is",
                    port=self,
                    mode=mode,
                    why=self.modeProblem,
                )
            return
        except OSError as e:  # the port went away meanwhile: its loss is reported as such
            self.modeProblem = f"{type(e).__name__}: {e}"
            return
        self.modeProblem = None
        if written:
            self.log.info("{port}: Mode {mode} applied", port=self, mode=mode)

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """
        Send and wait (see L{LinkInterface.SendAndWait}); with C{CharDelay} the C{timeout}
        counts from the last byte sent, so pacing a long command does not eat its answer's time.
        """
        payload, wait = pacedSendAndWait(data, timeout, self.CharDelay)
        return super().SendAndWait(payload, wait, **delimiter)

    def Initialize(
        self,
        Baud: int | None = None,
        Data: int | None = None,
        Parity: str | None = None,
        Stop: int | None = None,
        FlowControl: str | None = None,
        CharDelay: float | None = None,
        Mode: str | None = None,
    ) -> None:
        """
        Change port settings; None leaves a setting as it is.  The port is reopened when a line
        setting (Baud, Data, Parity, Stop, FlowControl) changed; CharDelay and Mode apply at once.
        """
        given = {
            "Baud": Baud,
            "Data": Data,
            "Parity": Parity,
            "Stop": Stop,
            "FlowControl": FlowControl,
            "CharDelay": CharDelay,
            "Mode": Mode,
        }
        settings = {k: v for k, v in given.items() if v is not None}
        _checkSerialSettings(**settings)
        changed = {k for k, v in settings.items() if getattr(self, k) != v}
        for key, value in settings.items():
            setattr(self, key, value)
        if not changed - {"CharDelay", "Mode"}:
            if "Mode" in changed:
                self._rt.twoFaced(self._applyMode)
            return

        def reopen() -> None:
            self._link.close().addCallback(lambda _: self._link.open())

        self._rt.twoFaced(reopen)

    def __repr__(self) -> str:
        return f"<SerialInterface {self.Host.DeviceAlias}:{self.Port} ({self.devicePath})>"


class SPInterface(LinkInterface):
    """
    The Secure Platform link of an L{SPDevice}: a pipe over the device's configured endpoint
    (C{SPDevice(spEndpoint='tcp:host:port')}).  Like serial, its handler's keep-alive decides.
    """

    connectionOriented = False

    def __init__(
        self,
        Host: SPDevice,
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
        reopenDelay: float = 5.0,
    ) -> None:
        if not isinstance(Host, SPDevice):
            raise TypeError(f"Host must be an SPDevice, not {type(Host).__name__}")
        if endpoint is None and not Host.spEndpoint:
            raise ValueError(f"{Host.DeviceAlias} has no spEndpoint configured")
        self.Host = Host
        super().__init__(
            f"sp:{Host.DeviceAlias}",
            reactor=reactor,
            endpoint=endpoint,
            maxResponse=maxResponse,
            reopenDelay=reopenDelay,
        )
        self._rt.twoFaced(self._link.open)

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        from twisted_ch.endpoints._strings import clientFromString

        assert self.Host.spEndpoint is not None
        return clientFromString(self._rt.reactor, self.Host.spEndpoint)

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """SPInterface has no SendAndWait in ControlScript either."""
        raise AttributeError("'SPInterface' object has no attribute 'SendAndWait'")


#: Where each Dante device name is reached: name -> "host" or "host:port" (a program's config
#: fills it); a name not listed is reached as C{<name>.local} (its mDNS name) on port 23.
DANTE_HOSTS: dict[str, str] = {}

_DANTE_INTERFACES = ("LAN", "AVLAN")


class DanteInterface(LinkInterface):
    """
    A Dante-domain device link (ControlScript Pro xi), with the vendor's positional signature
    C{(DeviceName, Protocol, DanteDomainManager, Domain)}.  Off a processor there is no Dante
    control domain, so the device is reached over TCP: at C{host=}/C{port=}, at
    L{DANTE_HOSTS}C{[DeviceName]}, else at C{<DeviceName>.local} port 23.  It has no SendAndWait
    (as documented).
    """

    _serviceInterface: str | None = None

    def __init__(
        self,
        DeviceName: str,
        Protocol: str = "Extron",
        DanteDomainManager: Any = None,
        Domain: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        if not isinstance(DeviceName, str) or not DeviceName:
            raise TypeError(f"DeviceName must be a non-empty str, not {DeviceName!r}")
        if Protocol != "Extron":
            raise ValueError(f"DanteInterface supports Protocol 'Extron' only, got {Protocol!r}")
        if Domain is not None and not isinstance(Domain, str):
            raise TypeError(f"Domain must be a str or None, not {type(Domain).__name__}")
        # reached at host= if given, else at twistd chandler's [program.dante] endpoint for the
        # name, else at DANTE_HOSTS[name], else at <name>.local
        site = _site.current() if host is None else None
        self._described = site.danteEndpointFor(DeviceName) if site is not None else None
        self._site = site if endpoint is None else None
        self.DeviceName = DeviceName
        self.Hostname = DeviceName
        self.Protocol = Protocol
        self.DanteDomainManager = DanteDomainManager
        self.Domain = Domain
        if host is None:
            configured = DANTE_HOSTS.get(DeviceName, f"{DeviceName}.local")
            name, _, number = (
                configured.rpartition(":") if ":" in configured else (configured, "", "")
            )
            host = name or configured
            if port is None and number:
                port = int(number)
            # (an explicit endpoint leaves the host derived from DeviceName unused)
            self._host = host if endpoint is not None else _checks.host(host, "DeviceName")
        else:
            self._host = _checks.host(host, "host")
        self._port = 23 if port is None else _checks.port(port, "port")
        super().__init__(
            f"dante:{DeviceName}", reactor=reactor, endpoint=endpoint, maxResponse=maxResponse
        )

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        if self._described is not None:
            from twisted_ch.endpoints._strings import clientFromString

            return clientFromString(self._rt.reactor, self._described)
        # [program] addresses may map the host (or host:port) it is reached at
        from twisted_ch.project._addresses import mappedStream

        return mappedStream(
            self._rt.reactor, self._site, self._host, self._port, "a Dante interface"
        )

    @classmethod
    def StartService(cls, interface: str = "LAN") -> str:
        """
        Start the Dante service on C{'LAN'} or C{'AVLAN'}: returns C{'ServiceStarted'} (here the
        devices are reached over TCP, so there is nothing more to start).
        """
        if interface not in _DANTE_INTERFACES:
            raise ValueError(f"interface must be 'LAN' or 'AVLAN', got {interface!r}")
        cls._serviceInterface = interface
        return "ServiceStarted"

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """DanteInterface has no SendAndWait (as documented)."""
        raise AttributeError("'DanteInterface' object has no attribute 'SendAndWait'")
