"""ControlScript-style event attributes: one settable callback per event name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import CoroutineType
from typing import Any, Generic, TypeVar, overload

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

from twisted_ch._coroutines import CoroutineRun
from twisted_ch._runtime import Runtime, logCallbackExit, logCallbackFailure

Callback = Callable[..., object]
Owner = TypeVar("Owner")


class Event(property, Generic[Owner]):
    """
    A class attribute naming an event: instances hold one callback (or None) under it.

    The callback is an ordinary instance attribute (C{_event_<name>}, None on the class), set
    and read without building the instance's C{__dict__}, which Python otherwise keeps
    compact (a fleet of 50,000 handlers would carry one dict each).

    Assigning anything but a callable or None raises L{TypeError} at once.  An event is a
    C{property} with a getter, setter and deleter, as on a processor, so code that looks for one
    (Extron's C{ModuleSupport.eventEx} calls C{type(obj).<name>.fset}) finds it.
    """

    def __init__(self, doc: str = "") -> None:
        super().__init__(self._fget, self._fset, self._fdel, doc)
        self.__doc__ = doc
        self.name = ""
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self._slot = f"_event_{name}"
        setattr(owner, self._slot, None)  # no callback: read without a failed lookup

    def _fget(self, obj: Owner) -> Callback | None:
        value: Callback | None = getattr(obj, self._slot, None)
        return value

    def _fset(self, obj: Owner, value: Callback | None) -> None:
        if value is not None and not callable(value):
            raise TypeError(
                f"the {self.name} event handler must be callable or None, "
                f"not {type(value).__name__}"
            )
        setattr(obj, self._slot, value)

    def _fdel(self, obj: Owner) -> None:
        try:
            delattr(obj, self._slot)
        except AttributeError:  # none set on the instance
            pass

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Event[Owner]: ...

    @overload
    def __get__(self, obj: Owner, objtype: type | None = None) -> Callback | None: ...

    def __get__(
        self, obj: Owner | None, objtype: type | None = None
    ) -> Event[Owner] | Callback | None:
        if obj is None:
            return self
        return self._fget(obj)

    def __set__(self, obj: Owner, value: Callback | None) -> None:
        self._fset(obj, value)

    def __delete__(self, obj: Owner) -> None:
        self._fdel(obj)


def eventNames(cls: type) -> list[str]:
    """Names of the events a class declares."""
    return [n for n in dir(cls) if isinstance(getattr(cls, n, None), Event)]


def emit(runtime: Runtime, obj: Any, name: str, *args: object) -> None:
    """
    Call C{obj}'s callback for event C{name}, if any, through the runtime's dispatcher.
    ReceiveData calls may be dropped by a program thread that is far behind.
    """
    callback = getattr(obj, "_event_" + name, None)
    if callback is not None:
        if name == "ReceiveData":
            runtime.dispatcher.call(callback, *args, droppable=True)
        else:
            runtime.dispatcher.call(callback, *args)


def emitHere(obj: Any, name: str, *args: object) -> None:
    """
    Call C{obj}'s callback for event C{name}, if any, on this thread now (the thread its events
    run on), its failure logged: for an event the reference delivers inside the call that
    causes it.
    """
    callback = getattr(obj, "_event_" + name, None)
    if callback is not None:
        try:
            callback(*args)
        except Exception:
            logCallbackFailure(Failure(), callback)


class _NoOwner:
    """The owner of an event callback's coroutine run: nobody waits for its end."""

    def _coroutineEnded(self, token: int) -> None:
        pass


_NO_OWNER = _NoOwner()


def _logged(result: object, f: object) -> None:
    if isinstance(result, Failure):
        logCallbackFailure(result, f)


def callOnReactor(callback: Callback, *args: object) -> None:
    """
    Call an event's C{callback} on the reactor thread now, as the reactor's dispatcher does
    (its failure and C{sys.exit()} logged; a coroutine it returns run, a Deferred's failure
    logged), without a Deferred of its own: a device's answers take this path.
    """
    try:
        result = callback(*args)
    except Exception:
        logCallbackFailure(Failure(), callback)
        return
    except SystemExit as e:
        logCallbackExit(e, callback)
        return
    if result is None:
        return
    if type(result) is CoroutineType:
        CoroutineRun(result, callback, _NO_OWNER, 0)(None)
    elif isinstance(result, Deferred):
        result.addBoth(_logged, callback)
    elif inspect.isawaitable(result):
        ensureDeferred(result).addBoth(_logged, callback)  # type: ignore[arg-type]
