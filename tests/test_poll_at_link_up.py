"""
A fleet device's first keep-alive goes out when its link opens (Connected with the first
answer); a ControlScript handler's PollTimer keeps the reference's timing (the first tick one
pollFrequency after it starts).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.endpoints import _strings
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.service._config import DeviceConfig, ProbeConfig
from twisted_ch.service._services import buildHandler
from twisted_ch.testing import FakeEndpoint

#: an answer to the SIS probe's C{Q} (a firmware version)
ANSWER = b"1.23\r\n"


def fleetDevice(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, FakeEndpoint, Any]:
    clock = Clock()
    fake = FakeEndpoint(clock)
    monkeypatch.setattr(_strings, "clientFromString", lambda reactor, text: fake)
    cfg = DeviceConfig(
        "d",
        "tcp:host=127.0.0.1:port=23",
        probe=ProbeConfig("sis", {"query": "Q"}),
        pollFrequency=10.0,
        connectRetryTime=5.0,
        retryJitter=0.0,
    )
    handler, _ = buildHandler(clock, cfg)
    return clock, fake, handler


def test_a_fleet_device_is_Connected_with_the_first_answer_at_link_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, fake, handler = fleetDevice(monkeypatch)
    handler.Connect()
    assert fake.written() == b"Q"  # at once, not one pollFrequency (10 s) later
    assert handler.missedPolls == 1 and handler.polls == 1
    fake.respond(ANSWER)
    assert handler.ConnectionStatus == "Connected" and clock.seconds() == 0
    assert handler.missedPolls == 0
    # then the PollTimer's ticks as usual
    clock.advance(9.9)
    assert fake.written() == b""
    clock.advance(0.1)
    assert fake.written() == b"Q" and handler.polls == 2
    handler.Disconnect()


def test_a_link_up_probe_unanswered_counts_and_the_next_tick_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, fake, handler = fleetDevice(monkeypatch)
    handler.PollTimer.Change(1.5)  # a tick while the link-up probe (2 s timeout) still waits
    handler.Connect()
    assert fake.written() == b"Q" and handler.missedPolls == 1
    clock.advance(1.5)
    assert fake.written() == b"" and handler.polls == 1  # one poll in flight at most
    clock.advance(0.5)  # the probe's timeout: no answer, still one miss
    assert handler.missedPolls == 1 and handler.ConnectionStatus == "Unknown"
    clock.advance(1.0)
    assert fake.written() == b"Q" and handler.missedPolls == 2
    handler.Disconnect()


def test_a_fleet_device_probes_at_once_on_each_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, fake, handler = fleetDevice(monkeypatch)
    handler.Connect()
    fake.written()
    fake.respond(ANSWER)
    clock.advance(3.0)
    assert fake.transport is not None
    fake.transport.deviceResets()
    clock.advance(0)
    assert handler.ConnectionStatus == "Disconnected"
    clock.advance(5.0)  # connectRetryTime: the new link
    assert len(fake.attempts) == 2
    assert fake.written() == b"Q"  # at once on the new link
    fake.respond(ANSWER)
    assert handler.ConnectionStatus == "Connected" and clock.seconds() == 8.0
    handler.Disconnect()


def test_a_ControlScript_handler_first_polls_one_pollFrequency_after_Connect() -> None:
    clock = Clock()
    fake = FakeEndpoint(clock)
    interface = EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=fake)
    handler = GetConnectionHandler(
        interface, lambda h: h.Send(b"P"), DisconnectLimit=3, pollFrequency=10.0
    )
    assert not handler.pollAtLinkUp
    handler.Connect()
    assert fake.protocol is not None and fake.written() == b""  # connected, not polled yet
    clock.advance(9.9)
    assert fake.written() == b""
    clock.advance(0.1)
    assert fake.written() == b"P"
    handler.Disconnect()


def test_the_link_up_probe_goes_out_once_every_observer_knows_the_link_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a PJLink probe's session (an observer added after the handler) resets at link-up and then
    # waits for the greeting: the probe must not wait for the old link's
    clock = Clock()
    fake = FakeEndpoint(clock)
    monkeypatch.setattr(_strings, "clientFromString", lambda reactor, text: fake)
    cfg = DeviceConfig(
        "p",
        "tcp:host=127.0.0.1:port=4352",
        probe=ProbeConfig("pjlink", {"password": "demo"}),
        pollFrequency=10.0,
    )
    handler, probe = buildHandler(clock, cfg)
    handler.Connect()
    assert fake.written() == b""  # waits for the greeting
    fake.respond(b"PJLINK 1 498e4a67\r")
    sent = fake.written()
    assert sent.endswith(b"%1POWR ?\r") and len(sent) == 32 + 9  # the digest, then the query
    fake.respond(b"%1POWR=1\r")
    assert handler.ConnectionStatus == "Connected" and probe.authFailures == 0
    handler.Disconnect()
