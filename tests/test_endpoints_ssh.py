"""
L{twisted_ch.endpoints.ssh.SSHShellEndpoint} over real loopback sockets.

First against the in-process Conch server of L{twisted_ch.testing._ssh}, then against a real
OpenSSH sshd started by L{tests.sshd_fixture}.  Every wait is bounded by C{addTimeout}; every test
leaves no port, connection, process or DelayedCall behind.
"""

from __future__ import annotations

import base64
import builtins
import errno
import hmac
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import LoggedEvents, freePort
from sshd_fixture import PASSPHRASE, OpenSSHServer, startAgent, startOpenSSH
from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.ssh.agent import SSHAgentServer
from twisted.conch.ssh.keys import Key
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import UNIXClientEndpoint, _clientParsers, clientFromString
from twisted.internet.error import (
    ConnectError,
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    NoProtocol,
    TimeoutError,
)
from twisted.internet.interfaces import (
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import formatEvent
from twisted.plugin import getPlugins
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

from twisted_ch.endpoints.ssh import (
    AuthenticationFailed,
    HostKeyChanged,
    HostKeyError,
    HostKeyRevoked,
    SessionRefused,
    SSHShellEndpoint,
    UnknownHostKey,
    fingerprint,
    parseSSHShellEndpoint,
)
from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer, generateKey

SAFETY = 15  # seconds; no wait in this module should come near it
PASSWORD = "s3cr3t-Pa55-xyzzy"
USER = "admin"


# -- helpers --------------------------------------------------------------------------------------


class Recorder(Protocol):
    """Client side: keeps what arrives and every connectionLost."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lostReasons: list[Failure] = []
        self.lost: Deferred[Failure] = Deferred()
        self._waiting: list[tuple[bytes, Deferred[bytes]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for entry in list(self._waiting):
            needle, d = entry
            if needle in self.data:
                self._waiting.remove(entry)
                d.callback(bytes(self.data))

    def waitFor(self, needle: bytes) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        if needle in self.data:
            d.callback(bytes(self.data))
        else:
            self._waiting.append((needle, d))
        return d

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.lostReasons.append(reason)
        if not self.lost.called:
            self.lost.callback(reason.value)  # type: ignore[arg-type]


class ServerSide(Protocol):
    """Server side: echoes, closes the session on C{bye}, records its own connectionLost."""

    instances: list[ServerSide]

    def __init__(self) -> None:
        self.data = bytearray()
        self.lost: Deferred[None] = Deferred()
        self.instances.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        assert self.transport is not None
        if b"bye" in self.data:
            self.transport.write(b"goodbye\r\n")
            self.transport.loseConnection()
        else:
            self.transport.write(data)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.lost.callback(None)


def serverSideFactory() -> Factory:
    cls = type("ServerSideForTest", (ServerSide,), {"instances": []})
    return Factory.forProtocol(cls)


async def bounded(d: Deferred[Any], reactor: Any, seconds: float = SAFETY) -> Any:
    return await d.addTimeout(seconds, reactor)


async def failure(d: Deferred[Any], reactor: Any) -> Exception:
    try:
        result = await bounded(d, reactor)
    except Exception as e:
        return e
    if isinstance(result, Protocol) and result.transport is not None:
        result.transport.loseConnection()
    raise AssertionError(f"expected a failure, got {result!r}")


def endpoint(reactor: Any, server: SSHTestServer, knownHosts: Path, **kw: Any) -> SSHShellEndpoint:
    options: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "knownHosts": str(knownHosts),
    }
    options.update(kw)
    return SSHShellEndpoint(reactor, server.interface, server.port, **options)


async def connect(ep: IStreamClientEndpoint, reactor: Any) -> Recorder:
    protocol: Recorder = await bounded(ep.connect(Factory.forProtocol(Recorder)), reactor)
    return protocol


async def close(protocol: Recorder, reactor: Any) -> None:
    assert protocol.transport is not None
    protocol.transport.loseConnection()
    await bounded(protocol.lost, reactor)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.async_yield_fixture(autouse=True)
async def no_leftover_delayed_calls(reactor: Any) -> AsyncIterator[None]:
    yield
    await deferLater(reactor, 0, lambda: None)
    ours = [c for c in reactor.getDelayedCalls() if c.func.__module__ != "pytest_twisted"]
    assert ours == []


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "known_hosts"


@pytest_twisted.async_yield_fixture
async def start_server(reactor: Any) -> AsyncIterator[Callable[..., SSHTestServer]]:
    """Start an L{SSHTestServer} (stopped after the test); accepts USER/PASSWORD by default."""
    servers: list[SSHTestServer] = []

    def start(factory: Factory | None = None, **kw: Any) -> SSHTestServer:
        kw.setdefault("users", {USER: PASSWORD})
        server = SSHTestServer(reactor, factory or Factory.forProtocol(EchoProtocol), **kw)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await bounded(server.stop(), reactor)


def trust(knownHosts: Path, server: SSHTestServer | OpenSSHServer) -> bytes:
    knownHosts.write_text(server.knownHostsLine())
    return knownHosts.read_bytes()


# -- against the in-process Conch server ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_password_shell_echo_round_trip(reactor: Any, start_server: Any, known_hosts: Path):
    """Password login, pty + shell, echo; loseConnection closes channel and connection."""
    factory = serverSideFactory()
    server = start_server(factory)
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    assert client.transport is not None
    client.transport.write(b"hello\n")
    assert b"hello\n" in await bounded(client.waitFor(b"hello\n"), reactor)
    [session] = server.sessions
    assert (session.username, session.kind, session.term) == (USER, "shell", b"vt100")
    assert client.transport.getPeer().port == server.port
    assert client.transport.getHost().host == "127.0.0.1"

    await close(client, reactor)
    await bounded(factory.protocol.instances[0].lost, reactor)  # the server saw the close
    await bounded(server.whenDisconnected(), reactor)
    assert [r.type for r in client.lostReasons] == [ConnectionDone]


@pytest_twisted.ensureDeferred
async def test_public_key_objects_and_encrypted_key_files(
    reactor: Any, start_server: Any, known_hosts: Path, tmp_path: Path
):
    """An Ed25519 Key object, and an encrypted RSA key file with its passphrase."""
    edKey = generateKey()
    rsaKey = Key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    keyFile = tmp_path / "id_rsa"
    keyFile.write_bytes(rsaKey.toString("openssh", passphrase=b"pp"))
    server = start_server(users={}, authorizedKeys={USER: [edKey.public(), rsaKey.public()]})
    trust(known_hosts, server)
    for keys, passphrase in (([edKey], None), ([str(keyFile)], "pp")):
        ep = endpoint(reactor, server, known_hosts, password=None, keys=keys, passphrase=passphrase)
        client = await connect(ep, reactor)
        await close(client, reactor)
    assert len(server.sessions) == 2

    with pytest.raises(ValueError, match="encrypted"):
        endpoint(reactor, server, known_hosts, keys=[str(keyFile)])


@pytest_twisted.ensureDeferred
async def test_agent_authentication(
    reactor: Any, start_server: Any, known_hosts: Path, tmp_path: Path
):
    """Keys held by an ssh-agent (Conch's agent server on a UNIX socket)."""
    key = generateKey()
    agentFactory = Factory.forProtocol(SSHAgentServer)
    agentFactory.keys = {key.blob(): (key, b"test key")}  # type: ignore[attr-defined]
    socketPath = str(tmp_path / "agent.sock")
    agentPort = reactor.listenUNIX(socketPath, agentFactory)
    try:
        server = start_server(users={}, authorizedKeys={USER: [key.public()]})
        trust(known_hosts, server)
        agent = UNIXClientEndpoint(reactor, socketPath)
        client = await connect(
            endpoint(reactor, server, known_hosts, password=None, agentEndpoint=agent), reactor
        )
        await close(client, reactor)
    finally:
        await agentPort.stopListening()


@pytest_twisted.ensureDeferred
async def test_exec_mode(reactor: Any, start_server: Any, known_hosts: Path):
    """command= uses exec without pty; remote exit ends the session with its status."""

    class Command(Protocol):
        def connectionMade(self) -> None:
            transport: Any = self.transport
            transport.write(b"ran " + transport.session.command + b"\n")
            transport.exit(3)

    server = start_server(Factory.forProtocol(Command))
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts, command="status"), reactor)
    assert isinstance(await bounded(client.lost, reactor), ConnectionDone)
    assert client.data == b"ran status\n"
    [session] = server.sessions
    assert (session.kind, session.command, session.term) == ("exec", b"status", None)
    transport: Any = client.transport
    assert transport.exitStatus == 3
    await bounded(server.whenDisconnected(), reactor)
    assert len(client.lostReasons) == 1


@pytest_twisted.ensureDeferred
async def test_wrong_password(reactor: Any, start_server: Any, known_hosts: Path):
    server = start_server()
    trust(known_hosts, server)
    error = await failure(
        endpoint(reactor, server, known_hosts, password="wrong-one").connect(Factory()), reactor
    )
    assert isinstance(error, AuthenticationFailed)
    assert isinstance(error, ConnectError)
    assert error.username == USER and error.tried == ("password",)
    assert f"user '{USER}'" in str(error) and "password" in str(error)
    assert "wrong-one" not in str(error) + repr(error)
    await bounded(server.whenDisconnected(), reactor)


@pytest_twisted.ensureDeferred
async def test_keyboard_interactive(reactor: Any, start_server: Any, known_hosts: Path):
    """A server offering keyboard-interactive only: the password answers its hidden prompt."""
    server = start_server(keyboardInteractive=True)
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    await close(client, reactor)

    error = await failure(
        endpoint(reactor, server, known_hosts, password="wrong-one").connect(Factory()), reactor
    )
    assert isinstance(error, AuthenticationFailed)
    assert error.tried == ("keyboard-interactive",)
    assert "password" not in error.serverMethods


@pytest.mark.parametrize("content", [None, b"# nothing here\nother.example ssh-ed25519 AAAA\n"])
@pytest_twisted.ensureDeferred
async def test_unknown_host_key_rejected(
    reactor: Any, start_server: Any, known_hosts: Path, content: bytes | None
):
    """Unknown host under 'reject': UnknownHostKey with the fingerprint; the file is untouched."""
    if content is not None:
        known_hosts.write_bytes(content)
    server = start_server()
    error = await failure(endpoint(reactor, server, known_hosts).connect(Factory()), reactor)
    assert isinstance(error, UnknownHostKey)
    assert error.fingerprint == fingerprint(server.hostKey)
    assert (error.host, error.port) == ("127.0.0.1", server.port)
    for text in (error.fingerprint, str(known_hosts), "accept-new", "ssh-keyscan"):
        assert text in str(error)
    assert server.sessions == []  # nothing got past key exchange
    if content is None:
        assert not known_hosts.exists()
    else:
        assert known_hosts.read_bytes() == content


@pytest_twisted.ensureDeferred
async def test_revoked_host_key_refused(reactor: Any, start_server: Any, known_hosts: Path):
    server = start_server()
    content = trust(known_hosts, server) + b"@revoked " + server.knownHostsLine().encode()
    known_hosts.write_bytes(content)
    error = await failure(
        endpoint(reactor, server, known_hosts, hostKeyPolicy="accept-new").connect(Factory()),
        reactor,
    )
    assert isinstance(error, HostKeyRevoked)
    assert server.sessions == []
    assert known_hosts.read_bytes() == content


@pytest_twisted.ensureDeferred
async def test_accept_new_records_key(reactor: Any, start_server: Any, known_hosts: Path):
    server = start_server()
    client = await connect(
        endpoint(reactor, server, known_hosts, hostKeyPolicy="accept-new"), reactor
    )
    await close(client, reactor)
    assert len(known_hosts.read_bytes().splitlines()) == 1
    # now known: verified under the strict policy
    client = await connect(endpoint(reactor, server, known_hosts, hostKeyPolicy="reject"), reactor)
    await close(client, reactor)
    assert len(known_hosts.read_bytes().splitlines()) == 1


@pytest.mark.parametrize("policy", ["reject", "accept-new"])
@pytest.mark.parametrize("recorded", ["ed25519", "rsa"])
@pytest_twisted.ensureDeferred
async def test_changed_host_key_always_rejected(
    reactor: Any, start_server: Any, known_hosts: Path, policy: str, recorded: str
):
    """A different key (same type or another type) on record: HostKeyChanged, file untouched."""
    server = start_server()
    if recorded == "ed25519":
        old = generateKey()
    else:
        old = Key(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    line = f"[127.0.0.1]:{server.port} {old.public().toString('openssh').decode()}\n"
    known_hosts.write_text(line)
    error = await failure(
        endpoint(reactor, server, known_hosts, hostKeyPolicy=policy).connect(Factory()), reactor
    )
    assert isinstance(error, HostKeyChanged)
    assert error.fingerprint == fingerprint(server.hostKey)
    assert error.knownFingerprints == (fingerprint(old),)
    assert f"{known_hosts}:1" in str(error) and "ssh-keygen -R" in str(error)
    assert known_hosts.read_text() == line
    assert server.sessions == []


@pytest_twisted.ensureDeferred
async def test_known_name_at_new_address(reactor: Any, start_server: Any, known_hosts: Path):
    """Keys are bound to the name connected to: its address is neither checked nor recorded."""
    server = start_server()
    content = trust(known_hosts, server).replace(b"127.0.0.1", b"localhost")
    known_hosts.write_bytes(content)
    ep = SSHShellEndpoint(
        reactor,
        "localhost",
        server.port,
        username=USER,
        password=PASSWORD,
        knownHosts=str(known_hosts),
        hostKeyPolicy="accept-new",
    )
    client = await connect(ep, reactor)
    await close(client, reactor)
    assert known_hosts.read_bytes() == content


@pytest_twisted.ensureDeferred
async def test_server_closes_channel(reactor: Any, start_server: Any, known_hosts: Path):
    """The remote shell exits: exactly one connectionLost (ConnectionDone), exit status kept."""
    server = start_server(serverSideFactory())
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    assert client.transport is not None
    client.transport.write(b"bye\n")
    assert isinstance(await bounded(client.lost, reactor), ConnectionDone)
    assert client.data.endswith(b"goodbye\r\n")
    await bounded(server.whenDisconnected(), reactor)
    assert len(client.lostReasons) == 1
    assert client.transport.exitStatus == 0  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_tcp_drop(reactor: Any, start_server: Any, known_hosts: Path):
    """The TCP connection drops without SSH close: one connectionLost with ConnectionLost."""
    server = start_server()
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    server.dropConnections()
    assert isinstance(await bounded(client.lost, reactor), ConnectionLost)
    await bounded(server.whenDisconnected(), reactor)
    assert len(client.lostReasons) == 1


@pytest_twisted.ensureDeferred
async def test_abort_connection(reactor: Any, start_server: Any, known_hosts: Path):
    factory = serverSideFactory()
    server = start_server(factory)
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    client.transport.abortConnection()  # type: ignore[union-attr]
    assert isinstance(await bounded(client.lost, reactor), ConnectionAborted)
    await bounded(factory.protocol.instances[0].lost, reactor)
    await bounded(server.whenDisconnected(), reactor)
    assert len(client.lostReasons) == 1


@pytest_twisted.ensureDeferred
async def test_data_before_shell_reply(reactor: Any, start_server: Any, known_hosts: Path):
    """A device that greets before answering the shell request: connect fires, nothing lost."""

    class Greeter(EchoProtocol):
        greeting = b"Extron Electronics\r\nIN1808\r\n"

    server = start_server(Factory.forProtocol(Greeter), startBeforeReply=True)
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    assert client.transport is not None
    client.transport.write(b"Q")
    assert await bounded(client.waitFor(b"Q"), reactor) == Greeter.greeting + b"Q"
    await close(client, reactor)


@pytest_twisted.ensureDeferred
async def test_session_requests_refused(reactor: Any, start_server: Any, known_hosts: Path):
    """A refused shell fails with SessionRefused; a refused pty is tolerated."""
    server = start_server(refuse={"shell"})
    trust(known_hosts, server)
    error = await failure(endpoint(reactor, server, known_hosts).connect(Factory()), reactor)
    assert isinstance(error, SessionRefused) and "shell" in str(error)

    server = start_server(refuse={"pty-req"})
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    assert server.sessions[0].term is None
    await close(client, reactor)


@pytest_twisted.ensureDeferred
async def test_protocol_errors_fail_connect(reactor: Any, start_server: Any, known_hosts: Path):
    """No protocol (NoProtocol), or connectionMade raising: connect fails, SSH is closed."""

    class Broken(Protocol):
        def connectionMade(self) -> None:
            raise ZeroDivisionError("broken connectionMade")

    server = start_server()
    trust(known_hosts, server)
    ep = endpoint(reactor, server, known_hosts)

    class NoneFactory(Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    assert isinstance(await failure(ep.connect(NoneFactory()), reactor), NoProtocol)
    broken = await failure(ep.connect(Factory.forProtocol(Broken)), reactor)
    assert isinstance(broken, ZeroDivisionError)
    await bounded(server.whenDisconnected(), reactor)


@pytest_twisted.ensureDeferred
async def test_ipv6(reactor: Any, start_server: Any, known_hosts: Path):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"cannot bind ::1 here: {e}")
    server = start_server(interface="::1")
    assert server.knownHostsLine().startswith(f"[::1]:{server.port} ")
    trust(known_hosts, server)
    client = await connect(endpoint(reactor, server, known_hosts), reactor)
    assert client.transport is not None
    assert client.transport.getPeer().host == "::1"
    client.transport.write(b"six\n")
    await bounded(client.waitFor(b"six\n"), reactor)
    await close(client, reactor)


class Silent(Protocol):
    """Accepts TCP and never speaks SSH."""

    connections: list[Silent] = []
    lost: Deferred[None]

    def connectionMade(self) -> None:
        self.lost = Deferred()
        self.connections.append(self)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_connect_timeout_covers_handshake(reactor: Any, known_hosts: Path):
    Silent.connections = []
    port = reactor.listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
    try:
        ep = SSHShellEndpoint(
            reactor,
            "127.0.0.1",
            port.getHost().port,
            username=USER,
            knownHosts=str(known_hosts),
            connectTimeout=0.3,
        )
        error = await failure(ep.connect(Factory()), reactor)
        assert isinstance(error, TimeoutError) and isinstance(error, ConnectError)
        assert "key exchange" in str(error)
        await bounded(Silent.connections[0].lost, reactor)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_cancel_during_handshake(reactor: Any, known_hosts: Path):
    Silent.connections = []
    port = reactor.listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
    try:
        ep = SSHShellEndpoint(
            reactor, "127.0.0.1", port.getHost().port, username=USER, knownHosts=str(known_hosts)
        )
        d = ep.connect(Factory())
        while not Silent.connections:
            await deferLater(reactor, 0.01, lambda: None)
        d.cancel()
        with pytest.raises(CancelledError):
            await d
        await bounded(Silent.connections[0].lost, reactor)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_connection_refused(reactor: Any, known_hosts: Path):
    ep = SSHShellEndpoint(
        reactor, "127.0.0.1", freePort(), username=USER, knownHosts=str(known_hosts)
    )
    assert isinstance(await failure(ep.connect(Factory()), reactor), ConnectionRefusedError)


@pytest_twisted.ensureDeferred
async def test_password_never_logged_or_shown(reactor: Any, start_server: Any, known_hosts: Path):
    wrong = "Wr0ng-Pa55-plugh"
    with LoggedEvents() as events:
        server = start_server()
        trust(known_hosts, server)
        ep = endpoint(reactor, server, known_hosts, passphrase="unused-passphrase")
        client = await connect(ep, reactor)
        assert client.transport is not None
        client.transport.write(b"ping\n")
        await bounded(client.waitFor(b"ping\n"), reactor)
        await close(client, reactor)
        badEndpoint = endpoint(reactor, server, known_hosts, password=wrong)
        error = await failure(badEndpoint.connect(Factory()), reactor)
        await bounded(server.whenDisconnected(), reactor)
    logged = "\n".join(f"{formatEvent(e)}\n{e!r}" for e in events)
    assert "SSH session open" in logged  # the observer did see the endpoint's events
    shown = [repr(ep), str(ep), repr(badEndpoint), str(error), repr(error), repr(client.transport)]
    for secret in (PASSWORD, wrong, "unused-passphrase"):
        assert secret not in logged
        for text in shown:
            assert secret not in text
    assert "password=<hidden>" in repr(ep)


@pytest_twisted.ensureDeferred
async def test_string_parser(reactor: Any, start_server: Any, known_hosts: Path):
    """ssh: strings via clientFromString, with escaping; our plugin owns the 'ssh' prefix."""
    assert "SSH" not in _clientParsers
    prefixes = [p.prefix for p in getPlugins(IStreamClientEndpointStringParserWithReactor)]
    assert prefixes.count("ssh") == 1

    tricky = "p:w=x\\y"
    server = start_server(users={USER: tricky})
    trust(known_hosts, server)
    escaped = tricky.replace("\\", "\\\\").replace(":", "\\:")
    description = (
        f"ssh:127.0.0.1:{server.port}:username={USER}:password={escaped}"
        f":knownHosts={known_hosts}:hostKeyPolicy=reject:term=xterm:timeout=10"
    )
    ep = clientFromString(reactor, description)
    assert isinstance(ep, SSHShellEndpoint)
    assert (ep.host, ep.port, ep.username, ep.command) == ("127.0.0.1", server.port, USER, None)
    assert tricky not in repr(ep)
    client = await connect(ep, reactor)
    await close(client, reactor)
    assert server.sessions[0].term == b"xterm"

    keyed = clientFromString(
        reactor,
        "ssh:host=\\:\\:1:port=2222:username=u:command=show status:term=none:knownHosts=/x/kh",
    )
    assert isinstance(keyed, SSHShellEndpoint)
    assert (keyed.host, keyed.port, keyed.command) == ("::1", 2222, b"show status")
    assert keyed.hostKeyPolicy == "reject" and keyed.knownHostsPath == "/x/kh"

    for bad, message in [
        ("ssh:h:username=u:colour=red", "unknown option 'colour'"),
        ("ssh:h", "username= is required"),
        ("ssh:h:22:username=u:port=23", "port given twice"),
        ("ssh:h:username=u:hostKeyPolicy=yes", "hostKeyPolicy"),
        ("ssh:h:x:username=u:password=hunter2", "port must be an integer"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            clientFromString(reactor, bad)
        assert "hunter2" not in str(raised.value)
    with pytest.raises(ValueError, match="cannot read key file /nonexistent/key"):
        parseSSHShellEndpoint(reactor, "h", username="u", keys="/nonexistent/key")
    # a part that is not text is named with its type, never its value
    with pytest.raises(ValueError, match="password must be text, not bytes") as raised:
        parseSSHShellEndpoint(reactor, "h", username="u", password=b"hunter2")
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ValueError, match="part 2 must be text, not int"):
        parseSSHShellEndpoint(reactor, "h", 22, username="u")


# -- known_hosts read/write failures and the parse cache -----------------------------------------


def failOpening(
    monkeypatch: pytest.MonkeyPatch, path: Path, code: int, only: str | None = None
) -> None:
    """
    Make opening C{path} (by C{open} or C{os.open}) fail with C{code}, as EMFILE or a full disk
    would: only to read it or only to write it if C{only} is C{"read"} or C{"write"}.  Other
    files open normally.  Undone by C{monkeypatch.undo()}.
    """
    target = os.fspath(path)
    realOpen, realOsOpen = builtins.open, os.open

    def isTarget(file: object) -> bool:
        return isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file) == target

    def refuse() -> OSError:
        return OSError(code, os.strerror(code), target)

    def fails(writing: bool) -> bool:
        return only is None or only == ("write" if writing else "read")

    def fakeOpen(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if isTarget(file) and fails(any(c in mode for c in "wax+")):
            raise refuse()
        return realOpen(file, mode, *args, **kw)

    def fakeOsOpen(file: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if isTarget(file) and fails(bool(flags & (os.O_WRONLY | os.O_RDWR))):
            raise refuse()
        return realOsOpen(file, flags, mode, **kw)

    monkeypatch.setattr(builtins, "open", fakeOpen)
    monkeypatch.setattr(os, "open", fakeOsOpen)


def countOpens(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[object]:
    """Every opening of C{path} (by C{open} or C{os.open}) is appended to the returned list."""
    target = os.fspath(path)
    opened: list[object] = []
    realOpen, realOsOpen = builtins.open, os.open

    def spyOpen(file: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == target:
            opened.append(file)
        return realOpen(file, *args, **kw)

    def spyOsOpen(file: Any, *args: Any, **kw: Any) -> int:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == target:
            opened.append(file)
        return realOsOpen(file, *args, **kw)

    monkeypatch.setattr(builtins, "open", spyOpen)
    monkeypatch.setattr(os, "open", spyOsOpen)
    return opened


def countParses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every known_hosts parse by the host-key verifier is appended to the returned list."""
    from twisted_ch.endpoints import _ssh_hostkeys

    parses: list[object] = []
    realParse = getattr(_ssh_hostkeys, "_parse", None)

    def spyParse(*args: Any) -> Any:
        parses.append(args)
        assert realParse is not None
        return realParse(*args)

    # raising=False: callers check the opens first, so that code without the cache fails there
    monkeypatch.setattr(_ssh_hostkeys, "_parse", spyParse, raising=False)
    return parses


def hostLine(name: str, key: Key, hashed: bool = False) -> str:
    """A known_hosts line for C{name}; hashed as C{ssh-keygen -H} writes it."""
    public = key.public().toString("openssh").decode()
    if hashed:
        salt = os.urandom(20)
        digest = hmac.digest(salt, name.encode(), "sha1")
        name = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    return f"{name} {public}\n"


def verifierFor(path: Path, policy: str) -> Any:
    """A host-key verifier as the endpoint builds one."""
    from twisted_ch.endpoints._ssh_hostkeys import HostKeyVerifier

    return HostKeyVerifier(KnownHostsFile.fromPath(FilePath(str(path))), policy)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["accept-new", "reject"])
@pytest.mark.parametrize("hashed", [False, True])
@pytest_twisted.ensureDeferred
async def test_known_hosts_read_failure_fails_closed(
    reactor: Any,
    start_server: Any,
    known_hosts: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    hashed: bool,
):
    """
    The review's repro: the device's real key is on record, one read of known_hosts fails
    (EMFILE) and an attacker offers another key.  The connection is refused with an error that
    names the file and the OS error, nothing is written, and once reads work again the
    attacker's key is still refused, under either policy.
    """
    server = start_server()  # the attacker: its host key is not the recorded one
    real = generateKey()
    content = hostLine(f"[127.0.0.1]:{server.port}", real, hashed)
    known_hosts.write_text(content)
    ep = endpoint(reactor, server, known_hosts, hostKeyPolicy=policy)

    failOpening(monkeypatch, known_hosts, errno.EMFILE, only="read")
    error = await failure(ep.connect(Factory()), reactor)
    monkeypatch.undo()
    assert known_hosts.read_text() == content
    assert server.sessions == []
    assert isinstance(error, HostKeyError) and isinstance(error, ConnectError)
    assert not isinstance(error, (UnknownHostKey, HostKeyChanged))
    assert str(known_hosts) in str(error) and "Too many open files" in str(error)
    assert "refused" in str(error)
    from twisted_ch.endpoints._ssh_hostkeys import KnownHostsFileError

    assert isinstance(error, KnownHostsFileError)
    assert (error.path, error.error.errno, error.saving) == (str(known_hosts), errno.EMFILE, False)

    # the failure has cleared: the same endpoint, and a strict one, refuse the attacker's key
    for again in (ep, endpoint(reactor, server, known_hosts, hostKeyPolicy="reject")):
        changed = await failure(again.connect(Factory()), reactor)
        assert isinstance(changed, HostKeyChanged)
        assert changed.knownFingerprints == (fingerprint(real),)
        assert f"{known_hosts}:1" in str(changed)
    assert known_hosts.read_text() == content
    assert server.sessions == []


@pytest_twisted.ensureDeferred
async def test_unknown_host_read_failure_is_not_first_use(
    reactor: Any, start_server: Any, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
):
    """An unreadable file is not an empty one: no trust on first use while it cannot be read."""
    server = start_server()
    content = hostLine("other.example", generateKey())
    known_hosts.write_text(content)
    ep = endpoint(reactor, server, known_hosts, hostKeyPolicy="accept-new")
    failOpening(monkeypatch, known_hosts, errno.EACCES, only="read")
    error = await failure(ep.connect(Factory()), reactor)
    monkeypatch.undo()
    assert isinstance(error, HostKeyError) and "Permission denied" in str(error)
    assert known_hosts.read_text() == content


@pytest_twisted.ensureDeferred
async def test_host_key_save_failure_refuses_and_forgets(
    reactor: Any, start_server: Any, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
):
    """
    accept-new, and the new key cannot be saved: the connection is refused, and the key is not
    trusted from memory by the next attempt of the same endpoint (nor by a strict one).
    """
    server = start_server()
    ep = endpoint(reactor, server, known_hosts, hostKeyPolicy="accept-new")
    failOpening(monkeypatch, known_hosts, errno.ENOSPC, only="write")
    errors = []
    for _attempt in range(2):
        errors.append(await failure(ep.connect(Factory()), reactor))
        assert not known_hosts.exists()
    assert all(isinstance(error, HostKeyError) for error in errors), errors  # both refused
    for error in errors:
        assert not isinstance(error, (UnknownHostKey, HostKeyChanged))
        assert str(known_hosts) in str(error) and "No space left on device" in str(error)
        assert fingerprint(server.hostKey) in str(error) and "not trusted" in str(error)
    assert server.sessions == []
    monkeypatch.undo()

    strict = await failure(
        endpoint(reactor, server, known_hosts, hostKeyPolicy="reject").connect(Factory()), reactor
    )
    assert isinstance(strict, UnknownHostKey)
    # once the file can be written, first use records the key as usual
    client = await connect(ep, reactor)
    await close(client, reactor)
    assert len(known_hosts.read_bytes().splitlines()) == 1


def test_partial_write_is_rolled_back(known_hosts: Path, monkeypatch: pytest.MonkeyPatch):
    """A write that fails half-way (disk full) leaves the file as it was, and refuses the key."""
    content = hostLine("other.example", generateKey()).rstrip("\n")  # no final newline
    known_hosts.write_text(content)
    realWrite = os.write

    def halfWrite(fd: int, data: Any) -> int:
        if bytes(data[:1]) == b"\n":  # our line: write some of it, then fail
            realWrite(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return realWrite(fd, data)

    monkeypatch.setattr(os, "write", halfWrite)
    verifier = verifierFor(known_hosts, "accept-new")
    with pytest.raises(HostKeyError, match="No space left on device"):
        verifier.verify("dev", 2222, generateKey())
    monkeypatch.undo()
    assert known_hosts.read_text() == content
    with pytest.raises(UnknownHostKey):
        verifierFor(known_hosts, "reject").verify("dev", 2222, generateKey())


def test_accept_new_appends_after_rereading(known_hosts: Path, monkeypatch: pytest.MonkeyPatch):
    """
    The file is re-read just before appending: a key recorded meanwhile (by another process)
    is compared, and the new line goes on a line of its own after a file without final newline.
    """
    name = "[dev]:2222"
    real, evil = generateKey(), generateKey()
    known_hosts.write_text(hostLine("other.example", generateKey()).rstrip("\n"))
    before = known_hosts.read_text()
    verifier = verifierFor(known_hosts, "accept-new")
    assert verifier.preferredAlgorithms("dev", 2222, [b"ssh-ed25519"]) == [b"ssh-ed25519"]

    # another process records the real key just as this one opens the file to append
    target = os.fspath(known_hosts)
    realOpen, realOsOpen = builtins.open, os.open
    meanwhile = "\n" + hostLine(name, real, hashed=True)

    def recordMeanwhile(file: Any) -> None:
        nonlocal meanwhile
        if meanwhile and isinstance(file, (str, os.PathLike)) and os.fspath(file) == target:
            with realOpen(target, "a") as f:
                f.write(meanwhile)
            meanwhile = ""

    def spyOpen(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if any(c in mode for c in "wax+"):
            recordMeanwhile(file)
        return realOpen(file, mode, *args, **kw)

    def spyOsOpen(file: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            recordMeanwhile(file)
        return realOsOpen(file, flags, *args, **kw)

    monkeypatch.setattr(builtins, "open", spyOpen)
    monkeypatch.setattr(os, "open", spyOsOpen)
    with pytest.raises(HostKeyChanged) as changed:
        verifier.verify("dev", 2222, evil)
    monkeypatch.undo()
    after = known_hosts.read_text()
    assert meanwhile == ""
    assert after.count("\n") == 2 and after.startswith(before)
    assert changed.value.knownFingerprints == (fingerprint(real),)
    assert f"{known_hosts}:2" in str(changed.value)

    # a new host on a file without final newline: appended, hashed, on a line of its own
    known_hosts.write_text(after.rstrip("\n"))
    newKey = generateKey()
    verifier.verify("Other.Device", 22, newKey)
    lines = known_hosts.read_text().splitlines()
    assert len(lines) == 3 and lines[2].startswith("|1|")
    verifierFor(known_hosts, "reject").verify("other.device", 22, newKey)


@pytest.mark.parametrize("policy", ["reject", "accept-new"])
@pytest.mark.parametrize("hosts", ["[dev]:2222", "*", "other.example"])
def test_a_revoked_key_is_never_accepted(known_hosts: Path, policy: str, hosts: str):
    """A key on an @revoked line is refused (whatever host the line names) and never recorded."""
    key = generateKey()
    content = hostLine("[dev]:2222", key) + "@revoked " + hostLine(hosts, key)
    known_hosts.write_text(content)
    with pytest.raises(HostKeyRevoked) as revoked:
        verifierFor(known_hosts, policy).verify("dev", 2222, key)
    assert revoked.value.fingerprint == fingerprint(key)
    assert f"{known_hosts} line 2" in str(revoked.value)
    assert known_hosts.read_text() == content
    # another, unrevoked key for a host the file does not know is still just unknown
    with pytest.raises(UnknownHostKey):
        verifierFor(known_hosts, "reject").verify("new.example", 22, generateKey())


def test_accept_new_creates_the_directory(tmp_path: Path):
    path = tmp_path / "ssh" / "known_hosts"
    key = generateKey()
    verifierFor(path, "accept-new").verify("dev", 22, key)
    verifierFor(path, "reject").verify("dev", 22, key)
    assert len(path.read_bytes().splitlines()) == 1


def test_known_hosts_parsed_once_until_it_changes(
    known_hosts: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """
    Repeated checks of an unchanged file (by one endpoint or several) neither open nor parse
    it again; a change of content, modification time, size or inode is noticed.
    """
    real, other = generateKey(), generateKey()
    lines = [hostLine(f"host{i}.example", generateKey(), hashed=True) for i in range(40)]
    lines.insert(20, hostLine("[dev]:2222", real, hashed=True))
    known_hosts.write_text("".join(lines))
    opened = countOpens(monkeypatch, known_hosts)
    parses = countParses(monkeypatch)

    verifiers = [verifierFor(known_hosts, "reject") for _ in range(3)]
    for verifier in verifiers:
        for _attempt in range(3):
            verifier.preferredAlgorithms("dev", 2222, [b"ssh-rsa", b"ssh-ed25519"])
            verifier.verify("dev", 2222, real)
    assert (len(opened), len(parses)) == (1, 1)
    with pytest.raises(HostKeyChanged) as changed:
        verifiers[0].verify("dev", 2222, other)
    assert f"{known_hosts}:21" in str(changed.value)
    assert len(parses) == 1

    # appended to (size and mtime change)
    with open(known_hosts, "a") as f:
        f.write(hostLine("late.example", generateKey()))
    verifiers[0].verify("dev", 2222, real)
    verifiers[1].verify("dev", 2222, real)
    assert len(parses) == 2

    # rewritten in place with the same size: the modification time tells
    stat = known_hosts.stat()
    text = known_hosts.read_text()
    old, new = (
        real.public().toString("openssh").decode(),
        other.public().toString("openssh").decode(),
    )
    assert len(old) == len(new)
    with open(known_hosts, "r+") as f:
        f.write(text.replace(old, new))
    os.utime(known_hosts, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert known_hosts.stat().st_size == stat.st_size
    verifiers[0].verify("dev", 2222, other)
    assert len(parses) == 3

    # replaced by another file (new inode) with the same size and modification time
    stat = known_hosts.stat()
    replacement = tmp_path / "known_hosts.new"
    replacement.write_text(text)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, known_hosts)
    verifiers[0].verify("dev", 2222, real)
    assert len(parses) == 4


@pytest_twisted.ensureDeferred
async def test_known_hosts_parsed_once_per_connect(
    reactor: Any, start_server: Any, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
):
    """A connection attempt reads known_hosts once; the next one, file unchanged, not at all."""
    server = start_server()
    trust(known_hosts, server)
    opened = countOpens(monkeypatch, known_hosts)
    parses = countParses(monkeypatch)
    ep = endpoint(reactor, server, known_hosts)
    for _attempt in range(3):
        client = await connect(ep, reactor)
        await close(client, reactor)
    assert (len(opened), len(parses)) == (1, 1)


# -- against a real OpenSSH sshd ------------------------------------------------------------------


@pytest_twisted.async_yield_fixture(scope="module")
async def sshd() -> AsyncIterator[OpenSSHServer]:
    from twisted.internet import reactor

    server = await startOpenSSH(reactor)
    yield server
    await server.stop()


def openssh(reactor: Any, sshd: OpenSSHServer, knownHosts: Path, **kw: Any) -> SSHShellEndpoint:
    return SSHShellEndpoint(
        reactor, sshd.host, sshd.port, username=sshd.username, knownHosts=str(knownHosts), **kw
    )


@pytest.mark.parametrize("keyType", ["ed25519", "rsa"])
@pytest_twisted.ensureDeferred
async def test_openssh_key_auth_shell(
    reactor: Any, sshd: OpenSSHServer, known_hosts: Path, keyType: str
):
    """Encrypted key file (RSA signs with rsa-sha2-*, which OpenSSH requires), pty + shell."""
    trust(known_hosts, sshd)
    ep = openssh(reactor, sshd, known_hosts, keys=[sshd.userKeys[keyType]], passphrase=PASSPHRASE)
    client = await connect(ep, reactor)
    await bounded(client.waitFor(b"READY"), reactor)
    assert client.transport is not None
    client.transport.write(b"hello device\n")
    await bounded(client.waitFor(b"ECHO:hello device"), reactor)
    await close(client, reactor)
    assert len(client.lostReasons) == 1


@pytest_twisted.ensureDeferred
async def test_openssh_agent_rsa(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    """OpenSSH's ssh-agent signs for an RSA key with SHA-2 (agent flags) and sshd accepts it."""
    trust(known_hosts, sshd)
    key = Key.fromFile(sshd.userKeys["rsa"], passphrase=PASSPHRASE.encode())
    agent = await startAgent(reactor, sshd.directory, key)
    try:
        ep = openssh(
            reactor, sshd, known_hosts, agentEndpoint=UNIXClientEndpoint(reactor, agent.path)
        )
        client = await connect(ep, reactor)
        await bounded(client.waitFor(b"READY"), reactor)
        await close(client, reactor)
    finally:
        await bounded(Deferred.fromCoroutine(agent.stop()), reactor)


@pytest_twisted.ensureDeferred
async def test_openssh_password_shell(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    trust(known_hosts, sshd)
    client = await connect(openssh(reactor, sshd, known_hosts, password=sshd.password), reactor)
    await bounded(client.waitFor(b"READY"), reactor)
    assert client.transport is not None
    client.transport.write(b"1*2!\n")
    await bounded(client.waitFor(b"ECHO:1*2!"), reactor)
    await close(client, reactor)


@pytest_twisted.ensureDeferred
async def test_openssh_exec(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    trust(known_hosts, sshd)
    ep = openssh(reactor, sshd, known_hosts, password=sshd.password, command="show version")
    client = await connect(ep, reactor)
    assert isinstance(await bounded(client.lost, reactor), ConnectionDone)
    assert client.data == b"EXEC:show version\n"
    assert client.transport.exitStatus == 0  # type: ignore[union-attr]
    assert len(client.lostReasons) == 1


@pytest_twisted.ensureDeferred
async def test_openssh_wrong_password(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    trust(known_hosts, sshd)
    ep = openssh(reactor, sshd, known_hosts, password="not-" + sshd.password)
    error = await failure(ep.connect(Factory()), reactor)
    assert isinstance(error, AuthenticationFailed)
    assert error.tried == ("password",) and "password" in error.serverMethods
    assert sshd.password not in str(error)


@pytest_twisted.ensureDeferred
async def test_openssh_unknown_host_key(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    error = await failure(
        openssh(reactor, sshd, known_hosts, password=sshd.password).connect(Factory()), reactor
    )
    assert isinstance(error, UnknownHostKey)
    assert error.fingerprint == fingerprint(sshd.hostPublicKey)
    assert not known_hosts.exists()


@pytest_twisted.ensureDeferred
async def test_openssh_changed_host_key(reactor: Any, sshd: OpenSSHServer, known_hosts: Path):
    old = generateKey().public().toString("openssh").decode()
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {old}\n")
    ep = openssh(reactor, sshd, known_hosts, password=sshd.password, hostKeyPolicy="accept-new")
    error = await failure(ep.connect(Factory()), reactor)
    assert isinstance(error, HostKeyChanged)
    assert error.fingerprint == fingerprint(sshd.hostPublicKey)
    assert known_hosts.read_text() == f"[127.0.0.1]:{sshd.port} {old}\n"


def test_fingerprint_matches_ssh_keygen(tmp_path: Path):
    """Our fingerprints are the ones ssh-keygen -l prints (what users compare against)."""
    key = generateKey()
    path = tmp_path / "k.pub"
    path.write_bytes(key.public().toString("openssh"))
    output = os.popen(f"ssh-keygen -l -f {path}").read()
    assert fingerprint(key) in output


# -- hardening (issue 11): known_hosts I/O bounded and never blocking; quiet rejections ------------


def _kinds(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"a FIFO": fifo, "a character device": Path("/dev/zero"), "a directory": tmp_path}


@pytest.mark.parametrize("kind", ["a FIFO", "a character device", "a directory"])
@pytest.mark.parametrize("policy", ["reject", "accept-new"])
def test_known_hosts_that_is_not_a_regular_file_is_refused_without_reading_it(
    tmp_path: Path, kind: str, policy: str
) -> None:
    from twisted_ch.endpoints._ssh_hostkeys import HostKeyVerifier, KnownHostsFileError

    path = _kinds(tmp_path)[kind]
    verifier = HostKeyVerifier(str(path), policy)  # type: ignore[arg-type]
    # a FIFO with no writer would block an open for reading forever; /dev/zero never ends
    with pytest.raises(KnownHostsFileError) as info:
        verifier.verify("127.0.0.1", 2222, generateKey().public())
    assert f"it is {kind}, not a regular file" in str(info.value)
    with pytest.raises(KnownHostsFileError):
        verifier.preferredAlgorithms("127.0.0.1", 2222, [b"ssh-ed25519"])


def test_known_hosts_larger_than_the_bound_is_refused(tmp_path: Path) -> None:
    from twisted_ch.endpoints._ssh_hostkeys import (
        MAX_KNOWN_HOSTS_BYTES,
        HostKeyVerifier,
        KnownHostsFileError,
    )

    path = tmp_path / "known_hosts"
    with open(path, "wb") as f:
        f.truncate(MAX_KNOWN_HOSTS_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(KnownHostsFileError, match="more than the"):
        HostKeyVerifier(str(path), "reject").verify("h", 22, generateKey().public())


def test_a_locked_known_hosts_refuses_the_attempt_at_once_and_the_next_one_records(
    tmp_path: Path,
) -> None:
    import fcntl

    from twisted_ch.endpoints._ssh_hostkeys import HostKeyVerifier, KnownHostsFileError

    path = tmp_path / "known_hosts"
    path.write_bytes(b"")
    key = generateKey().public()
    verifier = HostKeyVerifier(str(path), "accept-new")
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another open file: flock conflicts, as a process
        with pytest.raises(KnownHostsFileError, match="holds it locked") as info:
            verifier.verify("127.0.0.1", 2222, key)  # returns at once: the test does not hang
        assert info.value.saving
    assert path.read_bytes() == b""
    verifier.verify("127.0.0.1", 2222, key)  # unlocked: trusted on first use
    assert path.read_bytes().count(b"\n") == 1


@pytest_twisted.ensureDeferred
async def test_a_fifo_known_hosts_fails_each_connect_clearly_and_leaves_the_reactor_free(
    reactor: Any, start_server: Any, tmp_path: Path
) -> None:
    from twisted_ch.endpoints._ssh_hostkeys import KnownHostsFileError

    fifo = _kinds(tmp_path)["a FIFO"]
    server = start_server()
    for _ in range(2):
        error = await failure(endpoint(reactor, server, fifo).connect(Factory()), reactor)
        assert isinstance(error, KnownHostsFileError)
        assert "FIFO" in str(error) and "closed during" not in str(error)


@pytest_twisted.ensureDeferred
async def test_a_rejected_host_key_is_one_quiet_line_and_the_server_learns_no_path(
    reactor: Any, start_server: Any, known_hosts: Path
) -> None:
    with LoggedEvents() as events:
        server = start_server()
        for _ in range(3):
            error = await failure(
                endpoint(reactor, server, known_hosts).connect(Factory()), reactor
            )
            assert isinstance(error, UnknownHostKey)
        await deferLater(reactor, 0.05, lambda: None)  # the server's side of the close
    ours = [e for e in events if "_ssh_client" in (e.get("log_namespace") or "")]
    assert [e for e in events if "log_failure" in e] == []
    texts = [formatEvent(e) for e in ours if e["log_level"].name != "debug"]
    assert not any("\n" in t or "Traceback" in t or "bad packet" in t for t in texts), texts
    told = [formatEvent(e) for e in events if "Got remote error" in formatEvent(e)]
    assert told and all(str(known_hosts) not in t and "Traceback" not in t for t in told)


@pytest_twisted.ensureDeferred
async def test_openssh_rejected_host_key_logs_no_bad_packet_length(
    reactor: Any, sshd: OpenSSHServer, known_hosts: Path
) -> None:
    with LoggedEvents() as events:
        for _ in range(3):
            error = await failure(
                openssh(reactor, sshd, known_hosts, password=sshd.password).connect(Factory()),
                reactor,
            )
            assert isinstance(error, UnknownHostKey)
    texts = [formatEvent(e) for e in events]
    assert not any("bad packet" in t or "Traceback" in t for t in texts), texts
    assert [e for e in events if "log_failure" in e] == []


def test_an_ssh_transport_reports_what_it_holds_so_the_write_buffer_is_bounded() -> None:
    """The channel's buffer (the server's window is full) and the TCP queue both count."""
    from types import SimpleNamespace

    from twisted.internet.task import Clock

    from twisted_ch.endpoints._ssh_client import ShellTransport
    from twisted_ch.protocols.device import DeviceProtocol, WriteBufferFull

    tcp = SimpleNamespace(dataBuffer=b"t" * 1000, offset=100, _tempDataLen=50)
    session = SimpleNamespace(_ssh=SimpleNamespace(transport=tcp), closing=False)
    channel = SimpleNamespace(buf=b"c" * 2_000_000, localClosed=False, write=lambda data: None)
    transport = ShellTransport(session, channel)  # type: ignore[arg-type]
    assert transport.queuedBytes() == 2_000_000 + 900 + 50

    sink = SimpleNamespace(linkMade=lambda p: None, linkData=lambda d: None)
    protocol = DeviceProtocol(sink, Clock())  # type: ignore[arg-type]
    protocol.makeConnection(transport)  # type: ignore[arg-type]
    with pytest.raises(WriteBufferFull, match="not reading"):
        protocol.send(b"more")
    channel.buf = b""
    protocol.send(b"more")  # drained: accepted again
