"""
Shared pytest configuration: real-I/O tests run on the global reactor via pytest-twisted.

Fixtures shared by the test modules:

loggedEvents        every event logged while a test runs (a helpers.LoggedEvents)
loggedFailures      the failures logged while a test runs
quiet_reactor       the same list, and the test fails if anything logged a failure or it left
                    new readers, writers or DelayedCalls on the reactor (selectables of the
                    modules in C{quiet_reactor_ignores} are not counted)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure


@pytest.fixture
def loggedEvents() -> Iterator[Any]:
    """Every event logged while the test runs."""
    from helpers import LoggedEvents  # here: it imports the reactor pytest-twisted installs

    with LoggedEvents() as events:
        yield events


@pytest.fixture
def loggedFailures() -> Iterator[list[Failure]]:
    """Failures logged while the test runs."""
    failures: list[Failure] = []

    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            failures.append(event["log_failure"])

    globalLogPublisher.addObserver(observe)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observe)


@pytest.fixture
def quiet_reactor_ignores() -> frozenset[str]:
    """Modules whose selectables quiet_reactor leaves out: the reactor's own signal wakers."""
    return frozenset({"twisted.internet._signals"})


@pytest.fixture
def quiet_reactor(
    loggedFailures: list[Failure], quiet_reactor_ignores: frozenset[str]
) -> Iterator[list[Failure]]:
    """Fail a test that logs a failure or leaves new readers, writers or DelayedCalls."""
    from twisted.internet import reactor

    def ours(selectables: set[Any]) -> list[Any]:
        return [s for s in selectables if type(s).__module__ not in quiet_reactor_ignores]

    readers, writers = set(reactor.getReaders()), set(reactor.getWriters())  # type: ignore[attr-defined]
    calls = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]
    yield loggedFailures
    assert loggedFailures == []
    assert ours(set(reactor.getReaders()) - readers) == []  # type: ignore[attr-defined]
    assert ours(set(reactor.getWriters()) - writers) == []  # type: ignore[attr-defined]
    new = [c for c in reactor.getDelayedCalls() if c not in calls and c.active()]  # type: ignore[attr-defined]
    assert new == []


# the real-browser fixture (tests/browser.py): headless Chromium via selenium
from browser import browser  # noqa: E402,F401
