# -*- test-case-name: tests.test_examples -*-
"""
The example room's devices, simulated on loopback (Twisted code, on the reactor), at the ports
``map.toml`` maps the program's addresses to:

=====================  ==========================  ============================================
device                 the program names           simulated at
=====================  ==========================  ============================================
projector (raw TCP)    ``192.168.1.20:4999``       ``127.0.0.1:24999``: ``PWR n``, ``INP n``,
                                                   ``PWR?`` -> ``PWR=p INP=i``
DSP (module, TCP)      ``192.168.1.21:1702``       ``127.0.0.1:21702``: ``GET/SET MUTE``,
                                                   ``GET/SET GAIN`` -> ``MUTE n``/``GAIN n``
lights (module, HTTP)  ``192.168.1.22:8080``       ``127.0.0.1:28080``: ``/api/scene[?set=N]``
=====================  ==========================  ============================================

Every command a device takes is logged (``projector: INP 2``, ``dsp: SET MUTE 1``,
``lights: set=3``).  ``run.py`` starts them beside the program; on their own (a second command,
beside ``twistd -n chandler --project examples/project --config examples/project/map.toml``)::

    python examples/project/simulators.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

log = Logger(namespace="examples.project.simulators")

#: where each device is simulated (map.toml maps the program's addresses here)
PORTS = {"projector": 24999, "dsp": 21702, "lights": 28080}


class _LineDevice(Protocol):
    """A device taking commands ended by a carriage return; C{factory.take} answers each."""

    factory: Any

    def __init__(self) -> None:
        self._buffer = b""

    def connectionMade(self) -> None:
        self.factory.clients.append(self)

    def connectionLost(self, reason: object = None) -> None:
        if self in self.factory.clients:
            self.factory.clients.remove(self)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *commands, self._buffer = self._buffer.split(b"\r")
        for command in commands:
            if command:
                self.transport.write(self.factory.take(command.decode("ascii", "replace")))


class Projector(Factory):
    """The projector: power and input; every command answered with both."""

    protocol = _LineDevice
    noisy = False

    def __init__(self) -> None:
        self.power, self.input = "0", "1"
        self.commands: list[str] = []
        self.clients: list[_LineDevice] = []

    def take(self, command: str) -> bytes:
        self.commands.append(command)
        log.info("projector: {command}", command=command)
        if command in ("PWR 0", "PWR 1"):
            self.power = command[4:]
        elif command.startswith("INP ") and command[4:] in ("1", "2", "3"):
            self.input = command[4:]
        return f"PWR={self.power} INP={self.input}\r".encode("ascii")


class DSP(Factory):
    """The DSP: mute and gain; a change is pushed to every client."""

    protocol = _LineDevice
    noisy = False

    def __init__(self) -> None:
        self.mute, self.gain = "0", -20
        self.commands: list[str] = []
        self.clients: list[_LineDevice] = []

    def take(self, command: str) -> bytes:
        self.commands.append(command)
        log.info("dsp: {command}", command=command)
        words = command.split()
        if words == ["GET", "MUTE"]:
            return f"MUTE {self.mute}\r".encode("ascii")
        if words == ["GET", "GAIN"]:
            return f"GAIN {self.gain}\r".encode("ascii")
        if len(words) == 3 and words[:2] == ["SET", "MUTE"] and words[2] in ("0", "1"):
            self.mute = words[2]
            self._push(f"MUTE {self.mute}\r".encode("ascii"))
        elif len(words) == 3 and words[:2] == ["SET", "GAIN"]:
            try:
                self.gain = max(-60, min(0, int(words[2])))
            except ValueError:
                return b"ERR\r"
            self._push(f"GAIN {self.gain}\r".encode("ascii"))
        else:
            return b"ERR\r"
        return b""

    def _push(self, data: bytes) -> None:
        for client in self.clients:
            client.transport.write(data)


@dataclass
class Lights:
    """The lighting controller's state and the requests it took."""

    scene: str = "1"
    requests: list[str] = field(default_factory=list)

    def site(self) -> Site:
        root = Resource()  # type: ignore[no-untyped-call]
        api = Resource()  # type: ignore[no-untyped-call]
        root.putChild(b"api", api)
        api.putChild(b"scene", _Scene(self))
        site = Site(root)
        site.noisy = False
        site.log = lambda request: None  # type: ignore[method-assign]  # its commands are logged
        return site


class _Scene(Resource):
    isLeaf = True

    def __init__(self, lights: Lights) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.lights = lights

    def render_GET(self, request: Request) -> bytes:
        wanted = (request.args or {}).get(b"set", [b""])[0].decode("ascii", "replace")
        self.lights.requests.append(f"set={wanted}" if wanted else "get")
        if wanted:
            log.info("lights: set={scene}", scene=wanted)
            if wanted in ("1", "2", "3", "4"):
                self.lights.scene = wanted
        request.setHeader(b"content-type", b"text/plain")
        return self.lights.scene.encode("ascii")


@dataclass
class Room:
    """The three simulated devices and their listening ports."""

    projector: Projector
    dsp: DSP
    lights: Lights
    ports: list[IListeningPort]

    def stop(self) -> Any:
        from twisted.internet.defer import gatherResults

        return gatherResults([p.stopListening() for p in self.ports])


def listen(reactor: Any, ports: dict[str, int] | None = None) -> Room:
    """Start the room's devices on 127.0.0.1 (at C{ports}, default L{PORTS}; 0: any free port)."""
    where = {**PORTS, **(ports or {})}
    projector, dsp, lights = Projector(), DSP(), Lights()
    listening = [
        reactor.listenTCP(where["projector"], projector, interface="127.0.0.1"),
        reactor.listenTCP(where["dsp"], dsp, interface="127.0.0.1"),
        reactor.listenTCP(where["lights"], lights.site(), interface="127.0.0.1"),
    ]
    for name, port in zip(("projector", "dsp", "lights"), listening, strict=True):
        log.info(
            "simulated {name} listening on 127.0.0.1:{port}", name=name, port=port.getHost().port
        )
    return Room(projector, dsp, lights, listening)


def main() -> None:
    """Run the simulated devices until interrupted."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    listen(reactor)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
