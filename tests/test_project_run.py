"""C{twistd chandler --project DIR}: a Global Scripter project folder runs, its addresses mapped."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_tap import LOOPBACK_ANY_PORT, TWISTD, URL, Twistd, stop
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.python import usage
from twisted.web import resource, server

from twisted_ch.tap import Options
from twisted_ch.testing import listenDevice
from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer

MAIN = """
import urllib.request

from extronlib.interface import EthernetClientInterface
from modules.display import DisplaySerialOverEthernetClass
from modules.projector import Projector
from twisted_ch import _site

site = _site.current()
print('layout is', site.layoutFor('PodiumTLP'), site.ui['PodiumTLP']['press_feedback'])
projector = Projector('192.168.1.12', 23)
print('connect says', projector.Connect(5))
print('answer is', projector.SendAndWait('P', 5, deliTag=b'\\r\\n'))
print('address is', projector.IPAddress, projector.IPPort)
display = DisplaySerialOverEthernetClass('192.168.1.14', 2003)
print('display says', display.Connect(5), display.SendAndWait('D', 5, deliTag=b'\\r\\n'))
switcher = EthernetClientInterface('192.168.1.13', 22023, 'SSH', Credentials=('admin', 'extron'))
print('switcher says', switcher.Connect(10), switcher.SendAndWait('S?', 5, deliLen=2))
with urllib.request.urlopen('http://camera.example/status', timeout=5) as answer:
    print('camera says', answer.read())
"""

MODULE = """
from extronlib.interface import EthernetClientInterface

class Projector(EthernetClientInterface):
    def __init__(self, Hostname, IPPort):
        EthernetClientInterface.__init__(self, Hostname, IPPort, 'TCP')
"""

DISPLAY = """
from extronlib.interface import EthernetClientInterface

class DeviceClass:
    pass

class DisplaySerialOverEthernetClass(EthernetClientInterface, DeviceClass):
    def __init__(self, Hostname, IPPort, Protocol='TCP', ServicePort=0, Model=None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, ServicePort)
        DeviceClass.__init__(self)
"""


def chandler(cwd: Path, *args: str) -> Twistd:
    """C{twistd -n chandler ARGS} with HOME in C{cwd} (SSH's accept-new writes known_hosts)."""
    process = Twistd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["HOME"] = str(cwd)
    argv = [TWISTD, "-n", "--pidfile=", "chandler", "--status-port", LOOPBACK_ANY_PORT, *args]
    reactor.spawnProcess(process, TWISTD, argv, env=env, path=str(cwd))
    return process


class _Camera(resource.Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - twisted.web's name
        return b"ok from " + (request.getHeader(b"host") or b"")


def writeProject(folder: Path) -> Path:
    (folder / "src" / "modules").mkdir(parents=True)
    (folder / "layout").mkdir()
    (folder / "src" / "main.py").write_text(textwrap.dedent(MAIN))
    (folder / "src" / "modules" / "projector.py").write_text(textwrap.dedent(MODULE))
    (folder / "src" / "modules" / "display.py").write_text(textwrap.dedent(DISPLAY))
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
    display = listenDevice(reactor, {b"D": b"On\r\n"})
    sshd = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": "extron"})
    sshd.start()
    camera = reactor.listenTCP(0, server.Site(_Camera()), interface="127.0.0.1")
    folder = tmp_path / "Boardroom"
    writeProject(folder)
    config = tmp_path / "map.toml"
    project = 'project = "Boardroom"\n' if how == "config" else ""
    config.write_text(
        f'[program]\n{project}hostKeyPolicy = "accept-new"\n'
        "[program.addresses]\n"
        f'"192.168.1.12:23" = "tcp:127.0.0.1:{device.port}"\n'
        f'"192.168.1.14" = "127.0.0.1:{display.port}"\n'
        f'"192.168.1.13:22023" = "tcp:127.0.0.1:{sshd.port}"\n'
        f'"camera.example" = "127.0.0.1:{camera.getHost().port}"\n'
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
        await process.waitFor(rb"display says Connected b'On\\r\\n'")
        await process.waitFor(rb"switcher says Connected b'S\?'")
        await process.waitFor(rb"camera says b'ok from camera.example'")
        assert f"192.168.1.12:23 -> tcp:127.0.0.1:{device.port}" in process.text
        assert f"running program {folder / 'src' / 'main.py'}" in process.text
        assert await stop(process) == 0
        # the switcher's key, trusted on first use (in this test's HOME)
        key = sshd.hostKey.public().toString("openssh").decode("ascii")
        assert key in (tmp_path / ".ssh" / "known_hosts").read_text()
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await device.shutdown()
        await display.shutdown()
        await sshd.stop()
        await camera.stopListening()


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
