"""
What a ControlScript program names, mapped to this machine: the program's I{site}.

A program written for a control processor names its serial ports by alias (C{COM1}), its Secure
Platform devices and Dante devices by name, and reacts to its processor going Online/Offline.
On an ordinary machine those names mean whatever the operator says (the C{[program]} section of
the C{twistd chandler} config): a device path, a C{serial:} or C{tcp:} endpoint (a ser2net
port), an address.  The runner installs a L{ProgramSite} before the program runs; extronlib's
hosts and interfaces consult L{current} when they are created, so the program needs no edit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twisted_ch.project._addresses import AddressMap, Target

__all__ = ["ProgramSite", "current", "install", "isEndpointDescription", "uninstall"]


def isEndpointDescription(target: str) -> bool:
    """Whether a port target is a client endpoint description (C{tcp:...}), not a device path."""
    return not target.startswith("/") and ":" in target


@dataclass
class ProgramSite:
    """
    @ivar ports: port aliases of every host -> a device path or a client endpoint description.
    @ivar hostPorts: per host alias, its own port aliases (over L{ports}).
    @ivar spEndpoints: per SP device alias, the client endpoint description of its SP link.
    @ivar dante: per Dante device name, the client endpoint description that reaches it.
    @ivar addresses: what the program names (an IP address, a host name, or C{address:port})
        -> what reaches it on this machine (an address, or a client endpoint description).
    @ivar layouts: per UIDevice alias, the path of its GUI Designer layout (C{.gdl}).
    @ivar dataFolder: where the program's files (C{File}, C{RFile}) live (None: C{data/} beside
        the entry file); a project's is C{data/} in the project folder, never in its code.
    @ivar codeFolder: the project's code folder, on C{sys.path} while the program runs (None:
        the entry file's folder only, as for any program file).
    @ivar rfileFolder: the project's RFile folder: its files are put in the RFile area when the
        program first uses it, as a deploy puts them on the processor (None: no project).
    @ivar irFolder: the project's IR folder, searched first for an IRInterface's file.
    @ivar ui: per UIDevice alias, the project's panel settings (its C{devices[].ui}:
        C{press_feedback} C{"none"}/C{"state"}, C{thumb_change_report_interval}, ...).
    """

    ports: Mapping[str, str] = field(default_factory=dict)
    hostPorts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    spEndpoints: Mapping[str, str] = field(default_factory=dict)
    dante: Mapping[str, str] = field(default_factory=dict)
    addresses: Mapping[str, str] = field(default_factory=dict)
    layouts: Mapping[str, str] = field(default_factory=dict)
    ui: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    codeFolder: str | None = None
    dataFolder: str | None = None
    rfileFolder: str | None = None
    irFolder: str | None = None
    _routes: Any = field(default=None, repr=False)
    _watchers: list[Callable[[Any], object]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def portsFor(self, hostAlias: str) -> dict[str, str]:
        """The port aliases of the host C{hostAlias}."""
        return {**self.ports, **self.hostPorts.get(hostAlias, {})}

    def spEndpointFor(self, hostAlias: str) -> str | None:
        """The SP link endpoint of the SP device C{hostAlias}, if configured."""
        return self.spEndpoints.get(hostAlias)

    def danteEndpointFor(self, name: str) -> str | None:
        """The endpoint description reaching the Dante device C{name}, if configured."""
        return self.dante.get(name)

    def layoutFor(self, alias: str) -> str | None:
        """The path of the layout of the UIDevice C{alias}, if the project gives it one."""
        return self.layouts.get(alias)

    def addressMap(self) -> AddressMap:
        """L{addresses}, checked (L{twisted_ch.project._addresses.AddressProblem} if not)."""
        if self._routes is None:
            from twisted_ch.project._addresses import AddressMap

            self._routes = AddressMap(self.addresses)
        routes: AddressMap = self._routes
        return routes

    def route(self, host: str, port: int | None, used: bool = True) -> tuple[str, Target] | None:
        """
        Where the program's C{host} (and C{port}) goes on this machine: the C{addresses} entry
        (its key as written, its target), or None.  C{used}: logged at its first use.
        """
        if not self.addresses:
            return None
        return self.addressMap().route(host, port, used)

    def watchHosts(self, watcher: Callable[[Any], object]) -> None:
        """Call C{watcher(host)} for every host (ProcessorDevice, SPDevice) created from now."""
        with self._lock:
            self._watchers.append(watcher)

    def hostCreated(self, host: Any) -> None:
        """A host was created (on whatever thread created it)."""
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher(host)


_current: ProgramSite | None = None


def install(site: ProgramSite) -> None:
    """
    Make C{site} the one extronlib consults (one program per process); its addresses map the
    program threads' HTTP requests too (L{twisted_ch.project._http}) until L{uninstall}.
    """
    global _current
    _current = site
    from twisted_ch.project import _http

    if site.addresses:
        _http.activate(site.addressMap())
    else:
        _http.deactivate()


def uninstall(site: ProgramSite | None = None) -> None:
    """Forget the installed site (only C{site}, when given)."""
    global _current
    if site is None or _current is site:
        _current = None
        from twisted_ch.project import _http

        _http.deactivate()


def current() -> ProgramSite | None:
    """The installed site, if any."""
    return _current
