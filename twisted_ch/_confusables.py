# -*- test-case-name: tests.test_confusables -*-
"""
Names that look alike: C{prоjector} (a Cyrillic C{о}) beside C{projector}, a fullwidth
C{ｐｒｏｊｅｃｔｏｒ}, a C{é} written as C{e} and a combining accent.  Each is a different key to
the status page, the metrics and the trace, yet an operator reading the page sees one name twice.

L{skeleton} is what a name looks like: NFKC (fullwidth and compatibility forms folded), combining
marks dropped, and a small table of letters from other scripts that are drawn like Latin ones
(Cyrillic, Greek, a few dashes and dotless letters).  Not Unicode's whole confusables table: the
look-alikes seen in device names, without a new dependency.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["describePair", "lookAlikePairs", "lookAlikes", "lookAlikesAmong", "skeleton"]

#: letters of other scripts drawn like Latin ones, and the Latin letter each looks like
_LOOKS = {
    "\N{CYRILLIC SMALL LETTER A}": "a",
    "\N{CYRILLIC SMALL LETTER IE}": "e",
    "\N{CYRILLIC SMALL LETTER KA}": "k",
    "\N{CYRILLIC SMALL LETTER O}": "o",
    "\N{CYRILLIC SMALL LETTER ES}": "c",
    "\N{CYRILLIC SMALL LETTER ER}": "p",
    "\N{CYRILLIC SMALL LETTER U}": "y",
    "\N{CYRILLIC SMALL LETTER HA}": "x",
    "\N{CYRILLIC SMALL LETTER DZE}": "s",
    "\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
    "\N{CYRILLIC SMALL LETTER JE}": "j",
    "\N{CYRILLIC SMALL LETTER SHHA}": "h",
    "\N{CYRILLIC SMALL LETTER KOMI DE}": "d",
    "\N{CYRILLIC SMALL LETTER QA}": "q",
    "\N{CYRILLIC SMALL LETTER WE}": "w",
    "\N{CYRILLIC SMALL LETTER PALOCHKA}": "l",
    "\N{CYRILLIC SMALL LETTER IZHITSA}": "v",
    "\N{CYRILLIC CAPITAL LETTER A}": "A",
    "\N{CYRILLIC CAPITAL LETTER VE}": "B",
    "\N{CYRILLIC CAPITAL LETTER IE}": "E",
    "\N{CYRILLIC CAPITAL LETTER KA}": "K",
    "\N{CYRILLIC CAPITAL LETTER EM}": "M",
    "\N{CYRILLIC CAPITAL LETTER EN}": "H",
    "\N{CYRILLIC CAPITAL LETTER O}": "O",
    "\N{CYRILLIC CAPITAL LETTER ER}": "P",
    "\N{CYRILLIC CAPITAL LETTER ES}": "C",
    "\N{CYRILLIC CAPITAL LETTER TE}": "T",
    "\N{CYRILLIC CAPITAL LETTER HA}": "X",
    "\N{CYRILLIC CAPITAL LETTER U}": "Y",
    "\N{CYRILLIC CAPITAL LETTER DZE}": "S",
    "\N{CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I}": "I",
    "\N{CYRILLIC CAPITAL LETTER JE}": "J",
    "\N{CYRILLIC CAPITAL LETTER KOMI DE}": "D",
    "\N{CYRILLIC CAPITAL LETTER QA}": "Q",
    "\N{CYRILLIC CAPITAL LETTER WE}": "W",
    "\N{CYRILLIC LETTER PALOCHKA}": "I",
    "\N{GREEK SMALL LETTER OMICRON}": "o",
    "\N{GREEK SMALL LETTER NU}": "v",
    "\N{GREEK SMALL LETTER RHO}": "p",
    "\N{GREEK SMALL LETTER IOTA}": "i",
    "\N{GREEK SMALL LETTER KAPPA}": "k",
    "\N{GREEK SMALL LETTER UPSILON}": "u",
    "\N{GREEK SMALL LETTER ALPHA}": "a",
    "\N{GREEK CAPITAL LETTER ALPHA}": "A",
    "\N{GREEK CAPITAL LETTER BETA}": "B",
    "\N{GREEK CAPITAL LETTER EPSILON}": "E",
    "\N{GREEK CAPITAL LETTER ZETA}": "Z",
    "\N{GREEK CAPITAL LETTER ETA}": "H",
    "\N{GREEK CAPITAL LETTER IOTA}": "I",
    "\N{GREEK CAPITAL LETTER KAPPA}": "K",
    "\N{GREEK CAPITAL LETTER MU}": "M",
    "\N{GREEK CAPITAL LETTER NU}": "N",
    "\N{GREEK CAPITAL LETTER OMICRON}": "O",
    "\N{GREEK CAPITAL LETTER RHO}": "P",
    "\N{GREEK CAPITAL LETTER TAU}": "T",
    "\N{GREEK CAPITAL LETTER UPSILON}": "Y",
    "\N{GREEK CAPITAL LETTER CHI}": "X",
    "\N{LATIN SMALL LETTER DOTLESS I}": "i",
    "\N{LATIN SMALL LETTER DOTLESS J}": "j",
    "\N{LATIN SMALL LETTER ALPHA}": "a",
    "\N{LATIN SMALL LETTER SCRIPT G}": "g",
    "\N{HYPHEN}": "-",
    "\N{NON-BREAKING HYPHEN}": "-",
    "\N{FIGURE DASH}": "-",
    "\N{EN DASH}": "-",
    "\N{EM DASH}": "-",
    "\N{MINUS SIGN}": "-",
    "\N{SMALL HYPHEN-MINUS}": "-",
    "\N{LEFT SINGLE QUOTATION MARK}": "'",
    "\N{RIGHT SINGLE QUOTATION MARK}": "'",
    "\N{ONE DOT LEADER}": ".",
    "\N{RATIO}": ":",
    "\N{FRACTION SLASH}": "/",
    "\N{DIVISION SLASH}": "/",
}
_TABLE = str.maketrans(_LOOKS)


def skeleton(name: str) -> str:
    """What C{name} looks like: compatibility forms folded, marks dropped, look-alikes Latin."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.translate(_TABLE))


def _shown(name: str) -> str:
    """A name with its characters beyond ASCII written out (so the difference is visible)."""
    return "".join(
        c if c.isascii() else f"<U+{ord(c):04X} {unicodedata.name(c, '?')}>" for c in name
    )


def lookAlikePairs(
    named: Iterable[tuple[str, str]],
) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """
    For C{(where, name)} pairs, each later one whose name differs from an earlier one's only by
    characters that look alike (L{skeleton}), with that earlier one.  Identical names are not
    paired (that is a duplicate, for the caller to refuse).
    """
    seen: dict[str, tuple[str, str]] = {}
    pairs = []
    for where, name in named:
        key = skeleton(name)
        first = seen.get(key)
        if first is None:
            seen[key] = (where, name)
        elif first[1] != name:
            pairs.append(((where, name), first))
    return pairs


def describePair(later: tuple[str, str], first: tuple[str, str]) -> str:
    """The warning about two look-alike names, naming both."""
    return (
        f"{later[0]} {later[1]!r} looks like {first[0]} {first[1]!r} but is another name "
        f"({_shown(later[1])} beside {_shown(first[1])}): check which one is meant"
    )


def lookAlikes(named: Iterable[tuple[str, str]]) -> list[str]:
    """One warning (L{describePair}) per name that looks like an earlier one (L{lookAlikePairs})."""
    return [describePair(later, first) for later, first in lookAlikePairs(named)]


def lookAlikesAmong(named: Iterable[tuple[str, str]], ours: str) -> list[str]:
    """
    The warnings about look-alike pairs (L{lookAlikes}) of which at least one's C{where} starts
    with C{ours} (say, the rows a program created, beside a config's already warned about).
    """
    pairs = lookAlikePairs(named)
    return [describePair(a, b) for a, b in pairs if a[0].startswith(ours) or b[0].startswith(ours)]
