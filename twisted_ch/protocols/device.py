"""
The one protocol every device transport (TCP, SSH, serial, UDP) speaks to twisted_ch.

It only moves bytes: received bytes go to the current L{sendAndWait} if one is waiting, else to
the sink; the framing rules live in L{twisted_ch._framing}.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import error, tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_ch._framing import DEFAULT_MAX_RESPONSE, ResponseMatcher

#: Wire taps for the operators' trace: a sink (a link) -> C{tap(direction, data)}, called with
#: C{"tx"} and each chunk written, C{"rx"} and each chunk received.  Consulted only while it holds
#: something, so an empty table costs the data path one truth test of a dict.  Whoever adds an
#: entry removes it (a trace ends by itself).
WIRE_TAPS: dict[Any, Callable[[str, bytes], object]] = {}


def _tap(sink: object, direction: str, data: bytes) -> None:
    tap = WIRE_TAPS.get(sink)
    if tap is not None:
        try:
            tap(direction, data)
        except Exception:
            Logger().failure("wire tap {tap!r} failed", tap=tap)


#: Default bound on the bytes a link may hold queued for a device that does not read them.
DEFAULT_MAX_WRITE_BUFFER = 1024 * 1024


class LinkDown(OSError):
    """Data was sent to a device whose link is not connected."""


class WriteBufferFull(LinkDown):
    """
    Data was sent to a device that has stopped reading: the link's write buffer already holds
    C{maxWriteBuffer} bytes, and the new data is refused (nothing of it is queued).
    """


def queuedBytes(transport: object) -> int:
    """
    The bytes C{transport} holds that the device has not taken yet: a Twisted file-descriptor
    transport's write buffer (TCP, serial), or what a transport reports by C{queuedBytes()} (SSH).
    """
    report = getattr(transport, "queuedBytes", None)
    if callable(report):
        return int(report())
    buffered = getattr(transport, "dataBuffer", None)
    if isinstance(buffered, bytes):
        offset = getattr(transport, "offset", 0)
        pending = getattr(transport, "_tempDataLen", 0)
        return len(buffered) - (offset if isinstance(offset, int) else 0) + int(pending)
    return 0


class SelfConnection(error.ConnectionRefusedError):
    """
    A TCP connection to a local port nobody listens on met itself (TCP simultaneous open: the
    kernel picked the destination port as the source port); it is dropped, as refused.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(string=f"connected to itself at {host}:{port}")  # type: ignore[no-untyped-call]
        self.host, self.port = host, port


class DeviceSink(TypingProtocol):
    """What a L{DeviceProtocol} reports to: its link."""

    def linkMade(self, protocol: DeviceProtocol) -> None:
        """The transport is connected."""

    def linkData(self, data: bytes) -> None:
        """Bytes arrived that no SendAndWait claimed."""

    def linkLost(self, protocol: DeviceProtocol, reason: Failure) -> None:
        """The transport of C{protocol} is gone (called once per protocol)."""


class _Wait:
    """One queued or active SendAndWait."""

    __slots__ = ("data", "timeout", "matcher", "result", "timer")

    def __init__(self, data: bytes, timeout: float, matcher: ResponseMatcher) -> None:
        self.data = data
        self.timeout = timeout
        self.matcher = matcher
        self.result: Deferred[bytes] = Deferred()
        self.timer: IDelayedCall | None = None


#: what L{_sendsDirectly} reads of a C{twisted.internet.tcp.Connection}; all in Twisted since 11.1
_TCP_STATE = ("socket", "connected", "disconnecting", "dataBuffer", "_tempDataLen")
_TCP_FLAGS = ("_writeDisconnected", "_aborting", "TLS")


def _sendsDirectly(transport: object) -> bool:
    """
    Whether C{transport} is a plain (non-TLS) Twisted TCP connection whose write queue
    L{DeviceProtocol.send} can bypass while it is empty.
    """
    # exactly these classes: UNIX sockets (tcp.Connection's subclasses) queue file descriptors too
    return type(transport) in (tcp.Client, tcp.Server) and all(
        hasattr(transport, name) for name in _TCP_STATE + _TCP_FLAGS
    )


class DeviceProtocol(Protocol):
    """
    Moves bytes between a device transport and a L{DeviceSink}.

    SendAndWait calls are served one at a time in call order; each sends its data only when the
    previous one has finished, so responses never interleave.
    """

    log = Logger()

    #: the most bytes queued for the device before L{send} raises L{WriteBufferFull}
    maxWriteBuffer = DEFAULT_MAX_WRITE_BUFFER

    def __init__(
        self, sink: DeviceSink, clock: IReactorTime, maxResponse: int = DEFAULT_MAX_RESPONSE
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.maxResponse = maxResponse
        self.connected = False
        #: set instead of reporting linkMade when the connection met itself
        self.selfConnected: SelfConnection | None = None
        self._tcp: Any = None
        self._waits: deque[_Wait] = deque()
        self.bytesReceived = 0
        self.bytesSent = 0
        self.writesRefused = 0

    def connectionMade(self) -> None:
        self._tcp = self.transport if _sendsDirectly(self.transport) else None
        if self._tcp is not None and self._tcp.getHost() == self._tcp.getPeer():
            # never reported to the sink: the link fails the attempt (see L{selfConnected})
            peer = self._tcp.getPeer()
            self.selfConnected = SelfConnection(peer.host, peer.port)
            self.log.info(
                "the connection to {host}:{port} met itself (nothing listens there); "
                "dropped, as refused",
                host=peer.host,
                port=peer.port,
            )
            self._tcp.abortConnection()
            return
        self.connected = True
        self.sink.linkMade(self)

    def dataReceived(self, data: bytes) -> None:
        self.bytesReceived += len(data)
        if WIRE_TAPS:
            _tap(self.sink, "rx", data)
        if self._waits:
            found = self._waits[0].matcher.feed(data)
            if found is None:
                return
            response, data = found
            # bytes after a response arrived before the next command was sent: not its answer
            self._finish(self._waits[0], response)
        if data:
            self.sink.linkData(data)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._tcp = None
        if self.selfConnected is not None:
            return  # never made, so never lost
        self.connected = False
        while self._waits:
            wait = self._waits.popleft()
            if wait.timer is not None and wait.timer.active():
                wait.timer.cancel()
            wait.result.callback(wait.matcher.timedOut()[0])
        self.sink.linkLost(self, reason)

    def send(self, data: bytes) -> None:
        """
        Write bytes to the device.

        @raise LinkDown: not connected.
        @raise WriteBufferFull: the device has stopped reading and L{maxWriteBuffer} bytes are
            queued for it already (the data is not sent; the link stays up for the keep-alive
            to judge).
        """
        if not self.connected or self.transport is None:
            raise LinkDown("not connected")
        tcp = self._tcp
        if tcp is None or tcp.dataBuffer or tcp._tempDataLen:
            queued = queuedBytes(self.transport)
            if queued and queued + len(data) > self.maxWriteBuffer:
                self.writesRefused += 1
                raise WriteBufferFull(
                    f"the device is not reading: {queued} bytes are queued for it already "
                    f"(the limit is {self.maxWriteBuffer}); {len(data)} bytes not sent"
                )
        self.bytesSent += len(data)
        if WIRE_TAPS:
            _tap(self.sink, "tx", data)
        if tcp is None or (
            tcp.dataBuffer
            or tcp._tempDataLen
            or tcp.disconnecting
            or tcp._writeDisconnected
            or tcp._aborting
            or tcp.TLS
            or not tcp.connected
        ):
            self.transport.write(data)
            return
        # Nothing is queued: send now.  transport.write would queue the bytes and register the
        # socket for writability, costing two epoll_ctl calls and a reactor round on every poll.
        # Whatever is not sent at once (full socket buffer, error) goes through transport.write,
        # so order, flow control and error reporting stay Twisted's.
        try:
            sent = tcp.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.transport.write(data)  # Twisted's write path reports the lost connection
            return
        if sent < len(data):
            self.transport.write(data[sent:])

    def sendAndWait(self, data: bytes, timeout: float, matcher: ResponseMatcher) -> Deferred[bytes]:
        """
        Send C{data} (after any earlier SendAndWait has finished) and collect the response.

        The Deferred fires with the response, or C{b''} when the timeout passes with the
        condition unmet; bytes that were not part of a response go to the sink.
        """
        if not self.connected:
            raise LinkDown("not connected")
        wait = _Wait(data, timeout, matcher)
        self._waits.append(wait)
        if len(self._waits) == 1:
            self._begin(wait)
        return wait.result

    def _begin(self, wait: _Wait) -> None:
        wait.timer = self.clock.callLater(wait.timeout, self._timedOut, wait)
        self.send(wait.data)

    def _timedOut(self, wait: _Wait) -> None:
        wait.timer = None
        response, unclaimed = wait.matcher.timedOut()
        self._finish(wait, response)
        if unclaimed:
            self.sink.linkData(unclaimed)

    def _finish(self, wait: _Wait, response: bytes) -> None:
        if wait.timer is not None and wait.timer.active():
            wait.timer.cancel()
        wait.timer = None
        if wait.matcher.dropped:
            self.log.warn(
                "response exceeded {limit} bytes without meeting its condition; "
                "{n} oldest bytes dropped",
                limit=wait.matcher.maxResponse,
                n=wait.matcher.dropped,
            )
        self._waits.popleft()
        if self._waits and self.connected:
            self._begin(self._waits[0])
        wait.result.callback(response)

    def abort(self) -> None:
        """Close the transport now, without waiting for buffered writes."""
        transport = self.transport
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()
