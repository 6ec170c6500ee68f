"""
C{CharDelay}: a serial interface's writes go out one byte at a time, that many seconds apart,
through a protocol wrapper between the device protocol and the serial transport.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IProtocol, IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_ch import _checks
from twisted_ch._framing import toBytes

__all__ = ["PacedEndpoint", "pacedSendAndWait"]


def pacedSendAndWait(data: bytes | str, timeout: float, charDelay: float) -> tuple[bytes, float]:
    """The bytes to send and the wait: C{timeout} counted from the last byte sent."""
    payload = toBytes(data)
    wait = _checks.seconds(timeout, "timeout", zero=True)
    if charDelay > 0 and len(payload) > 1:
        wait += (len(payload) - 1) * charDelay
    return payload, wait


_DONE = Failure(ConnectionDone())


class _PacedProtocol(ProtocolWrapper):
    """Writes to its transport one byte at a time, C{CharDelay} seconds apart (when not 0)."""

    factory: _PacedFactory

    def __init__(self, factory: _PacedFactory, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)
        self._queue: deque[int] = deque()
        self._out: Any = None
        self._call: IDelayedCall | None = None
        self._lost = False

    def write(self, data: bytes) -> None:
        if not self._queue and self.factory.interface.CharDelay <= 0:
            self._transport().write(data)
            return
        self._queue.extend(data)
        if self._call is None:
            self._next()

    def queuedBytes(self) -> int:
        """Bytes not yet taken by the device: paced ones and the serial port's own buffer."""
        from twisted_ch.protocols.device import queuedBytes

        return len(self._queue) + queuedBytes(self.transport)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def _next(self) -> None:
        self._call = None
        if self._lost or not self._queue:
            return
        self._transport().write(bytes((self._queue.popleft(),)))
        if self._queue:
            delay = self.factory.interface.CharDelay
            if delay <= 0:  # CharDelay set to 0 meanwhile: the rest at once
                rest, self._queue = bytes(self._queue), deque()
                self._transport().write(rest)
                return
            self._call = self.factory.interface.pacingClock.callLater(delay, self._next)

    def _transport(self) -> Any:
        return self.transport

    def connectionLost(self, reason: Failure = _DONE) -> None:
        self._lost = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._queue.clear()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


class _PacedFactory(WrappingFactory[_PacedProtocol]):
    protocol = _PacedProtocol
    noisy = False

    def __init__(self, wrappedFactory: Any, interface: Any) -> None:
        super().__init__(wrappedFactory)  # type: ignore[no-untyped-call]
        self.interface = interface


@implementer(IStreamClientEndpoint)
class PacedEndpoint:
    """An endpoint whose protocols' writes are paced by the interface's CharDelay."""

    def __init__(
        self,
        endpoint: IStreamClientEndpoint | Callable[[], IStreamClientEndpoint],
        interface: Any,
    ) -> None:
        self._endpoint = endpoint
        self._interface = interface

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        endpoint = self._endpoint
        if not IStreamClientEndpoint.providedBy(endpoint):
            assert callable(endpoint)
            endpoint = endpoint()
        d = endpoint.connect(_PacedFactory(protocolFactory, self._interface))
        return d.addCallback(lambda wrapper: getattr(wrapper, "wrappedProtocol", wrapper))
