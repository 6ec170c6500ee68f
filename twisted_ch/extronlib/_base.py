"""
The common base of ControlScript's device interfaces: a L{DeviceLink} with the data API and
events (in a module of its own so that each interface family can build on it).
"""

from __future__ import annotations

from threading import get_ident
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.python import threadable

from twisted_ch import _checks
from twisted_ch._events import Event, emit
from twisted_ch._framing import DEFAULT_MAX_RESPONSE, ResponseMatcher, toBytes
from twisted_ch._link import DeviceLink, LinkIsDown, callerSite, describeSite
from twisted_ch._runtime import Runtime, onProgramThread, resolveRuntime
from twisted_ch.extronlib._lifetime import adopt

__all__ = ["LinkInterface"]

ETHERNET_PROTOCOLS = ("TCP", "UDP", "SSH")


def _checkTimeout(timeout: object, what: str = "timeout") -> float:
    return _checks.seconds(timeout, what, zero=True)


def _checkPort(port: object, what: str, zero: bool = False) -> int:
    return _checks.port(port, what, zero=zero)


def _onReactorFace() -> bool:
    """Whether a two-faced call made now runs inline and returns a Deferred (the Twisted face)."""
    ioThread = threadable.ioThread
    if ioThread is not None:
        return bool(ioThread == get_ident())
    return not onProgramThread()


def droppedSend(rt: Runtime, link: DeviceLink, site: tuple[str, int] | None, perSite: bool) -> None:
    """
    Report a send that was dropped because C{link} is down (see L{DeviceLink.droppedSend}): once
    per outage, or once per outage and call site C{site} with C{perSite}.
    """
    where = describeSite(site)
    key = site if perSite else None
    if _onReactorFace():
        link.droppedSend(where, key)
    else:
        rt.twoFaced(link.droppedSend, where, key)


def noResponse() -> Any:
    """What a SendAndWait dropped on a link that is down returns: None (the Twisted face: a
    Deferred firing None)."""
    return succeed(None) if _onReactorFace() else None


class LinkInterface:
    """
    Common base of every device interface: a L{DeviceLink} with ControlScript's data API and
    events.  Subclasses say how to build the endpoint.
    """

    Connected = Event["LinkInterface"]("Called as C{(interface, 'Connected')} when the link is up.")
    Disconnected = Event["LinkInterface"](
        "Called as C{(interface, 'Disconnected')} when the link is lost."
    )
    ReceiveData = Event["LinkInterface"]("Called as C{(interface, data)} for unclaimed bytes.")
    ConnectFailed = Event["LinkInterface"](
        "Called as C{(interface, reason)} when a connect attempt fails (the handler's extra)."
    )

    #: Whether the transport itself reports connection state (TCP, SSH) or not (serial, UDP).
    connectionOriented = True

    def _peerHost(self, fallback: str) -> str:
        """The peer's address once connected, else C{fallback}."""
        transport = getattr(self._link.protocol, "transport", None)
        host = getattr(getattr(transport, "getPeer", lambda: None)(), "host", None)
        return host if isinstance(host, str) else fallback

    def __init__(
        self,
        description: str,
        *,
        reactor: Any = None,
        endpoint: IStreamClientEndpoint | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
        reopenDelay: float | None = None,
    ) -> None:
        _checks.count(maxResponse, "maxResponse")
        self._rt: Runtime = resolveRuntime(reactor)
        self._link = DeviceLink(
            endpoint if endpoint is not None else self._makeEndpoint,
            self._rt.reactor,
            description,
            maxResponse,
            reopenDelay,
        )
        self._link.observers.append(self)
        self._keepAlive: LoopingCall | None = None
        self._keepAliveSetting: tuple[float, bytes] | None = None
        self._announced = False
        adopt(self._rt, self)

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        raise NotImplementedError

    def _release(self) -> Deferred[None]:
        """The program stopped: no keep-alive, the link closed for good (no reopening)."""
        self._stopKeepAlive()
        return self._link.close()

    @property
    def link(self) -> DeviceLink:
        """The underlying link (for Twisted code and handlers)."""
        return self._link

    # link observer: reactor thread

    def linkMade(self) -> None:
        self._announced = True
        if self._keepAliveSetting is not None:
            self._startKeepAlive(*self._keepAliveSetting)
        emit(self._rt, self, "Connected", self, "Connected")

    def linkLost(self, reason: str) -> None:
        self._stopLoop()
        if self._announced:  # Connected and Disconnected alternate
            self._announced = False
            emit(self._rt, self, "Disconnected", self, "Disconnected")

    def linkData(self, data: bytes) -> None:
        # (usually not set when a handler wraps it; None on the class: no __dict__ is built)
        if getattr(self, "_event_ReceiveData", None) is not None:
            emit(self._rt, self, "ReceiveData", self, data)

    def linkFailed(self, reason: str) -> None:
        emit(self._rt, self, "ConnectFailed", self, reason)

    # ControlScript API

    def Connect(self, timeout: float | None = None) -> Any:
        """
        Connect once: returns 'Connected', 'ConnectedAlready' or the failure reason (a Deferred of
        it on the reactor thread).  C{timeout} bounds the attempt (default 10 s).
        """
        if timeout is not None:
            timeout = _checkTimeout(timeout)
        return self._rt.twoFaced(self._link.connect, timeout)

    def Disconnect(self) -> Any:
        """Close the link (on the reactor thread, a Deferred firing once it is closed)."""
        return self._rt.twoFaced(self._link.close)

    def Send(self, data: bytes | str) -> None:
        """
        Send bytes (str is encoded as ISO-8859-1).  While the link is down (before C{Connect()},
        after a loss or a failed attempt) nothing is sent and nothing is raised, as on a control
        processor: the first such send per outage from each call site is logged.
        """
        try:
            self._rt.twoFaced(self._link.send, toBytes(data))
        except LinkIsDown as e:
            if e.link is not self._link:
                raise
            droppedSend(self._rt, self._link, callerSite(), True)

    def SendAndWait(self, data: bytes | str, timeout: float, **delimiter: Any) -> Any:
        """
        Send and wait up to C{timeout} seconds for the response, or until the one condition given
        as C{deliLen=}, C{deliTag=} or C{deliRex=} is met.  Returns the response bytes (C{b''} on
        timeout or unmet condition); a Deferred of them on the reactor thread.  While the link is
        down nothing is sent and it returns None (a Deferred firing None), logged as L{Send}.
        """
        payload = toBytes(data)
        wait = _checkTimeout(timeout)
        return self._sendAndWait(payload, wait, self._matcher(delimiter))

    def _matcher(self, delimiter: dict[str, Any]) -> ResponseMatcher:
        """SendAndWait's condition keywords checked (TypeError, ValueError) as a matcher."""
        return ResponseMatcher.fromKeywords(delimiter, self._link.maxResponse)

    def _sendAndWait(self, payload: bytes, wait: float, matcher: ResponseMatcher) -> Any:
        """L{SendAndWait} with its arguments checked already (a handler's path)."""
        try:
            return self._rt.twoFaced(self._link.sendAndWait, payload, wait, matcher)
        except LinkIsDown as e:
            if e.link is not self._link:
                raise
            droppedSend(self._rt, self._link, callerSite(), True)
            return noResponse()

    def StartKeepAlive(self, interval: float, data: bytes | str) -> None:
        """Send C{data} every C{interval} seconds while connected (ControlScript's keep-alive)."""
        seconds = _checks.seconds(interval, "interval")
        payload = toBytes(data)
        self._rt.twoFaced(self._startKeepAlive, seconds, payload)

    def StopKeepAlive(self) -> None:
        """Stop L{StartKeepAlive}'s sending."""
        self._rt.twoFaced(self._stopKeepAlive)

    def _startKeepAlive(self, interval: float, payload: bytes) -> None:
        self._keepAliveSetting = (interval, payload)  # kept across reconnections
        self._stopLoop()
        if not self._link.connected:
            return

        def send() -> None:
            if self._link.connected:
                self._link.send(payload)

        loop = LoopingCall(send)
        loop.clock = self._rt.reactor
        self._keepAlive = loop
        loop.start(interval, now=False)

    def _stopKeepAlive(self) -> None:
        self._keepAliveSetting = None
        self._stopLoop()

    def _stopLoop(self) -> None:
        if self._keepAlive is not None and self._keepAlive.running:
            self._keepAlive.stop()
        self._keepAlive = None
