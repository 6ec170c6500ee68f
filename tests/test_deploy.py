"""The deployment examples in deploy/: the systemd template unit, the StatefulSet's shard line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twisted_ch.service._services import Shard
from twisted_ch.tap import shardStatusListen

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
TWISTD = str(Path(sys.executable).with_name("twistd"))


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_the_systemd_template_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "chandler@.service").read_text()
    assert "/opt/chandler/bin/twistd" in unit
    # verify checks that ExecStart's program exists: point it at this environment's twistd
    (tmp_path / "chandler@.service").write_text(unit.replace("/opt/chandler/bin/twistd", TWISTD))
    shutil.copy(DEPLOY / "systemd" / "chandler.target", tmp_path / "chandler.target")
    done = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / "chandler@2.service"),
            str(tmp_path / "chandler.target"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # warnings (an unknown key, a bad value) come with status 0: none is allowed either
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


def test_the_unit_runs_shard_i_of_n() -> None:
    unit = (DEPLOY / "systemd" / "chandler@.service").read_text()
    assert "--shard %i/${CHANDLER_SHARDS}" in unit
    assert "CHANDLER_SHARDS=3" in (DEPLOY / "systemd" / "chandler.env").read_text()


def _statefulSetScript() -> str:
    text = (DEPLOY / "kubernetes" / "chandler.yaml").read_text()
    m = re.search(r"args:\n\s+- \|\n((?:\s{14}.*\n)+)", text)
    assert m is not None, "the StatefulSet's shell line"
    return "\n".join(line[14:] for line in m.group(1).splitlines())


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({"HOSTNAME": "chandler-0"}, "1/3"),
        ({"HOSTNAME": "chandler-2"}, "3/3"),
        ({"HOSTNAME": "chandler-7", "POD_INDEX": "1"}, "2/3"),  # the pod-index label wins
    ],
)
def test_the_statefulset_runs_the_pod_ordinal_plus_one(
    tmp_path: Path, env: dict[str, str], shard: str
) -> None:
    fake = tmp_path / "twistd"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", _statefulSetScript()],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "CHANDLER_SHARDS": "3", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    args = done.stdout.splitlines()
    assert args[args.index("--shard") + 1] == shard
    assert "/etc/chandler/site.toml" in args


def test_prometheus_scrapes_every_systemd_shard_port() -> None:
    scrape = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    for i in (1, 2, 3):
        listen = shardStatusListen("tcp:9100:interface=127.0.0.1", Shard(i, 3))
        port = re.search(r"tcp:(\d+)", listen).group(1)  # type: ignore[union-attr]
        assert f'"127.0.0.1:{port}"' in scrape


def test_the_containerfile_installs_the_package() -> None:
    text = (DEPLOY / "kubernetes" / "Containerfile").read_text()
    assert "pip install" in text and "USER 65534" in text
    assert os.path.exists(DEPLOY / "README.md")
