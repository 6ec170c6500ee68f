"""The real-browser fixture works: Chromium loads a page served by Twisted on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from browser import waitFor
from twisted.internet import threads
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data


@pytest_twisted.inlineCallbacks
def test_chromium_loads_a_loopback_page(browser: Any, tmp_path: Path) -> Any:
    from twisted.internet import reactor

    root = Resource()
    page = b"<!doctype html><title>t</title><h1 id='x'>twisted_ch</h1>"
    root.putChild(b"", Data(page, "text/html; charset=utf-8"))
    root.putChild(b"favicon.ico", Data(b"", "image/x-icon"))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")  # type: ignore[attr-defined]
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/"
        # selenium blocks: drive it from a thread so the reactor keeps serving
        yield threads.deferToThread(browser.get, url)
        text = yield threads.deferToThread(
            waitFor, browser, lambda b: b.find_element("id", "x").text
        )
        assert text == "twisted_ch"
        shot = tmp_path / "page.png"
        yield threads.deferToThread(browser.save_screenshot, str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        yield port.stopListening()
