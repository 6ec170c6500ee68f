"""
twisted_ch: Extron's ConnectionHandler on Twisted.

Keep AV device links (TCP, SSH, UDP, serial) alive with keep-alive polling, a send counter and
automatic reconnection.  Start with L{GetConnectionHandler}.
"""

from twisted_ch._factory import GetConnectionHandler, ModuleVersion
from twisted_ch._framing import ResponseMatcher
from twisted_ch._gctune import GCTuner, tuneGC
from twisted_ch._handlers import ConnectionHandler, RawSimplePipeHandler, RawTcpHandler
from twisted_ch._retry import RetryPolicy
from twisted_ch._runtime import ProgramThread, Runtime, currentRuntime, useRuntime
from twisted_ch._version import __version__
from twisted_ch.extronlib.interface import EndpointInterface
from twisted_ch.protocols.device import DeviceProtocol, LinkDown, WaitQueueFull, WriteBufferFull

__all__ = [
    "ConnectionHandler",
    "DeviceProtocol",
    "EndpointInterface",
    "GCTuner",
    "GetConnectionHandler",
    "LinkDown",
    "ModuleVersion",
    "ProgramThread",
    "RawSimplePipeHandler",
    "RawTcpHandler",
    "ResponseMatcher",
    "RetryPolicy",
    "Runtime",
    "WaitQueueFull",
    "WriteBufferFull",
    "__version__",
    "currentRuntime",
    "tuneGC",
    "useRuntime",
]


def __getattr__(name: str) -> object:
    # the module and server handlers live in their own modules; import them on first use
    if name in ("ModuleTcpHandler", "ModuleSimplePipeHandler"):
        from twisted_ch import _modules

        return getattr(_modules, name)
    if name == "ServerExHandler":
        from twisted_ch import _server

        return _server.ServerExHandler
    raise AttributeError(f"module 'twisted_ch' has no attribute {name!r}")
