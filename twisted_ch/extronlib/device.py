"""
ControlScript's port hosts: L{ProcessorDevice} and L{SPDevice}, with Online/Offline events.

On a Linux box a host maps its port aliases (C{'COM1'}) to device paths: pass C{ports=}, or rely
on the default C{'COMn'} -> C{/dev/ttyS<n-1>}, C{'IRS1'}... are not available.  Something outside
the program (a USB hub watcher, the operator, a test) reports the host going offline or coming back
with L{setOnline}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from twisted_ch import _site
from twisted_ch._events import Event, emit
from twisted_ch._runtime import Runtime, resolveRuntime

__all__ = ["ProcessorDevice", "SPDevice"]

_COM = re.compile(r"COM(\d+)$")


class _Host:
    Online = Event["_Host"]("Called as C{(device, 'Online')}.")
    Offline = Event["_Host"]("Called as C{(device, 'Offline')}.")

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        reactor: Any = None,
    ) -> None:
        if not isinstance(DeviceAlias, str) or not DeviceAlias:
            raise TypeError(f"DeviceAlias must be a non-empty str, not {DeviceAlias!r}")
        self.DeviceAlias = DeviceAlias
        self.PartNumber = PartNumber
        site = _site.current()  # the machine's mapping (twistd chandler's [program] section)
        self._ports = {**dict(ports or {}), **(site.portsFor(DeviceAlias) if site else {})}
        self._rt: Runtime = resolveRuntime(reactor)
        self._online = True
        if site is not None:
            site.hostCreated(self)

    def portPath(self, alias: str) -> str:
        """The device path behind a port alias such as C{'COM1'}."""
        if alias in self._ports:
            return self._ports[alias]
        m = _COM.match(alias)
        if m is None or int(m.group(1)) < 1:
            known = ", ".join(sorted(self._ports)) or "none configured"
            raise ValueError(
                f"{self.DeviceAlias} has no port {alias!r} (configured: {known}; "
                f"COMn defaults to /dev/ttyS<n-1>)"
            )
        return f"/dev/ttyS{int(m.group(1)) - 1}"

    def setPort(self, alias: str, path: str) -> None:
        """Map a port alias to a device path."""
        self._ports[alias] = path

    @property
    def isOnline(self) -> bool:
        """Whether the host is reachable."""
        return self._online

    def setOnline(self, online: bool) -> None:
        """Report the host online or offline; fires Online/Offline on a change."""
        online = bool(online)
        if online == self._online:
            return
        self._online = online
        state = "Online" if online else "Offline"
        self._rt.twoFaced(emit, self._rt, self, state, self, state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.DeviceAlias}>"


class ProcessorDevice(_Host):
    """A control processor whose serial ports programs use by alias."""


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
        site = _site.current()
        configured = site.spEndpointFor(DeviceAlias) if site is not None else None
        self.spEndpoint = configured or spEndpoint
