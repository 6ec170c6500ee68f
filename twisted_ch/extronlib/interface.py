"""
ControlScript's C{extronlib.interface} device interfaces, each a Twisted endpoint plus one
L{twisted_ch.protocols.DeviceProtocol}.

Methods may be called from the reactor thread (waiting calls return Deferreds) or from a program
thread (they block and return values), see L{twisted_ch._runtime}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IStreamClientEndpoint

from twisted_ch._framing import DEFAULT_MAX_RESPONSE
from twisted_ch.extronlib._base import ETHERNET_PROTOCOLS, LinkInterface, _checkPort

# the other interface families live in their own modules; import them from here, as ControlScript
from twisted_ch.extronlib._ports import DanteInterface, SerialInterface, SPInterface
from twisted_ch.extronlib._servers import EthernetServerInterface, EthernetServerInterfaceEx

__all__ = ["EndpointInterface", "EthernetClientInterface", "LinkInterface"]


class EthernetClientInterface(LinkInterface):
    """
    A TCP, UDP or SSH client link to C{Hostname}:C{IPPort}.

    C{Credentials} is C{(username, password)} for SSH.  Keyword-only extras for Twisted code and
    tests: C{reactor}, an explicit C{endpoint} to connect through, and for SSH C{knownHosts} and
    C{hostKeyPolicy}.
    """

    def __init__(
        self,
        Hostname: str,
        IPPort: int,
        Protocol: str = "TCP",
        ServicePort: int = 0,
        Credentials: tuple[str, str] | None = None,
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        knownHosts: str | None = None,
        hostKeyPolicy: str = "reject",
        maxResponse: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        if not isinstance(Hostname, str) or not Hostname:
            raise TypeError(f"Hostname must be a non-empty str, not {Hostname!r}")
        _checkPort(IPPort, "IPPort")
        _checkPort(ServicePort, "ServicePort", zero=True)
        if not isinstance(Protocol, str):
            raise TypeError(f"Protocol must be a str, not {type(Protocol).__name__}")
        if Protocol not in ETHERNET_PROTOCOLS:
            raise ValueError(f"Protocol must be one of TCP, UDP or SSH, got {Protocol!r}")
        if Credentials is not None and (
            not isinstance(Credentials, tuple | list)
            or len(Credentials) != 2
            or not all(isinstance(c, str) for c in Credentials)
        ):
            raise TypeError("Credentials must be a (username, password) tuple of str")
        if Protocol == "SSH" and Credentials is None and endpoint is None:
            raise ValueError("SSH needs Credentials=(username, password)")
        if hostKeyPolicy not in ("reject", "accept-new"):
            raise ValueError(
                f"hostKeyPolicy must be 'reject' or 'accept-new', got {hostKeyPolicy!r}"
            )
        self._hostname = Hostname
        self._port = IPPort
        self._protocol = Protocol
        self._servicePort = ServicePort
        self._credentials = tuple(Credentials) if Credentials is not None else None
        self._knownHosts = knownHosts
        self._hostKeyPolicy = hostKeyPolicy
        self.connectionOriented = Protocol != "UDP"
        super().__init__(
            f"{Protocol.lower()}:{Hostname}:{IPPort}",
            reactor=reactor,
            endpoint=endpoint,
            maxResponse=maxResponse,
            reopenDelay=None if self.connectionOriented else 5.0,
        )
        if not self.connectionOriented:
            self._rt.twoFaced(self._link.open)

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        reactor = self._rt.reactor
        bind = ("", self._servicePort) if self._servicePort else None
        if self._protocol == "TCP":
            from twisted_ch.endpoints.tcp import TCPHostnameEndpoint

            # an address is connected to as it is; a name is resolved on every attempt
            return TCPHostnameEndpoint(reactor, self._hostname, self._port, bindAddress=bind)
        if self._protocol == "UDP":
            from twisted_ch.endpoints.udp import UDPClientEndpoint

            return UDPClientEndpoint(reactor, self._hostname, self._port, bindAddress=bind)
        from twisted_ch.endpoints.ssh import SSHShellEndpoint

        assert self._credentials is not None
        username, password = self._credentials
        return SSHShellEndpoint(
            reactor,
            self._hostname,
            self._port,
            username=username,
            password=password,
            knownHosts=self._knownHosts,
            hostKeyPolicy="accept-new" if self._hostKeyPolicy == "accept-new" else "reject",
        )

    @property
    def Hostname(self) -> str:
        """The host name or address given."""
        return self._hostname

    @property
    def IPAddress(self) -> str:
        """The peer's address once connected, else the host name given."""
        protocol = self._link.protocol
        if protocol is not None and protocol.transport is not None:
            peer = getattr(protocol.transport, "getPeer", lambda: None)()
            host = getattr(peer, "host", None)
            if isinstance(host, str):
                return host
        return self._hostname

    @property
    def IPPort(self) -> int:
        """The device's port."""
        return self._port

    @property
    def Protocol(self) -> str:
        """'TCP', 'UDP' or 'SSH'."""
        return self._protocol

    @property
    def ServicePort(self) -> int:
        """The local port to bind (0: any)."""
        return self._servicePort

    @property
    def Credentials(self) -> tuple[str, str] | None:
        """The SSH (username, password), if any."""
        return self._credentials  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<EthernetClientInterface {self._protocol} {self._hostname}:{self._port}>"


class EndpointInterface(LinkInterface):
    """
    A device link over any Twisted client endpoint, with the interface API (for Twisted code).

    C{connectionOriented=False} makes it behave like a serial port or UDP socket: it opens at
    once, reopens C{reopenDelay} seconds after a loss, and a handler's keep-alive decides whether
    the device is connected.
    """

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        *,
        reactor: Any = None,
        connectionOriented: bool = True,
        description: str | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
        reopenDelay: float = 5.0,
    ) -> None:
        if not IStreamClientEndpoint.providedBy(endpoint):
            raise TypeError(f"endpoint must provide IStreamClientEndpoint, not {endpoint!r}")
        self.connectionOriented = connectionOriented
        super().__init__(
            description or repr(endpoint),
            reactor=reactor,
            endpoint=endpoint,
            maxResponse=maxResponse,
            reopenDelay=None if connectionOriented else reopenDelay,
        )
        if not connectionOriented:
            self._rt.twoFaced(self._link.open)

    def __repr__(self) -> str:
        return f"<EndpointInterface {self._link.description}>"


__all__ += [
    "DanteInterface",
    "EthernetServerInterface",
    "EthernetServerInterfaceEx",
    "SPInterface",
    "SerialInterface",
]
