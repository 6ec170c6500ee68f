"""
Peers that go silent on real loopback sockets: a black-holed proxy that keeps both sockets
open but drops every byte, and a real cut link (a device in a network namespace behind a veth
pair). Polls detect both and the handler reconnects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, Watch, bounded
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure

from twisted_ch.testing import listenDevice, waitUntil

# -- a black-holed peer: a proxy that keeps both sockets open but drops every byte


class _ProxySide(Protocol):
    def __init__(self, proxy: BlackHoleProxy) -> None:
        self.proxy = proxy
        self.peer: _ProxySide | None = None
        self.pending: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        if not self.proxy.forwarding:
            self.proxy.swallowed += len(data)
        elif self.peer is None or self.peer.transport is None:
            self.pending.append(data)
        else:
            self.peer.transport.write(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.proxy.sidesLost += 1
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


class _Inbound(_ProxySide):
    def connectionMade(self) -> None:
        outbound = _ProxySide(self.proxy)
        outbound.peer, self.peer = self, outbound

        def connected(_: object) -> None:
            assert outbound.transport is not None
            for data in self.pending:
                outbound.transport.write(data)
            self.pending = []

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.proxy.target)
        connectProtocol(endpoint, outbound).addCallbacks(
            connected, lambda f: self.transport and self.transport.loseConnection()
        )


class BlackHoleProxy(Factory):
    """A loopback TCP proxy; with C{forwarding = False} it swallows bytes, never closing."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.forwarding = True
        self.swallowed = 0
        self.sidesLost = 0
        self.listening = reactor.listenTCP(0, self, interface="127.0.0.1")
        self.port: int = self.listening.getHost().port

    def buildProtocol(self, addr: Any) -> _Inbound:
        return _Inbound(self)


@pytest_twisted.ensureDeferred
@bounded(20)
async def test_black_holed_peer_is_dropped_after_DisconnectLimit_polls_and_reconnected() -> None:
    limit, interval = 3, 0.1
    device = listenDevice(reactor, {b"P": ANSWER})
    proxy = BlackHoleProxy(device.port)
    w = Watch(proxy.port, DisconnectLimit=limit, pollFrequency=interval, connectRetryTime=0.2)
    h = w.handler
    peerClosedBeforeDisconnect: list[int] = []
    h.Disconnected = lambda _, s: (
        peerClosedBeforeDisconnect.append(proxy.sidesLost),
        w.record("Disconnected", s),
    )
    try:
        assert await h.Connect() == "Connected"
        await waitUntil(reactor, lambda: len(w.accepts) >= 3)

        t0 = reactor.seconds()
        proxy.forwarding = False
        await h.whenStatus("Disconnected")
        t1 = w.last("Disconnected")
        # the peer sent no FIN and no RST: the proxy had closed nothing when the handler gave up
        assert peerClosedBeforeDisconnect[0] == 0
        # exactly DisconnectLimit polls went unanswered, then the next tick dropped the link
        lastAnswer = max(w.accepts)
        assert len([s for s in w.sends if lastAnswer < s <= t1]) == limit
        assert limit * interval - 0.02 <= t1 - t0 <= (limit + 1) * interval + 0.2, t1 - t0
        assert proxy.swallowed > 0

        proxy.forwarding = True
        resumed = reactor.seconds()
        await waitUntil(
            reactor,
            lambda: h.ConnectionStatus == "Connected" and any(a > resumed for a in w.accepts),
        )
        assert h.missedPolls <= 1
        w.assertAlternates()
    finally:
        await h.Disconnect()
        await proxy.listening.stopListening()
        await device.shutdown()


# -- the same with a real cut link: a device in a network namespace behind a veth pair

_NETNS_SERVER = r"""
import asyncio, sys
async def handle(reader, writer):
    while data := await reader.read(4096):
        n = data.count(b"P")
        if n:
            writer.write(b"Pwr1\r\n" * n)
    writer.close()
async def main():
    await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class NetnsLink:
    """A namespace holding C{deviceAddress}, joined to ours by a veth pair that can be cut."""

    def __init__(self) -> None:
        tag = os.getpid() % 200 + 20
        self.ns = f"chfault{os.getpid()}"
        self.host, self.inner = f"vch{os.getpid() % 100000}", f"vdv{os.getpid() % 100000}"
        self.subnet = f"10.213.{tag}"
        self.deviceAddress = f"{self.subnet}.2"

    def _ip(self, *args: str, check: bool = True) -> None:
        subprocess.run(["ip", *args], check=check, capture_output=True, timeout=10)

    def setUp(self) -> None:
        taken = subprocess.run(
            ["ip", "route", "show", "to", "match", f"{self.subnet}.0/24"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        if f"{self.subnet}." in taken:
            pytest.skip(f"{self.subnet}.0/24 is in use here")
        self._ip("netns", "add", self.ns)
        self._ip("link", "add", self.host, "type", "veth", "peer", "name", self.inner)
        self._ip("link", "set", self.inner, "netns", self.ns)
        self._ip("addr", "add", f"{self.subnet}.1/30", "dev", self.host)
        self._ip("link", "set", self.host, "up")
        inside = ("netns", "exec", self.ns, "ip")
        self._ip(*inside, "addr", "add", f"{self.deviceAddress}/30", "dev", self.inner)
        self._ip(*inside, "link", "set", self.inner, "up")
        self._ip(*inside, "link", "set", "lo", "up")
        # should the veth's own route ever vanish, drop the packets rather than route them away
        self._ip("route", "add", "blackhole", f"{self.subnet}.0/24")

    async def setCarrier(self, up: bool) -> None:
        """Cut (or restore) the link on the device's side; our end keeps its route."""
        args = ["netns", "exec", self.ns, "ip", "link", "set", self.inner, "up" if up else "down"]
        out, err, code = await getProcessOutputAndValue("ip", args, env=os.environ)
        assert code == 0, err

    def tearDown(self) -> None:
        self._ip("link", "del", self.host, check=False)
        self._ip("netns", "del", self.ns, check=False)
        self._ip("route", "del", "blackhole", f"{self.subnet}.0/24", check=False)


class _Server(ProcessProtocol):
    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"ready" in self.output and not self.ready.called:
            self.ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if not self.ready.called:
            self.ready.errback(RuntimeError(f"device server ended: {self.output!r}"))
        self.ended.callback(None)


def _namespacesAvailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"chprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None if made.returncode == 0 else "ip netns add is not permitted here"


@pytest.fixture
def netns() -> Iterator[NetnsLink]:
    why = _namespacesAvailable()
    if why:
        pytest.skip(why)
    link = NetnsLink()
    try:
        link.setUp()
        yield link
    finally:
        link.tearDown()


@pytest_twisted.ensureDeferred
@bounded(30)
async def test_cut_veth_link_is_detected_by_polls_and_the_handler_reconnects(
    netns: NetnsLink,
) -> None:
    port = 4999
    server = _Server()
    argv = ["ip", "netns", "exec", netns.ns, sys.executable, "-c", _NETNS_SERVER]
    reactor.spawnProcess(server, "ip", [*argv, netns.deviceAddress, str(port)], env=os.environ)
    limit, interval = 3, 0.1
    w = Watch(
        port,
        host=netns.deviceAddress,
        DisconnectLimit=limit,
        pollFrequency=interval,
        connectRetryTime=0.2,
    )
    h = w.handler
    try:
        await server.ready
        assert await h.Connect(timeout=0.5) == "Connected"
        await waitUntil(reactor, lambda: len(w.accepts) >= 3)

        t0 = reactor.seconds()
        await netns.setCarrier(False)
        await h.whenStatus("Disconnected")
        t1 = w.last("Disconnected")
        lastAnswer = max(w.accepts)
        assert len([s for s in w.sends if lastAnswer < s <= t1]) == limit
        assert t1 - t0 <= (limit + 1) * interval + 0.3, t1 - t0
        # while the link is cut, attempts time out (SYNs vanish) and are retried
        await waitUntil(reactor, lambda: len(w.names("ConnectFailed")) >= 2)
        assert {r for n, r, _ in w.events if n == "ConnectFailed"} == {"Timed out"}

        await netns.setCarrier(True)
        restored = reactor.seconds()
        await waitUntil(
            reactor,
            lambda: h.ConnectionStatus == "Connected" and any(a > restored for a in w.accepts),
        )
        w.assertAlternates()
    finally:
        await h.Disconnect()
        if not server.ended.called:
            server.transport.signalProcess("KILL")  # type: ignore[union-attr]
        await server.ended
