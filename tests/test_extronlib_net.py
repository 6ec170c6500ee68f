"""
extronlib's network helpers for real, on loopback only: HTTPS with GetUnverifiedContext and
GetSSLContext, SSLWrap (client and server) against real TLS peers with a self-signed
certificate, Email to a local SMTP server, WakeOnLan and Ping to 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, protocol, reactor
from twisted.internet.threads import deferToThread
from twisted.mail import smtp
from zope.interface import implementer

from twisted_ch.extronlib import _files
from twisted_ch.extronlib.interface import EthernetClientInterface, EthernetServerInterfaceEx
from twisted_ch.extronlib.system import (
    Email,
    GetSSLContext,
    GetUnverifiedContext,
    Ping,
    WakeOnLan,
)


def selfSigned() -> tuple[bytes, bytes]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPEM = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), keyPEM


@pytest.fixture
def certificates(tmp_path: Path) -> Iterator[Path]:
    """The program data directory with certificates 'server' (with its key) and 'server-ca'."""
    cert, key = selfSigned()
    folder = tmp_path / "data" / "certificates"
    folder.mkdir(parents=True)
    (folder / "server.pem").write_bytes(cert + key)
    (folder / "server-ca.pem").write_bytes(cert)
    _files.setDataDirectory(tmp_path / "data")
    try:
        yield folder
    finally:
        _files.setDataDirectory(None)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"hello over TLS"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def httpsServer(certificates: Path) -> Iterator[int]:
    """A stdlib HTTPS server (its own thread) on 127.0.0.1 with the self-signed certificate."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificates / "server.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_https_module_pattern_with_an_unverified_context(httpsServer: int) -> None:
    url = f"https://127.0.0.1:{httpsServer}/status"
    context = GetUnverifiedContext()
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_NONE
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        assert response.read() == b"hello over TLS"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(url, context=GetSSLContext(), timeout=5)
    # trusting the server's certificate (an alias in the data directory) verifies it
    with urllib.request.urlopen(url, context=GetSSLContext("server-ca"), timeout=5) as response:
        assert response.read() == b"hello over TLS"
    with pytest.raises(FileNotFoundError, match="no certificate 'nothing'"):
        GetSSLContext("nothing")
    with pytest.raises(ValueError, match="plain name"):
        GetSSLContext("../server")


@pytest_twisted.ensureDeferred
async def test_sslwrap_client_speaks_tls_to_a_stdlib_https_server(httpsServer: int) -> None:
    client = EthernetClientInterface("127.0.0.1", httpsServer, reactor=reactor)
    client.SSLWrap(cert_reqs="CERT_REQUIRED", ca_certs="server-ca")
    try:
        assert await client.Connect(5) == "Connected"
        answer = await client.SendAndWait(b"GET / HTTP/1.0\r\n\r\n", 5, deliTag=b"hello over TLS")
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"hello over TLS")
    finally:
        await client.Disconnect()


@pytest_twisted.ensureDeferred
async def test_sslwrap_server_and_client_verify_and_refuse(certificates: Path) -> None:
    server = EthernetServerInterfaceEx(0, bindAddress="127.0.0.1", reactor=reactor)
    server.SSLWrap(certificate="server")
    received: list[bytes] = []

    def echo(client: Any, data: bytes) -> None:
        received.append(data)
        client.Send(data.upper())

    server.ReceiveData = echo
    assert await server.StartListen() == "Listening"
    good = EthernetClientInterface("127.0.0.1", server.IPPort, reactor=reactor)
    good.SSLWrap(cert_reqs="CERT_REQUIRED", ca_certs="server-ca")
    unverified = EthernetClientInterface("127.0.0.1", server.IPPort, reactor=reactor)
    unverified.SSLWrap()
    strict = EthernetClientInterface("127.0.0.1", server.IPPort, reactor=reactor)
    strict.SSLWrap(cert_reqs="CERT_REQUIRED")  # the host's CAs do not know this certificate
    failures: list[str] = []
    strict.ConnectFailed = lambda iface, reason: failures.append(reason)
    try:
        assert await good.Connect(5) == "Connected"
        assert await good.SendAndWait("ping!", 5, deliTag=b"!") == b"PING!"
        assert await unverified.Connect(5) == "Connected"
        assert await unverified.SendAndWait("two!", 5, deliTag=b"!") == b"TWO!"
        reason = await strict.Connect(5)
        assert "certificate verify failed" in reason.lower() or "SSL" in reason, reason
        assert failures == [reason]

        # a stdlib TLS client talks to the server too: it is TLS on the wire
        def stdlibClient() -> bytes:
            context = ssl.create_default_context(cafile=str(certificates / "server-ca.pem"))
            with socket.create_connection(("127.0.0.1", server.IPPort), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"stdlib!")
                    return tls.recv(100)

        assert await deferToThread(stdlibClient) == b"STDLIB!"
        assert b"stdlib!" in received
    finally:
        for c in (good, unverified, strict):
            await c.Disconnect()
        await server.StopListen()


def test_sslwrap_arguments_are_checked() -> None:
    from twisted.internet.task import Clock

    clock = Clock()
    with pytest.raises(ValueError, match="cert_reqs must be one of"):
        EthernetClientInterface("h", 1, reactor=clock).SSLWrap(cert_reqs="MAYBE")
    with pytest.raises(ValueError, match="ssl_version must be one of"):
        EthernetClientInterface("h", 1, reactor=clock).SSLWrap(ssl_version="SSLv3")
    with pytest.raises(ValueError, match="needs a TCP interface"):
        EthernetClientInterface("127.0.0.1", 1, "UDP", reactor=clock).SSLWrap()
    with pytest.raises(ValueError, match="needs certificate="):
        EthernetServerInterfaceEx(0, reactor=clock).SSLWrap()


# e-mail


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, inbox: list[bytes]) -> None:
        self.inbox = inbox
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:
        self.inbox.append(b"\n".join(self.lines))
        return defer.succeed(None)

    def connectionLost(self) -> None:
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, inbox: list[bytes], envelope: list[Any]) -> None:
        self.inbox = inbox
        self.envelope = envelope

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> None:
        return None

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        self.envelope.append(str(origin))
        return origin

    def validateTo(self, user: Any) -> Any:
        if user.dest.domain == b"nowhere.invalid":
            raise smtp.SMTPBadRcpt(user)
        self.envelope.append(str(user.dest))
        return lambda: _Message(self.inbox)


class _SMTPFactory(protocol.ServerFactory):
    def __init__(self) -> None:
        self.inbox: list[bytes] = []
        self.envelope: list[Any] = []

    def buildProtocol(self, addr: Any) -> smtp.ESMTP:
        p = smtp.ESMTP()
        p.delivery = _Delivery(self.inbox, self.envelope)
        p.factory = self
        return p


@pytest_twisted.ensureDeferred
async def test_email_through_a_local_smtp_server() -> None:
    factory = _SMTPFactory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        mail = Email("127.0.0.1", port.getHost().port, reactor=reactor)
        mail.Sender("room101@example.com")
        mail.Receiver(["facilities@example.com"])
        mail.Receiver(["av-team@example.com"], cc=True)
        mail.Subject("Projector lamp")
        await mail.SendMessage("The projector in room 101 needs a new lamp.")
        assert factory.envelope == [
            "room101@example.com",
            "facilities@example.com",
            "av-team@example.com",
        ]
        text = factory.inbox[0].decode()
        assert "Subject: Projector lamp" in text and "Cc: av-team@example.com" in text
        assert "needs a new lamp" in text
        refused = Email("127.0.0.1", port.getHost().port, reactor=reactor)
        refused.Receiver("someone@nowhere.invalid")
        with pytest.raises(smtp.SMTPDeliveryError):
            await refused.SendMessage("lost")
        with pytest.raises(ValueError, match="no receivers"):
            Email("127.0.0.1", 25, reactor=reactor).SendMessage("x")
        assert "secret" not in repr(Email("127.0.0.1", 25, "user", "secret", reactor=reactor))
    finally:
        await port.stopListening()


# Wake-on-LAN and ping, on loopback only


def test_wake_on_lan_sends_the_magic_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        WakeOnLan("01-23-45-67-ab-CD", listener.getsockname()[1], address="127.0.0.1")
        packet = listener.recv(200)
    assert packet == b"\xff" * 6 + bytes.fromhex("01234567abcd") * 16
    with pytest.raises(ValueError, match="six hex byte pairs"):
        WakeOnLan("01-23-45", address="127.0.0.1")


def test_ping_loopback_from_a_program_thread() -> None:
    results: list[Any] = []
    # a program thread is not the reactor's: Ping blocks it and returns the tuple
    thread = threading.Thread(target=lambda: results.append(Ping("127.0.0.1", 2)))
    thread.start()
    thread.join(10)
    answered, unanswered, average = results[0]
    assert (answered, unanswered) == (2, 0) and 0 < average < 1
    with pytest.raises(ValueError, match="count must be a positive int"):
        Ping("127.0.0.1", 0)


@pytest_twisted.ensureDeferred
async def test_ping_on_the_reactor_thread_gives_a_deferred() -> None:
    result = Ping("127.0.0.1", 1)
    assert isinstance(result, defer.Deferred)
    assert (await result)[:2] == (1, 0)
