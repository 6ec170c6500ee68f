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
return Array.from(document.querySelectorAll('#devices tbody tr')).map((tr) => ({
  name: tr.dataset.name,
  cls: tr.className,
  cells: Array.from(tr.children).map((td) => td.textContent),
  state: tr.querySelector('td.state').textContent,
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
        "return Array.from(document.querySelectorAll('#servers td.name'))"
        ".map((td) => td.textContent)"
    )
    assert servers == ["control-server"]
    # the page is not reloaded: a mark left on this document stays while the state changes
    browser.execute_script("window.loadedOnce = 'yes'")
    waitFor(browser, lambda b: rowState(b, "flaky-switcher") == "Connected", 30)
    waitFor(browser, lambda b: rowState(b, "flaky-switcher") == "Disconnected", 30)
    assert rows(browser)["flaky-switcher"]["cls"] in ("health-error", "health-warning")
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
                "return Array.from(document.querySelectorAll('#devices tbody tr'))"
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
  const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
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
  return { text: td.textContent, title: td.title, words: words,
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
