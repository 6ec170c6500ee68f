"""
Client endpoint string parser for C{ssh:} (see L{twisted_ch.endpoints.ssh}).

    ssh:192.0.2.10:22:username=admin:password=secret:knownHosts=/etc/twisted_ch/known_hosts
    ssh:host=projector.example:username=admin:keys=/k/id_ed25519:hostKeyPolicy=accept-new

Twisted itself has no C{ssh} client parser (Conch's SSHCommandClientEndpoint has none).  Escape
C{:} and C{\\} inside values with a backslash (L{twisted.internet.endpoints.quoteStringArgument}).
The endpoint module is imported only when a string is parsed.
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
class _SSHShellClientParser:
    """
    C{ssh:HOST[:PORT]:username=USER[:password=...][:keys=P1,P2][:passphrase=...]
    [:knownHosts=PATH][:hostKeyPolicy=reject|accept-new][:command=...][:term=T|none]
    [:timeout=S][:bindAddress=IP][:agent=SOCKET]} to a
    L{twisted_ch.endpoints.ssh.SSHShellEndpoint}.
    """

    prefix = "ssh"

    def parseStreamClient(
        self, reactor: IReactorCore, *args: object, **kwargs: object
    ) -> IStreamClientEndpoint:
        from twisted_ch.endpoints.ssh import parseSSHShellEndpoint

        return parseSSHShellEndpoint(reactor, *args, **kwargs)


sshShellClientEndpointParser = _SSHShellClientParser()
