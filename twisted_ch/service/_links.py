# -*- test-case-name: tests.test_status_links -*-
"""
Every link a program made, on the status page: each interface it created (an extronlib interface
or a Global Scripter module's subclass of one), whether twisted_ch's handler wraps it, a handler of
the program's own (its C{ConnectionHandler.py}) does, or none.

A L{ProgramLink} stands for an interface that no twisted_ch handler wraps: the status row's
"handler"; a L{ProgramServer} for a server interface (C{EthernetServerInterfaceEx},
C{EthernetServerInterface}) that none wraps: a server row.  A link's C{ConnectionStatus} is that
of the program's handler wrapping the interface (read every L{REFRESH_EVERY} seconds: that
handler tells nobody when it changes), else its link's.
"""

from __future__ import annotations

import gc
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_ch._stats import ProgramLinkStats, ProgramServerStats
from twisted_ch.extronlib._base import LinkInterface
from twisted_ch.extronlib._lifetime import ProgramObjects
from twisted_ch.extronlib._servers import _ServerInterface

__all__ = ["REFRESH_EVERY", "ProgramLink", "ProgramLinks", "ProgramServer", "interfaceFields"]

log = Logger(namespace="twisted_ch.status")

#: Seconds between two reads of what the program's own handlers say (their ConnectionStatus).
REFRESH_EVERY = 1.0
#: Seconds between two searches of the heap for the handler of an interface still unwrapped,
#: when the program has created nothing meanwhile; doubled after each search that found
#: nothing new, up to L{SEARCH_LONGEST} (a program using an interface with no handler at all
#: would otherwise pay for a search, a reactor turn of tens of ms on a big heap, for ever).
SEARCH_EVERY = 30.0
#: The longest wait between two searches while the program creates nothing.
SEARCH_LONGEST = 16 * SEARCH_EVERY
#: Seconds at least between two searches when it has (a search costs about 8 ms per 100,000
#: objects on the heap; a program making a Wait per button press must not search at each).
SEARCH_GAP = 5.0

#: The events a handler of the program's own may set on the interface it wraps.
_EVENTS = ("Connected", "Disconnected", "ReceiveData", "ConnectFailed")

#: Referrers that are never a handler (containers, code, frames).
_NOT_HANDLERS = (
    dict,
    list,
    tuple,
    set,
    frozenset,
    types.FrameType,
    types.FunctionType,
    types.MethodType,
    types.CellType,
    types.ModuleType,
    type,
    weakref.ref,
)


def _baseType(interface: object) -> type:
    """The extronlib class an interface is (a module's subclass: the class it derives from)."""
    for cls in type(interface).__mro__:
        if cls.__module__.startswith("twisted_ch."):
            return cls
    return type(interface)


def addressOf(interface: Any) -> str:
    """The device's address as the program named it (C{host:port}, C{alias:COM1}, a name)."""
    if isinstance(interface, _ServerInterface):  # where it listens, as the program named it
        return f"{interface.Interface}:{interface.IPPort}"
    try:
        host = getattr(interface, "Hostname", None)
        if isinstance(host, str) and host:
            port = getattr(interface, "IPPort", None)
            return f"{host}:{port}" if isinstance(port, int) else host
        alias = getattr(getattr(interface, "Host", None), "DeviceAlias", None)
        if isinstance(alias, str) and alias:
            port = getattr(interface, "Port", None)
            return f"{alias}:{port}" if isinstance(port, str) and port else alias
        name = getattr(interface, "DeviceName", None)
        if isinstance(name, str) and name:
            return name
        named = _moduleAddress(interface)
        if named is not None:
            return named
    except Exception:
        pass
    description = getattr(getattr(interface, "link", None), "description", None)
    return description if isinstance(description, str) else repr(interface)


def _moduleAddress(module: Any) -> str | None:
    """
    Where a module with no extronlib interface (an HTTP module) says its device is: the host
    and port of its C{url} (never its user or password), else its C{IPAddress} and port.
    """
    for attribute in ("url", "URL"):
        url = getattr(module, attribute, None)
        if isinstance(url, str) and "//" in url:
            parts = urlsplit(url)
            if parts.hostname:
                host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
                return f"{host}:{parts.port}" if parts.port else host
    for attribute in ("IPAddress", "ipAddress", "host"):
        value = getattr(module, attribute, None)
        if isinstance(value, str) and value:
            for portName in ("IPPort", "Port", "port"):
                port = getattr(module, portName, None)
                if isinstance(port, int | str) and str(port).isdigit():
                    return f"{value}:{port}"
            return value
    return None


def interfaceFields(interface: Any) -> dict[str, object]:
    """
    A status row's fields naming an interface: C{interface} (its extronlib type), C{module} (a
    module's class deriving from it), C{protocol} (TCP, UDP, SSH) and C{address}.
    """
    base = _baseType(interface)
    fields: dict[str, object] = {"interface": base.__name__}
    cls = type(interface)
    if cls is not base:
        fields["module"] = f"{cls.__module__}.{cls.__qualname__}"
    protocol = getattr(interface, "Protocol", None)
    if isinstance(protocol, str) and protocol:
        fields["protocol"] = protocol
    fields["address"] = addressOf(interface)
    return fields


class ProgramLink:
    """
    An interface of a program that no twisted_ch handler wraps, as a status row's handler: its
    C{ConnectionStatus} (Unknown until first reached), its link's state and last error, and the
    program's own handler wrapping it, if one does (L{wrapper}).

    Holds the interface and that handler weakly: a program that lets them go lets them go.
    """

    kind = "device"

    def __init__(self, interface: Any, clock: IReactorTime) -> None:
        self._interface = weakref.ref(interface)
        self._wrapper: Callable[[], Any] = lambda: None
        self._clock = clock
        link = interface.link if isinstance(interface, LinkInterface) else None
        self._link: Callable[[], Any] = weakref.ref(link) if link is not None else lambda: None
        #: "Unknown", "Connected" or "Disconnected" (a wrapper's own value, whatever it says)
        self.status: str = "Connected" if link is not None and link.connected else "Unknown"
        self.since = clock.seconds()
        self.transitions = 0
        self._observers: list[Callable[[str], object]] = []
        if link is not None:
            link.observers.append(self)

    @property
    def Interface(self) -> LinkInterface | None:
        """The interface (None once the program has let it go)."""
        return self._interface()

    @property
    def wrapper(self) -> Any:
        """The program's own handler wrapping the interface (None: none found)."""
        return self._wrapper()

    def setWrapper(self, wrapper: Any) -> None:
        """The program's handler that wraps the interface: its ConnectionStatus is the row's."""
        try:
            self._wrapper = weakref.ref(wrapper)
        except TypeError:
            self._wrapper = lambda: wrapper
        self.refresh()

    @property
    def ConnectionStatus(self) -> str:
        return self.status

    @property
    def logName(self) -> str:
        """How log lines name the device: its link's description (as twisted_ch's handlers)."""
        link = self._link()
        return link.description if link is not None else "a program's link (gone)"

    def addStatusObserver(self, observer: Callable[[str], object]) -> None:
        """Call C{observer(status)} at each change of L{ConnectionStatus} (reactor thread)."""
        self._observers.append(observer)

    def removeStatusObserver(self, observer: Callable[[str], object]) -> None:
        self._observers.remove(observer)

    def stats(self) -> ProgramLinkStats:
        """What the status row shows: status, since, transitions, the link's state and error."""
        link = self._link()
        wrapper = self.wrapper
        return ProgramLinkStats(
            status=self.status,
            since=self.since,
            transitions=self.transitions,
            lastError=link.lastError if link is not None else None,
            link=link.state if link is not None else "closed",
            handler=type(wrapper).__name__ if wrapper is not None else None,
            handlerKind="program" if wrapper is not None else None,
        )

    def _read(self) -> str:
        wrapper = self.wrapper
        if wrapper is not None:
            try:
                value = wrapper.ConnectionStatus
            except Exception:
                value = None
            if isinstance(value, str) and value:
                return value
        link = self._link()
        if link is not None and link.connected:
            return "Connected"
        return "Unknown" if self.status == "Unknown" else "Disconnected"

    def refresh(self) -> None:
        """Read the status again; tell the observers if it changed (reactor thread)."""
        status = self._read()
        if status == self.status:
            return
        self.status = status
        self.since = self._clock.seconds()
        self.transitions += 1
        for observer in list(self._observers):
            try:
                observer(status)
            except Exception:
                log.failure("{link}: a status observer failed", link=self.logName)

    def detach(self) -> None:
        """Stop watching the link."""
        link = self._link()
        if link is not None and self in link.observers:
            link.observers.remove(self)

    # link observer (reactor thread)

    def linkMade(self) -> None:
        self.refresh()

    def linkLost(self, reason: str) -> None:
        self.refresh()

    def linkData(self, data: bytes) -> None:
        pass

    def linkFailed(self, reason: str) -> None:
        self.refresh()


class ProgramModule(ProgramLink):
    """
    A module of a program with no extronlib interface (an HTTP module) that the program's own
    handler wraps, as a status row's handler: that handler's C{ConnectionStatus}.
    """

    def __init__(self, module: Any, wrapper: Any, name: str, clock: IReactorTime) -> None:
        super().__init__(module, clock)  # no link: the wrapper's status alone
        self._name = name
        self.setWrapper(wrapper)

    @property
    def logName(self) -> str:
        """How log lines name the device: the program's variable for its handler."""
        return self._name

    def stats(self) -> ProgramLinkStats:
        return replace(super().stats(), link=None)


class ProgramServer:
    """
    A server interface of a program that no twisted_ch handler wraps, as a server row's handler:
    whether it listens, its clients, those refused and its last error.  Holds it weakly.
    """

    kind = "server"
    wrapper = None

    def __init__(self, interface: _ServerInterface) -> None:
        self._interface = weakref.ref(interface)
        self._name = repr(interface)

    @property
    def Interface(self) -> _ServerInterface | None:
        """The server interface (None once the program has let it go)."""
        return self._interface()

    @property
    def logName(self) -> str:
        """How the row names it: C{<EthernetServerInterfaceEx TCP Any:5000>}."""
        server = self._interface()
        return repr(server) if server is not None else self._name

    def stats(self) -> ProgramServerStats:
        """What the server row shows."""
        server = self._interface()
        if server is None:
            return ProgramServerStats(listening=False, clients=0, refused=0, lastError=None)
        return ProgramServerStats(
            listening=server.listening,
            clients=len(server.Clients),
            refused=server.refused,
            lastError=server.lastError,
        )

    def detach(self) -> None:
        """Nothing to stop watching (a server row is read when shown)."""


def _candidates(callback: object) -> Iterable[object]:
    """The objects a callback set on an interface is bound to: C{__self__}, its closure's."""
    owner = getattr(callback, "__self__", None)
    if owner is not None:
        yield owner
    function = getattr(callback, "__func__", callback)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue


def _wraps(candidate: object, interface: object) -> bool:
    """Whether C{candidate} is a handler (of the program's own) wrapping C{interface}."""
    if candidate is interface or isinstance(candidate, (*_NOT_HANDLERS, ProgramLink)):
        return False
    if type(candidate).__module__.startswith("twisted_ch."):
        return False
    try:
        return (
            getattr(candidate, "Interface", None) is interface
            and getattr(candidate, "ConnectionStatus", None) is not None
        )
    except Exception:
        return False


class ProgramLinks:
    """
    The interfaces a program created (as its L{ProgramObjects} tracks them) that no twisted_ch
    handler wraps, each as a L{ProgramLink}; and which handler of the program's own wraps each.

    That handler is found by what the interface's events are bound to, else by a search of the
    objects referring to the interface (one pass over the heap; made when the program has created
    something since the last, at most every L{SEARCH_GAP} seconds, and every L{SEARCH_EVERY}
    seconds while an interface is unwrapped; or when asked, L{searchSoon}).
    """

    def __init__(self, objects: ProgramObjects, clock: IReactorTime) -> None:
        self.objects = objects
        self.clock = clock
        self._links: weakref.WeakKeyDictionary[LinkInterface, ProgramLink] = (
            weakref.WeakKeyDictionary()
        )
        self._servers: weakref.WeakKeyDictionary[_ServerInterface, ProgramServer] = (
            weakref.WeakKeyDictionary()
        )
        self._modules: weakref.WeakKeyDictionary[Any, ProgramModule] = weakref.WeakKeyDictionary()
        self._searched: tuple[int, float] | None = None
        #: the wait before the next search when the program creates nothing (L{SEARCH_EVERY},
        #: doubled by each fruitless search)
        self._every = SEARCH_EVERY

    def links(self, wrapped: Iterable[object] = ()) -> list[ProgramLink | ProgramServer]:
        """
        A L{ProgramLink} per interface of the program (a L{ProgramServer} per server interface),
        but those in C{wrapped} (the interfaces twisted_ch's handlers wrap: their rows are the
        handlers'), oldest first.
        """
        skip = {id(i) for i in wrapped}
        found: list[ProgramLink] = []
        everything: list[ProgramLink | ProgramServer] = []
        for obj in self.objects.live():
            if isinstance(obj, _ServerInterface):
                if id(obj) not in skip:
                    server = self._servers.get(obj)
                    if server is None:
                        server = self._servers[obj] = ProgramServer(obj)
                    everything.append(server)
                continue
            if not isinstance(obj, LinkInterface):
                continue
            if id(obj) in skip:
                gone = self._links.pop(obj, None)  # wrapped by twisted_ch's handler since
                if gone is not None:
                    gone.detach()
                continue
            link = self._links.get(obj)
            if link is None:
                link = self._links[obj] = ProgramLink(obj, self.clock)
            found.append(link)
            everything.append(link)
        self._findWrappers(found)
        return everything

    def modules(self, handlers: Iterable[tuple[str, Any]]) -> list[ProgramModule]:
        """
        A L{ProgramModule} per C{(variable, handler)} of the program's own handlers whose
        C{Interface} is a module with no extronlib interface (those with one are L{links}).
        """
        rows = []
        for name, handler in handlers:
            try:
                module = handler.Interface
            except Exception:
                continue
            if module is None or isinstance(module, LinkInterface | _ServerInterface):
                continue
            row = self._modules.get(module)
            if row is None:
                try:
                    row = self._modules[module] = ProgramModule(module, handler, name, self.clock)
                except TypeError:  # not weakly referenceable
                    continue
            rows.append(row)
        return rows

    def searchSoon(self) -> None:
        """Search for the handlers of unwrapped interfaces at the next read (the top level ran)."""
        self._searched = None

    def refresh(self) -> None:
        """Read every link's status again (what the program's handlers say now)."""
        for link in [*self._links.values(), *self._modules.values()]:
            link.refresh()

    def stop(self) -> None:
        """Stop watching every link."""
        for link in list(self._links.values()):
            link.detach()
        self._links.clear()
        self._servers.clear()
        self._modules.clear()

    def _findWrappers(self, links: list[ProgramLink]) -> None:
        unwrapped: dict[int, tuple[ProgramLink, LinkInterface]] = {}
        for link in links:
            interface = link.Interface
            if link.wrapper is not None or interface is None:
                continue
            for name in _EVENTS:
                try:
                    callback = getattr(interface, name, None)
                except Exception:
                    continue
                for candidate in _candidates(callback):
                    if _wraps(candidate, interface):
                        link.setWrapper(candidate)
                        break
                if link.wrapper is not None:
                    break
            else:
                unwrapped[id(interface)] = (link, interface)
        if not unwrapped:
            return
        now = self.clock.seconds()
        generation = self.objects.generation
        if self._searched is not None:
            lastGeneration, when = self._searched
            wait = SEARCH_GAP if generation != lastGeneration else self._every
            if now - when < wait:
                return
            if generation != lastGeneration:
                self._every = SEARCH_EVERY
        self._searched = (generation, now)
        if self._search(unwrapped):
            self._every = SEARCH_EVERY
        else:
            self._every = min(self._every * 2, SEARCH_LONGEST)

    def _search(self, unwrapped: dict[int, tuple[ProgramLink, LinkInterface]]) -> bool:
        """
        The heap's objects referring to each interface (or holding it in their __dict__): the
        handlers among them are set as the wrappers; whether one was found.
        """
        interfaces = [interface for _, interface in unwrapped.values()]
        referrers = gc.get_referrers(*interfaces)
        dicts = [r for r in referrers if type(r) is dict]
        holders = [r for r in referrers if type(r) is not dict]
        if dicts:
            ids = {id(d) for d in dicts}
            holders += [
                r
                for r in gc.get_referrers(*dicts)
                if not isinstance(r, _NOT_HANDLERS) and id(getattr(r, "__dict__", None)) in ids
            ]
        del referrers, dicts
        found = False
        for holder in holders:
            try:
                interface = getattr(holder, "Interface", None)
            except Exception:
                continue
            entry = unwrapped.get(id(interface))
            if entry is not None and entry[0].wrapper is None and _wraps(holder, entry[1]):
                entry[0].setWrapper(holder)
                found = True
        return found
