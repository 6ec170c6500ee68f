"""
How much of a reactor turn streamed renders take (L{twisted_ch.service._stream.RenderQueue}):
steps until the turn's time is spent, but no step that its render's last step says would
overrun it, then a rest that keeps renders to their share.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.server import Request

from twisted_ch.service._stream import RenderQueue

MS = 1 / 1024  # about a millisecond, exact in binary: sums compare exactly
TURN = 4 * MS


def _request(written: list[bytes]) -> Any:
    request: Any = Request.__new__(Request)
    request.write = written.append
    request.registerProducer = lambda producer, streaming: None
    request.unregisterProducer = lambda: None
    request.finish = lambda: None
    request.notifyFinish = Deferred
    return request


def _turns(stepSeconds: list[float]) -> list[list[bytes]]:
    """The pieces written in each reactor turn, by a render whose steps take C{stepSeconds}."""
    clock, now = Clock(), [0.0]
    queue = RenderQueue(clock, timer=lambda: now[0], share=0.5, turn=TURN)

    def pieces() -> Any:
        for i, seconds in enumerate(stepSeconds[:-1]):
            now[0] += seconds
            yield b"%d" % i
        now[0] += stepSeconds[-1]
        return b"end"

    written: list[bytes] = []
    queue.stream(_request(written), pieces(), None)
    turns: list[list[bytes]] = []
    while len(queue):
        before = len(written)
        clock.advance(min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds())
        turns.append(written[before:])
        assert len(turns) < 100
    return turns


def test_short_steps_fill_the_turn() -> None:
    turns = _turns([MS] * 8)
    assert [len(t) for t in turns] == [4, 4]  # a turn's 4 ms


def test_a_step_that_would_overrun_the_turn_waits_for_the_next() -> None:
    # 3 ms steps: one a turn (two would take 6 of a turn's 4 ms)
    turns = _turns([3 * MS] * 4)
    assert [len(t) for t in turns] == [1, 1, 1, 1]


def test_a_step_longer_than_the_turn_is_alone_in_its_turn() -> None:
    turns = _turns([MS, 6 * MS, MS, MS])
    # the first step tells nothing of the second: both run; the long step's render waits then
    assert [len(t) for t in turns] == [2, 2]
