"""
A simulated Extron SIS scaler (a DVS 605-like device) for tests.

L{SISSession} is the device's command interpreter as a pure object (bytes in, bytes out);
L{SISServer} serves it on a loopback TCP port with test controls (silence, dropping clients,
refusing connections); L{SISPump} (in L{twisted_ch.testing._fakes}, importable from here too)
plays it over a L{twisted_ch.testing.FakeEndpoint} in Clock-driven tests.

The SIS subset: C{<n>!} / C{!} (input), C{<n>B} / C{B} (video mute 0-2), C{<n>F} / C{F} (freeze),
C{ESC <n>CV} (verbose mode; query answers are tagged - C{In3 All}, C{Vmt1}, C{Frz0} - in modes 2
and 3, bare values otherwise), errors C{E01} (input number), C{E10} (command), C{E13} (parameter),
and an optional C{Password:} login after the connection banner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from twisted_ch.testing._fakes import SISPump
from twisted_ch.testing._loopback import LoopbackServer

__all__ = ["SISDevice", "SISProtocol", "SISPump", "SISServer", "SISSession", "listenSIS"]

_COMMAND = re.compile(rb"\x1b(\d)CV|(\d*)([!BF])")
# the start of a command that may still be arriving
_PARTIAL = re.compile(rb"\x1b\d?C?|\d+")
# what an unknown command occupies: an optional ESC, digits, one more byte
_UNKNOWN = re.compile(rb"\x1b?\d*.", re.DOTALL)
_LINE_END = re.compile(rb"[\r\n]")


@dataclass
class SISDevice:
    """The device's state and history, shared by all its connections."""

    model: str = "DVS 605"
    firmware: str = "1.05"
    inputs: int = 6
    #: When set, every connection must log in with it first.
    password: str | None = None
    input: int = 1
    videoMute: int = 0
    freeze: int = 0
    #: Every command executed, as received (without line ends).
    commands: list[bytes] = field(default_factory=list)
    #: Every password attempt, right or wrong.
    passwordAttempts: list[bytes] = field(default_factory=list)
    #: Successful logins.
    logins: int = 0

    def session(self, verbose: int = 0) -> SISSession:
        """A new connection's interpreter (Telnet connections start in verbose mode 0)."""
        return SISSession(self, verbose)


class SISSession:
    """One connection's command interpreter: L{feed} it bytes, it returns the device's answer."""

    def __init__(self, device: SISDevice, verbose: int = 0) -> None:
        self.device = device
        self.verbose = verbose
        self.loggedIn = device.password is None
        self._buffer = b""

    def greeting(self) -> bytes:
        """What the device sends when a connection opens: the banner, then any login prompt."""
        d = self.device
        text = (
            f"(c) Copyright 2024, Extron Electronics, {d.model}, V{d.firmware}, 60-0000-00\r\n"
            "Mon, 01 Jan 2024 00:00:00\r\n"
        )
        if not self.loggedIn:
            text += "\r\nPassword:"
        return text.encode("ascii")

    def feed(self, data: bytes) -> bytes:
        """Interpret received bytes; returns the answers (possibly empty)."""
        self._buffer += data
        out: list[bytes] = []
        while self._buffer:
            if not self.loggedIn:
                end = _LINE_END.search(self._buffer)
                if end is None:
                    break
                attempt, self._buffer = self._buffer[: end.start()], self._buffer[end.end() :]
                if attempt:
                    out.append(self._login(attempt))
                continue
            if self._buffer[:1] in (b"\r", b"\n", b" "):
                self._buffer = self._buffer[1:]
                continue
            m = _COMMAND.match(self._buffer)
            if m is not None:
                self._buffer = self._buffer[m.end() :]
                self.device.commands.append(m.group(0))
                out.append(self._execute(m))
                continue
            if _PARTIAL.fullmatch(self._buffer):
                break
            bad = _UNKNOWN.match(self._buffer)
            assert bad is not None
            self._buffer = self._buffer[bad.end() :]
            out.append(b"E10\r\n")
        return b"".join(out)

    def _login(self, attempt: bytes) -> bytes:
        self.device.passwordAttempts.append(attempt)
        if self.device.password is not None and attempt == self.device.password.encode():
            self.loggedIn = True
            self.device.logins += 1
            return b"\r\nLogin Administrator\r\n"
        return b"\r\nPassword:"

    def _execute(self, m: re.Match[bytes]) -> bytes:
        d = self.device
        if m.group(1) is not None:
            mode = int(m.group(1))
            if mode > 3:
                return b"E13\r\n"
            self.verbose = mode
            return b"Vrb%d\r\n" % mode
        digits, letter = m.group(2), m.group(3)
        tagged = self.verbose in (2, 3)
        if letter == b"!":
            if digits:
                n = int(digits)
                if not 1 <= n <= d.inputs:
                    return b"E01\r\n"
                d.input = n
                return b"In%d All\r\n" % n
            return b"In%d All\r\n" % d.input if tagged else b"%d\r\n" % d.input
        if letter == b"B":
            if digits:
                if digits not in (b"0", b"1", b"2"):
                    return b"E13\r\n"
                d.videoMute = int(digits)
                return b"Vmt%d\r\n" % d.videoMute
            return b"Vmt%d\r\n" % d.videoMute if tagged else b"%d\r\n" % d.videoMute
        # Freeze
        if digits:
            if digits not in (b"0", b"1"):
                return b"E13\r\n"
            d.freeze = int(digits)
            return b"Frz%d\r\n" % d.freeze
        return b"Frz%d\r\n" % d.freeze if tagged else b"%d\r\n" % d.freeze


class SISProtocol(Protocol):
    """One TCP connection to an L{SISServer}."""

    def __init__(self, server: SISServer) -> None:
        self.server = server
        self.session = server.device.session(server.verbose)

    def connectionMade(self) -> None:
        self.server.clients.append(self)
        self.server.connections += 1
        if not self.server.silent and self.transport is not None:
            self.transport.write(self.session.greeting())

    def dataReceived(self, data: bytes) -> None:
        self.server.received.append(data)
        if self.server.silent or self.server.mute:
            return  # a hung device: nothing is executed or answered
        answer = self.session.feed(data)
        if answer and self.transport is not None:
            self.transport.write(answer)

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if self in self.server.clients:
            self.server.clients.remove(self)


class SISServer(LoopbackServer):
    """
    A loopback TCP server speaking the SIS subset, with test controls: L{silent} (accept and
    read, never answer), L{mute} (greet a new connection - banner, password prompt - then answer
    nothing, as a device hung after its prompt), L{dropClients}, L{stop} (refuse new
    connections) and L{start} (listen again on the same port).  L{connections} counts the
    connections accepted.

    @ivar device: the L{SISDevice} its connections share (each gets its own L{SISSession}).
    @ivar verbose: the verbose mode of each new session.
    @ivar silent: while True, new connections get no greeting and nothing is answered.
    @ivar mute: while True, new connections are greeted and nothing is answered.
    @ivar connections: how many connections were accepted.
    @ivar received: every chunk of bytes a client sent, in order.
    """

    def __init__(self, reactor: Any, device: SISDevice | None = None, verbose: int = 0) -> None:
        super().__init__(reactor)
        self.device = device if device is not None else SISDevice()
        self.verbose = verbose
        self.silent = False
        self.mute = False
        self.connections = 0
        self.received: list[bytes] = []

    def buildProtocol(self, addr: IAddress | None) -> SISProtocol:
        return SISProtocol(self)


def listenSIS(reactor: Any, device: SISDevice | None = None, verbose: int = 0) -> SISServer:
    """Start an L{SISServer} on a free loopback port."""
    server = SISServer(reactor, device, verbose)
    server.start()
    return server
