# -*- test-case-name: tests.test_status_paging -*-
# mypy: disable-error-code="no-untyped-call"
# (twisted.web's Request is partly unannotated)
"""
Large status-page bodies rendered a step at a time (L{RenderQueue}): one step of one render per
reactor turn, the renders taking turns by how little rendering their connection used lately, and
at most L{STATUS_RENDER_SHARE} of the reactor's time spent on them.  Each render is a push producer
on its request: paused while its client does not read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from twisted_ch.service._heap import HeapTrimmer

__all__ = [
    "STATUS_RENDER_SHARE",
    "STATUS_RENDER_TURN",
    "STATUS_USAGE_MEMORY",
    "Keeper",
    "RenderQueue",
    "Usage",
    "streamBody",
]

log = Logger(namespace="twisted_ch.status")

#: The share of the reactor's time streamed renders may take (the rest is the devices'): after a
#: step that took t seconds, the next waits t x (1 / share - 1).
STATUS_RENDER_SHARE = 0.5
#: Seconds of rendering a reactor turn takes at most (steps are run until they add up to it):
#: a busy reactor's turns are long, one step per turn would make a big page take seconds.
STATUS_RENDER_TURN = 0.004
#: Seconds over which a connection's rendering is remembered when renders take turns (it decays
#: exponentially with this time constant): the connection that used the least goes first.
STATUS_USAGE_MEMORY = 10.0


class Usage:
    """Rendering time a connection used lately (decaying with L{STATUS_USAGE_MEMORY})."""

    __slots__ = ("_used", "_then", "memory")

    def __init__(self, memory: float = STATUS_USAGE_MEMORY) -> None:
        self.memory = memory
        self._used = 0.0
        self._then = 0.0

    def at(self, now: float) -> float:
        """Seconds of rendering used, decayed to C{now}."""
        if self._used == 0.0:
            return 0.0
        return self._used * math.exp(-max(0.0, now - self._then) / self.memory)

    def add(self, seconds: float, now: float) -> None:
        """C{seconds} more of rendering, at C{now}."""
        self._used = self.at(now) + seconds
        self._then = now


class Keeper(TypingProtocol):
    """What a render's pieces are kept in for its C{onDone} (a list is one)."""

    def append(self, piece: bytes, /) -> None:
        """The body's next piece."""


@implementer(IPushProducer)
class _Render:
    """One streamed body: its pieces, its request, and whether its client reads."""

    def __init__(
        self,
        queue: RenderQueue,
        request: Request,
        pieces: Generator[bytes, None, bytes],
        usage: Usage,
        onStep: Callable[[float], None] | None,
        onDone: Callable[[Any, float], None] | None,
        kept: Keeper | None = None,
    ) -> None:
        self.queue = queue
        self.request = request
        self.pieces = pieces
        self.usage = usage
        self.onStep = onStep
        self.onDone = onDone
        #: what the pieces are kept in for C{onDone} (a list unless the caller gave a keeper)
        self.kept: Keeper | None = (
            kept if kept is not None else ([] if onDone is not None else None)
        )
        self.spent = 0.0
        #: seconds its last step took (what its next step is expected to take)
        self.last = 0.0
        self.paused = False
        self.over = False

    # IPushProducer: the transport's buffer is full, drained, or the connection went
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused and not self.over:
            self.paused = False
            self.queue._schedule()

    def stopProducing(self) -> None:
        self.end()

    def end(self) -> None:
        """Stop rendering (the connection went): nothing more is written."""
        if not self.over:
            self.over = True
            self.queue._remove(self)
            close = getattr(self.pieces, "close", None)
            if callable(close):
                close()


class RenderQueue:
    """
    Streamed renders, a few steps per reactor turn (each the step of the render whose connection
    used the least rendering lately; more until they took C{turn} seconds), taking at most
    C{share} of the reactor's time.

    @ivar steps: steps run (for tests and benchmarks).
    @ivar longest: the longest step's seconds.
    """

    def __init__(
        self,
        clock: IReactorTime,
        timer: Callable[[], float] = time.perf_counter,
        share: float = STATUS_RENDER_SHARE,
        turn: float = STATUS_RENDER_TURN,
        heap: HeapTrimmer | None = None,
    ) -> None:
        self.clock = clock
        #: told the bytes rendered (the heap's free pages are given back after big pages)
        self.heap = heap
        self.timer = timer
        self.share = share
        self.turn = turn
        self._renders: list[_Render] = []
        self._call: Any = None
        self._rest = 0.0
        self.steps = 0
        self.longest = 0.0

    def __len__(self) -> int:
        return len(self._renders)

    def stream(
        self,
        request: Request,
        pieces: Generator[bytes, None, bytes],
        usage: Usage | None = None,
        onStep: Callable[[float], None] | None = None,
        onDone: Callable[[Any, float], None] | None = None,
        written: bytes = b"",
        kept: Keeper | None = None,
    ) -> None:
        """
        Write C{pieces} to C{request} (which was written C{written} already), a step at a time,
        then finish it.  C{onStep(seconds)} after each step; C{onDone(kept, seconds)} when the
        whole body was written, C{kept} holding every piece: C{kept} if given (appended to as
        each piece is written), else a list.
        """
        render = _Render(self, request, pieces, usage or Usage(), onStep, onDone, kept)
        if render.kept is not None and written:
            render.kept.append(written)
        request.registerProducer(render, True)
        request.notifyFinish().addErrback(lambda _: render.end())
        self._renders.append(render)
        self._schedule()

    def _remove(self, render: _Render) -> None:
        if render in self._renders:
            self._renders.remove(render)

    def _schedule(self) -> None:
        if self._call is None and any(not r.paused for r in self._renders):
            self._call = self.clock.callLater(self._rest, self._step)

    def _pick(self) -> _Render | None:
        now = self.clock.seconds()
        best: _Render | None = None
        bestUsed = 0.0
        for render in self._renders:
            if render.paused:
                continue
            used = render.usage.at(now)
            if best is None or used < bestUsed:
                best, bestUsed = render, used
        return best

    def _step(self) -> None:
        """
        Steps of the renders (least used first) until C{turn} seconds were spent, or the next
        step (expected to take as long as its render's last) would overrun it; then rest.
        """
        self._call = None
        spent = 0.0
        while True:
            render = self._pick()
            if render is None:
                self._rest = 0.0
                return
            if spent and spent + render.last > self.turn:
                break
            spent += self._stepOf(render)
            if spent >= self.turn or not any(not r.paused for r in self._renders):
                break
        self._rest = spent * (1 / self.share - 1) if 0 < self.share < 1 else 0.0
        self._schedule()

    def _stepOf(self, render: _Render) -> float:
        """One step of C{render}; the seconds it took."""
        started = self.timer()
        finished = False
        try:
            piece = next(render.pieces)
        except StopIteration as e:  # its last piece
            finished = True
            piece = e.value or b""
        except Exception:
            log.failure("status page: a render failed; its connection is closed")
            render.end()
            transport = getattr(render.request.channel, "transport", None)
            if transport is not None:
                abort = getattr(transport, "abortConnection", transport.loseConnection)
                abort()
            piece = b""
        if piece and not render.over:
            if render.kept is not None:
                render.kept.append(piece)
            render.request.write(piece)
            if self.heap is not None:
                self.heap.used(len(piece))
        spent = self.timer() - started
        self.steps += 1
        self.longest = max(self.longest, spent)
        render.spent += spent
        render.last = spent
        render.usage.add(spent, self.clock.seconds())
        for hook in (render.onStep, getattr(render.request, "onStep", None)):
            if callable(hook):
                hook(spent)
        if finished and not render.over:
            render.over = True
            self._remove(render)
            request = render.request
            request.unregisterProducer()
            request.finish()
            if render.onDone is not None and render.kept is not None:
                render.onDone(render.kept, render.spent)
        else:  # the next step of this render after the others' (ties: in turn)
            self._remove(render)
            if not render.over:
                self._renders.append(render)
        return spent


def streamBody(request: Request, pieces: Generator[bytes, None, bytes], **kw: Any) -> bytes | int:
    """
    A body rendered a step at a time: C{pieces} yields a piece per step and returns the last.
    The first step is taken now: a body of one step is returned whole; else the rest is
    streamed to C{request} through its site's L{RenderQueue} (a L{StatusSite}'s; else one of
    the global reactor's), charged to its connection, and C{NOT_DONE_YET} returned.
    """
    try:
        first = next(pieces)
    except StopIteration as e:
        whole: bytes = e.value or b""
        return whole
    if first:
        request.write(first)
    site = getattr(request, "site", None)
    queue = getattr(site, "renders", None)
    if not isinstance(queue, RenderQueue):
        queue = _defaultQueue()
    channel = getattr(request, "channel", None)
    usage = getattr(channel, "usage", None)
    request.streamed = True  # type: ignore[attr-defined]
    queue.stream(request, pieces, usage if isinstance(usage, Usage) else None, written=first, **kw)
    return NOT_DONE_YET


_DEFAULT: list[RenderQueue] = []


def _defaultQueue() -> RenderQueue:
    if not _DEFAULT:
        from twisted.internet import reactor

        _DEFAULT.append(RenderQueue(reactor))
    return _DEFAULT[0]
