"""
Repeated identical log events, summarised: the first is logged, then the count of those that
followed, once per period.

A client refused again and again, a host key rejected at every attempt, a device down for a day:
each is one line when it starts, then one line per period saying how many more there were, never
a line per event.  The count is logged by a timer at the end of the period in which it grew, so
a burst that stops is still reported; no timer runs while nothing is counted.  The events that
are only counted are still logged at debug level (an operator who asks for debug sees each).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

__all__ = ["Summarizer"]

#: Seconds between two lines about the same kind of event.
DEFAULT_PERIOD = 60.0
#: Kinds of events remembered at once (the least recent is reported and forgotten first).
MAX_KINDS = 1000


class _Kind:
    """One kind's current period: when it started, and what was counted in it."""

    __slots__ = ("start", "count", "timer", "logger", "level", "format", "fields")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.timer: IDelayedCall | None = None
        self.logger: Logger | None = None
        self.level = LogLevel.info
        self.format = ""
        self.fields: dict[str, Any] = {}


#: What a Summarizer that has seen no event holds (read only: the first event makes its own).
_NO_KINDS: OrderedDict[Hashable, _Kind] = OrderedDict()


class Summarizer:
    """
    Logs the first event of each kind, then, at the end of each C{period} seconds in which more
    came, one line with their number (and the fields of the last of them).
    """

    __slots__ = ("_clock", "period", "_kinds")

    def __init__(self, clock: IReactorTime | None = None, period: float = DEFAULT_PERIOD) -> None:
        self._clock = clock
        self.period = period
        # made at the first event: a fleet has a Summarizer per device, most never used
        self._kinds: OrderedDict[Hashable, _Kind] = _NO_KINDS

    def _reactor(self) -> IReactorTime:
        clock = self._clock
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        return clock

    def emit(
        self,
        logger: Logger,
        kind: Hashable,
        level: LogLevel,
        format: str,
        **fields: Any,
    ) -> bool:
        """
        Log C{format} with C{fields} unless an event of this C{kind} was logged less than
        C{period} seconds ago: then it is counted (and logged at debug level), and the count is
        logged when that period ends, with C{repeated} (how many) and C{since} (seconds).

        @return: whether the event was logged at C{level}.
        """
        clock = self._reactor()
        now = clock.seconds()
        state = self._kinds.get(kind)
        if state is not None and now - state.start < self.period:
            state.count += 1
            state.logger, state.level, state.format, state.fields = logger, level, format, fields
            if state.timer is None:
                delay = max(0.0, state.start + self.period - now)
                state.timer = clock.callLater(delay, self._periodEnded, kind)
            logger.emit(LogLevel.debug, format, **fields)  # (at debug: with its traceback)
            return False
        if state is not None:  # a period ended with nothing counted (or its count was logged)
            self._report(state, now)
        if self._kinds is _NO_KINDS:
            self._kinds = OrderedDict()
        self._kinds[kind] = _Kind(now)
        self._kinds.move_to_end(kind)
        while len(self._kinds) > MAX_KINDS:
            _, oldest = self._kinds.popitem(last=False)
            self._report(oldest, now)
        logger.emit(level, format, **fields)
        return True

    def _periodEnded(self, kind: Hashable) -> None:
        state = self._kinds.get(kind)
        if state is None:
            return
        state.timer = None
        now = self._reactor().seconds()
        self._report(state, min(now, state.start + self.period))  # (a late timer: the period)
        # a new period starts: more of the same within it are counted again
        state.start = now

    def _report(self, state: _Kind, now: float) -> None:
        """Log C{state}'s count, if any, and cancel its timer."""
        if state.timer is not None:
            if state.timer.active():
                state.timer.cancel()
            state.timer = None
        if state.count and state.logger is not None:
            # the count line is not a failure: the traceback was logged with the first of the kind
            fields = {k: v for k, v in state.fields.items() if k != "log_failure"}
            state.logger.emit(
                state.level,
                state.format + " ({repeated} more like it in the previous {since:.0f} s)",
                **{**fields, "repeated": state.count, "since": now - state.start},
            )
        state.count = 0

    def end(self, kind: Hashable) -> None:
        """
        The run of C{kind} events is over (a device connected again): its count, if any, is
        logged now and the next event of that kind is logged at once.
        """
        state = self._kinds.pop(kind, None)
        if state is not None:
            self._report(state, self._reactor().seconds())

    def stop(self) -> None:
        """Log every pending count now and leave no timer behind."""
        for kind in list(self._kinds):
            self.end(kind)

    @property
    def pending(self) -> int:
        """Kinds with a count not yet logged."""
        return sum(1 for state in self._kinds.values() if state.count)
