"""
Client endpoints for device transports that Twisted lacks.

Every endpoint here provides L{twisted.internet.interfaces.IStreamClientEndpoint}:
C{connect(factory)} returns a Deferred that fires with the protocol once the link is usable, and
the protocol sees a stream-like transport (C{write}, C{loseConnection}, C{getPeer}, C{getHost}) and
exactly one C{connectionLost}.  TCP to a host name uses L{TCPHostnameEndpoint}, which reports a
failed attempt at once (Twisted's HostnameEndpoint reports it one attempt delay late).
"""

from typing import Any

_EXPORTS = {
    "SerialEndpoint": "serial",
    "SerialAddress": "serial",
    "SerialPortUnavailable": "serial",
    "SerialDeviceLost": "serial",
    "UDPClientEndpoint": "udp",
    "TCPHostnameEndpoint": "tcp",
    "SSHShellEndpoint": "ssh",
    "UnknownHostKey": "ssh",
    "HostKeyChanged": "ssh",
    "HostKeyRevoked": "ssh",
    "AuthenticationFailed": "ssh",
    "KnownHostsFileError": "ssh",
    "clientFromString": "_strings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # imported on first use: pyserial and Conch stay unloaded for code that needs neither
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'twisted_ch.endpoints' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"twisted_ch.endpoints.{module}"), name)
