"""Reading an object's attributes without side effects on it."""

from __future__ import annotations

from typing import Any


def ownAttribute(obj: object, name: str, default: Any = None) -> Any:
    """
    C{obj}'s attribute C{name} as C{object.__getattribute__} finds it, else C{default}.

    Unlike C{getattr}, a class's C{__getattr__} (a proxy's, a mock's) is not called; unlike
    C{obj.__dict__.get(name)}, the instance's C{__dict__} is not built: CPython keeps an
    instance's attributes compact until its C{__dict__} is asked for, and then keeps the dict
    for the instance's life (64 bytes each, for every device of a fleet).
    """
    try:
        return object.__getattribute__(obj, name)
    except AttributeError:
        return default


def ownMethod(obj: object, bound: object, function: object) -> bool:
    """
    Whether C{bound} (C{obj}'s attribute) is C{function} bound to C{obj}: not replaced on the
    class nor on the instance (a tracing or test wrapper), asked without building C{obj}'s
    C{__dict__}.
    """
    return getattr(bound, "__func__", None) is function and getattr(bound, "__self__", None) is obj
