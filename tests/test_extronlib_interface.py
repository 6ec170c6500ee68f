"""
extronlib.interface vendor call patterns: SSH without Credentials, the program-wide host-key
policy, bufferSize, Initialize with None, CharDelay on a real pty, DanteInterface's positional
signature, the I/O port interfaces, and extronlib.software.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from helpers import successResultOf
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib import interface
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import (
    CircuitBreakerInterface,
    ContactInterface,
    DanteInterface,
    DigitalIOInterface,
    EthernetClientInterface,
    FlexIOInterface,
    IRInterface,
    PoEInterface,
    RelayInterface,
    SerialInterface,
    SWACReceptacleInterface,
    VolumeInterface,
)
from twisted_ch.extronlib.software import DanteDomainManager, SummitConnect
from twisted_ch.testing import DeviceServer, FakeEndpoint, waitUntil
from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer

# SSH


class SSHModule(EthernetClientInterface):
    """What Global Scripter SSH module classes do: Credentials=None unless given."""

    def __init__(self, Hostname: str, IPPort: int, Protocol: str = "SSH", Credentials: Any = None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, Credentials=Credentials)


def test_ssh_without_credentials_is_built_and_each_attempt_fails_with_the_reason() -> None:
    clock = Clock()
    iface = EthernetClientInterface("192.0.2.1", 22, "SSH", reactor=clock)
    assert iface.Credentials is None
    reasons: list[str] = []
    handler = GetConnectionHandler(iface, lambda h: None, connectRetryTime=5)
    handler.ConnectFailed = lambda h, reason: reasons.append(reason)
    first = successResultOf(handler.Connect())
    assert first == "MissingCredentials: SSH needs Credentials=(username, password)"
    clock.advance(5)
    assert reasons == [first, first]
    successResultOf(handler.Disconnect())
    assert clock.getDelayedCalls() == []


def test_a_module_class_passing_credentials_none_constructs() -> None:
    module = SSHModule("192.0.2.1", 22)
    assert module.Protocol == "SSH" and module.Credentials is None
    module.Credentials = ("admin", "pw")
    assert module.Credentials == ("admin", "pw")
    with pytest.raises(TypeError, match="Credentials must be"):
        module.Credentials = "admin"  # type: ignore[assignment]


@pytest.fixture
def defaultPolicy() -> Iterator[None]:
    yield
    interface.setDefaultHostKeyPolicy("reject")


@pytest_twisted.ensureDeferred
async def test_program_wide_host_key_policy(tmp_path: Path, defaultPolicy: None) -> None:
    server = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": "pw"})
    server.start()
    knownHosts = tmp_path / "known_hosts"
    try:
        # reject stays the default: an unknown host fails
        strict = EthernetClientInterface(
            "127.0.0.1",
            server.port,
            "SSH",
            Credentials=("admin", "pw"),
            knownHosts=str(knownHosts),
            reactor=reactor,
        )
        reason = await strict.Connect(5)
        assert "UnknownHostKey" in reason, reason
        with pytest.raises(ValueError, match="'reject' or 'accept-new'"):
            interface.setDefaultHostKeyPolicy("trust-all")
        interface.setDefaultHostKeyPolicy("accept-new")
        assert await strict.Connect(5) == "Connected"  # the policy applies from the next attempt
        assert server.knownHostsLine().split()[1:] == knownHosts.read_text().split()[1:]
        await strict.Disconnect()
        # an interface that says reject keeps rejecting a host it does not know
        other = tmp_path / "other_known_hosts"
        explicit = EthernetClientInterface(
            "127.0.0.1",
            server.port,
            "SSH",
            Credentials=("admin", "pw"),
            knownHosts=str(other),
            hostKeyPolicy="reject",
            reactor=reactor,
        )
        assert "UnknownHostKey" in await explicit.Connect(5)
    finally:
        await server.stop()


# Ethernet buffer size


def test_buffer_size_cuts_udp_datagrams() -> None:
    clock = Clock()
    udp = EthernetClientInterface(
        "127.0.0.1", 5000, "UDP", 0, None, 16, reactor=clock, endpoint=FakeEndpoint(clock)
    )
    got: list[bytes] = []
    udp.ReceiveData = lambda iface, data: got.append(data)
    udp.linkData(b"x" * 20)
    udp.SetBufferSize(4)
    udp.linkData(b"abcdef")
    assert got == [b"x" * 16, b"abcd"] and udp.bufferSize == 4
    with pytest.raises(ValueError, match="bufferSize must be 1-65535"):
        udp.SetBufferSize(0)
    tcp = EthernetClientInterface("127.0.0.1", 23, bufferSize=8192, reactor=clock)
    with pytest.raises(ValueError, match="applies to UDP"):
        tcp.SetBufferSize(100)


# serial: Initialize with None, CharDelay between bytes on a real pty


@pytest_twisted.ensureDeferred
async def test_char_delay_paces_bytes_on_a_real_pty_and_initialize_none_keeps_settings() -> None:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    host = ProcessorDevice("Main", ports={"COM1": os.ttyname(slave)})
    port = SerialInterface(host, "COM1", Baud=19200, CharDelay=0.05, reactor=reactor)
    pacing = Clock()
    port.pacingClock = pacing
    seen = bytearray()

    def received() -> bytes:
        try:
            seen.extend(os.read(master, 100))
        except BlockingIOError:
            pass
        return bytes(seen)

    try:
        await waitUntil(reactor, lambda: port.link.connected)
        port.Send(b"abc")
        await waitUntil(reactor, lambda: received() == b"a")
        # the rest waits for the pacing clock: one byte per CharDelay
        assert [c.getTime() for c in pacing.getDelayedCalls()] == [0.05]
        pacing.advance(0.05)
        await waitUntil(reactor, lambda: received() == b"ab")
        pacing.advance(0.05)
        await waitUntil(reactor, lambda: received() == b"abc")
        assert pacing.getDelayedCalls() == []

        port.Initialize(Baud=None, Parity=None, CharDelay=0)  # None leaves a setting
        assert (port.Baud, port.Parity, port.CharDelay) == (19200, "None", 0)
        assert port.link.connected  # no line setting changed: not reopened
        port.Send(b"xyz")
        await waitUntil(reactor, lambda: received() == b"abcxyz")
        assert pacing.getDelayedCalls() == []
        port.Initialize(Baud=9600)
        assert port.Baud == 9600 and port.Data == 8
        await waitUntil(reactor, lambda: port.link.connected)
    finally:
        await port.Disconnect()
        os.close(master)
        os.close(slave)


def test_with_char_delay_send_and_wait_times_out_after_the_last_byte() -> None:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    host = ProcessorDevice("Main", reactor=clock)
    port = SerialInterface(host, "COM1", CharDelay=0.1, endpoint=endpoint, reactor=clock)
    answer = port.SendAndWait(b"POWR?\r", 0.5, deliTag=b"\r")
    assert endpoint.written() == b"P"
    clock.pump([0.1] * 5)  # the last byte goes out at 0.5 s
    assert endpoint.written() == b"OWR?\r"
    clock.advance(0.4)  # 0.9 s after the call, 0.4 s after the last byte: still waiting
    endpoint.respond(b"PWR1\r")
    assert successResultOf(answer) == b"PWR1\r"
    late = port.SendAndWait(b"AB", 0.5, deliTag=b"\r")
    clock.pump([0.1, 0.5])
    assert successResultOf(late) == b""
    assert clock.getDelayedCalls() == []


def test_paced_bytes_count_against_the_write_buffer_bound() -> None:
    from twisted_ch.protocols.device import WriteBufferFull

    clock = Clock()
    endpoint = FakeEndpoint(clock)
    host = ProcessorDevice("Main", reactor=clock)
    port = SerialInterface(host, "COM1", CharDelay=1, endpoint=endpoint, reactor=clock)
    port.link.protocol.maxWriteBuffer = 8  # type: ignore[union-attr]
    port.Send(b"0123456789")  # nothing queued yet: accepted, then paced
    assert endpoint.written() == b"0"
    with pytest.raises(WriteBufferFull, match="9 bytes are queued"):
        port.Send(b"more")
    clock.pump([1] * 9)
    assert endpoint.written() == b"123456789"
    port.Send(b"ok")  # drained: accepted again
    clock.advance(1)
    assert endpoint.written() == b"ok"


# Dante


def test_dante_interface_vendor_signature_and_start_service() -> None:
    clock = Clock()
    manager = DanteDomainManager("ddm.example", ("admin", "pw"), reactor=clock)

    class DanteModule(DanteInterface):
        def __init__(self, Hostname: str, Protocol: str, DanteDomainManager: Any, Domain: str):
            DanteInterface.__init__(self, Hostname, Protocol, DanteDomainManager, Domain)

    amp = DanteModule("NetPA-1", "Extron", manager, "Main")
    assert (amp.DeviceName, amp.DanteDomainManager, amp.Domain) == ("NetPA-1", manager, "Main")
    assert DanteInterface.StartService() == "ServiceStarted"
    assert DanteInterface.StartService("AVLAN") == "ServiceStarted"
    with pytest.raises(ValueError, match="'LAN' or 'AVLAN'"):
        DanteInterface.StartService("WAN")
    assert "pw" not in repr(manager)
    assert manager.Connect() == "Connected" and manager.Connect() == "ConnectedAlready"


@pytest_twisted.ensureDeferred
async def test_dante_device_reached_where_the_config_says() -> None:
    device = DeviceServer(reactor, {b"Q": b"Ver01\r\n"})
    device.start()
    from twisted_ch.extronlib._ports import DANTE_HOSTS

    DANTE_HOSTS["NetPA-2"] = f"127.0.0.1:{device.port}"
    amp = DanteInterface("NetPA-2", reactor=reactor)
    try:
        assert await amp.Connect(5) == "Connected"
        got: list[bytes] = []
        amp.ReceiveData = lambda iface, data: got.append(data)
        amp.Send("Q")
        await waitUntil(reactor, lambda: b"".join(got) == b"Ver01\r\n")
    finally:
        del DANTE_HOSTS["NetPA-2"]
        await amp.Disconnect()
        await device.shutdown()


# I/O ports


class Backend:
    def __init__(self) -> None:
        self.applied: list[tuple[str, str, object]] = []

    def apply(self, port: Any, setting: str, value: object) -> None:
        self.applied.append((port.Port, setting, value))


def test_relay_pulse_and_backend() -> None:
    clock = Clock()
    host = ProcessorDevice("Main", reactor=clock)
    backend = Backend()
    relay = RelayInterface(host, "RLY1", backend=backend)
    relay.SetState("Close")
    relay.Toggle()
    relay.Pulse(0.01)  # raised to the 0.1 s minimum
    assert relay.State == "Close"
    clock.advance(0.1)
    assert relay.State == "Open"
    assert backend.applied == [
        ("RLY1", "State", "Close"),
        ("RLY1", "State", "Open"),
        ("RLY1", "State", "Close"),
        ("RLY1", "State", "Open"),
    ]
    with pytest.raises(ValueError, match="State must be"):
        relay.SetState("On")
    assert clock.getDelayedCalls() == []


def test_inputs_fire_state_changed_from_reports() -> None:
    clock = Clock()
    host = ProcessorDevice("Main", reactor=clock)
    contact = ContactInterface(host, "CII1")
    dio = DigitalIOInterface(host, "DIO1")
    flex = FlexIOInterface(host, "FIO1", Upper=3.0, Lower=1.0)
    breaker = CircuitBreakerInterface(host, "CBR1")
    events: list[tuple[str, object]] = []
    contact.StateChanged = lambda i, s: events.append(("contact", s))
    dio.StateChanged = lambda i, s: events.append(("dio", s))
    flex.StateChanged = lambda i, s: events.append(("flex", s))
    flex.AnalogVoltageChanged = lambda i, v: events.append(("volts", v))
    breaker.StateChanged = lambda i, s: events.append(("breaker", s))
    contact.report(State="On")
    contact.report(State="On")
    dio.report(State=1)
    flex.report(AnalogVoltage=3.3)
    flex.report(AnalogVoltage=2.0)  # between the thresholds: no change
    breaker.report(State="Tripped")
    assert events == [
        ("contact", "On"),
        ("dio", "On"),
        ("volts", 3.3),
        ("flex", "On"),
        ("volts", 2.0),
        ("breaker", "Tripped"),
    ]
    with pytest.raises(ValueError, match="only an output can be set"):
        dio.SetState("On")
    dio.Initialize(Mode="DigitalOutput", Pullup=None)
    dio.SetState(1)
    assert dio.State == "On" and dio.Pullup is False
    with pytest.raises(TypeError, match="reports State"):
        contact.report(Current=1)


def test_volume_poe_ac_and_ir() -> None:
    clock = Clock()
    host = ProcessorDevice("Main", reactor=clock)
    backend = Backend()
    volume = VolumeInterface(host, "VOL1", backend=backend)
    volume.SetLevel(40)
    volume.SetMute("On")
    volume.SetRange(1, 9)
    assert (volume.Level, volume.Mute, volume.Min, volume.Max) == (40, "On", 1.0, 9.0)
    with pytest.raises(ValueError, match="Level must be 0-100"):
        volume.SetLevel(101)
    poe = PoEInterface(host, "POE1")
    statuses: list[str] = []
    poe.PowerStatusChanged = lambda i, s: statuses.append(s)
    poe.SetState("On")
    poe.report(PowerStatus="Active", CurrentLoad=4.5)
    assert statuses == ["Active"] and poe.CurrentLoad == 4.5 and poe.State == "On"
    ac = SWACReceptacleInterface(host, "SAC1")
    currents: list[float] = []
    ac.CurrentChanged = lambda i, a: currents.append(a)
    ac.report(Current=0.8)
    assert currents == [0.8]
    ir = IRInterface(host, "IRS1", "projector.eir", backend=backend)
    ir.PlayTime("PowerOn", 2)
    assert ir.playing == ("Time", "PowerOn", 2.0)
    clock.advance(2)
    assert ir.playing is None
    ir.PlayContinuous("VolumeUp")
    ir.Stop()
    ir.Initialize(None)
    assert ir.File == "projector.eir"
    with pytest.raises(ValueError, match="repeatCount must be 0-15"):
        ir.PlayCount("PowerOn", 16)
    assert ("IRS1", "Play", ("Time", "PowerOn", 2.0)) in backend.applied
    assert clock.getDelayedCalls() == []


# software


@pytest_twisted.ensureDeferred
async def test_summit_connect_talks_tcp() -> None:
    device = DeviceServer(reactor, {b"hello": b"world\n"})
    device.start()
    pc = SummitConnect("127.0.0.1", device.port, reactor=reactor)
    try:
        assert await pc.Connect(5) == "Connected"
        got: list[bytes] = []
        pc.ReceiveData = lambda iface, data: got.append(data)
        pc.Send("hello")
        await waitUntil(reactor, lambda: b"".join(got) == b"world\n")
        assert SummitConnect.SetListeningPorts(range(10000, 10003)) == "Listening"
        assert pc.ListeningPort == 10000 and pc.IPPort == device.port
        with pytest.raises(ValueError, match="1 to 15 ports"):
            SummitConnect.SetListeningPorts(range(20))
        SummitConnect.SetListeningPorts()
    finally:
        await pc.Disconnect()
        await device.shutdown()


@pytest.mark.parametrize("kind", ["EthernetClientInterface", "SummitConnect"])
@pytest_twisted.ensureDeferred
async def test_IPAddress_is_the_name_given_until_connected_then_the_peer(kind: str) -> None:
    device = DeviceServer(reactor, {})
    device.start()
    make = EthernetClientInterface if kind == "EthernetClientInterface" else SummitConnect
    iface = make("localhost", device.port, reactor=reactor)
    try:
        assert iface.IPAddress == "localhost"
        assert await iface.Connect(5) == "Connected"
        assert iface.IPAddress in ("127.0.0.1", "::1")
    finally:
        await iface.Disconnect()
        await device.shutdown()
