"""
Client endpoint string parsers for C{serial:} and C{udp:} (see L{twisted_ch.endpoints}).

    serial:/dev/ttyUSB0:baudrate=9600:bytesize=8:parity=N:stopbits=1:xonxoff=0:rtscts=0
    udp:host=192.0.2.1:port=5000      udp:192.0.2.1:5000

Colons inside a value (a device path, an IPv6 address) must be escaped by the caller with
L{twisted.internet.endpoints.quoteStringArgument}.  The endpoint modules are imported only when
a string is parsed.
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IReactorCore,
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
)
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _SerialClientParser:
    """
    C{serial:DEVICE[:baudrate=N][:bytesize=N][:parity=N|E|O|M|S][:stopbits=1|1.5|2]
    [:xonxoff=0|1][:rtscts=0|1]} to a L{twisted_ch.endpoints.serial.SerialEndpoint}.
    """

    prefix = "serial"

    def parseStreamClient(
        self, reactor: IReactorCore, *args: object, **kwargs: object
    ) -> IStreamClientEndpoint:
        from twisted_ch.endpoints.serial import parseSerialEndpoint

        return parseSerialEndpoint(reactor, *args, **kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _UDPClientParser:
    """
    C{udp:HOST:PORT} or C{udp:host=HOST:port=PORT[:bindAddress=IP][:bindPort=N]
    [:maxDatagram=N]} to a L{twisted_ch.endpoints.udp.UDPClientEndpoint}.
    """

    prefix = "udp"

    def parseStreamClient(
        self, reactor: IReactorCore, *args: object, **kwargs: object
    ) -> IStreamClientEndpoint:
        from twisted_ch.endpoints.udp import parseUDPEndpoint

        return parseUDPEndpoint(reactor, *args, **kwargs)


serialClientEndpointParser = _SerialClientParser()
udpClientEndpointParser = _UDPClientParser()
