"""
User callbacks that raise in every event, on real loopback sockets, stop neither polling nor
reconnection; each failure is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, bounded
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import (
    EthernetClientInterface,
)
from twisted_ch.testing import listenDevice, waitUntil

# -- user code that raises everywhere


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("style", ["plain", "coroutine"])
@pytest_twisted.ensureDeferred
@bounded(25)
async def test_callbacks_raising_in_every_event_do_not_stop_polling_or_reconnection(
    style: str, loggedFailures: list[Failure]
) -> None:
    device = listenDevice(reactor, {b"P": ANSWER})  # restartable: see DeviceServer.start
    calls: dict[str, int] = {}

    def raiser(name: str) -> Callable[..., None]:
        def callback(*args: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name == "ReceiveData" and ANSWER in args[1]:
                args[0].ResponseAccepted()
            raise Boom(f"boom-{name}")

        return callback

    plainKeepAlive = raiser("keepAlive")

    def keepAlive(h: Any) -> Any:
        h.Send("P")
        if style == "plain":
            plainKeepAlive(h)

        async def later() -> None:
            await deferLater(reactor, 0)
            plainKeepAlive(h)

        return later()

    h = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", device.port),
        keepAlive,
        DisconnectLimit=2,
        pollFrequency=0.05,
        connectRetryTime=0.1,
    )
    for name in ("Connected", "Disconnected", "ReceiveData", "ConnectFailed"):
        setattr(h, name, raiser(name))
    states: list[str] = []
    h.addStatusObserver(states.append)
    try:
        await h.Connect()
        await waitUntil(reactor, lambda: calls.get("ReceiveData", 0) >= 3)
        assert h.missedPolls <= 1 and states == ["Connected"]

        device.silent = True  # dropped after the limit, then reconnected
        await waitUntil(reactor, lambda: states[-1] == "Disconnected")
        reconnects = h.reconnects
        await waitUntil(reactor, lambda: h.reconnects > reconnects)
        device.silent = False
        await waitUntil(reactor, lambda: states.count("Connected") >= 2)
        answers = calls["ReceiveData"]
        await waitUntil(reactor, lambda: calls["ReceiveData"] >= answers + 3)

        await device.stop()  # refused from now on
        device.dropClients()
        await waitUntil(reactor, lambda: calls.get("ConnectFailed", 0) >= 2)
        device.start()
        await waitUntil(reactor, lambda: states[-1] == "Connected")
        answers = calls["ReceiveData"]
        await waitUntil(reactor, lambda: calls["ReceiveData"] >= answers + 3)
        assert all(a != b for a, b in zip(states, states[1:], strict=False)), states
    finally:
        await h.Disconnect()
        await device.shutdown()
    logged = {str(f.value) for f in loggedFailures if isinstance(f.value, Boom)}
    expected = {"Connected", "Disconnected", "ReceiveData", "ConnectFailed", "keepAlive"}
    assert logged == {f"boom-{name}" for name in expected}
