"""
What a configured device holds: equal immutable config values shared across a fleet's devices,
no per-instance dict on the per-device classes of the config and the connection lifecycle, no
instance C{__dict__} built on the others, and no container made before it is needed.
"""

from __future__ import annotations

import gc

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from twisted_ch._connection import (
    Connecting,
    Connection,
    Dropping,
    Idle,
    State,
    Stopped,
    Up,
    Waiting,
)
from twisted_ch._retry import Retrier
from twisted_ch._summary import Summarizer
from twisted_ch.service._config import DeviceConfig, ProbeConfig, parseConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import DevicesService
from twisted_ch.testing import SIS_RESPONSES, DeviceServer, waitUntil


def _fleet(n: int) -> list[DeviceConfig]:
    data = {
        "device": [
            {
                "name": f"d{i}",
                "endpoint": f"tcp:host=127.0.0.1:port={1000 + i}",
                "probe": {"type": "sis", "query": "Q"},
                "pollFrequency": 10.0 + 0.0,  # a float of its own per table, as a decoder gives
                "room": "hall" + "",
            }
            for i in range(n)
        ]
    }
    # each table's values are objects of their own, as a decoded file's are
    data["device"] = [
        {k: (v if not isinstance(v, float) else float(repr(v))) for k, v in t.items()}
        for t in data["device"]
    ]
    return list(parseConfig(data, "fleet.toml").devices)


def test_devices_of_one_file_share_their_equal_probe_configs_and_values() -> None:
    a, b, c = _fleet(3)
    assert a.probe is b.probe is c.probe
    assert a.probe == ProbeConfig("sis", {"timeout": 2.0, "query": b"Q"})
    assert a.pollFrequency is b.pollFrequency == 10.0
    assert a.room is b.room == "hall"
    assert a.name != b.name and a.endpoint != b.endpoint


def test_unequal_probes_are_not_shared() -> None:
    data = {
        "device": [
            {"name": "a", "endpoint": "tcp:host=127.0.0.1:port=1", "probe": "sis"},
            {
                "name": "b",
                "endpoint": "tcp:host=127.0.0.1:port=1",
                "probe": {"type": "sis", "query": "N"},
            },
        ]
    }
    a, b = parseConfig(data, "fleet.toml").devices
    assert a.probe is not b.probe and a.probe != b.probe


class _Owner:
    def connectionAttempt(self, timeout: float | None) -> None:
        pass

    def connectionClose(self, transport: object) -> None:
        pass

    def connectionAbort(self, transport: object) -> None:
        pass

    def connectionRetry(self) -> None:
        pass

    def connectionEntered(self, state: State) -> None:
        pass


def test_per_device_classes_have_no_instance_dict() -> None:
    clock = Clock()
    machine = Connection(clock, _Owner(), 1.0)
    objects = [
        DeviceConfig("a", "tcp:host=127.0.0.1:port=1"),
        ProbeConfig("sis", {}),
        machine,
        Retrier(),
        Summarizer(clock),
        Idle(),
        Connecting(None, True),
        Up(object(), True),
        Dropping(None, True),
        Waiting(None),
        Stopped(),
    ]
    assert [type(o).__name__ for o in objects if hasattr(o, "__dict__")] == []


def test_a_summarizer_makes_its_table_at_its_first_event() -> None:
    from twisted.logger import Logger, LogLevel

    clock = Clock()
    quiet, used = Summarizer(clock), Summarizer(clock)
    assert quiet._kinds is used._kinds and not quiet._kinds  # one shared, empty
    used.emit(Logger(observer=lambda event: None), "k", LogLevel.info, "x")
    assert used._kinds is not quiet._kinds and list(used._kinds) == ["k"]
    assert not quiet._kinds and quiet.pending == 0
    used.stop()
    quiet.stop()


def _dictBuilt(obj: object, attribute: str) -> bool:
    """
    Whether C{obj}'s instance C{__dict__} was built (asked for), without asking for it: until
    then CPython keeps the attributes inline, and the garbage collector sees them one by one;
    after, it sees the dict that holds C{attribute}.
    """
    return any(type(r) is dict and attribute in r for r in gc.get_referents(obj))


@pytest_twisted.ensureDeferred
async def test_a_polled_fleet_device_builds_no_dicts_and_no_spare_containers() -> None:
    """
    A configured SIS device on real loopback, after polls answered and its status rows: its
    handler, interface, link and protocol keep their attributes inline (a built dict is 64
    bytes more each, for every device); the link's lifecycle holds the link, not five bound
    methods of it; what a link needs only when something goes wrong is not made.
    """
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    config = parseConfig(
        {
            "device": [
                {
                    "name": "sis-1",
                    "endpoint": f"tcp:host=127.0.0.1:port={server.port}",
                    "probe": "sis",
                    "pollFrequency": 0.05,
                }
            ]
        }
    )
    registry = Registry(clock=reactor)
    devices = DevicesService(reactor, registry, config.devices, startRate=1000)
    devices.startService()
    try:
        handler = devices.handlers["sis-1"]
        await waitUntil(
            reactor, lambda: handler.ConnectionStatus == "Connected" and handler.polls >= 3
        )
        registry.rows()
        registry.snapshot()
        interface = handler.Interface
        link = interface.link
        protocol = link.protocol
        assert protocol is not None and link.connected
        # bytes no wait claims (a banner, an unsolicited line) go to both ReceiveData events
        protocol.dataReceived(b"(c) Copyright 2026, Extron Electronics\r\n")
        built = {
            name: _dictBuilt(obj, attribute)
            for name, obj, attribute in [
                ("handler", handler, "_WrappedInterface"),
                ("interface", interface, "_link"),
                ("link", link, "connection"),
                ("protocol", protocol, "link"),
            ]
        }
        assert built == dict.fromkeys(built, False)
        assert link.connection.owner is link
        assert (link._droppedSites, link._failures, link._attemptWaiters) == (None, None, None)
    finally:
        await devices.stopService()
        await server.shutdown()
