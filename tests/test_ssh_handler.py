"""RawTcpHandler over SSH (EthernetClientInterface Protocol='SSH') against an in-process server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from helpers import LoggedEvents
from twisted.internet import reactor

from twisted_ch import GetConnectionHandler, RawTcpHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import DeviceServer, waitUntil
from twisted_ch.testing._ssh import SSHTestServer

SECRET = "s3cret-Pa55"


def sshHandler(server: SSHTestServer, knownHosts: Path, password: str, **kw: Any) -> Any:
    async def keepAlive(h: Any) -> None:
        if await h.SendAndWait("P", 0.5, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    iface = EthernetClientInterface(
        "127.0.0.1",
        server.port,
        Protocol="SSH",
        Credentials=("admin", password),
        knownHosts=str(knownHosts),
    )
    return GetConnectionHandler(iface, keepAlive, **kw)


@pytest_twisted.ensureDeferred
async def test_ssh_device_kept_alive_and_reconnected(tmp_path: Path) -> None:
    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    server = SSHTestServer(reactor, device, users={"admin": SECRET})
    server.start()
    knownHosts = tmp_path / "known_hosts"
    knownHosts.write_text(server.knownHostsLine())
    handler = sshHandler(server, knownHosts, SECRET, pollFrequency=0.05, connectRetryTime=0.1)
    assert isinstance(handler, RawTcpHandler)
    events: list[str] = []
    handler.Connected = lambda h, s: events.append(s)
    handler.Disconnected = lambda h, s: events.append(s)
    try:
        assert await handler.Connect() == "Connected"
        await waitUntil(reactor, lambda: device.requests >= 3 and handler.missedPolls == 0)
        server.dropConnections()  # the network fails under the SSH session
        await handler.whenStatus("Disconnected")
        await handler.whenStatus("Connected")
        await waitUntil(reactor, lambda: device.requests >= 6)
        assert events == ["Connected", "Disconnected", "Connected"]
    finally:
        await handler.Disconnect()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_ssh_wrong_password_is_ConnectFailed_without_leaking_it(tmp_path: Path) -> None:
    server = SSHTestServer(reactor, DeviceServer(reactor, {}), users={"admin": "right"})
    server.start()
    knownHosts = tmp_path / "known_hosts"
    knownHosts.write_text(server.knownHostsLine())
    with LoggedEvents() as logged:  # from the handler's creation on
        handler = sshHandler(server, knownHosts, SECRET, connectRetryTime=60)
    failures: list[str] = []
    handler.ConnectFailed = lambda h, reason: failures.append(reason)
    try:
        with logged:
            result = await handler.Connect()
            assert "uthentication" in result and "admin" in result
            assert failures == [result]
            assert handler.ConnectionStatus == "Unknown"  # never reached (issue 10)
    finally:
        await handler.Disconnect()
        await server.stop()
    from twisted.logger import formatEvent

    text = "\n".join(formatEvent(e) + repr(e) for e in logged)
    assert "uthentication" in text  # the failure was logged, and captured here
    assert SECRET not in text
    assert SECRET not in repr(handler) and SECRET not in repr(handler.Interface)


@pytest_twisted.ensureDeferred
async def test_ssh_unknown_host_key_is_rejected(tmp_path: Path) -> None:
    server = SSHTestServer(reactor, DeviceServer(reactor, {}), users={"admin": SECRET})
    server.start()
    knownHosts = tmp_path / "known_hosts"
    knownHosts.write_text("")
    handler = sshHandler(server, knownHosts, SECRET, connectRetryTime=60)
    try:
        result = await handler.Connect()
        assert "host key" in result.lower()
        assert knownHosts.read_text() == ""  # nothing trusted silently
    finally:
        await handler.Disconnect()
        await server.stop()
