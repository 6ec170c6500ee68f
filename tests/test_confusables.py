"""
Names that differ only by look-alike characters (issue 19 item 9): a Cyrillic C{о}, fullwidth
forms, combining marks beside the plain name are accepted (they are other names) and warned
about at load, naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from twisted_ch._confusables import lookAlikes, skeleton
from twisted_ch.service._config import parseConfig


def device(name: str, room: str = "") -> dict[str, Any]:
    table: dict[str, Any] = {"name": name, "endpoint": "tcp:host=192.0.2.10:port=23"}
    if room:
        table["room"] = room
    return table


def test_look_alikes_share_a_skeleton_and_plain_names_do_not() -> None:
    plain = "projector"
    for other in (
        "pr\N{CYRILLIC SMALL LETTER O}jector",
        "\uff50\uff52\uff4f\uff4a\uff45\uff43\uff54\uff4f\uff52",  # fullwidth
        "proje\N{COMBINING ACUTE ACCENT}ctor",
        "proj\N{LATIN SMALL LETTER E WITH ACUTE}ctor",
        "\N{GREEK SMALL LETTER RHO}rojector",
    ):
        assert other != plain and skeleton(other) == plain, other
    for different in ("Projector", "projector2", "projecter", "proj ector"):
        assert skeleton(different) != plain


def test_a_config_warns_of_look_alike_devices_servers_and_rooms() -> None:
    cyrillic = "pr\N{CYRILLIC SMALL LETTER O}jector"
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        config = parseConfig(
            {
                "device": [
                    device("projector", "Board Room"),
                    device(cyrillic, "B\N{CYRILLIC SMALL LETTER O}ard Room"),
                    device("codec", "Board Room"),
                ],
                "server": [{"name": "\uff43\uff4f\uff44\uff45\uff43", "port": 9000}],  # ｃｏｄｅｃ
                "program": {
                    "file": "main.py",
                    "hosts": {"IPCP-Pro": {}, "IPCP\N{EN DASH}Pro": {}},
                },
            },
            "site.toml",
        )
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [d.name for d in config.devices] == ["projector", cyrillic, "codec"]  # accepted
    warnings = list(config.warnings)
    assert len(warnings) == 4, warnings
    assert warnings[0].startswith(
        f"device[1].name {cyrillic!r} looks like device[0].name 'projector' but is another name"
    )
    assert "<U+043E CYRILLIC SMALL LETTER O>" in warnings[0]
    assert warnings[1].startswith("server[0].name 'ｃｏｄｅｃ' looks like device[2].name 'codec'")
    assert warnings[2].startswith("device[1].room 'Bоard Room' looks like device[0].room")
    assert warnings[3].startswith("program.hosts.IPCP–Pro 'IPCP–Pro' looks like program.hosts")
    lines = [formatEvent(e) for e in events if e.get("log_namespace") == "twisted_ch.config"]
    assert lines == [f"site.toml: {w}" for w in warnings]


def test_distinct_names_are_not_warned_about() -> None:
    config = parseConfig(
        {"device": [device("projector", "Room 1"), device("Projector 2", "Room 1")]}
    )
    assert config.warnings == ()
    assert lookAlikes([("a", "x"), ("b", "x")]) == []  # a duplicate is not a look-alike


@pytest_twisted.ensureDeferred
async def test_check_config_prints_the_warnings_after_ok(tmp_path: Path) -> None:
    from test_tap import ended, spawn

    (tmp_path / "site.toml").write_text(
        '[[device]]\nname = "projector"\nendpoint = "tcp:host=127.0.0.1:port=1"\n'
        '[[device]]\nname = "pr\u043ejector"\nendpoint = "tcp:host=127.0.0.1:port=1"\n',
        encoding="utf-8",
    )
    process = spawn(tmp_path, "chandler", "--check-config", "site.toml")
    assert await ended(process) == 0, process.text  # a warning, not a refusal
    ok, warning = process.text.splitlines()
    assert ok == "site.toml: ok: 2 devices, 0 servers"
    assert warning.startswith("site.toml: warning: device[1].name 'pr\u043ejector' looks like")


PROGRAM = """
from extronlib.interface import EthernetClientInterface
from ConnectionHandler import GetConnectionHandler

Projector = GetConnectionHandler(
    EthernetClientInterface("127.0.0.1", {port}), "Q", pollFrequency=60
)
"""


@pytest_twisted.inlineCallbacks
def test_a_program_row_named_like_a_configured_device_is_warned_about(tmp_path: Path) -> Any:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._services import ProgramService
    from twisted_ch.testing import DeviceServer
    from twisted_ch.testing._probes import SIS_RESPONSES

    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    path = tmp_path / "main.py"
    path.write_text(PROGRAM.format(port=device.port))
    registry = Registry(clock=reactor)
    # a configured device named like the program's row (its link), with fullwidth digits
    fullwidth = "".join(chr(0xFF10 + int(c)) for c in str(device.port))
    registry.add(Entry(f"tcp:127.0.0.1:{fullwidth}", None, ""))
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    service = ProgramService(reactor, str(path), registry)
    try:
        service.startService()
        for _ in range(500):  # bounded: the top level runs
            if any("ran its top level" in str(e.get("log_format")) for e in events):
                break
            yield deferLater(reactor, 0.01, lambda: None)
        warned = [formatEvent(e) for e in events if "looks like" in formatEvent(e)]
        assert len(warned) == 1, warned
        assert f"the program device row 'tcp:127.0.0.1:{device.port}'" in warned[0]
        assert f"a device row 'tcp:127.0.0.1:{fullwidth}'" in warned[0]
    finally:
        globalLogPublisher.removeObserver(events.append)
        yield service.stopService()
        yield device.shutdown()
