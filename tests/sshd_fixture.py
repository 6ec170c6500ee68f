"""
A real OpenSSH C{sshd} for integration tests, on a free 127.0.0.1 port.

Everything it needs is generated in a fresh directory: an Ed25519 host key, Ed25519 and RSA user
keys (encrypted with L{PASSPHRASE}), C{authorized_keys} and an C{sshd_config} whose
C{ForceCommand} makes the session hermetic: a shell prints C{READY} and answers each line with
C{ECHO:<line>}; an exec prints C{EXEC:<command>} and exits with status 0.

Password logins need a local account: as root, the fixture creates L{USERNAME} (once) and sets a
fresh random password each run; its password is locked again when the server stops.  Without root
or without C{/usr/sbin/sshd}, L{startOpenSSH} fails the test with a message saying what to do.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import freePort
from twisted.conch.ssh.agent import SSHAgentClient
from twisted.conch.ssh.keys import Key
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint
from twisted.internet.error import ConnectError, ProcessExitedAlready
from twisted.internet.interfaces import IProcessTransport, IReactorProcess
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from twisted_ch.endpoints.ssh import knownHostsName

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
SSH_AGENT = "/usr/bin/ssh-agent"
USERNAME = "twistedch-test"
PASSPHRASE = "fixture passphrase"
FORCE_COMMAND = (
    'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then echo "EXEC:$SSH_ORIGINAL_COMMAND"; '
    'else echo READY; while IFS= read -r line; do echo "ECHO:$line"; done; fi'
)
_STARTUP_ATTEMPTS = 200  # x 50 ms
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


class _Collect(ProcessProtocol):
    """Feeds stdin, collects output, fires C{ended} with (stdout, stderr, status)."""

    def __init__(self, stdin: bytes = b"") -> None:
        self.stdin = stdin
        self.out = bytearray()
        self.err = bytearray()
        self.ended: Deferred[tuple[bytes, bytes, int | None]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.stdin:
            self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        status = getattr(reason.value, "exitCode", None)
        self.ended.callback((bytes(self.out), bytes(self.err), status))


async def run(reactor: IReactorProcess, argv: Sequence[str], stdin: bytes = b"") -> bytes:
    """Run a command to completion through the reactor; return stdout, fail on non-zero exit."""
    collect = _Collect(stdin)
    reactor.spawnProcess(collect, argv[0], list(argv), env=_ENV)
    out, err, status = await collect.ended
    if status != 0:
        pytest.fail(f"{' '.join(argv)} exited with {status}: {err.decode(errors='replace')}")
    return out


@dataclass
class OpenSSHServer:
    """A running sshd and what a client needs to reach it."""

    reactor: IReactorProcess
    directory: str
    port: int
    password: str
    hostPublicKey: Key
    userKeys: dict[str, str]
    process: IProcessTransport = field(repr=False)
    ended: Deferred[tuple[bytes, bytes, int | None]] = field(repr=False)
    log: bytearray = field(repr=False)
    username: str = USERNAME
    host: str = "127.0.0.1"
    createdUser: bool = False

    def knownHostsLine(self) -> str:
        """A known_hosts line trusting this sshd's host key."""
        key = self.hostPublicKey.toString("openssh").decode("ascii")
        return f"{knownHostsName(self.host, self.port)} {key}\n"

    async def stop(self) -> None:
        """
        Stop sshd and remove its directory; remove the test account if this server created it,
        else lock its password.
        """
        try:
            _terminate(self.process, self.ended)
            await self.ended
            if self.createdUser:
                await _removeUser(self.reactor)
            else:
                await run(self.reactor, ["/usr/sbin/usermod", "-L", self.username])
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _terminate(process: IProcessTransport, ended: Deferred[Any]) -> None:
    if not ended.called:
        try:
            process.signalProcess("TERM")
        except ProcessExitedAlready:
            pass


def _config(directory: str, port: int, version: tuple[int, int]) -> str:
    lines = [
        "ListenAddress 127.0.0.1",
        f"Port {port}",
        f"HostKey {directory}/ssh_host_ed25519_key",
        f"PidFile {directory}/sshd.pid",
        f"AuthorizedKeysFile {directory}/authorized_keys",
        f"AllowUsers {USERNAME}",
        "PasswordAuthentication yes",
        "PubkeyAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "LogLevel VERBOSE",
        f"ForceCommand {FORCE_COMMAND}",
    ]
    if version >= (9, 8):  # failed logins in the tests must not get 127.0.0.1 penalised
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


async def _sshdVersion(reactor: IReactorProcess) -> tuple[int, int]:
    collect = _Collect()
    reactor.spawnProcess(collect, SSHD, [SSHD, "-V"], env=_ENV)
    out, err, _ = await collect.ended
    match = re.search(rb"OpenSSH_(\d+)\.(\d+)", out + err)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


async def _ensureUser(reactor: IReactorProcess) -> bool:
    """Create the test account unless it exists; whether it was created."""
    try:
        pwd.getpwnam(USERNAME)
    except KeyError:
        await run(reactor, ["/usr/sbin/useradd", "-m", "-s", "/bin/sh", USERNAME])
        return True
    return False


async def _removeUser(reactor: IReactorProcess) -> None:
    """Remove the test account (forcibly: sshd session processes may linger); best effort."""
    collect = _Collect()
    argv = ["/usr/sbin/userdel", "-f", "-r", USERNAME]
    reactor.spawnProcess(collect, argv[0], argv, env=_ENV)
    await collect.ended


async def _waitForBanner(
    reactor: Any, port: int, ended: Deferred[tuple[bytes, bytes, int | None]], log: bytearray
) -> None:
    """Retry (reactor-driven, bounded) until the port answers with an SSH banner."""

    class Banner(Protocol):
        def __init__(self) -> None:
            self.seen: Deferred[None] = Deferred()

        def dataReceived(self, data: bytes) -> None:
            if data.startswith(b"SSH-") and not self.seen.called:
                self.seen.callback(None)
                assert self.transport is not None
                self.transport.loseConnection()

    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=2)
    for _ in range(_STARTUP_ATTEMPTS):
        if ended.called:
            break
        try:
            protocol = await endpoint.connect(Factory.forProtocol(Banner))
        except ConnectError:
            await deferLater(reactor, 0.05, lambda: None)
            continue
        await protocol.seen.addTimeout(5, reactor)
        return
    pytest.fail(f"sshd did not start listening on 127.0.0.1:{port}; its log:\n{log.decode()}")


async def startOpenSSH(reactor: IReactorProcess) -> OpenSSHServer:
    """Generate keys and config, start C{sshd -D -e}, and wait until it answers."""
    if not os.access(SSHD, os.X_OK):
        pytest.fail(f"{SSHD} not found: install OpenSSH's server (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.fail(
            "the OpenSSH tests must run as root: they create the local account "
            f"{USERNAME!r} for password logins and start sshd (run them in CI or a container)"
        )
    password = secrets.token_urlsafe(18)
    createdUser = await _ensureUser(reactor)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    directory = tempfile.mkdtemp(prefix="twisted_ch-sshd-")
    os.chmod(directory, 0o755)  # sshd reads authorized_keys as the test user
    try:
        await run(reactor, ["/usr/sbin/chpasswd"], f"{USERNAME}:{password}\n".encode())
        hostKey = f"{directory}/ssh_host_ed25519_key"
        await run(reactor, [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", hostKey])
        userKeys = {}
        for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"])):
            path = f"{directory}/id_{kind}"
            await run(reactor, [SSH_KEYGEN, "-q", "-t", kind, *extra, "-N", PASSPHRASE, "-f", path])
            userKeys[kind] = path
        authorized = f"{directory}/authorized_keys"
        with open(authorized, "w") as f:
            for path in userKeys.values():
                with open(path + ".pub") as pub:
                    f.write(pub.read())
        os.chmod(authorized, 0o644)
        port = freePort()
        config = f"{directory}/sshd_config"
        with open(config, "w") as f:
            f.write(_config(directory, port, await _sshdVersion(reactor)))
        log = bytearray()

        class SSHDProcess(ProcessProtocol):
            def __init__(self) -> None:
                self.ended: Deferred[tuple[bytes, bytes, int | None]] = Deferred()

            def errReceived(self, data: bytes) -> None:
                log.extend(data)

            def processEnded(self, reason: Failure) -> None:
                self.ended.callback((b"", bytes(log), getattr(reason.value, "exitCode", None)))

        sshd = SSHDProcess()
        process = reactor.spawnProcess(sshd, SSHD, [SSHD, "-D", "-e", "-f", config], env=_ENV)
        server = OpenSSHServer(
            reactor=reactor,
            directory=directory,
            port=port,
            password=password,
            hostPublicKey=Key.fromFile(hostKey + ".pub"),
            userKeys=userKeys,
            process=process,
            ended=sshd.ended,
            log=log,
            createdUser=createdUser,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        if createdUser:
            await _removeUser(reactor)
        raise
    try:
        await _waitForBanner(reactor, port, sshd.ended, log)
    except BaseException:
        await server.stop()
        raise
    return server


@dataclass
class OpenSSHAgent:
    """A running C{ssh-agent -D} holding one key."""

    path: str
    process: IProcessTransport = field(repr=False)
    ended: Deferred[tuple[bytes, bytes, int | None]] = field(repr=False)

    async def stop(self) -> None:
        """Stop the agent and wait for it to exit."""
        _terminate(self.process, self.ended)
        await self.ended


async def startAgent(reactor: Any, directory: str, key: Key) -> OpenSSHAgent:
    """Start OpenSSH's ssh-agent on a socket in C{directory} and add C{key} to it."""
    if not os.access(SSH_AGENT, os.X_OK):
        pytest.fail(
            f"{SSH_AGENT} not found: install OpenSSH's client (apt-get install openssh-client)"
        )
    path = f"{directory}/agent.{secrets.token_hex(4)}.sock"
    collect = _Collect()
    process = reactor.spawnProcess(collect, SSH_AGENT, [SSH_AGENT, "-D", "-a", path], env=_ENV)
    agent = OpenSSHAgent(path, process, collect.ended)
    try:
        endpoint = UNIXClientEndpoint(reactor, path, timeout=2)
        for _ in range(_STARTUP_ATTEMPTS):
            if collect.ended.called:
                break
            try:
                client = await endpoint.connect(Factory.forProtocol(SSHAgentClient))
            except ConnectError:
                await deferLater(reactor, 0.05, lambda: None)
                continue
            try:
                await client.addIdentity(key.privateBlob(), b"twisted_ch test").addTimeout(
                    5, reactor
                )
            finally:
                client.transport.loseConnection()
            return agent
        pytest.fail(f"ssh-agent did not start: {bytes(collect.err).decode(errors='replace')}")
    except BaseException:
        await agent.stop()
        raise
