"""The common base of every extronlib device: an alias, port aliases and Online/Offline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from twisted_ch._events import Event, emit
from twisted_ch._runtime import Runtime, resolveRuntime

__all__ = ["_Host"]

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
        self._alias = DeviceAlias
        self._partNumber = PartNumber
        self._ports = dict(ports or {})
        self._rt: Runtime = resolveRuntime(reactor)
        self._online = True

    @property
    def DeviceAlias(self) -> str:
        """The device's alias."""
        return self._alias

    @property
    def PartNumber(self) -> str | None:
        """The part number given, if any."""
        return self._partNumber

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
