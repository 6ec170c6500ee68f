"""
ControlScript's network helpers on an ordinary host: L{Ping} (ICMP echo), L{WakeOnLan} (a UDP
magic packet), L{Email} (SMTP through Twisted) and real C{ssl.SSLContext}s.

Waiting calls follow the two faces: on a program thread they block and return the result; on the
reactor thread they return a Deferred (a ping runs in Twisted's thread pool, never on the reactor).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from io import BytesIO
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python import threadable

from twisted_ch import _checks
from twisted_ch._readfile import readRegularFile
from twisted_ch._runtime import Runtime, resolveRuntime

__all__ = [
    "MAIL_SETTINGS",
    "WAKE_ON_LAN_ADDRESS",
    "Email",
    "GetSSLContext",
    "GetUnverifiedContext",
    "Ping",
    "WakeOnLan",
    "certificatePath",
    "readCertificate",
]

#: Where L{WakeOnLan} sends its magic packet (the IPv4 broadcast address, as a processor does).
WAKE_ON_LAN_ADDRESS = "255.255.255.255"

#: The processor's mail server settings, used for the arguments an L{Email} leaves out.
MAIL_SETTINGS: dict[str, Any] = {
    "smtpServer": "127.0.0.1",
    "port": 25,
    "username": None,
    "password": None,
    "sslEnabled": False,
}


# certificates


def certificatePath(alias: str) -> Path:
    """
    The file of a certificate alias: C{certificates/<alias>} (or C{<alias>.pem}, C{.crt}) in
    the program data directory, where a processor keeps the certificates Toolbelt uploads.
    """
    from twisted_ch.extronlib._files import dataDirectory

    if not isinstance(alias, str) or not alias or "/" in alias or alias in (".", ".."):
        raise ValueError(f"certificate alias must be a plain name, not {alias!r}")
    folder = dataDirectory() / "certificates"
    for name in (alias, f"{alias}.pem", f"{alias}.crt"):
        # found if it exists at all: one that is not a regular file is refused when read
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"no certificate {alias!r} in {folder} (tried .pem and .crt too)")


#: The largest certificate file read (a chain of a few certificates and a key: kilobytes).
MAX_CERTIFICATE_FILE = 1 << 20


def readCertificate(alias: str) -> tuple[Path, bytes]:
    """
    The file of a certificate alias (L{certificatePath}) and its content: a regular file of at
    most L{MAX_CERTIFICATE_FILE} bytes, opened without blocking.

    @raise twisted_ch._readfile.FileProblem: a FIFO, a device, a directory, a file too large.
    """
    path = certificatePath(alias)
    return path, readRegularFile(path, MAX_CERTIFICATE_FILE)


def _caData(data: bytes) -> str | bytes:
    """A certificate file's content as C{load_verify_locations(cadata=...)} takes it."""
    if b"-----BEGIN" in data:
        return data.decode("ascii", "replace")  # PEM
    return data  # DER


def GetUnverifiedContext() -> ssl.SSLContext:
    """A client C{ssl.SSLContext} that does not verify the server's certificate or name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def GetSSLContext(alias: str | None = None) -> ssl.SSLContext:
    """
    A verifying client C{ssl.SSLContext} trusting the host's CA certificates; with C{alias},
    also that certificate file: a certificate with its private key is presented as the client's,
    one without is trusted as a CA.
    """
    context = ssl.create_default_context()
    if alias is not None:
        path, data = readCertificate(alias)  # checked first: a regular file, bounded
        if b"PRIVATE KEY-----" in data:
            context.load_cert_chain(str(path))  # (OpenSSL reads a key chain by path only)
        else:
            context.load_verify_locations(cadata=_caData(data))
    return context


# ping


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _icmpSocket() -> tuple[socket.socket, bool]:
    try:  # unprivileged ping sockets, where the host allows them
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), False
    except OSError:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), True


def _ping(hostname: str, count: int, timeout: float) -> tuple[int, int, float]:
    try:
        address = socket.getaddrinfo(hostname, None, socket.AF_INET)[0][4][0]
    except OSError:
        return (0, count, 0.0)
    sock, raw = _icmpSocket()
    ident = os.getpid() & 0xFFFF
    ok, times = 0, []
    try:
        for seq in range(1, count + 1):
            payload = struct.pack("!d", time.monotonic()) + b"twisted_ch"
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            sent = time.monotonic()
            sock.sendto(packet, (address, 0))
            deadline = sent + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(2048)
                except TimeoutError:
                    break
                if raw:
                    data = data[(data[0] & 0x0F) * 4 :]
                if len(data) < 8 or peer[0] != address:
                    continue
                kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
                if kind == 0 and rseq == seq and (rid == ident or not raw):
                    ok += 1
                    times.append(time.monotonic() - sent)
                    break
    finally:
        sock.close()
    return (ok, count - ok, sum(times) / len(times) if times else 0.0)


def Ping(hostname: str = "localhost", count: int = 5, *, timeout: float = 1.0) -> Any:
    """
    Send C{count} ICMP echo requests (IPv4) to C{hostname}, each waiting up to C{timeout}
    seconds for its reply; returns C{(answered, unanswered, average seconds)}.  On the reactor
    thread it returns a Deferred of that tuple (the pings run in the thread pool).
    """
    if not isinstance(hostname, str) or not hostname:
        raise TypeError(f"hostname must be a non-empty str, not {hostname!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if threadable.isInIOThread():
        from twisted.internet.threads import deferToThread

        return deferToThread(_ping, hostname, count, timeout)
    return _ping(hostname, count, timeout)


# Wake-on-LAN

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([-:]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")


def WakeOnLan(macAddress: str, port: int = 9, *, address: str | None = None) -> None:
    """
    Send a Wake-on-LAN magic packet for C{macAddress} (C{'01-23-45-67-ab-cd'}, colons or no
    separator also) to UDP C{port} of the broadcast address (C{address=}, or
    L{WAKE_ON_LAN_ADDRESS}).
    """
    if not isinstance(macAddress, str) or _MAC.match(macAddress) is None:
        raise ValueError(
            f"macAddress must be six hex byte pairs like '01-23-45-67-ab-cd', got {macAddress!r}"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port!r}")
    mac = bytes.fromhex(re.sub(r"[-:]", "", macAddress))
    packet = b"\xff" * 6 + mac * 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(packet, (address or WAKE_ON_LAN_ADDRESS, port))


# e-mail


class Email:
    """
    An e-mail sent through an SMTP server (Twisted's ESMTP client).  Arguments left out come
    from L{MAIL_SETTINGS} (the processor's mail settings).  C{sslEnabled} requires TLS: implicit
    TLS on port 465, else STARTTLS.  The password is never logged or shown.
    """

    def __init__(
        self,
        smtpServer: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        sslEnabled: bool | None = None,
        *,
        reactor: Any = None,
    ) -> None:
        def pick(value: Any, key: str) -> Any:
            return MAIL_SETTINGS.get(key) if value is None else value

        self.smtpServer: str = pick(smtpServer, "smtpServer")
        self.port: int = pick(port, "port")
        self.username: str | None = pick(username, "username")
        self._password: str | None = pick(password, "password")
        self.sslEnabled: bool = bool(pick(sslEnabled, "sslEnabled"))
        _checks.host(self.smtpServer, "smtpServer")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError(f"port must be an int, not {type(self.port).__name__}")
        self._rt: Runtime = resolveRuntime(reactor)
        self._to: list[str] = []
        self._cc: list[str] = []
        self._subject = ""
        self._charset = "utf-8"
        host = socket.gethostname()
        self._sender = f"{self.username or host}@{host}"

    def Receiver(self, receiver: list[str] | str | None = None, cc: bool = False) -> None:
        """Set the To (or, with C{cc}, the Cc) addresses; None clears them."""
        addresses = [receiver] if isinstance(receiver, str) else list(receiver or [])
        for a in addresses:
            if not isinstance(a, str) or "@" not in a:
                raise ValueError(f"not an e-mail address: {a!r}")
        if cc:
            self._cc = addresses
        else:
            self._to = addresses

    def Sender(self, sender: str) -> None:
        """Set the From address."""
        if not isinstance(sender, str) or "@" not in sender:
            raise ValueError(f"not an e-mail address: {sender!r}")
        self._sender = sender

    def Subject(self, subject: str, charset: str = "utf-8") -> None:
        """Set the subject."""
        self._subject = str(subject)
        self._charset = charset

    def SendMessage(self, msg: str) -> Any:
        """
        Send C{msg} as the plain-text body to the receivers; raises (on a program thread) or
        fails the Deferred (on the reactor) when the server refuses it.
        """
        if not self._to and not self._cc:
            raise ValueError("no receivers: call Receiver() first")
        message = EmailMessage()
        message["From"] = self._sender
        if self._to:
            message["To"] = ", ".join(self._to)
        if self._cc:
            message["Cc"] = ", ".join(self._cc)
        message["Subject"] = self._subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid()
        message.set_content(str(msg), charset=self._charset)
        return self._rt.twoFaced(self._send, bytes(message), self._to + self._cc)

    def _send(self, data: bytes, recipients: list[str]) -> Deferred[Any]:
        from twisted.internet.endpoints import wrapClientTLS
        from twisted.internet.ssl import optionsForClientTLS
        from twisted.mail.smtp import ESMTPSenderFactory

        from twisted_ch.endpoints.tcp import TCPHostnameEndpoint

        done: Deferred[Any] = Deferred()
        implicit = self.sslEnabled and self.port == 465
        factory = ESMTPSenderFactory(
            self.username.encode("utf-8") if self.username else None,
            self._password.encode("utf-8") if self._password else None,
            self._sender,
            recipients,
            BytesIO(data),
            done,
            retries=0,
            heloFallback=True,
            requireAuthentication=bool(self.username and self._password),
            requireTransportSecurity=self.sslEnabled and not implicit,
            hostname=self.smtpServer,
        )
        endpoint: Any = TCPHostnameEndpoint(self._rt.reactor, self.smtpServer, self.port)
        if implicit:
            endpoint = wrapClientTLS(optionsForClientTLS(self.smtpServer), endpoint)
        endpoint.connect(factory).addErrback(done.errback)
        return done

    def __repr__(self) -> str:
        return f"<Email via {self.smtpServer}:{self.port} user={self.username!r}>"
