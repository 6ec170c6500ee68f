"""L{GetConnectionHandler}: picks the handler class for an interface, per the manual's table."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from twisted_ch import _checks
from twisted_ch._gctune import handlerMade
from twisted_ch._handlers import RawSimplePipeHandler, RawTcpHandler
from twisted_ch._version import __version__

log = Logger(namespace="twisted_ch.handlers")


class NoUpdateCommand:
    """
    The keep-alive of a handler whose C{keepAliveQuery} string names no Update command of its
    interface (a project's typo): it sends nothing, so the device is never Connected.  The
    reference builds the same handler and raises C{TypeError: 'str' object is not callable} at
    every poll; here one error is logged when the handler is made.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, handler: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"<keepAliveQuery {self.name!r}: no Update{self.name}>"


def _updateCommands(Interface: Any) -> list[str]:
    """The names of C{Interface}'s Update commands (C{UpdatePower} -> C{'Power'})."""
    names = []
    for name in dir(Interface):
        if name.startswith("Update") and len(name) > 6:
            try:
                if callable(getattr(Interface, name, None)):
                    names.append(name[6:])
            except Exception:  # pragma: no cover - a property that raises
                continue
    return names


def ModuleVersion() -> str:
    """The ConnectionHandler module version this package implements."""
    return __version__


def _isModule(Interface: Any, keepAliveQuery: object) -> bool:
    """A Global Scripter module: has C{Update<query>} and C{SubscribeStatus} callables."""
    return (
        isinstance(keepAliveQuery, str)
        and callable(getattr(Interface, "Update" + keepAliveQuery, None))
        and callable(getattr(Interface, "SubscribeStatus", None))
    )


def GetConnectionHandler(
    Interface: Any,
    keepAliveQuery: Any = None,
    keepAliveQueryQualifier: dict[str, Any] | None = None,
    DisconnectLimit: int = 15,
    pollFrequency: float = 1,
    connectRetryTime: float = 5,
    serverTimeout: float = 300,
    *,
    reactor: Any = None,
) -> Any:
    """
    Create the connection handler suited to C{Interface}.

    @raise TypeError: C{Interface} is an EthernetServerInterface (non-Ex), a UDP
        EthernetServerInterfaceEx, or no supported interface type; or an argument's type is
        wrong.
    @raise ValueError: an EthernetClientInterface's Protocol is not TCP, UDP or SSH; or
        C{keepAliveQuery} is neither a callable nor a string.  A string that names no Update
        command of the interface builds a raw handler that polls nothing (the reference's
        handler, never Connected), with one error logged.
    """
    handler = _build(
        Interface,
        keepAliveQuery,
        keepAliveQueryQualifier,
        DisconnectLimit,
        pollFrequency,
        connectRetryTime,
        serverTimeout,
        reactor,
    )
    # recorded once complete, on the reactor thread (a program's clean stop finds it there)
    runtime = handler._rt
    runtime.twoFaced(handlerMade, runtime, handler)
    return handler


def _build(
    Interface: Any,
    keepAliveQuery: Any,
    keepAliveQueryQualifier: dict[str, Any] | None,
    DisconnectLimit: int,
    pollFrequency: float,
    connectRetryTime: float,
    serverTimeout: float,
    reactor: Any,
) -> Any:
    from twisted_ch.extronlib import interface as ifc

    serverEx = getattr(ifc, "EthernetServerInterfaceEx", None)
    server = getattr(ifc, "EthernetServerInterface", None)
    if serverEx is not None and isinstance(Interface, serverEx):
        if getattr(Interface, "Protocol", "TCP") == "UDP":
            raise TypeError(
                "UDP EthernetServerInterfaceEx is not supported: only TCP servers have clients "
                "to time out; use the interface without a connection handler"
            )
        from twisted_ch._server import ServerExHandler

        return ServerExHandler(
            Interface,
            _checks.period(serverTimeout, "serverTimeout"),
            _checks.period(connectRetryTime, "connectRetryTime"),
            reactor=reactor,
        )
    if server is not None and isinstance(Interface, server):
        raise TypeError("EthernetServerInterface is not supported; use EthernetServerInterfaceEx")

    _checks.disconnectLimit(DisconnectLimit)
    _checks.seconds(pollFrequency, "pollFrequency", maximum=_checks.MAX_PERIOD)  # (see PollTimer)
    _checks.period(connectRetryTime, "connectRetryTime")
    _checks.period(serverTimeout, "serverTimeout")
    if keepAliveQueryQualifier is not None and not isinstance(keepAliveQueryQualifier, dict):
        raise TypeError(
            f"keepAliveQueryQualifier must be a dict, not {type(keepAliveQueryQualifier).__name__}"
        )

    if _isModule(Interface, keepAliveQuery):
        return _moduleHandler(
            Interface,
            keepAliveQuery,
            keepAliveQueryQualifier,
            DisconnectLimit,
            pollFrequency,
            connectRetryTime,
            reactor,
        )
    missing: str | None = None
    if isinstance(keepAliveQuery, str):
        missing, keepAliveQuery = keepAliveQuery, NoUpdateCommand(keepAliveQuery)
    if keepAliveQuery is not None and not callable(keepAliveQuery):
        raise ValueError(
            "keepAliveQuery must be the name of an Update function in a Global Scripter Module "
            f"or a callable, not {type(keepAliveQuery).__name__}"
        )

    if isinstance(Interface, ifc.EthernetClientInterface):
        stream = _ethernetIsStream(Interface)
    elif isinstance(Interface, ifc.LinkInterface):
        # Serial, SP and other pipes report no connection state; Dante and endpoint links do
        stream = Interface.connectionOriented
    else:
        raise TypeError(f"{type(Interface).__name__!r} is not a supported interface type")
    cls: type[RawTcpHandler | RawSimplePipeHandler] = (
        RawTcpHandler if stream else RawSimplePipeHandler
    )
    handler = cls(
        Interface,
        DisconnectLimit,
        pollFrequency,
        keepAliveQuery,
        connectRetryTime,
        reactor=reactor,
    )
    if missing is not None:
        available = _updateCommands(Interface)
        log.error(
            "{device}: keepAliveQuery {query!r} is not an Update command of {kind} ({available}); "
            "the {cls} polls nothing and the device is never Connected",
            device=handler.logName,
            handler=handler,
            query=missing,
            kind=type(Interface).__name__,
            available=(
                "its Update commands: " + ", ".join(repr(n) for n in available)
                if available
                else "it has no Update commands"
            ),
            cls=cls.__name__,
        )
    return handler


def _ethernetIsStream(Interface: Any) -> bool:
    """TCP and SSH are connection-oriented, UDP is a pipe; other protocols are ValueErrors."""
    protocol = Interface.Protocol
    if protocol in ("TCP", "SSH"):
        return True
    if protocol == "UDP":
        return False
    raise ValueError(f"Unsupported Ethernet protocol type: {protocol!r} (use TCP, UDP or SSH)")


def _moduleHandler(
    Interface: Any,
    keepAliveQuery: str,
    qualifier: dict[str, Any] | None,
    DisconnectLimit: int,
    pollFrequency: float,
    connectRetryTime: float,
    reactor: Any,
) -> Any:
    from twisted_ch._modules import ModuleSimplePipeHandler, ModuleTcpHandler

    cls: type[ModuleTcpHandler | ModuleSimplePipeHandler] = (
        ModuleTcpHandler if _moduleIsConnectionOriented(Interface) else ModuleSimplePipeHandler
    )
    return cls(
        Interface,
        DisconnectLimit,
        pollFrequency,
        keepAliveQuery,
        qualifier,
        connectRetryTime,
        reactor=reactor,
    )


def _moduleIsConnectionOriented(Interface: Any) -> bool:
    from twisted_ch.extronlib import interface as ifc

    if isinstance(Interface, ifc.EthernetClientInterface):
        return _ethernetIsStream(Interface)
    if getattr(Interface, "ConnectionType", None) == "HTTP":
        return False
    return bool(getattr(Interface, "connectionOriented", False))
