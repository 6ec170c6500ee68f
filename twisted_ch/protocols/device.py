"""
The one protocol every device transport (TCP, SSH, serial, UDP) speaks to twisted_ch.

It only moves bytes: received bytes go to the current L{sendAndWait} if one is waiting, else to
the sink; the framing rules live in L{twisted_ch._framing}.
"""

from __future__ import annotations

import weakref
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

#: Default bound on the SendAndWait calls a link holds queued behind the one in flight.
DEFAULT_MAX_PENDING_WAITS = 1024


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


class WaitQueueFull(WriteBufferFull):
    """
    A SendAndWait was refused: the link already holds C{maxPendingWaits} SendAndWait calls queued
    behind the one in flight, or their data would exceed C{maxWriteBuffer} bytes (nothing of the
    refused call is queued).
    """


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


class _Wait(Deferred[bytes]):
    """
    One queued or active SendAndWait: the Deferred its caller holds, with the data it sends and
    the matcher it waits with (one object per call, not a record and a Deferred).
    """

    #: called as C{_then(result, *_thenArgs)} instead of firing (see L{tellInstead})
    _then: Callable[..., object] | None = None
    _thenArgs: tuple[object, ...] = ()

    def __init__(self, data: bytes, timeout: float, matcher: ResponseMatcher) -> None:
        Deferred.__init__(self)
        self.data = data
        self.timeout = timeout
        self.matcher = matcher


def _ENDED(result: object) -> None:  # noqa: N802 - sentinel
    """What a told wait's L{_Wait._then} becomes once told: it is never told again."""


def tellInstead(d: Deferred[Any], then: Callable[..., object], *args: object) -> bool:
    """
    Have C{d}, a wait L{DeviceProtocol.sendAndWait} returned, call C{then(result, *args)} when
    it ends (the response, or the L{Failure} it would errback with) instead of firing; whether
    it will: not for another Deferred, nor a wait fired, with callbacks or told already.  Its
    holder then drops it: it never fires.  Reactor thread only, as the wait's end; an exception
    C{then} raises is logged, not raised.  A keep-alive's poll in flight so holds no callback
    list entries, and its end costs no callback chain.
    """
    # (a Twisted without _callbacks: never; one with callbacks must fire)
    if type(d) is not _Wait or d.called or getattr(d, "_callbacks", True) or d._then is not None:
        return False
    d._then = then
    d._thenArgs = args
    return True


def _end(wait: _Wait, result: object) -> None:
    """A wait ended with C{result}: fire it, or tell its L{tellInstead} function (once)."""
    then = wait._then
    if then is None:
        if isinstance(result, Failure):
            wait.errback(result)
        else:
            wait.callback(result)  # type: ignore[arg-type]
        return
    if then is _ENDED:
        return
    wait._then = _ENDED
    try:
        then(result, *wait._thenArgs)
    except BaseException:
        DeviceProtocol.log.failure("a SendAndWait's end raised")


class DeadlineOwner(TypingProtocol):
    """What waits on a L{Deadlines}: a connection's SendAndWait, an SNMP probe's request."""

    def _waiting(self, serial: int) -> bool:
        """Whether what was sent as C{serial} still waits."""

    def _deadlinePassed(self, serial: int) -> None:
        """The deadline of what was sent as C{serial} has come."""


class Deadlines:
    """
    The SendAndWait deadlines of every connection on one clock, served by one DelayedCall.

    A DelayedCall per wait (scheduled, then cancelled when the answer came) put two operations on
    the reactor's timer heap for every keep-alive poll, each costing a dozen Python-level
    comparisons in a heap of tens of thousands of timers.  Here a wait appends its deadline to
    the queue of its timeout (deadlines of one timeout arrive in order), as plain floats and ints
    (nothing for the garbage collector to track).  The one timer is armed for the earliest
    deadline of a wait still waiting: when it fires, the waits whose deadline has come time out,
    and entries of waits that ended are dropped on the way, so with every device answering it
    fires about once per timeout, not once per poll.  Each wait still times out at its own
    deadline.
    """

    def __init__(self, clock: IReactorTime, strong: bool = False) -> None:
        # weakly: this object is the value of its clock's entry in a WeakKeyDictionary
        self._clock: Callable[[], IReactorTime | None] = (
            (lambda: clock) if strong else weakref.ref(clock)
        )
        #: per timeout: deadlines, owners and serials, in the order the waits were sent
        self._queues: dict[float, tuple[deque[float], deque[DeadlineOwner], deque[int]]] = {}
        self._timer: IDelayedCall | None = None
        self._timerAt = 0.0
        #: waits sent and not ended
        self.waiting = 0

    @property
    def clock(self) -> IReactorTime:
        clock = self._clock()
        assert clock is not None, "a connection outlived its clock"
        return clock

    def add(self, timeout: float, owner: DeadlineOwner, serial: int) -> None:
        """A wait was sent: time it out after C{timeout} seconds unless it ends first."""
        self.waiting += 1
        clock = self._clock()
        assert clock is not None, "a connection outlived its clock"
        now = clock.seconds()
        deadline = now + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = (deque(), deque(), deque())
        queue[0].append(deadline)
        queue[1].append(owner)
        queue[2].append(serial)
        if self._timer is None:
            self._arm(now, deadline)
        elif deadline < self._timerAt:  # a shorter timeout than any armed for
            self._timer.cancel()
            self._arm(now, deadline)

    def ended(self) -> None:
        """A wait added ended (answered, timed out or its connection lost)."""
        self.waiting -= 1

    def connectionEnded(self) -> None:
        """A connection ended: with no wait left anywhere, no timer is left either."""
        if self.waiting == 0 and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._queues.clear()

    def _arm(self, now: float, deadline: float) -> None:
        self._timerAt = deadline
        self._timer = self.clock.callLater(max(0.0, deadline - now), self._fired)

    def _fired(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        due = max(now, self._timerAt)  # the timer was armed for exactly that deadline
        expired: list[tuple[DeadlineOwner, int]] = []
        earliest: float | None = None
        for timeout, (deadlines, owners, serials) in list(self._queues.items()):
            while deadlines:
                owner, serial = owners[0], serials[0]
                if deadlines[0] <= due:
                    if owner._waiting(serial):
                        expired.append((owner, serial))
                elif owner._waiting(serial):
                    break  # the next wait still waiting: its deadline is this queue's next
                deadlines.popleft()
                owners.popleft()
                serials.popleft()
            if deadlines:
                if earliest is None or deadlines[0] < earliest:
                    earliest = deadlines[0]
            else:
                del self._queues[timeout]
        if earliest is not None:
            self._arm(now, earliest)
        for owner, serial in expired:
            owner._deadlinePassed(serial)


_clocks: weakref.WeakKeyDictionary[Any, Deadlines] = weakref.WeakKeyDictionary()


def deadlinesOf(clock: IReactorTime) -> Deadlines:
    """The one L{Deadlines} of C{clock}."""
    try:
        deadlines = _clocks.get(clock)
    except TypeError:  # a clock that cannot be weakly referenced: a queue per connection
        return Deadlines(clock, strong=True)
    if deadlines is None:
        deadlines = _clocks[clock] = Deadlines(clock)
    return deadlines


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

    #: the most bytes queued for the device before L{send} raises L{WriteBufferFull}; also the
    #: most data SendAndWait calls queued behind the one in flight may hold
    maxWriteBuffer = DEFAULT_MAX_WRITE_BUFFER
    #: the most SendAndWait calls queued behind the one in flight (L{WaitQueueFull} beyond)
    maxPendingWaits = DEFAULT_MAX_PENDING_WAITS

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
        # a list, not a deque: it rarely holds more than one, and an empty deque takes 600 bytes
        self._waits: list[_Wait] = []
        #: whether C{_waits[0]} has been sent (its deadline is in the queue)
        self._inFlight = False
        #: bytes of data held by the waits queued behind the one in flight
        self._queuedWaitBytes = 0
        #: the clock's deadline queue (see L{Deadlines}) and the serial of the wait now sent
        self._deadlines = deadlinesOf(clock)
        self._serial = 0
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
        waits = self._waits
        if waits:
            wait = waits[0]
            found = wait.matcher.feed(data)
            if found is None:
                return
            response, data = found
            # bytes after a response arrived before the next command was sent: not its answer
            self._finish(wait, response)
        if data:
            self.sink.linkData(data)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._tcp = None
        if self.selfConnected is not None:
            return  # never made, so never lost
        self.connected = False
        self._serial += 1  # the wait in flight, if any, is over: its deadline entry is stale
        if self._inFlight:
            self._inFlight = False
            self._deadlines.ended()
        self._deadlines.connectionEnded()
        self._queuedWaitBytes = 0
        while self._waits:
            wait = self._waits.pop(0)
            _end(wait, wait.matcher.timedOut()[0])
        self.sink.linkLost(self, reason)

    def send(self, data: bytes) -> None:
        """
        Write bytes to the device.

        @raise LinkDown: not connected.
        @raise WriteBufferFull: the device has stopped reading and L{maxWriteBuffer} bytes are
            queued for it already (the data is not sent; the link stays up for the keep-alive
            to judge).
        """
        tcp = self._tcp
        if tcp is None or (
            tcp.dataBuffer
            or tcp._tempDataLen
            or tcp.disconnecting
            or tcp._writeDisconnected
            or tcp._aborting
            or tcp.TLS
            or not tcp.connected
            or not self.connected
        ):
            self._write(data)
            return
        # Nothing is queued: send now.  transport.write would queue the bytes and register the
        # socket for writability, costing two epoll_ctl calls and a reactor round on every poll.
        # Whatever is not sent at once (full socket buffer, error) goes through transport.write,
        # so order, flow control and error reporting stay Twisted's.
        self.bytesSent += len(data)
        if WIRE_TAPS:
            _tap(self.sink, "tx", data)
        try:
            sent = tcp.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            tcp.write(data)  # Twisted's write path reports the lost connection
            return
        if sent < len(data):
            tcp.write(data[sent:])

    def _write(self, data: bytes) -> None:
        """L{send} through the transport's C{write} (not TCP, or TCP with bytes queued)."""
        if not self.connected or self.transport is None:
            raise LinkDown("not connected")
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
        self.transport.write(data)

    def sendAndWait(self, data: bytes, timeout: float, matcher: ResponseMatcher) -> Deferred[bytes]:
        """
        Send C{data} (after any earlier SendAndWait has finished) and collect the response.

        The Deferred fires with the response, or C{b''} when the timeout passes with the
        condition unmet; bytes that were not part of a response go to the sink.  A call queued
        behind others whose data cannot be sent when its turn comes (L{LinkDown},
        L{WriteBufferFull}) fails with that error, and the calls after it go on.

        @raise LinkDown: not connected, or (L{WriteBufferFull}) the data cannot be sent now.
        @raise WaitQueueFull: L{maxPendingWaits} calls, or L{maxWriteBuffer} bytes of their data,
            are queued already.
        """
        if not self.connected:
            raise LinkDown("not connected")
        waits = self._waits
        if waits:
            queued = len(waits) - 1 if self._inFlight else len(waits)
            if queued >= self.maxPendingWaits:
                self.writesRefused += 1
                raise WaitQueueFull(
                    f"the device has not answered: {queued} SendAndWait calls are queued for it "
                    f"already (the limit is {self.maxPendingWaits}); not sent"
                )
            if self._queuedWaitBytes + len(data) > self.maxWriteBuffer:
                self.writesRefused += 1
                raise WaitQueueFull(
                    f"the device has not answered: SendAndWait calls queued for it hold "
                    f"{self._queuedWaitBytes} bytes already (the limit is {self.maxWriteBuffer}); "
                    f"{len(data)} bytes not sent"
                )
            wait = _Wait(data, timeout, matcher)
            waits.append(wait)
            self._queuedWaitBytes += len(data)
            return wait
        wait = _Wait(data, timeout, matcher)
        waits.append(wait)
        try:
            # L{_begin}, inline: send first (a send that raises leaves no deadline behind)
            self.send(data)
            serial = self._serial = self._serial + 1
            self._inFlight = True
            self._deadlines.add(timeout, self, serial)
        except BaseException:
            # nobody will hold this wait: it must not block the calls after it
            if waits and waits[0] is wait:
                del waits[0]
            raise
        return wait

    def _begin(self, wait: _Wait) -> None:
        # send first: a send that raises leaves no deadline behind
        self.send(wait.data)
        self._serial += 1
        self._inFlight = True
        self._deadlines.add(wait.timeout, self, self._serial)

    def _beginNext(self) -> None:
        """Send queued waits in turn until one is in flight; one that cannot be sent fails."""
        waits = self._waits
        while waits and not self._inFlight:
            wait = waits[0]
            self._queuedWaitBytes -= len(wait.data)
            try:
                self._begin(wait)
            except Exception:
                failure = Failure()
                if waits and waits[0] is wait:  # (not ended meanwhile: a send losing the link)
                    del waits[0]
                    _end(wait, failure)

    def _deadlinePassed(self, serial: int) -> None:
        """The deadline of the wait sent as C{serial} has come (L{Deadlines})."""
        if serial == self._serial and self._waits:
            self._timedOut(self._waits[0])

    def _waiting(self, serial: int) -> bool:
        """Whether the wait sent as C{serial} is still waiting."""
        return serial == self._serial and bool(self._waits)

    def _timedOut(self, wait: _Wait) -> None:
        response, unclaimed = wait.matcher.timedOut()
        self._finish(wait, response)
        if unclaimed:
            self.sink.linkData(unclaimed)

    def _finish(self, wait: _Wait, response: bytes) -> None:
        self._serial += 1
        self._inFlight = False
        self._deadlines.waiting -= 1  # (L{Deadlines.ended})
        if wait.matcher.dropped:
            self.log.warn(
                "response exceeded {limit} bytes without meeting its condition; "
                "{n} oldest bytes dropped",
                limit=wait.matcher.maxResponse,
                n=wait.matcher.dropped,
            )
        del self._waits[0]
        # fire this wait before sending the next: whatever that send does, this caller has its
        # answer (a callback that calls sendAndWait with nothing queued sends at once; queued
        # waits are sent after it, in order)
        _end(wait, response)
        if self._waits:
            self._beginNext()

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
