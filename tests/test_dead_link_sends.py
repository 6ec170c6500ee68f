"""
Sends on a dead link send nothing and raise nothing; Disconnect from a Connected callback
completes (real loopback sockets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest_twisted
from helpers import ANSWER, Watch, bounded, sleep
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import (
    EthernetClientInterface,
)
from twisted_ch.testing import listenDevice, waitUntil

# -- sending on a dead link


async def _assertDropped(h: Any, device: Any, *sends: Callable[[], object]) -> None:
    """Each send returns None (SendAndWait: a Deferred firing None) and nothing reaches device."""
    received = b"".join(device.received)
    for send in sends:
        result = send()
        assert (await result if isinstance(result, Deferred) else result) is None
    await sleep(0.05)
    assert b"".join(device.received) == received


@pytest_twisted.ensureDeferred
@bounded(15)
async def test_Send_and_SendAndWait_on_a_dead_link_send_nothing_and_raise_nothing() -> None:
    device = listenDevice(reactor, {b"P": ANSWER})  # restartable: see DeviceServer.start
    port = device.port
    w = Watch(port, pollFrequency=60, connectRetryTime=0.1)
    h = w.handler
    try:
        # never connected
        await _assertDropped(h, device, lambda: h.Send("P"), lambda: h.SendAndWait("P", 1))
        await h.Connect()
        h.Send("P")
        await h.whenStatus("Connected")  # the answer was accepted
        await device.stop()  # away, and retrying
        device.dropClients()
        await h.whenStatus("Disconnected")
        await _assertDropped(h, device, lambda: h.Send(b"P"), lambda: h.SendAndWait(b"P", 1))
        device.start()
        await waitUntil(reactor, lambda: h.Interface.link.connected)
        h.Send("P")
        await h.whenStatus("Connected")
        await sleep(0)  # leave the Connected callback chain first (see the test below)
        await h.Disconnect()  # told to stop
        await _assertDropped(
            h, device, lambda: h.Send("P"), lambda: h.Interface.Send("P"),
            lambda: h.Interface.SendAndWait("P", 1, deliTag=b"\r\n"),
        )  # fmt: skip
    finally:
        await h.Disconnect()
        await device.shutdown()


@pytest_twisted.ensureDeferred
@bounded(10)
async def test_Disconnect_called_from_a_Connected_callback_completes() -> None:
    """User code may give up in its Connected callback; that Disconnect must still finish."""
    device = listenDevice(reactor, {b"P": ANSWER})
    h = GetConnectionHandler(EthernetClientInterface("127.0.0.1", device.port), None)
    closed: list[Deferred[None]] = []
    h.Connected = lambda handler, state: closed.append(handler.Disconnect())
    try:
        assert await h.Connect() in ("Connected", "Connection lost")
        assert len(closed) == 1
        await closed[0]
        assert h.ConnectionStatus == "Disconnected"
        assert h.Interface.link.state == "closed"
    finally:
        await h.Disconnect()
        await device.shutdown()
