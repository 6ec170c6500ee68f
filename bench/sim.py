"""
The device simulator process: answers C{P} with C{Pwr1\\r\\n} on a few loopback ports.

Run as C{python -m bench.sim --ports K} (C{--kind sis}: those ports are SIS devices).  It prints
one JSON line C{{"ports": [...]}} once listening (with C{--protocols}, also C{"sis"},
C{"pjlink"} and C{"snmp"} ports: an Extron SIS device answering C{Q} with its firmware version,
a PJLink projector greeting C{PJLINK 0} and answering C{%1POWR ?}, and an SNMP agent on UDP
answering sysUpTime.0), then obeys line commands on stdin, answering each with a JSON line that
carries the CLOCK_MONOTONIC time the action took effect (comparable with the client's
C{time.monotonic()}):

    silent | answer      stop / resume answering (connections stay open: a silent device)
    close | reset        close every client connection with FIN / with RST
    stop | start         stop listening (new connections are refused) / listen again, same ports
    stats                counters
    quit                 exit (so does end of stdin)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from bench._util import now, raiseFileLimit
from twisted_ch.testing import listenStable

ANSWER = b"Pwr1\r\n"


class Device(Protocol):
    """One client connection: every C{P} received is answered unless the device is silent."""

    factory: Devices

    def answer(self, data: bytes) -> None:
        """Send an answer: at once when nothing is queued (the simulator should cost little)."""
        transport: Any = self.transport
        if not transport.dataBuffer and not transport._tempDataLen:
            try:
                sent = transport.socket.send(data)
            except OSError:
                sent = 0
            data = data[sent:]
        if data:
            transport.write(data)

    def connectionMade(self) -> None:
        self.factory.clients.add(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.factory.clients.discard(self)

    def dataReceived(self, data: bytes) -> None:
        n = data.count(b"P")
        if n:
            factory = self.factory
            factory.requests += n
            if not factory.silent:
                self.answer(ANSWER * n)


class Devices(Factory):
    protocol = Device  # type: ignore[assignment]

    def __init__(self) -> None:
        self.clients: set[Device] = set()
        self.requests = 0
        self.silent = False


class SISDevice(Device):
    """An Extron SIS device: every C{Q} is answered with a firmware version line."""

    def dataReceived(self, data: bytes) -> None:
        n = data.count(b"Q")
        if n:
            factory = self.factory
            factory.requests += n
            if not factory.silent:
                self.answer(b"1.23\r\n" * n)


class PJLinkDevice(Device):
    """A PJLink class 1 projector without authentication: greets, answers power queries."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"PJLINK 0\r")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        n = data.count(b"%1POWR ?\r")
        if n:
            factory = self.factory
            factory.requests += n
            if not factory.silent:
                self.answer(b"%1POWR=1\r" * n)


class Control(LineReceiver):
    """stdin commands; one JSON answer line per command on stdout."""

    delimiter = b"\n"

    def __init__(
        self, reactor: Any, devices: Devices, ports: list[int], backlog: int = 4096
    ) -> None:
        self.reactor = reactor
        self.devices = devices
        self.ports = ports
        self.backlog = backlog
        self.listening: list[Any] = []

    def listen(self) -> None:
        for i, port in enumerate(self.ports):
            if port:
                p = self.reactor.listenTCP(
                    port, self.devices, backlog=self.backlog, interface="127.0.0.1"
                )
            else:  # below the ephemeral range, so that "start" after "stop" finds it free
                p = listenStable(self.reactor, self.devices, backlog=self.backlog)
            self.listening.append(p)
            self.ports[i] = p.getHost().port

    def reply(self, **fields: object) -> None:
        assert self.transport is not None
        self.transport.write(json.dumps(fields).encode() + b"\n")

    def lineReceived(self, line: bytes) -> None:
        cmd = line.decode().strip()
        d = self.devices
        if cmd == "silent":
            d.silent = True
        elif cmd == "answer":
            d.silent = False
        elif cmd in ("close", "reset"):
            for c in list(d.clients):
                if c.transport is not None:
                    if cmd == "reset":
                        c.transport.abortConnection()  # type: ignore[attr-defined]
                    else:
                        c.transport.loseConnection()
        elif cmd == "stop":
            for p in self.listening:
                p.stopListening()
            self.listening = []
        elif cmd == "start":
            if not self.listening:
                self.listen()
        elif cmd == "stats":
            pass
        elif cmd == "quit":
            self.reply(cmd=cmd, t=now())
            self.reactor.stop()
            return
        else:
            self.reply(cmd=cmd, error="unknown command")
            return
        self.reply(cmd=cmd, t=now(), clients=len(d.clients), requests=d.requests)

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.reactor.running:
            self.reactor.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sim")
    parser.add_argument("--ports", type=int, default=1, help="loopback ports to listen on")
    parser.add_argument("--max-clients", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=4096, help="listen backlog of each port")
    parser.add_argument(
        "--protocols", action="store_true", help="also SIS, PJLink (TCP) and SNMP (UDP) devices"
    )
    parser.add_argument(
        "--kind",
        choices=("p", "sis"),
        default="p",
        help="what the --ports answer: P with Pwr1 (p), or Q with a firmware version (sis)",
    )
    args = parser.parse_args(argv)
    limit = raiseFileLimit(args.max_clients + 256)
    if limit < args.max_clients + 64:
        print(
            f"bench.sim: --max-clients {args.max_clients} may need {args.max_clients + 64} open "
            f"descriptors, but this process may open {limit} (ulimit -Hn)",
            file=sys.stderr,
        )

    from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO

    devices = Devices()
    if args.kind == "sis":
        devices.protocol = SISDevice  # type: ignore[assignment]
    control = Control(reactor, devices, [0] * args.ports, args.backlog)
    control.listen()
    announce: dict[str, Any] = {"ports": control.ports}
    if args.protocols:
        for name, kind in (("sis", SISDevice), ("pjlink", PJLinkDevice)):
            others = Devices()
            others.protocol = kind  # type: ignore[assignment]
            announce[name] = [
                listenStable(reactor, others, backlog=args.backlog).getHost().port  # type: ignore[attr-defined]
                for _ in range(args.ports)
            ]
        from twisted_ch.testing import listenSNMP

        announce["snmp"] = listenSNMP(reactor).port
    sys.stdout.write(json.dumps(announce) + "\n")
    sys.stdout.flush()
    StandardIO(control, reactor=reactor)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
