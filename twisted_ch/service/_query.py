# -*- test-case-name: tests.test_status_paging -*-
"""
What a request to the status page asks to see (L{StatusQuery}): C{?room=}, C{?tag=} choose the
entries the document (and its summary) covers; C{?state=}, C{?health=}, C{?name=} choose the rows
listed; C{?limit=} and C{?offset=} page them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["QueryError", "StatusQuery", "STATUS_MAX_LIMIT"]

#: The largest C{?limit=} (and C{?offset=}) accepted.
STATUS_MAX_LIMIT = 1_000_000
#: Characters that make C{?name=} a glob rather than a substring.
_GLOB = re.compile(r"[*?\[]")


class QueryError(ValueError):
    """A query argument that cannot be used; the message names it."""


def _texts(args: Mapping[bytes, Sequence[bytes]], key: bytes) -> list[str]:
    """Every value of C{key}, each split at commas, stripped, empty ones left out."""
    found: list[str] = []
    for value in args.get(key, ()):
        for part in value.decode("utf-8", "replace").split(","):
            part = part.strip()
            if part:
                found.append(part)
    return found


def _count(args: Mapping[bytes, Sequence[bytes]], key: bytes) -> int | None:
    values = args.get(key)
    if not values or not values[-1].strip():
        return None
    text = values[-1].decode("utf-8", "replace").strip()
    if not text.isdigit() or int(text) > STATUS_MAX_LIMIT:
        raise QueryError(
            f"?{key.decode()}= must be a whole number from 0 to {STATUS_MAX_LIMIT}, not {text!r}"
        )
    return int(text)


@dataclass(frozen=True)
class StatusQuery:
    """
    A status page request's filters.

    @ivar room: only the entries in this room (the summary covers them only).
    @ivar tag: only the entries with this tag (likewise).
    @ivar states: rows listed only in one of these states (lower case; C{paused}: a device paused
        for maintenance, whatever its connection state); empty: any.
    @ivar healths: rows listed only at one of these health levels (lower case); empty: any.
    @ivar name: rows listed only when their name matches: a glob (C{*}, C{?}, C{[...]}) matched
        against the whole name, else a substring; both ignore case.
    @ivar limit: at most this many devices listed (None: all), after C{offset} matching ones.
    """

    room: str | None = None
    tag: str | None = None
    states: frozenset[str] = frozenset()
    healths: frozenset[str] = frozenset()
    name: str | None = None
    limit: int | None = None
    offset: int = 0

    @classmethod
    def fromArgs(cls, args: Mapping[bytes, Sequence[bytes]] | None) -> StatusQuery:
        """The query of a request's arguments (C{request.args}); L{QueryError} if one is bad."""
        args = args or {}
        room = args.get(b"room")
        tag = args.get(b"tag")
        name = args.get(b"name")
        nameText = name[-1].decode("utf-8", "replace").strip() if name else ""
        return cls(
            room=room[-1].decode("utf-8", "replace") if room else None,
            tag=tag[-1].decode("utf-8", "replace") if tag else None,
            states=frozenset(s.lower() for s in _texts(args, b"state")),
            healths=frozenset(h.lower() for h in _texts(args, b"health")),
            name=nameText or None,
            limit=_count(args, b"limit"),
            offset=_count(args, b"offset") or 0,
        )

    def covers(self, entry: Any) -> bool:
        """Whether C{entry} (an L{Entry}) is in the document: its room and tag."""
        if self.room is not None and entry.room != self.room:
            return False
        return self.tag is None or self.tag in entry.tags

    def namesMatch(self, name: str) -> bool:
        """Whether a row named C{name} passes C{?name=}."""
        wanted = self.name
        if wanted is None:
            return True
        if _GLOB.search(wanted):
            return fnmatch.fnmatchcase(name.lower(), wanted.lower())
        return wanted.lower() in name.lower()

    def lists(self, row: Mapping[str, object]) -> bool:
        """Whether C{row} (a status row) passes C{?state=}, C{?health=} and C{?name=}."""
        if self.states:
            state = "paused" if row.get("paused") else str(row.get("state", "")).lower()
            if state not in self.states:
                return False
        if self.healths and str(row.get("health", "")).lower() not in self.healths:
            return False
        return self.namesMatch(str(row.get("name", "")))

    @property
    def page(self) -> bool:
        """Whether only a page of the matching devices is asked for."""
        return self.limit is not None or self.offset > 0

    def inPage(self, index: int) -> bool:
        """Whether the C{index}th matching device (from 0) is listed."""
        if index < self.offset:
            return False
        return self.limit is None or index < self.offset + self.limit

    def nextOffset(self, matched: int) -> int | None:
        """The C{?offset=} of the next page when C{matched} devices match (None: no more)."""
        if self.limit is None:
            return None
        end = self.offset + self.limit
        return end if end < matched else None
