"""
Reconnection delays: jitter and backoff for the fleet, the reference's fixed connectRetryTime
for programs, and authentication / host-key failures that back off everywhere (Clock-driven).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import error
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch._retry import AUTH_MAX_RETRY_TIME, FIXED, RetryPolicy, isAuthFailure
from twisted_ch.endpoints._ssh_errors import AuthenticationFailed
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.service._config import DeviceConfig, parseConfig
from twisted_ch.service._services import retryPolicyFor
from twisted_ch.testing import FakeEndpoint


class TimedEndpoint(FakeEndpoint):
    """A FakeEndpoint recording the clock time of each attempt; it can fail with any error."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.times: list[float] = []
        self.failWith: Exception | None = None

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        self.times.append(self.clock.seconds())
        if self.failWith is not None:
            d: Deferred[Any] = fail(self.failWith)
            self.attempts.append(d)
            return d
        return super().connect(protocolFactory)


def handlerOn(clock: Clock, connectRetryTime: float = 5.0) -> tuple[Any, TimedEndpoint]:
    endpoint = TimedEndpoint(clock)
    iface = EthernetClientInterface("127.0.0.1", 23, reactor=clock, endpoint=endpoint)
    # no keep-alive: Connected when the link opens (nothing to answer)
    handler = GetConnectionHandler(iface, None, pollFrequency=60, connectRetryTime=connectRetryTime)
    return handler, endpoint


def maxInWindow(times: list[float], window: float) -> int:
    """The most attempts within any C{window} seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def dropAll(n: int, policy: Any) -> list[float]:
    """N connected handlers on one Clock, all dropped at once; the times of their next attempt."""
    clock = Clock()
    clock.advance(1000.0)
    pairs = [handlerOn(clock) for _ in range(n)]
    for handler, _ in pairs:
        if policy is not None:
            handler.retryPolicy = policy
        handler.Connect()
    assert all(h.ConnectionStatus == "Connected" for h, _ in pairs)
    for _, endpoint in pairs:
        endpoint.times.clear()
        endpoint.refuse = True
        assert endpoint.transport is not None
        endpoint.transport.deviceResets()
    clock.advance(0)  # the losses arrive: each handler schedules its next attempt
    times = [h.stats()["nextAttempt"] for h, _ in pairs]
    # Clock.advance runs every call due by the end of the step at that end: step finely
    for _ in range(700):
        clock.advance(0.01)
    assert sorted(t for _, e in pairs for t in e.times[:1]) == pytest.approx(
        sorted(times), abs=0.011
    )
    for handler, _ in pairs:
        handler.Disconnect()
    assert [c for c in clock.getDelayedCalls() if c.active()] == []
    return times


def test_1000_devices_dropped_at_once_do_not_retry_in_the_same_10_ms() -> None:
    cfg = DeviceConfig("d", "tcp:host=127.0.0.1:port=23")  # the fleet service's defaults
    assert cfg.retryJitter == 0.1
    times = dropAll(1000, retryPolicyFor(cfg, random.Random(13).random))
    assert maxInWindow(times, 0.010) <= 30, maxInWindow(times, 0.010)
    # spread over connectRetryTime ± 10%
    assert 1004.4 <= min(times) and max(times) <= 1005.6
    assert max(times) - min(times) > 0.9


def test_without_jitter_they_all_retry_together() -> None:
    """The reference's fixed connectRetryTime (what programs get): the lock-step jitter fixes."""
    times = dropAll(200, None)
    assert set(times) == {1005.0}


def test_programs_keep_the_fixed_connect_retry_time() -> None:
    clock = Clock()
    handler, endpoint = handlerOn(clock, connectRetryTime=2.0)
    assert handler.retryPolicy is FIXED
    endpoint.refuse = True
    handler.Connect()
    clock.pump([0.5] * 40)
    gaps = {round(b - a, 6) for a, b in zip(endpoint.times, endpoint.times[1:], strict=False)}
    assert gaps == {2.0}
    handler.Disconnect()


def test_backoff_doubles_to_max_retry_time_and_resets_once_connected() -> None:
    clock = Clock()
    handler, endpoint = handlerOn(clock, connectRetryTime=1.0)
    handler.retryPolicy = RetryPolicy(maxRetryTime=8.0)
    endpoint.refuse = True
    handler.Connect()
    clock.pump([0.25] * 160)
    gaps = [round(b - a, 6) for a, b in zip(endpoint.times, endpoint.times[1:], strict=False)]
    assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert handler.stats()["backoff"] and "backing off" in str(handler.stats()["backoff"])
    endpoint.refuse = False
    clock.advance(8.0)
    assert handler.ConnectionStatus == "Connected"
    assert handler.failedAttempts == 0 and handler.stats()["backoff"] is None
    endpoint.times.clear()
    endpoint.refuse = True
    assert endpoint.transport is not None
    endpoint.transport.deviceResets()
    clock.advance(0)
    clock.advance(1.0)
    assert len(endpoint.times) == 1  # the first retry after a good spell is at connectRetryTime
    handler.Disconnect()


@pytest.mark.parametrize("policy", [FIXED, RetryPolicy(jitter=0.1)], ids=["program", "fleet"])
def test_authentication_failures_back_off_to_minutes_and_say_so(policy: RetryPolicy) -> None:
    clock = Clock()
    handler, endpoint = handlerOn(clock, connectRetryTime=5.0)
    handler.retryPolicy = policy
    endpoint.failWith = AuthenticationFailed("admin", "127.0.0.1", 22, ["password"], ["publickey"])
    handler.Connect()
    clock.pump([1.0] * 3600)
    # 720 attempts an hour at a fixed 5 s; backing off to 5 minutes leaves a handful
    assert 10 <= len(endpoint.times) <= 20, len(endpoint.times)
    gaps = [b - a for a, b in zip(endpoint.times, endpoint.times[1:], strict=False)]
    assert max(gaps) <= AUTH_MAX_RETRY_TIME * 1.1 + 1
    assert max(gaps) >= AUTH_MAX_RETRY_TIME * 0.9 - 1
    stats = handler.stats()
    assert "authentication or host key refused" in str(stats["backoff"])
    assert str(stats["lastError"]).startswith("AuthenticationFailed")
    assert isinstance(stats["nextAttempt"], float) and stats["nextAttempt"] > clock.seconds()
    handler.Disconnect()
    assert handler.stats()["nextAttempt"] is None


def test_auth_failure_names() -> None:
    assert isAuthFailure("UnknownHostKey: host key for 127.0.0.1 port 22 is not known")
    assert isAuthFailure("HostKeyChanged: HOST KEY CHANGED for ...")
    assert not isAuthFailure("Connection refused")
    assert not isAuthFailure(None)


def test_policy_bounds() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="maxRetryTime"):
        RetryPolicy(maxRetryTime=0)
    rng = random.Random(1)
    policy = RetryPolicy(jitter=0.5, random=rng.random)
    delays = [policy.next(2.0, 1, "Connection refused").delay for _ in range(2000)]
    assert 1.0 <= min(delays) < 1.1 and 2.9 < max(delays) <= 3.0


def test_config_keys() -> None:
    base = {"name": "d", "endpoint": "tcp:host=127.0.0.1:port=23", "connectRetryTime": 2}
    (device,) = parseConfig({"device": [base]}).devices
    assert (device.retryJitter, device.maxRetryTime) == (0.1, None)
    (device,) = parseConfig({"device": [{**base, "retryJitter": 0, "maxRetryTime": 120}]}).devices
    assert (device.retryJitter, device.maxRetryTime) == (0.0, 120.0)
    for bad, message in [
        ({"retryJitter": 2}, r"device\[0\]\.retryJitter: expected a fraction from 0 to 1"),
        ({"retryJitter": "lots"}, r"device\[0\]\.retryJitter"),
        ({"maxRetryTime": 1}, r"device\[0\]\.maxRetryTime: expected at least connectRetryTime"),
    ]:
        with pytest.raises(ValueError, match=message):
            parseConfig({"device": [{**base, **bad}]})


def test_refused_error_is_not_auth() -> None:
    policy = RetryPolicy()
    assert policy.next(5.0, 30, "Connection refused").delay == 5.0
    assert policy.next(5.0, 30, "AuthenticationFailed: x").delay == AUTH_MAX_RETRY_TIME
    assert error.ConnectionRefusedError  # the reason text comes from describeFailure


# against a real (in-process) SSH server: the failures as the SSH endpoint reports them


@pytest.mark.parametrize("failure", ["password", "host-key"])
@pytest_twisted.ensureDeferred
async def test_ssh_login_and_host_key_failures_back_off(tmp_path: Path, failure: str) -> None:
    from twisted.internet import reactor

    from twisted_ch.testing import DeviceServer
    from twisted_ch.testing._ssh import SSHTestServer

    server = SSHTestServer(reactor, DeviceServer(reactor, {}), users={"admin": "right"})
    server.start()
    knownHosts = tmp_path / "known_hosts"
    knownHosts.write_text(server.knownHostsLine() if failure == "password" else "")
    iface = EthernetClientInterface(
        "127.0.0.1",
        server.port,
        Protocol="SSH",
        Credentials=("admin", "wrong" if failure == "password" else "right"),
        knownHosts=str(knownHosts),
    )
    handler = GetConnectionHandler(iface, lambda h: None, connectRetryTime=0.05)
    attempts: list[float] = []
    done: Deferred[None] = Deferred()

    def failed(h: Any, reason: str) -> None:
        attempts.append(reactor.seconds())
        if len(attempts) == 5 and not done.called:
            reactor.callLater(0, done.callback, None)  # once the next attempt is scheduled

    handler.ConnectFailed = failed
    try:
        handler.Connect()
        await done.addTimeout(20, reactor)
        stats = handler.stats()
        assert isAuthFailure(str(stats["lastError"])), stats
        assert "backing off" in str(stats["backoff"])
        # waits of 0.05, 0.1, 0.2, 0.4 s, then 0.8 s before the next attempt
        wait = float(stats["nextAttempt"]) - reactor.seconds()  # type: ignore[arg-type]
        assert 0.5 < wait <= 0.8, wait
        gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
        assert gaps[-1] >= 0.4, gaps
    finally:
        await handler.Disconnect()
        await server.stop()
