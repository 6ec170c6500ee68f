"""The real-browser fixture works: Chromium loads a page served by Twisted on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from browser import waitFor
from twisted.internet import threads
from twisted.web.resource import Resource
from twisted.web.server import Site


class Page(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return self.body


@pytest_twisted.inlineCallbacks
def test_chromium_loads_a_loopback_page(browser: Any, tmp_path: Path) -> Any:
    from twisted.internet import reactor

    root = Page(b"<!doctype html><title>t</title><h1 id='x'>twisted_ch</h1>")
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
