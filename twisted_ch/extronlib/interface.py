"""
ControlScript's C{extronlib.interface} device interfaces, each a Twisted endpoint plus one
L{twisted_ch.protocols.DeviceProtocol}.

Methods may be called from the reactor thread (waiting calls return Deferreds) or from a program
thread (they block and return values), see L{twisted_ch._runtime}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IStreamClientEndpoint

from twisted_ch import _checks, _site
from twisted_ch._framing import DEFAULT_MAX_RESPONSE
from twisted_ch.extronlib._base import ETHERNET_PROTOCOLS, LinkInterface, _checkPort

# the other interface families live in their own modules; import them from here, as ControlScript
from twisted_ch.extronlib._io import (
    CircuitBreakerInterface,
    ContactInterface,
    DigitalInputInterface,
    DigitalIOInterface,
    FlexIOInterface,
    IOBackend,
    IRInterface,
    PoEInterface,
    RelayInterface,
    SWACReceptacleInterface,
    SWPowerInterface,
    TallyInterface,
    VolumeInterface,
    setIOBackend,
)
from twisted_ch.extronlib._ports import DanteInterface, SerialInterface, SPInterface
from twisted_ch.extronlib._servers import EthernetServerInterface, EthernetServerInterfaceEx
from twisted_ch.extronlib._tls import TLSSettings
from twisted_ch.project._addresses import (
    DATAGRAM_TYPES,
    PLAIN_STREAM_TYPES,
    STREAM_TYPES,
    hostPortTarget,
    streamTarget,
)

__all__ = [
    "HOST_KEY_POLICIES",
    "EndpointInterface",
    "EthernetClientInterface",
    "LinkInterface",
    "MissingCredentials",
    "defaultHostKeyPolicy",
    "setDefaultHostKeyPolicy",
]

#: The SSH host-key policies: refuse unknown hosts, or trust a host's key on first use.
HOST_KEY_POLICIES = ("reject", "accept-new")

_defaultHostKeyPolicy = "reject"


def setDefaultHostKeyPolicy(policy: str) -> None:
    """
    The SSH host-key policy of interfaces that do not pass one (Global Scripter modules cannot):
    C{'reject'} (the default: an unknown host fails with UnknownHostKey) or C{'accept-new'}
    (trust on first use; a changed key is still refused).  Used from the next connect attempt.
    """
    global _defaultHostKeyPolicy
    if policy not in HOST_KEY_POLICIES:
        raise ValueError(f"hostKeyPolicy must be 'reject' or 'accept-new', got {policy!r}")
    _defaultHostKeyPolicy = policy


def defaultHostKeyPolicy() -> str:
    """The program-wide SSH host-key policy (L{setDefaultHostKeyPolicy})."""
    return _defaultHostKeyPolicy


class MissingCredentials(ValueError):
    """An SSH interface was created without Credentials: each connect attempt fails with this."""


class EthernetClientInterface(LinkInterface):
    """
    A TCP, UDP or SSH client link to C{Hostname}:C{IPPort}.

    C{Credentials} is C{(username, password)} for SSH; an SSH interface created without them (as
    Global Scripter modules do until the program sets them) fails each connect attempt with a
    L{MissingCredentials} reason.  C{bufferSize} is the largest UDP datagram delivered whole.
    L{SSLWrap} makes a TCP link TLS.  Keyword-only extras for Twisted code and tests: C{reactor},
    an explicit C{endpoint} to connect through, and for SSH C{knownHosts} and C{hostKeyPolicy}
    (None: the program-wide L{defaultHostKeyPolicy}).
    """

    def __init__(
        self,
        Hostname: str,
        IPPort: int,
        Protocol: str = "TCP",
        ServicePort: int = 0,
        Credentials: tuple[str, str] | None = None,
        bufferSize: int = 4096,
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        knownHosts: str | None = None,
        hostKeyPolicy: str | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        _checks.host(Hostname, "Hostname")
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
        if hostKeyPolicy is not None and hostKeyPolicy not in HOST_KEY_POLICIES:
            raise ValueError(
                f"hostKeyPolicy must be 'reject' or 'accept-new', got {hostKeyPolicy!r}"
            )
        self._bufferSize = self._checkBufferSize(bufferSize)
        self._tls: TLSSettings | None = None
        self._hostname = Hostname
        self._port = IPPort
        self._protocol = Protocol
        self._servicePort = ServicePort
        self._credentials = tuple(Credentials) if Credentials is not None else None
        self._knownHosts = knownHosts
        self._hostKeyPolicy = hostKeyPolicy
        self.connectionOriented = Protocol != "UDP"
        # what this machine's [program] addresses map the program's address to, if anything
        self._site = _site.current() if endpoint is None else None
        site = self._site
        self._mapped = site is not None and site.route(Hostname, IPPort, False) is not None
        super().__init__(
            f"{Protocol.lower()}:{Hostname}:{IPPort}",
            reactor=reactor,
            endpoint=endpoint,
            maxResponse=maxResponse,
            reopenDelay=None if self.connectionOriented else 5.0,
        )
        if not self.connectionOriented:
            self._rt.twoFaced(self._link.open)

    @staticmethod
    def _checkBufferSize(bufferSize: object) -> int:
        if isinstance(bufferSize, bool) or not isinstance(bufferSize, int):
            raise TypeError(f"bufferSize must be an int, not {type(bufferSize).__name__}")
        if not 1 <= bufferSize <= 65535:
            raise ValueError(f"bufferSize must be 1-65535, got {bufferSize}")
        return bufferSize

    @property
    def bufferSize(self) -> int:
        """The largest UDP datagram delivered whole (longer ones are cut, as on a processor)."""
        return self._bufferSize

    def SetBufferSize(self, bufferSize: int) -> None:
        """Set L{bufferSize} (UDP only)."""
        if self._protocol != "UDP":
            raise ValueError(f"SetBufferSize applies to UDP interfaces, not {self._protocol}")
        self._bufferSize = self._checkBufferSize(bufferSize)

    def linkData(self, data: bytes) -> None:
        if self._protocol == "UDP" and len(data) > self._bufferSize:
            data = data[: self._bufferSize]
        super().linkData(data)

    def SSLWrap(
        self,
        certificate: str | None = None,
        cert_reqs: str = "CERT_NONE",
        ssl_version: str = "TLSv2",
        ca_certs: str | None = None,
    ) -> None:
        """
        Speak TLS on this TCP link from its next connection.  C{certificate} names a client
        certificate with its key and C{ca_certs} the CA certificates to trust (aliases in the
        program data directory's C{certificates/}); C{cert_reqs} C{'CERT_REQUIRED'} or
        C{'CERT_OPTIONAL'} verifies the server's certificate and name (against C{ca_certs}, else
        the host's CAs), C{'CERT_NONE'} does not.  TLS 1.2 or newer.
        """
        if self._protocol != "TCP":
            raise ValueError(f"SSLWrap needs a TCP interface, not {self._protocol}")
        self._tls = TLSSettings.make(certificate, cert_reqs, ssl_version, ca_certs)

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        from twisted_ch.endpoints._strings import clientFromString

        reactor = self._rt.reactor
        bind = ("", self._servicePort) if self._servicePort else None
        host, port = self._hostname, self._port
        found = self._site.route(host, port) if self._site is not None else None
        if self._protocol == "TCP":
            if found is not None:
                host, port, described = streamTarget(
                    found,
                    port,
                    "an SSLWrap TCP interface" if self._tls else "a TCP interface",
                    PLAIN_STREAM_TYPES if self._tls else STREAM_TYPES,
                )
                if described is not None:
                    stream = clientFromString(reactor, described)
                    # TLS (SSLWrap) over the mapped stream still names the program's host
                    if self._tls is not None:
                        return self._tls.clientEndpoint(self._hostname, stream)
                    return stream
            from twisted_ch.endpoints.tcp import TCPHostnameEndpoint

            # an address is connected to as it is; a name is resolved on every attempt
            tcp = TCPHostnameEndpoint(reactor, host, port, bindAddress=bind)
            if self._tls is not None:
                return self._tls.clientEndpoint(self._hostname, tcp)
            return tcp
        if self._protocol == "UDP":
            if found is not None:
                host, port, described = streamTarget(found, port, "a UDP interface", DATAGRAM_TYPES)
                if described is not None:
                    return clientFromString(reactor, described)
            from twisted_ch.endpoints.udp import UDPClientEndpoint

            return UDPClientEndpoint(reactor, host, port, bindAddress=bind)
        from twisted_ch.endpoints.ssh import SSHShellEndpoint

        if self._credentials is None:
            raise MissingCredentials("SSH needs Credentials=(username, password)")
        if found is not None:
            # SSH is spoken to the mapped host and port (a tcp: description gives both)
            host, port = hostPortTarget(found, port, "an SSH interface")
        username, password = self._credentials
        policy = self._hostKeyPolicy or _defaultHostKeyPolicy
        return SSHShellEndpoint(
            reactor,
            host,
            port,
            username=username,
            password=password,
            knownHosts=self._knownHosts,
            hostKeyPolicy="accept-new" if policy == "accept-new" else "reject",
        )

    @property
    def Hostname(self) -> str:
        """The host name or address given."""
        return self._hostname

    @property
    def IPAddress(self) -> str:
        """
        The peer's address once connected, else the host name given (always the host name given
        when C{[program] addresses} maps it: the program sees the address it named).
        """
        if self._mapped:
            return self._hostname
        return self._peerHost(self._hostname)

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
        """The SSH (username, password), if any; settable before a connect attempt."""
        return self._credentials  # type: ignore[return-value]

    @Credentials.setter
    def Credentials(self, value: tuple[str, str] | None) -> None:
        if value is not None and (
            not isinstance(value, tuple | list)
            or len(value) != 2
            or not all(isinstance(c, str) for c in value)
        ):
            raise TypeError("Credentials must be a (username, password) tuple of str")
        self._credentials = tuple(value) if value is not None else None

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
    "CircuitBreakerInterface",
    "ContactInterface",
    "DanteInterface",
    "DigitalIOInterface",
    "DigitalInputInterface",
    "EthernetServerInterface",
    "EthernetServerInterfaceEx",
    "FlexIOInterface",
    "IOBackend",
    "IRInterface",
    "PoEInterface",
    "RelayInterface",
    "SPInterface",
    "SWACReceptacleInterface",
    "SWPowerInterface",
    "SerialInterface",
    "TallyInterface",
    "VolumeInterface",
    "setIOBackend",
]
