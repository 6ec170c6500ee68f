"""RawTcpHandler timing rules, driven by a task.Clock and a FakeEndpoint."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import Recorder, tcpHandler
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler, RawTcpHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import FakeEndpoint


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


class Device:
    """What the Clock tests' keep-alive talks to: it answers (ResponseAccepted) unless silent."""

    def __init__(self) -> None:
        self.silent = False
        self.polls: list[Any] = []

    def keepAlive(self, handler: Any) -> None:
        self.polls.append(handler)
        handler.Send("P")
        if not self.silent:
            handler.ResponseAccepted()


def answering(**kw: Any) -> tuple[Clock, FakeEndpoint, Any, Recorder, Device]:
    device = Device()
    clock, ep, h, rec = tcpHandler(device.keepAlive, **kw)
    return clock, ep, h, rec, device


def test_Connected_when_a_response_is_accepted_not_when_the_link_opens() -> None:
    # issue 10: "Connected means answered" (it used to be reported as the link opened)
    clock, ep, h, rec, device = answering(pollFrequency=2)
    assert isinstance(h, RawTcpHandler)
    assert h.ConnectionStatus == "Unknown"
    assert result(h.Connect()) == "Connected"  # the attempt's result: the link is up
    assert rec.names() == []
    assert h.ConnectionStatus == "Unknown"
    clock.advance(1.9)
    assert device.polls == []
    clock.advance(0.1)
    assert device.polls == [h]
    assert rec.calls == [("Connected", (h, "Connected"))]
    assert h.ConnectionStatus == "Connected"
    clock.pump([2, 2, 2])
    assert len(device.polls) == 4
    assert result(h.Connect()) == "ConnectedAlready"
    assert rec.names() == ["Connected"]


def test_ResponseAccepted_on_a_link_that_is_down_is_not_Connected() -> None:
    clock, ep, h, rec = tcpHandler(connectRetryTime=10)
    ep.refuse = True
    h.Connect()
    h.ResponseAccepted()
    assert h.ConnectionStatus == "Unknown"
    assert rec.names() == ["ConnectFailed"]


def test_a_send_past_the_limit_drops_the_link_instead_of_sending_and_reconnects() -> None:
    # issue 10: a device that accepts TCP and never answers is never Connected: one Disconnected
    # after the limit, then quiet reconnecting (it used to be Connected at once, then flap)
    clock, ep, h, rec = tcpHandler(DisconnectLimit=3, pollFrequency=1, connectRetryTime=5)
    h.Connect()
    first = ep.transport
    for t in (1, 2, 3):
        clock.advance(1)
        assert ep.written() == b"P", t
        assert h.missedPolls == t
    assert h.ConnectionStatus == "Unknown"
    clock.advance(1)  # t=4: a 4th send would take the counter past the limit of 3
    assert ep.written() == b""  # not sent
    assert first is not None and first.closed and not first.aborted  # gracefully: a FIN
    clock.advance(0)
    assert h.ConnectionStatus == "Disconnected"
    assert rec.names() == ["Disconnected"]
    assert len(ep.attempts) == 1
    clock.advance(4.9)
    assert len(ep.attempts) == 1
    clock.advance(0.1)  # connectRetryTime after the drop
    assert len(ep.attempts) == 2
    assert h.missedPolls <= 1  # the count restarted with the new link (a poll is due now too)
    clock.pump([1] * 4)
    assert ep.transport is not None and ep.transport.closed  # dropped again, quietly
    clock.pump([1] * 30)
    assert rec.names() == ["Disconnected"]
    assert h.transitions == 1


def test_ResponseAccepted_resets_the_count() -> None:
    def keepAlive(handler: Any) -> None:
        handler.Send("P")

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=2)

    def onData(handler: Any, data: bytes) -> None:
        if data == b"Pwr1\r\n":
            handler.ResponseAccepted()

    h.ReceiveData = onData
    h.Connect()
    for _ in range(20):
        clock.advance(1)
        assert ep.written() == b"P"
        ep.respond(b"Pwr1\r\n")
        assert h.missedPolls == 0
    assert rec.names() == ["Connected"]
    clock.advance(1)
    clock.advance(1)
    clock.advance(1)
    clock.advance(0)
    assert rec.names() == ["Connected", "Disconnected"]


def test_device_close_is_noticed_at_once_and_retried_every_connectRetryTime() -> None:
    clock, ep, h, rec, device = answering(connectRetryTime=3)
    h.Connect()
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    ep.refuse = True
    assert ep.transport is not None
    ep.transport.deviceResets()
    clock.advance(0)
    assert h.ConnectionStatus == "Disconnected"
    assert rec.names() == ["Connected", "Disconnected"]
    for n in range(2, 6):
        clock.advance(3)
        assert len(ep.attempts) == n
    # each refused attempt reports ConnectFailed; Disconnected is not repeated
    assert rec.names() == ["Connected", "Disconnected"] + ["ConnectFailed"] * 4
    assert rec.calls[-1] == ("ConnectFailed", (h, "Connection refused"))
    ep.refuse = False
    clock.advance(3)
    assert h.Interface.link.connected
    assert rec.names()[-1] == "ConnectFailed"  # the link is up, the device has not answered yet
    clock.advance(1)
    assert rec.names()[-1] == "Connected"
    assert h.reconnects == 5


def test_never_reached_fires_ConnectFailed_per_attempt_and_stays_Unknown() -> None:
    # issue 10: a first attempt that fails is not Disconnected (it used to be)
    clock, ep, h, rec, device = answering(connectRetryTime=5)
    ep.refuse = True
    assert result(h.Connect()) == "Connection refused"
    assert rec.names() == ["ConnectFailed"]
    assert h.ConnectionStatus == "Unknown"
    assert h.stats().lastError == "Connection refused"
    clock.advance(5)
    assert rec.names() == ["ConnectFailed", "ConnectFailed"]
    assert h.ConnectionStatus == "Unknown"
    ep.refuse = False
    clock.advance(5)
    assert rec.names() == ["ConnectFailed", "ConnectFailed"]
    clock.advance(1)  # the first answer
    assert rec.names() == ["ConnectFailed", "ConnectFailed", "Connected"]


def test_AutoReconnect_off_attempts_once() -> None:
    clock, ep, h, rec = tcpHandler(connectRetryTime=1)
    h.AutoReconnect = False
    ep.refuse = True
    h.Connect()
    clock.pump([1] * 10)
    assert len(ep.attempts) == 1
    assert all(getattr(c.func, "__name__", "") != "_retryNow" for c in clock.getDelayedCalls())


def test_AutoReconnect_off_after_connect_no_reconnect_and_no_polling() -> None:
    clock, ep, h, rec, device = answering(connectRetryTime=1)
    polls = device.polls
    h.Connect()
    clock.advance(1)
    assert len(polls) == 1
    h.AutoReconnect = False
    assert ep.transport is not None
    ep.transport.deviceCloses()
    clock.pump([1] * 10)
    assert len(ep.attempts) == 1
    assert len(polls) == 1
    # enabling does not connect by itself; Connect does
    h.AutoReconnect = True
    clock.pump([1] * 3)
    assert len(ep.attempts) == 1
    h.Connect()
    assert len(ep.attempts) == 2
    clock.advance(1)
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_connect_timeout() -> None:
    clock, ep, h, rec = tcpHandler(connectRetryTime=5)
    ep.hang = True
    d = h.Connect(timeout=2)
    clock.advance(1.9)
    assert not d.called
    clock.advance(0.1)
    assert result(d) == "Timed out"
    assert rec.calls == [("ConnectFailed", (h, "Timed out"))]
    clock.advance(5)
    assert len(ep.attempts) == 2  # retried, still with the 2 s timeout
    clock.advance(2)
    assert rec.names().count("ConnectFailed") == 2


def test_PollTimer_pause_resume_restart() -> None:
    clock, ep, h, rec, device = answering()
    polls = device.polls
    h.Connect()
    clock.pump([1, 1])
    assert len(polls) == 2
    h.PollTimer.Pause()
    assert h.PollTimer.State == "Paused"
    clock.pump([1] * 30)
    assert len(polls) == 2
    assert h.ConnectionStatus == "Connected"  # no polls, no misses
    h.PollTimer.Resume()
    clock.advance(1)
    assert len(polls) == 3
    count = h.PollTimer.Count
    h.PollTimer.Restart()
    assert h.PollTimer.Count == 0 < count
    clock.advance(1)
    assert len(polls) == 4


def test_raising_callbacks_do_not_stop_polling_or_reconnection() -> None:
    calls: list[int] = []
    device = Device()

    def badKeepAlive(handler: Any) -> None:
        calls.append(1)
        device.keepAlive(handler)
        raise RuntimeError("user bug")

    clock, ep, h, rec = tcpHandler(badKeepAlive, DisconnectLimit=2, connectRetryTime=1)

    def badEvent(*args: Any) -> None:
        rec.calls.append(("bad", args))
        raise ValueError("another user bug")

    h.Connected = badEvent
    h.Disconnected = badEvent
    h.Connect()
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    device.silent = True
    clock.pump([1] * 3)  # two unanswered sends, the third would pass the limit of 2
    clock.advance(0)
    assert len(calls) == 4
    assert h.ConnectionStatus == "Disconnected"
    clock.advance(1)  # reconnected
    device.silent = False
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    clock.pump([1] * 2)
    assert len(calls) == 7
    assert [a[1] for n, a in rec.calls if n == "bad"] == ["Connected", "Disconnected", "Connected"]


def test_a_keepalive_deferred_that_never_fires_does_not_stall_polling() -> None:
    started: list[float] = []

    def stuck(handler: Any) -> Deferred[None]:
        started.append(clock.seconds())
        return Deferred()

    clock, ep, h, rec = tcpHandler(stuck, DisconnectLimit=3)
    h.Connect()
    clock.pump([1] * 10)
    # one call in flight is never duplicated; the ticks meanwhile are skipped (nothing was sent,
    # nothing counted) until pollFrequency x (DisconnectLimit + 1) frees the keep-alive again
    assert started == [1, 5, 9]
    assert h.missedPolls == 0
    assert rec.names() == []


def test_the_ticks_a_running_keepalive_skips_are_logged_once_per_run(loggedEvents: Any) -> None:
    # a program thread behind its polls skips most ticks of many handlers: one debug line per
    # keep-alive run, not one per tick (each costs the reactor its log observers)
    runs: list[Deferred[None]] = []

    def slow(handler: Any) -> Deferred[None]:
        runs.append(Deferred())
        return runs[-1]

    clock, ep, h, rec = tcpHandler(slow, DisconnectLimit=10)
    h.Connect()
    clock.pump([1] * 4)  # the run starts at 1 s; ticks 2-4 are skipped
    runs[0].callback(None)
    clock.pump([1] * 3)  # a second run at 5 s; ticks 6-7 skipped
    skipped = [t for t in loggedEvents.texts() if "ticks skipped" in t]
    assert len(runs) == 2
    assert len(skipped) == 2 and "keep-alive still running" in skipped[0]
    runs[1].callback(None)


def test_coroutine_keepalive_on_the_reactor() -> None:
    async def keepAlive(handler: Any) -> None:
        response = await handler.SendAndWait("P", 1, deliTag=b"\r\n")
        if response == b"Pwr1\r\n":
            handler.ResponseAccepted()

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=1)
    h.Connect()
    for _ in range(5):
        clock.advance(1)
        assert ep.written() == b"P"
        ep.respond(b"Pwr1\r\n")
    assert h.ConnectionStatus == "Connected"
    assert h.missedPolls == 0


def test_Disconnect_leaves_no_timers() -> None:
    clock, ep, h, rec, device = answering(connectRetryTime=1)
    h.Connect()
    clock.pump([1] * 3)
    d = h.Disconnect()
    clock.advance(0)
    assert result(d) is None
    assert h.ConnectionStatus == "Disconnected"
    assert h.PollTimer.State == "Stopped"
    assert clock.getDelayedCalls() == []
    clock.pump([1] * 10)
    assert len(ep.attempts) == 1


def test_Disconnect_while_waiting_to_retry_leaves_no_timers() -> None:
    clock, ep, h, rec = tcpHandler(connectRetryTime=10)
    ep.refuse = True
    h.Connect()
    assert clock.getDelayedCalls() != []
    h.Disconnect()
    assert clock.getDelayedCalls() == []


def test_Send_and_SendAndWait_while_disconnected_send_nothing_and_return_None() -> None:
    clock, ep, h, rec = tcpHandler()
    assert h.Send("P") is None  # before any Connect(): dropped, no exception
    assert result(h.SendAndWait("P", 1)) is None  # the Twisted face: a Deferred firing None
    h.Connect()
    assert ep.written() == b""


def test_SendAndWait_conditions_and_timeouts() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    d = h.SendAndWait("Q", 3, deliTag=b"\r\n")
    assert ep.written() == b"Q"
    ep.respond(b"Vol")
    assert not d.called
    ep.respond(b"42\r\nnext")
    assert result(d) == b"Vol42\r\n"
    assert rec.calls[-1] == ("ReceiveData", (h, b"next"))

    d = h.SendAndWait(b"Q", 2, deliLen=3)
    ep.respond(b"abcd")
    assert result(d) == b"abc"

    d = h.SendAndWait(b"Q", 2, deliRex=re.compile(rb"\d+\r"))
    ep.respond(b"x12\r")
    assert result(d) == b"x12\r"

    d = h.SendAndWait(b"Q", 2, deliTag=b"\r")
    ep.respond(b"never ends")
    clock.advance(2)
    assert result(d) == b""
    assert rec.calls[-1] == ("ReceiveData", (h, b"never ends"))

    d = h.SendAndWait(b"Q", 1.5)
    ep.respond(b"a")
    ep.respond(b"b")
    clock.advance(1.5)
    assert result(d) == b"ab"


def test_SendAndWait_calls_are_served_in_order() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    d1 = h.SendAndWait("A", 2, deliTag=b"\r")
    d2 = h.SendAndWait("B", 2, deliTag=b"\r")
    assert ep.written() == b"A"  # B waits for A's answer
    ep.respond(b"a\r")
    assert result(d1) == b"a\r"
    assert ep.written() == b"B"
    ep.respond(b"b\r")
    assert result(d2) == b"b\r"


def test_SendAndWait_on_link_loss_returns_empty() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    d = h.SendAndWait("A", 5, deliTag=b"\r")
    assert ep.transport is not None
    ep.transport.deviceResets()
    clock.advance(0)
    assert result(d) == b""


def test_OnDisconnected_forces_disconnected_and_reconnects() -> None:
    clock, ep, h, rec, device = answering(connectRetryTime=2)
    h.Connect()
    clock.advance(1)
    h.PollTimer.Pause()
    h.OnDisconnected()
    clock.advance(0)
    assert h.ConnectionStatus == "Disconnected"
    assert rec.names() == ["Connected", "Disconnected"]
    clock.advance(2)
    assert len(ep.attempts) == 2 and h.Interface.link.connected
    assert rec.names() == ["Connected", "Disconnected"]  # no answer yet: polling is paused
    h.PollTimer.Resume()
    clock.advance(1)
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_OnDisconnected_before_any_answer_forces_Disconnected() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    h.OnDisconnected()
    assert rec.names() == ["Disconnected"]


def test_handler_exposes_the_interface_api() -> None:
    clock, ep, h, rec = tcpHandler()
    assert h.Hostname == "192.0.2.1"
    assert h.IPPort == 23
    assert h.Protocol == "TCP"
    assert h.Interface.Hostname == "192.0.2.1"
    assert h.DisconnectLimit == 15
    with pytest.raises(AttributeError, match="nor has the wrapped 'EthernetClientInterface'"):
        h.NoSuchThing  # noqa: B018


def test_event_attributes_reject_non_callables() -> None:
    clock, ep, h, rec = tcpHandler()
    with pytest.raises(TypeError, match="Connected event handler must be callable"):
        h.Connected = "not a function"


def test_strict_alternation_under_random_flapping() -> None:
    import random

    rnd = random.Random(1234)
    clock, ep, h, rec = tcpHandler(DisconnectLimit=2, connectRetryTime=1)
    h.Connect()
    for _ in range(2000):
        action = rnd.choice(["tick", "close", "reset", "refuse", "accept", "answer", "force"])
        if action == "tick":
            clock.advance(rnd.choice([0, 0.5, 1]))
        elif action in ("close", "reset") and ep.transport is not None:
            getattr(ep.transport, "deviceCloses" if action == "close" else "deviceResets")()
        elif action == "refuse":
            ep.refuse = True
        elif action == "accept":
            ep.refuse = False
        elif action == "answer":
            h.ResponseAccepted()
        elif action == "force":
            h.OnDisconnected()
    states = [n for n in rec.names() if n in ("Connected", "Disconnected")]
    assert len(states) > 30
    assert all(a != b for a, b in zip(states, states[1:], strict=False))
    assert states[-1] == h.ConnectionStatus


def test_Connect_while_the_old_link_is_closing_waits_for_it() -> None:
    clock, ep, h, rec, device = answering()
    h.Connect()
    clock.advance(1)
    old = ep.transport
    h.Disconnect()  # the close reaches the protocol on the next clock turn
    d = h.Connect()
    assert len(ep.attempts) == 1  # no second transport while the first is still open
    clock.advance(0)
    assert result(d) == "Connected"
    assert len(ep.attempts) == 2 and ep.transport is not old
    assert h.ConnectionStatus == "Disconnected"
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_pipe_handler_keepalive_decides_and_a_lost_port_reopens() -> None:
    from twisted.internet.task import Clock

    from twisted_ch import EndpointInterface, RawSimplePipeHandler
    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EndpointInterface(ep, reactor=clock, connectionOriented=False)
    h = GetConnectionHandler(iface, lambda h: h.Send("P"), DisconnectLimit=2, connectRetryTime=3)
    assert isinstance(h, RawSimplePipeHandler)
    events: list[str] = []
    h.Connected = lambda hh, s: events.append(s)
    h.Disconnected = lambda hh, s: events.append(s)
    h.Connect()
    assert h.ConnectionStatus == "Unknown"  # an open port says nothing about the device
    clock.advance(1)
    assert ep.written() == b"P"
    h.ResponseAccepted()
    assert events == ["Connected"]
    clock.pump([1, 1, 1])  # three polls unanswered, the third exceeds the limit of 2
    assert events == ["Connected", "Disconnected"]
    clock.pump([1, 1])
    assert ep.written() == b"PPPPP"  # polling goes on while Disconnected
    h.ResponseAccepted()
    assert events == ["Connected", "Disconnected", "Connected"]
    ep.refuse = True
    assert ep.transport is not None
    ep.transport.deviceResets()  # the port vanishes
    clock.advance(0)
    assert events[-1] == "Disconnected"
    clock.pump([3, 3])
    assert len(ep.attempts) == 3  # reopened every connectRetryTime
    ep.refuse = False
    clock.advance(3)
    assert len(ep.attempts) == 4 and iface.link.connected
    h.Disconnect()
    clock.advance(0)
    assert clock.getDelayedCalls() == []


def test_pipe_handler_needs_a_keepalive() -> None:
    from twisted.internet.task import Clock

    from twisted_ch import EndpointInterface
    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    iface = EndpointInterface(FakeEndpoint(clock), reactor=clock, connectionOriented=False)
    with pytest.raises(ValueError, match="needs a keepAliveQuery"):
        GetConnectionHandler(iface)


def test_Connect_from_inside_ConnectFailed_then_Disconnect_completes() -> None:
    clock, ep, h, rec = tcpHandler()
    h.AutoReconnect = False
    ep.refuse = True
    inner: list[Deferred[str]] = []

    def retryByHand(handler: Any, reason: str) -> None:
        ep.refuse, ep.hang = False, True
        if not inner:
            inner.append(handler.Connect())

    h.ConnectFailed = retryByHand
    assert result(h.Connect()) == "Connection refused"
    assert not inner[0].called  # the new attempt is still in flight, not given the old reason
    d = h.Disconnect()
    assert result(d) is None  # cancels the in-flight attempt at once
    assert result(inner[0]) == "Cancelled"
    assert clock.getDelayedCalls() == []


def test_Connect_from_inside_Disconnected_then_Disconnect_completes() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    h.Disconnected = lambda handler, state: handler.Connect()
    d = h.Disconnect()
    clock.advance(0)
    assert result(d) is None
    assert h.Interface.link.state in ("connected", "closed")


def test_a_synchronous_reconnect_inside_ConnectFailed_keeps_states_in_order() -> None:
    clock, ep, h, rec, device = answering()
    ep.refuse = True

    def reconnect(handler: Any, reason: str) -> None:
        rec.calls.append(("ConnectFailed", (handler, reason)))
        ep.refuse = False
        handler.Connect()

    h.ConnectFailed = reconnect
    h.Connect()
    assert rec.names() == ["ConnectFailed"]
    assert h.Interface.link.connected
    clock.advance(1)
    assert rec.names() == ["ConnectFailed", "Connected"]
    assert h.ConnectionStatus == "Connected"


def test_a_stuck_keepalive_does_not_silence_polling_after_a_reconnect() -> None:
    calls: list[int] = []

    def stuck(handler: Any) -> Deferred[None]:
        calls.append(1)
        return Deferred()

    clock, ep, h, rec = tcpHandler(stuck, DisconnectLimit=2, connectRetryTime=1)
    h.Connect()
    clock.pump([1] * 40)
    # each new link (or the keep-alive timeout) gives the keep-alive a fresh chance
    assert len(calls) >= 10


def test_no_keepalive_never_drops_a_healthy_link() -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    h = GetConnectionHandler(
        EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=ep), DisconnectLimit=3
    )
    h.Connect()
    assert h.ConnectionStatus == "Connected"  # twisted_ch's extension: the open link says so
    for _ in range(100):
        h.Send("command")  # without a keep-alive nothing is counted
        clock.advance(1)
    assert len(ep.attempts) == 1 and h.ConnectionStatus == "Connected"
    ep.transport.deviceCloses()  # type: ignore[union-attr]
    clock.advance(0)
    assert h.ConnectionStatus == "Disconnected"


def test_Disconnect_aborts_a_peer_that_stopped_reading() -> None:
    from twisted_ch._link import CLOSE_GRACE

    clock, ep, h, rec = tcpHandler()
    h.Connect()
    assert ep.transport is not None
    ep.transport.peerStopsReading = True
    d = h.Disconnect()
    clock.advance(CLOSE_GRACE - 0.1)
    assert not d.called
    clock.advance(0.1)
    clock.advance(0)
    assert ep.transport.aborted
    assert result(d) is None
    assert clock.getDelayedCalls() == []


def test_interface_keepalive_and_events_across_reconnections() -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=ep)
    events: list[str] = []
    iface.Connected = lambda i, s: events.append(s)
    iface.Disconnected = lambda i, s: events.append(s)
    iface.ConnectFailed = lambda i, r: events.append(f"failed: {r}")
    iface.Connect()
    iface.StartKeepAlive(2, "ka")
    clock.pump([2])
    assert ep.written() == b"ka"
    assert ep.transport is not None
    ep.transport.deviceCloses()
    clock.advance(0)
    ep.refuse = True
    iface.Connect()
    ep.refuse = False
    iface.Connect()
    clock.pump([2])
    assert ep.written() == b"ka"  # the keep-alive setting survived the reconnection
    assert events == ["Connected", "Disconnected", "failed: Connection refused", "Connected"]


# --- issue 10: the send counter --------------------------------------------------------------


def test_the_manuals_synchronous_keepalive_counts_queries_not_ticks() -> None:
    # timeout 3 s, poll 1 s, DisconnectLimit 15 (the manual's example): the ticks that come while
    # a query waits are skipped, so the device is Disconnected after 15 unanswered queries, 45 s
    # (it used to be after 4 ticks)
    queries: list[float] = []

    async def keepAlive(h: Any) -> None:
        queries.append(clock.seconds())
        if await h.SendAndWait("P", 3, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=15, pollFrequency=1)
    h.Connect()
    clock.advance(1)
    ep.respond(b"Pwr1\r\n")
    assert h.ConnectionStatus == "Connected"
    clock.pump([1] * 45)  # t=46: 15 queries went out unanswered (t = 2, 5, ... 44)
    assert len(queries) == 16
    assert h.missedPolls == 15
    assert rec.names() == ["Connected"]
    clock.pump([1] * 3)  # t=47: the 16th would pass the limit
    assert rec.names() == ["Connected", "Disconnected"]
    assert ep.transport is not None and ep.transport.closed and not ep.transport.aborted
    assert ep.written() == b"P" * 16


def test_a_late_answer_keeps_the_device_Connected() -> None:
    # every answer 1.2 s late, poll 0.5 s, DisconnectLimit 2: the reference stays Connected
    async def keepAlive(h: Any) -> None:
        if await h.SendAndWait("P", 3, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=2, pollFrequency=0.5)
    h.Connect()
    for _ in range(100):
        clock.advance(0.5)
        if ep.written() == b"P":
            clock.advance(1.2)  # ticks meanwhile are skipped
            ep.respond(b"Pwr1\r\n")
    assert rec.names() == ["Connected"]
    assert len(ep.attempts) == 1


def test_every_Send_and_SendAndWait_through_the_handler_counts() -> None:
    clock, ep, h, rec, device = answering(DisconnectLimit=3, connectRetryTime=2)
    h.Connect()
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    h.PollTimer.Pause()
    ep.written()
    h.Send("A")
    h.SendAndWait("B", 1)
    h.Send("C")
    assert h.missedPolls == 3
    h.Interface.Send("D")  # the interface itself is not the handler: not counted
    assert h.missedPolls == 3
    assert ep.written() == b"ABCD"
    assert h.Send("E") is None  # would pass the limit: the link is dropped instead, quietly
    assert ep.written() == b""
    assert h.ConnectionStatus == "Disconnected"
    assert rec.names() == ["Connected", "Disconnected"]
    clock.advance(0)
    assert result(h.SendAndWait("F", 1)) is None  # the link is down: nothing sent
    assert ep.written() == b""
    clock.advance(2)  # reconnected after connectRetryTime, the counter at 0 again
    assert len(ep.attempts) == 2 and h.missedPolls == 0
    h.ResponseAccepted()
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_a_pipe_reports_Disconnected_past_the_limit_and_still_sends() -> None:
    from twisted_ch import EndpointInterface

    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EndpointInterface(ep, reactor=clock, connectionOriented=False)
    h = GetConnectionHandler(iface, lambda h: h.Send("P"), DisconnectLimit=2)
    rec = Recorder()
    rec.hook(h, "Connected", "Disconnected")
    h.Connect()
    h.PollTimer.Pause()
    h.ResponseAccepted()
    for command in ("A", "B", "C", "D"):
        h.Send(command)  # the program's commands count too
    assert ep.written() == b"ABCD"  # all sent, the third and fourth past the limit
    assert rec.names() == ["Connected", "Disconnected"]
    h.ResponseAccepted()
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_a_keepalive_waiting_longer_than_its_bound_is_not_run_twice_at_once() -> None:
    # poll 0.5 s, DisconnectLimit 2, a 3 s SendAndWait: pollFrequency x (DisconnectLimit + 1) is
    # 1.5 s, yet a keep-alive waiting for its answer is running, not stuck: no second call
    # overlaps it (the ticks meanwhile are skipped)
    queries: list[float] = []

    async def keepAlive(h: Any) -> None:
        queries.append(clock.seconds())
        if await h.SendAndWait("P", 3, deliTag=b"\r\n") == b"Pwr1\r\n":
            h.ResponseAccepted()

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=2, pollFrequency=0.5)
    h.Connect()
    clock.pump([0.5] * 15)  # to t=7.5
    assert queries == [0.5, 3.5, 6.5]  # the third would pass the limit: dropped instead
    assert ep.written() == b"PP"
    assert rec.names() == ["Disconnected"]


def test_one_outage_gives_one_Disconnected_and_one_Connected() -> None:
    # issue 10: reconnecting is not an answer (it used to report Connected at each reconnect)
    clock, ep, h, rec, device = answering(DisconnectLimit=2, connectRetryTime=1)
    h.Connect()
    clock.advance(1)
    device.silent = True
    clock.pump([1] * 20)  # dropped at the limit, then reconnected and dropped, quietly
    assert len(ep.attempts) >= 5
    assert rec.names() == ["Connected", "Disconnected"]
    device.silent = False
    clock.pump([1] * 5)
    assert rec.names() == ["Connected", "Disconnected", "Connected"]


def test_a_bad_argument_is_an_error_not_a_send() -> None:
    clock, ep, h, rec = tcpHandler()
    h.Connect()
    with pytest.raises(TypeError):
        h.Send(42)
    with pytest.raises(ValueError):
        h.SendAndWait("P", -1)
    assert h.missedPolls == 0
    assert ep.written() == b""


def test_a_keepalive_whose_deferred_waits_on_another_is_not_run_twice_at_once() -> None:
    """
    A keep-alive Deferred that has its result but waits on a Deferred a callback returned
    (C{succeed(None).addCallback(lambda _: SendAndWait(...))}, a free C{DeferredLock}) is still
    running: the ticks meanwhile are skipped, and a device answering within the wait is kept.
    """
    from twisted.internet.defer import succeed

    started: list[float] = []

    def keepAlive(handler: Any) -> Deferred[None]:
        started.append(clock.seconds())

        def check(response: bytes) -> None:
            if response == b"Pwr1\r\n":
                handler.ResponseAccepted()

        d = succeed(None).addCallback(lambda _: handler.SendAndWait("P", 3, deliTag=b"\r\n"))
        return d.addCallback(check)

    clock, ep, h, rec = tcpHandler(keepAlive, DisconnectLimit=2, pollFrequency=0.5)
    h.Connect()
    clock.pump([0.5] * 4)  # the device takes 2 s to answer
    assert started == [0.5]
    assert ep.written() == b"P"
    assert h.missedPolls == 1
    ep.respond(b"Pwr1\r\n")
    assert h.ConnectionStatus == "Connected" and rec.names() == ["Connected"]
    clock.advance(0.5)
    assert started == [0.5, 2.5]


def test_a_SendAndWait_replaced_on_the_interface_is_the_one_called() -> None:
    """A wrapper set on the interface itself (tracing, a test double) sees every call."""
    seen: list[bytes] = []
    clock, ep, h, rec = tcpHandler(None)
    iface = h.Interface
    real = iface.SendAndWait

    def traced(data: bytes, timeout: float, **delimiter: Any) -> Any:
        seen.append(data)
        return real(data, timeout, **delimiter)

    iface.SendAndWait = traced
    h.Connect()
    h.SendAndWait(b"Q", 1, deliTag=b"\r\n")
    assert seen == [b"Q"]
