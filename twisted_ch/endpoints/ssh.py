"""
SSH client endpoint for devices that talk through an interactive shell.

L{SSHShellEndpoint} opens its own SSH connection (IPv4 or IPv6, host names resolved without
blocking), checks the host key against an OpenSSH known_hosts file without ever prompting,
authenticates with an ssh-agent, key files and/or a password, and opens one session channel:
C{pty-req} + C{shell} by default, C{exec} when a command is given.  The protocol sees a byte
stream (see L{ShellTransport}) and exactly one C{connectionLost}, delivered once the TCP
connection is closed.  Its reason is C{ConnectionDone} when the channel was closed (remote exit
or EOF, or our C{loseConnection}), C{ConnectionAborted} after C{abortConnection}, and
C{ConnectionLost} when TCP dropped or the server disconnected without closing the channel
(all from L{twisted.internet.error}).

Host keys: a host is known by the name connected to (C{[host]:port} unless port 22, as OpenSSH
writes it); its IP address is neither checked nor recorded, so a known device at a new address
connects without prompting.  C{hostKeyPolicy="reject"} (default) refuses unknown hosts
(L{UnknownHostKey}); C{"accept-new"} records them (trust on first use).  A host with entries
none of which is the offered key (a changed key, or only keys of other types) is always refused
(L{HostKeyChanged}).  Nothing ever prompts or blocks.

String form (through the C{twisted_ch_ssh} plugin)::

    ssh:HOST[:PORT]:username=admin[:password=...][:keys=/k1,/k2][:passphrase=...]
       [:knownHosts=/path][:hostKeyPolicy=reject|accept-new][:command=...][:term=vt100|none]
       [:timeout=30][:bindAddress=IP][:agent=/path/to/agent.sock]
    ssh:host=HOST:port=22:username=admin:...

In an endpoint string C{:} separates options and C{\\} escapes: write C{\\:} for a colon (IPv6
addresses, passwords) and C{\\\\} for a backslash, or quote a value with
L{twisted.internet.endpoints.quoteStringArgument}.  C{=} needs no escape inside a value.  Key
paths in C{keys=} are separated by commas.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Final

from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.ssh.keys import BadKeyError, EncryptedKeyError, Key
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    IReactorUNIX,
    IStreamClientEndpoint,
)
from twisted.python.filepath import FilePath
from zope.interface import implementer

from twisted_ch._readfile import FileProblem, readRegularFile

from ._common import parseInt, stringParts
from ._ssh_client import Secret, SessionConfig, ShellSession, ShellTransport
from ._ssh_errors import (
    AuthenticationFailed,
    HostKeyChanged,
    HostKeyError,
    HostKeyRevoked,
    SessionRefused,
    SSHConnectError,
    SSHDisconnected,
    UnknownHostKey,
    fingerprint,
)
from ._ssh_hostkeys import (
    HOST_KEY_POLICIES,
    HostKeyPolicy,
    HostKeyVerifier,
    KnownHostsFileError,
    knownHostsName,
)
from .tcp import TCPHostnameEndpoint

__all__ = [
    "AuthenticationFailed",
    "HostKeyChanged",
    "HostKeyRevoked",
    "HostKeyError",
    "HostKeyPolicy",
    "KnownHostsFileError",
    "SSHConnectError",
    "SSHDisconnected",
    "SSHShellEndpoint",
    "SessionRefused",
    "ShellTransport",
    "UnknownHostKey",
    "fingerprint",
    "knownHostsName",
    "parseSSHShellEndpoint",
]

KeySource = Key | str | os.PathLike[str]
#: The largest private key file read (a 16,384-bit RSA key is about 13 KB).
MAX_KEY_FILE = 1 << 16
BindAddress = str | tuple[str, int]


def _loadKey(source: KeySource, passphrase: Secret | None) -> Key:
    if isinstance(source, Key):
        if source.isPublic():
            raise ValueError("keys must be private keys, not public ones")
        return source
    path = os.fspath(source)
    try:
        data = readRegularFile(path, MAX_KEY_FILE)  # a FIFO or /dev/zero: one clear error
    except FileProblem as e:
        raise ValueError(f"cannot read key file {e}") from None
    try:
        key: Key = Key.fromString(data, passphrase=passphrase.reveal() if passphrase else None)
        return key
    except EncryptedKeyError:
        raise ValueError(f"key file {path} is encrypted: give its passphrase") from None
    except BadKeyError as e:
        hint = " (wrong passphrase?)" if passphrase else ""
        raise ValueError(f"cannot load key file {path}{hint}: {e}") from None
    except OSError as e:
        raise ValueError(f"cannot read key file {path}: {e.strerror}") from None


def _knownHosts(
    knownHosts: KnownHostsFile | FilePath[str] | str | os.PathLike[str] | None,
) -> KnownHostsFile:
    if isinstance(knownHosts, KnownHostsFile):
        return knownHosts
    if isinstance(knownHosts, FilePath):
        return KnownHostsFile.fromPath(knownHosts)
    path = os.path.expanduser("~/.ssh/known_hosts") if knownHosts is None else knownHosts
    return KnownHostsFile.fromPath(FilePath(os.fspath(path)))


@implementer(IStreamClientEndpoint)
class SSHShellEndpoint:
    """
    A client endpoint that opens an SSH shell (or exec) session and connects a protocol to it.

    C{connect} fires with the protocol once the channel is open and the shell/exec request was
    accepted, or fails with a L{twisted.internet.error.ConnectError}: a TCP/DNS error,
    L{UnknownHostKey}, L{HostKeyChanged}, L{AuthenticationFailed}, L{SessionRefused},
    L{SSHDisconnected}, or L{twisted.internet.error.TimeoutError} when the whole setup (TCP,
    key exchange, authentication, session) takes longer than C{connectTimeout}; also with
    L{twisted.internet.error.NoProtocol} if the factory builds none, or with whatever
    C{buildProtocol}/C{connectionMade} raised (the SSH connection is then closed).  Cancelling
    the Deferred aborts the attempt.  Each C{connect} makes a new SSH connection.

    The password and passphrase never appear in C{repr}, log events or exception messages.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        host: str,
        port: int = 22,
        *,
        username: str,
        password: str | bytes | None = None,
        keys: KeySource | Iterable[KeySource] = (),
        passphrase: str | bytes | None = None,
        agentEndpoint: IStreamClientEndpoint | None = None,
        knownHosts: KnownHostsFile | FilePath[str] | str | os.PathLike[str] | None = None,
        hostKeyPolicy: HostKeyPolicy = "reject",
        command: str | bytes | None = None,
        term: str | None = "vt100",
        connectTimeout: float = 30,
        bindAddress: BindAddress | None = None,
    ) -> None:
        """
        @param reactor: provides L{IReactorTCP} and L{IReactorTime} (any real reactor).
        @param host: a host name, IPv4 or IPv6 address.
        @param username: the user to log in as.
        @param password: tried with C{password}, then C{keyboard-interactive} authentication.
        @param keys: private keys (L{Key} objects or key file paths), offered after the agent's.
        @param passphrase: decrypts encrypted key files.
        @param agentEndpoint: where an ssh-agent listens, e.g.
            C{UNIXClientEndpoint(reactor, os.environ["SSH_AUTH_SOCK"])}.
        @param knownHosts: an OpenSSH known_hosts file (L{KnownHostsFile} or path; default
            C{~/.ssh/known_hosts}).
        @param hostKeyPolicy: C{"reject"} unknown hosts, or C{"accept-new"} to record the key of
            a host seen for the first time.  A changed key is always refused.
        @param command: run this with C{exec} instead of opening a shell (no pty).
        @param term: the terminal type of the shell's pty; L{None} for a shell without pty.
        @param connectTimeout: seconds allowed for the whole setup.
        @param bindAddress: local address (C{host} or C{(host, port)}) to connect from.
        @raise TypeError: the reactor lacks L{IReactorTCP} or L{IReactorTime}.
        @raise ValueError: an argument is invalid, or a key file cannot be loaded.
        """
        for interface in (IReactorTCP, IReactorTime):
            if not interface.providedBy(reactor):
                raise TypeError(f"reactor {reactor!r} does not provide {interface.__name__}")
        if not isinstance(host, str) or not host:
            raise ValueError("host must be a non-empty str")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be an int from 1 to 65535, not {port!r}")
        if not isinstance(username, str) or not username:
            raise ValueError("username must be a non-empty str")
        if hostKeyPolicy not in HOST_KEY_POLICIES:
            raise ValueError(f"hostKeyPolicy must be one of {HOST_KEY_POLICIES}")
        if (
            isinstance(connectTimeout, bool)
            or not isinstance(connectTimeout, int | float)
            or not math.isfinite(connectTimeout)
            or not connectTimeout > 0
        ):
            raise ValueError(
                f"connectTimeout must be a finite number of seconds above 0, not {connectTimeout!r}"
            )
        if isinstance(keys, (Key, str, os.PathLike)):
            keys = [keys]
        secretPassphrase = Secret(passphrase) if passphrase is not None else None
        loaded = tuple(_loadKey(k, secretPassphrase) for k in keys)
        if isinstance(command, str):
            command = command.encode("utf-8")
        self._reactor = reactor
        self._host = host.strip("[]") if ":" in host else host
        self._port = port
        self._bindAddress = bindAddress
        self._config = SessionConfig(
            host=self._host,
            port=port,
            username=username,
            password=Secret(password) if password is not None else None,
            keys=loaded,
            agentEndpoint=agentEndpoint,
            verifier=HostKeyVerifier(_knownHosts(knownHosts), hostKeyPolicy),
            command=command,
            term=term.encode("ascii") if term else None,
            connectTimeout=float(connectTimeout),
        )

    @property
    def host(self) -> str:
        """The host connected to."""
        return self._host

    @property
    def port(self) -> int:
        """The TCP port connected to."""
        return self._port

    @property
    def username(self) -> str:
        """The user logged in as."""
        return self._config.username

    @property
    def command(self) -> bytes | None:
        """The exec command, or L{None} for a shell."""
        return self._config.command

    @property
    def hostKeyPolicy(self) -> HostKeyPolicy:
        """C{"reject"} or C{"accept-new"}."""
        return self._config.verifier.policy

    @property
    def knownHostsPath(self) -> str:
        """The known_hosts file used."""
        return self._config.verifier.path

    def __repr__(self) -> str:
        c = self._config
        credentials = [f"keys={len(c.keys)}"]
        if c.password is not None:
            credentials.append(f"password={c.password!r}")
        if c.agentEndpoint is not None:
            credentials.append("agent")
        session = "shell" if c.command is None else f"exec {c.command!r}"
        return (
            f"<SSHShellEndpoint {c.username}@{c.host}:{c.port} {session} "
            f"{' '.join(credentials)} hostKeyPolicy={c.verifier.policy}>"
        )

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect, verify the host key, authenticate, open the session, then connect a protocol
        built by C{protocolFactory} (with the server's TCP address).
        """
        tcp = TCPHostnameEndpoint(
            self._reactor,
            self._host,
            self._port,
            timeout=self._config.connectTimeout,
            bindAddress=self._bindAddress,
        )
        return ShellSession(self._reactor, self._config, protocolFactory).connect(tcp)


_OPTIONS: Final = frozenset(
    {
        "host",
        "port",
        "username",
        "password",
        "keys",
        "passphrase",
        "knownHosts",
        "hostKeyPolicy",
        "command",
        "term",
        "timeout",
        "bindAddress",
        "agent",
    }
)


def parseSSHShellEndpoint(reactor: object, *parts: object, **options: object) -> SSHShellEndpoint:
    """
    Build an L{SSHShellEndpoint} from the parts of an C{ssh:} endpoint string.

    Positional parts are C{HOST} and C{PORT}; the options are named as the constructor's
    arguments, except C{timeout} (C{connectTimeout}) and C{agent} (the ssh-agent socket path).
    C{term=none} asks for a shell without pty.

    @raise ValueError: a part is missing, unknown, repeated or invalid.  Messages never include
        the password or passphrase.
    """
    args, kwargs = stringParts("ssh", parts, options, _OPTIONS)
    if len(args) > 2:
        raise ValueError(
            "ssh endpoint: expected at most HOST and PORT as positional parts"
            " (escape colons, e.g. in IPv6 addresses, as \\:)"
        )
    for index, name in enumerate(("host", "port")):
        if len(args) > index:
            if name in kwargs:
                raise ValueError(f"ssh endpoint: {name} given twice")
            kwargs[name] = args[index]
    host = kwargs.pop("host", "")
    if not host:
        raise ValueError("ssh endpoint: no host given, e.g. ssh:192.0.2.10:username=admin")
    if not kwargs.get("username"):
        raise ValueError("ssh endpoint: username= is required")
    port = parseInt("ssh", "port", kwargs.pop("port")) if "port" in kwargs else 22
    timeout = 30.0
    if "timeout" in kwargs:
        try:
            timeout = float(kwargs.pop("timeout"))
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or not timeout > 0:
            raise ValueError("ssh endpoint: timeout must be a finite number of seconds above 0")
    keys = [k for k in kwargs.pop("keys", "").split(",") if k]
    term: str | None = kwargs.pop("term", "vt100")
    if term is not None and term.lower() in ("", "none"):
        term = None
    policy = kwargs.pop("hostKeyPolicy", "reject")
    if policy not in HOST_KEY_POLICIES:
        raise ValueError(f"ssh endpoint: hostKeyPolicy must be one of {HOST_KEY_POLICIES}")
    agentEndpoint: IStreamClientEndpoint | None = None
    if "agent" in kwargs:
        agentEndpoint = UNIXClientEndpoint(IReactorUNIX(reactor), kwargs.pop("agent"))
    bindAddress = kwargs.pop("bindAddress", None)
    return SSHShellEndpoint(
        IReactorTime(reactor),
        host,
        port,
        username=kwargs.pop("username"),
        password=kwargs.pop("password", None),
        keys=keys,
        passphrase=kwargs.pop("passphrase", None),
        agentEndpoint=agentEndpoint,
        knownHosts=kwargs.pop("knownHosts", None),
        hostKeyPolicy=policy,  # type: ignore[arg-type]
        command=kwargs.pop("command", None),
        term=term,
        connectTimeout=timeout,
        bindAddress=(bindAddress, 0) if bindAddress else None,
    )
