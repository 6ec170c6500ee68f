"""
A prototype of the core fast paths suggested in C{bench/README.md}, applied by monkeypatching in a
benchmark child process only (C{python -m bench poll --fastpath}).  Not for production: it exists
to measure what the suggested changes to C{twisted_ch/_runtime.py} and C{twisted_ch/_events.py}
would buy.

1. C{ReactorDispatcher.call}: when the callback returns None (nearly always), skip
   C{inspect.isawaitable} (an ABC check) and the C{succeed(None)} Deferred its callers then chain a
   callback on; here a tiny already-done object stands in for that Deferred.
2. C{emit}: no f-string per event to find the callback's slot.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class _Done:
    """Stands in for C{succeed(None)}: runs callbacks at once; a timeout is moot."""

    __slots__ = ()
    called = True

    def addBoth(self, f: Callable[..., object], *args: object, **kw: object) -> _Done:
        f(None, *args, **kw)
        return self

    addCallback = addBoth

    def addErrback(self, f: Callable[..., object], *args: object, **kw: object) -> _Done:
        return self

    def addTimeout(self, *args: object, **kw: object) -> _Done:
        return self


DONE = _Done()


def apply() -> None:
    from twisted_ch import _events, _handlers, _runtime
    from twisted_ch.extronlib import interface

    original = _runtime.ReactorDispatcher.call
    log, describe = _runtime.log, _runtime.describe

    def call(self: Any, f: Callable[..., object], *args: object, **kw: Any) -> Any:
        try:
            result = f(*args)
        except Exception:
            log.failure("callback {callback} raised", callback=describe(f))
            return DONE
        if result is None:
            return DONE
        return original(self, lambda: result, **kw)

    droppable = "droppable" in inspect.signature(_runtime.Runtime.call).parameters

    def emit(runtime: Any, obj: Any, name: str, *args: object) -> None:
        callback = obj.__dict__.get("_event_" + name)
        if callback is not None:
            if droppable and name == "ReceiveData":
                runtime.call(callback, *args, droppable=True)
            else:
                runtime.call(callback, *args)

    _runtime.ReactorDispatcher.call = call  # type: ignore[method-assign]
    for module in (_events, _handlers, interface):
        module.emit = emit  # type: ignore[attr-defined]
