"""
A trace asked for before its device exists starts when the device is built, before its link
opens: the first exchange (a login prompt, a greeting) is in it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from twisted_ch.protocols.device import WIRE_TAPS
from twisted_ch.service._config import parseConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import DevicesService
from twisted_ch.service._trace import WireTrace


def test_a_waiting_trace_taps_the_device_as_soon_as_it_is_added() -> None:
    clock = Clock()
    links: dict[str, Any] = {}
    trace = WireTrace(clock, links.get)
    trace.start("projector", 1.0)
    link = object()
    links["projector"] = link
    assert link not in WIRE_TAPS  # not looked for again yet (the next look is 1 s later)
    trace.deviceAdded("projector")
    try:
        assert link in WIRE_TAPS  # at once, with no time passing
        trace.deviceAdded("another")  # no trace of that name: nothing happens
        assert list(WIRE_TAPS) == [link]
    finally:
        trace.stop("projector")
    assert link not in WIRE_TAPS


def test_the_devices_service_tells_each_device_built_before_connecting_it() -> None:
    clock = Clock()
    config = parseConfig(
        {
            "device": [
                {"name": name, "endpoint": "tcp:host=127.0.0.1:port=9", "probe": "sis"}
                for name in ("a", "b")
            ]
        }
    )
    devices = DevicesService(clock, Registry(clock=clock), config.devices)
    seen: list[tuple[str, list[str]]] = []

    def added(name: str) -> None:
        seen.append((name, [n for n, h in devices.handlers.items() if h.link.state != "closed"]))

    devices.deviceAdded.append(added)
    devices.deviceAdded.insert(0, lambda name: 1 / 0)  # a failing observer stops nobody
    devices.startService()
    try:
        for _ in range(10):
            clock.advance(0)
        assert [name for name, _ in seen] == ["a", "b"]
        assert all(opening == [] for _, opening in seen)  # each told before any connect
    finally:
        devices.stopService()
