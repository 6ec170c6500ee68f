"""The stock keep-alive probes against their simulators, on real loopback sockets."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater
from twisted.logger import formatEvent

from twisted_ch import EndpointInterface, GetConnectionHandler
from twisted_ch.service.probes import (
    PJLinkProbe,
    Probe,
    ProbeUnavailable,
    SendExpectProbe,
    SISProbe,
    SNMPProbe,
    makeProbe,
    pjlinkDigest,
)
from twisted_ch.testing import DeviceServer
from twisted_ch.testing._probes import SIS_RESPONSES, PJLinkServer, SNMPAgent

SAFETY = 10.0


def bounded(d: Any, seconds: float = SAFETY) -> Deferred[Any]:
    """A safety net: no test waits forever."""
    assert isinstance(d, Deferred), d
    return d.addTimeout(seconds, reactor)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Let the reactor run until C{condition()} holds (polled every 20 ms), or fail."""
    deadline = reactor.seconds() + seconds
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        await deferLater(reactor, 0.02, lambda: None)


class Accepts:
    """Counts ResponseAccepted calls on a handler (and still forwards them)."""

    def __init__(self, handler: Any) -> None:
        self.count = 0
        original = handler.ResponseAccepted

        def accepted() -> None:
            self.count += 1
            original()

        handler.ResponseAccepted = accepted


async def tcpHandler(port: int, probe: Probe, pollFrequency: float = 60.0) -> Any:
    """A connected RawTcpHandler to a loopback port with C{probe} attached."""
    interface = EndpointInterface(
        TCP4ClientEndpoint(reactor, "127.0.0.1", port), reactor=reactor, description="device"
    )
    handler = GetConnectionHandler(interface, probe, pollFrequency=pollFrequency, reactor=reactor)
    probe.attach(handler)
    assert await bounded(handler.Connect()) == "Connected"
    return handler


async def udpHandler(port: int, probe: Probe, pollFrequency: float = 60.0) -> Any:
    """A RawSimplePipeHandler over UDP to a loopback port, its socket open, C{probe} attached."""
    from twisted_ch.endpoints.udp import UDPClientEndpoint

    interface = EndpointInterface(
        UDPClientEndpoint(reactor, "127.0.0.1", port),
        reactor=reactor,
        connectionOriented=False,
        description="agent",
    )
    handler = GetConnectionHandler(interface, probe, pollFrequency=pollFrequency, reactor=reactor)
    probe.attach(handler)
    handler.Connect()
    await until(lambda: interface.link.connected)
    return handler


@pytest.fixture
def logged(loggedEvents: Any) -> Any:
    return loggedEvents


# SIS


@pytest_twisted.ensureDeferred
async def test_sis_probe_accepts_the_firmware_answer() -> None:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    probe = SISProbe("Q", timeout=1.0)
    handler = await tcpHandler(server.port, probe)
    accepts = Accepts(handler)
    try:
        assert await bounded(probe(handler)) is True
        assert accepts.count == 1
        assert probe.lastProblem is None
        assert server.received[-1] == b"Q"
    finally:
        await bounded(handler.Disconnect())
        await bounded(server.shutdown())


@pytest_twisted.ensureDeferred
async def test_sis_probe_skips_the_banner_and_rejects_sis_errors() -> None:
    banner = b"(c) Copyright 2024, Extron Electronics, DXP 84\r\n"
    server = DeviceServer(reactor, {b"Q": banner + b"3.05.0001-b001\r\n", b"1*1!": b"E10\r\n"})
    server.start()
    firmware = SISProbe("Q", timeout=1.0)
    tie = SISProbe("1*1!", expect=rb"Out1 In1 All", timeout=1.0)
    handler = await tcpHandler(server.port, firmware)
    accepts = Accepts(handler)
    try:
        assert await bounded(firmware(handler)) is True
        assert await bounded(tie(handler)) is False
        assert tie.lastProblem is not None and "E10" in tie.lastProblem
        assert accepts.count == 1
    finally:
        await bounded(handler.Disconnect())
        await bounded(server.shutdown())


@pytest_twisted.ensureDeferred
async def test_sis_probe_reports_a_silent_device() -> None:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    server.silent = True
    probe = SISProbe("N", timeout=0.3)
    handler = await tcpHandler(server.port, probe)
    accepts = Accepts(handler)
    try:
        assert await bounded(probe(handler)) is False
        assert accepts.count == 0
        assert probe.lastProblem is not None and "no answer" in probe.lastProblem
        server.silent = False
        assert await bounded(probe(handler)) is True
        assert probe.lastProblem is None
    finally:
        await bounded(handler.Disconnect())
        await bounded(server.shutdown())


@pytest_twisted.ensureDeferred
async def test_send_expect_probe() -> None:
    server = DeviceServer(reactor, {b"P": b"Pwr1\r\n", b"V": b"Vol??\r\n"})
    server.start()
    power = SendExpectProbe(b"P", rb"Pwr[0-3]\r\n", timeout=1.0)
    volume = SendExpectProbe(b"V", rb"Vol\d+\r\n", timeout=0.3)
    handler = await tcpHandler(server.port, power)
    try:
        assert await bounded(power(handler)) is True
        assert await bounded(volume(handler)) is False
    finally:
        await bounded(handler.Disconnect())
        await bounded(server.shutdown())


@pytest_twisted.ensureDeferred
async def test_probe_on_a_closed_link_is_a_miss_not_an_error(logged: list[Any]) -> None:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    probe = SISProbe(timeout=1.0)
    handler = await tcpHandler(server.port, probe)
    await bounded(handler.Disconnect())
    await bounded(server.shutdown())
    assert await bounded(probe(handler)) is False
    assert not [e for e in logged if e.get("log_failure") is not None]


# PJLink


@pytest_twisted.ensureDeferred
async def test_pjlink_without_authentication() -> None:
    projector = PJLinkServer(reactor, password=None, power=0)
    projector.start()
    probe = PJLinkProbe(timeout=1.0)
    handler = await tcpHandler(projector.port, probe)
    try:
        assert await bounded(probe(handler)) is True
        assert probe.power == "off"
        assert projector.commands == [b"%1POWR ?"]
    finally:
        await bounded(handler.Disconnect())
        await bounded(projector.shutdown())


@pytest_twisted.ensureDeferred
async def test_pjlink_authentication_with_the_right_password() -> None:
    projector = PJLinkServer(reactor, password="JBMIAProjectorLink")
    projector.start()
    probe = PJLinkProbe(password="JBMIAProjectorLink", timeout=1.0)
    handler = await tcpHandler(projector.port, probe)
    accepts = Accepts(handler)
    try:
        assert await bounded(probe(handler)) is True
        # authenticated once per connection: the next query goes without a digest
        assert await bounded(probe(handler)) is True
        assert accepts.count == 2
        assert projector.authFailures == 0
        assert projector.commands == [b"%1POWR ?", b"%1POWR ?"]
        assert probe.power == "on"
    finally:
        await bounded(handler.Disconnect())
        await bounded(projector.shutdown())


def test_pjlink_digest_is_md5_of_random_and_password() -> None:
    # the worked example of the PJLink specification
    assert pjlinkDigest(b"498e4a67", "JBMIAProjectorLink") == b"5d8409bc1c3fa39749434aa3a5c38682"


@pytest_twisted.ensureDeferred
async def test_pjlink_wrong_password_is_logged_without_the_password(logged: list[Any]) -> None:
    secret = "Wr0ng-Pa55word-7f3e"
    projector = PJLinkServer(reactor, password="right-one")
    projector.start()
    probe = PJLinkProbe(password=secret, timeout=1.0)
    handler = await tcpHandler(projector.port, probe)
    accepts = Accepts(handler)
    try:
        assert await bounded(probe(handler)) is False
        assert await bounded(probe(handler)) is False
        assert accepts.count == 0
        assert projector.authFailures == 2
        assert probe.authFailures == 2
    finally:
        await bounded(handler.Disconnect())
        await bounded(projector.shutdown())
    texts = [formatEvent(e) for e in logged]
    assert [t for t in texts if "authentication failed" in t], texts
    for event in logged:
        assert secret not in formatEvent(event)
        assert secret not in repr(event)
    assert secret not in repr(probe) and secret not in repr(probe.describe())


@pytest_twisted.ensureDeferred
async def test_pjlink_authentication_required_but_no_password() -> None:
    projector = PJLinkServer(reactor, password="right-one")
    projector.start()
    probe = PJLinkProbe(timeout=1.0)
    handler = await tcpHandler(projector.port, probe)
    try:
        assert await bounded(probe(handler)) is False
        assert probe.lastProblem is not None and "no password" in probe.lastProblem
        assert projector.commands == []
    finally:
        await bounded(handler.Disconnect())
        await bounded(projector.shutdown())


@pytest_twisted.ensureDeferred
async def test_pjlink_probe_keeps_a_handler_connected_across_reconnects() -> None:
    projector = PJLinkServer(reactor, password="pw")
    projector.start()
    probe = PJLinkProbe(password="pw", timeout=0.5)
    handler = await tcpHandler(projector.port, probe, pollFrequency=0.1)
    try:
        await until(lambda: probe.accepted >= 2)
        # the projector drops the connection: a new greeting, a new random, a new digest
        for client in list(projector.clients):
            assert client.transport is not None
            client.transport.loseConnection()
        await until(lambda: handler.ConnectionStatus == "Disconnected")
        before = probe.accepted
        handler.Connect()
        await until(lambda: probe.accepted >= before + 2)
        assert projector.authFailures == 0
        assert handler.ConnectionStatus == "Connected"
    finally:
        await bounded(handler.Disconnect())
        await bounded(projector.shutdown())


# SNMP


@pytest_twisted.ensureDeferred
async def test_snmp_probe_reads_sysuptime() -> None:
    agent = SNMPAgent(reactor, community="site-ro")
    agent.start()
    probe = SNMPProbe(community="site-ro", timeout=1.0)
    handler = await udpHandler(agent.port, probe)
    try:
        assert handler.ConnectionStatus == "Unknown"
        assert await bounded(probe(handler)) is True
        assert handler.ConnectionStatus == "Connected"
        assert probe.uptime is not None and probe.uptime >= 0
        assert agent.requests == 1
    finally:
        await bounded(handler.Disconnect())
        await bounded(agent.shutdown())


@pytest_twisted.ensureDeferred
async def test_snmp_response_with_a_wrong_request_id_is_ignored() -> None:
    agent = SNMPAgent(reactor)
    agent.start()
    agent.wrongIdOnly = True
    probe = SNMPProbe(timeout=0.3)
    handler = await udpHandler(agent.port, probe)
    accepts = Accepts(handler)
    try:
        assert await bounded(probe(handler)) is False
        assert probe.ignored == 1
        assert accepts.count == 0
        assert handler.ConnectionStatus == "Unknown"
        # a stray answer first, then the real one: only the real one counts
        agent.wrongIdOnly = False
        agent.decoy = True
        assert await bounded(probe(handler)) is True
        assert probe.ignored == 2
        assert accepts.count == 1
    finally:
        await bounded(handler.Disconnect())
        await bounded(agent.shutdown())


@pytest_twisted.ensureDeferred
async def test_snmp_wrong_community_gets_no_answer() -> None:
    agent = SNMPAgent(reactor, community="private")
    agent.start()
    probe = SNMPProbe(community="public", version="1", timeout=0.3)
    handler = await udpHandler(agent.port, probe)
    try:
        assert await bounded(probe(handler)) is False
        assert agent.dropped == 1
        assert probe.lastProblem is not None and "no response" in probe.lastProblem
    finally:
        await bounded(handler.Disconnect())
        await bounded(agent.shutdown())


@pytest_twisted.ensureDeferred
async def test_snmp_probe_drives_a_pipe_handler_through_an_outage() -> None:
    agent = SNMPAgent(reactor)
    agent.start()
    probe = SNMPProbe(timeout=0.1)
    interfaceHandler = await udpHandler(agent.port, probe, pollFrequency=0.15)
    handler = interfaceHandler
    try:
        await until(lambda: handler.ConnectionStatus == "Connected")
        agent.silent = True
        await until(lambda: handler.ConnectionStatus == "Disconnected")
        agent.silent = False
        await until(lambda: handler.ConnectionStatus == "Connected")
        assert handler.transitions == 3
    finally:
        await bounded(handler.Disconnect())
        await bounded(agent.shutdown())


# by name, and missing dependencies


def test_make_probe_by_name() -> None:
    assert isinstance(makeProbe("sis", {"query": b"N"}), SISProbe)
    assert isinstance(makeProbe("send", {"send": b"P", "expect": b"Pwr"}), SendExpectProbe)
    assert isinstance(makeProbe("pjlink"), PJLinkProbe)
    assert isinstance(makeProbe("snmp", {"community": "x"}), SNMPProbe)
    with pytest.raises(ValueError, match="no stock probe 'ping'"):
        makeProbe("ping")
    with pytest.raises(ValueError, match="timeout"):
        SISProbe(timeout=0)


def test_snmp_probe_without_pyasn1_says_how_to_install_it(monkeypatch: Any) -> None:
    from twisted_ch.service import probes

    probes._asn1.cache_clear()
    for name in [m for m in sys.modules if m == "pyasn1" or m.startswith("pyasn1.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyasn1", None)
    try:
        with pytest.raises(ProbeUnavailable, match=r"twisted_ch\[snmp\]"):
            SNMPProbe()
        # the other probes do not need it
        SISProbe()
    finally:
        probes._asn1.cache_clear()


@pytest_twisted.ensureDeferred
async def test_probes_work_from_a_program_thread_too() -> None:
    from twisted_ch.program import Program

    projector = PJLinkServer(reactor, password="pw")
    projector.start()
    probe = PJLinkProbe(password="pw", timeout=1.0)
    program = Program(reactor, name="probe-test")

    def run() -> tuple[object, object, str]:
        # ControlScript style: blocking calls, plain values
        interface = EndpointInterface(TCP4ClientEndpoint(reactor, "127.0.0.1", projector.port))
        handler = GetConnectionHandler(interface, probe, pollFrequency=60)
        probe.attach(handler)
        connected = handler.Connect()
        answer = probe(handler)
        handler.Disconnect()
        return connected, answer, handler.ConnectionStatus

    try:
        connected, answer, status = await bounded(program.runCallable(run))
        assert (connected, answer, status) == ("Connected", True, "Disconnected")
    finally:
        await bounded(program.stop())
        await bounded(projector.shutdown())


def test_send_probe_errors_and_settings_read_as_written() -> None:
    """No bytes repr (doubled backslashes); control bytes of send and expect shown alike."""
    from twisted_ch.service.probes import SendExpectProbe, SISProbe

    probe = SendExpectProbe(b"Q\r", b"OK\r\n", timeout=1.5)
    assert probe.describe()["send"] == "Q\\r"
    assert probe.describe()["expect"] == "OK\\r\\n"
    assert probe._judge(b"", object()) is False
    assert probe.lastProblem == "no answer to Q\\r matching OK\\r\\n within 1.5 s"
    # a pattern written with regex escapes keeps its single backslashes
    written = SendExpectProbe(b"Q\r", rb"OK\r\n\d+")
    assert written.describe()["expect"] == "OK\\r\\n\\d+"
    sis = SISProbe(b"Q\r")
    assert sis.describe()["query"] == "Q\\r"
    assert sis._judge(b"", object()) is False
    assert sis.lastProblem == "no answer to Q\\r within 2 s"
