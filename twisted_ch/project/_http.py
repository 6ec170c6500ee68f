# -*- test-case-name: tests.test_project_addresses -*-
"""
The address mapping of a program's own HTTP requests (C{urllib.request.urlopen}, C{http.client}
connections, HTTPS ones too): while a site with addresses is installed, a connection made on a
program thread (or a thread working for the program with its runtime, as a module handler's
connect thread) to a mapped host goes to its target; the request itself (its C{Host} header, the
TLS server name) still names what the program named.  Connections to other hosts, and any made
off the program's threads, are untouched; L{deactivate} puts C{http.client} back as it was.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from typing import Any

from twisted_ch.project._addresses import HOST_PORT_TYPES, AddressMap, descriptionHostPort, unfit

__all__ = ["activate", "active", "deactivate"]

_lock = threading.Lock()
_original: Callable[[http.client.HTTPConnection], None] | None = None
_map: AddressMap | None = None


def _programs() -> bool:
    """
    Whether the calling thread runs program code: a program thread, or one working for it (a
    module handler's connect thread runs with the program's runtime).
    """
    from twisted.python import threadable

    from twisted_ch._runtime import ProgramThread, currentRuntime, onProgramThread

    if onProgramThread():
        return True
    if threadable.isInIOThread():
        return False
    return isinstance(currentRuntime().dispatcher, ProgramThread)


def _destination(connection: http.client.HTTPConnection) -> tuple[str, int] | None:
    routes = _map
    if routes is None or not _programs():
        return None
    found = routes.route(connection.host, connection.port)
    if found is None:
        return None
    name, target = found
    if target.description is None:
        return target.address(connection.port)
    if target.kind not in HOST_PORT_TYPES:
        raise OSError(str(unfit(name, target, "an HTTP request", HOST_PORT_TYPES)))
    return descriptionHostPort(target.description)


def _connect(connection: http.client.HTTPConnection) -> None:
    original = _original
    assert original is not None
    destination = _destination(connection)
    if destination is None:
        original(connection)
        return
    create = connection._create_connection  # type: ignore[attr-defined]

    def mapped(address: Any, *args: Any, **kwargs: Any) -> Any:
        return create(destination, *args, **kwargs)

    connection._create_connection = mapped  # type: ignore[attr-defined]
    try:
        original(connection)
    finally:
        connection._create_connection = create  # type: ignore[attr-defined]


def activate(routes: AddressMap) -> None:
    """Map the program threads' HTTP connections through C{routes} (replacing any earlier)."""
    global _original, _map
    with _lock:
        _map = routes
        if _original is None:
            _original = http.client.HTTPConnection.connect
            http.client.HTTPConnection.connect = _connect  # type: ignore[method-assign, assignment]


def deactivate() -> None:
    """Stop mapping HTTP connections: C{http.client} is as it was."""
    global _original, _map
    with _lock:
        _map = None
        if _original is not None:
            http.client.HTTPConnection.connect = _original  # type: ignore[method-assign, assignment]
            _original = None


def active() -> bool:
    """Whether HTTP connections are being mapped."""
    return _original is not None
