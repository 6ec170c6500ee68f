"""
A fleet at scale: the reactor's stall monitor, the start-up in slices, a shard's config read of
its own devices, and the descriptor budget's advice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python import usage

from twisted_ch import tap
from twisted_ch.service._config import ConfigError, DeviceConfig
from twisted_ch.service._limits import DescriptorBudgetError, checkDescriptorBudget
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import (
    BUILD_SLICE,
    START_WATCH,
    START_WATCH_CHECKS,
    ChandlerService,
    DevicesService,
    Shard,
)
from twisted_ch.service._stalls import STALL_REPORT, StallMonitor


@pytest.fixture
def events() -> Any:
    """Every log event emitted during the test."""
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


# the stall monitor


def test_a_stall_made_on_purpose_is_measured_counted_and_warned_about(
    events: list[dict[str, Any]],
) -> None:
    clock = Clock()
    monitor = StallMonitor(clock, tick=0.01, over=0.05, warn=0.25, report=0)
    monitor.start()
    for _ in range(10):
        clock.advance(0.01)  # on time: no stall
    assert monitor.longest == pytest.approx(0.0, abs=1e-9) and monitor.over == 0
    clock.advance(0.3)  # the reactor held for 0.3 s: the check runs 0.29 s late
    assert monitor.longest == pytest.approx(0.29)
    assert monitor.over == 1
    clock.advance(0.07)  # 0.06 s late: counted, not warned about
    assert monitor.over == 2 and monitor.longest == pytest.approx(0.29)
    warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
    assert [round(e["stallMs"]) for e in warnings] == [290]
    monitor.stop()
    assert clock.getDelayedCalls() == [] and not monitor.running


def test_the_report_line_gives_the_period_s_longest_stall_and_the_longest_since_start(
    events: list[dict[str, Any]],
) -> None:
    clock = Clock()
    monitor = StallMonitor(clock, tick=0.01, report=1.0)
    monitor.start()
    clock.advance(0.11)  # 100 ms late
    while clock.seconds() < 1.0:
        clock.advance(0.01)
    clock.advance(0.03)  # the next period: 20 ms late
    while clock.seconds() < 2.05:
        clock.advance(0.01)
    reports = [e for e in events if e.get("reactorStall")]
    assert [round(e["periodMs"]) for e in reports] == [100, 20]
    assert [round(e["longestMs"]) for e in reports] == [100, 100]
    assert [e["periodOver"] for e in reports] == [1, 0]
    monitor.stop()


def test_a_stall_the_thread_was_busy_for_is_told_from_one_it_waited_through() -> None:
    clock = Clock()
    cpu = [0.0]
    monitor = StallMonitor(clock, tick=0.01, report=0, cpu=lambda: cpu[0])
    monitor.start()
    cpu[0] += 0.01
    clock.advance(0.21)  # 200 ms late, the thread busy for 10 ms: the machine was busy
    assert monitor.longest == pytest.approx(0.2)
    assert monitor.longestCPU == pytest.approx(0.0, abs=1e-9)
    cpu[0] += 0.09
    clock.advance(0.1)  # 90 ms late and the thread busy all the while: the reactor's own
    assert monitor.longest == pytest.approx(0.2)
    assert monitor.busiest == pytest.approx(0.08)
    monitor.stop()


def test_the_monitor_runs_only_while_the_reactor_runs_the_service() -> None:
    reactor = MemoryReactorClock()
    top = ChandlerService(reactor, Registry())
    top.handleSIGTERM = False
    top.stallMonitor = StallMonitor(reactor)
    top.startService()
    assert not top.stallMonitor.running  # not before the reactor runs
    reactor.run()
    assert top.stallMonitor.running
    top.stopService()
    assert not top.stallMonitor.running
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_stall_report_option(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[status]\nlisten = "off"\n')
    service = tap.makeService(_parsed("--config", str(config)))
    assert service.stallMonitor is not None  # type: ignore[attr-defined]
    assert service.stallMonitor.report == STALL_REPORT  # type: ignore[attr-defined]
    service = tap.makeService(_parsed("--config", str(config), "--stall-report", "5"))
    assert service.stallMonitor.report == 5.0  # type: ignore[attr-defined]
    service = tap.makeService(_parsed("--config", str(config), "--stall-report", "0"))
    assert service.stallMonitor is None  # type: ignore[attr-defined]
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(usage.UsageError, match="--stall-report"):
            _parsed("--config", str(config), "--stall-report", bad)


def _parsed(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


# the start-up in slices


def _devices(n: int) -> list[DeviceConfig]:
    return [DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9") for i in range(n)]


def test_devices_are_built_a_slice_per_reactor_turn() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(2 * BUILD_SLICE + 10))
    service.sliceClock = lambda: 0.0  # by count
    service.startService()
    assert len(service.handlers) == BUILD_SLICE and service.starting
    seen: list[int] = []  # what another call of the reactor's sees between slices
    reactor.callLater(0, lambda: seen.append(len(service.handlers)))
    reactor.advance(0)
    assert seen == [2 * BUILD_SLICE]
    assert len(service.handlers) == 2 * BUILD_SLICE + 10
    service.stopService()
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_a_slice_ends_when_its_time_is_up() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(50))
    ticks = iter(range(1000))
    service.sliceClock = lambda: next(ticks) * 0.004  # each device takes 4 ms
    service.startService()
    assert len(service.handlers) == 2  # 8 ms >= the slice's 5 ms
    while service._toBuild:
        reactor.advance(0)
    assert len(service.handlers) == 50
    service.stopService()


def test_stopping_while_building_builds_no_more() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(3 * BUILD_SLICE))
    service.sliceClock = lambda: 0.0
    service.startService()
    service.stopService()
    reactor.advance(1)
    assert service.handlers == {} and not service.starting
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_a_reload_while_building_goes_on_building_in_slices() -> None:
    reactor = MemoryReactorClock()
    devices = _devices(2 * BUILD_SLICE)
    service = DevicesService(reactor, Registry(), devices)
    service.sliceClock = lambda: 0.0
    built: list[str] = []
    service.deviceAdded.append(built.append)
    service.startService()
    diff, _ = service.reload([*devices, DeviceConfig("new", "tcp:host=127.0.0.1:port=9")], [])
    assert diff.added == ("new",) and len(diff.unchanged) == 2 * BUILD_SLICE
    assert len(service.handlers) == BUILD_SLICE  # the rest is not built in this turn
    reactor.advance(0)
    assert len(service.handlers) == 2 * BUILD_SLICE + 1
    assert built == [d.name for d in devices] + ["new"]  # after the ones queued before it
    service.stopService()


def test_the_start_up_line_says_how_many_are_connected(events: list[dict[str, Any]]) -> None:
    reactor = MemoryReactorClock()  # answers no connect: nothing becomes Connected
    service = DevicesService(reactor, Registry(), _devices(3))
    service.startService()
    for _ in range(START_WATCH_CHECKS + 1):
        reactor.advance(START_WATCH)
    lines = [e for e in events if e.get("startup")]
    assert [(e["connected"], e["devices"]) for e in lines] == [(0, 3)]
    service.stopService()


def test_the_start_up_line_comes_once_every_device_is_connected(
    events: list[dict[str, Any]],
) -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(3))
    service.startService()
    reactor.advance(START_WATCH)
    assert not [e for e in events if e.get("startup")]
    for handler in service.handlers.values():
        handler._status = "Connected"  # (as its first answered poll would make it)
    reactor.advance(START_WATCH)
    lines = [e for e in events if e.get("startup")]
    assert [(e["connected"], e["devices"]) for e in lines] == [(3, 3)]
    service.stopService()


def test_a_big_config_starts_with_one_line_not_one_per_device(
    events: list[dict[str, Any]],
) -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), _devices(150))
    service.startService()
    while service._toBuild:
        reactor.advance(0)
    infos = [e for e in events if e.get("log_level") == LogLevel.info]
    assert not [e for e in infos if "watching {endpoint}" in e.get("log_format", "")]
    assert [e["devices"] for e in infos if "devices" in e and "watching" in e["log_format"]] == [
        150
    ]
    service.stopService()


# a shard reads its own devices


def _config(path: Path, names: list[str], bad: str | None = None) -> Path:
    lines = []
    for name in names:
        lines += ["[[device]]", f'name = "{name}"', 'endpoint = "tcp:host=127.0.0.1:port=9"']
        if name == bad:
            lines.append("pollFrequency = -1")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def test_a_shard_checks_only_its_own_devices_and_names_a_broken_one_by_its_index(
    tmp_path: Path,
) -> None:
    names = [f"dev-{i}" for i in range(30)]
    bad = names[17]
    path = _config(tmp_path / "site.toml", names, bad)
    home = Shard(Shard.of(bad, 3), 3)
    other = Shard(home.index % 3 + 1, 3)
    config = tap.loadShardConfig(str(path), other)
    assert {d.name for d in config.devices} == {n for n in names if other.owns(n)}
    with pytest.raises(ConfigError, match=r"device\[17\]\.pollFrequency"):
        tap.loadShardConfig(str(path), home)


def test_a_name_given_twice_is_refused_by_every_shard(tmp_path: Path) -> None:
    path = _config(tmp_path / "site.toml", ["a", "b", "c", "a"])
    for index in (1, 2, 3):
        with pytest.raises(ConfigError, match=r"device\[3\]\.name"):
            tap.loadShardConfig(str(path), Shard(index, 3))


def test_the_shard_option_reads_only_the_shard_s_devices(tmp_path: Path) -> None:
    names = [f"dev-{i}" for i in range(30)]
    path = _config(tmp_path / "site.toml", names, names[17])
    home = Shard.of(names[17], 3)
    other = home % 3 + 1
    options = _parsed("--config", str(path), "--shard", f"{other}/3", "--status-port", "off")
    assert {d.name for d in options["parsedConfig"].devices} == {
        n for n in names if Shard(other, 3).owns(n)
    }
    with pytest.raises(usage.UsageError, match=r"device\[17\]"):
        _parsed("--config", str(path), "--shard", f"{home}/3", "--status-port", "off")


# the descriptor budget


def test_a_budget_the_hard_limit_cannot_hold_says_how_many_shards_would() -> None:
    with pytest.raises(DescriptorBudgetError, match=r"over 3 or more processes \(--shard I/3\)"):
        checkDescriptorBudget(50_000, {}, 32, 20_000, 50_000, hard=20_000)
    # 17,000 devices fit in a shard
    assert checkDescriptorBudget(17_000, {}, 32, 20_000, 17_000, hard=20_000) < 20_000


def test_a_soft_limit_that_could_not_be_raised_is_named() -> None:
    with pytest.raises(DescriptorBudgetError, match="soft limit could not be raised") as e:
        checkDescriptorBudget(2_000, {}, 32, 1_024, 2_000, hard=20_000)
    assert "--shard" not in str(e.value)
    with pytest.raises(DescriptorBudgetError, match=r"hard limit \(unlimited\)"):
        checkDescriptorBudget(2_000, {}, 32, 1_024, 2_000, hard=-1)


def test_a_shard_too_big_for_the_limit_refuses_to_start_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import _services

    monkeypatch.setattr(_services, "raiseDescriptorLimit", lambda: (1_024, 1_024))
    service = DevicesService(MemoryReactorClock(), Registry(), _devices(2_000))
    with pytest.raises(SystemExit, match=r"3 or more processes \(--shard I/3\)"):
        service.startService()


# building a device: its endpoint description is parsed once


def test_a_tcp_description_is_parsed_once_into_twisted_s_own_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted.internet import endpoints

    from twisted_ch.endpoints._strings import clientFromString

    calls: list[str] = []
    parse = endpoints._parse

    def counting(description: str) -> Any:
        calls.append(description)
        return parse(description)

    monkeypatch.setattr(endpoints, "_parse", counting)
    reactor = MemoryReactorClock()
    description = "tcp:host=127.0.0.1:port=9:timeout=7"
    ours = clientFromString(reactor, description)
    assert calls == [description]
    theirs = endpoints.clientFromString(reactor, description)
    assert type(ours) is type(theirs)
    assert vars(ours) == vars(theirs)
    with pytest.raises(TypeError):  # Twisted's own error for an option it does not know
        clientFromString(reactor, "tcp:host=127.0.0.1:port=9:colour=red")
