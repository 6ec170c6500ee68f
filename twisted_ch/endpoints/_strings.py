"""
Endpoint descriptions to client endpoints, with each plugin parser found once per process.

Twisted's C{clientFromString} scans the installed plugins (a walk over C{twisted/plugins} on
C{sys.path}) for every description whose type it does not know itself: C{udp:}, C{serial:},
C{ssh:} and every other type a plugin provides.  That costs a millisecond or two and a burst of
short-lived objects per call; a fleet of 10,000 SSH or SNMP devices paid it twice per device
at start.  Here the parsers are collected by one scan and looked up by prefix; an unknown
prefix scans again (a plugin installed since), then fails as Twisted does.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import endpoints
from twisted.internet.interfaces import (
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
)
from twisted.plugin import getPlugins

__all__ = ["clientFromString"]

#: the plugin parsers by upper-case prefix, as found by the last scan
_parsers: dict[str, Any] = {}


def _scan() -> None:
    found: dict[str, Any] = {}
    for plugin in getPlugins(IStreamClientEndpointStringParserWithReactor):
        prefix = plugin.prefix
        if isinstance(prefix, bytes):
            prefix = prefix.decode("ascii", "replace")
        found.setdefault(str(prefix).upper(), plugin)  # the first found wins, as in Twisted
    _parsers.clear()
    _parsers.update(found)


def clientFromString(reactor: Any, description: str) -> IStreamClientEndpoint:
    """
    L{twisted.internet.endpoints.clientFromString}, the same endpoints and errors, without a
    plugin scan per call.
    """
    parse = getattr(endpoints, "_parse", None)
    builtin = getattr(endpoints, "_clientParsers", None)
    if parse is None or builtin is None:  # a Twisted without these: its own way
        return _twisted(reactor, description)
    args, kwargs = parse(description)
    name = str(args[0]).upper() if args else ""
    factories = getattr(endpoints, "_endpointClientFactories", None)
    if name and name in builtin and factories is not None and name in factories:
        # what Twisted's clientFromString does with a type of its own, without parsing the
        # description a second time (the parse is most of the cost: a fleet's start pays it
        # per device, twice)
        options = builtin[name](*args[1:], **kwargs)
        built: IStreamClientEndpoint = factories[name](reactor, **options)
        return built
    if not name or name in builtin:
        return _twisted(reactor, description)
    plugin = _parsers.get(name)
    if plugin is None:
        _scan()
        plugin = _parsers.get(name)
        if plugin is None:  # Twisted's error for an unknown type
            return _twisted(reactor, description)
    endpoint: IStreamClientEndpoint = plugin.parseStreamClient(reactor, *args[1:], **kwargs)
    return endpoint


def _twisted(reactor: Any, description: str) -> IStreamClientEndpoint:
    endpoint: IStreamClientEndpoint = endpoints.clientFromString(reactor, description)
    return endpoint
