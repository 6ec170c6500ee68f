# -*- test-case-name: tests.test_coroutine_runs -*-
"""
Runs a coroutine on the reactor the way C{Deferred.fromCoroutine} does, for a caller that only
needs to know when it has ended (an C{async def} keep-alive): no Deferred of its own.

C{ensureDeferred} wraps each coroutine in a Deferred, a cancellation status, and per await a
callback with four arguments and a result holder; for a keep-alive polled every second by
thousands of handlers those are a dozen objects alive for each poll's round trip, which the
cyclic collector then walks and promotes.  A L{CoroutineRun} is one object: it steps the
coroutine in its own copy of the context (as Twisted does), awaits what it yields as Twisted
does (a Deferred; a coroutine or generator, run by C{ensureDeferred}; anything else sent back),
and reports the end to its owner.
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextvars import Context, copy_context
from inspect import isgenerator
from types import CoroutineType
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

from twisted_ch._runtime import logCallbackFailure

__all__ = ["CoroutineOwner", "CoroutineRun"]


class CoroutineOwner(Protocol):
    """Told when a L{CoroutineRun} has ended."""

    def _coroutineEnded(self, token: int) -> None:
        """The run started with C{token} ended (returned, or raised: its failure is logged)."""


class CoroutineRun:
    """
    One coroutine run on the reactor.  Its failure is logged as a callback's (naming C{f}, the
    callable that made it); its result is dropped.  Nothing can cancel it.
    """

    __slots__ = ("_coro", "_context", "_f", "_owner", "_token", "_stepping", "_got", "_result")

    def __init__(
        self,
        coro: Coroutine[Any, Any, object],
        f: object,
        owner: CoroutineOwner,
        token: int,
    ) -> None:
        self._coro = coro
        self._context: Context = copy_context()
        self._f = f
        self._owner = owner
        self._token = token
        #: whether L{_step} is adding a callback (a Deferred fired already answers at once)
        self._stepping = False
        self._got = False
        self._result: object = None

    def start(self) -> None:
        """Run the coroutine up to its first await of something not yet there."""
        self(None)

    def __call__(self, result: object) -> None:
        """
        Step the coroutine with C{result} (the Deferred it awaits fired: this run is its callback
        and its errback).  The result is consumed, a failure too: it is thrown into the coroutine.
        """
        if self._stepping:  # fired already, inside addBoth below: the loop goes on with it
            self._got, self._result = True, result
            return None
        coro, context = self._coro, self._context
        while True:
            try:
                if isinstance(result, Failure):
                    yielded = context.run(result.throwExceptionIntoGenerator, coro)
                else:
                    yielded = context.run(coro.send, result)
            except StopIteration:
                self._owner._coroutineEnded(self._token)
                return None
            except BaseException:
                logCallbackFailure(Failure(), self._f)
                self._owner._coroutineEnded(self._token)
                return None
            if not isinstance(yielded, Deferred):
                if type(yielded) is CoroutineType or isgenerator(yielded):
                    yielded = ensureDeferred(yielded)  # type: ignore[arg-type]
                else:  # not awaitable by Twisted: sent back, as ensureDeferred does
                    result = yielded
                    continue
            self._stepping = True
            try:
                yielded.addBoth(self)
            finally:
                self._stepping = False
            if not self._got:
                return None  # to be resumed by the Deferred
            result, self._result, self._got = self._result, None, False
