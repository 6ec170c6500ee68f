"""
How long a connection handler waits before its next reconnection attempt.

A L{RetryPolicy} turns the handler's C{connectRetryTime}, the number of consecutive failed
attempts and the last failure's reason into a delay.  The handler's default is the reference's
fixed C{connectRetryTime}, except after an authentication or host-key failure: those back off
(doubling up to L{AUTH_MAX_RETRY_TIME}), because retrying a wrong password every few seconds trips
account lockouts and intrusion alarms, and a host key that was refused will not change by itself.

The fleet service adds jitter (C{retryJitter}, so devices dropped together do not reconnect in
lock-step) and optional exponential growth up to C{maxRetryTime}.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "AUTH_FAILURES",
    "AUTH_MAX_RETRY_TIME",
    "FIXED",
    "Retry",
    "RetryPolicy",
    "Retrier",
    "isAuthFailure",
]

#: The longest wait after repeated authentication or host-key failures (seconds).
AUTH_MAX_RETRY_TIME = 300.0

#: Failure reasons (as L{twisted_ch._link.describeFailure} names them: the exception's class
#: first) that more attempts will not fix by themselves.
AUTH_FAILURES = (
    "AuthenticationFailed",
    "UnknownHostKey",
    "HostKeyChanged",
    "HostKeyRevoked",
    "HostKeyError",
)


def isAuthFailure(reason: str | None) -> bool:
    """Whether a failure reason is an authentication or host-key failure."""
    return reason is not None and reason.startswith(AUTH_FAILURES)


@dataclass(frozen=True)
class Retry:
    """One scheduled attempt: after C{delay} seconds; C{why} says why it is not the usual delay."""

    delay: float
    why: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """
    Delays between reconnection attempts.

    @ivar jitter: each delay is spread uniformly over C{±jitter} of itself (0.1: ±10%).
    @ivar maxRetryTime: when set (and above C{connectRetryTime}), the delay doubles with each
        consecutive failure up to this; else it stays C{connectRetryTime}.
    @ivar authMaxRetryTime: the cap of the backoff after authentication or host-key failures,
        which always doubles from C{connectRetryTime}; C{None} retries them like any failure.
    @ivar random: a source of floats in [0, 1) (a seeded C{random.Random().random} in tests).
    """

    jitter: float = 0.0
    maxRetryTime: float | None = None
    authMaxRetryTime: float | None = AUTH_MAX_RETRY_TIME
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be a fraction from 0 to 1, not {self.jitter!r}")
        for name in ("maxRetryTime", "authMaxRetryTime"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")

    def next(self, connectRetryTime: float, failures: int, reason: str | None) -> Retry:
        """
        The wait before the next attempt, after C{failures} consecutive failed attempts (or
        losses) of which the last one failed with C{reason}.
        """
        delay, why = connectRetryTime, None
        failures = max(1, failures)
        if self.authMaxRetryTime is not None and isAuthFailure(reason):
            cap = max(connectRetryTime, self.authMaxRetryTime)
            delay = _grown(connectRetryTime, failures, cap)
            why = "authentication or host key refused: backing off"
        elif self.maxRetryTime is not None and self.maxRetryTime > connectRetryTime:
            delay = _grown(connectRetryTime, failures, self.maxRetryTime)
            if delay > connectRetryTime:
                why = f"{failures} failures in a row: backing off"
        if self.jitter:
            delay *= 1.0 + self.jitter * (2.0 * self.random() - 1.0)
        return Retry(delay, why)


def _grown(base: float, failures: int, cap: float) -> float:
    """C{base} doubled for each failure after the first, at most C{cap}."""
    if failures > 64:
        return cap
    return min(cap, base * 2.0 ** (failures - 1))


#: The reference's behaviour: every attempt C{connectRetryTime} after the last, except that
#: authentication and host-key failures back off.
FIXED = RetryPolicy()


class Retrier:
    """
    The delays of one lifecycle's retries (TCP, pipe and server handlers alike: the
    L{twisted_ch._connection.Connection}'s Waiting state holds the pending one), each
    C{policy.next(interval, failures, reason)} seconds after a failure or loss.

    @ivar interval: the base delay (C{connectRetryTime} or C{listenRetryTime}).
    @ivar policy: the delays (L{FIXED}: the reference's fixed interval).
    @ivar failures: failures or losses since L{reset} (the device was last up).
    @ivar why: why the pending attempt waits longer than C{interval} (a backoff), else None.
    """

    __slots__ = ("interval", "policy", "failures", "why")

    def __init__(self, interval: float = 0.0, policy: RetryPolicy = FIXED) -> None:
        self.interval = interval
        self.policy = policy
        self.failures = 0
        self.why: str | None = None

    def next(self, reason: str | None) -> float:
        """Count one failure (last failed with C{reason}); the delay before the next attempt."""
        self.failures += 1
        retry = self.policy.next(self.interval, self.failures, reason)
        self.why = retry.why
        return retry.delay

    def reset(self) -> None:
        """The device is up: the next failure is the first."""
        self.failures = 0
        self.why = None
