"""Rooms and tags: the config keys, the /status filters, the /metrics room label, actions."""

from __future__ import annotations

import pytest

from twisted_ch.service._config import ConfigError, parseConfig


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
