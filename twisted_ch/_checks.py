"""
Argument checks shared by the public API and the service's config file: one set of bounds, each
check raising a TypeError or ValueError that names the argument.
"""

from __future__ import annotations

import math

#: The shortest period (poll, retry, idle timeout) an argument or config key may give: shorter
#: ones spin a core without telling a device's state any sooner.
MIN_PERIOD = 0.01
#: The longest period: one day (a longer one is a mistake, and 1e308 overflows timers).
MAX_PERIOD = 86400.0
#: The longest duration any other time argument (a timeout, a Wait) may give: about 116 days.
MAX_SECONDS = 1e7
#: The largest DisconnectLimit: beyond it Disconnected would never be reported.
MAX_DISCONNECT_LIMIT = 1_000_000
#: The largest whole number any other count may be.
MAX_COUNT = 2**31 - 1


def seconds(value: object, what: str, *, zero: bool = False, maximum: float = MAX_SECONDS) -> float:
    """A finite number of seconds up to C{maximum}, positive (or, with C{zero}, not negative)."""
    if type(value) is float or type(value) is int:  # the usual case, on every SendAndWait
        if (0 <= value if zero else 0 < value) and value <= maximum:  # NaN fails both tests
            return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if isinstance(value, int) and abs(value) > maximum:  # (no float conversion overflow)
        raise ValueError(f"{what} must be at most {maximum:g} seconds, got {_short(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    if zero and value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if not zero and value <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    if value > maximum:
        raise ValueError(f"{what} must be at most {maximum:g} seconds, got {value!r}")
    return float(value)


def period(value: object, what: str) -> float:
    """A poll period, retry delay or idle timeout: L{MIN_PERIOD} to L{MAX_PERIOD} seconds."""
    result = seconds(value, what, maximum=MAX_PERIOD)
    if result < MIN_PERIOD:
        raise ValueError(f"{what} must be at least {MIN_PERIOD:g} seconds, got {value!r}")
    return result


def count(value: object, what: str, *, maximum: int = MAX_COUNT) -> int:
    """A whole number from 1 to C{maximum}."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {_short(value)}")
    if value > maximum:
        raise ValueError(f"{what} must be at most {maximum}, got {_short(value)}")
    return value


def disconnectLimit(value: object, what: str = "DisconnectLimit") -> int:
    """Unanswered polls before Disconnected: 1 to L{MAX_DISCONNECT_LIMIT}."""
    return count(value, what, maximum=MAX_DISCONNECT_LIMIT)


def flag(value: object, what: str) -> bool:
    """True or False (also 1 or 0, as ControlScript code writes them); never a string."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise TypeError(f"{what} must be True or False, not {_short(value)}")


def port(value: object, what: str, *, zero: bool = False) -> int:
    """A TCP/UDP port number (0 only with C{zero}: any local port)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not (0 if zero else 1) <= value <= 65535:
        raise ValueError(f"{what} must be {0 if zero else 1}-65535, got {_short(value)}")
    return value


def host(value: object, what: str) -> str:
    """A host name or address: non-empty text without whitespace or control characters."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > 255:
        raise ValueError(f"{what} must be at most 255 characters, got {len(value)}")
    bad = next((c for c in value if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        raise ValueError(f"{what} must not contain {bad!r}, got {value!r}")
    return value


def callback(value: object, what: str) -> None:
    """A callable (None allowed only where the caller checks it)."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, not {type(value).__name__}")


def _short(value: object) -> str:
    """A value for a message, shortened (an int of 400 digits is shown by its size)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
