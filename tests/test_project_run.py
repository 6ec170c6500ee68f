"""C{twistd chandler --project DIR}: a Global Scripter project folder runs, its addresses mapped."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import pytest_twisted
from test_tap import URL, chandler, stop
from twisted.internet import reactor
from twisted.python import usage

from twisted_ch.tap import Options
from twisted_ch.testing import listenDevice

MAIN = """
from extronlib.system import Wait
from modules.projector import Projector
from twisted_ch import _site

site = _site.current()
print('layout is', site.layoutFor('PodiumTLP'), site.ui['PodiumTLP']['press_feedback'])
projector = Projector('192.168.1.12', 23)
print('connect says', projector.Connect(5))
print('answer is', projector.SendAndWait('P', 5, deliTag=b'\\r\\n'))
print('address is', projector.IPAddress, projector.IPPort)
"""

MODULE = """
from extronlib.interface import EthernetClientInterface

class Projector(EthernetClientInterface):
    def __init__(self, Hostname, IPPort):
        EthernetClientInterface.__init__(self, Hostname, IPPort, 'TCP')
"""


def writeProject(folder: Path) -> Path:
    (folder / "src" / "modules").mkdir(parents=True)
    (folder / "layout").mkdir()
    (folder / "src" / "main.py").write_text(textwrap.dedent(MAIN))
    (folder / "src" / "modules" / "projector.py").write_text(textwrap.dedent(MODULE))
    (folder / "layout" / "PodiumTLP.gdl").write_text("<layout/>\n")
    data = {
        "system": {
            "name": "Boardroom",
            "code_folder_path": "src",
            "code_entry_file": "main.py",
            "layout_folder_path": "layout",
            "primary_device_alias": "Processor",
        },
        "devices": [
            {"name": "IPCP Pro 350", "part_number": "60-1417-01", "alias": "Processor"},
            {
                "name": "TLP Pro 725T",
                "alias": "PodiumTLP",
                "ui": {"layout_file": "PodiumTLP.gdl", "press_feedback": "state"},
            },
        ],
    }
    path = folder / "Boardroom.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("how", ["option", "config"])
@pytest_twisted.ensureDeferred
async def test_a_project_folder_runs_with_its_modules_layouts_and_mapped_addresses(
    tmp_path: Path, how: str
) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    folder = tmp_path / "Boardroom"
    writeProject(folder)
    config = tmp_path / "map.toml"
    project = 'project = "Boardroom"\n' if how == "config" else ""
    config.write_text(
        f'[program]\n{project}addresses = {{ "192.168.1.12:23" = "tcp:127.0.0.1:{device.port}" }}\n'
    )
    args = ["--config", str(config)]
    if how == "option":
        args = ["--project", str(folder), *args]
    process = chandler(tmp_path, *args)
    try:
        await process.waitFor(URL.pattern)
        layout = folder / "layout" / "PodiumTLP.gdl"
        await process.waitFor(f"layout is {layout} state".encode())
        await process.waitFor(rb"connect says Connected")
        await process.waitFor(rb"answer is b'Pwr1\\r\\n'")
        await process.waitFor(rb"address is 192.168.1.12 23")
        assert f"192.168.1.12:23 -> tcp:127.0.0.1:{device.port}" in process.text
        assert f"running program {folder / 'src' / 'main.py'}" in process.text
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await device.shutdown()


def test_project_and_program_together_and_a_broken_project_are_usage_errors(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "Boardroom"
    path = writeProject(folder)
    with pytest.raises(usage.UsageError, match="--program and --project: give one"):
        Options().parseOptions(
            ["--project", str(folder), "--program", str(folder / "src" / "main.py")]
        )
    (folder / "src" / "main.py").unlink()
    with pytest.raises(usage.UsageError) as e:
        Options().parseOptions(["--project", str(folder)])
    assert str(e.value).startswith(f"{path}: system.code_entry_file: no file ")
    with pytest.raises(usage.UsageError, match="no such project folder"):
        Options().parseOptions(["--project", str(tmp_path / "elsewhere")])


def test_the_command_line_wins_over_the_configs_project(tmp_path: Path) -> None:
    folder = writeProject(tmp_path / "Boardroom").parent
    other = writeProject(tmp_path / "Other").parent
    config = tmp_path / "site.toml"
    config.write_text('[program]\nproject = "Boardroom"\n')
    options = Options()
    options.parseOptions(["--config", str(config), "--project", str(other)])
    assert options["program"] == str(other / "src" / "main.py")
    assert options["programConfig"].project == str(other)
    options = Options()
    options.parseOptions(["--config", str(config)])
    assert options["program"] == str(folder / "src" / "main.py")
    program = tmp_path / "main.py"
    program.write_text("")
    options = Options()
    options.parseOptions(["--config", str(config), "--program", str(program)])
    assert options["program"] == str(program) and options["programConfig"].project is None
