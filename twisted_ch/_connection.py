# -*- test-case-name: tests.test_connection -*-
"""
The lifecycle of a device's link, as one state machine: L{Connection}.

    Idle --keep--> Waiting --connect/retry--> Connecting --made--> Up --drop/stop--> Dropping
      |                ^  ^                       |                |                     |
      +---connect------|--|-----------------------+                +--lost--+    lost----+
                       |  +--failed (wanted; else Idle)                     |            |
                       +----------------------------------------------------+------------+
    any state --stop--> Stopped (once the transport, if any, is gone)

Each state owns its data, as Twisted's C{ClientService} states do: L{Connecting} the attempt's
Deferred, L{Up} the protocol, L{Dropping} the close's abort timer, L{Waiting} the retry's
DelayedCall.  Leaving a state cancels what it holds, so L{Connection.stop} cancels exactly what
the current state holds and leaves no timer behind once the transport is gone.  An input a state
does not accept (not in L{TRANSITIONS}) changes nothing and has no side effect.

I{Wanted} is the link's one truth about whether it is kept: from C{keep} (a handler's
C{Connect()}, a pipe's opening) to C{stop} (C{Disconnect()}).  A wanted link that fails or is lost
waits in L{Waiting}: for the retry its L{Retrier} times when reconnecting is on, else for the
next C{connect}.  A link that is not wanted makes one attempt per C{connect} and goes back to
L{Idle}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_ch._retry import Retrier

__all__ = [
    "Connecting",
    "Connection",
    "Dropping",
    "Idle",
    "Input",
    "State",
    "StateName",
    "Stopped",
    "TRANSITIONS",
    "Up",
    "Waiting",
]

StateName = Literal["Idle", "Connecting", "Up", "Dropping", "Waiting", "Stopped"]
Input = Literal["connect", "keep", "release", "made", "failed", "lost", "drop", "stop", "retry"]

#: Every accepted (state, input) and the state it leads to.  Where two targets are given, the
#: first is taken when the link is wanted (after the input), the second when it is not.
TRANSITIONS: dict[tuple[StateName, Input], tuple[StateName, StateName]] = {
    # one attempt now (an interface's Connect(), a handler's, a retry's)
    ("Idle", "connect"): ("Connecting", "Connecting"),
    ("Stopped", "connect"): ("Connecting", "Connecting"),
    ("Waiting", "connect"): ("Connecting", "Connecting"),
    ("Connecting", "connect"): ("Connecting", "Connecting"),
    ("Up", "connect"): ("Up", "Up"),
    # wanted from now on; the owner connects next (a pending retry is cancelled for that)
    ("Idle", "keep"): ("Waiting", "Waiting"),
    ("Stopped", "keep"): ("Waiting", "Waiting"),
    ("Waiting", "keep"): ("Waiting", "Waiting"),
    ("Connecting", "keep"): ("Connecting", "Connecting"),
    ("Up", "keep"): ("Up", "Up"),
    ("Dropping", "keep"): ("Dropping", "Dropping"),  # and connect once the transport is gone
    # not wanted any more, the transport (if any) left as it is
    ("Idle", "release"): ("Idle", "Idle"),
    ("Stopped", "release"): ("Stopped", "Stopped"),
    ("Waiting", "release"): ("Stopped", "Stopped"),
    ("Connecting", "release"): ("Connecting", "Connecting"),
    ("Up", "release"): ("Up", "Up"),
    ("Dropping", "release"): ("Dropping", "Dropping"),
    # what the transport did
    ("Connecting", "made"): ("Up", "Up"),
    ("Connecting", "failed"): ("Waiting", "Idle"),
    ("Up", "lost"): ("Waiting", "Idle"),
    ("Dropping", "lost"): ("Waiting", "Stopped"),
    # closing the transport gracefully; wanted stays as it was
    ("Up", "drop"): ("Dropping", "Dropping"),
    ("Dropping", "drop"): ("Dropping", "Dropping"),  # (the owner's own drop: the close starts)
    ("Connecting", "drop"): ("Waiting", "Idle"),
    # not wanted, and no transport left once Dropping is over
    ("Idle", "stop"): ("Stopped", "Stopped"),
    ("Stopped", "stop"): ("Stopped", "Stopped"),
    ("Waiting", "stop"): ("Stopped", "Stopped"),
    ("Connecting", "stop"): ("Stopped", "Stopped"),
    ("Up", "stop"): ("Dropping", "Dropping"),
    ("Dropping", "stop"): ("Dropping", "Dropping"),
    # the retry's time came: the owner makes the attempt (a "connect")
    ("Waiting", "retry"): ("Waiting", "Waiting"),
}


@dataclass(slots=True)
class Idle:
    """Not wanted, no transport: never started, or one attempt (not kept) ended."""

    name: StateName = field(default="Idle", init=False)
    wanted = False


@dataclass(slots=True)
class Connecting:
    """
    An attempt runs: C{attempt} is its Deferred (cancelled when the state is left early; None
    only while the owner starts it).
    """

    attempt: Deferred[Any] | None
    wanted: bool
    name: StateName = field(default="Connecting", init=False)


@dataclass(slots=True)
class Up:
    """A transport is connected: C{protocol}."""

    protocol: object
    wanted: bool
    name: StateName = field(default="Up", init=False)


@dataclass(slots=True)
class Dropping:
    """
    The transport is closing gracefully; C{timer} aborts it if the close takes too long.
    C{reconnect}: connect again once it is gone (a C{keep} came meanwhile).  C{closes}: the
    Deferreds that fire once it is gone.  Without C{protocol} (None) the close has started; with
    it, the owner drops it its own way first (a module's C{Disconnect()}, which may still send):
    the next C{drop} or C{stop} starts the close.
    """

    timer: IDelayedCall | None
    wanted: bool
    reconnect: bool = False
    closes: list[Deferred[None]] = field(default_factory=list)
    protocol: object = None
    name: StateName = field(default="Dropping", init=False)

    @property
    def closing(self) -> bool:
        """Whether the transport's close has started."""
        return self.protocol is None


@dataclass(slots=True)
class Waiting:
    """Wanted and down: C{call} is the pending retry (None: waiting for a C{connect})."""

    call: IDelayedCall | None
    name: StateName = field(default="Waiting", init=False)
    wanted = True


@dataclass(slots=True)
class Stopped:
    """Not wanted (C{stop}), no transport, nothing pending."""

    name: StateName = field(default="Stopped", init=False)
    wanted = False


State = Idle | Connecting | Up | Dropping | Waiting | Stopped


class Refused(Exception):
    """An input the current state does not accept (see L{TRANSITIONS})."""


class ConnectionOwner(Protocol):
    """What a L{Connection} asks of its owner, who does the transport work (a link, a server)."""

    def connectionAttempt(self, timeout: float | None) -> object:
        """Start an attempt (its outcome comes back as L{Connection.made} or C{failed})."""

    def connectionClose(self, transport: Any) -> None:
        """Close C{transport} gracefully (its end comes back as L{Connection.lost})."""

    def connectionAbort(self, transport: Any) -> None:
        """Abort C{transport}: its graceful close took longer than the grace."""

    def connectionRetry(self) -> None:
        """A wanted link's retry is due: attempt again (or the owner's own way)."""

    def connectionEntered(self, state: State) -> None:
        """The machine entered C{state}."""


class Connection:
    """
    One link's lifecycle (reactor thread).  Its owner (a L{twisted_ch._link.DeviceLink}) does
    the transport work (L{ConnectionOwner}); the machine decides when, and holds every
    Deferred and timer of the lifecycle.

    @ivar retrier: the delays between attempts of a wanted link (its policy is the handler's).
    @ivar reconnecting: whether a wanted link that fails or is lost is retried by the retrier
        (a handler's C{AutoReconnect}); off, it waits for the next C{connect}.
    @ivar timeout: the attempt timeout of retries (the last C{keep}'s).
    @ivar resetOnUp: the retrier's count restarts when a transport connects (else its owner
        resets it, for example on an answer).
    """

    __slots__ = (
        "clock", "owner", "retrier", "reconnecting", "timeout", "resetOnUp", "closeGrace",
        "state", "reason",
    )  # fmt: skip

    def __init__(self, clock: IReactorTime, owner: ConnectionOwner, closeGrace: float) -> None:
        self.clock = clock
        #: who does the transport work (one reference, not five bound methods: a fleet of
        #: 50,000 links keeps 16 MB less)
        self.owner = owner
        self.retrier = Retrier()
        self.reconnecting = False
        self.timeout: float | None = None
        self.resetOnUp = True
        self.closeGrace = closeGrace
        self.state: State = Idle()
        self.reason: str | None = None

    # reading

    @property
    def wanted(self) -> bool:
        """Whether the link is kept: from C{keep} to C{stop} or C{release}."""
        return self.state.wanted

    @property
    def nextAttempt(self) -> float | None:
        """When the pending retry runs (clock seconds), else None."""
        state = self.state
        if isinstance(state, Waiting) and state.call is not None and state.call.active():
            return state.call.getTime()
        return None

    def accepts(self, event: Input) -> bool:
        """Whether the current state accepts C{event}."""
        return (self.state.name, event) in TRANSITIONS

    def _target(self, event: Input, wanted: bool) -> StateName:
        targets = TRANSITIONS.get((self.state.name, event))
        if targets is None:
            raise Refused(f"{event!r} in state {self.state.name}")
        return targets[0] if wanted else targets[1]

    def _enter(self, state: State) -> State:
        self.state = state
        self.owner.connectionEntered(state)
        return state

    # inputs

    def connect(self, timeout: float | None) -> State:
        """One attempt now, unless one runs or a transport is up (L{Refused} while Dropping)."""
        state = self.state
        self._target("connect", state.wanted)
        if isinstance(state, Connecting | Up):
            return state
        if isinstance(state, Waiting):
            self._cancelRetry(state)
        return self._startAttempt(timeout, state.wanted)

    def keep(self, timeout: float | None, reconnect: bool = True) -> State:
        """
        Wanted from now on, retries with C{timeout}; without a transport, the link waits for the
        C{connect} its owner makes next (a pending retry is cancelled: that connect replaces it).
        While Dropping, C{reconnect}: the owner connects once the transport is gone (else its
        retry does, or a connect waiting for the close).
        """
        state = self.state
        self._target("keep", True)
        self.timeout = timeout
        if isinstance(state, Idle | Stopped):
            return self._enter(Waiting(None))
        if isinstance(state, Waiting):
            self._cancelRetry(state)
        elif isinstance(state, Connecting | Up):
            state.wanted = True
        elif isinstance(state, Dropping):
            state.wanted = True
            state.reconnect = state.reconnect or reconnect
        return state

    def release(self) -> State:
        """Not wanted any more; the transport (if any) is left as it is."""
        state = self.state
        self._target("release", False)
        if isinstance(state, Waiting):
            self._cancelRetry(state)
            return self._enter(Stopped())
        if isinstance(state, Connecting | Up):
            state.wanted = False
        elif isinstance(state, Dropping):
            state.wanted = state.reconnect = False
        return state

    def made(self, protocol: object) -> bool:
        """A transport connected; False: no attempt wanted it (the owner aborts it)."""
        state = self.state
        if not isinstance(state, Connecting):
            return False
        if self.resetOnUp:
            self.retrier.reset()
        self._enter(Up(protocol, state.wanted))
        return True

    def failed(self, attempt: Deferred[Any], reason: str) -> bool:
        """C{attempt} failed; False: it was not the current one (cancelled by a stop)."""
        state = self.state
        if not isinstance(state, Connecting) or state.attempt is not attempt:
            return False
        self.reason = reason
        self._down(self._target("failed", state.wanted))
        return True

    def lost(self, reason: str | None) -> tuple[list[Deferred[None]], bool]:
        """
        The transport is gone (last failed with C{reason}).  Returns the Deferreds that waited
        for it and whether a C{keep} came meanwhile: the owner then connects (both once its
        observers heard of the loss).
        """
        state = self.state
        self.reason = reason
        if isinstance(state, Dropping):
            self._cancelTimer(state)
            if state.reconnect:
                self._enter(Waiting(None))
            else:
                self._down(self._target("lost", state.wanted))
            return state.closes, state.reconnect
        if isinstance(state, Up):
            self._down(self._target("lost", state.wanted))
        return [], False

    def drop(
        self,
        reason: str | None = None,
        closed: Deferred[None] | None = None,
        byOwner: bool = False,
    ) -> State:
        """
        Close the transport gracefully (aborted after C{closeGrace} seconds), wanted as it was; a
        running attempt is cancelled.  Nothing to drop: nothing happens.  C{closed} fires once the
        transport is gone (also when that is at once).  C{byOwner}: the owner closes it its own
        way first (see L{Dropping}); the next C{drop} or C{stop} starts the close.
        """
        state = self.state
        if isinstance(state, Dropping):
            if closed is not None:
                state.closes.append(closed)
            if not state.closing and not byOwner:
                self._startClosing(state.protocol, state.wanted, state)
            return self.state
        if not self.accepts("drop"):
            return state
        if reason is not None:
            self.reason = reason
        if isinstance(state, Connecting):
            self._down(self._target("drop", state.wanted))
            if state.attempt is not None:
                state.attempt.cancel()
            return self.state
        assert isinstance(state, Up)
        if byOwner:
            return self._enter(
                Dropping(
                    None,
                    state.wanted,
                    closes=[] if closed is None else [closed],
                    protocol=state.protocol,
                )
            )
        return self._startClosing(
            state.protocol,
            state.wanted,
            Dropping(None, state.wanted, closes=[] if closed is None else [closed]),
        )

    def stop(self) -> Deferred[None] | None:
        """
        Not wanted; cancel what the current state holds.  Returns a Deferred firing once the
        transport is gone while one is closing, else None (stopped already).
        """
        state = self.state
        self._target("stop", False)
        if isinstance(state, Waiting):
            self._cancelRetry(state)
        elif isinstance(state, Connecting):
            self._enter(Stopped())
            if state.attempt is not None:
                state.attempt.cancel()
            return None
        d: Deferred[None] = Deferred()
        if isinstance(state, Up):  # (the close may complete at once)
            self._startClosing(state.protocol, False, Dropping(None, False, closes=[d]))
            return d
        if isinstance(state, Dropping):
            state.wanted = state.reconnect = False
            state.closes.append(d)
            if not state.closing:
                self._startClosing(state.protocol, False, state)
            return d
        self._enter(Stopped())
        return None

    def overdue(self, protocol: object) -> None:
        """The graceful close took too long: abort the transport."""
        state = self.state
        if isinstance(state, Dropping):
            state.timer = None
        self.owner.connectionAbort(protocol)

    def retime(self) -> None:
        """The interval or policy changed: a pending retry waits the new delay from now."""
        state = self.state
        if isinstance(state, Waiting) and state.call is not None:
            self._cancelRetry(state)
            self.retrier.failures -= 1
            self._schedule()

    def setReconnecting(self, value: bool) -> None:
        """Turn reconnecting on or off; off cancels a pending retry (the link stays wanted)."""
        self.reconnecting = value
        state = self.state
        if not value and isinstance(state, Waiting):
            self._cancelRetry(state)

    # the states' data

    def _startAttempt(self, timeout: float | None, wanted: bool) -> State:
        self._enter(Connecting(None, wanted))
        # (an endpoint may connect, or fail, before this returns)
        self.owner.connectionAttempt(timeout)
        return self.state

    def attempting(self, attempt: Deferred[Any]) -> None:
        """The owner's attempt is C{attempt} (called before its result can arrive)."""
        state = self.state
        if isinstance(state, Connecting) and state.attempt is None:
            state.attempt = attempt

    def _startClosing(self, protocol: object, wanted: bool, before: Dropping) -> Dropping:
        """Close C{protocol}: Dropping with its abort timer (what C{before} held carried over)."""
        timer = self.clock.callLater(self.closeGrace, self.overdue, protocol)
        state = Dropping(timer, wanted, before.reconnect, before.closes)
        self._enter(state)
        self.owner.connectionClose(protocol)
        return state

    def _down(self, target: StateName) -> None:
        if target == "Waiting":
            self._enter(Waiting(None))
            if self.reconnecting:
                self._schedule()
        elif target == "Stopped":
            self._enter(Stopped())
        else:
            self._enter(Idle())

    def _schedule(self) -> None:
        state = self.state
        assert isinstance(state, Waiting) and state.call is None
        state.call = self.clock.callLater(self.retrier.next(self.reason), self._retryNow)

    def _retryNow(self) -> None:
        state = self.state
        if isinstance(state, Waiting):
            state.call = None
            self.owner.connectionRetry()

    @staticmethod
    def _cancelRetry(state: Waiting) -> None:
        if state.call is not None:
            if state.call.active():
                state.call.cancel()
            state.call = None

    @staticmethod
    def _cancelTimer(state: Dropping) -> None:
        if state.timer is not None:
            if state.timer.active():
                state.timer.cancel()
            state.timer = None
