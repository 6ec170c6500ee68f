"""
Churn under a frozen heap: the garbage cycles reconnects and removed devices leave among frozen
objects are reclaimed by a full collection once the churn since the last one is a fraction of
the fleet (service/_services.py's GC_REFREEZE), and never without churn.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from twisted_ch._link import attemptsMade
from twisted_ch.endpoints import _strings
from twisted_ch.service import _services
from twisted_ch.service._config import DeviceConfig, ProbeConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import ChandlerService, DevicesService
from twisted_ch.testing import FakeEndpoint


def fleet(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> tuple[Clock, ChandlerService, DevicesService, list[DeviceConfig]]:
    """A started ChandlerService (its collector tuned) of C{count} devices on FakeEndpoints."""
    clock = Clock()

    def fake(reactor: Any, text: str) -> FakeEndpoint:
        return FakeEndpoint(clock)  # (kept by its interface only)

    monkeypatch.setattr(_strings, "clientFromString", fake)
    monkeypatch.setattr(_services, "raiseDescriptorLimit", lambda: (1024, 1024))
    registry = Registry()
    top = ChandlerService(clock, registry)
    top.handleSIGTERM = False
    top.tuneGC = True
    configs = [
        DeviceConfig(
            f"d{i}", "tcp:host=127.0.0.1:port=9", probe=ProbeConfig("sis"), pollFrequency=10.0
        )
        for i in range(count)
    ]
    devices = DevicesService(clock, registry, configs, startRate=1000)
    devices.setServiceParent(top)
    top.devices = devices
    top.startService()
    while devices.starting:
        clock.advance(_services.START_TICK)
    clock.advance(_services.GC_SETTLE_CHECK)  # frozen with its connections
    return clock, top, devices, configs


@pytest.fixture
def restoreGC() -> Any:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.enable()
    gc.set_threshold(*threshold)


@pytest.fixture
def unbufferedLog() -> Any:
    """
    Events not held by the global log's start-up buffer (twistd empties it as it starts logging;
    a test process never does): events name the devices they are about, which would keep them.
    """
    from twisted.logger import globalLogBeginner, globalLogPublisher

    buffer = getattr(globalLogBeginner, "_temporaryObserver", None)
    if buffer is not None:
        globalLogPublisher.removeObserver(buffer)
    yield
    if buffer is not None:
        globalLogPublisher.addObserver(buffer)


def test_every_connect_attempt_is_counted() -> None:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    endpoint.refuse = True
    from twisted_ch._link import DeviceLink

    link = DeviceLink(endpoint, clock, "d")
    before = attemptsMade()
    link.connect()
    link.connect()
    assert attemptsMade() == before + 2


def test_devices_removed_by_a_reload_are_reclaimed_though_frozen(
    monkeypatch: pytest.MonkeyPatch, restoreGC: None, unbufferedLog: None
) -> None:
    clock, top, devices, configs = fleet(monkeypatch, 20)
    assert all(h.Interface.link.connected for h in devices.handlers.values())
    removed = [weakref.ref(h) for h in devices.handlers.values()][10:]
    _, done = devices.reload(configs[:10], [])
    clock.advance(3)  # the links are closed (a FakeTransport's close comes a turn later)
    assert done.called and devices.removedDevices == 10
    gc.collect()
    # a handler's link, timer and probe refer to each other: frozen, they are not collected
    assert sum(r() is not None for r in removed) == 10
    clock.advance(_services.GC_REFREEZE)  # 10 removals: half the fleet (GC_CHURN_MIN lowered)
    assert sum(r() is not None for r in removed) == 10, "churn below GC_CHURN_MIN"
    monkeypatch.setattr(_services, "GC_CHURN_MIN", 5)
    clock.advance(_services.GC_REFREEZE)
    assert [r() for r in removed if r() is not None] == []
    top.stopService()


class _GC:
    """The gc module as the service uses it, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_threshold(self) -> tuple[int, int, int]:
        return (700, 10, 10)

    def set_threshold(self, *threshold: int) -> None:
        self.calls.append("threshold")

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def disable(self) -> None:
        self.calls.append("disable")

    def enable(self) -> None:
        self.calls.append("enable")

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect{generation}")
        return 0


def test_a_full_collection_only_after_churn_of_a_fraction_of_the_fleet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = [0]
    monkeypatch.setattr(_services, "attemptsMade", lambda: attempts[0])
    monkeypatch.setattr(_services, "GC_CHURN_MIN", 10)
    fake = _GC()
    monkeypatch.setattr(_services, "gc", fake)
    clock, top, devices, configs = fleet(monkeypatch, 40)
    assert fake.calls == ["threshold", "freeze", "disable", "freeze", "enable"]
    del fake.calls[:]
    attempts[0] += 19  # 19 reconnects of 40 devices: below GC_CHURN (a half)
    clock.advance(_services.GC_REFREEZE)
    assert fake.calls == ["collect2", "freeze"]
    del fake.calls[:]
    devices.reload(configs[:39], [])  # a removed device: the churn is 20 of 40 devices now
    clock.advance(_services.GC_REFREEZE)
    assert fake.calls == ["unfreeze", "collect2", "freeze"]
    del fake.calls[:]
    attempts[0] += 5  # counted from the last full collection
    clock.advance(_services.GC_REFREEZE)
    assert fake.calls == ["collect2", "freeze"]
    top.stopService()


@pytest_twisted.ensureDeferred
async def test_a_lost_tcp_connection_is_freed_by_reference_counting() -> None:
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.task import deferLater

    from twisted_ch._link import DeviceLink
    from twisted_ch.testing import listenDevice, waitUntil

    server = listenDevice(reactor, {b"P": b"ok\r\n"})
    link = DeviceLink(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), reactor, "d")
    gc.collect()
    gc.disable()  # what is freed now is freed by reference counting, as when frozen
    try:
        for abort in (True, False):
            assert await link.connect() == "Connected"
            assert link.protocol is not None
            transport = weakref.ref(link.protocol.transport)
            server.dropClients(abort=abort)
            await waitUntil(reactor, lambda: link.protocol is None)
            await deferLater(reactor, 0)  # (the reactor lets go of it at the end of its turn)
            # Twisted's transport and its connector refer to each other: broken at the loss
            assert transport() is None
    finally:
        gc.enable()
        await link.stop()
        await server.shutdown()
