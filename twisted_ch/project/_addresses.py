# -*- test-case-name: tests.test_project_addresses -*-
"""
What a program names (an IP address, a host name, or C{address:port}) mapped to what reaches it on
this machine (an address, C{address:port}, or a client endpoint description): the C{[program]
addresses} table of C{twistd chandler}.

    addresses = { "192.168.1.12:22023" = "tcp:127.0.0.1:2222", "192.168.1.20" = "127.0.0.1" }

A key with a port wins over the key of its address alone.  A target address keeps the interface's
own transport (an SSH interface still speaks SSH, an SSLWrap one TLS, a UDP one UDP) and, without a
port, the program's port.  A target description must fit the interface (L{STREAM_TYPES} for TCP,
Serial over Ethernet, Dante and SummitConnect; C{udp} for UDP; C{tcp}/C{tcp6} for SSH and HTTP,
whose host and port are used).
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger

__all__ = [
    "DATAGRAM_TYPES",
    "HOST_PORT_TYPES",
    "PLAIN_STREAM_TYPES",
    "STREAM_TYPES",
    "Router",
    "AddressMap",
    "AddressProblem",
    "Target",
    "descriptionHostPort",
    "hostPortTarget",
    "mappedStream",
    "normalHost",
    "parseName",
    "parseTarget",
    "streamTarget",
    "unfit",
]

log = Logger(namespace="twisted_ch.program")

#: Endpoint types a stream interface (TCP, Serial over Ethernet, Dante, SummitConnect) may be
#: mapped to; an SSLWrap interface only to the plain ones (its own TLS goes over them).
STREAM_TYPES: Final = ("tcp", "tcp6", "unix", "ssl", "tls")
PLAIN_STREAM_TYPES: Final = ("tcp", "tcp6", "unix")
#: Endpoint types a UDP interface may be mapped to.
DATAGRAM_TYPES: Final = ("udp",)
#: Endpoint types whose host and port an SSH interface or an HTTP request may be mapped to.
HOST_PORT_TYPES: Final = ("tcp", "tcp6")
_TYPES: Final = (*STREAM_TYPES, *DATAGRAM_TYPES)

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_EXAMPLE = "an address, a host name, or address:port such as 192.168.1.12:22023"


class AddressProblem(ValueError):
    """An address or target that cannot be used; the message says what was expected."""


def normalHost(host: str) -> str:
    """A host as keys are compared: an IP address in its usual form, a name lower-cased."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower().rstrip(".")


def _port(text: str, whole: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise AddressProblem(f"a port from 1 to 65535 in {whole!r}, got {text!r}")
    return int(text)


def _host(text: str, whole: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if len(text) > 253 or _HOSTNAME.fullmatch(text) is None or text.replace(".", "").isdigit():
        raise AddressProblem(f"{_EXAMPLE}, got {whole!r}")
    return text.lower().rstrip(".")


def parseName(text: str) -> tuple[str, int | None]:
    """
    C{host}, C{host:port}, an IPv6 address, or C{[IPv6]:port} -> (host as compared, port).

    @raise AddressProblem: anything else (a URL, an empty host, a port out of range).
    """
    if not isinstance(text, str) or not text or text != text.strip():
        raise AddressProblem(f"{_EXAMPLE}, got {text!r}")
    if "://" in text or "/" in text or "@" in text:
        raise AddressProblem(f"{_EXAMPLE} (not a URL), got {text!r}")
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(.*))?", text)
    if m is not None:
        try:
            host = str(ipaddress.IPv6Address(m.group(1)))
        except ValueError:
            raise AddressProblem(f"an IPv6 address in brackets, got {text!r}") from None
        return host, None if m.group(2) is None else _port(m.group(2), text)
    if text.count(":") > 1:  # an IPv6 address without a port
        try:
            return str(ipaddress.IPv6Address(text)), None
        except ValueError:
            raise AddressProblem(f"{_EXAMPLE} ([IPv6]:port for IPv6), got {text!r}") from None
    host, sep, port = text.partition(":")
    return _host(host, text), _port(port, text) if sep else None


@dataclass(frozen=True)
class Target:
    """
    Where a mapped address goes: C{host} (and C{port}; None: the program's port), or a client
    endpoint C{description}.
    """

    host: str | None = None
    port: int | None = None
    description: str | None = None

    @property
    def kind(self) -> str | None:
        """The endpoint type of C{description} (C{'tcp'}), None for an address."""
        if self.description is None:
            return None
        return self.description.split(":", 1)[0].strip().lower()

    def address(self, port: int) -> tuple[str, int]:
        """The host and port an address target reaches for a program's C{port}."""
        assert self.host is not None
        return self.host, self.port if self.port is not None else port

    def __str__(self) -> str:
        if self.description is not None:
            return self.description
        host = f"[{self.host}]" if self.host and ":" in self.host else str(self.host)
        return host if self.port is None else f"{host}:{self.port}"


def _split(description: str) -> list[str]:
    """A description's parts, split on unescaped colons, escapes removed."""
    parts, current, chars = [], [], iter(description)
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def descriptionHostPort(description: str) -> tuple[str, int]:
    """
    The host and port of a C{tcp}, C{tcp6} or C{udp} description (positional or C{host=},
    C{port=}).

    @raise AddressProblem: there is no host or no usable port.
    """
    parts = _split(description)
    named = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    positional = [p for p in parts[1:] if "=" not in p]
    host = named.get("host") or (positional.pop(0) if positional else None)
    port = named.get("port") or (positional.pop(0) if positional else None)
    if not host or port is None:
        raise AddressProblem(f"a host and a port in {description!r}")
    return host, _port(port.strip(), description)


def parseTarget(text: str) -> Target:
    """
    What an address is mapped to: an address, C{address:port}, or a client endpoint description
    of a type in L{STREAM_TYPES} or L{DATAGRAM_TYPES}.

    @raise AddressProblem: anything else (a URL, an unknown type, a port out of range).
    """
    if not isinstance(text, str):
        raise AddressProblem(f"an address or a client endpoint description, got {text!r}")
    if "://" in text:
        raise AddressProblem(
            "an address or a client endpoint description such as tcp:127.0.0.1:2222 "
            f"(not a URL), got {text!r}"
        )
    kind = text.split(":", 1)[0].strip().lower() if ":" in text else ""
    if kind in _TYPES:
        if kind in ("tcp", "tcp6", "udp"):
            descriptionHostPort(text)
        elif len(text) <= len(kind) + 1:
            raise AddressProblem(f"a complete {kind} endpoint description, got {text!r}")
        return Target(description=text)
    if kind and not re.fullmatch(r"[0-9]*", text.split(":", 1)[1]) and "[" not in text:
        if text.count(":") == 1:
            raise AddressProblem(
                f"an address, address:port or a client endpoint description of type "
                f"{', '.join(_TYPES)}, got {text!r}"
            )
    host, port = parseName(text)
    return Target(host=host, port=port)


class AddressMap:
    """
    The C{addresses} table, checked: L{route} finds where a program's host and port go, and the
    first use of each entry is logged (C{"192.168.1.12:22023 -> tcp:127.0.0.1:2222"}).
    """

    def __init__(self, table: Mapping[str, str]) -> None:
        self._routes: dict[tuple[str, int | None], tuple[str, Target]] = {}
        for name, value in table.items():
            try:
                key = parseName(name)
            except AddressProblem as e:
                raise AddressProblem(f"{name!r}: expected {e}") from None
            if key in self._routes:
                raise AddressProblem(f"{name!r}: it is also {self._routes[key][0]!r}")
            try:
                self._routes[key] = (name, parseTarget(value))
            except AddressProblem as e:
                raise AddressProblem(f"{name!r}: expected {e}") from None
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._routes)

    def __iter__(self) -> Iterator[tuple[str, Target]]:
        return iter(self._routes.values())

    def route(self, host: str, port: int | None, used: bool = True) -> tuple[str, Target] | None:
        """
        The entry (its key as written, its target) for the program's C{host} and C{port}, or
        None.  C{used}: this is a use (logged the first time).
        """
        normal = normalHost(host)
        found = self._routes.get((normal, port)) if port is not None else None
        if found is None:
            found = self._routes.get((normal, None))
        if found is not None and used:
            name, target = found
            with self._lock:
                first = name not in self._logged
                self._logged.add(name)
            if first:
                log.info("{name} -> {target}", name=name, target=str(target))
        return found


def unfit(name: str, target: Target, interface: str, allowed: tuple[str, ...]) -> AddressProblem:
    """The error of a target description that does not fit the interface."""
    return AddressProblem(
        f"the addresses entry {name!r} -> {target} does not fit {interface}: map it to an "
        f"address, address:port or a description of type {', '.join(allowed)}"
    )


def streamTarget(
    found: tuple[str, Target], port: int, interface: str, allowed: tuple[str, ...]
) -> tuple[str, int, str | None]:
    """
    An interface's mapped destination: (host, port, None) for an address target, or ('', port,
    description) for a description of a type in C{allowed}.

    @raise AddressProblem: the description does not fit the interface.
    """
    name, target = found
    if target.description is None:
        host, port = target.address(port)
        return host, port, None
    if target.kind not in allowed:
        raise unfit(name, target, interface, allowed)
    return "", port, target.description


def hostPortTarget(found: tuple[str, Target], port: int, interface: str) -> tuple[str, int]:
    """
    The host and port an interface that needs both (SSH) is mapped to: an address target, or
    the host and port of a C{tcp}/C{tcp6} description.
    """
    name, target = found
    if target.description is None:
        return target.address(port)
    if target.kind not in HOST_PORT_TYPES:
        raise unfit(name, target, interface, HOST_PORT_TYPES)
    return descriptionHostPort(target.description)


class Router(Protocol):
    """What finds an address's target (a L{twisted_ch._site.ProgramSite})."""

    def route(self, host: str, port: int | None, used: bool = True) -> tuple[str, Target] | None:
        """The entry for C{host} and C{port}, if mapped."""


def mappedStream(
    reactor: Any, site: Router | None, host: str, port: int, interface: str
) -> IStreamClientEndpoint:
    """
    The stream endpoint of an interface that names C{host}:C{port} (Dante, SummitConnect): its
    C{addresses} target through C{site} if mapped, else a TCP connection to it.
    """
    from twisted_ch.endpoints._strings import clientFromString
    from twisted_ch.endpoints.tcp import TCPHostnameEndpoint

    found = site.route(host, port) if site is not None else None
    if found is not None:
        host, port, described = streamTarget(found, port, interface, STREAM_TYPES)
        if described is not None:
            return clientFromString(reactor, described)
    return TCPHostnameEndpoint(reactor, host, port)
