"""
Health levels, each device's last hour of transitions, and outages logged once (Clock-driven).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.service._config import HealthConfig
from twisted_ch.service._logs import OutageLinesOnly
from twisted_ch.service._metrics import metricsText
from twisted_ch.service._outages import healthOf
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.testing import FakeEndpoint


class Events(list[dict[str, Any]]):
    def __enter__(self) -> Events:
        globalLogPublisher.addObserver(self.append)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self.append)

    def shown(self, registry: Registry) -> list[str]:
        """The lines the service's log shows (at info level) with the outage filter."""
        only = OutageLinesOnly(registry)
        return [
            formatEvent(e)
            for e in self
            if e.get("log_level", LogLevel.info) >= LogLevel.info and only(e).name != "no"
        ]


def device(clock: Clock, name: str = "projector", **kw: Any) -> tuple[Any, FakeEndpoint]:
    endpoint = FakeEndpoint(clock)
    iface = EthernetClientInterface("127.0.0.1", 23, reactor=clock, endpoint=endpoint)
    iface.link.description = name

    def keepAlive(handler: Any) -> None:
        handler.Send(b"P")

    kw.setdefault("pollFrequency", 1)
    kw.setdefault("connectRetryTime", 1)
    kw.setdefault("DisconnectLimit", 3)
    return GetConnectionHandler(iface, keepAlive, **kw), endpoint


def test_health_levels() -> None:
    t = HealthConfig(warningMisses=2, errorAfter=10)
    assert healthOf("Connected", 0, None, t) == "ok"
    assert healthOf("Connected", 1, None, t) == "ok"
    assert healthOf("Connected", 2, None, t) == "warning"
    assert healthOf("Disconnected", 0, 3.0, t) == "warning"  # reconnecting after a loss
    assert healthOf("Disconnected", 0, 10.0, t) == "error"
    assert healthOf("Disconnected", 0, None, t) == "error"
    assert healthOf("Unknown", 0, None, t) == "unknown"
    assert healthOf("Connected", 1, None, HealthConfig()) == "ok"  # the one in flight
    assert healthOf("Connected", 2, None, HealthConfig()) == "warning"


def test_health_in_status_and_metrics_follows_the_device() -> None:
    clock = Clock()
    clock.advance(1_000_000)
    registry = Registry(clock=clock, health=HealthConfig(warningMisses=2, errorAfter=5))
    handler, endpoint = device(clock)
    registry.add(Entry("projector", handler, "tcp:host=127.0.0.1:port=23"))

    def health() -> str:
        (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
        return str(row["health"])

    assert health() == "unknown"
    handler.Connect()
    handler.ResponseAccepted()  # the device answers: Connected
    assert health() == "ok"
    clock.advance(1)
    clock.advance(1)  # two polls unanswered
    assert handler.missedPolls >= 2 and health() == "warning"
    handler.ResponseAccepted()
    assert health() == "ok"
    endpoint.refuse = True
    assert endpoint.transport is not None
    endpoint.transport.deviceResets()
    clock.advance(0)
    assert handler.ConnectionStatus == "Disconnected"
    assert health() == "warning"  # within errorAfter: reconnecting after a loss
    clock.pump([1] * 5)
    assert health() == "error"
    metrics = _metrics(registry)
    assert 'chandler_device_health{device="projector",level="error"} 1.0' in metrics
    assert metrics.count('chandler_device_health{device="projector"') == 1
    summary = registry.snapshot()["summary"]
    assert summary == {
        "up": 0,
        "down": 1,
        "unknown": 0,
        "health": {"ok": 0, "warning": 0, "error": 1, "unknown": 0, "paused": 0},
        "rooms": {},
    }
    handler.Disconnect()
    registry.remove("projector")
    clock.advance(0)
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def _metrics(registry: Registry) -> str:
    return metricsText(registry).decode()


def test_an_outage_is_logged_once_with_periodic_summaries() -> None:
    clock = Clock()
    clock.advance(1_000_000)
    registry = Registry(clock=clock, health=HealthConfig(outageSummary=60))
    handler, endpoint = device(clock, connectRetryTime=1)
    registry.add(Entry("projector", handler, "tcp:host=127.0.0.1:port=23"))
    with Events() as events:
        handler.Connect()
        clock.advance(0.5)
        handler.ResponseAccepted()
        endpoint.refuse = True
        assert endpoint.transport is not None
        endpoint.transport.deviceResets()
        clock.advance(0)
        for _ in range(200):  # 200 s down: about 200 failed attempts
            clock.advance(1)
        endpoint.refuse = False
        clock.advance(1)
        handler.ResponseAccepted()  # the device answers again
    assert handler.ConnectionStatus == "Connected"
    shown = events.shown(registry)
    assert [line for line in shown if "connect failed" in line] == []
    outage = [e for e in events if e.get("log_namespace") == "twisted_ch.outage"]
    texts = [formatEvent(e) for e in outage]
    assert texts[0] == "projector: Unknown -> Connected"
    assert texts[1] == "projector: Connected -> Disconnected (Connection lost)"
    stillDown = [t for t in texts if "still down" in t]
    assert len(stillDown) == 3, texts
    assert stillDown[0].startswith("projector: still down after 1 min 0 s, 59 failed attempts")
    assert "last error: Connection refused" in stillDown[0]
    back = texts[-1]
    assert back.startswith("projector: Disconnected -> Connected after 3 min 2")
    assert "(200 failed attempts)" in back
    assert outage[-1]["outage"] == 201.0
    assert len(texts) == 6
    # the core's own lines for this device do not show: only the outage lines do
    ours = [line for line in shown if line.startswith("projector")]
    assert ours == texts
    handler.Disconnect()
    registry.remove("projector")
    clock.advance(0)
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_a_big_starts_first_connects_are_debug_lines_and_later_outages_are_not() -> None:
    clock = Clock()
    registry = Registry(clock=clock)
    quick, quickEndpoint = device(clock, "quick")
    slow, slowEndpoint = device(clock, "slow")
    usual, _ = device(clock, "usual")
    slowEndpoint.refuse = True
    registry.add(Entry("quick", quick, ""), quietFirstConnect=True)
    registry.add(Entry("slow", slow, ""), quietFirstConnect=True)
    registry.add(Entry("usual", usual, ""))
    with Events() as events:
        for handler in (quick, slow, usual):
            handler.Connect()
        clock.advance(0.5)
        quick.ResponseAccepted()
        usual.ResponseAccepted()
        clock.advance(2)  # slow: refused, and refused again
        slowEndpoint.refuse = False
        clock.advance(1)
        slow.ResponseAccepted()
        assert quickEndpoint.transport is not None
        quickEndpoint.transport.deviceResets()  # quick: down, then back
        clock.advance(0)
        clock.advance(1.5)
        quick.ResponseAccepted()
    outage = [e for e in events if e["log_namespace"] == "twisted_ch.outage"]
    levels = [(formatEvent(e), e["log_level"]) for e in outage]
    connects = [(t, level) for t, level in levels if "-> Connected" in t]
    assert connects[0] == ("quick: Unknown -> Connected", LogLevel.debug)  # at once: the start's
    assert connects[1] == ("usual: Unknown -> Connected", LogLevel.info)  # a small start's
    assert connects[2][0].startswith("slow: Unknown -> Connected after")
    assert connects[2][1] == LogLevel.info  # reached after failed attempts: an outage's end
    assert connects[3][0].startswith("quick: Disconnected -> Connected after")
    assert connects[3][1] == LogLevel.info  # its next connect: an outage's end
    assert len(connects) == 4, levels
    for handler in (quick, slow, usual):
        handler.Disconnect()
    for name in ("quick", "slow", "usual"):
        registry.remove(name)


def test_a_device_never_reached_is_logged_once() -> None:
    clock = Clock()
    registry = Registry(clock=clock, health=HealthConfig(outageSummary=30))
    handler, endpoint = device(clock)
    endpoint.refuse = True
    registry.add(Entry("projector", handler, ""))
    with Events() as events:
        handler.Connect()
        clock.pump([1] * 65)
    texts = [formatEvent(e) for e in events if e.get("log_namespace") == "twisted_ch.outage"]
    assert len(texts) == 3, texts
    assert "Connection refused" in texts[0]
    assert all("still down" in t for t in texts[1:])
    handler.Disconnect()
    registry.remove("projector")


def test_the_timeline_keeps_the_last_hour() -> None:
    clock = Clock()
    registry = Registry(clock=clock)
    handler, endpoint = device(clock)
    registry.add(Entry("projector", handler, ""))
    handler.Connect()
    handler.ResponseAccepted()
    for _ in range(3):
        endpoint.refuse = True
        assert endpoint.transport is not None
        endpoint.transport.deviceCloses()
        clock.advance(0)
        clock.advance(600)
        endpoint.refuse = False
        clock.advance(1)
        handler.ResponseAccepted()
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    states = [state for _, state, _ in row["recent"]]
    assert states == ["Unknown", "Connected"] + ["Disconnected", "Connected"] * 3
    # transitions at 0, 601, 1202 and 1803 s; the hour from 603 s keeps the last three, and
    # the Disconnected of 601 s in force when it starts
    clock.advance(603 + 3600 - clock.seconds())
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    states = [state for _, state, _ in row["recent"]]
    assert states == ["Disconnected", "Connected", "Disconnected", "Connected"]
    assert row["recent"][0][2] == "Connection closed"
    handler.Disconnect()
    registry.remove("projector")
    clock.advance(0)
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_a_source_handler_that_goes_is_no_longer_tracked() -> None:
    clock = Clock()
    registry = Registry(clock=clock)
    handler, _ = device(clock)
    shown = [Entry("projector", handler, "")]
    registry.addSource("program", lambda: list(shown))
    assert set(registry.trackedNames()) == set()
    registry.entries()
    assert set(registry.trackedNames()) == {"projector"}
    shown.clear()
    registry.entries()
    assert set(registry.trackedNames()) == set()
    shown.append(Entry("projector", handler, ""))
    registry.entries()
    registry.removeSource("program")
    assert set(registry.trackedNames()) == set()
    assert handler._statusObservers == []


def test_a_device_flapping_faster_than_the_history_keeps_says_so() -> None:
    from twisted_ch.service._outages import HISTORY_LIMIT

    clock = Clock()
    registry = Registry(clock=clock)
    handler, endpoint = device(clock, connectRetryTime=1)
    registry.add(Entry("projector", handler, ""))
    handler.Connect()
    handler.ResponseAccepted()
    for _ in range(HISTORY_LIMIT):  # two transitions a round: more than the history keeps
        assert endpoint.transport is not None
        endpoint.transport.deviceResets()
        clock.advance(0)
        clock.advance(1)
        handler.ResponseAccepted()
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    recent = row["recent"]
    assert recent[0][1:] == ["Flapping", f"more than {HISTORY_LIMIT} transitions"]
    assert len(recent) == HISTORY_LIMIT + 1
    clock.advance(3600)  # an hour later nothing dropped is in the window
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    assert [state for _, state, _ in row["recent"]] == ["Connected"]
    handler.Disconnect()
    registry.remove("projector")
    clock.advance(0)


def test_a_program_handler_let_go_is_not_kept_alive() -> None:
    import gc
    import weakref

    clock = Clock()
    registry = Registry(clock=clock)
    shown: list[Entry] = []
    registry.addSource("program", lambda: list(shown))
    handler, _ = device(clock)
    shown.append(Entry("projector", handler, ""))
    registry.entries()
    assert set(registry.trackedNames()) == {"projector"}
    gone = weakref.ref(handler)
    shown.clear()
    del handler
    gc.collect()
    assert gone() is None
    registry.entries()
    assert set(registry.trackedNames()) == set()


class _Counters:
    def __init__(self, status: str, polls: int, misses: int) -> None:
        self.ConnectionStatus = status
        self._stats = {"status": status, "polls": polls, "misses": misses, "transitions": 2}

    def stats(self) -> dict[str, object]:
        return dict(self._stats)


def test_metrics_are_valid_prometheus_text_for_any_device_name() -> None:
    """
    L{metricsText} writes the text format itself; Prometheus' own parser reads back every
    sample with its labels, whatever characters a device's name holds.
    """
    from prometheus_client.parser import text_string_to_metric_families

    names = ["plain", 'quo"te', "back\\slash", "new\nline", "ünïcode ☃", "trailing\\"]
    registry = Registry(shard='1/2"x')
    for i, name in enumerate(names):
        registry.add(Entry(name, _Counters("Connected" if i % 2 else "Disconnected", 10**i, i)))
    text = metricsText(registry).decode("utf-8")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    levels = {row["name"]: row["health"] for row in registry.rows()}
    assert set(levels.values()) == {"ok", "warning", "error"}
    assert set(families) == {
        "chandler_device_up",
        "chandler_device_polls",
        "chandler_device_misses",
        "chandler_device_transitions",
        "chandler_device_reconnects",
        "chandler_device_health",
        "chandler_device_paused",
    }
    assert families["chandler_device_polls"].type == "counter"
    assert families["chandler_device_up"].type == "gauge"

    def sampleOf(family: str, name: str, **more: str) -> float:
        (sample,) = [
            s
            for s in families[family].samples
            if s.labels == {"device": name, "shard": '1/2"x', **more}
        ]
        return float(sample.value)

    for i, name in enumerate(names):
        assert sampleOf("chandler_device_up", name) == (1.0 if i % 2 else 0.0)
        assert sampleOf("chandler_device_polls", name) == 10**i
        assert sampleOf("chandler_device_misses", name) == i
        assert sampleOf("chandler_device_transitions", name) == 2
        assert sampleOf("chandler_device_reconnects", name) == 0
        assert sampleOf("chandler_device_health", name, level=str(levels[name])) == 1.0


def test_status_json_is_the_snapshot_compact_or_one_device_per_line() -> None:
    """C{/status} is L{Registry.snapshot} as JSON: on one line, or with a line per device."""
    import json

    registry = Registry()
    for i in range(3):
        registry.add(Entry(f"room {i}", _Counters("Connected", i, 0)))
    expected = json.loads(json.dumps(registry.snapshot()))
    del expected["time"]
    for compact in (False, True):
        text = registry.statusJSON(compact)
        document = json.loads(text)
        assert document.pop("time")
        assert document == expected
        lines = text.splitlines()
        if compact:
            assert len(lines) == 1
        else:
            assert [ln.strip().startswith('{"name": "room') for ln in lines].count(True) == 3
    empty = Registry().statusJSON()
    assert '\n  "devices": [],\n  "servers": [],\n  "summary": {' in empty
    assert empty.endswith('"next": null}\n}\n')


def test_a_silent_drop_is_logged_and_shown_with_its_reason() -> None:
    """Issue 18 friction 4: not "(no reason given)", and no null reason in recent."""
    clock = Clock()
    clock.advance(1_000_000)
    registry = Registry(clock=clock)
    handler, endpoint = device(clock, DisconnectLimit=3)
    registry.add(Entry("projector", handler, "tcp:host=127.0.0.1:port=23"))
    with Events() as events:
        handler.Connect()
        clock.advance(0.5)
        handler.ResponseAccepted()
        for _ in range(6):  # the device goes silent: 4 unanswered sends take it past 3
            clock.advance(1)
    assert handler.ConnectionStatus == "Disconnected"
    down = [line for line in events.shown(registry) if "-> Disconnected" in line]
    assert down == ["projector: Connected -> Disconnected (3 sends unanswered)"], down
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    assert [r[1:] for r in row["recent"][1:]][:2] == [
        ["Connected", None],
        ["Disconnected", "3 sends unanswered"],
    ], row["recent"]
    handler.Disconnect()
    registry.remove("projector")


def test_one_failed_attempt_is_singular() -> None:
    clock = Clock()
    clock.advance(1_000_000)
    registry = Registry(clock=clock)
    handler, endpoint = device(clock, connectRetryTime=1)
    registry.add(Entry("projector", handler, "tcp:host=127.0.0.1:port=23"))
    with Events() as events:
        handler.Connect()
        clock.advance(0.5)
        handler.ResponseAccepted()
        endpoint.refuse = True
        assert endpoint.transport is not None
        endpoint.transport.deviceResets()
        clock.advance(0)
        clock.advance(1)  # one attempt, refused
        endpoint.refuse = False
        clock.advance(1)
        handler.ResponseAccepted()
    back = [formatEvent(e) for e in events if "after" in formatEvent(e)]
    assert back and back[-1].endswith("down (1 failed attempt)"), back
    handler.Disconnect()
    registry.remove("projector")


def test_a_server_row_says_since_when() -> None:
    """The text page never shows C{since None} for a server."""
    clock = Clock()
    clock.advance(1_000_000)

    class Server:
        listening = True

        def stats(self) -> dict[str, object]:
            return {"listening": self.listening}

    server = Server()
    registry = Registry(clock=clock)
    registry.add(Entry("control", server, "tcp:9000", "server"))
    (row,) = registry.rows()
    assert row["since"] == "1970-01-12T13:46:40.000+00:00"
    clock.advance(5)
    assert registry.rows()[0]["since"] == row["since"]
    server.listening = False
    assert registry.rows()[0]["since"] == "1970-01-12T13:46:45.000+00:00"
