"""
One reconnection scheduler (issue 20, "the connection lifecycle"): the same RetryPolicy keys
give the same delays for TCP, UDP, serial, SP and server handlers, through the config too
(Clock-driven, refusing endpoints).
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from twisted_ch import GetConnectionHandler
from twisted_ch._retry import FIXED, Retrier, RetryPolicy
from twisted_ch.endpoints import _strings
from twisted_ch.extronlib.device import ProcessorDevice, SPDevice
from twisted_ch.extronlib.interface import (
    EndpointInterface,
    EthernetClientInterface,
    EthernetServerInterfaceEx,
    SerialInterface,
    SPInterface,
)
from twisted_ch.service._config import parseConfig
from twisted_ch.service._services import buildHandler, retryPolicyFor
from twisted_ch.testing import FakeEndpoint

SEED = 20


class TimedEndpoint(FakeEndpoint):
    """A refusing FakeEndpoint recording the clock time of each attempt."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.refuse = True
        self.times: list[float] = []

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        self.times.append(self.clock.seconds())
        return super().connect(protocolFactory)


def policy() -> RetryPolicy:
    """The measured case: C{retryJitter = 0.5, maxRetryTime = 60}, seeded."""
    return RetryPolicy(jitter=0.5, maxRetryTime=60, random=random.Random(SEED).random)


def expectedGaps(base: float, n: int, reason: str | None) -> list[float]:
    """The first C{n} delays of L{policy} after consecutive failures with C{reason}."""
    p = policy()
    return [p.next(base, i, reason).delay for i in range(1, n + 1)]


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]


REFUSED = "ConnectionRefusedError: Connection was refused by other side: refused by FakeEndpoint."


def tcp(clock: Clock, endpoint: TimedEndpoint) -> Any:
    iface = EthernetClientInterface("127.0.0.1", 23, reactor=clock, endpoint=endpoint)
    return GetConnectionHandler(iface, None, pollFrequency=60, connectRetryTime=2)


def udp(clock: Clock, endpoint: TimedEndpoint) -> Any:
    iface = EthernetClientInterface("127.0.0.1", 5000, "UDP", reactor=clock, endpoint=endpoint)
    return GetConnectionHandler(iface, lambda h: h.Send("q"), pollFrequency=60, connectRetryTime=2)


def serial(clock: Clock, endpoint: TimedEndpoint) -> Any:
    host = ProcessorDevice("Main", ports={"COM1": "/dev/null"})
    iface = SerialInterface(host, "COM1", reactor=clock, endpoint=endpoint)
    return GetConnectionHandler(iface, lambda h: h.Send("q"), pollFrequency=60, connectRetryTime=2)


def sp(clock: Clock, endpoint: TimedEndpoint) -> Any:
    iface = SPInterface(SPDevice("SP1"), reactor=clock, endpoint=endpoint)
    return GetConnectionHandler(iface, lambda h: h.Send("q"), pollFrequency=60, connectRetryTime=2)


def generic(clock: Clock, endpoint: TimedEndpoint) -> Any:
    iface = EndpointInterface(endpoint, reactor=clock, connectionOriented=False)
    return GetConnectionHandler(iface, lambda h: h.Send("q"), pollFrequency=60, connectRetryTime=2)


KINDS: dict[str, Callable[[Clock, TimedEndpoint], Any]] = {
    "tcp": tcp,
    "udp": udp,
    "serial": serial,
    "sp": sp,
    "pipe endpoint": generic,
}


def attemptTimes(kind: str, retryPolicy: RetryPolicy | None, n: int = 5) -> list[float]:
    clock = Clock()
    endpoint = TimedEndpoint(clock)
    handler = KINDS[kind](clock, endpoint)
    if retryPolicy is not None:
        handler.retryPolicy = retryPolicy
    handler.Connect()
    while len(endpoint.times) < n:
        calls = clock.getDelayedCalls()
        assert calls, f"{kind}: no attempt pending after {endpoint.times}"
        clock.advance(min(c.getTime() for c in calls) - clock.seconds())
    return endpoint.times[:n]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_jitter_and_backoff_act_the_same_for_every_kind(kind: str) -> None:
    times = attemptTimes(kind, policy())
    assert times[0] == 0.0
    assert gaps(times) == [round(g, 6) for g in expectedGaps(2.0, 4, REFUSED)]
    assert gaps(times) != [2.0] * 4  # not the fixed interval


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_default_is_the_reference_fixed_connect_retry_time(kind: str) -> None:
    assert gaps(attemptTimes(kind, None)) == [2.0] * 4


def test_server_listen_retries_follow_the_policy_too() -> None:
    class Busy(MemoryReactorClock):
        times: list[float] = []

        def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
            self.times.append(self.seconds())
            raise error.CannotListenError(
                interface, port, OSError(errno.EADDRINUSE, "Address already in use")
            )

    clock = Busy()
    iface = EthernetServerInterfaceEx(9000, Interface="127.0.0.1", reactor=clock)
    handler = GetConnectionHandler(iface, serverTimeout=30, connectRetryTime=2)
    assert handler.retryPolicy is FIXED
    handler.retryPolicy = policy()
    handler.StartListen()
    while len(clock.times) < 5:
        clock.advance(min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds())
    assert gaps(clock.times) == [round(g, 6) for g in expectedGaps(2.0, 4, "PortUnavailable")]


@pytest.mark.parametrize(
    "endpoint",
    ["tcp:host=127.0.0.1:port=23", "udp:host=127.0.0.1:port=5000"],
)
def test_config_keys_reach_every_kind_through_buildHandler(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    fake = TimedEndpoint(clock)
    monkeypatch.setattr(_strings, "clientFromString", lambda reactor, text: fake)
    (cfg,) = parseConfig(
        {
            "device": [
                {
                    "name": "d",
                    "endpoint": endpoint,
                    "connectRetryTime": 2,
                    "retryJitter": 0.5,
                    "maxRetryTime": 60,
                    "probe": {"type": "sis", "query": "Q"},
                }
            ]
        }
    ).devices
    handler, _ = buildHandler(clock, cfg)
    assert handler.retryPolicy == retryPolicyFor(cfg)
    # the same delays as the policy gives with the handler's random source replaced
    handler.retryPolicy = policy()
    handler.Connect()
    while len(fake.times) < 5:
        clock.advance(min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds())
    assert gaps(fake.times) == [round(g, 6) for g in expectedGaps(2.0, 4, REFUSED)]


def test_retrier_counts_failures_and_resets() -> None:
    retrier = Retrier(5.0, RetryPolicy(maxRetryTime=40))
    assert retrier.next(None) == 5.0 and retrier.why is None
    assert retrier.next(None) == 10.0
    assert retrier.why == "2 failures in a row: backing off" and retrier.failures == 2
    retrier.reset()
    assert (retrier.failures, retrier.why) == (0, None)
    assert retrier.next(None) == 5.0


# --- one attempt at t=0 (a pipe link opens when asked) -----------------------------------------


@pytest.mark.parametrize("kind", ["udp", "serial", "sp", "pipe endpoint"])
def test_a_program_pipe_handler_makes_one_attempt_at_start(kind: str) -> None:
    clock = Clock()
    endpoint = TimedEndpoint(clock)
    handler = KINDS[kind](clock, endpoint)
    assert endpoint.times == [0.0]  # the interface opens (ControlScript: usable at once)
    handler.Connect()
    handler.Connect()
    assert endpoint.times == [0.0]  # Connect() on a link being kept open: no second attempt
    clock.advance(2)
    assert endpoint.times == [0.0, 2.0]


def test_an_interface_without_handler_opens_at_construction() -> None:
    clock = Clock()
    endpoint = TimedEndpoint(clock)
    endpoint.refuse = False
    iface = EthernetClientInterface("127.0.0.1", 5000, "UDP", reactor=clock, endpoint=endpoint)
    assert endpoint.times == [0.0] and iface.link.connected and iface.link.wanted


def test_the_service_opens_a_pipe_only_when_its_handler_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    fake = TimedEndpoint(clock)
    monkeypatch.setattr(_strings, "clientFromString", lambda reactor, text: fake)
    (cfg,) = parseConfig(
        {
            "device": [
                {
                    "name": "d",
                    "endpoint": "udp:host=127.0.0.1:port=5000",
                    "connectRetryTime": 2,
                    "probe": {"type": "sis", "query": "Q"},
                }
            ]
        }
    ).devices
    handler, _ = buildHandler(clock, cfg)
    clock.advance(10)
    assert fake.times == [] and not handler.wanted  # not opened before start-up pacing asks
    handler.Connect()
    assert fake.times == [10.0] and handler.wanted
    clock.advance(2.2)  # the config's default retryJitter (0.1) spreads 2 s over 1.8 to 2.2 s
    assert len(fake.times) == 2 and 11.8 <= fake.times[1] <= 12.2


def test_disconnect_then_connect_reopens_at_once() -> None:
    clock = Clock()
    endpoint = TimedEndpoint(clock)
    handler = udp(clock, endpoint)
    handler.Connect()
    clock.advance(1)
    handler.Disconnect()
    assert not handler.wanted
    handler.Connect()
    assert endpoint.times == [0.0, 1.0]
