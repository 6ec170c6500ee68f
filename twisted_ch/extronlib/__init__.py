"""
A ControlScript-compatible C{extronlib} on Twisted.

Program code written for ControlScript (and Global Scripter device modules) imports
C{extronlib}; L{install} makes that name resolve to this package.  The program runner
(L{twisted_ch.program.runProgram}, C{twistd chandler --program}) installs it automatically and runs
the program on a program thread, where waiting calls block as they do on a control processor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from twisted_ch._events import Event

__all__ = ["Platform", "Version", "event", "install"]

F = TypeVar("F", bound=Callable[..., Any])


def _names(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    names = list(value)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"event names must be strings, not {type(n).__name__}")
    return names


def event(Object: Any, EventName: str | Iterable[str]) -> Callable[[F], F]:
    """
    Decorator: make the function the handler of C{EventName} (one name or a list) on C{Object}
    (one object or a list).
    """
    objects = list(Object) if isinstance(Object, list | tuple) else [Object]
    names = _names(EventName)

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError("@event decorates a callable")
        for obj in objects:
            for name in names:
                declared = getattr(type(obj), name, None)
                if not isinstance(declared, Event) and not hasattr(obj, name):
                    raise AttributeError(f"{type(obj).__name__} object has no event {name!r}")
                setattr(obj, name, function)
        return function

    return decorate


def Version() -> str:
    """The version of this extronlib implementation."""
    from twisted_ch._version import __version__

    return __version__


def Platform() -> str:
    """The platform name (ControlScript returns 'Pro' or 'Pro xi'; here 'Pro xi')."""
    return "Pro xi"


def install() -> None:
    """Make C{import extronlib} (and its submodules) resolve to this package."""
    import importlib

    sys.modules.setdefault("extronlib", sys.modules[__name__])
    for sub in ("interface", "system", "device", "software", "ui"):
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ImportError:
            continue
        sys.modules.setdefault(f"extronlib.{sub}", module)
