# -*- test-case-name: tests.test_modules,tests.test_server -*-
"""
What a handler reports to operators: a typed, frozen record per kind (L{LinkStats} for device
handlers, L{ServerStats} for server handlers), read as attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

__all__ = ["LinkStats", "ProgramLinkStats", "ProgramServerStats", "ServerStats", "statsRow"]


class _Record:
    """Field access by name too (C{stats['misses']}), for code written against the old dicts."""

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(name)
        return getattr(self, name)


@dataclass(frozen=True)
class LinkStats(_Record):
    """
    A device handler's counters.

    @ivar status: its C{ConnectionStatus}.
    @ivar since: when it last changed (reactor seconds).
    @ivar polls: keep-alive polls made.
    @ivar misses: sends since the last good answer (for a module: its own C{counter}).
    @ivar transitions: status changes.
    @ivar lastError: why the link last failed or was lost, if it did.
    @ivar reconnects: reconnection attempts (TCP handlers; pipes reopen without counting).
    @ivar nextAttempt: when the pending reconnection attempt runs (reactor seconds), else None.
    @ivar backoff: why that attempt waits longer than usual, else None.
    """

    status: str
    since: float
    polls: int
    misses: int
    transitions: int
    lastError: str | None
    reconnects: int = 0
    nextAttempt: float | None = None
    backoff: str | None = None


@dataclass(frozen=True)
class ServerStats(_Record):
    """A server handler's counters: whether it listens, on which port, its clients."""

    listening: bool
    port: int
    clients: int
    droppedIdle: int
    refused: int
    listenFailures: int
    lastFailure: str | None


@dataclass(frozen=True)
class ProgramLinkStats(_Record):
    """
    What the status page reads of a program's interface that no twisted_ch handler wraps.

    @ivar status: what the program's own handler says (else what the link says).
    @ivar since: when it last changed (reactor seconds).
    @ivar transitions: status changes.
    @ivar lastError: why the link last failed or was lost, if it did.
    @ivar link: the link's own state (C{connected}, C{closed}, ...); None for a module without
        an extronlib interface.
    @ivar handler: the class name of the program's own handler wrapping it, if one was found.
    @ivar handlerKind: C{"program"} when such a handler was found, else None.
    """

    status: str
    since: float
    transitions: int
    lastError: str | None
    link: str | None
    handler: str | None
    handlerKind: str | None


@dataclass(frozen=True)
class ProgramServerStats(_Record):
    """
    What the status page reads of a program's server interface that no twisted_ch handler wraps.

    @ivar handler: always None: no handler of twisted_ch's or the program's runs it.
    """

    listening: bool
    clients: int
    refused: int
    lastError: str | None
    handler: None = None


def statsRow(stats: object) -> dict[str, Any]:
    """A handler's stats as a dict: a record's fields, or a mapping's items (other handlers)."""
    if is_dataclass(stats) and not isinstance(stats, type):
        return asdict(stats)
    if isinstance(stats, Mapping):
        return dict(stats)
    raise TypeError(f"stats must be a record or a mapping, not {type(stats).__name__}")
