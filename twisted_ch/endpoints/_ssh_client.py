"""
The client side of one SSH session channel (shell with pty, or exec) over its own SSH connection.

L{ShellSession} owns one C{connect()} attempt from the TCP connection to the open channel, and then
the session's life: it holds the phase, the reason a setup failed (reported once the TCP connection
is closed), and the close flags that decide the application's C{connectionLost} reason.  The Conch
classes below only forward their events to it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from twisted.conch.error import ConchError
from twisted.conch.ssh import agent as sshagent
from twisted.conch.ssh.channel import SSHChannel
from twisted.conch.ssh.common import NS, getNS
from twisted.conch.ssh.connection import SSHConnection
from twisted.conch.ssh.keys import BadKeyError, Key
from twisted.conch.ssh.session import packRequest_pty_req
from twisted.conch.ssh.transport import (
    DISCONNECT_BY_APPLICATION,
    DISCONNECT_HOST_KEY_NOT_VERIFIABLE,
    DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
    MSG_DISCONNECT,
    SSHClientTransport,
)
from twisted.conch.ssh.userauth import (
    MSG_USERAUTH_INFO_RESPONSE,
    MSG_USERAUTH_REQUEST,
    SSHUserAuthClient,
)
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    NoProtocol,
    TimeoutError,
)
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ._ssh_errors import (
    AuthenticationFailed,
    HostKeyError,
    SessionRefused,
    SSHConnectError,
    SSHDisconnected,
    fingerprint,
    peerText,
)
from ._ssh_hostkeys import HostKeyVerifier

# pty geometry (rows, columns, x pixels, y pixels) and an empty terminal-mode list (TTY_OP_END)
_PTY_GEOMETRY = (24, 80, 0, 0)
_PTY_MODES = b"\x00"
# ssh-agent sign-request flags that ask for RSA SHA-2 signatures
_AGENT_RSA_FLAGS = {b"rsa-sha2-256": 2, b"rsa-sha2-512": 4}
# keyboard-interactive rounds answered with the password before answering blanks
_MAX_KBD_PASSWORD_ROUNDS = 3


@final
class Secret:
    """A password or passphrase: C{repr}/C{str} never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        """The secret itself; only for the wire or a key decryption."""
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__


@dataclass(frozen=True)
class SessionConfig:
    """Everything one connection attempt needs (immutable; shared by attempts)."""

    host: str
    port: int
    username: str
    password: Secret | None
    keys: tuple[Key, ...] = field(repr=False)
    agentEndpoint: IStreamClientEndpoint | None
    verifier: HostKeyVerifier
    command: bytes | None
    term: bytes | None
    connectTimeout: float

    @property
    def kind(self) -> str:
        """C{"shell"} or C{"exec"}: the session request sent."""
        return "shell" if self.command is None else "exec"


class _Phase(enum.Enum):
    TCP = "TCP connect"
    KEX = "key exchange"
    AUTH = "authentication"
    SESSION = "session setup"
    OPEN = "open"
    DONE = "done"


@dataclass(frozen=True)
class _KeyCandidate:
    """A public key to offer and a way to sign with its private half."""

    public: Key
    sign: Callable[[bytes, bytes], Deferred[bytes]]


def _signWith(key: Key) -> Callable[[bytes, bytes], Deferred[bytes]]:
    def sign(data: bytes, algorithm: bytes) -> Deferred[bytes]:
        try:
            return succeed(key.sign(data, signatureType=algorithm))
        except Exception:
            return fail()

    return sign


def _signWithAgent(
    agent: sshagent.SSHAgentClient, blob: bytes
) -> Callable[[bytes, bytes], Deferred[bytes]]:
    def sign(data: bytes, algorithm: bytes) -> Deferred[bytes]:
        flags = _AGENT_RSA_FLAGS.get(algorithm, 0)
        request = NS(blob) + NS(data) + struct.pack(">L", flags)
        d: Deferred[bytes] = agent.sendRequest(sshagent.AGENTC_SIGN_REQUEST, request)
        return d.addCallback(_parseAgentSignature)

    return sign


def _parseAgentSignature(response: bytes) -> bytes:
    if response[:1] != bytes((sshagent.AGENT_SIGN_RESPONSE,)):
        raise ConchError(f"unexpected ssh-agent reply type {response[:1]!r}")
    signature: bytes = getNS(response[1:])[0]
    return signature


@implementer(ITransport)
class ShellTransport:
    """
    The transport an application protocol sees: a byte stream over the session channel.

    Besides L{ITransport}: C{abortConnection()}, C{writeEOF()}, and C{exitStatus} / C{exitSignal}
    once the server reported how the remote shell or command ended.
    """

    def __init__(self, session: ShellSession, channel: SessionChannel) -> None:
        self._session = session
        self._channel = channel

    @property
    def disconnecting(self) -> bool:
        """True once the session is being closed."""
        return self._session.closing

    @property
    def exitStatus(self) -> int | None:
        """The remote exit status, if the server sent one."""
        return self._channel.exitStatus

    @property
    def exitSignal(self) -> str | None:
        """The signal that ended the remote process (e.g. C{"TERM"}), if the server sent one."""
        return self._channel.exitSignal

    def write(self, data: bytes) -> None:
        """Send C{data} on the channel (buffered while the server's window is full)."""
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if data and not self._channel.localClosed:
            self._channel.write(data)  # type: ignore[no-untyped-call]

    def queuedBytes(self) -> int:
        """Bytes written but not yet taken by the server: the channel's and the TCP's buffers."""
        from twisted_ch.protocols.device import queuedBytes

        ssh = self._session._ssh
        tcp = ssh.transport if ssh is not None else None
        return len(self._channel.buf) + (queuedBytes(tcp) if tcp is not None else 0)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Send the concatenation of C{data}."""
        self.write(b"".join(data))

    def writeEOF(self) -> None:
        """Tell the server no more data will be sent (the channel stays open for reading)."""
        self._session.writeEOF()

    def loseConnection(self) -> None:
        """Close the channel once buffered data is sent, then the SSH connection."""
        self._session.loseConnection()

    def abortConnection(self) -> None:
        """Drop the TCP connection at once, discarding buffered data."""
        self._session.abortConnection()

    def getPeer(self) -> IAddress:
        """The server's TCP address (L{IPv4Address} or L{IPv6Address})."""
        return self._session.peer()

    def getHost(self) -> IAddress:
        """Our end's TCP address."""
        return self._session.local()

    def __repr__(self) -> str:
        return f"<ShellTransport {self._session.describe()}>"


class ShellSession:
    """One C{connect()} attempt, then the life of the session it opened."""

    log = Logger()

    def __init__(
        self, reactor: IReactorTime, config: SessionConfig, factory: IProtocolFactory
    ) -> None:
        self._reactor = reactor
        self.config = config
        self._factory = factory
        self._phase = _Phase.TCP
        self._result: Deferred[IProtocol] = Deferred(self._cancel)
        self._cancelledIn: _Phase | None = None
        self._cause: Exception | None = None
        self._tcp: Deferred[IProtocol] | None = None
        self._ssh: ClientTransport | None = None
        self._auth: UserAuth | None = None
        self._channel: SessionChannel | None = None
        self._protocol: IProtocol | None = None
        self._agent: sshagent.SSHAgentClient | None = None
        self._agentConnecting: Deferred[Any] | None = None
        self._remoteDisconnect: str | None = None
        self._tcpReason: Failure | None = None
        self.closing = False
        self._localClose = False
        self._aborted = False

    def describe(self) -> str:
        """C{user@host:port (shell)}, for log lines and reprs."""
        c = self.config
        return f"{c.username}@{c.host}:{c.port} ({c.kind})"

    # -- setup ----------------------------------------------------------------------------------

    def connect(self, endpoint: IStreamClientEndpoint) -> Deferred[IProtocol]:
        """Start the attempt over C{endpoint}; fires with the connected protocol."""
        self._result.addTimeout(
            self.config.connectTimeout, self._reactor, onTimeoutCancel=self._timedOut
        )
        self._tcp = tcp = endpoint.connect(_TransportFactory(self))
        tcp.addErrback(self._tcpFailed)
        return self._result

    def _tcpFailed(self, reason: Failure) -> None:
        # when cancelled, the result fails with CancelledError (made a TimeoutError on timeout)
        if not self._result.called and self._cancelledIn is None:
            self._phase = _Phase.DONE
            self._result.errback(reason)

    def _cancel(self, result: Deferred[IProtocol]) -> None:
        self._cancelledIn = self._phase
        self._phase = _Phase.DONE
        if self._ssh is not None:
            self._ssh.abort()
        elif self._tcp is not None:
            self._tcp.cancel()

    def _timedOut(self, result: object, timeout: float) -> object:
        if isinstance(result, Failure) and result.check(CancelledError):
            phase = (self._cancelledIn or _Phase.TCP).value
            c = self.config
            return Failure(
                TimeoutError(
                    string=f"SSH connection to {c.host} port {c.port} timed out after "
                    f"{timeout:g} s during {phase}"
                )
            )
        return result

    def _fail(self, cause: Exception) -> None:
        """Record why setup failed; it is reported when the TCP connection is gone."""
        if self._cause is None and self._phase is not _Phase.DONE:
            self._cause = cause

    def abandon(self, cause: Exception) -> None:
        """Give up the setup: record C{cause} and disconnect."""
        self._fail(cause)
        if self._ssh is not None:
            self._ssh.disconnect(DISCONNECT_BY_APPLICATION, b"session setup failed")

    def transportConnected(self, transport: ClientTransport) -> None:
        """The TCP connection is up; SSH version exchange and key exchange start."""
        self._ssh = transport
        if self._phase is _Phase.DONE:  # cancelled while the connection was completing
            transport.abort()
            return
        self._phase = _Phase.KEX

    def verifyHostKey(self, key: Key) -> Deferred[bool]:
        """Check the server's host key with the configured known-hosts policy."""
        c = self.config
        try:
            c.verifier.verify(c.host, c.port, key)
        except HostKeyError as e:
            self._fail(e)
            return fail(e)
        except Exception as e:
            self.log.failure("{session}: checking the host key failed", session=self.describe())
            error = HostKeyError(f"could not check the host key against {c.verifier.path}: {e}")
            self._fail(error)
            return fail(error)
        self.log.debug(
            "host key {fingerprint} verified for {host}:{port}",
            fingerprint=fingerprint(key),
            host=c.host,
            port=c.port,
        )
        return succeed(True)

    def transportSecure(self) -> None:
        """Keys are in use; authenticate (first key exchange only, not re-keys)."""
        if self._phase is not _Phase.KEX:
            return
        self._phase = _Phase.AUTH
        agentEndpoint = self.config.agentEndpoint
        if agentEndpoint is None:
            self._startAuth([])
            return
        connecting: Deferred[Any] = agentEndpoint.connect(
            Factory.forProtocol(sshagent.SSHAgentClient)
        )
        self._agentConnecting = connecting
        connecting.addCallback(self._agentConnected)
        connecting.addCallbacks(self._startAuth, self._agentFailed)

    def _agentConnected(self, agent: sshagent.SSHAgentClient) -> Deferred[list[_KeyCandidate]]:
        self._agent = agent
        identities: Deferred[list[tuple[bytes, bytes]]] = agent.requestIdentities()

        def candidates(found: list[tuple[bytes, bytes]]) -> list[_KeyCandidate]:
            result = []
            for blob, _comment in found:
                try:
                    public = Key.fromString(blob)
                except BadKeyError:
                    continue  # a key type Conch does not know
                result.append(_KeyCandidate(public, _signWithAgent(agent, blob)))
            return result

        return identities.addCallback(candidates)

    def _agentFailed(self, reason: Failure) -> None:
        if reason.check(CancelledError):
            return
        self.log.warn(
            "ssh-agent unusable for {session}, continuing without it: {error}",
            session=self.describe(),
            error=reason.getErrorMessage(),
        )
        self._closeAgent()
        self._startAuth([])

    def _startAuth(self, agentKeys: list[_KeyCandidate]) -> None:
        self._agentConnecting = None
        if self._phase is not _Phase.AUTH or self._ssh is None:
            self._closeAgent()
            return
        seen = {k.public.blob() for k in agentKeys}
        candidates = list(agentKeys)
        for key in self.config.keys:
            if key.public().blob() not in seen:
                seen.add(key.public().blob())
                candidates.append(_KeyCandidate(key.public(), _signWith(key)))
        self._auth = UserAuth(self, candidates, Connection(self))
        self._ssh.requestService(self._auth)

    def authenticationExhausted(self) -> None:
        """The client has no more methods to try."""
        self._fail(self._authFailure())

    def authenticationRefused(self, detail: str) -> None:
        """Authentication cannot go on (e.g. the password must be changed first)."""
        self.abandon(self._authFailure(detail))

    def _authFailure(self, detail: str = "") -> AuthenticationFailed:
        c = self.config
        tried: Sequence[str] = ()
        offered: Sequence[str] = ()
        if self._auth is not None:
            tried, offered = self._auth.tried(), self._auth.serverMethods
        return AuthenticationFailed(c.username, c.host, c.port, tried, offered, detail)

    def authenticated(self, connection: Connection) -> None:
        """User authentication succeeded: open the session channel."""
        self._closeAgent()
        if self._phase is not _Phase.AUTH:
            return
        self._phase = _Phase.SESSION
        self._channel = SessionChannel(self)
        connection.openChannel(self._channel)  # type: ignore[no-untyped-call]

    def channelOpened(self, channel: SessionChannel) -> None:
        """Send pty-req (shell only) and the shell or exec request."""
        c = self.config
        conn: Any = channel.conn
        if c.command is None:
            if c.term is not None:
                pty = packRequest_pty_req(c.term, _PTY_GEOMETRY, _PTY_MODES)
                ptyReply: Deferred[object] = conn.sendRequest(
                    channel, b"pty-req", pty, wantReply=True
                )
                ptyReply.addErrback(self._ptyRefused)
            reply: Deferred[object] = conn.sendRequest(channel, b"shell", b"", wantReply=True)
        else:
            reply = conn.sendRequest(channel, b"exec", NS(c.command), wantReply=True)
        reply.addCallbacks(self._sessionStarted, self._sessionRefused)

    def channelOpenFailed(self, reason: object) -> None:
        """The server refused the session channel."""
        c = self.config
        value = getattr(reason, "value", reason)
        text = peerText(value if isinstance(value, bytes) else str(value))
        self.abandon(
            SessionRefused(f"{c.host} port {c.port} refused to open a session channel: {text}")
        )

    def _ptyRefused(self, reason: Failure) -> None:
        if self._phase is _Phase.SESSION:
            self.log.warn(
                "{session}: the server refused the pty; continuing without one",
                session=self.describe(),
            )

    def _sessionRefused(self, reason: Failure) -> None:
        if self._phase is not _Phase.SESSION:
            return
        c = self.config
        what = getattr(reason.value, "value", "")
        if what == "channel request failed":
            message = f"{c.host} port {c.port} refused the {c.kind} request"
        else:
            message = f"{c.host} port {c.port} closed the session before answering the {c.kind}"
        self.abandon(SessionRefused(message))

    def _sessionStarted(self, ignored: object) -> None:
        if self._phase is not _Phase.SESSION or self._result.called:
            return
        channel, ssh = self._channel, self._ssh
        assert channel is not None and ssh is not None
        try:
            protocol = self._factory.buildProtocol(self.peer())
            if protocol is None:
                raise NoProtocol()
        except Exception as e:
            self.abandon(e)
            return
        self._phase = _Phase.OPEN
        self._protocol = protocol
        channel.protocol = protocol
        self.log.info("SSH session open: {session}", session=self.describe())
        try:
            protocol.makeConnection(ShellTransport(self, channel))
        except Exception as e:
            # the connect Deferred fails with the exception; the protocol gets no connectionLost
            self._phase = _Phase.SESSION
            self.abandon(e)
            return
        self._result.callback(protocol)
        channel.flushEarlyData()

    # -- the open session -----------------------------------------------------------------------

    def peer(self) -> IAddress:
        """The server's TCP address."""
        assert self._ssh is not None and self._ssh.transport is not None
        address: IAddress = self._ssh.transport.getPeer()
        return address

    def local(self) -> IAddress:
        """Our TCP address."""
        assert self._ssh is not None and self._ssh.transport is not None
        address: IAddress = self._ssh.transport.getHost()
        return address

    def writeEOF(self) -> None:
        """Send channel EOF."""
        channel = self._channel
        if channel is not None and channel.conn is not None and not channel.localClosed:
            channel.conn.sendEOF(channel)

    def loseConnection(self) -> None:
        """Close the channel (after buffered data), then the SSH connection."""
        if self.closing:
            return
        self.closing = self._localClose = True
        if self._channel is not None:
            self._channel.loseConnection()

    def abortConnection(self) -> None:
        """Drop the TCP connection now."""
        self.closing = self._aborted = True
        if self._ssh is not None:
            self._ssh.abort()

    def localCloseSent(self) -> None:
        """Our channel CLOSE went out: after a local close, end the SSH connection too."""
        if self._localClose:
            self._disconnect()

    def remoteEOF(self) -> None:
        """The server will send no more data on the channel."""
        protocol = self._protocol
        if self._phase is not _Phase.OPEN or protocol is None:
            return
        half = IHalfCloseableProtocol(protocol, None)
        if half is not None:
            half.readConnectionLost()
            return
        # Like TCP without half-close: close our side; the server's CLOSE (after its exit-status)
        # then ends the session.
        self.closing = True
        channel = self._channel
        if channel is not None and channel.conn is not None:
            channel.conn.sendClose(channel)

    def channelClosed(self) -> None:
        """Both sides closed the channel: end the SSH connection."""
        self.closing = True
        self._disconnect()

    def _disconnect(self) -> None:
        if self._ssh is not None:
            self._ssh.disconnect(DISCONNECT_BY_APPLICATION, b"session closed")

    def remoteDisconnected(self, code: int, description: bytes) -> None:
        """The server sent DISCONNECT (its text escaped: it reaches log lines)."""
        text = peerText(description)
        c = self.config
        if self._phase is _Phase.AUTH:
            self._fail(self._authFailure(f"the server disconnected: {text}"))
        elif self._phase in (_Phase.TCP, _Phase.KEX, _Phase.SESSION):
            self._fail(
                SSHDisconnected(
                    f"{c.host} port {c.port} disconnected during {self._phase.value}: "
                    f"{text} (code {code})"
                )
            )
        self._remoteDisconnect = text
        self.log.debug(
            "{session}: server disconnected: {text} (code {code})",
            session=self.describe(),
            text=text,
            code=code,
        )

    def transportClosing(self, reason: Failure) -> None:
        """The TCP connection is gone (before Conch's own cleanup)."""
        self._tcpReason = reason
        if self._result.called or self._phase is _Phase.OPEN:
            return
        c = self.config
        cause = self._cause or SSHDisconnected(
            f"connection to {c.host} port {c.port} closed during {self._phase.value}: "
            f"{reason.getErrorMessage()}"
        )
        self._phase = _Phase.DONE
        self._result.errback(Failure(cause))

    def transportClosed(self) -> None:
        """Conch has cleaned up: tell the application, exactly once."""
        self._closeAgent()
        protocol = self._protocol
        if self._phase is not _Phase.OPEN or protocol is None:
            self._phase = _Phase.DONE
            return
        self._phase = _Phase.DONE
        reason = self._lostReason()
        self.log.info(
            "SSH session closed: {session}: {reason}",
            session=self.describe(),
            reason=reason.getErrorMessage(),
        )
        try:
            protocol.connectionLost(reason)
        except Exception:
            self.log.failure("{session}: connectionLost raised", session=self.describe())

    def _lostReason(self) -> Failure:
        channel = self._channel
        if self._aborted:
            return Failure(ConnectionAborted())
        if self._localClose or (channel is not None and channel.remoteCloseReceived):
            return Failure(ConnectionDone())
        if self._remoteDisconnect is not None:
            return Failure(ConnectionLost(f"server disconnected: {self._remoteDisconnect}"))
        detail = self._tcpReason.getErrorMessage() if self._tcpReason else "connection closed"
        return Failure(ConnectionLost(f"SSH connection lost before the session closed: {detail}"))

    def _closeAgent(self) -> None:
        connecting, self._agentConnecting = self._agentConnecting, None
        if connecting is not None and not connecting.called:
            connecting.cancel()
        agent, self._agent = self._agent, None
        if agent is not None and agent.transport is not None:
            agent.transport.loseConnection()


class _ConchLogger(Logger):
    """Conch's per-connection info lines ("connection lost", with no device named) as debug."""

    def info(self, format: str | None = None, **kwargs: object) -> None:
        self.debug(format, **kwargs)


class ClientTransport(SSHClientTransport):
    """SSH transport that reports to its L{ShellSession}."""

    _log = _ConchLogger()

    def __init__(self, session: ShellSession) -> None:
        self._session = session
        self._disconnecting = False

    def connectionMade(self) -> None:
        c = self._session.config
        unreadable: HostKeyError | None = None
        try:
            self.supportedPublicKeys = c.verifier.preferredAlgorithms(
                c.host, c.port, SSHClientTransport.supportedPublicKeys
            )
        except HostKeyError as e:  # the known-hosts file cannot be read: no key can be checked
            unreadable = e
        super().connectionMade()  # type: ignore[no-untyped-call]
        self._session.transportConnected(self)
        if unreadable is not None:
            self._session.abandon(unreadable)

    def verifyHostKey(self, hostKey: bytes, fingerprint: bytes) -> Deferred[bool]:
        try:
            key = Key.fromString(hostKey)
        except BadKeyError as e:
            self._session.abandon(SSHConnectError(f"unusable host key: {e}"))
            return fail(e)
        return self._session.verifyHostKey(key)

    def connectionSecure(self) -> None:
        self._session.transportSecure()

    def sendDisconnect(self, reason: int, desc: bytes) -> None:
        # Conch's own logs a two-line entry per call and, for a rejected host key, sends the
        # server the failure's text (a traceback naming the known_hosts path): the server is told
        # only why, and the reason is reported once, by the session's error
        if reason == DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE:
            self._session.authenticationExhausted()
        if reason == DISCONNECT_HOST_KEY_NOT_VERIFIABLE:
            desc = b"host key not verifiable"
        if self._disconnecting or self.transport is None:
            return
        self._disconnecting = True
        self._log.debug(
            "{session}: disconnecting: {description} (code {code})",
            session=self._session.describe(),
            description=desc,
            code=reason,
        )
        self.sendPacket(MSG_DISCONNECT, struct.pack(">L", reason) + NS(desc) + NS(b""))  # type: ignore[no-untyped-call]
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        # once disconnecting, what the server sent meanwhile (packets encrypted with keys this
        # side never took into use) is not parsed: it would only report a bogus "bad packet
        # length" protocol error
        if not self._disconnecting:
            super().dataReceived(data)  # type: ignore[no-untyped-call]

    def disconnect(self, code: int, description: bytes) -> None:
        """Send DISCONNECT (once) and close the TCP connection after pending writes."""
        if self._disconnecting or self.transport is None:
            return
        self._disconnecting = True
        self.sendPacket(MSG_DISCONNECT, struct.pack(">L", code) + NS(description) + NS(b""))  # type: ignore[no-untyped-call]
        self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        self._disconnecting = True
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        self._session.remoteDisconnected(reasonCode, description)

    def connectionLost(self, reason: Failure | None = None) -> None:
        reason = reason or Failure(ConnectionDone())
        self._session.transportClosing(reason)
        super().connectionLost(reason)
        self._session.transportClosed()


class _TransportFactory(Factory):
    """Builds the one L{ClientTransport} of a session."""

    noisy = False

    def __init__(self, session: ShellSession) -> None:
        self._session = session

    def buildProtocol(self, addr: IAddress | None) -> ClientTransport:
        transport = ClientTransport(self._session)
        transport.factory = self
        return transport


class UserAuth(SSHUserAuthClient):
    """
    C{ssh-userauth} client: agent and file keys, then password, then keyboard-interactive.

    Each credential is offered once; RSA keys sign with SHA-2 when the server advertises it.
    """

    log = Logger()

    def __init__(
        self, session: ShellSession, keys: Sequence[_KeyCandidate], instance: Connection
    ) -> None:
        config = session.config
        super().__init__(config.username.encode("utf-8"), instance)
        self._session = session
        self._password = config.password
        self._keys = iter(keys)
        self._current: tuple[_KeyCandidate, bytes] | None = None
        self._keysOffered = 0
        self._passwordSent = False
        self._kbdTried = False
        self._kbdRounds = 0
        self.serverMethods: tuple[str, ...] = ()

    def tried(self) -> list[str]:
        """The methods tried so far, for error messages."""
        tried = []
        if self._keysOffered:
            plural = "s" if self._keysOffered > 1 else ""
            tried.append(f"publickey ({self._keysOffered} key{plural})")
        if self._passwordSent:
            tried.append("password")
        if self._kbdTried:
            tried.append("keyboard-interactive")
        return tried

    def ssh_USERAUTH_FAILURE(self, packet: bytes) -> object:
        methods = getNS(packet)[0]
        self.serverMethods = tuple(peerText(m, 64) for m in methods.split(b",")[:32] if m)
        return super().ssh_USERAUTH_FAILURE(packet)  # type: ignore[no-untyped-call]

    def ssh_USERAUTH_BANNER(self, packet: bytes) -> None:
        banner = peerText(getNS(packet)[0], 2000)
        self.log.debug(
            "{session}: banner: {banner}", session=self._session.describe(), banner=banner
        )

    def _signatureAlgorithm(self, key: Key) -> bytes:
        if key.type() != "RSA":
            algorithm: bytes = key.sshType()
            return algorithm
        assert self.transport is not None
        advertised = self.transport.peerExtensions.get(b"server-sig-algs")
        if advertised is not None:
            for algorithm in (b"rsa-sha2-512", b"rsa-sha2-256"):
                if algorithm in advertised.split(b","):
                    return algorithm
        return b"ssh-rsa"

    def auth_publickey(self) -> bool:  # type: ignore[override]
        candidate = next(self._keys, None)
        if candidate is None:
            self._current = None
            return False
        algorithm = self._signatureAlgorithm(candidate.public)
        self._current = (candidate, algorithm)
        self._keysOffered += 1
        self.askForAuth(b"publickey", b"\x00" + NS(algorithm) + NS(candidate.public.blob()))
        return True

    def ssh_USERAUTH_PK_OK_publickey(self, packet: bytes) -> None:
        if self._current is None:
            self.askForAuth(b"none", b"")
            return
        candidate, algorithm = self._current
        assert self.transport is not None and self.transport.sessionID is not None
        blob = candidate.public.blob()
        signed = (
            NS(self.transport.sessionID)
            + bytes((MSG_USERAUTH_REQUEST,))
            + NS(self.user)
            + NS(self.instance.name)
            + NS(b"publickey")
            + b"\x01"
            + NS(algorithm)
            + NS(blob)
        )

        def send(signature: bytes) -> None:
            self.askForAuth(b"publickey", b"\x01" + NS(algorithm) + NS(blob) + NS(signature))

        def failed(reason: Failure) -> None:
            self.log.warn(
                "{session}: could not sign with {fingerprint}: {error}",
                session=self._session.describe(),
                fingerprint=fingerprint(candidate.public),
                error=reason.getErrorMessage(),
            )
            self.askForAuth(b"none", b"")  # provokes a FAILURE: the next method is tried

        candidate.sign(signed, algorithm).addCallbacks(send, failed)

    def getPassword(self, prompt: bytes | None = None) -> Deferred[bytes] | None:
        if self._password is None or self._passwordSent:
            return None
        self._passwordSent = True
        return succeed(self._password.reveal())

    def ssh_USERAUTH_PK_OK_password(self, packet: bytes) -> None:
        self._session.authenticationRefused(
            "the password has expired and the server asks for a new one"
        )

    def auth_keyboard_interactive(self) -> bool:
        if self._password is None or self._kbdTried:
            return False
        self._kbdTried = True
        self.askForAuth(b"keyboard-interactive", NS(b"") + NS(b""))
        return True

    def ssh_USERAUTH_PK_OK_keyboard_interactive(self, packet: bytes) -> None:
        name, instruction, _lang, data = getNS(packet, 3)
        (count,) = struct.unpack(">L", data[:4])
        data = data[4:]
        hidden = []
        for _ in range(count):
            _prompt, data = getNS(data)
            hidden.append(data[:1] == b"\x00")
            data = data[1:]
        self._kbdRounds += 1
        usePassword = (
            self._password is not None
            and bool(hidden)
            and all(hidden)
            and self._kbdRounds <= _MAX_KBD_PASSWORD_ROUNDS
        )
        answer = self._password.reveal() if usePassword and self._password else b""
        response = struct.pack(">L", count) + b"".join(NS(answer) for _ in range(count))
        assert self.transport is not None
        self.transport.sendPacket(MSG_USERAUTH_INFO_RESPONSE, response)


class Connection(SSHConnection):
    """C{ssh-connection} service: opens the session channel once authenticated."""

    def __init__(self, session: ShellSession) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._session = session

    def serviceStarted(self) -> None:
        super().serviceStarted()  # type: ignore[no-untyped-call]
        self._session.authenticated(self)


class SessionChannel(SSHChannel):
    """The C{session} channel: buffers data until the application protocol is connected."""

    name = b"session"

    def __init__(self, session: ShellSession) -> None:
        super().__init__()
        self._session = session
        self.protocol: IProtocol | None = None
        self._early: list[bytes] = []
        self.remoteCloseReceived = False
        self.exitStatus: int | None = None
        self.exitSignal: str | None = None

    def channelOpen(self, specificData: bytes) -> None:
        self._session.channelOpened(self)

    def openFailed(self, reason: object) -> None:
        self._session.channelOpenFailed(reason)

    def dataReceived(self, data: bytes) -> None:
        if self.protocol is None or self._early:
            self._early.append(data)
        else:
            self.protocol.dataReceived(data)

    def extReceived(self, dataType: int, data: bytes) -> None:
        # stderr joins the stream, as it would on a pty
        self.dataReceived(data)

    def flushEarlyData(self) -> None:
        """Deliver data that arrived before the session request was answered."""
        while self._early and self.protocol is not None:
            self.protocol.dataReceived(self._early.pop(0))

    def eofReceived(self) -> None:
        self._session.remoteEOF()

    def request_exit_status(self, data: bytes) -> bool:
        (self.exitStatus,) = struct.unpack(">L", data[:4])
        return True

    def request_exit_signal(self, data: bytes) -> bool:
        self.exitSignal = getNS(data)[0].decode("ascii", "replace")
        return True

    def closeReceived(self) -> None:
        self.remoteCloseReceived = True
        self.buf = b""
        self.extBuf = []
        if self.conn is not None:
            self.conn.sendClose(self)

    def loseConnection(self) -> None:
        if self.conn is None:
            return
        super().loseConnection()  # type: ignore[no-untyped-call]
        if self.localClosed:
            self._session.localCloseSent()

    def closed(self) -> None:
        self._session.channelClosed()
