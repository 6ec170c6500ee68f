"""
Why an SSH shell connection could not be set up.

Every error is a L{twisted.internet.error.ConnectError}, so code that handles TCP connect failures
handles these too.  Messages name the host, the user and what to do; they never contain a password
or passphrase.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from twisted.conch.ssh.keys import Key
from twisted.internet.error import ConnectError

#: Characters of a server's text (a DISCONNECT message, a banner) kept in a message.
PEER_TEXT_LIMIT = 200


def peerText(data: bytes | str, limit: int = PEER_TEXT_LIMIT) -> str:
    """
    Text a server sent (a DISCONNECT description, a banner, a refusal), fit for a log line:
    decoded as UTF-8, its control and other unprintable characters escaped (C{\\x1b},
    C{\\n}, C{\\u202e}), cut to C{limit} characters.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text + ("..." if cut else "")


def fingerprint(key: Key) -> str:
    """The key's OpenSSH-style fingerprint, as C{ssh-keygen -l} prints it (C{SHA256:...})."""
    digest = hashlib.sha256(key.blob()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def keyTypeName(key: Key) -> str:
    """The key type as OpenSSH names it in messages (C{ED25519}, C{ECDSA}, C{RSA})."""
    name = key.type()
    return "ECDSA" if name == "EC" else name.upper()


class SSHConnectError(ConnectError):
    """An SSH session could not be set up."""

    def __init__(self, message: str) -> None:
        super().__init__(string=message)  # type: ignore[no-untyped-call]
        self.message = message

    def __str__(self) -> str:
        return self.message


class HostKeyError(SSHConnectError):
    """The server's host key was not accepted (see the subclasses)."""


class UnknownHostKey(HostKeyError):
    """The known-hosts file has no key for this host and the policy does not add one."""

    def __init__(self, host: str, port: int, key: Key, knownHostsPath: str | None) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.fingerprint = fingerprint(key)
        self.knownHostsPath = knownHostsPath
        where = knownHostsPath or "the known-hosts file"
        keyscan = f"ssh-keyscan -p {port} {host}" if port != 22 else f"ssh-keyscan {host}"
        super().__init__(
            f"host key for {host} port {port} is not known: the server offered the "
            f"{keyTypeName(key)} key {self.fingerprint}, which is not in {where}. If that "
            f"fingerprint is the device's, trust it by appending the key to {where} (for "
            f"example: {keyscan} >> {where}) or connect once with hostKeyPolicy='accept-new'"
        )


class HostKeyChanged(HostKeyError):
    """The server offered a key other than the one(s) recorded for this host: always refused."""

    def __init__(
        self,
        host: str,
        port: int,
        key: Key,
        knownKeys: Sequence[tuple[Key, int | None]],
        knownHostsPath: str | None,
    ) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.fingerprint = fingerprint(key)
        self.knownFingerprints = tuple(fingerprint(k) for k, _ in knownKeys)
        self.knownHostsPath = knownHostsPath
        where = knownHostsPath or "the known-hosts file"
        recorded = ", ".join(
            f"{keyTypeName(k)} {fingerprint(k)}" + (f" ({where}:{line})" if line else "")
            for k, line in knownKeys
        )
        name = host if port == 22 else f"[{host}]:{port}"
        super().__init__(
            f"HOST KEY CHANGED for {host} port {port}: the server offered the "
            f"{keyTypeName(key)} key {self.fingerprint} but {where} records {recorded}. "
            "Someone may be intercepting the connection, or the device was re-keyed. If the "
            f"change is expected, remove the old entry (ssh-keygen -R '{name}' -f {where}) and "
            "trust the new key"
        )


class HostKeyRevoked(HostKeyError):
    """The server offered a key that the known-hosts file marks C{@revoked}: always refused."""

    def __init__(self, host: str, port: int, key: Key, line: int, knownHostsPath: str) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.fingerprint = fingerprint(key)
        self.line = line
        self.knownHostsPath = knownHostsPath
        super().__init__(
            f"host key for {host} port {port} is revoked: the server offered the "
            f"{keyTypeName(key)} key {self.fingerprint}, which {knownHostsPath} line {line} "
            f"marks @revoked. The device may be an impostor, or holds a key that was retired."
        )


class AuthenticationFailed(SSHConnectError):
    """The server accepted none of the credentials offered."""

    def __init__(
        self,
        username: str,
        host: str,
        port: int,
        tried: Sequence[str],
        serverMethods: Sequence[str],
        detail: str = "",
    ) -> None:
        self.username = username
        self.host = host
        self.port = port
        self.tried = tuple(tried)
        self.serverMethods = tuple(serverMethods)
        triedText = ", ".join(self.tried) if self.tried else "no method (no usable credentials)"
        offered = ", ".join(self.serverMethods) if self.serverMethods else "unknown"
        message = (
            f"SSH authentication failed for user {username!r} on {host} port {port}: "
            f"tried {triedText}; the server accepts {offered}"
        )
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class SessionRefused(SSHConnectError):
    """The server refused the session channel or its shell/exec request."""


class SSHDisconnected(SSHConnectError):
    """The SSH connection ended before the session was open."""
