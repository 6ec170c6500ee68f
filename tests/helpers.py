"""Builders shared by the Clock-driven tests."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
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


def tcpHandler(keepAlive: Any = None, **kw: Any) -> tuple[Clock, FakeEndpoint, Any, Recorder]:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    iface = EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=endpoint)
    handler = GetConnectionHandler(iface, keepAlive or (lambda h: h.Send(b"P")), **kw)
    rec = Recorder()
    rec.hook(handler, "Connected", "Disconnected", "ConnectFailed", "ReceiveData")
    return clock, endpoint, handler, rec
