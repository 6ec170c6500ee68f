# -*- test-case-name: tests.test_hostile_http -*-
"""
Whether a request's C{Host} names this machine (DNS rebinding defence), shared by the status site
and the resources it mounts (the virtual panel), so both accept the same names.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

__all__ = ["hostOf", "namesThisMachine"]


def hostOf(header: bytes) -> str:
    """The host part of a C{Host} header (or of an origin's authority), lower case."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8790
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        text = text.rsplit(":", 1)[0]
    return text.rstrip(".")


def namesThisMachine(header: bytes | None, names: Iterable[str] = ()) -> bool:
    """
    Whether a C{Host} header names this machine: an IP address literal, C{localhost} (or a
    name under C{.localhost}), this machine's host name or fully qualified name, or one of
    C{names} (the configured ones).  A request without a C{Host} header is not a browser's
    (a browser always sends one), so it is accepted.
    """
    if header is None:
        return True
    host = hostOf(header)
    if not host:
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return True
    known = {socket.gethostname().lower(), socket.getfqdn().lower()}
    known.update(name.strip().lower().rstrip(".") for name in names)
    return host in known
