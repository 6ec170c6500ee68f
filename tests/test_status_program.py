"""
The [program] section: what a ControlScript program names (COM1, an SP device, a Dante device,
its processor's Online/Offline) mapped to this machine without editing the program.
"""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.task import deferLater

from twisted_ch import _site
from twisted_ch.service._config import ConfigError, parseConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import ProgramService
from twisted_ch.testing import DeviceServer

PROGRAM = """
import chandler_site_hooks as hooks
from extronlib import event
from extronlib.device import ProcessorDevice, SPDevice
from extronlib.interface import DanteInterface, SerialInterface
from twisted_ch import GetConnectionHandler

Processor = ProcessorDevice('IPCP-Pro')
Display = SerialInterface(Processor, 'COM1')
Projector = SerialInterface(Processor, 'COM2')
SP = SPDevice('SP-1')
Amp = DanteInterface('Amp-1')

@event(Processor, ['Online', 'Offline'])
def ProcessorState(device, state):
    hooks.report(state)

def KeepAlive(interface):
    if interface.SendAndWait('P', 1, deliTag=b'\\r\\n').startswith(b'Pwr'):
        interface.ResponseAccepted()

DisplayHandler = GetConnectionHandler(Display, KeepAlive, pollFrequency=0.2)
DisplayHandler.Connect()
hooks.report(('paths', Display.devicePath, Projector.devicePath, SP.spEndpoint))
hooks.interfaces(Projector, Amp)  # no handler stops them: the test closes them
hooks.report(('amp', Amp.Connect(2)))
"""


def config(display: int, amp: int, online: int) -> dict[str, Any]:
    return {
        "program": {
            "ports": {"COM1": "/dev/ttyUSB0", "COM2": "/dev/ttyUSB1"},
            "hosts": {
                "IPCP-Pro": {
                    "ports": {"COM1": f"tcp:host=127.0.0.1:port={display}"},
                    "online": f"tcp:host=127.0.0.1:port={online}",
                    "onlineEvery": 0.2,
                },
                "SP-1": {"spEndpoint": "tcp:host=127.0.0.1:port=9"},
            },
            "dante": {"Amp-1": f"tcp:host=127.0.0.1:port={amp}"},
        }
    }


@pytest_twisted.ensureDeferred
async def test_a_program_runs_on_this_machine_as_configured(tmp_path: Path) -> None:
    display = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    amp = DeviceServer(reactor, {})
    processor = DeviceServer(reactor, {})  # the real host whose reachability is Online
    for server in (display, amp, processor):
        server.start()
    reports: DeferredQueue[Any] = DeferredQueue()
    hooks: Any = types.ModuleType("chandler_site_hooks")
    hooks.report = lambda value: reactor.callFromThread(reports.put, value)
    interfaces: list[Any] = []
    hooks.interfaces = lambda *found: interfaces.extend(found)
    sys.modules["chandler_site_hooks"] = hooks
    program = tmp_path / "main.py"
    program.write_text(PROGRAM)
    parsed = parseConfig(config(display.port, amp.port, processor.port), reactor=reactor)
    assert parsed.program is not None
    registry = Registry(clock=reactor)
    service = ProgramService(reactor, str(program), registry, config=parsed.program)
    failed: list[Any] = []
    service.onFailure = failed.append
    service.startService()

    async def next() -> Any:
        d: Deferred[Any] = reports.get()
        return await d.addTimeout(10, reactor)

    try:
        assert await next() == (
            "paths",
            f"tcp:host=127.0.0.1:port={display.port}",  # the host's own alias wins
            "/dev/ttyUSB1",  # every host's alias
            "tcp:host=127.0.0.1:port=9",
        )
        assert await next() == ("amp", "Connected")
        for _ in range(100):  # a bounded wait for the display's handler to answer
            rows = registry.snapshot()["devices"]
            if any(r["state"] == "Connected" and r["polls"] > 1 for r in rows):  # type: ignore[attr-defined,index]
                break
            await deferLater(reactor, 0.05, lambda: None)
        states = {r.get("variable"): r["state"] for r in registry.snapshot()["devices"]}  # type: ignore[attr-defined]
        assert states["DisplayHandler"] == "Connected", states
        # every link of the program, each once: the handler's row stands for its interface
        for _ in range(100):  # a bounded wait for the top level's globals to be named
            rows = registry.snapshot()["devices"]
            if len(rows) == 3 and all("variable" in r for r in rows):  # type: ignore[attr-defined,operator]
                break
            await deferLater(reactor, 0.05, lambda: None)
        byVariable = {r["variable"]: r for r in registry.snapshot()["devices"]}  # type: ignore[attr-defined]
        assert sorted(byVariable) == ["Amp", "DisplayHandler", "Projector"], byVariable
        handled = byVariable["DisplayHandler"]
        assert (handled["handlerKind"], handled["interface"]) == ("twisted_ch", "SerialInterface")
        assert (handled["address"], handled["link"]) == ("IPCP-Pro:COM1", "connected")
        bare = byVariable["Projector"]
        assert (bare["handler"], bare["interface"]) == (None, "SerialInterface")
        assert bare["address"] == "IPCP-Pro:COM2"
        dante = byVariable["Amp"]
        assert (dante["interface"], dante["address"], dante["state"]) == (
            "DanteInterface",
            "Amp-1",
            "Connected",
        )
        assert b"P" in display.received
        # the processor's host goes away: Offline, then back: Online
        await processor.stop()
        assert await next() == "Offline"
        processor.start()
        assert await next() == "Online"
        assert failed == []
    finally:
        await service.stopService()
        for interface in interfaces:
            await interface.link.close()
        sys.modules.pop("chandler_site_hooks", None)
        for server in (display, amp, processor):
            await server.shutdown()
    assert _site.current() is None
    assert service._online == {}


def test_the_section_is_checked() -> None:
    good = config(1, 2, 3)
    assert parseConfig(good).program is not None
    bad = [
        ({"program": {"colour": 1}}, "program.colour: unknown key"),
        ({"program": {"ports": {"COM1": 5}}}, "program.ports.COM1: expected a device path"),
        ({"program": {"ports": {"COM1": ""}}}, "program.ports.COM1"),
        ({"program": {"hosts": {"P": {"online": "nope:x"}}}}, "program.hosts.P.online"),
        ({"program": {"hosts": {"P": {"onlineEvery": 0}}}}, "program.hosts.P.onlineEvery"),
        ({"program": {"dante": {"A": "tcp:host=h:port=many"}}}, "program.dante.A"),
        ({"program": {"hosts": {"P": {"size": 1}}}}, "program.hosts.P.size: unknown key"),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError) as e:
            parseConfig(data, reactor=reactor)
        assert message in str(e.value), str(e.value)


def test_program_file_from_the_config(tmp_path: Path) -> None:
    from twisted_ch.tap import Options

    (tmp_path / "main.py").write_text("print('hello')\n")
    site = tmp_path / "site.toml"
    site.write_text(
        textwrap.dedent(
            """
            [program]
            file = "main.py"
            ports = { COM1 = "/dev/ttyUSB0" }
            """
        )
    )
    options = Options()
    options.parseOptions(["--config", str(site)])
    assert options["program"] == str(tmp_path / "main.py")
    site.write_text('[program]\nfile = "missing.py"\n')
    from twisted.python.usage import UsageError

    with pytest.raises(UsageError, match="program.file: no such file"):
        Options().parseOptions(["--config", str(site)])
