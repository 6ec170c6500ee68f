"""
Issue 22's "done when": a Global Scripter project folder (tests/project_fixture.py: an SSH
module, a serial-over-Ethernet module, a raw TCP interface, an HTTP module, a panel with two
pages, a popup group and a modal popup) runs unedited under a real
C{twistd -n chandler --project DIR --config map.toml}, as an unprivileged user, every device
simulated on loopback in this process; /status lists every device; the panel in Chromium shows
the layout and a press changes a device.  Then the same project bringing its own
C{ConnectionHandler.py} (a stand-in with Extron's public names) shows every device on /status.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from browser import waitFor
from project_fixture import ADDRESSES, ALIAS, Display, Matrix, writeProject
from test_examples import loadProjectModule
from test_tap import LOOPBACK_ANY_PORT, TWISTD, URL, Twistd, pollStatus, stop
from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.threads import deferToThread

from twisted_ch.testing import SSHTestServer, waitUntil

#: the uid and gid twistd runs as when this test runs as root (nobody)
UNPRIVILEGED = 65534


@asynccontextmanager
async def devices() -> AsyncIterator[dict[str, Any]]:
    """Every device of the project, simulated on loopback; yields them and their targets."""
    simulators = loadProjectModule("simulators")
    room = simulators.listen(reactor, {"projector": 0, "dsp": 0, "lights": 0})
    matrix, display = Matrix(), Display()
    ssh = SSHTestServer(reactor, matrix, users={"admin": "extron"})
    sshPort = ssh.start()
    displayPort = reactor.listenTCP(0, display, interface="127.0.0.1")
    projectorPort, _, lightsPort = (p.getHost().port for p in room.ports)
    try:
        yield {
            "room": room,
            "matrix": matrix,
            "display": display,
            "ssh": ssh,
            "targets": {
                "matrix": f"tcp:127.0.0.1:{sshPort}",
                "display": f"tcp:127.0.0.1:{displayPort.getHost().port}",
                "projector": f"tcp:127.0.0.1:{projectorPort}",
                "lights": f"tcp:127.0.0.1:{lightsPort}",
            },
        }
    finally:
        await gatherResults([room.stop(), ssh.stop(), displayPort.stopListening()])


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A folder the unprivileged user can own (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="twisted_ch-project-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def handOver(base: Path) -> None:
    """Give C{base} and everything in it to the unprivileged user (when running as root)."""
    if os.geteuid() != 0:
        return
    for path in [base, *base.rglob("*")]:
        os.chown(path, UNPRIVILEGED, UNPRIVILEGED)


def chandlerUnprivileged(base: Path, *args: str) -> Twistd:
    """
    C{twistd -n chandler ARGS} with HOME in C{base}; as root, under C{setpriv} as nobody with no
    groups and no capabilities (so nothing privileged can happen).
    """
    process = Twistd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["HOME"] = str(base / "home")
    command = [TWISTD, "-n", "--pidfile=", "chandler", "--status-port", LOOPBACK_ANY_PORT, *args]
    if os.geteuid() == 0:
        command = [
            "/usr/bin/setpriv",
            f"--reuid={UNPRIVILEGED}",
            f"--regid={UNPRIVILEGED}",
            "--clear-groups",
            "--inh-caps=-all",
            *command,
        ]
    reactor.spawnProcess(process, command[0], command, env=env, path=str(base))
    return process


def runningAs(process: Twistd) -> int:
    """The real uid of the child (from /proc)."""
    pid = process.transport.pid  # type: ignore[attr-defined]
    status = Path(f"/proc/{pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("Uid:")]
    return int(line.split()[1])


def listed(document: dict[str, Any], address: str) -> dict[str, Any] | None:
    """The /status row of the device the program names C{address} (C{host:port})."""
    host, port = address.rsplit(":", 1)
    for row in document["devices"]:
        text = json.dumps(row)
        if host in text and port in text:
            return row  # type: ignore[no-any-return]
    return None


def everyDeviceConnected(document: dict[str, Any]) -> bool:
    rows = [listed(document, address) for address in ADDRESSES]
    return all(row is not None and row["state"] == "Connected" for row in rows)


def interfacesConnected(document: dict[str, Any]) -> bool:
    """The SSH, serial-over-Ethernet and TCP links listed by address, and four links Connected
    (the HTTP module's row is found by address only once the structure branch lands)."""
    rows = [listed(document, a) for a in ADDRESSES if ADDRESSES[a] != "lights"]
    connected = [d for d in document["devices"] if d["state"] == "Connected"]
    return all(row is not None and row["state"] == "Connected" for row in rows) and len(
        connected
    ) == len(ADDRESSES)


# --- the panel in Chromium -------------------------------------------------------------------

SHOWN = """
const screen = document.querySelector('.screen[data-alias="' + arguments[0] + '"]');
if (!screen) return null;
const shown = (e) => e.offsetParent !== null && getComputedStyle(e).display !== 'none';
const out = {containers: [], controls: {}};
for (const c of screen.querySelectorAll('.container')) {
  if (shown(c)) out.containers.push(c.dataset.name);
}
for (const g of screen.querySelectorAll('.container.shown .gc')) {
  if (!shown(g)) continue;
  const face = g.querySelector('img.face:not([hidden])');
  const text = g.querySelector('.text');
  out.controls[g.dataset.uid] = {name: g.dataset.name, state: g.dataset.state,
    image: face ? face.getAttribute('src') : null, text: text ? text.innerText : null};
}
return out;
"""


def shown(browser: Any) -> Any:
    return browser.execute_script(SHOWN, ALIAS)


def press(browser: Any, uid: int) -> None:
    """Tap the shown control C{uid} at its centre, as a finger would."""
    element = browser.execute_script(
        "const s = document.querySelector('.screen[data-alias=\"' + arguments[0] + '\"]');"
        "const all = s.querySelectorAll('.container.shown .gc[data-uid=\"' + arguments[1] + '\"]');"
        "return all[all.length - 1];",
        ALIAS,
        uid,
    )
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(element).click_and_hold().pause(0.05).release().perform()


@pytest_twisted.ensureDeferred
async def test_a_gs_project_runs_unedited_unprivileged_and_its_panel_drives_the_devices(
    browser: Any, workspace: Path
) -> None:
    base = workspace
    async with devices() as sims:
        (base / "home" / ".ssh").mkdir(parents=True)
        # the simulated switcher's host key, trusted as an installer would (policy: reject)
        (base / "home" / ".ssh" / "known_hosts").write_text(sims["ssh"].knownHostsLine())
        config = writeProject(base / "Boardroom", sims["targets"])
        handOver(base)
        process = chandlerUnprivileged(
            base, "--project", str(base / "Boardroom"), "--config", str(config)
        )
        try:
            status = (await process.waitFor(URL.pattern, 30)).group(1).decode("ascii")
            if os.geteuid() == 0:
                assert runningAs(process) == UNPRIVILEGED
            # /status lists every device the program created, by the address it named
            document = await pollStatus(status, interfacesConnected, 30)
            for address in ADDRESSES:
                await process.waitFor(address.encode().replace(b".", rb"\.") + rb" -> tcp:")

            # the panel in Chromium: the layout's page Main, its controls by their layout names
            await deferToThread(browser.get, status + "panel/")

            def onMain(b: Any) -> Any:
                view = shown(b)
                return view and "Main" in view["containers"] and view

            view = await deferToThread(waitFor, browser, onMain, 20, "page Main never shown")
            assert view["controls"]["1"]["name"] == "Rooms"
            assert view["controls"]["1"]["image"].endswith(".png")
            assert view["controls"]["100"]["text"] == "Ready"

            # the popup group: Sources, then Lighting in its place
            await deferToThread(press, browser, 2)
            await deferToThread(waitFor, browser, lambda b: "Sources" in shown(b)["containers"], 10)
            await deferToThread(press, browser, 11)  # Laptop: matrix input 2 -> output 1
            await waitUntil(reactor, lambda: sims["matrix"].ties.get("1") == "2", 10)
            await deferToThread(
                waitFor, browser, lambda b: shown(b)["controls"]["11"]["state"] == "1", 10
            )
            await deferToThread(press, browser, 12)  # Display on, projector input 3
            await waitUntil(reactor, lambda: sims["display"].power == "1", 10)
            await waitUntil(reactor, lambda: sims["room"].projector.input == "3", 10)
            await deferToThread(press, browser, 3)
            await deferToThread(
                waitFor,
                browser,
                lambda b: (
                    "Lighting" in shown(b)["containers"] and "Sources" not in shown(b)["containers"]
                ),
                10,
            )
            await deferToThread(press, browser, 21)  # scene 3 over HTTP
            await waitUntil(reactor, lambda: sims["room"].lights.scene == "3", 10)

            # the modal popup, and the second page
            await deferToThread(press, browser, 4)
            await deferToThread(waitFor, browser, lambda b: "Confirm" in shown(b)["containers"], 10)
            await deferToThread(press, browser, 31)
            await waitUntil(reactor, lambda: sims["display"].power == "0", 10)
            await deferToThread(press, browser, 1)
            await deferToThread(waitFor, browser, lambda b: "Rooms" in shown(b)["containers"], 10)
            assert await stop(process) == 0
        finally:
            if process.running:
                process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "Traceback" not in process.text, process.text
    assert "Permission denied" not in process.text, process.text
    lights = listed(document, "192.168.1.22:8080")  # the HTTP module: named by its variable
    assert lights is not None and lights["name"] == "LightsHandler", document["devices"]


@pytest_twisted.ensureDeferred
async def test_a_gs_project_with_its_own_connection_handler_shows_every_device(
    workspace: Path,
) -> None:
    base = workspace
    async with devices() as sims:
        (base / "home" / ".ssh").mkdir(parents=True)
        (base / "home" / ".ssh" / "known_hosts").write_text(sims["ssh"].knownHostsLine())
        config = writeProject(base / "Boardroom", sims["targets"], ownHandler=True)
        handOver(base)
        process = chandlerUnprivileged(
            base, "--project", str(base / "Boardroom"), "--config", str(config)
        )
        try:
            status = (await process.waitFor(URL.pattern, 30)).group(1).decode("ascii")
            await process.waitFor(rb"ran its top level", 30)
            # the stand-in polls; every link the program created is on /status, Connected
            document = await pollStatus(status, everyDeviceConnected, 30)
            assert len(document["devices"]) >= len(ADDRESSES)
            assert await stop(process) == 0
        finally:
            if process.running:
                process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "Traceback" not in process.text, process.text
    assert sims["matrix"].commands and sims["display"].commands


def test_the_fixture_maps_every_address_its_program_names(tmp_path: Path) -> None:
    config = writeProject(
        tmp_path / "Boardroom", {k: "tcp:127.0.0.1:1" for k in ADDRESSES.values()}
    )
    main = (tmp_path / "Boardroom" / "src" / "main.py").read_text()
    for address in ADDRESSES:
        host, port = address.rsplit(":", 1)
        assert f"'{host}', {port}" in main
    assert config.read_text().count("127.0.0.1") == len(ADDRESSES)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
