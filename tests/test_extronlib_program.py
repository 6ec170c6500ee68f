"""
Programs as they come from the field: C{import ConnectionHandler}, a Global Scripter-generated
main.py header, and a program using ui objects, run in-process and under C{twistd chandler
--program} (driven through the virtual panel over HTTP).
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_tap import URL, chandler, getJSON, stop
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from twisted_ch.extronlib import _files
from twisted_ch.program import Program


@pytest.fixture
def freshImports() -> Iterator[None]:
    """Each program imports its own ConnectionHandler; leave sys.path and modules as found."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name == "ConnectionHandler" or not name.startswith(("twisted", "extronlib")):
            sys.modules.pop(name, None)
    sys.modules.pop("ConnectionHandler", None)
    _files.setDataDirectory(None, program=True)


async def run(path: Path) -> dict[str, Any]:
    program = Program(reactor, name=path.stem)
    try:
        return await program.runFile(path)
    finally:
        await program.stop()


@pytest_twisted.ensureDeferred
async def test_import_connection_handler_gives_twisted_chs(
    tmp_path: Path, freshImports: None
) -> None:
    import twisted_ch

    main = tmp_path / "main.py"
    main.write_text(
        "from ConnectionHandler import GetConnectionHandler, RawTcpHandler, ServerExHandler\n"
        "import ConnectionHandler\n"
    )
    namespace = await run(main)
    assert namespace["GetConnectionHandler"] is twisted_ch.GetConnectionHandler
    assert namespace["ServerExHandler"] is twisted_ch.ServerExHandler
    assert "GetConnectionHandler" in namespace["ConnectionHandler"].__all__


@pytest_twisted.ensureDeferred
async def test_a_program_bringing_its_own_connection_handler_runs_it(
    tmp_path: Path, freshImports: None
) -> None:
    (tmp_path / "ConnectionHandler.py").write_text(
        "from extronlib.interface import EthernetClientInterface\n"
        "ORIGIN = 'the program'\n"
        "def GetConnectionHandler(interface, keepAlive, **kw):\n"
        "    return ('own', interface)\n"
    )
    main = tmp_path / "main.py"
    main.write_text(
        "from ConnectionHandler import GetConnectionHandler, ORIGIN, EthernetClientInterface\n"
        "result = GetConnectionHandler(EthernetClientInterface('127.0.0.1', 23), None)\n"
    )
    namespace = await run(main)
    assert namespace["ORIGIN"] == "the program"
    assert namespace["result"][0] == "own"
    # on twisted_ch's extronlib
    assert namespace["EthernetClientInterface"].__module__ == "twisted_ch.extronlib.interface"


@pytest_twisted.ensureDeferred
async def test_a_raising_event_handler_is_in_the_saved_program_log(
    tmp_path: Path, freshImports: None
) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        "from extronlib.device import UIDevice\n"
        "from extronlib.ui import Button\n"
        "from extronlib.system import SaveProgramLog\n"
        "tlp = UIDevice('LogPanel')\n"
        "b = Button(tlp, 1)\n"
        "def broken(button, state):\n"
        "    raise ZeroDivisionError('handler bug')\n"
        "b.Pressed = broken\n"
    )
    program = Program(reactor, name="log-test")
    try:
        namespace = await program.runFile(main)
        namespace["b"].press()
        await program.runCallable(lambda: None)  # the handler ran before this
        await program.runCallable(namespace["SaveProgramLog"], "log.txt")
    finally:
        await program.stop()
    saved = (tmp_path / "data" / "user" / "log.txt").read_text()
    assert "ZeroDivisionError: handler bug" in saved and "broken" in saved


GS_PROGRAM = """
## Begin ControlScript Import --------------------------------------------------
from extronlib import event, Version
from extronlib.device import eBUSDevice, ProcessorDevice, UIDevice
from extronlib.interface import (CircuitBreakerInterface, ContactInterface,
    DigitalInputInterface, DigitalIOInterface, EthernetClientInterface,
    EthernetServerInterfaceEx, FlexIOInterface, IRInterface, PoEInterface,
    RelayInterface, SerialInterface, SWACReceptacleInterface, SWPowerInterface,
    VolumeInterface)
from extronlib.ui import Button, Knob, Label, Level, Slider
from extronlib.system import (Email, Clock, MESet, Timer, Wait, File, RFile,
    ProgramLog, SaveProgramLog, Ping, WakeOnLan, SetAutomaticTime, SetTimeZone,
    GetUnverifiedContext)
from extronlib.software import SummitConnect

print(Version()) ## Sanity check ControlScript Import
## End ControlScript Import ----------------------------------------------------
##
## Begin User Import -----------------------------------------------------------
from ConnectionHandler import GetConnectionHandler
## End User Import -------------------------------------------------------------
##
## Begin Device/Processor Definition -------------------------------------------
IPCP = ProcessorDevice('IPCP Pro 350')
TLP = UIDevice('TLP Pro 720T')
## End Device/Processor Definition ---------------------------------------------
##
## Begin Device/User Interface Definition --------------------------------------
PowerButton = Button(TLP, 8000)
SourceButtons = [Button(TLP, 8001), Button(TLP, 8002)]
SourceGroup = MESet(SourceButtons)
StatusLabel = Label(TLP, 100)
TickLabel = Label(TLP, 101)
VolumeLevel = Level(TLP, 102)
ScreenRelay = RelayInterface(IPCP, 'RLY1')
## End Device/User Interface Definition ----------------------------------------
##
## Begin Communication Interface Definition ------------------------------------
## End Communication Interface Definition --------------------------------------

def Initialize():
    TLP.ShowPage('Main')
    StatusLabel.SetText('Ready')
    VolumeLevel.SetRange(0, 100, 5)
    VolumeLevel.SetLevel(35)
    SourceGroup.SetCurrent(None)
    print('panel ready')

@Timer(0.2)
def Tick(timer, count):
    TickLabel.SetText('tick {}'.format(count))

@event(PowerButton, 'Pressed')
def PowerPressed(button, state):
    StatusLabel.SetText('System On')
    ScreenRelay.SetState('Close')
    with File('state.txt', 'w') as f:
        f.write('on')
    print('power pressed; relay', ScreenRelay.State)

@event(SourceButtons, 'Pressed')
def SourcePressed(button, state):
    SourceGroup.SetCurrent(button)
    StatusLabel.SetText('Source {}'.format(button.ID))

Initialize()
"""


async def post(url: str, action: dict[str, Any]) -> dict[str, Any]:
    headers = Headers({b"content-type": [b"application/json"]})
    body = FileBodyProducer(BytesIO(json.dumps(action).encode()))
    response = await Agent(reactor).request(b"POST", url.encode(), headers, body)
    answer: dict[str, Any] = json.loads(await readBody(response))
    return answer


async def pollPanel(url: str, done: Any, seconds: float = 20.0) -> dict[str, Any]:
    """Read /panel/state every 100 ms until C{done(controls by id)}; those controls."""
    deadline = reactor.seconds() + seconds
    while True:
        state = await getJSON(url + "state")
        controls = {c["id"]: c for d in state["devices"] for c in d["controls"]}
        if done(controls):
            return controls
        if reactor.seconds() > deadline:
            raise AssertionError(f"the panel never satisfied the test: {state}")
        await deferLater(reactor, 0.1, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_gs_program_with_ui_objects_under_twistd(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(GS_PROGRAM))
    process = chandler(
        tmp_path, "--program", str(tmp_path / "main.py"), "--ssh-host-key-policy", "accept-new"
    )
    try:
        base = (await process.waitFor(URL.pattern)).group(1).decode("ascii")
        panel = base + "panel/"
        await process.waitFor(rb"panel ready")
        controls = await pollPanel(
            panel,
            lambda c: c.get(100, {}).get("text") == "Ready" and c.get(102, {}).get("level") == 35,
        )
        assert controls[8000]["kind"] == "Button"
        # the decorated Timer ticks on the program thread and sets its label
        await pollPanel(panel, lambda c: c[101]["text"] not in ("", "tick 1"))
        for action in ("press", "release"):
            assert await post(
                panel + "action", {"device": "TLP Pro 720T", "id": 8000, "action": action}
            ) == {"ok": True}
        await pollPanel(panel, lambda c: c[100]["text"] == "System On")
        await process.waitFor(rb"power pressed; relay Close")
        assert (tmp_path / "data" / "user" / "state.txt").read_text() == "on"
        await post(panel + "action", {"device": "TLP Pro 720T", "id": 8002, "action": "press"})
        controls = await pollPanel(panel, lambda c: c[100]["text"] == "Source 8002")
        assert (controls[8001]["state"], controls[8002]["state"]) == (0, 1)
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "Traceback" not in process.text, process.text


@pytest_twisted.ensureDeferred
async def test_twistd_rejects_an_unknown_host_key_policy(tmp_path: Path) -> None:
    from test_tap import ended

    (tmp_path / "main.py").write_text("pass\n")
    process = chandler(
        tmp_path, "--program", str(tmp_path / "main.py"), "--ssh-host-key-policy", "trust-all"
    )
    code = await ended(process)
    assert code not in (0, None)
    assert "--ssh-host-key-policy must be 'reject' or 'accept-new'" in process.text


def test_the_host_key_option_sets_the_program_wide_default(tmp_path: Path) -> None:
    from twisted_ch.extronlib.interface import defaultHostKeyPolicy, setDefaultHostKeyPolicy
    from twisted_ch.tap import Options

    (tmp_path / "main.py").write_text("pass\n")
    try:
        options = Options()
        options.parseOptions(["--program", str(tmp_path / "main.py")])
        assert defaultHostKeyPolicy() == "reject"  # the default stays reject
        options = Options()
        options.parseOptions(
            ["--program", str(tmp_path / "main.py"), "--ssh-host-key-policy", "accept-new"]
        )
        assert defaultHostKeyPolicy() == "accept-new"
    finally:
        setDefaultHostKeyPolicy("reject")


def test_the_config_program_section_sets_the_default_host_key_policy(tmp_path: Path) -> None:
    """[program] hostKeyPolicy is the default; the command line wins over it."""
    from twisted.python import usage

    from twisted_ch.extronlib.interface import defaultHostKeyPolicy, setDefaultHostKeyPolicy
    from twisted_ch.tap import Options

    (tmp_path / "main.py").write_text("pass\n")
    config = tmp_path / "site.toml"
    config.write_text('[program]\nfile = "main.py"\nhostKeyPolicy = "accept-new"\n')
    try:
        Options().parseOptions(["--config", str(config)])
        assert defaultHostKeyPolicy() == "accept-new"
        Options().parseOptions(["--config", str(config), "--ssh-host-key-policy", "reject"])
        assert defaultHostKeyPolicy() == "reject"
        config.write_text('[program]\nfile = "main.py"\nhostKeyPolicy = "trust-all"\n')
        with pytest.raises(usage.UsageError, match=r"program\.hostKeyPolicy: .*'trust-all'"):
            Options().parseOptions(["--config", str(config)])
    finally:
        setDefaultHostKeyPolicy("reject")


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "panel" / "main.py"


@pytest_twisted.ensureDeferred
async def test_the_panel_example_runs_and_its_buttons_drive_the_simulated_projector(
    tmp_path: Path, freshImports: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twisted_ch.testing import waitUntil

    program = Program(reactor, name="panel-example")
    ns: dict[str, Any] = {}
    try:
        # (a copy, so that its data directory is the test's)
        copy = tmp_path / "main.py"
        copy.write_text(EXAMPLE.read_text())
        simulator = EXAMPLE.with_name("simulated_projector.py")
        (tmp_path / simulator.name).write_text(simulator.read_text())
        monkeypatch.setenv("PANEL_PROJECTOR_PORT", "0")
        ns = await program.runFile(copy)
        projector = ns["simulated_projector"].LISTENING[-1]
        status = ns["Status"]
        await waitUntil(reactor, lambda: ns["Projector"].Interface.link.connected)
        # the simulator answers the first keep-alive: Connected (before the press that follows)
        await waitUntil(reactor, lambda: status.Text == "Projector Connected")
        ns["Sources"][1].press()
        ns["Sources"][1].release()
        await waitUntil(reactor, lambda: status.Text == "Input 2")
        assert [b.State for b in ns["Sources"]] == [0, 1, 0]
        await waitUntil(reactor, lambda: projector.factory.input == "2")
    finally:
        if ns:
            await ns["Projector"].Disconnect()
            await ns["simulated_projector"].LISTENING[-1].stopListening()
            for timer in (ns["WarmupTimer"], ns["ShowTime"]):
                timer.Stop()
        await program.stop()
