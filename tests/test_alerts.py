"""
The shipped alerts and Grafana dashboard: deploy/prometheus/alerts.yml passes promtool (its rules
and its unit tests, alerts.test.yml), and every metric a Grafana panel queries is in a real
scrape of /metrics.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana" / "chandler.json"
#: Prometheus' own series a panel or an alert may use (not chandler's /metrics)
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds"}


def promtool() -> str:
    """promtool's path; absent: skipped locally, a failure under CI (CI=true)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (apt-get install prometheus; ./dev installs it)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def test_alert_rules_pass_promtool_check() -> None:
    done = _run("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_alert_unit_tests_pass() -> None:
    done = _run("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_of_the_issue_is_there() -> None:
    text = (PROMETHEUS / "alerts.yml").read_text()
    names = set(re.findall(r"- alert: (\w+)", text))
    assert {
        "ChandlerDeviceDown",
        "ChandlerRoomDegraded",
        "ChandlerDeviceFlapping",
        "ChandlerShardDown",
        "ChandlerScrapeStale",
    } <= names


def _metricNames(expr: str) -> set[str]:
    """The series names an expression selects (its identifiers that call nothing)."""
    bare = re.sub(r'"[^"]*"', "", expr)  # label values
    bare = re.sub(r"\{[^}]*\}", "{}", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "[]", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # grouping labels
    words = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    keywords = {"and", "or", "unless", "bool", "offset"}
    return {w for w in words if w not in keywords}


def _panelExprs() -> list[str]:
    dashboard = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", query["query"]))
    return exprs


def test_expression_names_are_found() -> None:
    """The test's own parser: it finds the names it must check (so an empty set cannot pass)."""
    assert _metricNames('sum by (level) (chandler_device_health{level="error"})') == {
        "chandler_device_health"
    }
    assert _metricNames("increase(chandler_device_transitions_total[15m])") == {
        "chandler_device_transitions_total"
    }
    assert _metricNames('topk(3, chandler_no_such{shard=~"$shard"}) unless on (device) up') == {
        "chandler_no_such",
        "up",
    }


@pytest_twisted.inlineCallbacks
def test_grafana_panels_query_metrics_a_real_scrape_has() -> Any:
    from twisted_ch.service._config import parseConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService
    from twisted_ch.service._web import StatusService
    from twisted_ch.testing import SIS_RESPONSES, DeviceServer

    server = DeviceServer(reactor, SIS_RESPONSES)
    server.start()
    config = parseConfig(
        {
            "device": [
                {
                    "name": "proj",
                    "endpoint": f"tcp:host=127.0.0.1:port={server.port}",
                    "probe": "sis",
                    "room": "Board room",
                }
            ]
        }
    )
    registry = Registry(clock=reactor, shard="1/1")
    devices = DevicesService(reactor, registry, config.devices, startRate=1000)
    status = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    devices.startService()
    status.startService()
    try:

        def scrape() -> str:
            with urllib.request.urlopen(f"{status.url}metrics", timeout=10) as r:
                return str(r.read().decode("utf-8"))

        text = yield threads.deferToThread(scrape)
    finally:
        yield status.stopService()
        yield devices.stopService()
        yield server.shutdown()
    scraped = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{", text, re.M))
    labels = set(re.findall(r'[{,]([a-z_]+)="', text))
    used: set[str] = set()
    for expr in _panelExprs():
        used |= _metricNames(expr)
        for label in re.findall(r"\b(?:by|without|on)\s*\(([^)]*)\)", expr):
            for name in label.split(","):
                assert name.strip() in labels | {"job", "instance"}, (name, expr)
    assert used, "no metric found in the dashboard's queries"
    missing = used - scraped - PROMETHEUS_SERIES
    assert not missing, f"panels query metrics /metrics does not have: {missing}"
    # and the alerts' metrics too
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    for expr in re.findall(r"expr: (?:>-\n)?\s*(.+)", alerts):
        assert not (_metricNames(expr) - scraped - PROMETHEUS_SERIES), expr
    assert {"device", "room", "shard", "level"} <= labels
