"""RawTcpHandler against a simulated device on real loopback sockets."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from helpers import freePort
from twisted.internet import reactor

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import listenDevice, waitUntil


def makeHandler(port: int, **kw: Any) -> tuple[Any, list[str]]:
    events: list[str] = []

    async def keepAlive(h: Any) -> None:
        if await h.SendAndWait("P", 0.5, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    iface = EthernetClientInterface("127.0.0.1", port)
    handler = GetConnectionHandler(iface, keepAlive, **kw)
    handler.Connected = lambda h, s: events.append(s)
    handler.Disconnected = lambda h, s: events.append(s)
    handler.ConnectFailed = lambda h, r: events.append(f"failed: {r}")
    return handler, events


@pytest_twisted.ensureDeferred
async def test_connect_poll_silence_close_refuse_and_return() -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    handler, events = makeHandler(
        device.port, DisconnectLimit=2, pollFrequency=0.05, connectRetryTime=0.1
    )
    try:
        assert await handler.Connect() == "Connected"
        await waitUntil(reactor, lambda: device.requests >= 5)
        assert handler.ConnectionStatus == "Connected"
        assert handler.missedPolls <= 1

        # the device goes silent: the limit drops the link, and the handler reconnects quietly
        device.silent = True
        await handler.whenStatus("Disconnected")
        reconnects = handler.reconnects
        await waitUntil(reactor, lambda: handler.reconnects >= reconnects + 2)
        assert handler.ConnectionStatus == "Disconnected"  # a reconnect is not an answer
        device.silent = False
        await handler.whenStatus("Connected")
        await waitUntil(reactor, lambda: handler.missedPolls == 0)

        # the device closes the connection: noticed at once
        device.dropClients(abort=False)
        await handler.whenStatus("Disconnected")

        # and refuses while it is away ...
        await device.stop()
        device.dropClients()
        await waitUntil(reactor, lambda: any(e.startswith("failed") for e in events))
        assert "failed: Connection refused" in events

        # ... then comes back
        device.start()
        await handler.whenStatus("Connected")
        await waitUntil(reactor, lambda: handler.missedPolls == 0 and device.requests > 8)
        states = [e for e in events if not e.startswith("failed")]
        assert states[:4] == ["Connected", "Disconnected", "Connected", "Disconnected"]
        assert all(a != b for a, b in zip(states, states[1:], strict=False))
    finally:
        await handler.Disconnect()
        await device.shutdown()
    assert not [c for c in reactor.getDelayedCalls() if c.active() and "twisted_ch" in repr(c)]


@pytest_twisted.ensureDeferred
async def test_first_connect_refused_then_device_appears() -> None:
    port = freePort()
    handler, events = makeHandler(port, connectRetryTime=0.05, pollFrequency=0.05)
    device = None
    try:
        assert await handler.Connect() == "Connection refused"
        assert handler.ConnectionStatus == "Unknown"  # never reached (issue 10)
        device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
        device.port = port
        await device.stop()
        device.start()
        await handler.whenStatus("Connected")
        assert events[0] == "failed: Connection refused"
        assert set(events[:-1]) == {"failed: Connection refused"}
        assert events[-1] == "Connected"
    finally:
        await handler.Disconnect()
        if device is not None:
            await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_reset_mid_SendAndWait_returns_empty_and_reports_disconnect() -> None:
    device = listenDevice(reactor, {})
    handler, events = makeHandler(device.port, connectRetryTime=60)
    try:
        await handler.Connect()
        handler.ResponseAccepted()  # the device answered once: Connected
        await waitUntil(reactor, lambda: len(device.clients) == 1)
        pending = handler.SendAndWait("Q", 5, deliTag=b"\r")
        await waitUntil(reactor, lambda: device.received != [])
        device.dropClients(abort=True)
        assert await pending == b""
        await handler.whenStatus("Disconnected")
    finally:
        await handler.Disconnect()
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_endless_bytes_without_delimiter_are_bounded() -> None:
    from twisted.internet.protocol import Factory, Protocol

    class Flood(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(b"x" * 256 * 1024)

    port = reactor.listenTCP(0, Factory.forProtocol(Flood), interface="127.0.0.1")
    iface = EthernetClientInterface("127.0.0.1", port.getHost().port, maxResponse=4096)
    handler = GetConnectionHandler(iface, lambda h: None)
    received: list[int] = []
    handler.ReceiveData = lambda h, d: received.append(len(d))
    try:
        await handler.Connect()
        response = await handler.SendAndWait("go", 0.5, deliTag=b"\r")
        assert response == b""
        assert iface.link.connected
        assert sum(received) <= 4096 + 256 * 1024
    finally:
        await handler.Disconnect()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_connection_that_meets_itself_is_refused_not_connected() -> None:
    # binding the client to the port it connects to makes the kernel connect the socket to
    # itself (TCP simultaneous open): what happens, rarely, to a local port nobody listens on
    port = freePort()
    iface = EthernetClientInterface("127.0.0.1", port, ServicePort=port)
    handler = GetConnectionHandler(iface, lambda h: h.Send(b"P"), connectRetryTime=3600)
    events: list[str] = []
    handler.Connected = lambda h, s: events.append(s)
    handler.ConnectFailed = lambda h, r: events.append(f"failed: {r}")
    try:
        assert await handler.Connect(2) == "Connection refused"
        assert events == ["failed: Connection refused"]
        assert handler.ConnectionStatus == "Unknown"
    finally:
        await handler.Disconnect()
