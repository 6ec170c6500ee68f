"""
A device link: one endpoint, at most one live L{DeviceProtocol}, and the connect/close rules.

Interfaces own a link; handlers watch it.  Everything here runs on the reactor thread.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Literal, Protocol

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.interfaces import IAddress, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from twisted_ch._connection import Connecting, Connection, Dropping, State, StateName, Up, Waiting
from twisted_ch._framing import DEFAULT_MAX_RESPONSE, ResponseMatcher
from twisted_ch._retry import Retrier
from twisted_ch._summary import Summarizer
from twisted_ch.protocols.device import DeviceProtocol, LinkDown

#: Seconds a connect attempt may take when the caller gives no timeout.
DEFAULT_CONNECT_TIMEOUT = 10.0

#: Seconds a closing transport may spend flushing writes before it is aborted.
CLOSE_GRACE = 2.0

LinkState = Literal["closed", "connecting", "connected", "closing"]

#: The transport's state in each lifecycle state.
_LINK_STATES: dict[StateName, LinkState] = {
    "Idle": "closed",
    "Connecting": "connecting",
    "Up": "connected",
    "Dropping": "closing",
    "Waiting": "closed",
    "Stopped": "closed",
}


#: Connect attempts started by every link of this process (see L{attemptsMade}).
_attempts = 0


def attemptsMade() -> int:
    """
    How many connect attempts the links of this process have started.  Each one's Twisted
    objects (a TCP attempt's connector, client transport and wrapping factory) end as a garbage
    cycle once the attempt fails or its connection is lost: the fleet service counts them to
    know when a full collection is worth its stall (L{twisted_ch.service._services.GC_CHURN}).
    """
    return _attempts


class LinkObserver(Protocol):
    """Told about a link's transitions, on the reactor thread."""

    def linkMade(self) -> None:
        """The link connected."""

    def linkLost(self, reason: str) -> None:
        """The link, once connected, is gone."""

    def linkData(self, data: bytes) -> None:
        """Unclaimed bytes arrived."""

    def linkFailed(self, reason: str) -> None:
        """A connect attempt failed."""


def describeFailure(failure: Failure) -> str:
    """A short, human-readable reason for a connect failure or a lost link."""
    e = failure.value
    if isinstance(e, error.ConnectionRefusedError):
        return "Connection refused"
    if isinstance(
        e,
        CancelledError
        | DeferredTimeout
        | error.TimeoutError
        | error.ConnectingCancelledError
        | TimeoutError,
    ):
        return "Timed out"
    if isinstance(e, error.DNSLookupError):
        return f"Host not found: {e.args[0] if e.args else e}"
    # the bare Twisted reasons have wordy texts; subclasses (a lost serial device) say more
    if type(e) is error.ConnectionDone:
        return "Connection closed"
    if type(e) in (error.ConnectionLost, error.ConnectionAborted):
        return "Connection lost"
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


#: Where twisted_ch's own code is (a call site is the first frame outside it).
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def callerSite(depth: int = 1) -> tuple[str, int] | None:
    """
    The file and line of the first frame outside twisted_ch that led to this call (the program's
    or module's code that sent), or None when there is none.
    """
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def describeSite(site: tuple[str, int] | None) -> str:
    """How a log line names a call site."""
    return "twisted_ch" if site is None else f"{site[0]}:{site[1]}"


def _releaseConnector(transport: object) -> None:
    """
    A lost TCP transport and its connector refer to each other (C{transport.connector},
    C{connector.transport}): a garbage cycle Twisted leaves (it breaks it for a failed attempt,
    not for a lost connection), never reclaimed once frozen (see the fleet service's
    C{GC_REFREEZE}).  Breaking it lets reference counting free the transport.  The connector
    needs no transport once its connection is lost (Twisted's own C{connectionFailed} clears it).
    """
    connector = getattr(transport, "connector", None)
    if connector is not None and getattr(connector, "transport", None) is transport:
        connector.transport = None


class LinkIsDown(LinkDown):
    """
    L{LinkDown} raised by L{DeviceLink.send}/L{DeviceLink.sendAndWait} while the link is down.
    The interfaces and handlers catch it (a send to a device that is down is dropped, logged once
    per outage); Twisted code calling the link itself that lets it escape from a callback gets
    one warning per outage, no traceback.
    """

    def __init__(self, link: DeviceLink) -> None:
        super().__init__(f"{link.description} is not connected")
        self.link = link

    def reportUnhandled(self, where: str) -> None:
        """Called for a callback that let this escape: one warning per outage, no traceback."""
        self.link.droppedSend(where)


class _LinkFactory(Factory):
    noisy = False

    def __init__(self, link: DeviceLink) -> None:
        self.link = link

    def buildProtocol(self, addr: IAddress | None) -> DeviceProtocol:
        return DeviceProtocol(self.link, self.link.clock, self.link.maxResponse)


class DeviceLink:
    """
    Connects an endpoint on request and reports what happens to its observers; its lifecycle is
    one L{Connection} (L{connection}), which holds the attempt, the close's timer and the retry.

    With C{reopenDelay} set, the link keeps itself open: it connects at L{open} and again after
    every failure or loss, as its L{retrier} says (C{reopenDelay} seconds by default), until
    L{close} (serial ports and UDP sockets, whose status the keep-alive decides, work this way).
    A TCP handler keeps its link the same way, with its own interval and retry (L{retryHook}).
    """

    log = Logger()

    def __init__(
        self,
        endpoint: IStreamClientEndpoint | Callable[[], IStreamClientEndpoint],
        clock: IReactorTime,
        description: str,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
        reopenDelay: float | None = None,
    ) -> None:
        self._endpoint = endpoint
        self.clock = clock
        self.description = description
        self.maxResponse = maxResponse
        #: the lifecycle: every attempt, close timer and retry of this link
        self.connection = Connection(clock, self, CLOSE_GRACE)
        self.connection.retrier.interval = reopenDelay or 0.0
        self.connection.reconnecting = reopenDelay is not None
        #: whether the link keeps itself open (a pipe): then L{close} stops it for good
        self._reopens = reopenDelay is not None
        #: called when a retry is due, instead of connecting (a handler's own attempt)
        self.retryHook: Callable[[], object] | None = None
        #: the transport's side of the lifecycle (what sends check): see L{connectionEntered}
        self.state: LinkState = "closed"
        self.protocol: DeviceProtocol | None = None
        self.observers: list[LinkObserver] = []
        self.lastError: str | None = None
        # (the three below are made when first needed: a fleet of 50,000 keeps them empty)
        #: callers of L{connect} waiting for the current attempt's outcome
        self._attemptWaiters: list[Deferred[str]] | None = None
        self._droppedSendWarned = False
        #: the call sites whose sends while down were reported in this outage
        self._droppedSites: set[object] | None = None
        # a device down for a day fails every connectRetryTime: one line per run of identical
        # failures, then a count per period (issue 11 item 6)
        self._failures: Summarizer | None = None
        self._failing: str | None = None

    @property
    def retrier(self) -> Retrier:
        """The delays between attempts of a wanted link (its policy is the handler's)."""
        return self.connection.retrier

    @property
    def reopenDelay(self) -> float | None:
        """Seconds from a failure or loss to reopening a kept-open link (None: not reopened)."""
        return self.retrier.interval if self._reopens else None

    @reopenDelay.setter
    def reopenDelay(self, value: float | None) -> None:
        self._reopens = value is not None
        self.connection.setReconnecting(value is not None)
        if value is not None:
            self.retrier.interval = value
            self.connection.retime()

    @property
    def wanted(self) -> bool:
        """Whether the link is kept open (from L{open} or a handler's keep to L{close})."""
        return self.connection.wanted

    @property
    def connected(self) -> bool:
        """Whether a transport is connected now."""
        return self.state == "connected"

    def connectionEntered(self, state: State) -> None:
        """The lifecycle's state, as the transport's (closed, connecting, connected, closing)."""
        if isinstance(state, Dropping) and not state.closing:
            self.state = "connected"  # (its owner drops it its own way, which may still send)
        else:
            self.state = _LINK_STATES[state.name]

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        if callable(self._endpoint) and not IStreamClientEndpoint.providedBy(self._endpoint):
            return self._endpoint()
        return self._endpoint

    def connect(self, timeout: float | None = None, keep: bool = False) -> Deferred[str]:
        """
        Connect once; C{keep}: and keep the link from now on (a handler's C{Connect()}: retried
        after failures and losses, see L{Connection}).

        @return: Deferred firing with C{'Connected'}, C{'ConnectedAlready'}, or the failure reason
            (it never fails).
        """
        connection = self.connection
        if keep:
            connection.keep(timeout, reconnect=False)  # (while closing, this connect waits)
        state = connection.state
        if isinstance(state, Up):
            return succeed("ConnectedAlready")
        if isinstance(state, Dropping):
            # the old transport must be gone before a new one starts
            closed: Deferred[None] = Deferred()
            state.closes.append(closed)
            return closed.addCallback(lambda _: self.connect(timeout))
        result: Deferred[str] = Deferred()
        if self._attemptWaiters is None:
            self._attemptWaiters = []
        self._attemptWaiters.append(result)
        if not isinstance(state, Connecting):
            connection.connect(timeout)
        return result

    def connectionAttempt(self, timeout: float | None) -> None:
        """The lifecycle's attempt: connect the endpoint (its outcome comes back as an input)."""
        global _attempts
        _attempts += 1
        attempt: Deferred[Any]
        try:
            attempt = self._makeEndpoint().connect(_LinkFactory(self))
        except Exception:
            attempt = fail()
        self.connection.attempting(attempt)
        attempt.addTimeout(DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout, self.clock)
        attempt.addCallbacks(self._attemptSucceeded, self._attemptFailed, errbackArgs=(attempt,))

    def _takeWaiters(self) -> list[Deferred[str]]:
        """Detach the current attempt's waiters, before observers may start anew."""
        attempts, self._attemptWaiters = self._attemptWaiters, None
        return attempts or []

    @staticmethod
    def _fire(attempts: list[Deferred[str]], outcome: str, closes: list[Deferred[None]]) -> None:
        for d in attempts:
            d.callback(outcome)
        for c in closes:
            c.callback(None)

    def _attemptSucceeded(self, protocol: object) -> None:
        # linkMade has already run (connectionMade comes before the endpoint's Deferred fires);
        # a close requested meanwhile keeps its waiters until the transport is gone
        selfConnected = getattr(protocol, "selfConnected", None)
        if selfConnected is not None:  # never a link: the attempt failed, as refused
            state = self.connection.state
            attempt = state.attempt if isinstance(state, Connecting) else None
            self._attemptFailed(Failure(selfConnected), attempt)
            return
        outcome = "Connected" if protocol is self.protocol else "Connection lost"
        self._fire(self._takeWaiters(), outcome, [])

    def _attemptFailed(self, failure: Failure, attempt: Deferred[Any] | None) -> None:
        reason = describeFailure(failure)
        attempts = self._takeWaiters()
        if attempt is None or not self.connection.failed(attempt, reason):
            self._fire(attempts, "Cancelled", [])  # stopped or dropped meanwhile
            return
        self.lastError = reason
        failures = self._failures
        if failures is None:
            failures = self._failures = Summarizer(self.clock)
        elif self._failing is not None and self._failing != reason:
            failures.end((self.description, self._failing))  # a new reason: told at once
        self._failing = reason
        failures.emit(
            self.log,
            (self.description, reason),
            LogLevel.info,
            "{link}: connect failed: {reason}",
            link=self.description,
            reason=reason,
        )
        for o in list(self.observers):
            o.linkFailed(reason)  # may connect again: the waiters above are this attempt's
        self._fire(attempts, reason, [])

    def _failuresOver(self) -> None:
        """The run of failed attempts ended (connected, or closed): its count is logged now."""
        if self._failing is not None and self._failures is not None:
            self._failures.end((self.description, self._failing))
            self._failing = None

    # DeviceSink

    def linkMade(self, protocol: DeviceProtocol) -> None:
        if not self.connection.made(protocol):
            protocol.abort()  # no attempt wants it (closed meanwhile)
            return
        self.protocol = protocol
        self.lastError = None
        self._droppedSendWarned = False
        self._droppedSites = None
        self._failuresOver()
        self.log.info("{link}: connected", link=self.description)
        observers = list(self.observers)
        for o in observers:
            o.linkMade()
        # then what sends at once (a handler's first poll): every observer knows the link is
        # new by now (a PJLink probe's session waits for this link's greeting, not the last one's)
        for o in observers:
            ready = getattr(o, "linkReady", None)
            if ready is not None and self.protocol is protocol:
                ready()

    def linkData(self, data: bytes) -> None:
        for o in tuple(self.observers):
            o.linkData(data)

    def linkLost(self, protocol: DeviceProtocol, reason: Failure) -> None:
        _releaseConnector(protocol.transport)
        if self.protocol is not None and protocol is not self.protocol:
            return  # a transport this link already gave up on
        state = self.connection.state
        wasUp = isinstance(state, Up) or (isinstance(state, Dropping) and not state.closing)
        # by drop(), not close()
        dropped = isinstance(state, Dropping) and state.closing and not state.closes
        self.protocol = None
        why = describeFailure(reason)
        if wasUp:
            self.lastError = why
        elif dropped and self.lastError is not None:
            why = self.lastError
        closes, again = self.connection.lost(self.lastError)
        self.log.info("{link}: disconnected ({reason})", link=self.description, reason=why)
        for o in list(self.observers):
            o.linkLost(why)  # may connect again
        self._fire([], "", closes)
        if again and isinstance(self.connection.state, Waiting):
            self.connection.connect(self.connection.timeout)  # kept again while it closed

    # keeping a link open

    def open(self) -> None:
        """
        Connect now and keep reconnecting after losses (needs C{reopenDelay}); a link kept open
        already (connecting, connected, or waiting to reopen) is left as it is: one attempt.
        """
        connection = self.connection
        state = connection.state
        if connection.wanted and (
            isinstance(state, Connecting | Up) or connection.nextAttempt is not None
        ):
            return
        connection.keep(None)
        if isinstance(connection.state, Waiting):
            connection.connect(None)

    def connectionRetry(self) -> None:
        """A wanted link's retry is due: the handler's attempt, else one more connect."""
        hook = self.retryHook
        if hook is not None:
            hook()
        else:
            self.connect(self.connection.timeout)

    # closing

    def close(self) -> Deferred[None]:
        """
        Disconnect; fires once no transport is left.  A link that keeps itself open (a pipe) or
        that nobody keeps is stopped (not reopened); one a handler keeps (TCP) is retried by it.
        """
        self._failuresOver()
        connection = self.connection
        if self._reopens or not connection.wanted:
            return self.stop()
        if isinstance(connection.state, Up | Dropping):
            d: Deferred[None] = Deferred()
            connection.drop(closed=d)
            return d
        connection.drop()  # (an attempt is cancelled)
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """Stop keeping the link and disconnect; fires once no transport is left."""
        self._failuresOver()
        done = self.connection.stop()
        return done if done is not None else succeed(None)

    def release(self) -> None:
        """Stop keeping the link, leaving its transport as it is (closed later by its owner)."""
        self.connection.release()

    def drop(self, why: str) -> None:
        """
        End the connected transport (a silent device) as L{close} does, gracefully (a FIN, which
        some serial-over-IP gateways need to free their port; aborted if the close has not
        completed within L{CLOSE_GRACE} seconds), while staying wanted: observers see the loss
        and may connect again.  Nothing more is written to it meanwhile (L{send} raises).
        """
        if self.state != "connected" or self.protocol is None or self.protocol.transport is None:
            return
        self.lastError = why
        self.connection.drop(why)

    def connectionClose(self, protocol: object) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.loseConnection()

    def connectionAbort(self, protocol: object) -> None:
        if isinstance(protocol, DeviceProtocol):
            protocol.abort()

    def abort(self) -> None:
        """Drop the connected transport at once; observers see the loss."""
        if self.protocol is not None:
            self.protocol.abort()

    # data

    def send(self, data: bytes) -> None:
        """Write to the device; L{LinkDown} if not connected."""
        if self.protocol is None or self.state != "connected":
            raise LinkIsDown(self)
        self.protocol.send(data)

    def droppedSend(self, where: str, site: object = None) -> None:
        """
        Note that C{where} sent while the link was down (nothing was sent): a warning the first
        time per outage, and per call site C{site} when one is given; debug after that.
        """
        sites = self._droppedSites
        if self._droppedSendWarned or (site is not None and sites is not None and site in sites):
            self.log.debug("{link}: {where} sent while down", link=self.description, where=where)
            return
        if site is None:
            self._droppedSendWarned = True
        elif sites is None:
            self._droppedSites = {site}
        elif len(sites) < 1000:  # bounded: call sites are few, but code may vary
            sites.add(site)
        else:
            self._droppedSendWarned = True
        self.log.warn(
            "{link}: {where} sent while the link is down; not sent (repeats are not logged "
            "until the link is back)",
            link=self.description,
            where=where,
        )

    def muteDroppedSends(self) -> None:
        """This outage was reported already: sends while down are logged at debug level only."""
        self._droppedSendWarned = True

    def sendAndWait(self, data: bytes, timeout: float, matcher: ResponseMatcher) -> Deferred[bytes]:
        """Send and collect a response (see L{DeviceProtocol.sendAndWait})."""
        if self.protocol is None or self.state != "connected":
            raise LinkIsDown(self)
        return self.protocol.sendAndWait(data, timeout, matcher)
