"""
The virtual panel: its JSON state and actions over real HTTP on loopback, its guards, and a
real browser pressing a button of a running ControlScript program.
"""

from __future__ import annotations

import json
import textwrap
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest_twisted
from browser import waitFor
from twisted.internet import reactor, threads
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site

from twisted_ch.extronlib.device import UIDevice
from twisted_ch.extronlib.ui import Button, Label, Level, Slider
from twisted_ch.panel._web import panelResource, panelState
from twisted_ch.program import Program
from twisted_ch.service._registry import Registry
from twisted_ch.service._web import statusResource


async def serve(resource: Any) -> Any:
    return reactor.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[attr-defined]


async def request(
    url: str,
    body: object = None,
    contentType: bytes = b"application/json",
    host: bytes | None = None,
) -> tuple[int, Any]:
    agent = Agent(reactor)
    headers = Headers({b"content-type": [contentType]})
    if host is not None:
        headers.setRawHeaders(b"host", [host])
    if body is None:
        response = await agent.request(b"GET", url.encode())
    else:
        producer = FileBodyProducer(BytesIO(json.dumps(body).encode()))
        response = await agent.request(b"POST", url.encode(), headers, producer)
    data = await readBody(response)
    return response.code, json.loads(data) if data.startswith((b"{", b"[")) else data


@pytest_twisted.ensureDeferred
async def test_state_and_actions_over_http() -> None:
    tlp = UIDevice("TLP-http", reactor=reactor)
    power = Button(tlp, 8001)
    label = Label(tlp, 300)
    level = Level(tlp, 301)
    slider = Slider(tlp, "Volume")
    events: list[tuple[Any, ...]] = []
    power.Pressed = lambda b, s: events.append((b.ID, s))
    power.Released = lambda b, s: events.append((b.ID, s))
    slider.Changed = lambda sl, s, v: events.append((sl.ID, s, v))
    label.SetText("Projector off")
    level.SetLevel(40)
    tlp.ShowPage("Main")
    port = await serve(statusResource(Registry()))  # mounted on the status page
    base = f"http://127.0.0.1:{port.getHost().port}/panel/"
    try:
        code, page = await request(base)
        assert code == 200 and b"Virtual panel" in page
        code, state = await request(base + "state")
        mine = next(d for d in state["devices"] if d["alias"] == "TLP-http")
        assert mine["page"] == "Main"
        byId = {c["id"]: c for c in mine["controls"]}
        assert byId[300] == {
            "id": 300,
            "kind": "Label",
            "name": "Label300",
            "visible": True,
            "enabled": True,
            "text": "Projector off",
        }
        assert byId[301]["level"] == 40 and byId["Volume"]["kind"] == "Slider"
        for action in ("press", "release"):
            code, answer = await request(
                base + "action", {"device": "TLP-http", "id": 8001, "action": action}
            )
            assert (code, answer) == (200, {"ok": True})
        await request(
            base + "action", {"device": "TLP-http", "id": "Volume", "action": "slide", "value": 30}
        )
        assert events == [(8001, "Pressed"), (8001, "Released"), ("Volume", "Changed", 30)]

        # guards: a JSON content type, a Host naming this machine, known devices and controls
        code, answer = await request(
            base + "action",
            {"device": "TLP-http", "id": 8001, "action": "press"},
            contentType=b"text/plain",
        )
        assert code == 415
        code, answer = await request(
            base + "action",
            {"device": "TLP-http", "id": 8001, "action": "press"},
            host=b"evil.example:80",
        )
        assert code == 403
        code, answer = await request(
            base + "action", {"device": "nope", "id": 1, "action": "press"}
        )
        assert (code, answer["error"]) == (400, "no UIDevice 'nope'")
        code, answer = await request(
            base + "action", {"device": "TLP-http", "id": 300, "action": "press"}
        )
        assert (code, answer["error"]) == (400, "cannot 'press' a Label")
        assert events == [(8001, "Pressed"), (8001, "Released"), ("Volume", "Changed", 30)]
    finally:
        await port.stopListening()


def test_panel_state_lists_only_the_given_devices() -> None:
    from twisted.internet.task import Clock

    tlp = UIDevice("Only", reactor=Clock())
    Button(tlp, 1).SetText("One")
    state = panelState(lambda: [tlp])
    assert [d["alias"] for d in state["devices"]] == ["Only"]  # type: ignore[index]


PROGRAM = """
from extronlib import event
from extronlib.device import UIDevice
from extronlib.ui import Button, Label, Level

Panel = UIDevice('ConferenceTLP')
PowerButton = Button(Panel, 8000, holdTime=5)
PowerButton.SetText('Power')
Status = Label(Panel, 100)
Status.SetText('Ready')
Volume = Level(Panel, 101)
Volume.SetLevel(60)
presses = []

@event(PowerButton, ['Pressed', 'Tapped'])
def OnPower(button, state):
    presses.append(state)
    Status.SetText('Power {} ({})'.format(state, len(presses)))
    if state == 'Tapped':
        button.SetState(1)
"""


@pytest_twisted.ensureDeferred
async def test_a_browser_presses_a_program_button(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(PROGRAM))
    program = Program(reactor, name="panel-test")
    namespace = await program.runFile(path)
    panel = namespace["Panel"]
    root = Resource()
    root.putChild(b"panel", panelResource(lambda: [panel]))
    port = await serve(root)
    url = f"http://127.0.0.1:{port.getHost().port}/panel"
    try:
        await threads.deferToThread(browser.get, url)

        def labelText(b: Any) -> str:
            return str(b.find_element("css selector", "[data-key='ConferenceTLP|100']").text)

        await threads.deferToThread(waitFor, browser, lambda b: labelText(b) == "Ready")
        button = await threads.deferToThread(
            browser.find_element, "css selector", "button[data-id='8000']"
        )
        assert await threads.deferToThread(lambda: button.text) == "Power"
        meter = await threads.deferToThread(
            browser.find_element, "css selector", "[data-key='ConferenceTLP|101']"
        )
        assert await threads.deferToThread(meter.get_attribute, "value") == "60"
        await threads.deferToThread(button.click)  # press and release: Pressed, then Tapped
        await threads.deferToThread(waitFor, browser, lambda b: labelText(b) == "Power Tapped (2)")
        assert namespace["presses"] == ["Pressed", "Tapped"]
        await threads.deferToThread(
            waitFor, browser, lambda b: "state1" in (button.get_attribute("class") or "")
        )
        shot = tmp_path / "panel.png"
        await threads.deferToThread(browser.save_screenshot, str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        await port.stopListening()
        await program.stop()
