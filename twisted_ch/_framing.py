"""
SendAndWait's response conditions as a pure matcher: fed bytes, it says when a response is complete.

Nothing here does I/O, so every condition can be tested exhaustively.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the parser behind re (Python 3.11+): private, so its absence only costs the analysis
    import re._constants as _sre  # type: ignore[import-not-found]
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    _sre = _sre_parse = None

#: Default bound on the bytes one SendAndWait may hold while waiting for its condition.
DEFAULT_MAX_RESPONSE = 64 * 1024

_CONDITIONS = ("deliLen", "deliTag", "deliRex")

#: conditions already validated, by their keywords (with the values' types: True is not 1)
_validated: dict[tuple[Any, ...], tuple[int | None, bytes | None, re.Pattern[bytes] | None]] = {}
_VALIDATED_MAX = 512


def toBytes(data: object, what: str = "data") -> bytes:
    """
    Convert ControlScript-style data (bytes, bytearray, memoryview or str) to bytes.

    Strings are encoded as ISO-8859-1, so every code point below 256 maps to one byte, as
    ControlScript does.  Anything else raises L{TypeError}.
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        try:
            return data.encode("latin-1")
        except UnicodeEncodeError as e:
            raise ValueError(
                f"{what} contains characters that are not single bytes "
                f"(position {e.start}: {data[e.start]!r}); pass bytes instead"
            ) from None
    raise TypeError(f"{what} must be bytes or str, not {type(data).__name__}")


class _Unsafe(Exception):
    """The pattern uses something L{_RexPlan} does not analyse: search everything every time."""


_ALL = frozenset(range(256))


def _classOf(regex: bytes) -> frozenset[int]:
    compiled = re.compile(regex)
    return frozenset(b for b in range(256) if compiled.fullmatch(bytes([b])))


if _sre is not None:
    _CATEGORIES = {
        _sre.CATEGORY_DIGIT: _classOf(rb"\d"),
        _sre.CATEGORY_NOT_DIGIT: _classOf(rb"\D"),
        _sre.CATEGORY_SPACE: _classOf(rb"\s"),
        _sre.CATEGORY_NOT_SPACE: _classOf(rb"\S"),
        _sre.CATEGORY_WORD: _classOf(rb"\w"),
        _sre.CATEGORY_NOT_WORD: _classOf(rb"\W"),
    }
    _REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
    #: zero-width assertions that look only at bytes before the position
    _BACKWARD_AT = (_sre.AT_BEGINNING, _sre.AT_BEGINNING_LINE, _sre.AT_BEGINNING_STRING)


def _inSet(items: list[tuple[Any, Any]]) -> frozenset[int]:
    chosen: set[int] = set()
    negate = False
    for op, av in items:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            chosen.add(av)
        elif op is _sre.RANGE:
            chosen.update(range(av[0], av[1] + 1))
        elif op is _sre.CATEGORY and av in _CATEGORIES:
            chosen |= _CATEGORIES[av]
        else:
            raise _Unsafe(op)
    return _ALL - chosen if negate else frozenset(chosen)


def _sequence(items: Any) -> tuple[frozenset[int], frozenset[int], bool]:
    """(bytes it can consume, bytes its match can end with, whether it can match empty)."""
    consumed: frozenset[int] = frozenset()
    last: frozenset[int] = frozenset()
    nullable = True
    for item in items:
        c, e, n = _item(*item)
        consumed |= c
        last = (last | e) if n else e
        nullable = nullable and n
    return consumed, last, nullable


def _item(op: Any, av: Any) -> tuple[frozenset[int], frozenset[int], bool]:
    if op is _sre.LITERAL:
        return frozenset((av,)), frozenset((av,)), False
    if op is _sre.NOT_LITERAL:
        one = _ALL - {av}
        return one, one, False
    if op is _sre.ANY:  # with or without DOTALL: a superset is safe
        return _ALL, _ALL, False
    if op is _sre.IN:
        one = _inSet(av)
        return one, one, False
    if op is _sre.AT:
        if av in _BACKWARD_AT:
            return frozenset(), frozenset(), True
        raise _Unsafe(av)  # $, \Z, \b, \B look at the bytes after the position
    if op in _REPEATS:
        low, high, sub = av
        if high == 0:
            return frozenset(), frozenset(), True
        c, e, n = _sequence(sub)
        return c, e, n or low == 0
    if op is _sre.SUBPATTERN:
        _, addFlags, delFlags, sub = av
        if (addFlags | delFlags) & (re.IGNORECASE | re.LOCALE):
            raise _Unsafe(op)
        return _sequence(sub)
    if op is _sre.ATOMIC_GROUP:
        return _sequence(av)
    if op is _sre.BRANCH:
        consumed: frozenset[int] = frozenset()
        last: frozenset[int] = frozenset()
        nullable = False
        for branch in av[1]:
            c, e, n = _sequence(branch)
            consumed, last, nullable = consumed | c, last | e, nullable or n
        return consumed, last, nullable
    if op in (_sre.ASSERT, _sre.ASSERT_NOT) and av[0] < 0:  # lookbehind: reads earlier bytes
        return frozenset(), frozenset(), True
    raise _Unsafe(op)  # lookahead, back-references, conditionals: not analysed


class _RexPlan:
    """
    Where a held buffer must be searched again for a C{deliRex} once new bytes arrived.

    Only for patterns without a zero-width assertion that looks ahead (C{$}, C{\\Z}, C{\\b},
    C{\\B}, lookahead), without back-references, conditionals, IGNORECASE or LOCALE, and that
    cannot match empty: for them, when the held bytes had no match, every match now ends in
    the new bytes, so:
      - its last byte is one of L{last}: new bytes with none of them cannot complete a match;
      - with a maximum width L{width}, it starts at most C{width - 1} bytes before them;
      - with a L{terminator} (the pattern ends with this literal byte and nothing before it can
        consume it), it starts after the last terminator held before them.
    A search from the latest of those points finds the same (leftmost) match as a search of the
    whole buffer.
    """

    __slots__ = ("last", "lastOne", "notLast", "width", "terminator")

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        if pattern.flags & (re.IGNORECASE | re.LOCALE):
            raise _Unsafe("flags")
        tree = _sre_parse.parse(pattern.pattern, pattern.flags)
        items = list(tree)
        consumed, last, nullable = _sequence(items)
        if nullable or not last:
            raise _Unsafe("can match empty")
        self.last = last
        self.lastOne = bytes(last) if len(last) == 1 else None
        self.notLast = bytes(sorted(_ALL - last))
        high = tree.getwidth()[1]
        self.width: int | None = high if high <= DEFAULT_MAX_RESPONSE * 16 else None
        self.terminator: int | None = None
        if items and items[-1][0] is _sre.LITERAL:
            before, _, _ = _sequence(items[:-1])
            if items[-1][1] not in before:
                self.terminator = items[-1][1]

    def canEnd(self, data: bytes) -> bool:
        """Whether C{data} holds a byte a match can end with."""
        if self.lastOne is not None:
            return self.lastOne in data
        return len(data.translate(None, self.notLast)) > 0


_plans: dict[re.Pattern[bytes], _RexPlan | None] = {}


def _planOf(pattern: re.Pattern[bytes]) -> _RexPlan | None:
    """The (cached) L{_RexPlan} of C{pattern}, or None to search the whole buffer every time."""
    try:
        return _plans[pattern]
    except KeyError:
        pass
    try:
        plan: _RexPlan | None = _RexPlan(pattern) if _sre_parse is not None else None
    except (_Unsafe, re.error, RecursionError, TypeError, AttributeError):
        plan = None
    if len(_plans) >= _VALIDATED_MAX:
        _plans.clear()
    _plans[pattern] = plan
    return plan


class ResponseMatcher:
    """
    Accumulates a response until its condition holds.

    At most one of C{deliLen} (exact length), C{deliTag} (the response ends with these bytes) or
    C{deliRex} (a compiled bytes regular expression matches) may be given; with none, everything
    received before the timeout is the response.  The buffer never exceeds C{maxResponse} bytes:
    when a device floods bytes that never satisfy the condition, the oldest bytes are dropped.
    """

    def __init__(
        self,
        deliLen: int | None = None,
        deliTag: bytes | None = None,
        deliRex: re.Pattern[bytes] | None = None,
        maxResponse: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        self.deliLen = deliLen
        self.deliTag = deliTag
        self.deliRex = deliRex
        self.maxResponse = maxResponse
        self._buffer = bytearray()
        self.dropped = 0
        #: bytes searched so far (each search counts the bytes from its start to the end)
        self.scanned = 0
        self._plan = _planOf(deliRex) if deliRex is not None else None
        #: buffer index of the last terminator byte held (see L{_RexPlan.terminator}), or -1
        self._lastTerminator = -1

    @classmethod
    def fromKeywords(
        cls, delimiter: dict[str, Any], maxResponse: int = DEFAULT_MAX_RESPONSE
    ) -> ResponseMatcher:
        """Validate SendAndWait's C{**delimiter} keywords and build a matcher from them."""
        # a keep-alive passes the same condition on every poll: validate it once
        key: tuple[Any, ...] | None
        if len(delimiter) == 1:  # the usual case: one condition
            ((name, value),) = delimiter.items()
            key = (maxResponse, name, type(value), value)
        else:
            key = (maxResponse, *((k, type(v), v) for k, v in delimiter.items()))
        try:
            condition = _validated.get(key)
        except TypeError:  # an unhashable value: validate it (and report it) every time
            key, condition = None, None
        if condition is None:
            condition = cls._validate(delimiter, maxResponse)
            if key is not None:
                if len(_validated) >= _VALIDATED_MAX:
                    _validated.clear()
                _validated[key] = condition
        return cls(*condition, maxResponse)

    @staticmethod
    def _validate(
        delimiter: dict[str, Any], maxResponse: int
    ) -> tuple[int | None, bytes | None, re.Pattern[bytes] | None]:
        unknown = sorted(set(delimiter) - set(_CONDITIONS))
        if unknown:
            raise TypeError(
                f"unknown SendAndWait condition {', '.join(unknown)}; "
                f"use one of deliLen, deliTag or deliRex"
            )
        given = [k for k in _CONDITIONS if delimiter.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"SendAndWait takes at most one condition, got {', '.join(given)}")
        deliLen = delimiter.get("deliLen")
        deliTag = delimiter.get("deliTag")
        deliRex = delimiter.get("deliRex")
        if deliLen is not None:
            if isinstance(deliLen, bool) or not isinstance(deliLen, int):
                raise TypeError(f"deliLen must be an int, not {type(deliLen).__name__}")
            if deliLen <= 0:
                raise ValueError(f"deliLen must be positive, got {deliLen}")
            if deliLen > maxResponse:
                raise ValueError(f"deliLen {deliLen} exceeds the response limit of {maxResponse}")
        if deliTag is not None:
            deliTag = toBytes(deliTag, "deliTag")
            if not deliTag:
                raise ValueError("deliTag must not be empty")
        if deliRex is not None:
            if isinstance(deliRex, str | bytes):
                try:
                    deliRex = re.compile(toBytes(deliRex, "deliRex"))
                except re.error as e:
                    raise ValueError(f"deliRex is not a valid regular expression: {e}") from None
            elif not isinstance(deliRex, re.Pattern):
                raise TypeError(
                    f"deliRex must be a compiled regular expression, not {type(deliRex).__name__}"
                )
            elif isinstance(deliRex.pattern, str):
                deliRex = re.compile(deliRex.pattern.encode("latin-1"), deliRex.flags & ~re.UNICODE)
        return deliLen, deliTag, deliRex

    @property
    def hasCondition(self) -> bool:
        """Whether a condition ends the wait early."""
        return self.deliLen is not None or self.deliTag is not None or self.deliRex is not None

    def feed(self, data: bytes) -> tuple[bytes, bytes] | None:
        """
        Add received bytes.

        Each search covers only what the new bytes can affect (the tag's length before them;
        for C{deliRex} see L{_RexPlan}), so a response trickled byte by byte costs time linear
        in its length.

        @return: C{(response, leftover)} once the condition holds (C{leftover} are bytes that came
            after the response), else L{None}.
        """
        if not self._buffer:  # the usual case: the whole response in one read, nothing held
            tag = self.deliTag
            if tag is not None and self.deliLen is None:  # (L{_match}, inline)
                self.scanned += len(data)
                at = data.find(tag)
                if at >= 0:
                    at += len(tag)
                    return (data, b"") if at == len(data) else (data[:at], data[at:])
                self._buffer += data
                self._held(0, data)
                return None
            found = self._match(data, 0, data)
            if found is not None:
                return (data, b"") if found == len(data) else (data[:found], data[found:])
            self._buffer += data
            self._held(0, data)
            return None
        held = len(self._buffer)
        self._buffer += data
        found = self._match(self._buffer, held, data)
        if found is None:
            self._held(held, data)
            return None
        buf = bytes(self._buffer)
        self._buffer.clear()
        self._lastTerminator = -1
        return buf[:found], buf[found:]

    def _match(self, buf: bytes | bytearray, held: int, data: bytes) -> int | None:
        """Where the response in C{buf} ends; its first C{held} bytes were searched already."""
        if self.deliLen is not None:
            return self.deliLen if len(buf) >= self.deliLen else None
        if self.deliTag is not None:
            start = max(0, held - len(self.deliTag) + 1)
            self.scanned += len(buf) - start
            at = buf.find(self.deliTag, start)
            return None if at < 0 else at + len(self.deliTag)
        if self.deliRex is not None:
            start = 0
            plan = self._plan
            if plan is not None:
                if not plan.canEnd(data):
                    return None
                if plan.width is not None:
                    start = max(start, held - plan.width + 1)
                if plan.terminator is not None:
                    start = max(start, self._lastTerminator + 1)
            self.scanned += len(buf) - start
            m = self.deliRex.search(buf, start)
            return None if m is None else m.end()
        return None

    def _held(self, held: int, data: bytes) -> None:
        """C{data} was added at C{held} without completing a response: note it, and trim."""
        plan = self._plan
        if plan is not None and plan.terminator is not None:
            at = data.rfind(plan.terminator)
            if at >= 0:
                self._lastTerminator = held + at
        excess = len(self._buffer) - self.maxResponse
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess
            self._lastTerminator = max(-1, self._lastTerminator - excess)

    def pending(self) -> bytes:
        """Bytes held so far."""
        return bytes(self._buffer)

    def timedOut(self) -> tuple[bytes, bytes]:
        """
        End the wait.

        @return: C{(response, unclaimed)}: without a condition every byte is the response; with an
            unmet condition the response is empty and the bytes are unclaimed (passed on, not lost).
        """
        buf = bytes(self._buffer)
        self._buffer.clear()
        self._lastTerminator = -1
        if self.hasCondition:
            return b"", buf
        return buf, b""
