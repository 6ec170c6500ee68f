"""
ServerExHandler and the server interfaces.

Timing rules run on a MemoryReactorClock (listening is recorded, clients are FakeTransports the
test connects); the manual's example, many real clients, port conflicts and the program-thread
face run on real loopback sockets under pytest-twisted.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch import GetConnectionHandler, ProgramThread
from twisted_ch._server import ServerExHandler
from twisted_ch._stats import ServerStats
from twisted_ch.extronlib import _servers
from twisted_ch.extronlib.interface import EthernetServerInterface, EthernetServerInterfaceEx
from twisted_ch.testing import FakeTransport

# --- Clock-driven helpers ---------------------------------------------------------------------


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


class BusyPortsReactor(MemoryReactorClock):
    """A MemoryReactorClock on which the ports in C{busy} are in use by someone else."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: set[int] = set()
        self.attempts = 0

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        self.attempts += 1
        if port in self.busy:
            raise error.CannotListenError(
                interface, port, OSError(errno.EADDRINUSE, "Address already in use")
            )
        return super().listenTCP(port, factory, backlog, interface)


class Events:
    """Records a server's events in order."""

    def __init__(self, obj: Any, *names: str) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        for name in names:
            setattr(obj, name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def clockServer(
    serverTimeout: float = 30,
    retry: float = 5,
    reactor: MemoryReactorClock | None = None,
    **kw: Any,
) -> tuple[MemoryReactorClock, Any, Events]:
    clock = reactor or MemoryReactorClock()
    iface = EthernetServerInterfaceEx(9000, Interface="127.0.0.1", reactor=clock, **kw)
    handler = GetConnectionHandler(iface, serverTimeout=serverTimeout, connectRetryTime=retry)
    events = Events(handler, "Connected", "Disconnected", "ReceiveData", "ListenFailed")
    return clock, handler, events


_nextPort = iter(range(50000, 60000))


def connect(clock: MemoryReactorClock) -> FakeTransport | None:
    """A client connects to the last port listened on; None when the server refused it."""
    factory = clock.tcpServers[-1][1]
    transport = FakeTransport(clock, IPv4Address("TCP", "192.0.2.7", next(_nextPort)))
    protocol = factory.buildProtocol(transport.getPeer())
    if protocol is None:
        return None
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return transport


def connected(clock: MemoryReactorClock) -> FakeTransport:
    transport = connect(clock)
    assert transport is not None
    return transport


def send(transport: FakeTransport, data: bytes) -> None:
    assert transport.protocol is not None
    transport.protocol.dataReceived(data)


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


# --- idle timing (Clock) -----------------------------------------------------------------------


def test_a_silent_client_is_dropped_exactly_at_serverTimeout() -> None:
    clock, h, ev = clockServer(serverTimeout=30)
    assert result(h.StartListen()) == "Listening"
    clock.advance(5)
    t = connected(clock)
    (client,) = h.Clients
    assert ev.calls == [("Connected", (client, "Connected"))]
    clock.advance(29.75)
    assert not t.closed and h.Clients == [client]
    clock.advance(0.25)  # 30 s after connecting: closed gracefully (a FIN), not aborted
    assert t.closed and not t.aborted
    assert ev.of("Disconnected") == [(client, "Disconnected")]
    assert h.Clients == []
    assert h.stats().droppedIdle == 1
    assert client.IPAddress == "192.0.2.7"  # still readable after it left
    result(h.StopListen())
    assert clock.getDelayedCalls() == []


def test_a_client_sending_every_timeout_minus_one_is_never_dropped() -> None:
    clock, h, ev = clockServer(serverTimeout=10)
    h.StartListen()
    t = connected(clock)
    for _ in range(100):
        clock.advance(9)
        send(t, b"still here")
    assert not t.closed and len(h.Clients) == 1
    assert len(ev.of("ReceiveData")) == 100
    clock.advance(9.75)  # silent now: dropped 10 s after its last data
    assert not t.closed
    clock.advance(0.25)
    assert t.closed and len(ev.of("Disconnected")) == 1


def test_writes_to_a_client_do_not_keep_it_alive() -> None:
    clock, h, ev = clockServer(serverTimeout=10)
    h.StartListen()
    t = connected(clock)
    (client,) = h.Clients
    for _ in range(9):
        clock.advance(1)
        client.Send("status\r\n")
    assert t.value() == b"status\r\n" * 9
    clock.advance(0.75)
    assert not t.closed
    clock.advance(0.25)
    assert t.closed
    assert ev.of("Disconnected") == [(client, "Disconnected")]
    with pytest.raises(IOError, match="not connected"):
        client.Send(b"too late")


def test_Disconnected_fires_once_per_client_however_it_leaves() -> None:
    clock, h, ev = clockServer(serverTimeout=30)
    h.StartListen()
    idle, leaves, kicked, racer = (connected(clock) for _ in range(4))
    clients = h.Clients
    clock.advance(10)
    leaves.deviceCloses()
    clock.advance(10)
    clients[2].Disconnect()
    clients[2].Disconnect()  # twice: still one Disconnected
    clock.advance(9.75)
    racer.deviceResets()  # gone just before its timeout would fire
    clock.advance(0.25)
    clock.advance(100)
    assert idle.closed and not idle.aborted  # dropped gracefully, and only the idle one:
    assert not racer.aborted and not leaves.aborted and not kicked.aborted
    assert [args[0] for args in ev.of("Disconnected")] == [
        clients[1],
        clients[2],
        clients[3],
        clients[0],
    ]
    assert [args[0] for args in ev.of("Connected")] == clients
    assert h.stats().droppedIdle == 1
    result(h.StopListen())
    assert clock.getDelayedCalls() == []


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30))
def test_dropped_iff_a_gap_between_data_reaches_the_timeout(quarters: list[int]) -> None:
    """Data arrives after each gap (in quarter seconds); a 5 s gap or more drops the client."""
    clock, h, ev = clockServer(serverTimeout=5)
    h.StartListen()
    t = connected(clock)
    expectedDrop = next((i for i, q in enumerate(quarters) if q >= 20), None)
    for q in quarters:
        for _ in range(min(q, 20)):
            assert not t.closed
            clock.advance(0.25)
        if q >= 20:
            assert t.closed  # exactly 5 s into the gap
            break
        assert not t.closed
        send(t, b".")
    assert t.closed == (expectedDrop is not None)
    assert len(ev.of("Disconnected")) == (1 if expectedDrop is not None else 0)


# --- listening (Clock) -------------------------------------------------------------------------


def test_ListenFailed_is_retried_every_listenRetryTime_until_the_port_is_free() -> None:
    busy = BusyPortsReactor()
    busy.busy.add(9000)
    clock, h, ev = clockServer(retry=5, reactor=busy)
    assert result(h.StartListen()) == "PortUnavailable"
    assert ev.calls == [("ListenFailed", (h, "PortUnavailable"))]
    assert "Address already in use" in (h.Interface.lastError or "")
    clock.advance(4.75)
    assert busy.attempts == 1
    clock.advance(0.25)
    assert busy.attempts == 2
    assert ev.of("ListenFailed") == [(h, "PortUnavailable")] * 2
    clock.pump([5, 5])
    assert busy.attempts == 4
    busy.busy.clear()
    clock.advance(5)
    assert busy.attempts == 5
    assert h.stats().listening and h.stats().listenFailures == 4
    assert clock.getDelayedCalls() == []  # no retry timer once listening
    assert connect(clock) is not None
    assert len(ev.of("Connected")) == 1


def test_StopListen_cancels_the_retry_timer() -> None:
    busy = BusyPortsReactor()
    busy.busy.add(9000)
    clock, h, ev = clockServer(retry=5, reactor=busy)
    h.StartListen()
    assert clock.getDelayedCalls() != []
    result(h.StopListen())
    assert clock.getDelayedCalls() == []
    clock.pump([5] * 5)
    assert busy.attempts == 1 and len(ev.of("ListenFailed")) == 1


def test_StartListen_with_a_timeout_listens_that_long_and_keeps_the_clients() -> None:
    clock, h, ev = clockServer(serverTimeout=30)
    assert result(h.StartListen(10)) == "Listening"
    t = connected(clock)
    clock.advance(9.75)
    assert h.stats().listening
    clock.advance(0.25)
    assert not h.stats().listening
    assert len(h.Clients) == 1 and not t.closed
    send(t, b"x")
    assert len(ev.of("ReceiveData")) == 1
    assert result(h.StartListen()) == "Listening"  # again, now with no end
    assert result(h.StartListen(3)) == "ListeningAlready"
    clock.advance(3)
    assert not h.stats().listening
    t.deviceCloses()
    clock.advance(0)
    assert clock.getDelayedCalls() == []
    assert ev.of("ListenFailed") == []


def test_MaxClients_refuses_extra_clients_and_says_so(logged: list[dict[str, Any]]) -> None:
    clock, h, ev = clockServer(MaxClients=2)
    h.StartListen()
    first, second = connected(clock), connected(clock)
    assert connect(clock) is None
    assert not first.closed and not second.closed
    assert h.stats().refused == 1 and len(h.Clients) == 2
    assert any("refused client" in (formatEvent(e) or "") for e in logged)
    assert any("MaxClients (2) reached" in (formatEvent(e) or "") for e in logged)
    first.deviceCloses()
    clock.advance(0)
    assert connect(clock) is not None
    assert len(ev.of("Connected")) == 3 and len(h.Clients) == 2


def test_GetConnectionHandler_rejects_plain_and_UDP_servers() -> None:
    clock = MemoryReactorClock()
    with pytest.raises(TypeError, match="EthernetServerInterface is not supported"):
        GetConnectionHandler(EthernetServerInterface(9000, reactor=clock))
    with pytest.raises(TypeError, match="UDP EthernetServerInterfaceEx is not supported"):
        GetConnectionHandler(EthernetServerInterfaceEx(9000, "UDP", reactor=clock))
    with pytest.raises(TypeError, match="wraps an EthernetServerInterfaceEx"):
        ServerExHandler(EthernetServerInterface(9000, reactor=clock), 5, 5)
    with pytest.raises(ValueError, match="MaxClients must be at least 1"):
        EthernetServerInterfaceEx(9000, MaxClients=0)
    with pytest.raises(ValueError, match="Interface must be"):
        EthernetServerInterfaceEx(9000, Interface="eth0")
    iface = EthernetServerInterfaceEx(9000, reactor=clock)
    GetConnectionHandler(iface)
    with pytest.raises(ValueError, match="already accepts clients"):
        GetConnectionHandler(iface)
    listening = EthernetServerInterfaceEx(9001, reactor=clock)
    listening.StartListen()
    with pytest.raises(ValueError, match="wrap it before StartListen"):
        GetConnectionHandler(listening)


def test_Interface_names_bind_where_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = MemoryReactorClock()
    for name, address in [("Any", "0.0.0.0"), ("LAN", "0.0.0.0"), ("192.0.2.5", "192.0.2.5")]:
        assert result(EthernetServerInterfaceEx(1, Interface=name, reactor=clock).StartListen())
        assert clock.tcpServers[-1][3] == address
    iface = EthernetServerInterfaceEx(1, Interface="Any", bindAddress="127.0.0.1", reactor=clock)
    iface.StartListen()
    assert clock.tcpServers[-1][3] == "127.0.0.1"
    avlan = EthernetServerInterfaceEx(2, Interface="AVLAN", reactor=clock)
    assert result(avlan.StartListen()) == "InterfaceUnavailable: AVLAN"
    monkeypatch.setitem(_servers.INTERFACE_ADDRESSES, "AVLAN", "198.51.100.1")
    assert result(avlan.StartListen()) == "Listening"
    assert clock.tcpServers[-1][3] == "198.51.100.1"


def test_raising_callbacks_do_not_break_serving(logged: list[dict[str, Any]]) -> None:
    clock, h, ev = clockServer(serverTimeout=10)
    seen: list[Any] = []

    def bad(*args: Any) -> None:
        seen.append(args)
        raise RuntimeError("user bug")

    h.Connected = h.ReceiveData = h.Disconnected = bad
    h.Interface.ReceiveData = bad  # the interface's own event too
    h.StartListen()
    a, b = connected(clock), connected(clock)
    send(a, b"one")
    send(b, b"two")
    clock.advance(9)
    send(a, b"three")
    clock.advance(1)  # b is idle: dropped despite the raising callbacks
    assert b.closed and not a.closed
    assert len(h.Clients) == 1
    assert [s[1] for s in seen] == [
        "Connected",
        "Connected",
        b"one",
        b"one",
        b"two",
        b"two",
        b"three",
        b"three",
        "Disconnected",
    ]
    assert connect(clock) is not None
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert len(failures) == 10  # the last Connected too
    assert all(isinstance(e["log_failure"].value, RuntimeError) for e in failures)


def test_handler_exposes_the_interface_and_client_api() -> None:
    clock, h, ev = clockServer(MaxClients=3)
    assert isinstance(h, ServerExHandler)
    assert h.IPPort == 9000 and h.Protocol == "TCP" and h.MaxClients == 3
    assert isinstance(h.Interface, EthernetServerInterfaceEx)
    assert h.clientIdleTimeout == 30 and h.listenRetryTime == 5
    with pytest.raises(AttributeError, match="nor has the wrapped 'EthernetServerInterfaceEx'"):
        h.NoSuchThing  # noqa: B018
    with pytest.raises(TypeError, match="ListenFailed event handler must be callable"):
        h.ListenFailed = "nope"
    h.StartListen()
    t = connected(clock)
    (client,) = h.Clients
    assert client.Hostname == client.IPAddress == "192.0.2.7"
    assert client.ServicePort == t.getPeer().port
    assert client.IPPort == t.getHost().port
    client.Send(b"\x00\xff")
    client.Send("é")
    assert t.value() == b"\x00\xff\xe9"
    h.Disconnect(client)  # the interface's Disconnect(client), through the handler
    assert t.closed and not t.aborted
    assert h.stats() == ServerStats(
        listening=True,
        port=9000,
        clients=1,  # leaves on the next turn, like a reactor
        droppedIdle=0,
        refused=0,
        listenFailures=0,
        lastFailure=None,
    )
    clock.advance(0)
    assert h.stats().clients == 0


def test_single_client_EthernetServerInterface_events_get_the_interface() -> None:
    clock = MemoryReactorClock()
    iface = EthernetServerInterface(9001, reactor=clock)
    ev = Events(iface, "Connected", "Disconnected", "ReceiveData")
    iface.StartListen()
    t = connected(clock)
    assert connect(clock) is None  # one client at a time
    send(t, b"hi")
    iface.Send(b"yo")
    assert t.value() == b"yo"
    assert iface.IPAddress == "192.0.2.7"
    iface.Disconnect()
    clock.advance(0)
    assert ev.calls == [
        ("Connected", (iface, "Connected")),
        ("ReceiveData", (iface, b"hi")),
        ("Disconnected", (iface, "Disconnected")),
    ]


# --- real sockets (pytest-twisted, global reactor) ----------------------------------------------

SAFETY = 20.0


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


async def within(d: Deferred[Any], seconds: float = SAFETY) -> Any:
    return await d.addTimeout(seconds, _reactor())


async def eventually(predicate: Callable[[], bool], seconds: float = SAFETY) -> None:
    """Wait (polling every 10 ms) until C{predicate()} holds; fail after C{seconds}."""
    reactor = _reactor()
    deadline = reactor.seconds() + seconds
    while not predicate():
        assert reactor.seconds() < deadline, "condition never held"
        await deferLater(reactor, 0.01, lambda: None)


class Peer(Protocol):
    """A test client: records what it receives and when it is gone."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self.localPort = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.localPort = int(self.transport.getHost().port)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if not self.lost.called:
            self.reason = reason
            self.lost.callback(None)


async def dial(port: int, peer: Peer | None = None) -> Peer:
    peer = peer or Peer()
    endpoint = TCP4ClientEndpoint(_reactor(), "127.0.0.1", port)
    await within(connectProtocol(endpoint, peer))
    return peer


@implementer(IPullProducer)
class Flood:
    """Writes 64 KiB whenever the transport wants more, forever."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.sent = 0

    def resumeProducing(self) -> None:
        self.transport.write(b"x" * 65536)
        self.sent += 65536

    def stopProducing(self) -> None:
        pass


@pytest_twisted.ensureDeferred
async def test_the_manuals_server_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the example listens on 'Any'; this test keeps that on loopback
    monkeypatch.setitem(_servers.INTERFACE_ADDRESSES, "Any", "127.0.0.1")
    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib import event
    from twisted_ch.extronlib.interface import EthernetServerInterfaceEx

    # --- the manual's "Server" example; only the port changed (0: any free one) ---
    # Instantiate a server ConnectionHandler that disconnects clients that are
    # idle for 30 or more seconds.
    Server = GetConnectionHandler(EthernetServerInterfaceEx(0), serverTimeout=30)

    def Initialize():
        Server.StartListen()

    @event(Server, "ReceiveData")
    def ServerData(client, data):
        print("Received data from", client.IPAddress, ":", data.decode())

    @event(Server, ["Connected", "Disconnected"])
    def EthernetServerConnectionStatus(client, state):
        print("Server Client Activity:", client, state)
        if state == "Connected":
            print("New connection from", client.IPAddress)
        else:
            print(client.IPAddress, "disconnected")

    Initialize()
    # --- end of the example ---

    printed: list[str] = []

    def output() -> str:
        printed.append(capsys.readouterr().out)
        return "".join(printed)

    assert Server.stats().listening and Server.IPPort != 0
    assert Server.clientIdleTimeout == 30
    peer = await dial(Server.IPPort)
    assert peer.transport is not None
    peer.transport.write(b"hello")
    await eventually(lambda: "Received data" in output())
    peer.transport.loseConnection()
    await eventually(lambda: "disconnected" in output())
    name = f"<ClientObject 127.0.0.1:{peer.localPort}>"
    assert output().splitlines() == [
        f"Server Client Activity: {name} Connected",
        "New connection from 127.0.0.1",
        "Received data from 127.0.0.1 : hello",
        f"Server Client Activity: {name} Disconnected",
        "127.0.0.1 disconnected",
    ]
    await within(Server.StopListen())
    assert Server.Clients == []


@pytest_twisted.ensureDeferred
async def test_fifty_real_clients_idle_ones_dropped_busy_ones_kept() -> None:
    reactor = _reactor()
    iface = EthernetServerInterfaceEx(0, Interface="127.0.0.1")
    server = GetConnectionHandler(iface, serverTimeout=0.5)
    gone: dict[int, Deferred[None]] = {}
    disconnects: dict[int, int] = {}
    received: dict[int, int] = {}

    def waitGone(port: int) -> Deferred[None]:
        return gone.setdefault(port, Deferred())

    def onDisconnected(client: Any, state: str) -> None:
        disconnects[client.ServicePort] = disconnects.get(client.ServicePort, 0) + 1
        d = waitGone(client.ServicePort)
        if not d.called:
            d.callback(None)

    def onData(client: Any, data: bytes) -> None:
        received[client.ServicePort] = received.get(client.ServicePort, 0) + len(data)
        if b"ping" in data:
            client.Send(b"pong\n")
        if data == b"F":  # flood me: more than socket buffers hold, for a client not reading
            client.Send(b"y" * (32 << 20))

    server.Disconnected = onDisconnected
    server.ReceiveData = onData
    assert await within(server.StartListen()) == "Listening"
    port = server.IPPort

    quiet = [await dial(port) for _ in range(16)]  # say hello, then nothing
    silent = [await dial(port) for _ in range(16)]  # connect and send nothing
    chatty = [await dial(port) for _ in range(16)]  # a ping every 50 ms
    flood = await dial(port)  # sends without end
    stuck = await dial(port)  # asks for a flood, stops reading, sends nothing more

    for p in quiet:
        p.transport.write(b"hello\n")  # type: ignore[union-attr]
    loops = [LoopingCall(p.transport.write, b"ping\n") for p in chatty]  # type: ignore[union-attr]
    for loop in loops:
        loop.start(0.05)
    producer = Flood(flood.transport)
    flood.transport.registerProducer(producer, False)  # type: ignore[union-attr]
    stuck.transport.write(b"F")  # type: ignore[union-attr]
    stuck.transport.pauseProducing()  # type: ignore[union-attr]
    await eventually(lambda: len(iface.Clients) == 50)

    dropped = quiet + silent + [stuck]
    for p in dropped:
        await within(waitGone(p.localPort))
    for p in quiet + silent:
        await within(p.lost)  # they saw the connection end
    # well past the timeout again: the busy clients are all still there
    await deferLater(reactor, 1.5, lambda: None)
    kept = {c.ServicePort for c in iface.Clients}
    assert kept == {p.localPort for p in chatty + [flood]}
    assert all(b"pong" in p.received for p in chatty)
    assert received[flood.localPort] > 1 << 20 and producer.sent > 1 << 20
    late = await dial(port)  # the server still serves during the flood
    late.transport.write(b"ping\n")  # type: ignore[union-attr]
    await eventually(lambda: b"pong" in late.received)
    stats = server.stats()
    assert stats.droppedIdle == 33 and stats.clients == 18

    for loop in loops:
        loop.stop()
    for p in chatty + [flood, stuck, late]:
        p.transport.abortConnection()  # type: ignore[union-attr]
    for p in chatty + [flood, late]:
        await within(waitGone(p.localPort))
    assert set(disconnects.values()) == {1} and len(disconnects) == 51
    await within(server.StopListen())
    assert iface.Clients == []


@pytest_twisted.ensureDeferred
async def test_a_real_port_in_use_fails_then_listens_once_free() -> None:
    reactor = _reactor()
    blocker = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    port = blocker.getHost().port
    iface = EthernetServerInterfaceEx(port, Interface="127.0.0.1")
    server = GetConnectionHandler(iface, serverTimeout=5, connectRetryTime=0.1)
    failures: list[tuple[Any, str]] = []
    server.ListenFailed = lambda handler, reason: failures.append((handler, reason))
    try:
        assert await within(server.StartListen()) == "PortUnavailable"
        assert failures == [(server, "PortUnavailable")]
        assert "in use" in (iface.lastError or "")
        await eventually(lambda: len(failures) >= 3)  # retried
    finally:
        await within(blocker.stopListening())
    await eventually(lambda: server.stats().listening)
    peer = await dial(port)
    await eventually(lambda: len(server.Clients) == 1)
    peer.transport.loseConnection()  # type: ignore[union-attr]
    await within(peer.lost)
    await within(server.StopListen())
    count = len(failures)
    await deferLater(reactor, 0.3, lambda: None)
    assert len(failures) == count  # no retries once listening, nor after StopListen


@pytest_twisted.ensureDeferred
async def test_real_MaxClients_closes_extra_clients_at_once() -> None:
    iface = EthernetServerInterfaceEx(0, Interface="127.0.0.1", MaxClients=1)
    server = GetConnectionHandler(iface, serverTimeout=5)
    ev = Events(server, "Connected", "Disconnected")
    await within(server.StartListen())
    first = await dial(server.IPPort)
    await eventually(lambda: len(ev.calls) == 1)
    extra = await dial(server.IPPort)
    await within(extra.lost)
    assert server.stats().refused == 1
    assert [c.ServicePort for c in server.Clients] == [first.localPort]
    first.transport.loseConnection()  # type: ignore[union-attr]
    await eventually(lambda: len(ev.calls) == 2)
    await within(server.StopListen())


@pytest_twisted.ensureDeferred
async def test_StartListen_from_a_program_thread_blocks_and_returns_Listening() -> None:
    reactor = _reactor()
    thread = ProgramThread(reactor)
    thread.start()
    calls: list[tuple[str, str]] = []

    def program() -> tuple[Any, Any]:
        server = GetConnectionHandler(
            EthernetServerInterfaceEx(0, Interface="127.0.0.1"), serverTimeout=5
        )

        def onConnected(client: Any, state: str) -> None:
            calls.append((threading.current_thread().name, state))

        def onData(client: Any, data: bytes) -> None:
            client.Send(b"echo:" + data)  # blocking face, from the program thread
            calls.append((threading.current_thread().name, "data"))

        server.Connected = onConnected
        server.ReceiveData = onData
        return server, server.StartListen()

    try:
        server, started = await within(thread.run(program))
        assert started == "Listening"
        peer = await dial(server.IPPort)
        peer.transport.write(b"hi")  # type: ignore[union-attr]
        await eventually(lambda: peer.received == b"echo:hi")
        assert calls == [(thread.name, "Connected"), (thread.name, "data")]
        assert await within(thread.run(server.StopListen)) is None
        assert await within(thread.run(server.StartListen)) == "Listening"
        assert await within(thread.run(server.StartListen)) == "ListeningAlready"
        peer.transport.loseConnection()  # type: ignore[union-attr]
        await within(peer.lost)
        await within(thread.run(server.StopListen))
    finally:
        await within(thread.stop())


@pytest_twisted.ensureDeferred
async def test_udp_server_receives_and_answers_each_sender() -> None:
    reactor = _reactor()
    iface = EthernetServerInterfaceEx(0, "UDP", "127.0.0.1")
    senders: list[Any] = []

    def onData(client: Any, data: bytes) -> None:
        senders.append(client)
        client.Send(b"re:" + data)

    iface.ReceiveData = onData
    assert await within(iface.StartListen()) == "Listening"
    answers: list[bytes] = []

    class Sender(DatagramProtocol):
        def datagramReceived(self, datagram: bytes, addr: Any) -> None:
            answers.append(datagram)

    sender = reactor.listenUDP(0, Sender(), interface="127.0.0.1")
    try:
        for n in (b"1", b"2"):
            sender.write(n, ("127.0.0.1", iface.IPPort))
            await eventually(lambda n=n: b"re:" + n in answers)
        assert senders[0] is senders[1]  # one ClientObject per sender
        assert senders[0].ServicePort == sender.getHost().port
        assert iface.Clients == []
    finally:
        await within(sender.stopListening())
        await within(iface.StopListen())


@pytest_twisted.ensureDeferred
async def test_StartListen_right_after_StopListen_waits_for_the_port_to_close() -> None:
    iface = EthernetServerInterfaceEx(0, Interface="127.0.0.1")
    server = GetConnectionHandler(iface, serverTimeout=5, connectRetryTime=0.1)
    ev = Events(server, "ListenFailed")
    await within(server.StartListen())
    port = server.IPPort
    stopped = server.StopListen()
    again = server.StartListen()  # same port: the old socket closes on the next turn
    assert await within(again) == "Listening"
    assert stopped.called and server.IPPort == port and ev.calls == []
    # a StopListen that comes before the pending StartListen could run wins
    stopped = server.StopListen()
    pending = server.StartListen()
    server.StopListen()
    assert await within(pending) == "Cancelled"
    await within(stopped)
    assert not server.stats().listening and ev.calls == []
    peer = Peer()
    with pytest.raises(error.ConnectionRefusedError):
        await dial(port, peer)
