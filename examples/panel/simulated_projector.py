# -*- test-case-name: tests.test_examples -*-
"""
A projector simulator for main.py: a TCP server on loopback that takes C{PWR n} and C{INP n}
commands (and C{PWR?}), each ended by a carriage return, and answers every one with
C{PWR=p INP=i\\r}.

It runs on the reactor (it is Twisted code), never on the program's thread: the program's
keep-alive blocks that thread in C{SendAndWait} until the answer comes, so a simulator whose
C{ReceiveData} ran there could only answer once the wait had timed out.  Every command it takes
is logged (C{projector simulator: PWR 1}), so you can see a panel press reach the device.

From the program (main.py), C{start()} listens and returns the C{(address, port)} to connect to:
port C{$PANEL_PROJECTOR_PORT} (default 4999; 0 picks a free one) on 127.0.0.1.  On its own, as a
second command beside a program that connects to it::

    python examples/panel/simulated_projector.py [PORT]
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

log = Logger(namespace="examples.panel.projector")

DEFAULT_PORT = 4999

#: what start() listens on (its factory is the SimulatedProjector), newest last
LISTENING: list[IListeningPort] = []


class ProjectorProtocol(Protocol):
    """One client of the simulated projector: commands in, the projector's state out."""

    factory: SimulatedProjector

    def __init__(self) -> None:
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *commands, self._buffer = self._buffer.split(b"\r")
        for command in commands:
            if command:
                self.transport.write(self.factory.take(command.decode("ascii", "replace")))


class SimulatedProjector(Factory):
    """The projector's state (power, input) and every command it was sent."""

    protocol = ProjectorProtocol
    noisy = False

    def __init__(self) -> None:
        self.power = "0"
        self.input = "1"
        self.commands: list[str] = []

    def take(self, command: str) -> bytes:
        """Obey C{command}; the answer."""
        self.commands.append(command)
        log.info("projector simulator: {command}", command=command)
        if command.startswith("PWR ") and command[4:] in ("0", "1"):
            self.power = command[4:]
        elif command.startswith("INP ") and command[4:].isdigit():
            self.input = command[4:]
        return f"PWR={self.power} INP={self.input}\r".encode("ascii")


def listen(reactor: Any, port: int = DEFAULT_PORT, interface: str = "127.0.0.1") -> IListeningPort:
    """Listen on C{interface}:C{port} (on the reactor thread)."""
    listening: IListeningPort = reactor.listenTCP(port, SimulatedProjector(), interface=interface)
    log.info(
        "projector simulator listening on {host}:{port}",
        host=interface,
        port=listening.getHost().port,
    )
    return listening


def start() -> tuple[str, int]:
    """
    Start the simulator on the reactor from a program's thread (or from the reactor thread);
    the address and port to connect to.
    """
    from twisted.internet import reactor
    from twisted.internet.threads import blockingCallFromThread
    from twisted.python.threadable import isInIOThread

    port = int(os.environ.get("PANEL_PROJECTOR_PORT", DEFAULT_PORT))
    if isInIOThread():
        listening = listen(reactor, port)
    else:
        listening = blockingCallFromThread(reactor, listen, reactor, port)
    LISTENING.append(listening)
    return "127.0.0.1", listening.getHost().port


def main(argv: list[str]) -> None:
    """Run the simulator alone until interrupted."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    listen(reactor, int(argv[1]) if len(argv) > 1 else DEFAULT_PORT)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv)
