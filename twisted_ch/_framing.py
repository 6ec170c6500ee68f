"""
SendAndWait's response conditions as a pure matcher: fed bytes, it says when a response is complete.

Nothing here does I/O, so every condition can be tested exhaustively.
"""

from __future__ import annotations

import re
from typing import Any

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

    @classmethod
    def fromKeywords(
        cls, delimiter: dict[str, Any], maxResponse: int = DEFAULT_MAX_RESPONSE
    ) -> ResponseMatcher:
        """Validate SendAndWait's C{**delimiter} keywords and build a matcher from them."""
        # a keep-alive passes the same condition on every poll: validate it once
        try:
            key = (maxResponse, *((k, type(v), v) for k, v in delimiter.items()))
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

        @return: C{(response, leftover)} once the condition holds (C{leftover} are bytes that came
            after the response), else L{None}.
        """
        if not self._buffer:  # the usual case: the whole response in one read, nothing held
            found = self._match(data)
            if found is not None:
                return (data, b"") if found == len(data) else (data[:found], data[found:])
            self._buffer += data
            self._trim()
            return None
        self._buffer += data
        found = self._match(self._buffer)
        if found is None:
            self._trim()
            return None
        buf = bytes(self._buffer)
        self._buffer.clear()
        return buf[:found], buf[found:]

    def _match(self, buf: bytes | bytearray) -> int | None:
        if self.deliLen is not None:
            return self.deliLen if len(buf) >= self.deliLen else None
        if self.deliTag is not None:
            at = buf.find(self.deliTag)
            return None if at < 0 else at + len(self.deliTag)
        if self.deliRex is not None:
            m = self.deliRex.search(buf)
            return None if m is None else m.end()
        return None

    def _trim(self) -> None:
        excess = len(self._buffer) - self.maxResponse
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess

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
        if self.hasCondition:
            return b"", buf
        return buf, b""
