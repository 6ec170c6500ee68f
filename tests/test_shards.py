"""
C{twistd chandler --shard I/N} (a stable subset of the config per shard, a status port and a
C{shard} label per shard) and the spread of the first connects when a big config starts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from twisted_ch import tap
from twisted_ch.service._config import DeviceConfig
from twisted_ch.service._metrics import metricsText
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._services import (
    START_OUTSTANDING,
    START_PATIENCE,
    START_TICK,
    DevicesService,
    Shard,
)


def writeConfig(path: Path, devices: list[str], servers: list[str] = (), status: str = "") -> Path:  # type: ignore[assignment]
    lines = []
    if status:
        lines += ["[status]", f'listen = "{status}"', ""]
    for name in devices:
        lines += ["[[device]]", f'name = "{name}"', 'endpoint = "tcp:host=127.0.0.1:port=9"', ""]
    for i, name in enumerate(servers):
        lines += ["[[server]]", f'name = "{name}"', f"port = {20000 + i}", ""]
    path.write_text("\n".join(lines))
    return path


def parsed(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


def test_three_shards_cover_every_device_and_server_exactly_once(tmp_path: Path) -> None:
    devices = [f"room-{i:03d}-{kind}" for i in range(200) for kind in ("dsp", "projector")]
    servers = [f"panel-{i}" for i in range(12)]
    config = writeConfig(tmp_path / "site.toml", devices, servers)
    seen: Counter[str] = Counter()
    sizes = []
    for i in (1, 2, 3):
        shard = parsed("--config", str(config), "--shard", f"{i}/3")["parsedConfig"]
        names = [d.name for d in shard.devices] + [s.name for s in shard.servers]
        seen.update(names)
        sizes.append(len(shard.devices))
    assert set(seen) == set(devices) | set(servers)
    assert set(seen.values()) == {1}, [n for n, k in seen.items() if k != 1]
    # a hash, not a partition by position: every shard gets a fair part
    assert all(len(devices) / 3 * 0.8 < n < len(devices) / 3 * 1.2 for n in sizes), sizes


def test_adding_or_removing_a_device_moves_no_other_device() -> None:
    names = [f"dev-{i}" for i in range(500)]
    before = {n: Shard.of(n, 4) for n in names}
    after = {n: Shard.of(n, 4) for n in [*names[:100], *names[101:], "a-new-device"]}
    assert all(after[n] == before[n] for n in after if n in before)
    # and the hash is the same in every process (not Python's salted hash())
    assert [Shard.of(n, 7) for n in ("switcher", "projector", "ups")] == [6, 7, 7]


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "1/0", "-1/2", ""])
def test_a_bad_shard_is_a_usage_error(tmp_path: Path, text: str) -> None:
    config = writeConfig(tmp_path / "site.toml", ["a"])
    with pytest.raises(usage.UsageError, match="--shard: expected"):
        parsed("--config", str(config), "--shard", text)


def test_shard_needs_a_config() -> None:
    with pytest.raises(usage.UsageError, match="--shard needs --config"):
        parsed("--shard", "1/2")


def test_each_shard_has_its_own_status_port(tmp_path: Path) -> None:
    config = writeConfig(tmp_path / "site.toml", ["a"], status="127.0.0.1:9300")
    listens = [
        parsed("--config", str(config), "--shard", f"{i}/3")["statusListen"] for i in (1, 2, 3)
    ]
    assert listens == [f"tcp:{p}:interface=127.0.0.1" for p in (9300, 9301, 9302)]
    # an explicit --status-port is taken as it is
    options = parsed("--config", str(config), "--shard", "2/3", "--status-port", "9500")
    assert options["statusListen"] == "tcp:9500:interface=127.0.0.1"
    # a status endpoint that is not a TCP port cannot be offset
    unix = writeConfig(tmp_path / "unix.toml", ["a"], status=f"unix:{tmp_path}/s.sock")
    with pytest.raises(usage.UsageError, match="own --status-port"):
        parsed("--config", str(unix), "--shard", "2/3")


class _Stats:
    ConnectionStatus = "Connected"

    def stats(self) -> dict[str, object]:
        return {"status": "Connected", "polls": 3, "misses": 0, "transitions": 1}


def test_every_metric_of_a_shard_carries_its_label() -> None:
    registry = Registry(shard="2/3")
    registry.add(Entry("switcher", _Stats()))
    text = metricsText(registry).decode()
    samples = [line for line in text.splitlines() if line.startswith("chandler_")]
    assert samples and all('shard="2/3"' in line for line in samples), samples
    assert registry.snapshot()["shard"] == "2/3"
    # not sharded: no label, as before
    plain = Registry()
    plain.add(Entry("switcher", _Stats()))
    assert "shard" not in metricsText(plain).decode()
    assert "shard" not in plain.snapshot()


def test_makeService_labels_the_shard(tmp_path: Path) -> None:
    config = writeConfig(tmp_path / "site.toml", ["a", "b"])
    service = tap.makeService(parsed("--config", str(config), "--shard", "1/2"))
    assert service.registry.shard == "1/2"  # type: ignore[attr-defined]


# the first connects of a big config


def test_first_connects_are_spread_and_every_device_is_shown_before_most_connect() -> None:
    reactor = MemoryReactorClock()
    devices = [DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9") for i in range(100)]
    service = DevicesService(reactor, Registry(), devices, startRate=1000)
    service.sliceClock = lambda: 0.0  # build slices by count only (BUILD_SLICE): no timing
    service.startService()
    assert len(service.registry.entries()) == 100  # shown (Unknown) before they connect
    batch = round(1000 * START_TICK)
    assert len(reactor.tcpClients) == batch
    steps = 1
    while len(reactor.tcpClients) < 100:
        reactor.advance(START_TICK)
        steps += 1
        assert len(reactor.tcpClients) == min(100, steps * batch)
    # in config order
    assert [c[1] for c in reactor.tcpClients] == [9] * 100
    assert not [c for c in reactor.getDelayedCalls() if "_connectBatch" in repr(c)]


def test_stopping_while_starting_leaves_no_timer_and_connects_no_more() -> None:
    reactor = MemoryReactorClock()
    devices = [DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9") for i in range(100)]
    service = DevicesService(reactor, Registry(), devices, startRate=1000)
    service.startService()
    reactor.advance(START_TICK)
    started = len(reactor.tcpClients)
    service.stopService()
    assert not [c for c in reactor.getDelayedCalls() if "_connectBatch" in repr(c)]
    reactor.advance(1)
    assert len(reactor.tcpClients) == started < 100


def test_a_device_added_while_running_connects_at_once() -> None:
    reactor = MemoryReactorClock()
    service = DevicesService(reactor, Registry(), [], startRate=1000)
    service.startService()
    service.add(DeviceConfig("late", "tcp:host=127.0.0.1:port=9"))
    assert len(reactor.tcpClients) == 1
    service.stopService()


def test_start_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="startRate"):
        DevicesService(MemoryReactorClock(), Registry(), [], startRate=0)


def test_unanswered_first_connects_hold_back_the_next_until_patience_runs_out() -> None:
    # MemoryReactorClock never answers a connect: the device gateway is slow (or off)
    reactor = MemoryReactorClock()
    devices = [DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9") for i in range(300)]
    service = DevicesService(reactor, Registry(), devices, startRate=1000)
    service.startService()
    while reactor.seconds() < START_PATIENCE - 1.5 * START_TICK:
        reactor.advance(START_TICK)
    assert len(reactor.tcpClients) == START_OUTSTANDING  # no more SYNs than a backlog takes
    reactor.advance(2 * START_TICK)
    assert len(reactor.tcpClients) > START_OUTSTANDING  # the first ones waited long enough
    service.stopService()


class _GC:
    """Records what the service asks of the garbage collector (the test process' is left alone)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threshold = (700, 10, 10)

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, *threshold: int) -> None:
        self.threshold = threshold  # type: ignore[assignment]
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


def test_the_connections_are_frozen_once_the_first_connects_are_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import _services

    fake = _GC()
    monkeypatch.setattr(_services, "gc", fake)
    monkeypatch.setattr(_services, "raiseDescriptorLimit", lambda: (1024, 1024))
    reactor = MemoryReactorClock()
    registry = Registry()
    top = _services.ChandlerService(reactor, registry)
    top.handleSIGTERM = False
    top.tuneGC = True
    devices = [DeviceConfig(f"d{i}", "tcp:host=127.0.0.1:port=9") for i in range(50)]
    child = DevicesService(reactor, registry, devices, startRate=1000)
    child.setServiceParent(top)
    top.startService()
    # nothing is collected while the devices are built and first connected
    assert fake.calls == ["threshold", "freeze", "disable"] and child.starting
    while len(reactor.tcpClients) < 50:
        reactor.advance(START_TICK)
    # MemoryReactorClock answers no connect: the first connects are still outstanding
    reactor.advance(_services.GC_SETTLE_CHECK)
    assert child.starting and fake.calls == ["threshold", "freeze", "disable"]
    for connector in list(child._outstanding):
        child._answered(None, connector)
    reactor.advance(_services.GC_SETTLE_CHECK)
    assert not child.starting
    # the fleet built since is not gone through by a collection (it would stall the reactor):
    # it is frozen as it is, and the collector runs again
    assert fake.calls == ["threshold", "freeze", "disable", "freeze", "enable"]
    reactor.advance(_services.GC_REFREEZE)
    # later, what lived since is collected (a full collection skips what is frozen) and frozen;
    # without churn nothing is unfrozen (tests/test_churn.py: with it)
    assert fake.calls[-2:] == ["collect2", "freeze"] and len(fake.calls) == 7
    assert "unfreeze" not in fake.calls
    top.stopService()
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_makeService_gives_the_status_site_the_configured_hosts(tmp_path: Path) -> None:
    from twisted_ch.service._web import StatusService

    config = tmp_path / "site.toml"
    config.write_text('[status]\nhosts = ["av.example.org"]\n')
    service = tap.makeService(parsed("--config", str(config)))
    status = [s for s in service if isinstance(s, StatusService)]  # type: ignore[attr-defined]
    assert [s.site.hosts for s in status] == [("av.example.org",)]


def test_a_device_paused_before_its_first_connect_is_not_connected_until_resumed() -> None:
    from twisted_ch.service._actions import runAction

    reactor = MemoryReactorClock()
    devices = [DeviceConfig(f"d{i}", f"tcp:host=127.0.0.1:port={100 + i}") for i in range(100)]
    service = DevicesService(reactor, Registry(), devices, startRate=1000)
    service.startService()
    while service._toBuild:  # built in slices, one per reactor turn
        reactor.advance(0)
    last = service.registry.find("d99")
    assert last is not None
    assert runAction(service.registry, last, "pause") is None  # still queued for its first connect
    while service.starting and reactor.getDelayedCalls():
        reactor.advance(START_TICK)
    assert 199 not in [c[1] for c in reactor.tcpClients]  # the paused one was not connected
    assert len(reactor.tcpClients) == 99
    assert runAction(service.registry, last, "resume") is None
    assert [c[1] for c in reactor.tcpClients].count(199) == 1
