"""Argument checks shared by the public API: each raises a TypeError or ValueError naming it."""

from __future__ import annotations

import math


def seconds(value: object, what: str, *, zero: bool = False) -> float:
    """A finite number of seconds, positive (or, with C{zero}, not negative)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    if zero and value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if not zero and value <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return float(value)


def count(value: object, what: str) -> int:
    """A whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    return value


def port(value: object, what: str, *, zero: bool = False) -> int:
    """A TCP/UDP port number (0 only with C{zero}: any local port)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not (0 if zero else 1) <= value <= 65535:
        raise ValueError(f"{what} must be {0 if zero else 1}-65535, got {value}")
    return value


def callback(value: object, what: str) -> None:
    """A callable (None allowed only where the caller checks it)."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, not {type(value).__name__}")
