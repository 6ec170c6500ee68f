"""
The devices service's start-up pace: build slices and first connects keep to a share of a core
(L{START_CPU}) when the service has a CPU clock, and a reload's added devices are built in
slices too.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from twisted_ch import tap
from twisted_ch.service._config import DeviceConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import (
    BUILD_SLICE,
    START_CPU,
    START_MACHINE,
    START_PAUSE_MAX,
    DevicesService,
    _Pacer,
    availableCores,
    startShare,
)


def _devices(n: int, prefix: str = "d", port: int = 9) -> list[DeviceConfig]:
    return [DeviceConfig(f"{prefix}{i}", f"tcp:host=127.0.0.1:port={port}") for i in range(n)]


def _pending(reactor: MemoryReactorClock, name: str) -> list[float]:
    """When the active delayed calls of C{name} are due, from now."""
    now = reactor.seconds()
    return [c.getTime() - now for c in reactor.getDelayedCalls() if c.active() and name in repr(c)]


def test_the_pacer_waits_for_the_cpu_used_over_its_share() -> None:
    cpu, wall = [0.0], [0.0]
    pacer = _Pacer(0.5, lambda: cpu[0], lambda: wall[0])
    assert pacer.pause() == 0.0
    cpu[0] += 0.010  # 10 ms of CPU in 10 ms of wall: 5 ms over half a core
    wall[0] += 0.010
    assert pacer.pause() == pytest.approx(0.010)  # 10 ms idle pays the 5 ms back
    wall[0] += 0.010  # idle as asked
    assert pacer.pause() == pytest.approx(0.0)
    wall[0] += 5.0
    assert pacer.pause() == 0.0
    cpu[0] += 0.004  # the idle time before is no credit for a burst after it
    assert pacer.pause() == pytest.approx(0.008)
    with pytest.raises(ValueError, match="share"):
        _Pacer(0, lambda: 0.0, lambda: 0.0)


def test_with_a_cpu_clock_a_busy_slice_is_followed_by_a_pause() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(3 * BUILD_SLICE))
    service.sliceClock = lambda: 0.0  # slices by count
    cpu = [0.0]
    service.cpuClock = lambda: cpu[0]

    def costly(name: str) -> None:
        cpu[0] += 0.0002  # a device takes 0.2 ms of CPU to build: 20 ms a slice

    service.deviceAdded.append(costly)
    service.startService()
    assert len(service.handlers) == BUILD_SLICE
    # 20 ms of CPU in no time: the next slice waits 20 ms / START_CPU (at most START_PAUSE_MAX)
    [due] = _pending(reactor, "_buildSlice")
    assert due == pytest.approx(min(0.0002 * BUILD_SLICE / START_CPU, START_PAUSE_MAX))
    assert due > 0
    reactor.advance(due / 2)
    assert len(service.handlers) == BUILD_SLICE  # still idle
    while service._toBuild:
        reactor.advance(0.005)
    assert len(service.handlers) == 3 * BUILD_SLICE
    service.stopService()
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


@pytest.mark.parametrize("share", [0.5, 0.25])
def test_a_smaller_start_share_makes_the_same_slice_wait_longer(share: float) -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(2 * BUILD_SLICE))
    service.sliceClock = lambda: 0.0
    cpu = [0.0]
    service.cpuClock = lambda: cpu[0]
    service.startShare = share

    def costly(name: str) -> None:
        cpu[0] += 0.0001  # 10 ms a slice

    service.deviceAdded.append(costly)
    service.startService()
    [due] = _pending(reactor, "_buildSlice")
    assert due == pytest.approx(0.0001 * BUILD_SLICE / share)  # 20 ms at 0.5, 40 at 0.25
    service.stopService()


def test_shards_of_one_machine_share_half_its_cores_at_start() -> None:
    assert START_MACHINE == 0.5
    assert startShare(2, 1) == START_CPU  # one process: half a core
    assert startShare(2, 2) == START_CPU
    assert startShare(2, 3) == pytest.approx(1 / 3)  # bench scale: 50,000 devices, 3 shards
    assert startShare(8, 3) == START_CPU  # never more than START_CPU
    assert startShare(1, 4) == pytest.approx(0.125)
    assert startShare(1.5, 0) == START_CPU  # no shards given: one process


def test_available_cores_are_the_affinity_or_the_control_groups_quota(tmp_path: Path) -> None:
    import os

    affinity = float(len(os.sched_getaffinity(0)))
    cpuMax = tmp_path / "cpu.max"
    assert availableCores(tmp_path / "absent") == affinity
    cpuMax.write_text("max 100000\n")
    assert availableCores(cpuMax) == affinity
    cpuMax.write_text("50000 100000\n")  # half a CPU
    assert availableCores(cpuMax) == min(affinity, 0.5)
    cpuMax.write_text("garbage\n")
    assert availableCores(cpuMax) == affinity


def _fleet(tmp_path: Path) -> str:
    path = tmp_path / "fleet.toml"
    path.write_text('[[device]]\nname = "a"\nendpoint = "tcp:host=127.0.0.1:port=9"\n')
    return str(path)


@pytest.mark.parametrize(
    ("args", "share"),
    [
        ([], START_CPU),
        (["--shard", "1/3"], 1 / 3),
        (["--shard", "2/2"], START_CPU),
        (["--shard", "1/3", "--start-cpu", "0.5"], 0.5),
        (["--start-cpu", "0.2"], 0.2),
    ],
)
def test_twistd_paces_start_up_by_shards_per_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], share: float
) -> None:
    monkeypatch.setattr(tap, "availableCores", lambda: 2.0)
    options = tap.Options()
    options.parseOptions(["--config", _fleet(tmp_path), *args])
    top = tap.makeService(options)
    assert top.devices is not None and top.devices.startShare == pytest.approx(share)


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "half", "nan"])
def test_a_start_share_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    from twisted.python import usage

    options = tap.Options()
    with pytest.raises(usage.UsageError, match="--start-cpu must be above 0 and at most 1"):
        options.parseOptions(["--config", _fleet(tmp_path), "--start-cpu", value])


def test_without_a_cpu_clock_slices_follow_each_other_at_once() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(3 * BUILD_SLICE))
    service.sliceClock = lambda: 0.0
    service.startService()
    assert _pending(reactor, "_buildSlice") == [0.0]
    service.stopService()


def test_twistd_gives_the_devices_service_the_reactor_threads_cpu_clock(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('[[device]]\nname = "a"\nendpoint = "tcp:host=127.0.0.1:port=9"\n')
    options = tap.Options()
    options.parseOptions(["--config", str(path)])
    top = tap.makeService(options)
    assert top.devices is not None and top.devices.cpuClock is time.thread_time


def test_a_reload_that_adds_many_devices_builds_them_in_slices() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(3))
    service.sliceClock = lambda: 0.0
    service.startService()
    reactor.advance(0)
    assert len(service.handlers) == 3
    added = _devices(3 * BUILD_SLICE, prefix="new")
    seen: list[int] = []  # what another call of the reactor's sees between two slices
    reactor.callLater(0, lambda: seen.append(len(service.handlers)))
    diff, _ = service.reload([*_devices(3), *added], [])
    assert len(diff.added) == 3 * BUILD_SLICE
    assert len(service.handlers) == 3 + BUILD_SLICE  # one slice in the reload's turn
    assert service.starting
    reactor.advance(0)
    assert seen and seen[0] < 3 + 3 * BUILD_SLICE
    assert len(service.handlers) == 3 + 3 * BUILD_SLICE
    # and their first connects are paced like the start's
    while service.starting and reactor.seconds() < 10:
        for connector in list(service._outstanding):
            service._answered(None, connector)
        reactor.advance(0.01)
    assert len(reactor.tcpClients) == 3 + 3 * BUILD_SLICE
    service.stopService()
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_a_reload_during_the_build_drops_removed_devices_and_builds_changed_ones_anew() -> None:
    reactor = MemoryReactorClock()
    devices = _devices(2 * BUILD_SLICE)
    service = DevicesService(reactor, Registry(), devices)
    service.sliceClock = lambda: 0.0
    service.startService()
    assert len(service.handlers) == BUILD_SLICE
    last, changed = devices[-1], devices[-2]
    moved = DeviceConfig(changed.name, "tcp:host=127.0.0.1:port=10")
    diff, _ = service.reload([*devices[:-2], moved], [])
    assert diff.removed == (last.name,) and diff.changed == (changed.name,)
    reactor.advance(0)
    assert last.name not in service.handlers
    assert len(service.handlers) == 2 * BUILD_SLICE - 1
    entry = service.registry.find(changed.name)
    assert entry is not None and entry.endpoint == moved.endpoint
    service.stopService()


def test_a_look_at_the_start_examines_at_most_a_slice_and_not_the_connected_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import _services

    monkeypatch.setattr(_services, "START_WATCH_SLICE", 10)
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(25))
    service.sliceClock = lambda: 0.0
    service.startService()
    for name in ("d0", "d1"):
        service.handlers[name]._status = "Connected"
    for _ in range(3):  # one pass over the 25, 10 at a time
        reactor.advance(_services.START_WATCH)
    assert service._seen == 2
    assert {name for name, _ in service._unseen} == {f"d{i}" for i in range(2, 25)}
    for handler in service.handlers.values():
        handler._status = "Connected"
    reactor.advance(_services.START_WATCH)
    assert service._seen == 12  # a look examines 10 at most
    assert service._watching is not None
    reactor.advance(_services.START_WATCH)
    reactor.advance(_services.START_WATCH)
    assert service._seen == 25
    assert service._watching is None and not service._unseen  # the start-up line came
    service.stopService()
