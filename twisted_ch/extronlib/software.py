"""
ControlScript's C{extronlib.software}: L{SummitConnect} (a link to Extron software on a PC) and
L{DanteDomainManager} (the Dante domain manager a L{DanteInterface} names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from twisted.internet.interfaces import IStreamClientEndpoint

from twisted_ch import _checks, _site
from twisted_ch._events import Event, emit
from twisted_ch._framing import DEFAULT_MAX_RESPONSE
from twisted_ch._runtime import Runtime, resolveRuntime
from twisted_ch.extronlib._base import LinkInterface
from twisted_ch.project._addresses import mappedStream

__all__ = ["DanteDomainManager", "SummitConnect"]

_SUMMIT_DEFAULT_PORTS = list(range(5001, 5009))


class SummitConnect(LinkInterface):
    """
    A TCP link to Extron software (a SummitConnect-licensed application) at
    C{Hostname}:C{IPPort} (default 5000): Connect, Disconnect, Send, and the Connected,
    Disconnected and ReceiveData events.
    """

    _listeningPorts: ClassVar[list[int]] = list(_SUMMIT_DEFAULT_PORTS)

    def __init__(
        self,
        Hostname: str,
        IPPort: int | None = None,
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        _checks.host(Hostname, "Hostname")
        self._port = 5000 if IPPort is None else _checks.port(IPPort, "IPPort")
        self._hostname = Hostname
        # what this machine's [program] addresses map the program's address to, if anything
        self._site = _site.current() if endpoint is None else None
        site = self._site
        self._mapped = site is not None and site.route(Hostname, self._port, False) is not None
        super().__init__(
            f"summit:{Hostname}:{self._port}",
            reactor=reactor,
            endpoint=endpoint,
            maxResponse=maxResponse,
        )

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        return mappedStream(
            self._rt.reactor, self._site, self._hostname, self._port, "a SummitConnect interface"
        )

    @property
    def Hostname(self) -> str:
        """The software's host."""
        return self._hostname

    @property
    def IPAddress(self) -> str:
        """The peer's address once connected, else the host name given (always, when mapped)."""
        if self._mapped:
            return self._hostname
        return self._peerHost(self._hostname)

    @property
    def IPPort(self) -> int:
        """The software's port."""
        return self._port

    @property
    def ListeningPort(self) -> int:
        """The first port of L{SetListeningPorts}' list."""
        return self._listeningPorts[0]

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """SummitConnect has no SendAndWait in ControlScript either."""
        raise AttributeError("'SummitConnect' object has no attribute 'SendAndWait'")

    @classmethod
    def SetListeningPorts(cls, portList: Iterable[int] | None = None) -> str:
        """
        The ports (at most 15; None: 5001-5008) the software's data comes back on; returns
        C{'Listening'}.  Here the data comes back on each link's own connection.
        """
        ports = list(_SUMMIT_DEFAULT_PORTS if portList is None else portList)
        if not 1 <= len(ports) <= 15:
            raise ValueError(f"portList holds 1 to 15 ports, got {len(ports)}")
        for p in ports:
            _checks.port(p, "port")
        cls._listeningPorts = ports
        return "Listening"

    def __repr__(self) -> str:
        return f"<SummitConnect {self._hostname}:{self._port}>"


class DanteDomainManager:
    """
    A Dante Domain Manager server (C{Hostname}, C{Credentials=(user, password)}), as
    L{DanteInterface<twisted_ch.extronlib.interface.DanteInterface>} names it.  There is no
    domain manager protocol here: it is kept in memory, Connected once L{Connect} is called.
    The password is never shown.
    """

    Connected = Event["DanteDomainManager"]("Called as C{(manager, 'Connected')}.")
    Disconnected = Event["DanteDomainManager"]("Called as C{(manager, 'Disconnected')}.")

    def __init__(
        self,
        Hostname: str,
        Credentials: tuple[str, str] | None = None,
        VerifyServerCert: bool = True,
        *,
        reactor: Any = None,
    ) -> None:
        _checks.host(Hostname, "Hostname")
        if Credentials is not None and (
            not isinstance(Credentials, tuple | list)
            or len(Credentials) != 2
            or not all(isinstance(c, str) for c in Credentials)
        ):
            raise TypeError("Credentials must be a (username, password) tuple of str")
        self.Hostname = Hostname
        self._credentials = tuple(Credentials) if Credentials is not None else None
        self.VerifyServerCert = bool(VerifyServerCert)
        self._rt: Runtime = resolveRuntime(reactor)
        self._status = "Disconnected"

    @property
    def Credentials(self) -> tuple[str, ...] | None:
        """The (username, password) given."""
        return self._credentials

    @property
    def ConnectionStatus(self) -> str:
        """'Connected' or 'Disconnected'."""
        return self._status

    def Connect(self, timeout: float | None = None) -> str:
        """Mark the manager connected; returns 'Connected' or 'ConnectedAlready'."""
        if self._status == "Connected":
            return "ConnectedAlready"
        self._status = "Connected"
        self._rt.twoFaced(emit, self._rt, self, "Connected", self, "Connected")
        return "Connected"

    def Disconnect(self) -> None:
        """Mark the manager disconnected."""
        if self._status == "Connected":
            self._status = "Disconnected"
            self._rt.twoFaced(emit, self._rt, self, "Disconnected", self, "Disconnected")

    def __repr__(self) -> str:
        user = self._credentials[0] if self._credentials else None
        return f"<DanteDomainManager {self.Hostname} user={user!r}>"
