"""
Plain helpers shared by the test modules (fixtures are in conftest.py).  Use these instead of a
local copy.

Clock-driven handlers:
  rig              Clock + FakeEndpoint + interface + handler, as a L{Rig} (the one builder)
  tcpHandler       rig's parts as a tuple (clock, endpoint, handler, events)
  Recorder         records the event calls of a handler
  deviceProtocol   a DeviceProtocol connected over a FakeEndpoint, with a sink that drops all

Deferreds (trial's, for pytest functions):
  successResultOf  the result a Deferred has now (fails the test if it has none or failed)
  failureResultOf  the Failure it has now, of the given types
  assertNoResult   fails the test if it has a result

Log events:
  LoggedEvents     events logged while it is installed (a context manager), optionally filtered
                   or as texts; the C{loggedEvents} fixture installs one for a whole test

Real loopback sockets:
  freePort         a loopback port nobody listens on (TCP or UDP)
  bounded          cancels an async test that takes longer than its timeout
  sleep            waits on the global reactor
  Watch            a handler to a loopback device with every event and accepted answer timed
  ANSWER           the answer a Watch accepts
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.protocols.device import DeviceProtocol
from twisted_ch.testing import FakeEndpoint


class Recorder:
    """Collects event calls as (name, args) tuples."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def hook(self, obj: Any, *names: str) -> None:
        for name in names:
            setattr(obj, name, self._make(name))

    def _make(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


#: the events a Rig records unless told otherwise
HANDLER_EVENTS = ("Connected", "Disconnected", "ConnectFailed", "ReceiveData")


def _sendP(h: Any) -> None:
    h.Send(b"P")


@dataclass
class Rig:
    """
    A Clock-driven handler on a FakeEndpoint (see L{rig}).

    @ivar clock: the reactor of the interface, the handler and the endpoint.
    @ivar endpoint: the FakeEndpoint the interface connects through.
    @ivar interface: the interface (an EthernetClientInterface unless rig was given another).
    @ivar handler: its connection handler, or None when rig was told C{handler=False}.
    @ivar events: the handler's events recorded (those rig was given as C{record}).
    """

    clock: Clock
    endpoint: FakeEndpoint
    interface: Any
    handler: Any
    events: Recorder


def rig(
    keepAlive: Any = _sendP,
    *,
    clock: Clock | None = None,
    protocol: str = "TCP",
    interface: Callable[[Clock, FakeEndpoint], Any] | None = None,
    handler: bool = True,
    record: tuple[str, ...] = HANDLER_EVENTS,
    **options: Any,
) -> Rig:
    """
    Clock + FakeEndpoint + interface + handler: the one builder of the Clock-driven tests.

    @param keepAlive: the handler's keepAliveQuery (default: send C{P}).
    @param clock: the Clock to use (a new one without it).
    @param protocol: the default interface's Protocol: an EthernetClientInterface to
        192.0.2.1, port 23 (TCP) or 5000 (UDP).
    @param interface: builds another interface from the clock and the endpoint.
    @param handler: False: build no handler (C{Rig.handler} is None).
    @param record: the handler events to record in C{Rig.events} (none: leave them unset).
    @param options: GetConnectionHandler's keyword arguments.
    """
    clock = Clock() if clock is None else clock
    endpoint = FakeEndpoint(clock)
    if interface is None:
        port = 5000 if protocol == "UDP" else 23
        iface = EthernetClientInterface(
            "192.0.2.1", port, protocol, reactor=clock, endpoint=endpoint
        )
    else:
        iface = interface(clock, endpoint)
    events = Recorder()
    made = None
    if handler:
        made = GetConnectionHandler(iface, keepAlive, **options)
        events.hook(made, *record)
    return Rig(clock, endpoint, iface, made, events)


class _DroppingSink:
    def linkMade(self, protocol: object) -> None:
        pass

    def linkData(self, data: bytes) -> None:
        pass

    def linkLost(self, protocol: object, reason: object) -> None:
        pass


def deviceProtocol(clock: Clock | None = None) -> tuple[DeviceProtocol, FakeEndpoint]:
    """A L{DeviceProtocol} on C{clock} (a new Clock without it), connected over a FakeEndpoint."""
    clock = Clock() if clock is None else clock
    protocol = DeviceProtocol(_DroppingSink(), clock)
    endpoint = FakeEndpoint(clock)
    endpoint.connect(Factory.forProtocol(lambda: protocol))
    return protocol, endpoint


def tcpHandler(keepAlive: Any = None, **kw: Any) -> tuple[Clock, FakeEndpoint, Any, Recorder]:
    """L{rig}'s parts as a tuple (clock, endpoint, handler, events); None: send C{P}."""
    r = rig(keepAlive or _sendP, **kw)
    return r.clock, r.endpoint, r.handler, r.events


class LoggedEvents(list[Any]):
    """
    The events logged to the global log publisher while it is installed (a context manager; the
    C{loggedEvents} fixture installs one for a whole test).

    @ivar keep: which events to keep (all without it).
    @ivar text: keep each event's formatted text instead of the event.
    """

    def __init__(self, keep: Callable[[LogEvent], bool] | None = None, text: bool = False) -> None:
        super().__init__()
        self.keep = keep
        self.text = text

    def _observe(self, event: LogEvent) -> None:
        if self.keep is None or self.keep(event):
            self.append(formatEvent(event) if self.text else event)

    def __enter__(self) -> LoggedEvents:
        globalLogPublisher.addObserver(self._observe)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self._observe)

    def texts(self, level: LogLevel | None = None) -> list[str]:
        """The formatted events (those at C{level} only, if given)."""
        return [formatEvent(e) for e in self if level is None or e.get("log_level") == level]

    def failures(self) -> list[LogEvent]:
        """The events that logged a failure (a traceback)."""
        return [e for e in self if "log_failure" in e]


# trial's checks of a Deferred's result, for plain pytest functions: the result so far (failing
# the test if there is none, or it is of the other kind), or that there is none yet
_trial = SynchronousTestCase()
successResultOf = _trial.successResultOf
failureResultOf = _trial.failureResultOf
assertNoResult = _trial.assertNoResult


ANSWER = b"Pwr1\r\n"


def bounded(seconds: float) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
    """Cancel the test (and so run its cleanup) if it takes longer than C{seconds}."""

    def decorate(test: Callable[..., Awaitable[Any]]) -> Any:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> Any:
            d = ensureDeferred(test(*args, **kwargs))
            d.addTimeout(seconds, reactor)
            return await d

        return run

    return decorate


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds)


def freePort(udp: bool = False) -> int:
    """A loopback port nobody listens on (just released): TCP, or UDP if C{udp}."""
    with socket.socket(type=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watch:
    """
    A handler with every event, poll and accepted answer recorded with the reactor's time.

    The keep-alive sends C{P}; ReceiveData calls ResponseAccepted for each complete C{Pwr1}
    line (lines are assembled across chunks, so a slow drip still counts).
    """

    def __init__(
        self, port: int, keepAlive: Any = "send", host: str = "127.0.0.1", **kw: Any
    ) -> None:
        self.events: list[tuple[str, Any, float]] = []
        self.sends: list[float] = []
        self.accepts: list[float] = []
        self.chunks: list[bytes] = []
        self.lines: list[bytes] = []
        self._partial = b""
        iface = EthernetClientInterface(host, port, maxResponse=kw.pop("maxResponse", 4096))
        query = self.keepAlive if keepAlive == "send" else keepAlive
        self.handler = GetConnectionHandler(iface, query, **kw)
        h = self.handler
        h.Connected = lambda _, s: self.record("Connected", s)
        h.Disconnected = lambda _, s: self.record("Disconnected", s)
        h.ConnectFailed = lambda _, reason: self.record("ConnectFailed", reason)
        h.ReceiveData = self.onData

    def record(self, name: str, arg: Any) -> None:
        self.events.append((name, arg, reactor.seconds()))

    def keepAlive(self, h: Any) -> None:
        h.Send("P")  # sends nothing (and returns None) when it would pass DisconnectLimit
        self.sends.append(reactor.seconds())

    def onData(self, h: Any, data: bytes) -> None:
        self.chunks.append(data)
        self._partial += data
        while b"\r\n" in self._partial:
            line, self._partial = self._partial.split(b"\r\n", 1)
            self.lines.append(line + b"\r\n")
            if line == b"Pwr1":
                self.accepts.append(reactor.seconds())
                h.ResponseAccepted()

    def names(self, *which: str) -> list[str]:
        return [n for n, _, _ in self.events if not which or n in which]

    def states(self) -> list[str]:
        return self.names("Connected", "Disconnected")

    def last(self, name: str) -> float:
        return max(t for n, _, t in self.events if n == name)

    def assertAlternates(self) -> None:
        states = self.states()
        assert all(a != b for a, b in zip(states, states[1:], strict=False)), states
