"""
An in-process SSH server for tests (Conch), listening on a loopback port chosen by the system.

Each session channel (shell, with or without pty, or exec) is connected to a protocol built by a
factory the test supplies (an echo, a device simulator); the protocol's transport writes to the
channel, and its C{loseConnection} ends the session like a process exiting with status 0.  Logins
by password (or keyboard-interactive) and/or public key; the host key is a freshly generated
Ed25519 key unless one is given.

    server = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": "pw"})
    port = server.start()
    ...
    await server.stop()
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.avatar import ConchUser
from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh.channel import SSHChannel
from twisted.conch.ssh.common import NS, getNS
from twisted.conch.ssh.connection import SSHConnection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.session import parseRequest_pty_req
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.conch.ssh.userauth import MSG_USERAUTH_INFO_REQUEST, SSHUserAuthServer
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import UsernamePassword
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch.endpoints.ssh import knownHostsName

__all__ = ["EchoProtocol", "SSHTestServer", "ServerSession", "generateKey"]


def generateKey() -> Key:
    """A new Ed25519 private key (fast to generate)."""
    return Key(ed25519.Ed25519PrivateKey.generate())


@dataclass
class ServerSession:
    """What a client asked for on one session channel, and the protocol serving it."""

    username: str
    term: bytes | None = None
    command: bytes | None = None
    protocol: IProtocol | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """C{"shell"} or C{"exec"}."""
        return "shell" if self.command is None else "exec"


class EchoProtocol(Protocol):
    """Sends back every byte; writes C{greeting} first if set (e.g. a device banner)."""

    greeting = b""

    def connectionMade(self) -> None:
        if self.greeting and self.transport is not None:
            self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


class SSHTestServer:
    """
    A Conch SSH server for tests.

    @ivar sessions: every session started, in order.
    """

    def __init__(
        self,
        reactor: IReactorTCP,
        protocolFactory: IProtocolFactory,
        *,
        users: Mapping[str, str] | None = None,
        authorizedKeys: Mapping[str, Iterable[Key]] | None = None,
        hostKey: Key | None = None,
        interface: str = "127.0.0.1",
        startBeforeReply: bool = False,
        refuse: Iterable[str] = (),
        keyboardInteractive: bool = False,
    ) -> None:
        """
        @param users: user name -> password accepted by password authentication.
        @param authorizedKeys: user name -> public keys accepted by public-key authentication.
        @param hostKey: the server's private host key (default: a new Ed25519 key).
        @param interface: the address to listen on (C{"::1"} for IPv6).
        @param startBeforeReply: connect the session protocol before answering the shell/exec
            request, so that whatever it writes in C{connectionMade} reaches the client first.
        @param refuse: request types to refuse: any of C{"pty-req"}, C{"shell"}, C{"exec"}.
        @param keyboardInteractive: check the users' passwords with C{keyboard-interactive} (one
            hidden C{Password:} prompt) instead of C{password} authentication, as many devices do.
        """
        self.reactor = reactor
        self.clock = IReactorTime(reactor)
        self.protocolFactory = protocolFactory
        self.hostKey = hostKey if hostKey is not None else generateKey()
        self.interface = interface
        self.startBeforeReply = startBeforeReply
        self.refuse = frozenset(refuse)
        self.keyboardInteractive = keyboardInteractive
        self.sessions: list[ServerSession] = []
        self._listening: IListeningPort | None = None
        self._connections: set[_ServerTransport] = set()
        self._idle: list[Deferred[None]] = []

        portal = Portal(_Realm(self))
        passwords = InMemoryUsernamePasswordDatabaseDontUse()
        for name, password in (users or {}).items():
            passwords.addUser(name.encode("utf-8"), password.encode("utf-8"))
        portal.registerChecker(passwords)
        keyDB = InMemorySSHKeyDB(
            {name.encode("utf-8"): list(keys) for name, keys in (authorizedKeys or {}).items()}
        )
        portal.registerChecker(SSHPublicKeyChecker(keyDB))
        self._factory = _ServerFactory(self, portal)

    @property
    def port(self) -> int:
        """The TCP port listened on (after L{start})."""
        if self._listening is None:
            raise RuntimeError("the server is not started")
        port: int = self._listening.getHost().port  # type: ignore[attr-defined]
        return port

    def start(self) -> int:
        """Listen on a free port of C{interface}; return the port."""
        self._listening = self.reactor.listenTCP(
            0,
            self._factory,  # type: ignore[arg-type]
            interface=self.interface,
        )
        return self.port

    def knownHostsLine(self, host: str | None = None) -> str:
        """A known_hosts line trusting this server's host key for C{host} (default: interface)."""
        name = knownHostsName(host or self.interface, self.port)
        return f"{name} {self.hostKey.public().toString('openssh').decode('ascii')}\n"

    def dropConnections(self) -> None:
        """Abort every TCP connection (no SSH close): a network failure, as the client sees it."""
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.abortConnection()  # type: ignore[attr-defined]

    def whenDisconnected(self) -> Deferred[None]:
        """Fires once no SSH connection is open."""
        if not self._connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d

    def stop(self) -> Deferred[None]:
        """Stop listening, drop open connections; fires once all are gone."""
        listening, self._listening = self._listening, None
        stopped: Deferred[Any] = (
            Deferred.fromCoroutine(_maybe(listening.stopListening()))
            if listening is not None
            else succeed(None)
        )
        self.dropConnections()
        done = DeferredList([stopped, self.whenDisconnected()], fireOnOneErrback=True)
        return done.addCallback(lambda _: None)

    def _connected(self, connection: _ServerTransport) -> None:
        self._connections.add(connection)

    def _disconnected(self, connection: _ServerTransport) -> None:
        self._connections.discard(connection)
        if not self._connections:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)


async def _maybe(result: object) -> object:
    if isinstance(result, Deferred):
        return await result
    return result


class _ServerTransport(SSHServerTransport):
    factory: _ServerFactory

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        self.factory.server._connected(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        super().connectionLost(reason)
        self.factory.server._disconnected(self)


class _ServerUserAuth(SSHUserAuthServer):
    passwordDelay = 0
    _answer: Deferred[Any] | None = None

    def serviceStarted(self) -> None:
        assert self.transport is not None
        server: SSHTestServer = self.transport.factory.server
        self.clock = server.clock
        super().serviceStarted()  # type: ignore[no-untyped-call]
        if server.keyboardInteractive and b"password" in self.supportedAuthentications:
            self.supportedAuthentications.remove(b"password")
            self.supportedAuthentications.append(b"keyboard-interactive")

    def auth_keyboard_interactive(self, packet: bytes) -> Deferred[Any]:
        """Ask for the password with one hidden prompt; check the answer with the portal."""
        assert self.transport is not None
        self._answer = Deferred()
        prompt = NS(b"Password: ") + b"\x00"
        request = NS(b"") + NS(b"") + NS(b"") + struct.pack(">L", 1) + prompt
        self.transport.sendPacket(MSG_USERAUTH_INFO_REQUEST, request)
        return self._answer

    def ssh_USERAUTH_INFO_RESPONSE(self, packet: bytes) -> None:
        answer, self._answer = self._answer, None
        if answer is None or self.user is None:
            return
        (count,) = struct.unpack(">L", packet[:4])
        password = getNS(packet[4:])[0] if count == 1 else b""
        login = self.portal.login(UsernamePassword(self.user, password), None, IConchUser)
        login.chainDeferred(answer)


class _ServerConnection(SSHConnection):
    def ssh_CHANNEL_REQUEST(self, packet: bytes) -> object:
        result = super().ssh_CHANNEL_REQUEST(packet)  # type: ignore[no-untyped-call]
        # the reply to the request has been sent (synchronously) by now
        (localChannel,) = struct.unpack(">L", packet[:4])
        channel = self.channels.get(localChannel)
        if isinstance(channel, _ServerSessionChannel):
            channel.requestAnswered()
        return result


class _ServerFactory(SSHFactory):
    protocol = _ServerTransport
    noisy = False

    def __init__(self, server: SSHTestServer, portal: Portal) -> None:
        self.server = server
        self.portal = portal
        key = server.hostKey
        self.privateKeys = {key.sshType(): key}
        self.publicKeys = {key.sshType(): key.public()}
        self.primes = None
        self.services = {
            b"ssh-userauth": _ServerUserAuth,
            b"ssh-connection": _ServerConnection,
        }


@implementer(IRealm)
class _Realm:
    def __init__(self, server: SSHTestServer) -> None:
        self._server = server

    def requestAvatar(
        self, avatarId: bytes | tuple[()], mind: object, *interfaces: Any
    ) -> tuple[Any, _Avatar, Any]:
        if IConchUser not in interfaces or not isinstance(avatarId, bytes):
            raise NotImplementedError("only IConchUser avatars of named users")
        return IConchUser, _Avatar(self._server, avatarId.decode("utf-8")), lambda: None


class _Avatar(ConchUser):
    def __init__(self, server: SSHTestServer, username: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.server = server
        self.username = username
        self.channelLookup[b"session"] = _ServerSessionChannel


@implementer(ITransport)
class _SessionTransport:
    """The session protocol's transport: the channel, as a byte stream."""

    def __init__(self, channel: _ServerSessionChannel) -> None:
        self._channel = channel
        self.session = channel.record

    def write(self, data: bytes) -> None:
        if not self._channel.localClosed:
            self._channel.write(data)  # type: ignore[no-untyped-call]

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """End the session as if the remote process exited with status 0."""
        self._channel.exit(0)

    def exit(self, status: int) -> None:
        """End the session with this exit status."""
        self._channel.exit(status)

    def abortConnection(self) -> None:
        """Drop the whole TCP connection."""
        tcp = self._channel.tcp()
        if tcp is not None:
            tcp.abortConnection()

    def getPeer(self) -> IAddress:
        tcp = self._channel.tcp()
        assert tcp is not None
        address: IAddress = tcp.getPeer()
        return address

    def getHost(self) -> IAddress:
        tcp = self._channel.tcp()
        assert tcp is not None
        address: IAddress = tcp.getHost()
        return address


class _ServerSessionChannel(SSHChannel):
    name = b"session"

    def __init__(self, *, avatar: _Avatar, **kwargs: Any) -> None:
        super().__init__(avatar=avatar, **kwargs)
        self._server = avatar.server
        self.record = ServerSession(avatar.username)
        self._protocol: IProtocol | None = None
        self._pending = False
        self._early: list[bytes] = []
        self._exited = False
        self._lost = False

    def tcp(self) -> Any:
        conn = self.conn
        return None if conn is None or conn.transport is None else conn.transport.transport

    def request_pty_req(self, data: bytes) -> int:
        if "pty-req" in self._server.refuse:
            return 0
        term, _geometry, _modes = parseRequest_pty_req(data)
        self.record.term = term
        return 1

    def request_shell(self, data: bytes) -> int:
        return self._begin(None)

    def request_exec(self, data: bytes) -> int:
        return self._begin(getNS(data)[0])

    def _begin(self, command: bytes | None) -> int:
        kind = "shell" if command is None else "exec"
        if kind in self._server.refuse or self._protocol is not None or self._pending:
            return 0
        self.record.command = command
        self._server.sessions.append(self.record)
        if self._server.startBeforeReply:
            self._start()
        else:
            self._pending = True
        return 1

    def requestAnswered(self) -> None:
        if self._pending:
            self._pending = False
            self._start()

    def _start(self) -> None:
        protocol = self._server.protocolFactory.buildProtocol(self.tcp().getPeer())
        if protocol is None:
            self.exit(1)
            return
        self._protocol = self.record.protocol = protocol
        protocol.makeConnection(_SessionTransport(self))
        early, self._early = self._early, []
        for data in early:
            protocol.dataReceived(data)

    def dataReceived(self, data: bytes) -> None:
        if self._protocol is None:
            self._early.append(data)
        else:
            self._protocol.dataReceived(data)

    def eofReceived(self) -> None:
        half = IHalfCloseableProtocol(self._protocol, None)
        if half is not None:
            half.readConnectionLost()
        else:
            self.exit(0)

    def exit(self, status: int) -> None:
        if self._exited or self.localClosed or self.conn is None:
            return
        self._exited = True
        conn: Any = self.conn
        conn.sendEOF(self)
        conn.sendRequest(self, b"exit-status", struct.pack(">L", status))
        self.loseConnection()  # type: ignore[no-untyped-call]

    def closed(self) -> None:
        protocol = self._protocol
        if protocol is not None and not self._lost:
            self._lost = True
            protocol.connectionLost(Failure(ConnectionDone()))
