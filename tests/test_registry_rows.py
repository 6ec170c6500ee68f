# -*- test-case-name: tests.test_registry_rows -*-
"""
A status row reads a handler's stats record field by field (no C{dataclasses.asdict}): the same
dict, the same rows and the same C{/status} and C{/metrics} as with L{statsRow}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch._stats import LinkStats, ServerStats, statsRow
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.service import _registry
from twisted_ch.service._metrics import metricsText
from twisted_ch.service._registry import Entry, Registry, _statsDict
from twisted_ch.service.probes import SISProbe
from twisted_ch.testing import FakeEndpoint


@dataclass(frozen=True)
class Nested:
    status: str
    inner: list[int]
    extra: dict[str, Any]


@pytest.mark.parametrize(
    "stats",
    [
        LinkStats("Connected", 1.5, 3, 0, 2, None),
        LinkStats("Disconnected", 0.0, 0, 4, 1, "refused", 7, 12.25, "backing off"),
        ServerStats(True, 1710, 3, 0, 1, 0, None),
        Nested("Connected", [1, 2], {"a": [3]}),
        {"status": "Connected", "polls": 4},
    ],
)
def test_a_record_reads_as_statsRow_reads_it(stats: Any) -> None:
    fast, slow = _statsDict(stats), statsRow(stats)
    assert fast == slow and list(fast) == list(slow)
    for key, value in fast.items():
        if isinstance(value, list | dict):
            assert value is not getattr(stats, key, None)  # copied, as asdict copies


def test_a_record_that_is_not_one_is_refused_as_statsRow_refuses_it() -> None:
    with pytest.raises(TypeError, match="stats must be a record or a mapping"):
        _statsDict(42)
    with pytest.raises(TypeError, match="stats must be a record or a mapping"):
        _statsDict(LinkStats)


def _fleet(clock: Clock) -> tuple[Registry, list[Any]]:
    registry = Registry(clock=clock)
    handlers = []
    for i in range(4):
        endpoint = FakeEndpoint(clock)
        iface = EthernetClientInterface("127.0.0.1", 23, reactor=clock, endpoint=endpoint)
        iface.link.description = f"d{i}"
        probe = SISProbe()
        h = GetConnectionHandler(iface, probe, pollFrequency=1, DisconnectLimit=2, reactor=clock)
        probe.attach(h)
        registry.add(Entry(f"d{i}", h, "tcp:127.0.0.1:23", probe=probe, room="r", tags=("t",)))
        handlers.append((h, endpoint))
    handlers[0][0].Connect()
    handlers[1][0].Connect()
    endpoint = handlers[0][1]
    clock.advance(1)
    assert endpoint.protocol is not None
    endpoint.protocol.dataReceived(b"1.23\r\n")
    clock.advance(5)  # d1 unanswered: its misses count, then it goes
    return registry, handlers


def test_status_and_metrics_are_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    clock.advance(1_700_000_000)
    registry, _ = _fleet(clock)
    fast = [registry.rowOf(e, True) for e in registry.entries()], metricsText(registry)
    monkeypatch.setattr(_registry, "_statsDict", statsRow)
    slow = [registry.rowOf(e, True) for e in registry.entries()], metricsText(registry)
    assert json.dumps(fast[0]) == json.dumps(slow[0]) and fast[1] == slow[1]
    assert len({(r["state"], r["misses"], r["lastError"]) for r in fast[0]}) >= 3


class _Untracked:
    """A handler the registry does not track (no status observers): its health from its row."""

    ConnectionStatus = "Disconnected"

    def stats(self) -> LinkStats:
        return LinkStats("Disconnected", 0.0, 5, 5, 1, "refused")


class _Listening:
    """A server handler's stats."""

    def stats(self) -> ServerStats:
        return ServerStats(True, 1, 0, 0, 0, 0, None)


def test_a_brief_row_says_what_the_full_row_says_of_each_field_it_has() -> None:
    """
    /metrics reads brief rows: the same names, states, counters, health and pauses as the full
    rows (of connected, missing, never-connected, paused, untracked devices and a server), and
    C{since} as the time the full row writes as text.
    """
    clock = Clock()
    clock.advance(1_700_000_000)
    registry, _ = _fleet(clock)
    registry.setPaused(registry.entries()[2], True)
    registry.add(Entry("u", _Untracked(), "tcp:127.0.0.1:24"))
    server = Entry("s", _Listening(), "tcp:2300", kind="server")
    registry.add(server)
    seen = set()
    for entry in registry.entries():
        full, brief = registry.rowOf(entry), registry.rowOf(entry, brief=True)
        assert set(brief) - {"paused"} <= set(full) and brief.get("paused") == full.get("paused")
        for key, value in brief.items():
            if key == "since":
                assert isinstance(value, float) and _registry.isoTime(value) == full["since"]
            else:
                assert value == full[key], (entry.name, key)
        seen.add((full["state"], full.get("health")))
    assert len(seen) >= 5, seen  # the states and healths above, not one of each
