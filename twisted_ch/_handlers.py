"""
The connection handlers: keep-alive polling with a send counter, and reconnection.

A handler wraps an interface, watches its link, and offers the interface's API plus its own
(C{Connected}/C{Disconnected} events, C{ConnectionStatus}, C{PollTimer}, ...).  Attributes it does
not define are read from the wrapped interface.

The rules (those of the reference implementation, see README "Semantics")
=========================================================================
B{Send counter.}  Every C{Send}/C{SendAndWait} through the handler adds one (the keep-alive is
given the handler, so its queries count); C{ResponseAccepted()} resets it.  A PollTimer tick that
comes while the previous keep-alive call still runs is skipped: nothing sent, nothing counted.
When a send would take the counter past DisconnectLimit, a TCP/SSH handler drops the link
instead of sending; a pipe handler reports Disconnected and still sends.  A send to a device that
is down never raises (the reference's rule): nothing is sent, C{Send} returns None and
C{SendAndWait} None (on the reactor thread a Deferred firing None), one log line per outage.

B{Status.}  L{ConnectionStatus} changes only through L{ConnectionHandler._on}, by this table
(inputs not listed for a status leave it as it is):

    input      what happened                              Unknown       Connected     Disconnected
    ---------  -----------------------------------------  ------------  ------------  ------------
    answered   a response accepted on a live link (a      Connected                   Connected
               module's ConnectionStatus 'Connected'; a
               raw TCP link without keep-alive opening)
    silent     the counter passed DisconnectLimit (a      Disconnected  Disconnected
               module's ConnectionStatus 'Disconnected')
    lost       the link was lost                                        Disconnected
    forced     OnDisconnected()                           Disconnected  Disconnected

A failed connect attempt changes no status (it fires C{ConnectFailed}): a device never reached
stays 'Unknown', its link's C{lastError} says why.  Unknown is never re-entered, so Connected and
Disconnected strictly alternate, and one outage gives one Disconnected and, once the device
answers again, one Connected.

B{The link of a TCP/SSH handler} is wanted from C{Connect()} to C{Disconnect()}; its lifecycle is
one L{twisted_ch._connection.Connection} (the link's): while wanted and C{AutoReconnect} is on, a
lost link or failed attempt waits in its Waiting state for the retry its L{Retrier} times
(C{connectRetryTime}, or as L{RawTcpHandler.retryPolicy} says); a new link starts with the
counter at 0.  Pipe links and servers live and retry by the same machine.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Callable
from threading import get_ident
from types import CoroutineType
from typing import Any, Literal

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from twisted_ch import _checks
from twisted_ch._coroutines import CoroutineRun
from twisted_ch._events import Event, callOnReactor, emit, emitHere
from twisted_ch._framing import toBytes
from twisted_ch._link import DeviceLink, callerSite
from twisted_ch._objects import ownAttribute, ownMethod
from twisted_ch._retry import FIXED, RetryPolicy
from twisted_ch._runtime import (
    ProgramThread,
    ReactorDispatcher,
    Runtime,
    logCallbackExit,
    logCallbackFailure,
    resolveRuntime,
)
from twisted_ch._stats import LinkStats
from twisted_ch.extronlib._base import LinkInterface, droppedSend, noResponse
from twisted_ch.extronlib.system import MIN_TIMER_INTERVAL, Timer

Status = Literal["Connected", "Disconnected", "Unknown"]
Input = Literal["answered", "silent", "lost", "forced"]
KeepAlive = Callable[[Any], object]

#: What a keep-alive's C{_pollTellingEnd(handler, run)} returns when it will itself call
#: L{_keepAliveEnded}C{(None, handler, run)} as it ends (with a L{Failure} and itself, to log,
#: when it failed).  A keep-alive's class may define that method; a handler whose callbacks
#: run on the reactor then calls it there on each tick instead of the keep-alive, and anything
#: else it returns is taken as the keep-alive's result (the stock probes: their wait's end
#: tells the handler's, see L{twisted_ch.protocols.device.tellInstead}).
TELLS_END: Any = object()

#: How each lifecycle input moves ConnectionStatus (see the module docstring).
TRANSITIONS: dict[tuple[Input, Status], Status] = {
    ("answered", "Unknown"): "Connected",
    ("answered", "Disconnected"): "Connected",
    ("silent", "Unknown"): "Disconnected",
    ("silent", "Connected"): "Disconnected",
    ("lost", "Connected"): "Disconnected",
    ("forced", "Unknown"): "Disconnected",
    ("forced", "Connected"): "Disconnected",
}

_REACTOR_DISPATCH = ReactorDispatcher()


checkCount = _checks.count
checkSeconds = _checks.seconds

_log = Logger(namespace="twisted_ch.handlers")


def pollInterval(value: object, what: str) -> float:
    """
    A poll interval: positive, at most a day, and, as for any extronlib Timer, at least 0.1 s
    (a shorter one is raised to 0.1 s, with a warning: the reference's PollTimer is a Timer).
    """
    interval = _checks.seconds(value, what, maximum=_checks.MAX_PERIOD)
    if interval < MIN_TIMER_INTERVAL:
        _log.warn(
            "{what} {asked} s is below the PollTimer's minimum; using {minimum} s",
            what=what,
            asked=interval,
            minimum=MIN_TIMER_INTERVAL,
        )
        return MIN_TIMER_INTERVAL
    return interval


class HandlerTimer(Timer):
    """
    A handler's PollTimer: an extronlib L{Timer} (intervals below 0.1 s are raised to 0.1 s, at
    creation and in C{Change}) whose ticks poll on the reactor thread.
    """

    def __init__(self, Interval: float, poll: Callable[[Timer, int], None], **kwargs: Any) -> None:
        #: the handler's own tick, called inline (not through a dispatcher) while it is Function
        self._poll = poll
        super().__init__(Interval, poll, **kwargs)

    def _checked(self, Interval: object) -> float:
        return pollInterval(Interval, "Interval")

    def _tick(self) -> None:
        function = self._function
        if function is not self._poll:  # replaced by the program: a Timer's tick
            super()._tick()
            return
        # the handler's tick returns None and logs its keep-alive's failures itself: no
        # dispatcher, no busy flag (its keep-alive has its own)
        self._count += 1
        try:
            function(self, self._count)
        except Exception:
            logCallbackFailure(Failure(), function)


class FallThrough:
    """A wrapper offering its C{_WrappedInterface}'s API for names it does not define."""

    _WrappedInterface: Any

    def __getattr__(self, name: str) -> Any:
        # only called for names this class lacks: fall through to the wrapped interface
        if name.startswith("__") or name == "_WrappedInterface":
            raise AttributeError(name)
        try:
            return getattr(self._WrappedInterface, name)
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}, nor has the "
                f"wrapped {type(self._WrappedInterface).__name__!r}"
            ) from None


class ConnectionHandler(FallThrough):
    """
    Base class for all client-type connection handlers (use L{GetConnectionHandler}).

    Connected and Disconnected strictly alternate: each change of L{ConnectionStatus} is reported
    once, through the event of that name.
    """

    log = Logger()

    #: the send counter's lock (sends come from program threads and the reactor alike): one
    #: for every handler, held only to count
    _counterLock = threading.Lock()
    #: the keep-alive and its class's _pollTellingEnd (L{TELLS_END}); set by link handlers
    _keepAliveQuery: KeepAlive | None = None
    _tellsEnd: Callable[..., object] | None = None

    Connected = Event["ConnectionHandler"]("Called as C{(handler, 'Connected')}.")
    Disconnected = Event["ConnectionHandler"]("Called as C{(handler, 'Disconnected')}.")

    def __init__(self, Interface: Any, pollFrequency: float, *, reactor: Any = None) -> None:
        pollFrequency = pollInterval(pollFrequency, "pollFrequency")
        ifaceRuntime = getattr(Interface, "_rt", None)
        self._rt: Runtime = (
            ifaceRuntime
            if reactor is None and isinstance(ifaceRuntime, Runtime)
            else resolveRuntime(reactor)
        )
        self._WrappedInterface = Interface
        self._status: Status = "Unknown"
        self._DisconnectLimit = 15
        self._sends = 0
        self._keepAliveBusy = False
        #: keep-alives started (the end of an earlier one no longer counts)
        self._keepAliveRun = 0
        #: when a keep-alive still running is given up on (reactor time)
        self._keepAliveGiveUp = math.inf
        #: the keep-alive run whose skipped ticks were logged (once per run)
        self._skipSaid = 0
        #: the longest SendAndWait timeout through the handler (a keep-alive may wait that long)
        self._longestWait = 0.0
        self.polls = 0
        self.transitions = 0
        self.since = self._rt.reactor.seconds()
        self._statusObservers: list[Callable[[Status], object]] = []
        self._PollTimer = HandlerTimer(
            pollFrequency, self._pollTick, reactor=self._rt.reactor, _dispatcher=_REACTOR_DISPATCH
        )
        self._PollTimer.Pause()

    # documented properties

    @property
    def ConnectionStatus(self) -> Status:
        """'Connected', 'Disconnected' or 'Unknown'."""
        return self._status

    @property
    def DisconnectLimit(self) -> int:
        """The number of unanswered sends that indicates a disconnected device."""
        return self._DisconnectLimit

    @property
    def Interface(self) -> Any:
        """The wrapped interface or Global Scripter module."""
        return self._WrappedInterface

    @property
    def PollTimer(self) -> Timer:
        """The L{Timer} that schedules keep-alive polling."""
        return self._PollTimer

    @property
    def wanted(self) -> bool:
        """
        Whether the link is wanted: from C{Connect()} (for a pipe, also its interface's opening)
        to C{Disconnect()}.  Read-only; the one answer status pages use.
        """
        raise NotImplementedError

    @property
    def missedPolls(self) -> int:
        """
        Sends through the handler since the last accepted response (the keep-alive's too): what
        DisconnectLimit bounds, and C{/status} shows as C{misses}.
        """
        return self._sends

    # state

    def _on(self, event: Input, why: str = "", inline: bool = False) -> bool:
        """
        Apply one lifecycle input to L{ConnectionStatus} (reactor thread), by L{TRANSITIONS};
        whether it changed.  C{inline}: the caller calls the event's callback itself.
        """
        new = TRANSITIONS.get((event, self._status))
        if new is not None and new != self._status:
            self._setStatus(new, why, inline)
            return True
        return False

    def _setStatus(self, value: Status, why: str = "", inline: bool = False) -> None:
        if value == self._status:
            return
        previous, self._status = self._status, value
        self.transitions += 1
        self.since = self._rt.reactor.seconds()
        self.log.info(
            "{device}: {previous} -> {status}{why}",
            device=self.logName,
            handler=self,
            previous=previous,
            status=value,
            why=f" ({why})" if why else "",
            chStatus=value,
        )
        self._statusChanged(value)
        if not inline:
            emit(self._rt, self, value, self, value)
        for observer in list(self._statusObservers):
            _REACTOR_DISPATCH.call(observer, value)

    def addStatusObserver(self, observer: Callable[[Status], object]) -> None:
        """Call C{observer(status)} on the reactor thread at every transition (Twisted face)."""
        _checks.callback(observer, "observer")
        self._statusObservers.append(observer)

    def removeStatusObserver(self, observer: Callable[[Status], object]) -> None:
        """Stop calling C{observer}."""
        self._statusObservers.remove(observer)

    def whenStatus(self, status: Status) -> Deferred[Status]:
        """A Deferred that fires once L{ConnectionStatus} is C{status} (at once if it is now)."""
        if status not in ("Connected", "Disconnected", "Unknown"):
            raise ValueError(
                f"status must be 'Connected', 'Disconnected' or 'Unknown', not {status!r}"
            )
        if self._status == status:
            return succeed(status)
        d: Deferred[Status] = Deferred(lambda d: self.removeStatusObserver(check))

        def check(value: Status) -> None:
            if value == status and not d.called:
                self.removeStatusObserver(check)
                d.callback(value)

        self.addStatusObserver(check)
        return d

    def _statusChanged(self, value: Status) -> None:
        """Hook for subclasses, called before the event."""

    def stats(self) -> LinkStats:
        """Counters for operators: status, since, polls, misses, transitions, last error."""
        return self._linkStats()

    def _linkStats(self, **more: Any) -> LinkStats:
        """L{stats} with a subclass's C{more} fields, made once (a status row per device)."""
        link: DeviceLink | None = getattr(self._WrappedInterface, "link", None)
        return LinkStats(
            status=self._status,
            since=self.since,
            polls=self.polls,
            misses=self.missedPolls,
            transitions=self.transitions,
            lastError=link.lastError if link is not None else None,
            **more,
        )

    # the send counter (any thread)

    def _countSend(self) -> bool:
        """Count one send; True when it takes the counter past DisconnectLimit."""
        with self._counterLock:
            self._sends += 1
            return self._sends > self._DisconnectLimit

    def _resetCounter(self) -> None:
        with self._counterLock:
            self._sends = 0

    # polling (reactor thread)

    def _pollTick(self, timer: Timer, count: int) -> None:
        """One PollTimer tick (reactor thread)."""
        raise NotImplementedError

    def _runKeepAlive(self, query: KeepAlive | None, *args: object) -> None:
        """
        Call the keep-alive where the handler's callbacks run, unless the previous call still
        runs (then this tick is skipped: nothing sent, nothing counted).
        """
        if query is None:
            return
        # a keep-alive Deferred that never fires must not silence polling for good: past its
        # bound, this tick runs a new one (a new run: the old one's end no longer counts)
        if self._keepAliveBusy and self._rt.reactor.seconds() < self._keepAliveGiveUp:
            # said once per run: a program thread behind its polls skips most ticks of many
            # handlers, and a debug event costs the reactor its observers' filtering each time
            if self._skipSaid != self._keepAliveRun:
                self._skipSaid = self._keepAliveRun
                self.log.debug(
                    "{handler}: keep-alive still running; ticks skipped until it ends",
                    handler=self,
                )
            return
        self._keepAliveBusy = True
        self.polls += 1
        run = self._keepAliveRun = self._keepAliveRun + 1
        dispatcher = self._rt.dispatcher
        if type(dispatcher) is not ReactorDispatcher:
            self._runDispatched(dispatcher, query, args, run)
            return
        # ReactorDispatcher.call, inline: an async def keep-alive runs as a CoroutineRun and a
        # Deferred carries its own end, so no Deferred or callback is added per poll (polls in
        # flight hold fewer objects for the collector to walk)
        tellsEnd = self._tellsEnd
        try:
            if tellsEnd is None or query is not self._keepAliveQuery:
                result = query(*args)
            else:  # it may tell its end itself (_keepAliveEnded): no Deferred to wait on
                result = tellsEnd(query, self, run)
        except Exception:
            logCallbackFailure(Failure(), query)
            result = None
        except SystemExit as e:
            logCallbackExit(e, query)
            result = None
        if result is None:  # finished synchronously (the usual case)
            self._keepAliveBusy = False
            return
        if result is TELLS_END:
            if self._keepAliveBusy and run == self._keepAliveRun:
                self._setGiveUp()
            return
        if type(result) is CoroutineType:
            CoroutineRun(result, query, self, run)(None)  # its first step (it may end there)
            if self._keepAliveBusy and run == self._keepAliveRun:
                self._setGiveUp()  # (after its first step: its SendAndWait timeouts count)
            return
        self._setGiveUp()
        if isinstance(result, Deferred):
            # a function and the handler, not a bound method: one object fewer per poll in
            # flight for the collector to walk (see L{_keepAliveEnded})
            result.addBoth(_keepAliveEnded, self, run, query)
        elif inspect.isawaitable(result):
            ensureDeferred(result).addBoth(_keepAliveEnded, self, run, query)  # type: ignore[arg-type]
        else:
            self._keepAliveBusy = False

    def _runDispatched(
        self, dispatcher: Any, query: KeepAlive, args: tuple[object, ...], run: int
    ) -> None:
        """Call the keep-alive through a dispatcher of its own (a program thread's)."""
        if isinstance(dispatcher, ProgramThread):
            # a program thread cannot be interrupted: as in ControlScript, its ticks wait for
            # it (set first: a stopping thread tells the end at once); the end is told without
            # a Deferred, so a keep-alive queued behind the thread holds fewer objects
            self._keepAliveGiveUp = math.inf
            dispatcher.callTimerThen(_keepAliveEnded, (self, run), query, *args)
            return
        done = dispatcher.callTimer(query, *args)
        if done is None:  # finished synchronously (the usual case)
            self._keepAliveBusy = False
            return
        # (not done.called: a Deferred has its result before a callback's Deferred, which its
        # chain then waits for, has fired; addBoth below runs at once if it has truly ended)
        self._setGiveUp()
        done.addBoth(_keepAliveEnded, self, run)

    def _setGiveUp(self) -> None:
        # one that waits for answers is running, not stuck: the bound allows for every miss
        # (checked at the next tick, so no timer per poll)
        bound = (self._DisconnectLimit + 1) * (self._PollTimer.Interval + self._longestWait)
        self._keepAliveGiveUp = self._rt.reactor.seconds() + bound

    def _coroutineEnded(self, token: int) -> None:
        """An C{async def} keep-alive's L{CoroutineRun} ended (its failure was logged)."""
        if token == self._keepAliveRun:
            self._keepAliveBusy = False

    def _newLink(self) -> None:
        """A new link starts with the counter at 0 and no keep-alive in flight."""
        self._keepAliveRun += 1  # the keep-alive of the old link, if any, no longer counts
        self._keepAliveBusy = False
        self._resetCounter()

    def _linkLive(self) -> bool:
        """Whether the device's link is up (a response on it can mean Connected)."""
        return True

    # shared API

    def ResponseAccepted(self) -> None:
        """Reset the send counter: call it when a good response arrived (Connected, if not yet)."""
        with self._counterLock:  # (L{_resetCounter}, inline: every answer)
            self._sends = 0
        if self._status != "Connected":
            self._rt.twoFaced(self._responseAccepted)

    def _responseAccepted(self) -> None:
        self._resetCounter()
        if self._linkLive():
            self._on("answered", "response accepted")

    def OnDisconnected(self) -> None:
        """Force the Disconnected state (for example when the port's host went offline)."""
        self._rt.twoFaced(self._forceDisconnected)

    def _forceDisconnected(self) -> None:
        self._resetCounter()
        self._on("forced", "forced")

    @property
    def logName(self) -> str:
        """How log lines name the device: its link's description, else the interface's repr."""
        link = ownAttribute(self._WrappedInterface, "_link")
        description = getattr(link, "description", None)
        return description if isinstance(description, str) else repr(self._WrappedInterface)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._WrappedInterface!r} {self._status}>"


def _keepAliveEnded(
    result: object, handler: ConnectionHandler, run: int, query: object = "keep-alive"
) -> None:
    """
    A keep-alive's Deferred fired: its failure is logged, and the handler's next tick may run
    one again (unless a newer run has started since: C{run} is this one's token).  A function
    given the handler, not a bound method: each poll in flight holds one object fewer.
    """
    if isinstance(result, Failure):
        logCallbackFailure(result, query)
    if run == handler._keepAliveRun:
        handler._keepAliveBusy = False


class _LinkHandler(ConnectionHandler):
    """A handler over an interface that has a L{DeviceLink} (every raw handler)."""

    ReceiveData = Event["ConnectionHandler"]("Called as C{(handler, data)} for received bytes.")

    #: Whether the keep-alive also runs each time the link opens (a tick's path: one in flight
    #: at most, its sends counted), so a device can be Connected at once instead of one
    #: pollFrequency later.  Off by default (the reference's PollTimer first ticks one interval
    #: after it starts); the fleet service turns it on for its devices.
    pollAtLinkUp = False

    def __init__(
        self,
        Interface: Any,
        DisconnectLimit: int,
        pollFrequency: float,
        keepAliveQuery: KeepAlive | None,
        *,
        reactor: Any = None,
    ) -> None:
        super().__init__(Interface, pollFrequency, reactor=reactor)
        self._DisconnectLimit = _checks.disconnectLimit(DisconnectLimit)
        if keepAliveQuery is not None and not callable(keepAliveQuery):
            raise TypeError(f"keepAliveQuery must be callable, not {type(keepAliveQuery).__name__}")
        self._keepAliveQuery = keepAliveQuery
        #: its class's _pollTellingEnd, if any (see L{TELLS_END})
        self._tellsEnd: Callable[..., object] | None = getattr(
            type(keepAliveQuery), "_pollTellingEnd", None
        )
        link = getattr(Interface, "link", None)
        if not isinstance(link, DeviceLink):
            raise TypeError(f"{type(Interface).__name__} is not a twisted_ch device interface")
        self._link = link
        link.observers.append(self)

    def _linkLive(self) -> bool:
        return self._link.connected

    # link observer (reactor thread)

    def linkMade(self) -> None:
        self._newLink()

    def linkReady(self) -> None:
        """Every observer of the link heard that it is up (see L{DeviceLink.linkMade})."""
        if self.pollAtLinkUp:
            self._pollTick(self._PollTimer, 0)  # then the PollTimer's ticks, as they come

    def linkLost(self, reason: str) -> None:
        self._on("lost", reason)

    def linkData(self, data: bytes) -> None:
        # emit(), inlined: every answer (an attribute, None on the class: no __dict__ is built)
        callback = getattr(self, "_event_ReceiveData", None)
        if callback is not None:
            dispatcher = self._rt.dispatcher
            if type(dispatcher) is ReactorDispatcher:
                callOnReactor(callback, self, data)
            else:
                dispatcher.call(callback, self, data, droppable=True)

    def linkFailed(self, reason: str) -> None:
        pass  # never reached: no status change (the link keeps the reason as lastError)

    # data API, through the interface (validation and both faces live there)

    def Send(self, data: bytes | str) -> None:
        """
        Send data without waiting (one more on the send counter).  To a device that is down
        (before C{Connect()}, after a loss or failed attempt, or when this send would pass
        DisconnectLimit on a TCP/SSH link) nothing is sent and nothing is raised; the first
        such send per outage is logged.
        """
        payload = toBytes(data)  # a bad argument is an error, not a send
        link = self._link
        if link.state != "connected":
            droppedSend(self._rt, link, callerSite(), False)
            return
        if self._keepAliveQuery is not None and self._countSend() and self._overLimit():
            return
        iface = self._WrappedInterface
        ioThread = threadable.ioThread
        if (
            ioThread is not None
            and ioThread == get_ident()
            and link.protocol is not None
            and ownMethod(iface, iface.Send, LinkInterface.Send)
        ):
            # the Twisted face of the interface's own Send, inline: the link is connected
            link.protocol.send(payload)
            return
        iface.Send(payload)

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """
        Send (one more on the send counter) and wait for the response (see the interface's).  To
        a device that is down (as for L{Send}) nothing is sent and it returns None; on the
        reactor thread, a Deferred firing None.
        """
        payload = toBytes(data)  # bad arguments are errors, not sends
        wait = _checks.seconds(timeout, "timeout", zero=True)
        if wait > self._longestWait:
            self._longestWait = wait
        iface = self._WrappedInterface
        # ours, not replaced on the class or the instance (a tracing or test wrapper): the
        # condition is checked here, before the send counts, and not again there
        ours = ownMethod(iface, iface.SendAndWait, LinkInterface.SendAndWait)
        matcher = iface._matcher(delimiter) if ours else None
        link = self._link
        if link.state != "connected":
            if matcher is None:  # the interface's own (which drops it too, or has none: Dante)
                return iface.SendAndWait(payload, wait, **delimiter)
            droppedSend(self._rt, link, callerSite(), False)
            return noResponse()
        if self._keepAliveQuery is not None and self._countSend() and self._overLimit():
            return noResponse()
        if matcher is None:
            return iface.SendAndWait(payload, wait, **delimiter)
        ioThread = threadable.ioThread
        if ioThread is not None and ioThread == get_ident() and link.protocol is not None:
            # the Twisted face of the interface's own SendAndWait, inline: the link is connected
            return link.protocol.sendAndWait(payload, wait, matcher)
        return iface._sendAndWait(payload, wait, matcher)

    def _overLimit(self) -> bool:
        """A send takes the counter past DisconnectLimit (any thread); True: do not send it."""
        raise NotImplementedError

    def Disconnect(self) -> Any:
        """Stop polling and reconnecting, and close the link (a Deferred on the reactor)."""
        return self._rt.twoFaced(self._disconnect)

    def _disconnect(self) -> Deferred[None]:
        self._PollTimer.Stop()
        return self._link.close()


class RawTcpHandler(_LinkHandler):
    """
    Keeps a TCP or SSH (or any connection-oriented) interface connected: polls while the link is
    up, drops it when a send would take the send counter past DisconnectLimit, and reconnects
    every C{connectRetryTime} seconds while L{AutoReconnect} is on.  Connected once a response is
    accepted (without a keep-alive: once the link opens).
    """

    ConnectFailed = Event["ConnectionHandler"]("Called as C{(handler, reason)} per failed attempt.")

    def __init__(
        self,
        Interface: Any,
        DisconnectLimit: int = 15,
        pollFrequency: float = 1,
        keepAliveQuery: KeepAlive | None = None,
        connectRetryTime: float = 5,
        *,
        reactor: Any = None,
    ) -> None:
        super().__init__(Interface, DisconnectLimit, pollFrequency, keepAliveQuery, reactor=reactor)
        self._retryTime = _checks.period(connectRetryTime, "connectRetryTime")
        # the link's lifecycle keeps it from Connect() to Disconnect(), retried by its retrier
        connection = self._link.connection
        connection.retrier.interval = self._retryTime
        connection.retrier.policy = FIXED
        connection.reconnecting = True  # AutoReconnect
        connection.resetOnUp = False  # the count restarts once the device is Connected
        self._link.retryHook = self._retryNow
        self.reconnects = 0

    @property
    def retryPolicy(self) -> RetryPolicy:
        """How long to wait before each reconnection attempt (see L{twisted_ch._retry})."""
        return self._link.retrier.policy

    @retryPolicy.setter
    def retryPolicy(self, policy: RetryPolicy) -> None:
        self._link.retrier.policy = policy
        self._link.connection.retime()

    @property
    def failedAttempts(self) -> int:
        """Attempts failed or links lost since the device was last Connected."""
        return self._link.retrier.failures

    @property
    def retryWhy(self) -> str | None:
        """Why the next attempt waits longer than connectRetryTime (a backoff), else None."""
        return self._link.retrier.why

    @property
    def wanted(self) -> bool:
        """Whether the link is wanted: from C{Connect()} to C{Disconnect()}."""
        return self._link.wanted

    @property
    def AutoReconnect(self) -> bool:
        """Whether the handler reconnects after a disconnect or failed attempt."""
        return self._link.connection.reconnecting

    @AutoReconnect.setter
    def AutoReconnect(self, value: bool) -> None:
        self._rt.twoFaced(self._setAutoReconnect, _checks.flag(value, "AutoReconnect"))

    @property
    def connectRetryTime(self) -> float:
        """Seconds between reconnection attempts."""
        return self._retryTime

    def _setAutoReconnect(self, value: bool) -> None:
        self._link.connection.setReconnecting(value)

    def Connect(self, timeout: float | None = None) -> Any:
        """
        Connect and start polling; one attempt unless AutoReconnect is on.  Returns the first
        attempt's result ('Connected', 'ConnectedAlready' or the failure reason); a Deferred of it
        on the reactor thread.
        """
        if timeout is not None:
            timeout = checkSeconds(timeout, "timeout")
        return self._rt.twoFaced(self._connect, timeout)

    #: The manual's "TCP Extras" example starts a handler with C{StartPolling()}.
    StartPolling = Connect

    def _want(self, timeout: float | None) -> None:
        """The link is wanted from now on (no retry pending: a connect follows); polling runs."""
        self._link.connection.keep(timeout)
        if self._PollTimer.State != "Running":
            self._PollTimer.Restart()

    def _connect(self, timeout: float | None) -> Deferred[str]:
        if self._PollTimer.State != "Running":
            self._PollTimer.Restart()
        return self._link.connect(timeout, keep=True)

    def _disconnect(self) -> Deferred[None]:
        self._PollTimer.Stop()
        return self._link.stop()

    # reconnecting: the link's lifecycle times the attempts (its Waiting state)

    def _retryNow(self) -> None:
        """A retry is due (the link is wanted and down)."""
        self.reconnects += 1
        self._reconnect()

    def _reconnect(self) -> None:
        """Make one reconnect attempt."""
        self._link.connect(self._link.connection.timeout)

    # link observer (reactor thread)

    def linkMade(self) -> None:
        super().linkMade()
        if self._keepAliveQuery is None:
            self._on("answered", "link opened; no keep-alive")

    def linkFailed(self, reason: str) -> None:
        emit(self._rt, self, "ConnectFailed", self, reason)

    # the counter

    def _pollTick(self, timer: Timer, count: int) -> None:
        if self._link.state == "connected":
            self._runKeepAlive(self._keepAliveQuery, self)

    def _overLimit(self) -> bool:
        self._rt.twoFaced(self._dropSilentLink)
        return True

    def _dropSilentLink(self) -> None:
        if not self._link.connected:
            return
        why = f"{self._DisconnectLimit} sends unanswered"
        self.log.info(
            "{device}: {why}; dropping the link", device=self.logName, handler=self, why=why
        )
        self._on("silent", why)
        self._link.muteDroppedSends()  # this drop is the outage's report
        self._link.drop(why)

    def _forceDisconnected(self) -> None:
        super()._forceDisconnected()
        self._link.drop("OnDisconnected() called")

    def _statusChanged(self, value: Status) -> None:
        super()._statusChanged(value)
        if value == "Connected":
            self._link.retrier.reset()

    def stats(self) -> LinkStats:
        return self._linkStats(
            reconnects=self.reconnects,
            nextAttempt=self._link.connection.nextAttempt,
            backoff=self._link.retrier.why,
        )


class RawSimplePipeHandler(_LinkHandler):
    """
    Watches a serial, UDP or SP interface, whose transport reports no connection state: the
    keep-alive decides.  L{ResponseAccepted} means Connected; a send that takes the send counter
    past DisconnectLimit means Disconnected (and is still sent, so the device can come back).  A
    lost port is reopened every C{connectRetryTime} seconds (or as L{retryPolicy} says).
    """

    def __init__(
        self,
        Interface: Any,
        DisconnectLimit: int = 15,
        pollFrequency: float = 1,
        keepAliveQuery: KeepAlive | None = None,
        connectRetryTime: float = 5,
        *,
        reactor: Any = None,
    ) -> None:
        if keepAliveQuery is None:
            raise ValueError(
                "a serial, UDP or SP interface needs a keepAliveQuery: its state comes from it"
            )
        super().__init__(Interface, DisconnectLimit, pollFrequency, keepAliveQuery, reactor=reactor)
        self._link.reopenDelay = _checks.period(connectRetryTime, "connectRetryTime")

    @property
    def retryPolicy(self) -> RetryPolicy:
        """How long to wait before each reopening of a lost port (see L{twisted_ch._retry})."""
        return self._link.retrier.policy

    @retryPolicy.setter
    def retryPolicy(self, policy: RetryPolicy) -> None:
        self._link.retrier.policy = policy
        self._link.connection.retime()

    @property
    def wanted(self) -> bool:
        """Whether the port is wanted open: from C{Connect()} to C{Disconnect()}."""
        return self._link.wanted

    def Connect(self, timeout: float | None = None) -> None:
        """Open the port (and keep it open) and start the polling loop."""
        self._rt.twoFaced(self._connect)

    StartPolling = Connect

    def _connect(self) -> None:
        self._link.open()
        if self._PollTimer.State != "Running":
            self._PollTimer.Restart()

    def _pollTick(self, timer: Timer, count: int) -> None:
        if self._link.state == "connected":
            self._runKeepAlive(self._keepAliveQuery, self)

    def _overLimit(self) -> bool:
        if self._status == "Disconnected":
            return False
        why = f"{self._DisconnectLimit} sends unanswered"
        dispatcher = self._rt.dispatcher
        if not (isinstance(dispatcher, ProgramThread) and dispatcher.isCurrent):
            self._rt.twoFaced(self._on, "silent", why)  # its events run at once, or queued
            return False
        # on the thread its events run on (the program's): Disconnected is reported inside this
        # send, before the query goes out, as the reference does (not once its wait is over)
        if self._rt.twoFaced(self._on, "silent", why, True):
            emitHere(self, "Disconnected", self, "Disconnected")
        return False
