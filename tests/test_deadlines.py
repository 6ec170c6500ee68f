"""
SendAndWait timeouts share one timer per clock (twisted_ch.protocols.device.Deadlines): each wait
still times out at its own deadline, answered waits leave nothing behind, and closed links leave
no timer.
"""

from __future__ import annotations

from typing import Any

from helpers import assertNoResult, rig, successResultOf
from twisted.internet.task import Clock

from twisted_ch.extronlib.interface import EndpointInterface
from twisted_ch.testing import FakeEndpoint


def connected(clock: Clock) -> tuple[Any, FakeEndpoint]:
    r = rig(clock=clock, interface=lambda c, e: EndpointInterface(e, reactor=c), handler=False)
    r.interface.Connect()
    return r.interface, r.endpoint


def test_each_wait_times_out_at_its_own_deadline() -> None:
    clock = Clock()
    (a, _), (b, _), (c, ec) = connected(clock), connected(clock), connected(clock)
    ra = a.SendAndWait(b"A", 3, deliTag=b"\r\n")
    clock.advance(0.5)
    rb = b.SendAndWait(b"B", 1, deliTag=b"\r\n")
    rc = c.SendAndWait(b"C", 1, deliTag=b"\r\n")
    ec.respond(b"ok\r\n")
    assert successResultOf(rc) == b"ok\r\n"
    clock.advance(1.0 - 1e-3)
    assertNoResult(rb)
    clock.advance(1e-3)  # 1.5: B's deadline
    assert successResultOf(rb) == b""
    clock.advance(1.5 - 1e-3)
    assertNoResult(ra)
    clock.advance(1e-3)  # 3.0: A's deadline
    assert successResultOf(ra) == b""
    assert clock.getDelayedCalls() == [] or all(
        "Timer" in repr(call) or "LoopingCall" in repr(call) for call in clock.getDelayedCalls()
    )


def test_a_queued_wait_counts_its_timeout_from_when_it_is_sent() -> None:
    clock = Clock()
    iface, endpoint = connected(clock)
    first = iface.SendAndWait(b"1", 2, deliTag=b"\r\n")
    second = iface.SendAndWait(b"2", 2, deliTag=b"\r\n")
    clock.advance(1.5)
    endpoint.respond(b"one\r\n")  # the second is sent now, at 1.5
    assert successResultOf(first) == b"one\r\n" and endpoint.written() == b"12"
    clock.advance(2 - 1e-3)
    assertNoResult(second)
    clock.advance(1e-3)
    assert successResultOf(second) == b""


def test_answered_waits_share_one_timer() -> None:
    clock = Clock()
    links = [connected(clock) for _ in range(50)]
    for _ in range(20):
        for iface, endpoint in links:
            got = iface.SendAndWait(b"P", 2, deliTag=b"\r\n")
            endpoint.respond(b"Pwr1\r\n")
            assert successResultOf(got) == b"Pwr1\r\n"
        clock.advance(0.1)
        assert len(clock.getDelayedCalls()) <= 1
    clock.advance(10)
    assert clock.getDelayedCalls() == []


def test_a_closed_link_leaves_no_timer() -> None:
    clock = Clock()
    iface, endpoint = connected(clock)
    got = iface.SendAndWait(b"P", 5, deliTag=b"\r\n")
    endpoint.respond(b"Pwr1\r\n")
    assert successResultOf(got) == b"Pwr1\r\n" and len(clock.getDelayedCalls()) == 1
    iface.Disconnect()
    clock.advance(0)  # the transport reports its close on the next turn, as a reactor does
    assert clock.getDelayedCalls() == []


def test_a_lost_link_ends_its_wait_and_others_still_time_out() -> None:
    clock = Clock()
    (a, ea), (b, _) = connected(clock), connected(clock)
    ra = a.SendAndWait(b"A", 1, deliTag=b"\r\n")
    rb = b.SendAndWait(b"B", 2, deliTag=b"\r\n")
    assert ea.transport is not None
    ea.transport.deviceResets()
    clock.advance(0)
    assert successResultOf(ra) == b""
    clock.advance(2)
    assert successResultOf(rb) == b""
    assert clock.getDelayedCalls() == []
