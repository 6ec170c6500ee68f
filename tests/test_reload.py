"""
Reload without a restart (issue 18): SIGHUP re-reads the config; unchanged devices keep their
link and history.  The diff alone, then a real twistd with loopback simulators.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest_twisted
from test_tap import URL, byName, chandler, getJSON, pollStatus, stop
from twisted.internet import reactor

from twisted_ch.service._config import DeviceConfig, ServerConfig
from twisted_ch.service._services import ConfigDiff, diffConfigs
from twisted_ch.testing import DeviceServer
from twisted_ch.testing._probes import SIS_RESPONSES


def test_the_diff_by_name() -> None:
    a = DeviceConfig("a", "tcp:host=127.0.0.1:port=1")
    b = DeviceConfig("b", "tcp:host=127.0.0.1:port=2")
    c = DeviceConfig("c", "tcp:host=127.0.0.1:port=3")
    s = ServerConfig("s", 9000)
    diff = diffConfigs(
        [a, b, c, s],
        [
            replace(a),
            replace(b, pollFrequency=2.0),
            DeviceConfig("d", "tcp:host=127.0.0.1:port=4"),
            s,
        ],
    )
    assert diff == ConfigDiff(added=("d",), removed=("c",), changed=("b",), unchanged=("a", "s"))
    # a device that becomes a server (same name) is changed; an empty config removes all
    assert diffConfigs([a], [ServerConfig("a", 9001)]).changed == ("a",)
    assert diffConfigs([a, s], []) == ConfigDiff(removed=("a", "s"))


def _site(*devices: tuple[str, int], poll: float = 0.2) -> str:
    return "".join(
        textwrap.dedent(
            f"""
            [[device]]
            name = "{name}"
            endpoint = "tcp:host=127.0.0.1:port={port}"
            probe = {{ type = "sis", query = "N" }}
            pollFrequency = {poll}
            connectRetryTime = 0.5
            """
        )
        for name, port in devices
    )


@pytest_twisted.ensureDeferred
async def test_sighup_applies_the_config_and_leaves_an_unchanged_device_alone(
    tmp_path: Path,
) -> None:
    sims = {name: DeviceServer(reactor, SIS_RESPONSES) for name in ("keep", "drop", "new")}
    connections = {name: 0 for name in sims}
    for name, sim in sims.items():
        build = sim.buildProtocol

        def counting(addr: Any, name: str = name, build: Any = build) -> Any:
            connections[name] += 1
            return build(addr)

        sim.buildProtocol = counting  # type: ignore[method-assign]
        sim.start()
    config = tmp_path / "site.toml"
    config.write_text(_site(("keep", sims["keep"].port), ("drop", sims["drop"].port)))
    process = chandler(tmp_path, "--config", "site.toml")
    try:
        base = (await process.waitFor(URL.pattern)).group(1).decode("ascii")
        before = await pollStatus(
            base,
            lambda doc: all(d["state"] == "Connected" and d["polls"] > 1 for d in doc["devices"]),
        )
        keep = byName(before)["keep"]
        assert connections == {"keep": 1, "drop": 1, "new": 0}

        # drop removed, new added, keep unchanged
        config.write_text(_site(("keep", sims["keep"].port), ("new", sims["new"].port)))
        process.transport.signalProcess("HUP")  # type: ignore[attr-defined]
        await process.waitFor(rb"reload: 1 added, 1 removed, 0 changed, 1 unchanged")
        # (new is Connected with its first answer, at link-up: keep polls on meanwhile)
        after = await pollStatus(
            base,
            lambda doc: (
                byName(doc).get("new", {}).get("state") == "Connected"
                and byName(doc)["keep"]["polls"] > keep["polls"]
            ),
        )
        assert sorted(byName(after)) == ["keep", "new"]
        kept = byName(after)["keep"]
        assert (
            kept["since"] == keep["since"]
            and kept["recent"][: len(keep["recent"])] == (keep["recent"])
        )
        assert kept["polls"] > keep["polls"] and kept["transitions"] == keep["transitions"]
        assert connections["keep"] == 1  # the same connection: the simulator saw no new one
        assert connections["new"] == 1

        # a changed device restarts (a new connection)
        config.write_text(_site(("keep", sims["keep"].port), ("new", sims["new"].port), poll=0.3))
        process.transport.signalProcess("HUP")  # type: ignore[attr-defined]
        await process.waitFor(rb"reload: 0 added, 0 removed, 2 changed, 0 unchanged")
        await pollStatus(
            base,
            lambda doc: (
                all(d["state"] == "Connected" for d in doc["devices"]) and len(doc["devices"]) == 2
            ),
        )
        assert connections["keep"] == 2

        # a config that does not load is refused with its one line: the running set stays
        config.write_text(_site(("keep", sims["keep"].port)) + "colour = 1\n")
        process.transport.signalProcess("HUP")  # type: ignore[attr-defined]
        line = await process.waitFor(rb"reload refused: [^\n]*")
        assert b"site.toml: device[0].colour: unknown key" in line.group(0), line.group(0)
        document = await getJSON(base + "status")
        assert sorted(byName(document)) == ["keep", "new"]
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        for sim in sims.values():
            await sim.shutdown()
    assert "Traceback" not in process.text, process.text
    assert len(re.findall(r"reload: ", process.text)) == 2


def test_the_systemd_unit_reloads_by_checking_the_config_then_sighup() -> None:
    unit = (Path(__file__).parent.parent / "deploy" / "systemd" / "chandler@.service").read_text()
    start = re.search(r"--config (\S+)", unit)
    assert start is not None
    reloads = re.findall(r"^ExecReload=(.*)$", unit, re.M)
    assert reloads == [
        f"/opt/chandler/bin/twistd chandler --check-config {start.group(1)}",
        "/bin/kill -HUP $MAINPID",
    ]
    assert "ReloadPropagatedFrom=chandler.target" in unit
