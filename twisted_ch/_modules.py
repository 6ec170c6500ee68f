"""
Connection handlers for Global Scripter device modules: L{ModuleTcpHandler} (TCP, SSH, Dante and
Serial-over-Ethernet modules) and L{ModuleSimplePipeHandler} (serial, UDP, SP and HTTP modules).

A Global Scripter module decides by itself whether its device is there.  Every C{pollFrequency}
the handler calls C{module.Update(keepAliveQuery, keepAliveQualifiers)}; the module counts
updates in C{counter} (set to 0 by every parsed answer), calls its C{OnDisconnected()} once
C{counter} exceeds C{connectionCounter} (which the handler sets from DisconnectLimit) and its
C{OnConnected()} on the next good answer, and reports both through its C{ConnectionStatus}
status.  The handler subscribes to that status and turns each change into its Connected or
Disconnected event.  A user's C{SubscribeStatus('ConnectionStatus', ...)} is kept by the handler
and called as well.

ModuleTcpHandler also keeps the transport up with L{RawTcpHandler}'s machinery (AutoReconnect,
ConnectFailed, a retry every C{reconnectTime} - GetConnectionHandler's C{connectRetryTime}), but
through the module's own methods, as the reference does, so that modules overriding them work:
it connects with the module's C{Connect(timeout)} (a projector module's handshake), drops the
link with the module's C{Disconnect()} and calls the module's C{OnDisconnected()} on every loss
of the link, also when the module already said Disconnected (an Extron SIS module resets its
login state there).  Those calls run where module code runs; the ConnectionStatus a module
reports while in them is relayed once, when they return, so a module whose C{OnDisconnected}
briefly reports Connected (many do) causes no Connected/Disconnected pair at the same instant.

The handler drops the link when the module reports Disconnected on it, and when DisconnectLimit
polls in a row went out on a link without the module reporting Connected (a device that accepts
TCP and never answers, or one still silent after a reconnect), then reconnects quietly.  So
DisconnectLimit x pollFrequency must leave room for the module's session start (banner, login).
A failed connect attempt fires ConnectFailed only: a module never reached stays 'Unknown'.

Where module code runs
======================
Module code (Update, Set, the module's own ReceiveData parser and the status callbacks it calls)
is ControlScript code: it may block in SendAndWait, so it runs on a L{ProgramThread}:

  - a module created by program code (on a program thread, as under
    L{twisted_ch.program.Program}) stays on that thread;
  - a module created on the reactor thread (the Twisted face) runs on L{moduleThread}: one shared
    program thread per reactor, created and started with the first such handler, stopped before
    reactor shutdown.  The module's interface delivers its events there.  The handler's own
    events (Connected, Disconnected, ConnectFailed) keep the face of the code that created it;
  - with a reactor that has no threads (a L{twisted.internet.task.Clock} in tests), module code
    runs inline on the reactor thread, with the module's clock current: deterministic, but a
    SendAndWait inside module code returns a Deferred there.

Called on the reactor thread, the handler's C{Set...}/C{Update...} methods run the module's on its
thread and return a Deferred of the result; called from a program thread they run right there.

The module's C{Connect(timeout)} may block for C{timeout} (a device that never completes the TCP
handshake): the handler's attempts (L{ModuleTcpHandler.Connect} on the reactor thread, and every
reconnect) run it on a short-lived thread of its own with the module's runtime current, as
ControlScript runs a Timer's function, so it holds up no other module sharing the thread and no
program event.  The handler's other calls into that module (poll Updates are skipped; its
C{OnDisconnected} and C{Disconnect} wait) run only once that C{Connect} returned, in order, and
the ConnectionStatus the module reported meanwhile is relayed on the module's thread then.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger, LogLevel
from twisted.python import threadable
from twisted.python.failure import Failure

from twisted_ch import _checks
from twisted_ch._connection import Dropping, Up
from twisted_ch._events import emit, emitHere
from twisted_ch._handlers import ConnectionHandler, RawTcpHandler
from twisted_ch._link import DeviceLink
from twisted_ch._objects import ownAttribute
from twisted_ch._retry import RetryPolicy
from twisted_ch._runtime import (
    ProgramThread,
    ReactorDispatcher,
    Runtime,
    afterCall,
    currentRuntime,
    describe,
    logCallbackFailure,
    useRuntime,
)
from twisted_ch._summary import Summarizer
from twisted_ch.extronlib.system import Timer

__all__ = ["ModuleSimplePipeHandler", "ModuleTcpHandler", "moduleThread"]

log = Logger(namespace="twisted_ch.modules")

#: Module methods that may block: through a handler on the reactor thread they run on the
#: module's thread.
_MODULE_COMMAND = re.compile(r"(?:Set|Update)(?:[A-Z]|$)")

_REACTOR = ReactorDispatcher()
_moduleThreads: weakref.WeakKeyDictionary[Any, ProgramThread] = weakref.WeakKeyDictionary()


def moduleThread(reactor: Any) -> ProgramThread:
    """
    The program thread running Global Scripter modules created on C{reactor}'s thread: one per
    reactor, started on first use, stopped before the reactor shuts down.  Its modules share it,
    so one module blocked in a long SendAndWait delays the others.
    """
    thread = _moduleThreads.get(reactor)
    if thread is None:
        thread = ProgramThread(reactor, name="twisted_ch-modules")
        _moduleThreads[reactor] = thread
        reactor.addSystemEventTrigger("before", "shutdown", thread.stop)
    thread.ensureStarted()
    return thread


def _onReactorThread() -> bool:
    return threadable.ioThread is None or threadable.isInIOThread()


class _InlineDispatcher:
    """Runs module code at once on the reactor thread, with the module's runtime current."""

    def __init__(self, reactor: Any) -> None:
        self.runtime = Runtime(reactor, self)

    def call(
        self, f: Callable[..., object], *args: object, droppable: bool = False
    ) -> Deferred[None] | None:
        with useRuntime(self.runtime):
            return _REACTOR.call(f, *args)

    def callTimer(self, f: Callable[..., object], *args: object) -> Deferred[None] | None:
        return self.call(f, *args)


def _placeModule(module: Any, reactor: Any) -> tuple[Runtime, ProgramThread | None]:
    """Choose where C{module}'s code runs (see the module docstring); route its events there."""
    own = getattr(module, "_rt", None)
    if isinstance(own, Runtime):
        if isinstance(own.dispatcher, ProgramThread):
            return own, own.dispatcher
        reactor = own.reactor
    else:
        current = currentRuntime()
        if isinstance(current.dispatcher, ProgramThread):
            return current, current.dispatcher
        if reactor is None:
            reactor = current.reactor
    thread: ProgramThread | None = None
    if IReactorFromThreads.providedBy(reactor):
        thread = moduleThread(reactor)
        runtime = thread.runtime
    else:
        runtime = _InlineDispatcher(reactor).runtime
    if isinstance(own, Runtime):
        # the interface's events (the module's ReceiveData parser) now reach the module's thread
        module._rt = runtime
    return runtime, thread


@dataclass
class _Queued:
    """A call waiting in L{_CallOrder}: C{start} it; C{cancel}: a module Connect's (else None)."""

    start: Callable[[], None]
    cancel: Callable[[], None] | None = None


class _CallOrder:
    """
    The order of a handler's calls into its module (reactor thread).  Calls run where module
    code runs, in the order made (that thread's queue keeps it).  A module Connect runs aside,
    on a thread of its own: it starts once the calls before it have finished, and the calls
    after it wait here until it has returned.

    @ivar running: calls started where module code runs and not yet finished.
    @ivar aside: while a Connect runs aside, the Deferreds that wait for it to return; else None.
    @ivar queue: what waits, in order: for the Connect aside to return, or (a Connect) for the
        calls before it to finish.
    """

    def __init__(self) -> None:
        self.running = 0
        self.aside: list[Deferred[None]] | None = None
        self.queue: deque[_Queued] = deque()

    @property
    def held(self) -> bool:
        """Whether a new call must wait (a Connect runs aside, or waits to)."""
        return self.aside is not None or bool(self.queue)

    def call(self, start: Callable[[], None]) -> None:
        """Start a call now, or once the Connect before it has returned."""
        if self.held:
            self.queue.append(_Queued(start))
        else:
            start()

    def connect(self, start: Callable[[], None], cancel: Callable[[], None]) -> None:
        """Start a Connect now, or once every call before it has finished."""
        if self.held or self.running:
            self.queue.append(_Queued(start, cancel))
        else:
            start()

    def started(self) -> None:
        """A call started where module code runs."""
        self.running += 1

    def finished(self, result: object = None) -> object:
        """A call finished there: what waited for it may start."""
        self.running -= 1
        self.next()
        return result

    def next(self) -> None:
        """Start what waited, in order; a Connect waits for the calls before it to finish."""
        queue = self.queue
        while queue and self.aside is None:
            if queue[0].cancel is not None and self.running:
                return
            queue.popleft().start()

    def cancelConnects(self) -> Deferred[None]:
        """Drop the Connects that have not started; fires once none runs aside."""
        cancelled = [q.cancel for q in self.queue if q.cancel is not None]
        self.queue = deque(q for q in self.queue if q.cancel is None)
        for cancel in cancelled:
            cancel()
        if self.aside is None:
            self.next()
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.aside.append(d)
        return d


class _ModuleDriver:
    """
    Runs a module's code where it belongs and relays its C{ConnectionStatus} to a handler.

    L{poll} and L{linkDown} are called on the reactor thread; L{_connectionStatus} and
    L{_tellDisconnected} run wherever module code runs.
    """

    def __init__(
        self,
        module: Any,
        keepAliveQuery: object,
        qualifier: object,
        disconnectLimit: int,
        reactor: Any,
        report: Callable[[str], None],
    ) -> None:
        if not isinstance(keepAliveQuery, str) or not callable(
            getattr(module, "Update" + keepAliveQuery, None)
        ):
            raise ValueError(
                f"keepAliveQuery must name an Update command of {type(module).__name__} "
                f"(Update{keepAliveQuery} not found)"
                if isinstance(keepAliveQuery, str)
                else "keepAliveQuery must be the name of the module's Update command, "
                f"not {type(keepAliveQuery).__name__}"
            )
        if qualifier is not None and not isinstance(qualifier, dict):
            raise TypeError(f"keepAliveQualifiers must be a dict, not {type(qualifier).__name__}")
        subscribe = getattr(module, "SubscribeStatus", None)
        if not callable(subscribe):
            raise TypeError(f"{type(module).__name__} is not a Global Scripter module")
        self.module = module
        self.query = keepAliveQuery
        self.qualifier = qualifier
        self.report = report
        self.runtime, self.thread = _placeModule(module, reactor)
        self.reactor = self.runtime.reactor
        #: The module's last ConnectionStatus (only touched where module code runs).
        self.reported: object = None
        #: The user's ConnectionStatus callback, kept here since the handler holds the module's.
        self.subscriber: Callable[..., object] | None = None
        #: the keep-alive Update was called and has not finished (reactor thread)
        self._polling = False
        #: the order of the handler's calls into the module (reactor thread)
        self._order = _CallOrder()
        #: While the handler's calls into the module run, reports are held (module code's thread).
        self._holding = 0
        self._holdLock = threading.Lock()
        self._heldQualifier: object = None
        self._delivered: object = None
        #: a keep-alive Update that raises: told once, then counted (reactor thread)
        self._raising = Summarizer(self.reactor)
        self._raised: object = None
        #: called (reactor thread) for a keep-alive Update that raised before it sent anything
        self.raisedUnsent: Callable[[], None] | None = None
        #: the keep-alive Update runs (where module code runs)
        self._updating = False
        #: a skipped poll was logged since a poll last ran
        self._skipSaid = False
        #: called where module code runs for a Disconnected the keep-alive Update reported; True:
        #: it was delivered there, inside the Update (a pipe module's, as the reference does)
        self.reportHere: Callable[[], bool] | None = None
        module.connectionCounter = disconnectLimit
        subscribe("ConnectionStatus", None, self._connectionStatus)

    # reactor thread: the handler's calls into the module, in order

    @property
    def busy(self) -> bool:
        """Whether the last keep-alive Update or a Connect still runs (a tick now is skipped)."""
        return self._polling or self._order.held

    def skipping(self) -> bool:
        """
        Whether a tick now is skipped (L{busy}); said once until a poll runs again (see
        L{_runKeepAlive<twisted_ch._handlers.ConnectionHandler._runKeepAlive>}'s).
        """
        if not self.busy:
            return False
        if not self._skipSaid:
            self._skipSaid = True
            log.debug(
                "{module}: Update{query} or Connect still running; polls skipped until it ends",
                module=self.module,
                query=self.query,
            )
        return True

    def poll(self) -> bool:
        """
        Call the keep-alive Update on the module's thread unless the last one (or a Connect)
        still runs; whether it was called.
        """
        if self.skipping():
            return False
        self._skipSaid = False
        self._polling = True
        self._order.started()
        afterCall(self.runtime.dispatcher.call(self._update), self._polled)
        return True

    def _bytesSent(self) -> int:
        link = ownAttribute(self.module, "_link")
        protocol = link.protocol if isinstance(link, DeviceLink) else None
        return protocol.bytesSent if protocol is not None else 0

    def _update(self) -> None:
        """The keep-alive Update (where module code runs); what it raises is reported here."""
        before = self._bytesSent()
        self._updating = True
        try:
            self.module.Update(self.query, self.qualifier)
        except Exception:
            failure = Failure()
            unsent = self._bytesSent() == before
            if _onReactorThread():
                self._updateRaised(failure, unsent)
            else:
                self.reactor.callFromThread(self._updateRaised, failure, unsent)
            return
        finally:
            self._updating = False
        if self._raised is not None:
            if _onReactorThread():
                self._updateRan()
            else:
                self.reactor.callFromThread(self._updateRan)

    def _updateRaised(self, failure: Failure, unsent: bool) -> None:
        """
        Reactor thread: the keep-alive Update raised.  The first of a run of identical ones is
        logged with its traceback, then a count per period; one raised before it sent anything is
        not counted against the device (the reference's rule).
        """
        kind = (failure.type, str(failure.value))
        if self._raised is not None and self._raised != kind:
            self._raising.end(self._raised)
        self._raised = kind
        self._raising.emit(
            log,
            kind,
            LogLevel.error,
            "{module}: Update{query} raised {error}",
            log_failure=failure,
            module=describe(self.module),
            query=self.query,
            error=f"{type(failure.value).__name__}: {failure.value}",
        )
        if unsent and self.raisedUnsent is not None:
            self.raisedUnsent()

    def _updateRan(self) -> None:
        """Reactor thread: the keep-alive Update ran without raising; a run of failures ended."""
        if self._raised is not None:
            self._raising.end(self._raised)
            self._raised = None

    def stopReporting(self) -> None:
        """Log a pending count now and leave no timer behind (the handler stopped)."""
        self._raising.stop()
        self._raised = None

    def _polled(self, _: object) -> None:
        self._polling = False
        self._order.finished()

    def linkDown(self) -> None:
        """The link was lost: the module's C{OnDisconnected()} runs (every time)."""
        self.later(self._tellDisconnected)

    def later(self, method: Callable[..., object], *args: object) -> Deferred[None]:
        """
        Run the module's C{method} where module code runs, its reports held, after any Connect
        of the handler's still running; fires when done.
        """
        if not self._order.held:
            return self._now(method, *args)
        d: Deferred[None] = Deferred()

        def start() -> None:
            self._now(method, *args).chainDeferred(d)

        self._order.call(start)
        return d

    def _now(self, method: Callable[..., object], *args: object) -> Deferred[None]:
        self._order.started()
        done = self.runtime.call(self.held, method, *args)
        done.addBoth(self._order.finished)
        return done

    def connect(
        self, timeout: float | None, wanted: Callable[[], bool] | None = None
    ) -> Deferred[object]:
        """
        Call the module's C{Connect(timeout)} on a thread of its own, so that a device that never
        completes the connect blocks no other module's (nor the program's) code: after the
        handler's calls into the module still queued, and before the next ones, which wait for it
        (nothing else the handler calls runs on the module meanwhile).  Its reports are held and
        relayed where module code runs once it returns.  C{wanted}: asked when it starts; False
        skips it.  Fires with what C{Connect} returns.  Needs a module thread (see L{thread}).
        """
        d: Deferred[object] = Deferred()

        def start() -> None:
            if wanted is not None and not wanted():
                d.callback("Cancelled")
                return
            self._order.aside = []
            self._hold()
            thread = threading.Thread(
                target=self._connectAside,
                args=(timeout, d),
                name=f"twisted_ch-connect {describe(self.module)}",
                daemon=True,
            )
            thread.start()

        self._order.connect(start, lambda: d.callback("Cancelled"))
        return d

    def _connected(self, result: object, d: Deferred[object]) -> None:
        order = self._order
        waiters, order.aside = order.aside or [], None
        order.started()  # what the module reported meanwhile is relayed on its thread
        afterCall(self.runtime.dispatcher.call(self._unhold), order.finished)
        for w in waiters:
            w.callback(None)
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
        order.next()

    def cancelConnects(self) -> Deferred[None]:
        """
        Drop the Connects that have not started; fires once none runs (the caller may cancel
        its attempt meanwhile: L{twisted_ch._link.DeviceLink.close}).
        """
        return self._order.cancelConnects()

    # a thread of the Connect's own

    def _connectAside(self, timeout: float | None, d: Deferred[object]) -> None:
        result: object
        with useRuntime(self.runtime):  # Waits and Timers it makes run where module code runs
            try:
                result = self.module.Connect(timeout)
            except BaseException:
                result = Failure()
        self.reactor.callFromThread(self._connected, result, d)

    # either thread

    def forceDisconnected(self) -> Any:
        """The user's OnDisconnected: right here on a program thread, else on the module's."""
        if _onReactorThread():
            return self.later(self._tellDisconnected)
        self.held(self._tellDisconnected)
        return None

    def twoFaced(self, method: Callable[..., Any], held: bool = False) -> Callable[..., Any]:
        """
        C{method} (module code) made callable from the reactor: a Deferred of its result.
        C{held}: the ConnectionStatus it reports is relayed once, when it returns.
        """
        target: Callable[..., Any] = functools.partial(self.held, method) if held else method

        def call(*args: Any, **kwargs: Any) -> Any:
            if not _onReactorThread():
                return target(*args, **kwargs)
            if self.thread is not None:
                return self.thread.run(target, *args, **kwargs)
            with useRuntime(self.runtime):
                return maybeDeferred(target, *args, **kwargs)

        call.__name__ = call.__qualname__ = describe(method)
        call.__doc__ = method.__doc__
        return call

    # where module code runs

    def held(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """
        Call C{method}, relaying the ConnectionStatus it reports once, when it returns (and only
        if it differs from the last one relayed): no Connected and Disconnected at one instant.
        """
        self._hold()
        try:
            return method(*args, **kwargs)
        finally:
            self._unhold()

    def _hold(self) -> None:
        with self._holdLock:
            self._holding += 1

    def _unhold(self) -> None:
        with self._holdLock:
            self._holding -= 1
            if self._holding or self.reported == self._delivered:
                return
        self._deliver(self.reported, self._heldQualifier)

    def _tellDisconnected(self) -> None:
        onDisconnected = getattr(self.module, "OnDisconnected", None)
        if callable(onDisconnected):
            onDisconnected()
        else:
            self._connectionStatus("ConnectionStatus", "Disconnected", None)

    def _connectionStatus(self, command: str, value: object, qualifier: object) -> None:
        self.reported = value
        if self._holding:
            self._heldQualifier = qualifier
            return
        self._deliver(value, qualifier)

    def _deliver(self, value: object, qualifier: object) -> None:
        self._delivered = value
        if value in ("Connected", "Disconnected"):
            if _onReactorThread():
                self.report(str(value))
            elif not (
                value == "Disconnected"
                and self._updating
                and self.reportHere is not None
                and self.reportHere()
            ):
                self.reactor.callFromThread(self.report, str(value))
        subscriber = self.subscriber
        if subscriber is not None:
            try:
                subscriber("ConnectionStatus", value, qualifier)
            except Exception:
                log.failure(
                    "ConnectionStatus callback {callback} raised", callback=describe(subscriber)
                )


class _ModuleHandler(ConnectionHandler):
    """What both module handlers add: the module's API, its ConnectionStatus, OnDisconnected."""

    _driver: _ModuleDriver

    def _startDriving(
        self, keepAliveQuery: object, keepAliveQualifiers: object, reactor: Any
    ) -> None:
        self._driver = _ModuleDriver(
            self._WrappedInterface,
            keepAliveQuery,
            keepAliveQualifiers,
            self._DisconnectLimit,
            reactor,
            self._moduleReported,
        )

    @property
    def keepAliveQuery(self) -> str:
        """The module's Update command used as keep-alive."""
        return self._driver.query

    @property
    def missedPolls(self) -> int:
        """
        Polls since the module last parsed an answer: the module's own C{counter} (what its
        C{connectionCounter}, the handler's DisconnectLimit, bounds), as for a raw handler's sends.
        """
        counter = getattr(self._WrappedInterface, "counter", None)
        if isinstance(counter, int) and not isinstance(counter, bool):
            return counter
        return self._sends

    @property
    def moduleThread(self) -> ProgramThread | None:
        """The program thread module code runs on (None: inline on a thread-less reactor)."""
        return self._driver.thread

    def _moduleReported(self, value: str) -> None:
        """The module's ConnectionStatus changed (reactor thread)."""
        if value == "Connected":
            self._resetCounter()
            if self._linkLive():
                self._on("answered", "reported by the module")
        else:
            self._moduleDisconnected()

    def _moduleDisconnected(self, inline: bool = False) -> bool:
        """The module reported Disconnected (reactor thread); whether the status changed."""
        if self._status != "Unknown" or self._PollTimer.State != "Stopped":
            # (a handler stopped before it ever connected: the module's OnDisconnected is no news)
            return self._on("silent", "reported by the module", inline)
        return False

    def SubscribeStatus(self, command: str, qualifier: Any, callback: Any) -> None:
        """The module's SubscribeStatus; C{'ConnectionStatus'} is kept by the handler."""
        if command == "ConnectionStatus":
            if callback is not None and not callable(callback):
                raise TypeError(f"callback must be callable, not {type(callback).__name__}")
            self._driver.subscriber = callback
            return
        self._WrappedInterface.SubscribeStatus(command, qualifier, callback)

    # the module keeps its own counter: sends through the handler go straight to it

    def Send(self, data: bytes | str) -> None:
        """The module's Send."""
        self._WrappedInterface.Send(data)

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """The module's SendAndWait."""
        return self._WrappedInterface.SendAndWait(data, timeout, **delimiter)

    def OnDisconnected(self) -> Any:
        """
        Have the module report Disconnected (its C{OnDisconnected()} runs), for example when the
        host of its port went offline.
        """
        return self._driver.forceDisconnected()

    def __getattr__(self, name: str) -> Any:
        value = super().__getattr__(name)
        if callable(value) and _MODULE_COMMAND.match(name):
            return self._driver.twoFaced(value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # handler.devicePassword = ... sets the module's attribute, as Interface.devicePassword
        if self.__dict__.get("_forwarding") and not name.startswith("_"):
            wrapped = self.__dict__["_WrappedInterface"]
            if (
                name not in self.__dict__
                and not hasattr(type(self), name)
                and name in getattr(wrapped, "__dict__", {})
            ):
                setattr(wrapped, name, value)
                return
        super().__setattr__(name, value)


class ModuleTcpHandler(_ModuleHandler, RawTcpHandler):
    """
    Wraps a Global Scripter module derived from a connection-oriented interface (TCP, SSH,
    Dante, Serial-over-Ethernet): the module says Connected/Disconnected; the handler keeps the
    transport up through the module's own Connect, Disconnect and OnDisconnected (see the module
    docstring).
    """

    def __init__(
        self,
        Interface: Any,
        DisconnectLimit: int = 15,
        pollFrequency: float = 1,
        keepAliveQuery: str | None = None,
        keepAliveQualifiers: dict[str, Any] | None = None,
        reconnectTime: float = 5,
        *,
        reactor: Any = None,
    ) -> None:
        RawTcpHandler.__init__(
            self, Interface, DisconnectLimit, pollFrequency, None, reconnectTime, reactor=reactor
        )
        self._startDriving(keepAliveQuery, keepAliveQualifiers, reactor)
        #: the program called OnDisconnected(): the Disconnected it makes the module report
        #: keeps the link (the reference's rule)
        self._forcedByProgram = False
        #: whether the last poll was counted (the module had not reported Connected)
        self._pollCounted = False
        self._driver.raisedUnsent = self._uncountPoll
        self._forwarding = True

    def _linkLive(self) -> bool:
        # (not while a drop through the module's Disconnect() is under way: Dropping)
        return isinstance(self._link.connection.state, Up)

    # connecting and disconnecting: through the module's own methods

    def Connect(self, timeout: float | None = None) -> Any:
        """
        Start polling and connect with the module's C{Connect(timeout)}; one attempt unless
        AutoReconnect is on.  Returns what the module's Connect returns ('Connected',
        'ConnectedAlready' or the failure reason); a Deferred of it on the reactor thread.  On a
        handler that is Connected the module's Connect is not called again (the reference skips
        it too): polling resumes if paused, and the result is 'ConnectedAlready'.
        """
        if timeout is not None:
            timeout = _checks.seconds(timeout, "timeout")
        if self._status == "Connected" and self._link.connected:
            self._rt.twoFaced(self._want, timeout)
            return self._rt.twoFaced(succeed, "ConnectedAlready")
        if not _onReactorThread():  # a program's own Connect blocks it, as in ControlScript
            self._rt.twoFaced(self._want, timeout)
            return self._driver.twoFaced(self._WrappedInterface.Connect, held=True)(timeout)
        self._want(timeout)
        if self._driver.thread is None:
            return self._driver.twoFaced(self._WrappedInterface.Connect, held=True)(timeout)
        return self._driver.connect(timeout)

    StartPolling = Connect

    def _reconnect(self) -> None:
        if self._driver.thread is None:  # inline: a thread-less reactor (a Clock)
            self._driver.later(self._WrappedInterface.Connect, self._link.connection.timeout)
            return
        # on a thread of its own: a device that never completes the connect blocks no other
        # module sharing the module thread, nor the program that made the module
        connection = self._link.connection
        attempt = self._driver.connect(
            connection.timeout, lambda: connection.wanted and connection.reconnecting
        )
        attempt.addErrback(logCallbackFailure, self._WrappedInterface.Connect)

    def Disconnect(self) -> Any:
        """
        Stop polling and reconnecting, and disconnect with the module's C{Disconnect()} (a
        Deferred on the reactor thread, firing once the link is closed).  A connect attempt
        still running is cancelled first; the module's Disconnect runs once its Connect returned.
        """
        if not _onReactorThread():
            self._rt.twoFaced(self._quiesce)
            try:
                self._driver.twoFaced(self._WrappedInterface.Disconnect, held=True)()
            finally:
                self._rt.twoFaced(self._link.close)  # a module whose Disconnect did not close
            return None
        self._quiesce()
        done = self._driver.later(self._WrappedInterface.Disconnect)
        return done.addCallback(lambda _: self._link.close())

    def _quiesce(self) -> Deferred[None]:
        """Stop wanting the link, cancel any attempt; fires once no module Connect runs."""
        self._stopWanting()
        if self._link.state == "connecting":
            self._link.close()
        return self._driver.cancelConnects()

    def _stopWanting(self) -> None:
        self._link.release()  # closed once the module's Disconnect ran
        self._PollTimer.Stop()
        self._driver.stopReporting()

    def _drop(self, why: str) -> None:
        """Drop a live link through the module's Disconnect(), then reconnect (reactor thread)."""
        if not self._linkLive():
            return
        self._link.connection.drop(why, byOwner=True)
        self.log.info(
            "{device}: {why}; dropping the link", device=self.logName, handler=self, why=why
        )
        self._link.muteDroppedSends()  # this drop is the outage's report
        done = self._driver.later(self._WrappedInterface.Disconnect)
        done.addCallback(self._dropped)

    def _dropped(self, _: object) -> None:
        state = self._link.connection.state
        if isinstance(state, Dropping) and not state.closing:
            self._link.drop("the module's Disconnect() left it open")

    def _moduleReported(self, value: str) -> None:
        super()._moduleReported(value)
        if value == "Disconnected" and not self._forcedByProgram:
            self._drop("the module reported Disconnected")

    # link observer (reactor thread)

    def linkMade(self) -> None:
        self._newLink()
        self._forcedByProgram = False

    def linkLost(self, reason: str) -> None:
        self._forcedByProgram = False
        self._on("lost", reason)
        self._driver.linkDown()

    def linkFailed(self, reason: str) -> None:
        emit(self._rt, self, "ConnectFailed", self, reason)

    def _pollTick(self, timer: Timer, count: int) -> None:
        if not self._linkLive() or self._driver.skipping():
            return  # a tick while the last Update still runs is skipped: nothing counted
        self._pollCounted = self._status != "Connected"
        if self._pollCounted and self._countSend():
            self._drop(f"the module reported no Connected to {self._DisconnectLimit} polls")
            return
        self.polls += 1
        self._driver.poll()

    def _uncountPoll(self) -> None:
        """The last poll's Update raised before it sent anything: it does not count."""
        if self._pollCounted:
            self._pollCounted = False
            with self._counterLock:
                if self._sends > 0:
                    self._sends -= 1

    def OnDisconnected(self) -> Any:
        """
        Have the module report Disconnected (its C{OnDisconnected()} runs) and nothing more: the
        link stays up (as the reference's), so polling, once resumed, finds the device on it.
        """
        self._rt.twoFaced(self._forceByProgram, True)
        result = super().OnDisconnected()
        if isinstance(result, Deferred):  # what it reported is relayed before this fires
            return result.addBoth(self._forcedReported)
        self._rt.twoFaced(self._forceByProgram, False)
        return result

    def _forceByProgram(self, value: bool) -> None:
        self._forcedByProgram = value

    def _forcedReported(self, result: object) -> object:
        self._forcedByProgram = False
        return result


class ModuleSimplePipeHandler(_ModuleHandler):
    """
    Wraps a Global Scripter module derived from a serial, UDP or SP interface, or an HTTP module
    (no interface at all): polls its keep-alive Update and reports what the module decides.  A
    port that closes is reopened every C{connectRetryTime} seconds; the module's
    C{OnDisconnected()} runs when it closes, and no Update is sent until it is open again.
    """

    def __init__(
        self,
        Interface: Any,
        DisconnectLimit: int = 15,
        pollFrequency: float = 1,
        keepAliveQuery: str | None = None,
        keepAliveQualifiers: dict[str, Any] | None = None,
        connectRetryTime: float = 5,
        *,
        reactor: Any = None,
    ) -> None:
        super().__init__(Interface, pollFrequency, reactor=reactor)
        self._DisconnectLimit = _checks.disconnectLimit(DisconnectLimit)
        retry = _checks.period(connectRetryTime, "connectRetryTime")
        self._startDriving(keepAliveQuery, keepAliveQualifiers, reactor)
        link = getattr(Interface, "link", None)
        self._link: DeviceLink | None = link if isinstance(link, DeviceLink) else None
        if self._link is not None:
            self._link.reopenDelay = retry
            self._link.observers.append(self)
        self._driver.reportHere = self._disconnectedHere
        self._forwarding = True
        self._wantedOpen = False  # a module without a link: from Connect() to Disconnect()

    @property
    def retryPolicy(self) -> RetryPolicy | None:
        """How long to wait before each reopening of a lost port (None: no link)."""
        return self._link.retrier.policy if self._link is not None else None

    @retryPolicy.setter
    def retryPolicy(self, policy: RetryPolicy) -> None:
        if self._link is not None:
            self._link.retrier.policy = policy
            self._link.connection.retime()

    @property
    def wanted(self) -> bool:
        """Whether the port is wanted open: from C{Connect()} to C{Disconnect()}."""
        return self._link.wanted if self._link is not None else self._wantedOpen

    def _linkLive(self) -> bool:
        return self._link is None or self._link.connected

    def Connect(self, timeout: float | None = None) -> None:
        """Open the port (and keep it open) and start the polling loop."""
        self._rt.twoFaced(self._connect)

    StartPolling = Connect

    def _connect(self) -> None:
        self._wantedOpen = True
        if self._link is not None:
            self._link.open()
        if self._PollTimer.State != "Running":
            self._PollTimer.Restart()

    def Disconnect(self) -> Any:
        """Stop polling and close the port (a Deferred on the reactor thread)."""
        return self._rt.twoFaced(self._disconnect)

    def _disconnect(self) -> Deferred[None]:
        self._PollTimer.Stop()
        self._driver.stopReporting()
        self._wantedOpen = False
        if self._link is None:
            self._driver.linkDown()
            return succeed(None)
        return self._link.close()

    def _disconnectedHere(self) -> bool:
        """
        The keep-alive Update reported Disconnected (where module code runs): on the thread this
        handler's events run on (the program's), the event runs here, inside the Update, before
        its query goes out (the reference's rule, as a raw pipe handler's); True if it did.
        """
        dispatcher = self._rt.dispatcher
        if not (isinstance(dispatcher, ProgramThread) and dispatcher.isCurrent):
            return False
        if self._rt.twoFaced(self._moduleDisconnected, True):
            emitHere(self, "Disconnected", self, "Disconnected")
        return True

    def _pollTick(self, timer: Timer, count: int) -> None:
        if self._link is not None and not self._link.connected:
            return  # no Update to a closed port
        if self._driver.poll():
            self.polls += 1

    # link observer (reactor thread)

    def linkMade(self) -> None:
        self._newLink()

    def linkLost(self, reason: str) -> None:
        self._on("lost", reason)
        self._driver.linkDown()

    def linkData(self, data: bytes) -> None:
        pass

    def linkFailed(self, reason: str) -> None:
        pass  # the port could not be opened: no status change (lastError says why)
