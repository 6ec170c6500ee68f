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
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from twisted_ch._framing import DEFAULT_MAX_RESPONSE, ResponseMatcher
from twisted_ch._summary import Summarizer
from twisted_ch.protocols.device import DeviceProtocol, LinkDown

#: Seconds a connect attempt may take when the caller gives no timeout.
DEFAULT_CONNECT_TIMEOUT = 10.0

#: Seconds a closing transport may spend flushing writes before it is aborted.
CLOSE_GRACE = 2.0

LinkState = Literal["closed", "connecting", "connected", "closing"]


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
    Connects an endpoint on request and reports what happens to its observers.

    With C{reopenDelay} set, the link keeps itself open: it connects at L{open} and again that
    many seconds after every failure or loss, until L{close} (serial ports and UDP sockets, whose
    status the keep-alive decides, work this way).
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
        self.reopenDelay = reopenDelay
        self.state: LinkState = "closed"
        self.protocol: DeviceProtocol | None = None
        self.observers: list[LinkObserver] = []
        self.lastError: str | None = None
        self._attempt: Deferred[Any] | None = None
        self._attemptWaiters: list[Deferred[str]] = []
        self._closeWaiters: list[Deferred[None]] = []
        self._reopen: IDelayedCall | None = None
        self._grace: IDelayedCall | None = None
        self._keepOpen = False
        self._droppedSendWarned = False
        #: the call sites whose sends while down were reported in this outage
        self._droppedSites: set[object] = set()
        # a device down for a day fails every connectRetryTime: one line per run of identical
        # failures, then a count per period (issue 11 item 6)
        self._failures = Summarizer(clock)
        self._failing: str | None = None

    @property
    def connected(self) -> bool:
        """Whether a transport is connected now."""
        return self.state == "connected"

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        if callable(self._endpoint) and not IStreamClientEndpoint.providedBy(self._endpoint):
            return self._endpoint()
        return self._endpoint

    def connect(self, timeout: float | None = None) -> Deferred[str]:
        """
        Connect once.

        @return: Deferred firing with C{'Connected'}, C{'ConnectedAlready'}, or the failure reason
            (it never fails).
        """
        if self.state == "connected":
            return succeed("ConnectedAlready")
        if self.state == "closing":
            # the old transport must be gone before a new one starts
            closed: Deferred[None] = Deferred()
            self._closeWaiters.append(closed)
            return closed.addCallback(lambda _: self.connect(timeout))
        result: Deferred[str] = Deferred()
        self._attemptWaiters.append(result)
        if self.state == "connecting":
            return result
        self._cancelReopen()
        self.state = "connecting"
        try:
            attempt = self._makeEndpoint().connect(_LinkFactory(self))
        except Exception:
            attempt = Deferred()
            attempt.errback()
        self._attempt = attempt
        attempt.addTimeout(DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout, self.clock)
        attempt.addCallbacks(self._attemptSucceeded, self._attemptFailed)
        return result

    def _takeWaiters(self) -> tuple[list[Deferred[str]], list[Deferred[None]]]:
        """Detach the current attempt's and close's waiters, before observers may start anew."""
        self._attempt = None
        attempts, self._attemptWaiters = self._attemptWaiters, []
        closes, self._closeWaiters = self._closeWaiters, []
        return attempts, closes

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
            self._attemptFailed(Failure(selfConnected))
            return
        self._attempt = None
        attempts, self._attemptWaiters = self._attemptWaiters, []
        outcome = "Connected" if protocol is self.protocol else "Connection lost"
        self._fire(attempts, outcome, [])

    def _attemptFailed(self, failure: Failure) -> None:
        wanted = self.state == "connecting"
        self.state = "closed"
        attempts, closes = self._takeWaiters()
        if not wanted:  # close() cancelled it
            self._fire(attempts, "Cancelled", closes)
            return
        reason = describeFailure(failure)
        self.lastError = reason
        if self._failing is not None and self._failing != reason:
            self._failures.end((self.description, self._failing))  # a new reason: told at once
        self._failing = reason
        self._failures.emit(
            self.log,
            (self.description, reason),
            LogLevel.info,
            "{link}: connect failed: {reason}",
            link=self.description,
            reason=reason,
        )
        for o in list(self.observers):
            o.linkFailed(reason)  # may connect again: the waiters above are this attempt's
        if self.state == "closed":
            self._scheduleReopen()
        self._fire(attempts, reason, closes)

    def _failuresOver(self) -> None:
        """The run of failed attempts ended (connected, or closed): its count is logged now."""
        if self._failing is not None:
            self._failures.end((self.description, self._failing))
            self._failing = None

    # DeviceSink

    def linkMade(self, protocol: DeviceProtocol) -> None:
        if self.state == "closing":
            protocol.abort()
            return
        self.protocol = protocol
        self.state = "connected"
        self.lastError = None
        self._droppedSendWarned = False
        self._droppedSites.clear()
        self._failuresOver()
        self.log.info("{link}: connected", link=self.description)
        for o in list(self.observers):
            o.linkMade()

    def linkData(self, data: bytes) -> None:
        for o in tuple(self.observers):
            o.linkData(data)

    def linkLost(self, protocol: DeviceProtocol, reason: Failure) -> None:
        if self.protocol is not None and protocol is not self.protocol:
            return  # a transport this link already gave up on
        self._cancelGrace()
        wasWanted = self.state == "connected"
        dropped = self.state == "closing" and not self._closeWaiters  # by drop(), not close()
        self.protocol = None
        self.state = "closed"
        closes, self._closeWaiters = self._closeWaiters, []
        why = describeFailure(reason)
        if wasWanted:
            self.lastError = why
        elif dropped and self.lastError is not None:
            why = self.lastError
        self.log.info("{link}: disconnected ({reason})", link=self.description, reason=why)
        for o in list(self.observers):
            o.linkLost(why)  # may connect again
        if (wasWanted or dropped) and self.state == "closed":
            self._scheduleReopen()
        self._fire([], "", closes)

    # keeping a link open

    def open(self) -> None:
        """Connect now and keep reconnecting after losses (needs C{reopenDelay})."""
        self._keepOpen = True
        if self.state == "closed":
            self.connect()
        elif self.state == "closing":
            closed: Deferred[None] = Deferred()
            self._closeWaiters.append(closed)
            closed.addCallback(lambda _: self._reopenNow())

    def _scheduleReopen(self) -> None:
        if self._keepOpen and self.reopenDelay is not None and self._reopen is None:
            self._reopen = self.clock.callLater(self.reopenDelay, self._doReopen)

    def _doReopen(self) -> None:
        self._reopen = None
        self._reopenNow()

    def _reopenNow(self) -> None:
        if self._keepOpen and self.state == "closed":
            self.connect()

    def _cancelReopen(self) -> None:
        if self._reopen is not None:
            if self._reopen.active():
                self._reopen.cancel()
            self._reopen = None

    # closing

    def close(self) -> Deferred[None]:
        """Stop keeping the link open and disconnect; fires once no transport is left."""
        self._keepOpen = False
        self._cancelReopen()
        self._failuresOver()
        if self.state == "closed":
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closeWaiters.append(d)
        if self.state == "connecting":
            self.state = "closing"
            if self._attempt is not None:
                self._attempt.cancel()
        elif self.state == "connected":
            self.state = "closing"
            assert self.protocol is not None
            transport = self.protocol.transport
            if transport is not None:
                transport.loseConnection()
                # a peer that stops reading would hold buffered writes (and us) forever
                self._grace = self.clock.callLater(CLOSE_GRACE, self.abort)
        return d

    def drop(self, why: str) -> None:
        """
        End the connected transport (a silent device) as L{close} does, gracefully (a FIN, which
        some serial-over-IP gateways need to free their port; aborted if the close has not
        completed within L{CLOSE_GRACE} seconds), while staying wanted: observers see the loss
        and may connect again.  Nothing more is written to it meanwhile (L{send} raises).
        """
        if self.state != "connected" or self.protocol is None:
            return
        transport = self.protocol.transport
        if transport is None:
            return
        self.lastError = why
        self.state = "closing"
        transport.loseConnection()
        self._grace = self.clock.callLater(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        """Drop the connected transport at once; observers see the loss."""
        self._grace = None
        if self.protocol is not None:
            self.protocol.abort()

    def _cancelGrace(self) -> None:
        if self._grace is not None:
            if self._grace.active():
                self._grace.cancel()
            self._grace = None

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
        if self._droppedSendWarned or (site is not None and site in self._droppedSites):
            self.log.debug("{link}: {where} sent while down", link=self.description, where=where)
            return
        if site is None:
            self._droppedSendWarned = True
        elif len(self._droppedSites) < 1000:  # bounded: call sites are few, but code may vary
            self._droppedSites.add(site)
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
