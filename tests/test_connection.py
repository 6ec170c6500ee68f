"""
The link lifecycle machine (L{twisted_ch._connection}): every state against every input, by
L{TRANSITIONS}; stop cancels what the state holds; retries follow the retrier's policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import get_args

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock

from twisted_ch._connection import (
    TRANSITIONS,
    Connection,
    Dropping,
    Input,
    Refused,
    State,
    StateName,
    Waiting,
)
from twisted_ch._retry import RetryPolicy

STATES: tuple[StateName, ...] = get_args(StateName)
INPUTS: tuple[Input, ...] = get_args(Input)


class Owner:
    """A transport owner that records what the machine asked of it."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.calls: list[str] = []
        self.attempts: list[Deferred[object]] = []
        self.machine = Connection(self.clock, self, closeGrace=2.0)
        self.machine.retrier.interval = 5.0

    def connectionAttempt(self, timeout: float | None) -> None:
        self.calls.append(f"attempt {timeout}")
        d: Deferred[object] = Deferred()
        self.attempts.append(d)
        self.machine.attempting(d)
        d.addErrback(lambda f: f.trap(CancelledError))

    def connectionClose(self, transport: object) -> None:
        self.calls.append(f"close {transport}")

    def connectionAbort(self, transport: object) -> None:
        self.calls.append(f"abort {transport}")

    def connectionRetry(self) -> None:
        self.calls.append("retry")
        self.machine.connect(self.machine.timeout)

    def connectionEntered(self, state: State) -> None:
        pass


def keep(o: Owner) -> None:
    """Wanted, and the owner's attempt (what a handler's Connect() does)."""
    o.machine.keep(3)
    o.machine.connect(3)


def _fail(o: Owner) -> None:
    o.machine.failed(o.attempts[-1], "Connection refused")


#: How to reach each (state, wanted) from a fresh machine.
SETUPS: dict[str, tuple[StateName, bool, Callable[[Owner], object]]] = {
    "idle": ("Idle", False, lambda o: None),
    "connecting wanted": ("Connecting", True, lambda o: keep(o)),
    "connecting once": ("Connecting", False, lambda o: o.machine.connect(3)),
    "up wanted": ("Up", True, lambda o: (keep(o), o.machine.made("p"))),
    "up once": ("Up", False, lambda o: (o.machine.connect(3), o.machine.made("p"))),
    "dropping wanted": (
        "Dropping",
        True,
        lambda o: (keep(o), o.machine.made("p"), o.machine.drop("silent")),
    ),
    "dropping by its owner": (
        "Dropping",
        True,
        lambda o: (keep(o), o.machine.made("p"), o.machine.drop("silent", byOwner=True)),
    ),
    "dropping stopped": (
        "Dropping",
        False,
        lambda o: (keep(o), o.machine.made("p"), o.machine.stop()),
    ),
    "waiting for a retry": (
        "Waiting",
        True,
        lambda o: (o.machine.setReconnecting(True), keep(o), _fail(o)),
    ),
    "waiting for a connect": ("Waiting", True, lambda o: (keep(o), _fail(o))),
    "stopped": ("Stopped", False, lambda o: o.machine.stop()),
}

#: Each input as the owner gives it.
APPLY: dict[Input, Callable[[Owner], object]] = {
    "connect": lambda o: o.machine.connect(7),
    "keep": lambda o: o.machine.keep(7),
    "release": lambda o: o.machine.release(),
    "made": lambda o: o.machine.made("q"),
    "failed": lambda o: o.machine.failed(o.attempts[-1] if o.attempts else Deferred(), "refused"),
    "lost": lambda o: o.machine.lost("Connection lost"),
    "drop": lambda o: o.machine.drop("silent"),
    "stop": lambda o: o.machine.stop(),
    "retry": lambda o: (
        o.clock.advance(o.machine.nextAttempt - o.clock.seconds())
        if o.machine.nextAttempt is not None
        else None
    ),
}

#: Inputs the machine reports it ignored (a stray transport event) instead of raising.
QUIET: set[Input] = {"made", "failed", "lost", "drop", "retry"}

#: (setup, input) pairs whose outcome is not the table's plain target, and what it is instead.
SPECIAL: dict[tuple[str, Input], StateName] = {
    # a keep while closing: the link connects again once the transport is gone (then Up)
    # a stray connect while closing is refused (the owner waits for the close)
    ("waiting for a connect", "retry"): "Waiting",  # no retry pending: nothing happens
    ("connecting once", "failed"): "Idle",
}


def build(setup: str) -> Owner:
    o = Owner()
    name, wanted, reach = SETUPS[setup]
    reach(o)
    assert (o.machine.state.name, o.machine.wanted) == (name, wanted), setup
    return o


def test_every_state_is_reachable_and_every_table_entry_is_a_state_and_an_input() -> None:
    assert {name for name, _, _ in SETUPS.values()} == set(STATES)
    for (state, event), targets in TRANSITIONS.items():
        assert state in STATES and event in INPUTS
        assert all(t in STATES for t in targets)
    for state in STATES:
        assert (state, "stop") in TRANSITIONS, f"{state} cannot be stopped"


@pytest.mark.parametrize("event", INPUTS)
@pytest.mark.parametrize("setup", list(SETUPS))
def test_each_input_in_each_state_goes_where_the_table_says(setup: str, event: Input) -> None:
    o = build(setup)
    before = (o.machine.state, list(o.calls), list(o.clock.getDelayedCalls()))
    state = o.machine.state.name
    targets = TRANSITIONS.get((state, event))
    if targets is None:
        if event in QUIET:
            APPLY[event](o)
        else:
            with pytest.raises(Refused):
                APPLY[event](o)
        # refused before any side effect
        assert (o.machine.state, o.calls, o.clock.getDelayedCalls()) == before
        return
    APPLY[event](o)
    wanted = o.machine.wanted
    expected = SPECIAL.get((setup, event), targets[0] if wanted else targets[1])
    if event == "retry" and "retry" in o.calls[len(before[1]) :]:
        expected = "Connecting"  # the retry's owner connected at once
    assert o.machine.state.name == expected, (setup, event)


@pytest.mark.parametrize("setup", list(SETUPS))
def test_stop_cancels_what_the_state_holds_and_leaves_no_timer(setup: str) -> None:
    o = build(setup)
    state = o.machine.state
    done = o.machine.stop()
    assert not o.machine.wanted
    if isinstance(state, Dropping) or state.name == "Up":
        assert isinstance(o.machine.state, Dropping)
        assert done is not None and not done.called
        fired: list[object] = []
        done.addCallback(fired.append)
        closes, again = o.machine.lost("Connection closed")
        assert not again
        for d in closes:
            d.callback(None)
        assert fired == [None]
    else:
        assert done is None
    assert o.machine.state.name == "Stopped"
    assert o.clock.getDelayedCalls() == []
    if state.name == "Connecting":
        assert o.attempts[-1].called  # the running attempt was cancelled


def test_a_close_that_does_not_complete_is_aborted_after_the_grace() -> None:
    o = build("up wanted")
    o.machine.stop()
    assert o.calls[-1] == "close p"
    o.clock.advance(2.0)
    assert o.calls[-1] == "abort p"
    o.machine.lost("Connection lost")
    assert o.machine.state.name == "Stopped"
    assert o.clock.getDelayedCalls() == []


def test_a_drop_by_its_owner_closes_nothing_until_the_next_drop_or_stop() -> None:
    # a module's Disconnect() runs first (it may still send): no close, no timer yet
    o = build("dropping by its owner")
    state = o.machine.state
    assert isinstance(state, Dropping) and not state.closing
    assert o.calls[-1] == "attempt 3" and o.clock.getDelayedCalls() == []
    o.machine.drop()  # its Disconnect left it open: the machine closes it
    state = o.machine.state
    assert isinstance(state, Dropping) and state.closing and state.wanted
    assert o.calls[-1] == "close p" and len(o.clock.getDelayedCalls()) == 1
    o.machine.lost("Connection closed")
    assert o.machine.state.name == "Waiting" and o.clock.getDelayedCalls() == []


def test_a_keep_while_closing_connects_again_once_the_transport_is_gone() -> None:
    o = build("dropping stopped")
    o.machine.keep(4)
    closes, again = o.machine.lost("Connection closed")
    assert again and len(closes) == 1  # the stop's
    assert o.machine.state.name == "Waiting" and o.machine.wanted
    o.machine.connect(4)  # the owner connects, once its observers heard of the loss
    assert o.machine.state.name == "Connecting" and o.calls[-1] == "attempt 4"
    assert o.clock.getDelayedCalls() == []


def test_a_wanted_link_retries_by_its_policy_and_a_connect_resets_the_count() -> None:
    o = Owner()
    o.machine.retrier.policy = RetryPolicy(maxRetryTime=40.0)
    o.machine.setReconnecting(True)
    keep(o)
    gaps = []
    for _ in range(5):
        _fail(o)
        assert isinstance(o.machine.state, Waiting)
        when = o.machine.nextAttempt
        assert when is not None
        gaps.append(when - o.clock.seconds())
        o.clock.advance(gaps[-1])
    assert gaps == [5.0, 10.0, 20.0, 40.0, 40.0]
    o.machine.made("p")
    assert o.machine.retrier.failures == 0


def test_jitter_spreads_the_retries() -> None:
    o = Owner()
    rng = random.Random(4)
    o.machine.retrier.policy = RetryPolicy(jitter=0.5, random=rng.random)
    o.machine.setReconnecting(True)
    o.machine.keep(None)
    o.machine.connect(None)
    gaps = []
    for _ in range(4):
        _fail(o)
        when = o.machine.nextAttempt
        assert when is not None
        gaps.append(when - o.clock.seconds())
        o.clock.advance(gaps[-1])
    assert len(set(gaps)) == 4 and all(2.5 <= g <= 7.5 for g in gaps)


def test_reconnecting_off_cancels_the_pending_retry_and_the_link_stays_wanted() -> None:
    o = build("waiting for a retry")
    o.machine.setReconnecting(False)
    assert o.clock.getDelayedCalls() == []
    assert o.machine.wanted and o.machine.state.name == "Waiting"


def test_an_attempt_not_kept_ends_idle_without_a_retry() -> None:
    o = Owner()
    o.machine.setReconnecting(True)
    o.machine.connect(None)
    _fail(o)
    assert o.machine.state.name == "Idle"
    assert o.clock.getDelayedCalls() == []


def test_a_failure_of_a_cancelled_attempt_is_not_the_current_one() -> None:
    o = build("connecting wanted")
    attempt = o.attempts[-1]
    o.machine.stop()
    assert not o.machine.failed(attempt, "Cancelled")
    assert o.machine.state.name == "Stopped"


def test_keep_while_a_retry_is_pending_cancels_it_for_the_owners_connect() -> None:
    o = build("waiting for a retry")
    o.machine.keep(3)
    assert o.clock.getDelayedCalls() == [] and o.machine.state.name == "Waiting"
    assert o.machine.wanted


def test_a_retime_waits_the_new_delay_from_now() -> None:
    o = build("waiting for a retry")
    o.clock.advance(3)
    o.machine.retrier.interval = 10.0
    o.machine.retime()
    assert o.machine.nextAttempt == 13.0
    assert len(o.clock.getDelayedCalls()) == 1
