"""
Small helpers shared by the serial and UDP endpoints and their string parsers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from zope.interface.interface import InterfaceClass

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def requireProviders(reactor: object, *interfaces: InterfaceClass) -> None:
    """
    Raise L{TypeError} unless C{reactor} provides every one of C{interfaces}.
    """
    missing = [i.__name__ for i in interfaces if not i.providedBy(reactor)]
    if missing:
        raise TypeError(f"reactor {reactor!r} does not provide {', '.join(missing)}")


def stringParts(
    endpointType: str,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    allowed: Collection[str],
) -> tuple[list[str], dict[str, str]]:
    """
    Check the parts of an endpoint string: all text, every option in C{allowed}.

    @raise ValueError: an option is unknown or a part is not text (the message names the part
        and the type, never the value: it may be a password).
    """
    for name in kwargs:
        if name not in allowed:
            raise ValueError(
                f"{endpointType} endpoint: unknown option {name!r}"
                f" (known: {', '.join(sorted(allowed))})"
            )
    parts = [(f"part {i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    for name, value in parts:
        if not isinstance(value, str):
            raise ValueError(
                f"{endpointType} endpoint: {name} must be text, not {type(value).__name__}"
            )
    return [str(a) for a in args], {k: str(v) for k, v in kwargs.items()}


def parseInt(endpointType: str, name: str, text: str) -> int:
    """
    Convert the text of option C{name} to an L{int}, or raise a clear L{ValueError}.
    """
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"{endpointType} endpoint: {name} must be an integer, not {text!r}"
        ) from None


def parseBool(endpointType: str, name: str, text: str) -> bool:
    """
    Convert C{0/1}, C{false/true}, C{no/yes} or C{off/on} (any case) to a L{bool}.
    """
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{endpointType} endpoint: {name} must be 0 or 1, not {text!r}")


def checkPortNumber(name: str, value: object) -> int:
    """
    Return C{value} if it is an L{int} from 0 to 65535, else raise L{TypeError}/L{ValueError}.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= 65535:
        raise ValueError(f"{name} must be between 0 and 65535, not {value}")
    return value
