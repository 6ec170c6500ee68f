"""
The dashboard in a real browser (Debian's headless Chromium through selenium): the built-in demo
served by the real twistd, and a page of hostile device strings served in-process.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from browser import waitFor
from twisted.internet import threads

from twisted_ch.service._dashboard import CONTENT_SECURITY_POLICY

TWISTD = str(Path(sys.executable).with_name("twistd"))
URL = re.compile(r"status page at (http://127\.0\.0\.1:\d+/)status")
PNG = b"\x89PNG\r\n\x1a\n"


class Child:
    """A twistd child whose output lines a thread collects (so nothing blocks on a pipe)."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "chandler", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def waitFor(self, pattern: re.Pattern[str], seconds: float = 20.0) -> re.Match[str]:
        """The first output line matching C{pattern} (a bounded wait)."""
        while True:
            try:
                line = self.lines.get(timeout=seconds)
            except queue.Empty:
                raise AssertionError("".join(self.output)) from None
            m = pattern.search(line)
            if m is not None:
                return m

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(15)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Child, str]]:
    """The built-in demo, its flaky device up 3 s and out 3 s; its dashboard's URL."""
    child = Child(
        tmp_path,
        "--status-port",
        "tcp:0:interface=127.0.0.1",
        "--demo-schedule",
        "3:3",
    )
    try:
        yield child, child.waitFor(URL).group(1)
    finally:
        assert child.stop() == 0, "".join(child.output)


#: Each device row as the page shows it now (read in one script: the page redraws each second).
ROWS = """
return Array.from(document.querySelectorAll('#devices tbody tr[data-name]')).map((tr) => ({
  name: tr.dataset.name,
  cls: tr.className,
  cells: Array.from(tr.children).map((td) => td.textContent),
  state: tr.dataset.state,
  stateText: tr.querySelector('td.state').textContent,
  timeline: Array.from(tr.querySelectorAll('svg.timeline rect:not(.nodata)'))
    .map((r) => r.getAttribute('class')),
}));
"""


def rows(browser: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in browser.execute_script(ROWS)}


def rowState(browser: Any, name: str) -> str | None:
    row = rows(browser).get(name)
    return None if row is None else str(row["state"])


def test_dashboard_of_the_demo_updates_live(
    demo: tuple[Child, str], browser: Any, tmp_path: Path
) -> None:
    child, url = demo
    browser.get(url)
    expected = {"switcher", "projector", "flaky-switcher", "codec", "display", "ups"}
    waitFor(browser, lambda b: expected <= set(rows(b)), message="every device on the page")
    servers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#servers td.name .name-text'))"
        ".map((td) => td.textContent)"
    )
    assert servers == ["control-server"]
    # the page is not reloaded: a mark left on this document stays while the state changes
    browser.execute_script("window.loadedOnce = 'yes'")
    waitFor(browser, lambda b: rowState(b, "flaky-switcher") == "Connected", 30)
    waitFor(browser, lambda b: rowState(b, "flaky-switcher") == "Disconnected", 30)
    assert rows(browser)["flaky-switcher"]["cls"] in ("health-error", "health-warning")
    # a device waiting to reconnect says so, and when the next attempt is
    waitFor(
        browser,
        lambda b: re.fullmatch(
            r"Reconnecting: next attempt in \d+ s \(.+\)",
            rows(b)["flaky-switcher"]["stateText"],
        ),
        30,
        message="the reconnecting text",
    )
    waitFor(browser, lambda b: rowState(b, "flaky-switcher") == "Connected", 30)
    assert browser.execute_script("return window.loadedOnce") == "yes"
    # the timeline drew the outage: Connected, Disconnected and Connected again
    flaky = rows(browser)["flaky-switcher"]
    assert flaky["timeline"][-3:] == ["ok", "error", "ok"], flaky
    assert flaky["cls"] in ("health-ok", "health-warning"), flaky  # answering again
    summary = browser.find_element("id", "summary").text
    assert re.fullmatch(r"\d+ up / \d+ down / \d+ unknown( · \d+ warning)?", summary), summary
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == PNG


HOSTILE = '<img src=x onerror="window.pwned=1">\n"&amp;</td><script>window.pwned=2</script>'


class Hostile:
    """A handler whose every string is markup."""

    ConnectionStatus = "Disconnected"

    def stats(self) -> dict[str, object]:
        return {
            "status": "Disconnected",
            "since": 0.0,
            "polls": 1,
            "misses": 1,
            "lastError": HOSTILE,
        }


class Calm:
    ConnectionStatus = "Connected"

    def stats(self) -> dict[str, object]:
        return {"status": "Connected", "since": 0.0, "polls": 5, "misses": 0, "lastError": None}


@pytest_twisted.inlineCallbacks
def test_dashboard_escapes_device_strings_and_filters(browser: Any, tmp_path: Path) -> Any:
    from twisted.internet import reactor

    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._web import StatusService

    registry = Registry(clock=reactor)
    for i in range(3):
        registry.add(Entry(f"calm-{i}", Calm(), "tcp:host=127.0.0.1:port=2"))
    registry.add(Entry(HOSTILE, Hostile(), "tcp:host=127.0.0.1:port=1:password=hunter2"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        assert service.url is not None
        yield threads.deferToThread(browser.get, service.url)
        count = yield threads.deferToThread(waitFor, browser, lambda b: len(rows(b)))
        assert count == 4

        def check() -> None:
            shown = rows(browser)
            assert HOSTILE in shown, list(shown)  # the name, as text
            assert shown[HOSTILE]["cells"][5] == HOSTILE  # the last error, as text
            order = browser.execute_script(
                "return Array.from(document.querySelectorAll('#devices tbody tr[data-name]'))"
                ".map((tr) => tr.dataset.name)"
            )
            assert order == [HOSTILE, "calm-0", "calm-1", "calm-2"]  # the worst first
            assert (
                browser.execute_script(
                    "return document.querySelectorAll('#devices img, #devices script').length"
                )
                == 0
            )
            assert browser.execute_script("return window.pwned") is None
            assert "hunter2" not in browser.page_source
            browser.save_screenshot(str(tmp_path / "hostile.png"))
            # filters: by name, then by state
            box = browser.find_element("id", "filter-name")
            box.send_keys("calm-1")
            waitFor(browser, lambda b: list(rows(b)) == ["calm-1"])
            assert browser.find_element("id", "shown").text == "1 of 4 devices shown"
            box.clear()
            box.send_keys(" ")  # an input event with nothing to filter by
            from selenium.webdriver.support.ui import Select

            Select(browser.find_element("id", "filter-state")).select_by_value("state:Disconnected")
            waitFor(browser, lambda b: list(rows(b)) == [HOSTILE])
            assert rows(browser)[HOSTILE]["cls"] == "health-error"
            Select(browser.find_element("id", "filter-state")).select_by_value("health:ok")
            waitFor(browser, lambda b: sorted(rows(b)) == ["calm-0", "calm-1", "calm-2"])
            browser.save_screenshot(str(tmp_path / "filtered.png"))

        yield threads.deferToThread(check)
    finally:
        yield service.stopService()
        registry.stopTracking()
    assert (tmp_path / "hostile.png").read_bytes()[:8] == PNG


def fetch(url: str, accept: str | None = None) -> tuple[int, dict[str, str], str]:
    """GET C{url} (a blocking call: run it in a thread)."""
    import urllib.request

    request = urllib.request.Request(url, headers={"accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, response.read().decode()


@pytest_twisted.inlineCallbacks
def test_dashboard_needs_nothing_from_the_network() -> Any:
    """The page loads only its own script and style, and says so in its security policy."""
    from twisted.internet import reactor

    from twisted_ch.service._registry import Registry
    from twisted_ch.service._web import StatusService

    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", Registry(clock=reactor))
    service.startService()
    try:
        base = str(service.url)
        code, headers, body = yield threads.deferToThread(fetch, base, "text/html")
        assert code == 200
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY.decode()
        sources = re.findall(r'(?:src|href)="([^"]+)"', body)
        assert sorted(sources) == ["dashboard.css", "dashboard.js", "data:,", "metrics", "status"]
        for path in ("dashboard.js", "dashboard.css"):
            code, headers, text = yield threads.deferToThread(fetch, base + path)
            assert code == 200 and headers["x-content-type-options"] == "nosniff"
            assert "http" not in text.replace("http://www.w3.org/2000/svg", "")
        # what the page polls: the /status document, compact
        code, headers, text = yield threads.deferToThread(fetch, base + "status?compact=1")
        assert code == 200 and "\n" not in text and json.loads(text)["service"] == "chandler"
        # without asking for HTML (curl): the plain-text list
        code, headers, text = yield threads.deferToThread(fetch, base)
        assert text.startswith("chandler ") and headers["content-type"].startswith("text/plain")
    finally:
        yield service.stopService()


#: For each name cell: its text and title, and each word of its text (found in the text nodes,
#: whatever the markup) with the distinct line tops its characters are drawn on (a word broken
#: mid-word spans two) and whether a box holding it cuts it (an ellipsis).
NAME_LAYOUT = """
return Array.from(document.querySelectorAll('td.name')).map((td) => {
  const words = [];
  const name = td.querySelector('.name-text') || td;  // the endpoint is shown under the name
  const walk = document.createTreeWalker(name, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0);
      const box = node.parentElement;
      words.push({ text: m[0], lines: new Set(rects.map((r) => Math.round(r.top))).size,
                   top: Math.round(rects[0].top), cut: box.scrollWidth > box.clientWidth });
    }
  }
  const inner = td.firstElementChild || td;
  return { text: name.textContent, title: td.title, words: words,
           lines: new Set(words.map((w) => w.top)).size,
           within: inner.getBoundingClientRect().right <= td.getBoundingClientRect().right + 0.5 };
});
"""

LONG_WORDS = "main conference room ceiling projector left side"
LONG_TOKEN = "projector-" + "x" * 80


@pytest_twisted.inlineCallbacks
def test_long_names_wrap_between_words_never_inside_one(browser: Any, tmp_path: Path) -> Any:
    """Issue: the name column broke 'projector' as 'projecto r' when the table was tight."""
    from twisted.internet import reactor

    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._web import StatusService

    registry = Registry(clock=reactor)
    registry.add(Entry(LONG_WORDS, Hostile(), "tcp:host=127.0.0.1:port=1"))
    registry.add(Entry(LONG_TOKEN, Calm(), "tcp:host=127.0.0.1:port=2"))
    registry.add(Entry("projector", Calm(), "tcp:host=127.0.0.1:port=3"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        assert service.url is not None
        # a tight table: a narrow window, and a long last error competing for the width
        yield threads.deferToThread(browser.set_window_size, 700, 900)
        yield threads.deferToThread(browser.get, service.url)
        yield threads.deferToThread(waitFor, browser, lambda b: len(rows(b)) == 3)

        def check() -> None:
            cells = {c["text"]: c for c in browser.execute_script(NAME_LAYOUT)}
            assert set(cells) == {LONG_WORDS, LONG_TOKEN, "projector"}
            for name, cell in cells.items():
                assert cell["title"].split("\n")[0] == name  # the whole name, on hover
                assert cell["within"], cell  # nothing spills over the next column
                for word in cell["words"]:
                    assert word["lines"] == 1, (name, word)  # never broken inside a word
            # the long name wraps, at its spaces
            assert cells[LONG_WORDS]["lines"] > 1
            assert not any(w["cut"] for w in cells[LONG_WORDS]["words"])
            assert [w["text"] for w in cells[LONG_WORDS]["words"]] == LONG_WORDS.split()
            # one word longer than the column: cut with an ellipsis, not broken
            [token] = cells[LONG_TOKEN]["words"]
            assert token["cut"] and token["text"] == LONG_TOKEN
            assert not cells["projector"]["words"][0]["cut"]
            browser.save_screenshot(str(tmp_path / "names.png"))

        yield threads.deferToThread(check)
    finally:
        yield service.stopService()
        registry.stopTracking()
    assert (tmp_path / "names.png").read_bytes()[:8] == PNG


#: The layout the operators' fixes are about: the timeline and its axis, the column widths,
#: the rooms' head rows, each device's cells (read in one script: the page redraws each second).
LAYOUT = """
const cell = document.querySelector('#devices tbody tr[data-name] td.timeline');
const head = document.querySelector('#devices th.timeline-head');
const axis = Array.from(document.querySelectorAll('#timeline-axis .tick-label'));
return {
  svg: cell.querySelector('svg').getBoundingClientRect().width,
  cell: cell.getBoundingClientRect().width,
  cellRight: cell.getBoundingClientRect().right,
  labels: axis.map((s) => s.textContent),
  nowRight: axis[axis.length - 1].getBoundingClientRect().right,
  headRight: head.getBoundingClientRect().right,
  columns: Array.from(document.querySelectorAll('#devices thead th'))
    .map((th) => th.getBoundingClientRect().width),
  rooms: Array.from(document.querySelectorAll('#devices tr.room-head')).map((tr) => ({
    room: tr.dataset.room, text: tr.querySelector('th').textContent,
    badge: tr.querySelector('.badge').textContent })),
  devices: Object.fromEntries(Array.from(document.querySelectorAll('#devices tr[data-name]'))
    .map((tr) => [tr.dataset.name, {
      room: tr.parentElement.dataset.room, state: tr.dataset.state,
      error: tr.querySelector('td.error-text').textContent,
      probe: tr.querySelector('td.probe').textContent,
      endpoint: tr.querySelector('.endpoint').textContent }])),
};
"""


@pytest_twisted.inlineCallbacks
def test_dashboard_rooms_timeline_widths_errors_and_a_pause_button(
    browser: Any, tmp_path: Path
) -> Any:
    """Issue 18: the timeline spans its column with labelled times; widths stay put; errors and
    probes read as written; rooms grouped with roll-ups; a button pauses a device."""
    from twisted.internet import reactor

    from twisted_ch.service._config import parseConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService
    from twisted_ch.service._web import StatusService
    from twisted_ch.testing import SIS_RESPONSES, DeviceServer

    answering = DeviceServer(reactor, SIS_RESPONSES)
    answering.start()
    silent = DeviceServer(reactor, {})
    silent.start()
    config = parseConfig(
        {
            "device": [
                {
                    "name": "switcher",
                    "endpoint": f"tcp:host=127.0.0.1:port={answering.port}",
                    "probe": "sis",
                    "pollFrequency": 0.2,
                    "room": "Board room",
                },
                {
                    "name": "mute-dsp",
                    "endpoint": f"tcp:host=127.0.0.1:port={silent.port}",
                    "probe": {"send": "Q\\r", "expect": "OK\\r\\n", "timeout": 0.1},
                    "pollFrequency": 0.2,
                    "DisconnectLimit": 50,
                    "room": "Board room",
                },
                {
                    "name": "hall-switcher",
                    "endpoint": f"tcp:host=127.0.0.1:port={answering.port}",
                    "probe": "sis",
                    "pollFrequency": 0.2,
                    "room": "Hall",
                },
            ]
        }
    )
    registry = Registry(clock=reactor)
    devices = DevicesService(reactor, registry, config.devices, startRate=1000)
    status = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    devices.startService()
    status.startService()
    try:
        yield threads.deferToThread(browser.set_window_size, 1400, 900)
        yield threads.deferToThread(browser.get, status.url)

        def layout(b: Any) -> Any:
            return b.execute_script(LAYOUT)

        def ready(b: Any) -> Any:
            found = layout(b)
            d = found["devices"]
            return (
                len(d) == 3
                and "no answer" in d["mute-dsp"]["error"]
                and d["hall-switcher"]["state"] == "Connected"
                and d["switcher"]["state"] == "Connected"
                and found
            )

        found = yield threads.deferToThread(waitFor, browser, ready, 20, "the devices")
        # the timeline spans its column, "now" at its right edge, times labelled
        assert abs(found["svg"] - found["cell"]) <= 2, found
        assert len(found["labels"]) == 5 and found["labels"][-1] == "now", found
        assert all(re.fullmatch(r"\d\d:\d\d", t) for t in found["labels"][:4]), found
        assert abs(found["nowRight"] - found["headRight"]) <= 12, found
        # errors and probes as written: \r visible in send and expect, no bytes repr
        mute = found["devices"]["mute-dsp"]
        assert "no answer to Q\\r matching OK\\r\\n within 0.1 s" in mute["error"], mute
        assert "b'" not in mute["error"] and "\\\\" not in mute["error"], mute
        assert "send=Q\\r" in mute["probe"] and "expect=OK\\r\\n" in mute["probe"], mute
        assert mute["endpoint"] == f"tcp:host=127.0.0.1:port={silent.port}"
        # rooms grouped, each with its roll-up: as healthy as its worst device, with counts
        assert [r["room"] for r in found["rooms"]] == ["Board room", "Hall"]
        board, hall = found["rooms"]
        assert board["badge"] == "unknown" and "2 devices: 1 ok, 1 unknown" in board["text"], board
        assert hall["badge"] == "ok" and "1 device: 1 ok" in hall["text"], hall
        assert {n: d["room"] for n, d in found["devices"].items()} == {
            "switcher": "Board room",
            "mute-dsp": "Board room",
            "hall-switcher": "Hall",
        }
        widths = found["columns"]
        updated = browser.find_element("id", "updated").text
        yield threads.deferToThread(
            waitFor, browser, lambda b: b.find_element("id", "updated").text != updated
        )
        assert layout(browser)["columns"] == widths  # refreshed: no column moved
        # the pause button of the hall's switcher: paused, not an error, columns still put
        yield threads.deferToThread(
            lambda: browser.find_element(
                "css selector", 'tr[data-name="hall-switcher"] button[data-action="pause"]'
            ).click()
        )

        def paused(b: Any) -> Any:
            found = layout(b)
            return found["devices"]["hall-switcher"]["state"] == "Paused" and found

        found = yield threads.deferToThread(waitFor, browser, paused, 20, "the pause")
        assert found["rooms"][1]["badge"] == "paused", found["rooms"]
        assert found["columns"] == widths
        assert devices.handlers["hall-switcher"].PollTimer.State == "Stopped"
        row = next(r for r in registry.rows() if r["name"] == "hall-switcher")
        assert (row["paused"], row["health"]) == (True, "paused")
        browser.save_screenshot(str(tmp_path / "rooms.png"))
    finally:
        yield status.stopService()
        yield devices.stopService()
        yield answering.shutdown()
        yield silent.shutdown()
    assert (tmp_path / "rooms.png").read_bytes()[:8] == PNG


@pytest_twisted.inlineCallbacks
def test_dashboard_pages_through_more_devices_than_a_page(browser: Any) -> Any:
    from twisted.internet import reactor

    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._web import StatusService

    registry = Registry(clock=reactor)
    for i in range(5):
        registry.add(Entry(f"calm-{i}", Calm(), "tcp:host=127.0.0.1:port=2"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        assert service.url is not None
        yield threads.deferToThread(browser.get, service.url + "?rows=2")

        def check() -> None:
            def shows(names: list[str], text: str) -> None:
                waitFor(browser, lambda b: sorted(rows(b)) == names)
                assert browser.find_element("id", "shown").text == text

            prev = browser.find_element("id", "page-prev")
            nxt = browser.find_element("id", "page-next")
            shows(["calm-0", "calm-1"], "1\u20132 of 5 devices")
            assert prev.get_attribute("disabled") and not nxt.get_attribute("disabled")
            nxt.click()
            shows(["calm-2", "calm-3"], "3\u20134 of 5 devices")
            nxt.click()
            shows(["calm-4"], "5\u20135 of 5 devices")
            assert nxt.get_attribute("disabled") and not prev.get_attribute("disabled")
            prev.click()
            shows(["calm-2", "calm-3"], "3\u20134 of 5 devices")
            # a filter starts again from its own first page: one match, no pager
            browser.find_element("id", "filter-name").send_keys("calm-4")
            shows(["calm-4"], "1 of 5 devices shown")
            assert not browser.find_element("id", "pager").is_displayed()

        yield threads.deferToThread(check)
    finally:
        yield service.stopService()
        registry.stopTracking()


@pytest_twisted.inlineCallbacks
def test_the_browser_reads_a_kept_compact_status_sent_gzipped(
    browser: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """What the dashboard polls, asked again while it is kept: gzip, which Chromium inflates."""
    from twisted.internet import reactor

    from twisted_ch.service import _web
    from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Entry, Registry
    from twisted_ch.service._web import StatusService

    monkeypatch.setattr(_web, "STATUS_REUSE", 10_000.0)  # kept for the whole test
    registry = Registry(clock=reactor)
    devices = 3 * STATUS_ROWS_PER_STEP  # streamed in steps: kept for STATUS_REUSE x its time
    for i in range(devices):
        registry.add(Entry(f"calm-{i}", Calm(), "tcp:host=127.0.0.1:port=2"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        assert service.url is not None
        yield threads.deferToThread(browser.get, service.url)
        asked = """
        const done = arguments[arguments.length - 1];
        const one = () => fetch('/status?compact=1').then(
            (r) => r.json().then((doc) => [r.headers.get('content-encoding'),
                                           doc.devices.map((d) => d.name)]));
        one().then((first) => one().then((again) => done([first, again])),
                   (e) => done(String(e)));
        """
        first, again = yield threads.deferToThread(browser.execute_async_script, asked)
        assert first[0] is None and len(first[1]) == devices  # rendered: sent as it was made
        assert again[0] == "gzip" and again[1] == first[1]  # kept: sent gzipped, read whole
    finally:
        yield service.stopService()
        registry.stopTracking()
