"""
C{bench scale}: its arguments, the shard count it picks, the config it writes, and a tiny run
end to end (real C{twistd} shards and simulators on loopback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is beside the package, not installed
    sys.path.insert(0, str(ROOT))

from bench import scale  # noqa: E402
from bench.__main__ import main  # noqa: E402
from twisted_ch.service._config import loadConfig  # noqa: E402
from twisted_ch.service._services import Shard  # noqa: E402


@pytest.mark.parametrize(
    "argv",
    [
        ["--devices", "0"],
        ["--devices", "many"],
        ["--poll", "0"],
        ["--seconds", "-5"],
        ["--scrape", "nan"],
    ],
)
def test_bad_arguments_are_one_clear_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["scale", *argv])
    assert e.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_the_fewest_shards_that_fit_the_descriptor_limit() -> None:
    names = scale.deviceNames(50_000)
    assert len(set(names)) == 50_000
    # this machine's hard limit: 20,000 descriptors a process
    assert scale.fewestShards(names, 20_000) == 3
    assert max(scale.shardSizes(names, 3)) <= 20_000 - scale.RESERVE
    assert scale.fewestShards(names, -1) == 1  # unlimited
    small = scale.deviceNames(100)
    n = scale.fewestShards(small, scale.RESERVE + 30)
    assert max(scale.shardSizes(small, n)) <= 30 < max(scale.shardSizes(small, n - 1))
    with pytest.raises(ValueError, match="no room"):
        scale.fewestShards(small, scale.RESERVE)


def test_the_config_puts_each_device_on_its_shard_s_simulator(tmp_path: Path) -> None:
    names = scale.deviceNames(40)
    ports = [[1001, 1002], [2001], [3001, 3002, 3003]]
    path = tmp_path / "fleet.toml"
    path.write_text(scale.fleetConfig(names, 3, ports, 10, 9100))
    config = loadConfig(path)
    assert [d.name for d in config.devices] == names
    assert config.status.listen == "tcp:9100:interface=127.0.0.1"
    for device in config.devices:
        port = int(device.endpoint.rsplit("=", 1)[1])
        assert device.endpoint.startswith("tcp:host=127.0.0.1:")
        assert port in ports[Shard.of(device.name, 3) - 1]
        assert device.pollFrequency == 10 and device.probe is not None
        assert device.probe.kind == "sis"
    with pytest.raises(ValueError, match="per shard"):
        scale.fleetConfig(names, 3, ports[:2], 10, 9100)


def test_a_tiny_fleet_end_to_end() -> None:
    result = scale.run(12, 2, poll=1.0, seconds=3.0, scrape=2.0, log=lambda m: None)
    assert result["shards"] == 2
    assert sum(s["devices"] for s in result["perShard"]) == 12
    for shard in result["perShard"]:
        assert shard["secondsToAllConnected"] is not None, shard
        assert shard["simulatorClients"] == shard["devices"]
        assert shard["rssKiB"] > 0
        assert shard["stallLines"] >= 2  # the shard's stall monitor reported each second
    assert result["secondsToAllConnected"] is not None
    # every page of every shard was fetched, none failed
    assert all(p["fetches"] >= 2 and p["failed"] == 0 for p in result["pages"].values())
    assert {t["target"].split()[0] for t in result["targets"]} == {"all", "at", "no"}
    assert "| target | met | measured |" in scale.table(result)
