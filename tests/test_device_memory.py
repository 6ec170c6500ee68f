"""
What a configured device holds: equal immutable config values shared across a fleet's devices,
no per-instance dict on the per-device classes of the config and the connection lifecycle, and
no container made before it is needed.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from twisted_ch._connection import Connecting, Connection, Dropping, Idle, Stopped, Up, Waiting
from twisted_ch._retry import Retrier
from twisted_ch._summary import Summarizer
from twisted_ch.service._config import DeviceConfig, ProbeConfig, parseConfig


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


def test_per_device_classes_have_no_instance_dict() -> None:
    clock = Clock()
    machine = Connection(clock, lambda t: None, lambda p: None, lambda p: None, lambda: None, 1.0)
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
