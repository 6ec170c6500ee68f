"""The two faces: Deferreds on the reactor thread, blocking calls on a program thread."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler, ProgramThread
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import listenDevice, waitUntil


@pytest_twisted.ensureDeferred
async def test_reactor_face_returns_deferreds() -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    handler = GetConnectionHandler(EthernetClientInterface("127.0.0.1", device.port), None)
    try:
        d = handler.Connect()
        assert isinstance(d, Deferred)
        assert await d == "Connected"
        d2 = handler.SendAndWait("P", 1, deliTag=b"\r\n")
        assert isinstance(d2, Deferred)
        assert await d2 == b"Pwr1\r\n"
    finally:
        await handler.Disconnect()
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_program_thread_face_blocks_and_returns_values() -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    thread = ProgramThread(reactor)
    thread.start()

    def program() -> dict[str, Any]:
        out: dict[str, Any] = {}
        handler = GetConnectionHandler(EthernetClientInterface("127.0.0.1", device.port), None)
        out["handler"] = handler
        # before Connect(): nothing sent, nothing raised, as on a control processor
        out["sendWhileDown"] = handler.Send("P")
        out["sendAndWaitWhileDown"] = handler.SendAndWait("P", 1, deliTag=b"\r\n")
        out["connect"] = handler.Connect()
        out["again"] = handler.Connect()
        out["response"] = handler.SendAndWait("P", 2, deliTag=b"\r\n")
        out["timeout"] = handler.SendAndWait("nothing", 0.05, deliTag=b"\r\n")
        out["events"] = []
        handler.Disconnected = lambda h, s: out["events"].append(
            (s, threading.current_thread().name)
        )
        return out

    import threading

    try:
        out = await thread.run(program)
        assert out["sendWhileDown"] is None
        assert out["sendAndWaitWhileDown"] is None  # the blocking face: None, not a Deferred
        assert b"".join(device.received).count(b"P") == 1  # the one answered SendAndWait
        assert out["connect"] == "Connected"
        assert out["again"] == "ConnectedAlready"
        assert out["response"] == b"Pwr1\r\n"
        assert out["timeout"] == b""
        device.dropClients()
        await waitUntil(reactor, lambda: out["events"] != [])
        # the program's callbacks run on the program thread, not the reactor's
        assert out["events"] == [("Disconnected", thread.name)]
    finally:
        await out["handler"].Disconnect()
        await thread.stop()
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_a_blocked_program_thread_never_blocks_the_reactor() -> None:
    import threading

    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    thread = ProgramThread(reactor)
    thread.start()
    release = threading.Event()
    polled: list[int] = []
    try:
        slow = await thread.run(
            lambda: GetConnectionHandler(
                EthernetClientInterface("127.0.0.1", device.port),
                lambda h: release.wait(10),  # a keep-alive stuck on the program thread
                pollFrequency=0.02,
            )
        )
        await thread.run(slow.Connect)
        fast = GetConnectionHandler(
            EthernetClientInterface("127.0.0.1", device.port),
            lambda h: polled.append(1),
            pollFrequency=0.02,
        )
        await fast.Connect()
        await waitUntil(reactor, lambda: len(polled) >= 10)
        # its ticks are skipped while the keep-alive runs: not queued, nothing counted (issue 10)
        assert slow.PollTimer.Count >= 2
        assert slow.polls == 1 and slow.missedPolls == 0
    finally:
        release.set()
        await slow.Disconnect()
        await fast.Disconnect()
        await thread.stop()
        await device.shutdown()


def test_callbacks_dropped_when_a_program_thread_is_far_behind() -> None:
    # on a Clock, and stopped: a thread left on the global reactor logs its dropped summary a
    # minute later, in whichever test is running then
    clock = Clock()
    thread = ProgramThread(clock, maxQueue=3)  # never started: nothing drains the queue
    for _ in range(5):
        thread.call(lambda: None, droppable=True)
    thread.call(lambda: None)  # state events are never dropped
    assert thread.dropped == 2
    thread.stop()
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize("bad", [None, 5, "abc"])
def test_GetConnectionHandler_rejects_non_interfaces(bad: Any) -> None:
    with pytest.raises(TypeError, match="not a supported interface type"):
        GetConnectionHandler(bad, lambda h: None)
