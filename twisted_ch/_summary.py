"""
Repeated identical log events, summarised: the first is logged, then the count of those that
followed, at most once per period.

A client refused again and again, a host key rejected at every attempt: each is one line when it
starts, then one line per period saying how many more there were, never a line per event.  The
count is reported with the first event of the next period (no timer is left running when the
events stop; their totals are kept by the caller's own counters, such as a server's C{refused}).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

__all__ = ["Summarizer"]

#: Seconds between two lines about the same kind of event.
DEFAULT_PERIOD = 60.0
#: Kinds of events remembered at once (the least recent is forgotten first).
MAX_KINDS = 1000


class Summarizer:
    """
    Logs the first event of each kind, then at most one line per C{period} seconds with the
    number of events of that kind since the last line.
    """

    def __init__(self, clock: IReactorTime | None = None, period: float = DEFAULT_PERIOD) -> None:
        self._clock = clock
        self.period = period
        # kind -> [start of the period, events of the period not logged]
        self._kinds: OrderedDict[Hashable, list[float]] = OrderedDict()

    def _now(self) -> float:
        clock = self._clock
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        return clock.seconds()

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
        C{period} seconds ago (then it is only counted).  A logged event that follows counted ones
        carries C{repeated} (how many) and says so.

        @return: whether the event was logged.
        """
        now = self._now()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.period:
            state[1] += 1
            return False
        repeated = int(state[1]) if state is not None else 0
        since = now - state[0] if state is not None else 0.0
        self._kinds[kind] = [now, 0]
        self._kinds.move_to_end(kind)
        while len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)
        if repeated:
            format += " ({repeated} more like it in the previous {since:.0f} s)"
            fields.update(repeated=repeated, since=since)
        logger.emit(level, format, **fields)
        return True
