"""
Whether a handler's link is wanted (issue 20, "the connection lifecycle"): one read-only
C{wanted} per handler kind, and the status code's outages read it (Clock-driven).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import rig
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

import twisted_ch.devices.extr_sis_generic as sis
from twisted_ch import GetConnectionHandler
from twisted_ch._runtime import Runtime, useRuntime
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import (
    EndpointInterface,
    EthernetServerInterfaceEx,
)
from twisted_ch.service._config import HealthConfig
from twisted_ch.service._outages import DeviceTrack
from twisted_ch.testing import FakeEndpoint


def _rig(clock: Any, keepAlive: Any, **kw: Any) -> tuple[Any, FakeEndpoint]:
    r = rig(keepAlive, clock=clock, record=(), pollFrequency=60, connectRetryTime=2, **kw)
    return r.handler, r.endpoint


def tcp(clock: Any) -> tuple[Any, FakeEndpoint]:
    return _rig(clock, None)


def udp(clock: Any) -> tuple[Any, FakeEndpoint]:
    return _rig(clock, lambda h: h.Send("q"), protocol="UDP")


def udpService(clock: Any) -> tuple[Any, FakeEndpoint]:
    def service(clock: Any, endpoint: FakeEndpoint) -> EndpointInterface:
        return EndpointInterface(endpoint, reactor=clock, connectionOriented=False, openNow=False)

    return _rig(clock, lambda h: h.Send("q"), interface=service)


def server(clock: Any) -> tuple[Any, None]:
    iface = EthernetServerInterfaceEx(9000, Interface="127.0.0.1", reactor=clock)
    return GetConnectionHandler(iface, serverTimeout=30), None


def moduleTcp(clock: Any) -> tuple[Any, FakeEndpoint]:
    endpoint = FakeEndpoint(clock)
    with useRuntime(Runtime(clock)):
        module = sis.EthernetClass("127.0.0.1", 23, Model="DVS 605", endpoint=endpoint)
        return GetConnectionHandler(module, "VideoMute"), endpoint


def moduleSerial(clock: Any) -> tuple[Any, FakeEndpoint]:
    endpoint = FakeEndpoint(clock)
    with useRuntime(Runtime(clock)):
        module = sis.SerialClass(ProcessorDevice("Main"), "COM1", endpoint=endpoint)
        return GetConnectionHandler(module, "VideoMute"), endpoint


KINDS: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    "module tcp": moduleTcp,
    "module serial": moduleSerial,
    "tcp": tcp,
    "udp": udp,
    "udp (service)": udpService,
    "server": server,
}

ACTIONS: dict[str, Callable[[Any], object]] = {
    "Connect": lambda h: h.Connect(),
    "Disconnect": lambda h: h.Disconnect(),
    "StartListen": lambda h: h.StartListen(),
    "StopListen": lambda h: h.StopListen(),
    "AutoReconnect=False": lambda h: setattr(h, "AutoReconnect", False),
    "PollTimer.Stop": lambda h: h.PollTimer.Stop(),
    "PollTimer.Pause": lambda h: h.PollTimer.Pause(),
}

#: (kind, the program's calls, wanted after them)
WANTED = [
    ("tcp", [], False),
    ("tcp", ["Connect"], True),
    ("tcp", ["Connect", "Disconnect"], False),
    ("tcp", ["Connect", "Disconnect", "Connect"], True),
    ("tcp", ["Connect", "AutoReconnect=False"], True),
    ("tcp", ["Connect", "PollTimer.Stop"], True),
    ("tcp", ["Connect", "PollTimer.Pause"], True),
    ("udp", [], True),  # the interface opened it (ControlScript: usable at once)
    ("udp", ["Connect"], True),
    ("udp", ["Connect", "Disconnect"], False),
    ("udp", ["Disconnect"], False),
    ("udp", ["Connect", "Disconnect", "Connect"], True),
    ("udp", ["Connect", "PollTimer.Stop"], True),
    ("udp (service)", [], False),
    ("udp (service)", ["Connect"], True),
    ("udp (service)", ["Connect", "Disconnect"], False),
    ("module tcp", [], False),
    ("module tcp", ["Connect"], True),
    ("module tcp", ["Connect", "Disconnect"], False),
    ("module serial", [], True),
    ("module serial", ["Connect"], True),
    ("module serial", ["Connect", "Disconnect"], False),
    ("server", [], False),
    ("server", ["StartListen"], True),
    ("server", ["StartListen", "StopListen"], False),
    ("server", ["StartListen", "StopListen", "StartListen"], True),
]


@pytest.mark.parametrize(("kind", "calls", "wanted"), WANTED)
def test_wanted(kind: str, calls: list[str], wanted: bool) -> None:
    clock = MemoryReactorClock()
    handler, _ = KINDS[kind](clock)
    for call in calls:
        ACTIONS[call](handler)
        clock.advance(0)
    assert handler.wanted is wanted
    with pytest.raises(AttributeError):
        handler.wanted = not wanted  # read-only


#: (kind, the program's calls before the device is lost, whether the status counts an outage)
OUTAGES = [
    ("tcp", ["Disconnect"], False),
    ("tcp", ["AutoReconnect=False"], True),
    ("tcp", ["PollTimer.Stop"], True),  # the guess from PollTimer.State said: no outage
    ("tcp", [], True),
    ("udp", ["Disconnect"], False),
    ("udp", ["PollTimer.Stop"], True),
]


@pytest.mark.parametrize(("kind", "calls", "outage"), OUTAGES)
def test_the_status_reads_wanted(kind: str, calls: list[str], outage: bool) -> None:
    clock = Clock()
    handler, endpoint = KINDS[kind](clock)
    handler.Connect()
    handler.ResponseAccepted()
    assert handler.ConnectionStatus == "Connected"
    track = DeviceTrack("d", handler, clock, HealthConfig())
    track.start()
    endpoint.refuse = True
    for call in calls:
        ACTIONS[call](handler)
    if handler.ConnectionStatus != "Disconnected":
        endpoint.transport.deviceResets()
        clock.advance(0)
    if handler.ConnectionStatus != "Disconnected":
        handler.OnDisconnected()
    assert handler.ConnectionStatus == "Disconnected"
    assert (track.downSince is not None) is outage
