"""
DeviceProtocol.send skips Twisted's write queue on plain TCP when nothing is queued, and keeps
Twisted's order, flow control and error reporting otherwise (real loopback sockets).
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.protocols.device import _sendsDirectly
from twisted_ch.testing import waitUntil


class Sink(Protocol):
    """Counts and hashes what the device receives."""

    def __init__(self) -> None:
        self.received = 0
        self.head = b""
        self.digest = hashlib.sha256()

    def dataReceived(self, data: bytes) -> None:
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        self.received += len(data)
        self.digest.update(data)


class Sinks(Factory):
    def __init__(self) -> None:
        self.clients: list[Sink] = []

    def buildProtocol(self, addr: Any) -> Sink:
        sink = Sink()
        self.clients.append(sink)
        return sink


class FlakySocket:
    """Wraps a socket: the next C{failures} sends raise C{error}; all else is the real socket."""

    def __init__(self, real: socket.socket, error: OSError, failures: int) -> None:
        self._real = real
        self._error = error
        self.failures = failures

    def send(self, data: bytes) -> int:
        if self.failures:
            self.failures -= 1
            raise self._error
        return self._real.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def connected() -> tuple[Any, Any, Sinks, Any]:
    sinks = Sinks()
    port = reactor.listenTCP(0, sinks, interface="127.0.0.1")  # type: ignore[attr-defined]
    iface = EthernetClientInterface("127.0.0.1", port.getHost().port)
    assert await iface.Connect(2) == "Connected"
    await waitUntil(reactor, lambda: len(sinks.clients) == 1)
    return iface, iface.link.protocol, sinks, port


async def closeAll(iface: Any, port: Any) -> None:
    await iface.Disconnect()
    await port.stopListening()


def test_only_plain_twisted_tcp_connections_qualify() -> None:
    assert not _sendsDirectly(StringTransport())
    assert not _sendsDirectly(None)


@pytest_twisted.ensureDeferred
async def test_a_poll_is_sent_at_once_without_registering_for_writes() -> None:
    iface, proto, sinks, port = await connected()
    try:
        assert proto._tcp is proto.transport
        iface.Send(b"P")
        # sent in the call: the transport never waited for writability
        assert proto.transport not in reactor.getWriters()  # type: ignore[attr-defined]
        await waitUntil(reactor, lambda: sinks.clients[0].received == 1)
        assert proto.bytesSent == 1
    finally:
        await closeAll(iface, port)


@pytest_twisted.ensureDeferred
async def test_bytes_already_queued_go_first() -> None:
    iface, proto, sinks, port = await connected()
    try:
        proto.transport.write(b"A")  # queued in Twisted's buffer until the socket is writable
        iface.Send(b"B")
        await waitUntil(reactor, lambda: sinks.clients[0].received == 2)
        assert sinks.clients[0].head == b"AB"
    finally:
        await closeAll(iface, port)


@pytest_twisted.ensureDeferred
async def test_what_the_socket_does_not_take_is_queued_in_order() -> None:
    iface, proto, sinks, port = await connected()
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB: far more than a socket buffer holds
    proto.maxWriteBuffer = 2 * len(big)  # (above the default bound on bytes queued per link)
    try:
        iface.Send(big)
        # the socket took part of it; Twisted holds the rest, and the next send queues behind
        assert proto.transport in reactor.getWriters()  # type: ignore[attr-defined]
        iface.Send(b"END")
        expected = hashlib.sha256(big + b"END").hexdigest()
        await waitUntil(reactor, lambda: sinks.clients[0].received == len(big) + 3, timeout=30)
        assert sinks.clients[0].digest.hexdigest() == expected
    finally:
        await closeAll(iface, port)


@pytest_twisted.ensureDeferred
async def test_a_send_that_would_block_goes_through_the_queue() -> None:
    iface, proto, sinks, port = await connected()
    try:
        flaky = FlakySocket(proto.transport.socket, BlockingIOError(), failures=1)
        proto.transport.socket = flaky
        iface.Send(b"XY")
        assert flaky.failures == 0
        assert proto.transport in reactor.getWriters()  # type: ignore[attr-defined]
        await waitUntil(reactor, lambda: sinks.clients[0].received == 2)
        assert sinks.clients[0].head == b"XY"
    finally:
        await closeAll(iface, port)


@pytest_twisted.ensureDeferred
async def test_a_send_error_is_reported_by_twisted_as_a_lost_link() -> None:
    sinks = Sinks()
    port = reactor.listenTCP(0, sinks, interface="127.0.0.1")  # type: ignore[attr-defined]
    iface = EthernetClientInterface("127.0.0.1", port.getHost().port)
    handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=60)
    try:
        assert await handler.Connect(2) == "Connected"
        handler.ResponseAccepted()  # the device answered: Connected (issue 10)
        assert handler.ConnectionStatus == "Connected"
        proto = iface.link.protocol
        # the peer reset the connection before the reactor noticed: send fails with ECONNRESET
        proto.transport.socket = FlakySocket(
            proto.transport.socket, ConnectionResetError(104, "reset"), failures=2
        )
        handler.Send(b"P")  # no exception here: Twisted's write path finds the error
        lost: Deferred[str] = handler.whenStatus("Disconnected")
        assert await lost == "Disconnected"
        assert iface.link.lastError == "Connection lost"
    finally:
        await handler.Disconnect()
        await port.stopListening()


@pytest.mark.parametrize(
    ("flag", "value", "reset"),
    [
        ("dataBuffer", b"x", b""),
        ("_tempDataLen", 1, 0),
        ("disconnecting", 1, 0),
        ("_writeDisconnected", True, False),
        ("_aborting", True, False),
        ("TLS", True, False),
        ("connected", 0, 1),
    ],
)
@pytest_twisted.ensureDeferred
async def test_each_busy_state_sends_through_twisted(
    flag: str, value: object, reset: object
) -> None:
    iface, proto, sinks, port = await connected()
    transport = proto.transport
    written: list[bytes] = []
    transport.write = written.append  # a spy: nothing reaches the socket through it
    try:
        setattr(transport, flag, value)
        try:
            iface.Send(b"Q")
        finally:
            setattr(transport, flag, reset)
        assert written == [b"Q"]
        assert sinks.clients[0].received == 0
    finally:
        del transport.write
        await closeAll(iface, port)


@pytest_twisted.ensureDeferred
async def test_unix_sockets_use_twisted_writes(tmp_path: Any) -> None:
    from twisted.internet.endpoints import UNIXClientEndpoint

    from twisted_ch.extronlib.interface import EndpointInterface

    path = str(tmp_path / "device.sock")
    sinks = Sinks()
    port = reactor.listenUNIX(path, sinks)  # type: ignore[attr-defined]
    iface = EndpointInterface(UNIXClientEndpoint(reactor, path))
    try:
        assert await iface.Connect(2) == "Connected"
        assert iface.link.protocol._tcp is None
        iface.Send(b"U")
        await waitUntil(reactor, lambda: sinks.clients and sinks.clients[0].received == 1)
    finally:
        await closeAll(iface, port)
