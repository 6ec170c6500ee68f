"""
Every example under C{examples/} runs as a user runs it (the command its README or docstring
gives, through the real twistd where that is how it is run, on loopback ports), with its outcome
asserted: its device reaches Connected and a panel press reaches the device.

L{EXAMPLE_TESTS} names the tests of each example directory; a new directory without an entry
there fails L{test_every_example_directory_has_its_tests}.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_extronlib_program import pollPanel, post
from test_tap import LOOPBACK_ANY_PORT, URL, Twistd, chandler, stop

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: per example directory: the test module and the tests in it that run that example
EXAMPLE_TESTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "manual": (
        "test_manual_examples",
        ("test_every_manual_example_file_has_a_test",),
    ),
    "panel": (
        "test_examples",
        ("test_panel_example_under_twistd_connects_and_a_press_reaches_the_projector",),
    ),
    "project": (
        "test_examples",
        (
            "test_project_folder_names_what_its_program_uses",
            "test_project_layout_is_what_make_layout_makes",
            "test_project_example_runs_with_one_command_and_its_panel_drives_the_devices",
        ),
    ),
}


def test_every_example_directory_has_its_tests() -> None:
    directories = {
        p.name for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    }
    assert directories == set(EXAMPLE_TESTS), (
        "add the tests of each example directory to EXAMPLE_TESTS in tests/test_examples.py"
    )
    for directory, (module, names) in EXAMPLE_TESTS.items():
        tree = ast.parse((Path(__file__).parent / f"{module}.py").read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert set(names) <= defined, (directory, set(names) - defined)


# --- examples/panel: the README's showcase --------------------------------------------------

PANEL = "Room 101 TLP"


async def pressAndRelease(panel: str, control: int) -> None:
    for action in ("press", "release"):
        answer = await post(panel + "action", {"device": PANEL, "id": control, "action": action})
        assert answer == {"ok": True}


@pytest_twisted.ensureDeferred
async def test_panel_example_under_twistd_connects_and_a_press_reaches_the_projector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    C{twistd -n chandler --program examples/panel/main.py}: the projector is Connected with its
    first answered keep-alive (not at the 1 s timeout of every SendAndWait, as when the simulator
    ran on the blocked program thread), and presses on the panel reach the simulated projector.
    """
    monkeypatch.setenv("PANEL_PROJECTOR_PORT", "0")  # a free loopback port, not 4999
    process: Twistd = chandler(ROOT, "--program", "examples/panel/main.py")
    try:
        base = (await process.waitFor(URL.pattern)).group(1).decode("ascii")
        panel = base + "panel/"
        await process.waitFor(rb"projector simulator listening on 127\.0\.0\.1:\d+")
        # pollFrequency 2, DisconnectLimit 2: Connected at the first answered poll
        await process.waitFor(rb"projector simulator: PWR\?")
        await process.waitFor(rb"\[twisted_ch\.program#info\] projector Connected")
        await pollPanel(panel, lambda c: c[100]["text"] == "Projector Connected")

        await pressAndRelease(panel, 12)
        await process.waitFor(rb"projector simulator: INP 2")
        controls = await pollPanel(panel, lambda c: c[100]["text"] == "Input 2")
        assert [controls[i]["state"] for i in (11, 12, 13)] == [0, 1, 0]

        # Power on is a hold (holdTime=2): a tap only explains, a hold powers on
        await pressAndRelease(panel, 1)
        await pollPanel(panel, lambda c: c[100]["text"] == "Hold the button to power on")
        assert b"projector simulator: PWR 1" not in process.output
        answer = await post(panel + "action", {"device": PANEL, "id": 1, "action": "press"})
        assert answer == {"ok": True}
        await process.waitFor(rb"projector simulator: PWR 1")
        await post(panel + "action", {"device": PANEL, "id": 1, "action": "release"})
        await pollPanel(panel, lambda c: c[200]["level"] == 100)  # the warm-up bar fills

        await pressAndRelease(panel, 2)
        await process.waitFor(rb"projector simulator: PWR 0")
        await pollPanel(panel, lambda c: c[100]["text"] == "Off")
        assert b"projector Disconnected" not in process.output
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "Traceback" not in process.text, process.text


def loadSimulator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "simulated_projector", EXAMPLES / "panel" / "simulated_projector.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("simulated_projector", module)
    spec.loader.exec_module(module)
    return module


def test_panel_simulator_answers_each_command_with_its_state() -> None:
    projector = loadSimulator().SimulatedProjector()
    assert projector.take("PWR?") == b"PWR=0 INP=1\r"
    assert projector.take("INP 3") == b"PWR=0 INP=3\r"
    assert projector.take("PWR 1") == b"PWR=1 INP=3\r"
    assert projector.take("PWR 7") == b"PWR=1 INP=3\r"  # not a power state: ignored
    assert projector.commands == ["PWR?", "INP 3", "PWR 1", "PWR 7"]


# --- examples/project: a Global Scripter project folder ------------------------------------

PROJECT = EXAMPLES / "project"


def loadProjectModule(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_project_{name}", PROJECT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


#: what the project's program names: (address, port) of every interface it creates
NAMED = re.compile(r"\('(192\.168\.\d+\.\d+)', (\d+)")


def test_project_folder_names_what_its_program_uses() -> None:
    """
    Room101.json is a GS project file whose code folder, entry file and layout exist; map.toml
    maps every address the program names to a loopback port a simulator listens on.
    """
    project = json.loads((PROJECT / "Room101.json").read_text())
    system = project["system"]
    code = PROJECT / system["code_folder_path"]
    assert (code / system["code_entry_file"]).is_file()
    aliases = {d["alias"] for d in project["devices"]}
    assert system["primary_device_alias"] in aliases
    main = (code / system["code_entry_file"]).read_text()
    for device in project["devices"]:
        assert f"'{device['alias']}'" in main  # the program creates each device by its alias
        if "ui" in device:
            assert (PROJECT / system["layout_folder_path"] / device["ui"]["layout_file"]).is_file()
    addresses = tomllib.loads((PROJECT / "map.toml").read_text())["program"]["addresses"]
    named = {f"{host}:{port}" for host, port in NAMED.findall(main)}
    assert named and named == set(addresses)
    simulated = set(loadProjectModule("simulators").PORTS.values())
    for target in addresses.values():
        kind, host, port = target.split(":")
        assert (kind, host) == ("tcp", "127.0.0.1") and int(port) in simulated


def test_project_layout_is_what_make_layout_makes() -> None:
    """layout/Room.gdl is committed generated: make_layout.py makes exactly it, and it reads."""
    from twisted_ch.panel import readLayout

    makeLayout = loadProjectModule("make_layout")
    assert (PROJECT / "layout" / "Room.gdl").read_bytes() == makeLayout.build()
    document = readLayout(PROJECT / "layout" / "Room.gdl").document()
    assert [p["name"] for p in document["pages"]] == ["Welcome", "Main"]
    popups = {p["name"]: (p["group"], p["modal"]) for p in document["popups"]}
    assert popups["Audio"] == popups["Lights"] == (1, False) and popups["Confirm"] == (0, True)


@pytest_twisted.ensureDeferred
async def test_project_example_runs_with_one_command_and_its_panel_drives_the_devices() -> None:
    """
    C{python examples/project/run.py} (the simulators, then twistd chandler --project with
    map.toml): the unedited project's three devices Connected on /status, the panel's controls
    named by the layout, and presses reaching the projector, the DSP module and the HTTP lights.
    """
    from test_tap import pollStatus
    from twisted.internet import reactor

    process = Twistd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    args = [sys.executable, "examples/project/run.py", "--status-port", LOOPBACK_ANY_PORT]
    reactor.spawnProcess(process, sys.executable, args, env=env, path=str(ROOT))
    try:
        base = (await process.waitFor(URL.pattern, 30)).group(1).decode("ascii")
        panel = base + "panel/"
        for address in ("192.168.1.20:4999", "192.168.1.21:1702", "192.168.1.22:8080"):
            pattern = address.replace(".", r"\.") + r" -> tcp:127\.0\.0\.1:"
            await process.waitFor(pattern.encode())
        document = await pollStatus(
            base,
            lambda d: (
                len(d["devices"]) == 3 and all(row["state"] == "Connected" for row in d["devices"])
            ),
            30,
        )
        assert {row["variable"] for row in document["devices"]} == {
            "ProjectorHandler",
            "DSPHandler",
            "LightsHandler",
        }
        controls = await pollPanel(panel, lambda c: c[101]["text"] == "Projector Connected")
        assert controls[2]["name"] == "Start" and controls[40]["name"] == "Mute"  # the layout's

        async def tap(control: int) -> None:
            for action in ("press", "release"):
                answer = await post(
                    panel + "action", {"device": "PanelTLP", "id": control, "action": action}
                )
                assert answer == {"ok": True}

        await tap(2)  # Start: the projector on, page Main, popup Audio
        await process.waitFor(rb"projector: PWR 1")
        await tap(40)
        await process.waitFor(rb"dsp: SET MUTE 1")
        await pollPanel(panel, lambda c: c[40]["state"] == 1)
        await tap(21)
        await tap(52)
        await process.waitFor(rb"lights: set=2")
        await pollPanel(panel, lambda c: c[52]["state"] == 1)
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "Traceback" not in process.text, process.text
