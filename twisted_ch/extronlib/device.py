"""
ControlScript's devices: L{ProcessorDevice} (its properties read from this host, or from
L{PROCESSOR_PROPERTIES}), L{UIDevice} (a touch panel kept in memory, shown by the virtual panel),
L{eBUSDevice}, L{SPDevice} and L{AdapterDevice}, with Online/Offline events.

On a Linux box a host maps its port aliases (C{'COM1'}) to device paths: pass C{ports=}, or rely
on the default C{'COMn'} -> C{/dev/ttyS<n-1>}, C{'IRS1'}... are not available.  Something outside
the program (a USB hub watcher, the operator, a test) reports the host going offline or coming back
with L{setOnline}.
"""

from __future__ import annotations

import platform
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from twisted_ch._events import Event, emit
from twisted_ch.extronlib._host import _Host

__all__ = [
    "PROCESSOR_PROPERTIES",
    "AdapterDevice",
    "ProcessorDevice",
    "SPDevice",
    "UIDevice",
    "eBUSDevice",
    "uiDevices",
]

_log = Logger(namespace="twisted_ch.program")


#: Properties a ProcessorDevice reports instead of what it reads from this host (a program's
#: config may set Hostname, IPAddress, MACAddress, ModelName, SerialNumber, FirmwareVersion, ...).
PROCESSOR_PROPERTIES: dict[str, Any] = {}


def _defaultRouteInterface() -> str | None:
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return fields[0]
    except OSError:
        pass
    return None


def _interfaceAddress(name: str) -> str | None:
    import fcntl
    import struct

    SIOCGIFADDR = 0x8915
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None


def _hostFacts() -> dict[str, Any]:
    """What this host says about itself (no packet is sent)."""
    from twisted_ch._version import __version__

    iface = _defaultRouteInterface()
    address = (_interfaceAddress(iface) if iface else None) or "127.0.0.1"
    mac = "00:00:00:00:00:00"
    if iface:
        try:
            mac = Path(f"/sys/class/net/{iface}/address").read_text().strip() or mac
        except OSError:
            pass
    serial = ""
    try:
        serial = Path("/etc/machine-id").read_text().strip()[:12]
    except OSError:
        pass
    uname = platform.uname()
    return {
        "Hostname": socket.gethostname(),
        "IPAddress": address,
        "MACAddress": mac.replace(":", "-").upper(),
        "ModelName": f"twisted_ch on {uname.system} {uname.machine}",
        "SerialNumber": serial,
        "FirmwareVersion": __version__,
    }


class ProcessorDevice(_Host):
    """
    A control processor: this host.  Its serial ports are used by alias (C{'COM1'}); its
    properties come from this host (name, address and MAC of the default route's interface,
    C{/etc/machine-id}) unless L{PROCESSOR_PROPERTIES} or C{properties=} give them.
    """

    ExecutiveModeChanged = Event["ProcessorDevice"]("Called as C{(device, mode)}.")

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        properties: Mapping[str, Any] | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__(DeviceAlias, PartNumber, ports=ports, reactor=reactor)
        self._facts = {**_hostFacts(), **PROCESSOR_PROPERTIES, **dict(properties or {})}
        self._executiveMode = 0

    def _fact(self, name: str) -> Any:
        return self._facts.get(name)

    @property
    def Hostname(self) -> str:
        """The host name."""
        return str(self._fact("Hostname"))

    HostName = Hostname

    @property
    def IPAddress(self) -> str:
        """The address of the interface of the default route (127.0.0.1 without one)."""
        return str(self._fact("IPAddress"))

    @property
    def MACAddress(self) -> str:
        """That interface's MAC address, as C{'00-05-A6-12-34-56'}."""
        return str(self._fact("MACAddress"))

    @property
    def ModelName(self) -> str:
        """The model name (C{twisted_ch on Linux x86_64} unless configured)."""
        return str(self._fact("ModelName"))

    @property
    def SerialNumber(self) -> str:
        """The serial number (from C{/etc/machine-id} unless configured)."""
        return str(self._fact("SerialNumber"))

    @property
    def FirmwareVersion(self) -> str:
        """twisted_ch's version unless configured."""
        return str(self._fact("FirmwareVersion"))

    @property
    def CurrentLoad(self) -> float | None:
        """The 12 V supply's load in watts: None, as on processors without one."""
        value = self._fact("CurrentLoad")
        return float(value) if isinstance(value, int | float) else None

    @property
    def LinkLicenses(self) -> list[str]:
        """LinkLicense part numbers (none unless configured)."""
        return list(self._fact("LinkLicenses") or [])

    @property
    def UserUsage(self) -> tuple[int, int]:
        """(used, total) KB of the file system holding the program data directory."""
        from twisted_ch.extronlib._files import dataDirectory

        folder = dataDirectory()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        usage = shutil.disk_usage(folder)
        return (usage.used // 1024, usage.total // 1024)

    @property
    def ExecutiveMode(self) -> int:
        """The executive mode number."""
        return self._executiveMode

    def SetExecutiveMode(self, ExecutiveMode: int) -> None:
        """Set the executive mode; fires ExecutiveModeChanged on a change."""
        if isinstance(ExecutiveMode, bool) or not isinstance(ExecutiveMode, int):
            raise TypeError(f"ExecutiveMode must be an int, not {type(ExecutiveMode).__name__}")
        if ExecutiveMode < 0:
            raise ValueError(f"ExecutiveMode must not be negative, got {ExecutiveMode}")
        if ExecutiveMode != self._executiveMode:
            self._executiveMode = ExecutiveMode
            self._rt.twoFaced(emit, self._rt, self, "ExecutiveModeChanged", self, ExecutiveMode)

    @property
    def SystemSettings(self) -> dict[str, Any]:
        """The network and program settings, as ControlScript's dictionary."""
        return {
            "Network": {
                "LAN": {
                    "Hostname": self.Hostname,
                    "IPAddress": self.IPAddress,
                    "MACAddress": self.MACAddress,
                }
            },
            "ProgramInformation": dict(self._fact("ProgramInformation") or {}),
        }

    def Reboot(self) -> None:
        """Logged and ignored: a program does not reboot the host it runs on."""
        _log.warn("{device}: Reboot() ignored (this host is not rebooted)", device=self)


class SPDevice(_Host):
    """
    A Secure Platform device: hosts serial ports (by alias, like a processor) and an SP link,
    whose endpoint description C{spEndpoint} (a Twisted client string such as C{tcp:host:port} or
    C{serial:/dev/ttyUSB0}) L{SPInterface<twisted_ch.extronlib.interface.SPInterface>} uses.
    """

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        spEndpoint: str | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__(DeviceAlias, PartNumber, ports=ports, reactor=reactor)
        self.spEndpoint = spEndpoint


from twisted_ch.extronlib._panels import (  # noqa: E402
    AdapterDevice,
    UIDevice,
    eBUSDevice,
    uiDevices,
)
