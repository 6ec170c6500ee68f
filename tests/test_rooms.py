"""Rooms and tags: the config keys, the /status filters, the /metrics room label, actions."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Site

from twisted_ch.service._actions import mountActions
from twisted_ch.service._config import ConfigError, parseConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import DevicesService
from twisted_ch.service._web import StatusService
from twisted_ch.testing import SIS_RESPONSES, DeviceServer


def test_room_and_tags_of_devices_and_servers() -> None:
    config = parseConfig(
        {
            "device": [
                {
                    "name": "proj",
                    "endpoint": "tcp:host=127.0.0.1:port=23",
                    "room": "Board room",
                    "tags": ["projector", "floor-2"],
                },
                {"name": "plain", "endpoint": "tcp:host=127.0.0.1:port=24"},
            ],
            "server": [{"port": 9000, "room": "Rack", "tags": ["control"]}],
        }
    )
    proj, plain = config.devices
    assert (proj.room, proj.tags) == ("Board room", ("projector", "floor-2"))
    assert (plain.room, plain.tags) == ("", ())
    assert (config.servers[0].room, config.servers[0].tags) == ("Rack", ("control",))


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ({"room": 3}, "device[0].room", "a room name (text), got"),
        ({"room": " "}, "device[0].room", "a non-empty room name"),
        ({"room": "a\nb"}, "device[0].room", "without control characters"),
        ({"tags": "projector"}, "device[0].tags", "an array of tags"),
        ({"tags": [1]}, "device[0].tags[0]", "a tag (text), got"),
        ({"tags": ["a b"]}, "device[0].tags[0]", "without spaces"),
        ({"tags": [""]}, "device[0].tags[0]", "1 to 64 characters"),
        ({"tags": ["x", "x"]}, "device[0].tags[1]", "given once"),
    ],
)
def test_bad_rooms_and_tags_name_the_key(extra: dict[str, object], key: str, problem: str) -> None:
    device = {"name": "d", "endpoint": "tcp:host=127.0.0.1:port=23", **extra}
    with pytest.raises(ConfigError) as caught:
        parseConfig({"device": [device]}, "site.toml")
    assert caught.value.key == key
    assert problem in str(caught.value)


def test_a_server_room_is_checked_too() -> None:
    with pytest.raises(ConfigError) as caught:
        parseConfig({"server": [{"port": 9000, "room": ""}]}, "site.toml")
    assert caught.value.key == "server[0].room"


# /status filters, the /metrics room label, POST /actions (real loopback sockets)

TOKEN = "s3cret-token"


def _config(port: int) -> Any:
    def device(name: str, room: str, tags: list[str]) -> dict[str, object]:
        return {
            "name": name,
            "endpoint": f"tcp:host=127.0.0.1:port={port}",
            "probe": "sis",
            "pollFrequency": 0.1,
            "room": room,
            "tags": tags,
        }

    return parseConfig(
        {
            "device": [
                device("proj-a", "Room A", ["projector"]),
                device("dsp-a", "Room A", ["audio"]),
                device("proj-b", "Room B", ["projector"]),
            ]
        }
    )


def _request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url: str, document: object, headers: dict[str, str] | None = None) -> Any:
    sent = {"Content-Type": "application/json", **(headers or {})}
    return threads.deferToThread(_request, url, json.dumps(document).encode(), sent)


def _get(url: str) -> Any:
    return threads.deferToThread(_request, url)


def _until(check: Any) -> Generator[Any, Any, None]:
    for _ in range(200):  # a bounded wait on real sockets
        if check():
            return
        yield deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("the condition was never met")


@pytest_twisted.inlineCallbacks
def test_status_filters_room_rollup_and_metrics_room_label() -> Any:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    registry = Registry(clock=reactor)
    devices = DevicesService(reactor, registry, _config(server.port).devices, startRate=1000)
    status = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    devices.startService()
    status.startService()
    try:
        handlers = devices.handlers.values()
        yield from _until(lambda: all(h.ConnectionStatus == "Connected" for h in handlers))
        base = str(status.url)
        code, body = yield _get(base + "status?room=Room%20A")
        assert code == 200
        document = json.loads(body)
        assert [d["name"] for d in document["devices"]] == ["proj-a", "dsp-a"]
        assert document["devices"][0]["room"] == "Room A"
        assert document["devices"][0]["tags"] == ["projector"]
        code, body = yield _get(base + "status?tag=projector&compact=1")
        assert [d["name"] for d in json.loads(body)["devices"]] == ["proj-a", "proj-b"]
        code, body = yield _get(base + "status?room=Room%20A&tag=audio")
        assert [d["name"] for d in json.loads(body)["devices"]] == ["dsp-a"]
        code, body = yield _get(base + "status")
        rooms = json.loads(body)["summary"]["rooms"]
        assert rooms["Room A"]["health"] == "ok" and rooms["Room A"]["ok"] == 2
        assert rooms["Room B"]["devices"] == 1
        code, body = yield _get(base + "metrics")
        assert 'chandler_device_up{device="proj-b",room="Room B"} 1.0' in body.decode()
        assert 'chandler_device_paused{device="proj-b",room="Room B"} 0.0' in body.decode()
    finally:
        yield status.stopService()
        yield devices.stopService()
        yield server.shutdown()


@pytest_twisted.inlineCallbacks
def test_pause_resume_and_reconnect_a_device_and_a_room() -> Any:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    registry = Registry(clock=reactor)
    devices = DevicesService(reactor, registry, _config(server.port).devices, startRate=1000)
    status = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    devices.startService()
    status.startService()
    proj = devices.handlers["proj-a"]
    try:
        handlers = devices.handlers.values()
        yield from _until(lambda: all(h.ConnectionStatus == "Connected" for h in handlers))
        url = str(status.url) + "actions"
        code, body = yield _post(url, {"action": "pause", "device": "proj-a"})
        assert code == 200, body
        assert json.loads(body) == {"action": "pause", "done": ["proj-a"], "skipped": {}}
        yield from _until(lambda: proj.ConnectionStatus == "Disconnected")
        row = next(r for r in registry.rows() if r["name"] == "proj-a")
        assert (row["paused"], row["health"], row["nextAttempt"]) == (True, "paused", None)
        assert registry.snapshot()["summary"]["rooms"]["Room A"]["health"] == "ok"  # type: ignore[index]
        polls = proj.polls
        yield deferLater(reactor, 0.3, lambda: None)
        assert proj.polls == polls  # not polled while paused
        code, body = yield _get(str(status.url) + "metrics")
        assert 'chandler_device_paused{device="proj-a",room="Room A"} 1.0' in body.decode()
        assert 'chandler_device_health{device="proj-a",room="Room A",level="paused"} 1.0' in (
            body.decode()
        )
        code, body = yield _post(url, {"action": "reconnect", "device": "proj-a"})
        assert code == 409 and "resume" in json.loads(body)["skipped"]["proj-a"]
        code, body = yield _post(url, {"action": "resume", "room": "Room A"})
        assert json.loads(body) == {
            "action": "resume",
            "done": ["proj-a"],
            "skipped": {"dsp-a": "not paused"},
        }
        yield from _until(lambda: proj.ConnectionStatus == "Connected")
        assert "paused" not in next(r for r in registry.rows() if r["name"] == "proj-a")
        transitions = proj.transitions
        code, body = yield _post(url, {"action": "reconnect", "device": "proj-a"})
        assert code == 200 and json.loads(body)["done"] == ["proj-a"]
        yield from _until(
            lambda: proj.transitions >= transitions + 2 and proj.ConnectionStatus == "Connected"
        )
        code, body = yield _post(url, {"action": "pause", "room": "Room B"})
        assert json.loads(body)["done"] == ["proj-b"]
        code, body = yield _post(url, {"action": "pause", "device": "nobody"})
        assert code == 404
        code, body = yield _post(url, {"action": "explode", "device": "proj-a"})
        assert code == 400 and "reconnect, pause, resume" in json.loads(body)["error"]
        code, body = yield threads.deferToThread(_request, url, b"action=pause&device=proj-a", {})
        assert code == 415  # a form (what another site's page can send) is not JSON
        code, body = yield _post(
            url, {"action": "pause", "device": "dsp-a"}, {"Origin": "http://192.0.2.1"}
        )
        assert code == 403 and "another origin" in json.loads(body)["error"]
        assert registry.pausedSince(registry.find("dsp-a")) is None  # type: ignore[arg-type]
    finally:
        yield status.stopService()
        yield devices.stopService()
        yield server.shutdown()


@pytest_twisted.inlineCallbacks
def test_actions_off_loopback_need_the_token() -> Any:
    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    registry = Registry(clock=reactor)
    devices = DevicesService(reactor, registry, _config(server.port).devices, startRate=1000)
    root = Resource()
    mountActions(root, registry, lambda: False, TOKEN)  # as if bound to 0.0.0.0
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    devices.startService()
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/actions"
        pause = {"action": "pause", "device": "proj-a"}
        code, body = yield _post(url, pause)
        assert code == 403 and "token" in json.loads(body)["error"]
        code, body = yield _post(url, pause, {"Authorization": "Bearer wrong"})
        assert code == 403 and "wrong token" in json.loads(body)["error"]
        assert registry.pausedSince(registry.find("proj-a")) is None  # type: ignore[arg-type]
        code, body = yield _post(url, pause, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 200 and json.loads(body)["done"] == ["proj-a"]
    finally:
        yield port.stopListening()
        yield devices.stopService()
        yield server.shutdown()
