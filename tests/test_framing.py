"""The SendAndWait response matcher, exhaustively and with hypothesis over chunk splits."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_ch._framing import ResponseMatcher, toBytes


def feedAll(m: ResponseMatcher, chunks: list[bytes]) -> tuple[bytes, bytes] | None:
    for i, chunk in enumerate(chunks):
        found = m.feed(chunk)
        if found is not None:
            response, rest = found
            return response, rest + b"".join(chunks[i + 1 :])
    return None


def test_deliTag_returns_through_the_tag_and_the_rest_separately() -> None:
    m = ResponseMatcher.fromKeywords({"deliTag": b"\r\n"})
    assert m.feed(b"Pwr") is None
    assert m.feed(b"1\r\nextra") == (b"Pwr1\r\n", b"extra")


def test_deliLen_exact_count() -> None:
    m = ResponseMatcher.fromKeywords({"deliLen": 4})
    assert m.feed(b"ab") is None
    assert m.feed(b"cdef") == (b"abcd", b"ef")


def test_deliRex_bytes_and_str_patterns() -> None:
    m = ResponseMatcher.fromKeywords({"deliRex": re.compile(rb"Vol\d+\r")})
    assert m.feed(b"xxVol1") is None
    assert m.feed(b"2\rtail") == (b"xxVol12\r", b"tail")
    m2 = ResponseMatcher.fromKeywords({"deliRex": re.compile(r"OK")})
    assert m2.feed(b"fine OK") == (b"fine OK", b"")


def test_no_condition_collects_until_timeout() -> None:
    m = ResponseMatcher.fromKeywords({})
    assert m.feed(b"abc") is None
    assert m.timedOut() == (b"abc", b"")


def test_unmet_condition_at_timeout_gives_empty_and_unclaimed_bytes() -> None:
    m = ResponseMatcher.fromKeywords({"deliTag": b"\r"})
    m.feed(b"partial")
    assert m.timedOut() == (b"", b"partial")


def test_flood_without_delimiter_is_bounded() -> None:
    m = ResponseMatcher.fromKeywords({"deliTag": b"\r"}, maxResponse=1024)
    for _ in range(1000):
        assert m.feed(b"x" * 1000) is None
        assert len(m.pending()) <= 1024
    assert m.dropped == 1000 * 1000 - 1024
    # the tag still matches after the flood
    assert m.feed(b"\r") == (b"x" * 1024 + b"\r", b"")


@pytest.mark.parametrize(
    ("kw", "exc", "text"),
    [
        ({"deliLen": 2, "deliTag": b"\r"}, ValueError, "at most one"),
        ({"delim": b"\r"}, TypeError, "unknown SendAndWait condition delim"),
        ({"deliLen": "3"}, TypeError, "deliLen must be an int"),
        ({"deliLen": 0}, ValueError, "positive"),
        ({"deliLen": True}, TypeError, "int"),
        ({"deliTag": b""}, ValueError, "empty"),
        ({"deliTag": 5}, TypeError, "deliTag must be bytes or str"),
        ({"deliRex": 5}, TypeError, "compiled regular expression"),
        ({"deliLen": 10**9}, ValueError, "exceeds"),
    ],
)
def test_bad_conditions_are_rejected_clearly(kw: dict[str, object], exc: type, text: str) -> None:
    with pytest.raises(exc, match=text):
        ResponseMatcher.fromKeywords(kw)


def test_toBytes() -> None:
    assert toBytes("GET POWER\r") == b"GET POWER\r"
    assert toBytes("\xff") == b"\xff"
    assert toBytes(bytearray(b"a")) == b"a"
    with pytest.raises(TypeError, match="data must be bytes or str, not int"):
        toBytes(5)
    with pytest.raises(ValueError, match="not single bytes"):
        toBytes("\u20ac")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    prefix=st.binary(max_size=20).filter(lambda b: b"\r\n" not in b and not b.endswith(b"\r")),
    rest=st.binary(max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_deliTag_is_independent_of_chunking(prefix: bytes, rest: bytes, cuts: list[int]) -> None:
    stream = prefix + b"\r\n" + rest
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    m = ResponseMatcher.fromKeywords({"deliTag": b"\r\n"})
    assert feedAll(m, [c for c in chunks if c]) == (prefix + b"\r\n", rest)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(data=st.binary(min_size=1, max_size=50), n=st.integers(1, 50), cut=st.integers(0, 50))
def test_deliLen_is_independent_of_chunking(data: bytes, n: int, cut: int) -> None:
    m = ResponseMatcher.fromKeywords({"deliLen": n})
    found = feedAll(m, [c for c in (data[:cut], data[cut:]) if c])
    if len(data) >= n:
        assert found == (data[:n], data[n:])
    else:
        assert found is None


# trickled input costs time linear in its length (issue 11 review): counted, never timed


def _trickled(kw: dict[str, object], data: bytes, size: int = 1) -> ResponseMatcher:
    m = ResponseMatcher.fromKeywords(kw)
    for i in range(0, len(data), size):
        assert m.feed(data[i : i + size]) is None
    return m


def _sisAnswer() -> re.Pattern[bytes]:
    from twisted_ch.service.probes import SISProbe

    return SISProbe("Q").answer


def _stockConditions() -> list[dict[str, object]]:
    from twisted_ch.service.probes import _PJLINK_ANSWER, _PJLINK_GREETING

    return [
        {"deliTag": b"\r\n"},
        {"deliTag": b"END-OF-ANSWER"},
        {"deliRex": _sisAnswer()},
        {"deliRex": _PJLINK_ANSWER},
        {"deliRex": _PJLINK_GREETING},
        {"deliRex": re.compile(rb"\d+\.\d+\r\n")},  # a user's pattern ending with a terminator
        {"deliRex": re.compile(rb"Vol\d{1,3}")},  # bounded width
    ]


@pytest.mark.parametrize("kw", _stockConditions())
@pytest.mark.parametrize(
    "unit", [b"1", b"1.", b"%1POWR=", b"PJLINK 1 ", b"1.1\r", b"\n1.", b"END-OF-ANSWE"]
)
def test_a_trickled_response_costs_linear_work(kw: dict[str, object], unit: bytes) -> None:
    n = 2000
    small = _trickled(kw, (unit * n)[:n])
    large = _trickled(kw, (unit * 4 * n)[: 4 * n])
    # quadratic work would grow 16-fold; a search per byte covers a bounded window
    assert large.scanned <= 4 * small.scanned + 4 * 64
    assert large.scanned <= 64 * 4 * n


def test_a_trickle_past_maxResponse_stays_linear() -> None:
    for kw in _stockConditions():
        m = _trickled(kw, b"1." + b"1" * 100_000, size=1)
        assert m.dropped > 0
        assert m.scanned <= 64 * 100_002


def test_a_general_pattern_is_searched_again_only_when_a_match_can_end() -> None:
    m = ResponseMatcher.fromKeywords({"deliRex": rb"<.*>"})
    for _ in range(1000):
        assert m.feed(b"x") is None
    assert m.feed(b"<") is None
    assert m.scanned == 0  # no byte that can end a match arrived: no search at all
    assert m.feed(b"ab>tail") == (b"x" * 1000 + b"<ab>", b"tail")


@pytest.mark.parametrize(
    "pattern",
    [rb"foo$", rb"foo\b", rb"foo(?=x)", rb"(a)\1", rb"(?i)abc", rb"x*", rb"(?:a|)"],
)
def test_patterns_not_analysed_are_searched_whole_every_time(pattern: bytes) -> None:
    from twisted_ch._framing import _planOf

    assert _planOf(re.compile(pattern)) is None


def test_a_lookahead_match_completed_by_a_new_byte_is_found() -> None:
    m = ResponseMatcher.fromKeywords({"deliRex": rb"foo(?=\r)"})
    assert m.feed(b"xfoo") is None
    assert m.feed(b"\r") == (b"xfoo", b"\r")
    m = ResponseMatcher.fromKeywords({"deliRex": rb"Ok\B"})
    assert m.feed(b"Ok") is None
    assert m.feed(b"k") == (b"Ok", b"k")


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [c for c in chunks if c]


def _reference(pattern: re.Pattern[bytes], chunks: list[bytes]) -> tuple[bytes, bytes] | None:
    """What searching the whole held buffer after every chunk answers."""
    held = b""
    for i, chunk in enumerate(chunks):
        held += chunk
        m = pattern.search(held)
        if m is not None:
            return held[: m.end()], held[m.end() :] + b"".join(chunks[i + 1 :])
    return None


_REGEXES = [
    rb"(?m)^(?:(?P<sisError>E\d\d)|(?P<sisAnswer>(?:Ver\d++\*)?\d++\.\d++[\w.\-]*+))\r?\n",
    rb"(?:%1POWR=(?P<power>[^\r%]{0,16}+)|PJLINK (?P<erra>ERRA))\r",
    rb"PJLINK (?:(?P<none>0)|1 (?P<random>[^\r\s]{1,32}+)|(?P<erra>ERRA))\r",
    rb"a.*b",
    rb"(?s)a.*?b",
    rb"\d{2,4}[ab]",
    rb"(?<=a)b+c",
    rb"(?m)^ab?\n",
    rb"(?:ab|ba)+a",
    rb"foo$",
    rb"a\b",
    rb"(a)\1",
]


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    which=st.integers(0, len(_REGEXES) - 1),
    data=st.lists(
        st.sampled_from([b"a", b"b", b"1", b".", b"\r", b"\n", b"E", b"%1POWR=", b"PJLINK 1 "]),
        max_size=30,
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=8),
)
def test_deliRex_is_independent_of_chunking(which: int, data: bytes, cuts: list[int]) -> None:
    pattern = re.compile(_REGEXES[which])
    chunks = _splits(data, cuts)
    m = ResponseMatcher.fromKeywords({"deliRex": pattern})
    assert feedAll(m, chunks) == _reference(pattern, chunks)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    tag=st.sampled_from([b"\r\n", b"\n", b"ab", b"aab"]),
    data=st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n"]), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
)
def test_deliTag_finds_the_first_tag_however_split(
    tag: bytes, data: bytes, cuts: list[int]
) -> None:
    chunks = _splits(data, cuts)
    m = ResponseMatcher.fromKeywords({"deliTag": tag})
    assert feedAll(m, chunks) == _reference(re.compile(re.escape(tag)), chunks)


def test_the_work_count_shows_a_whole_buffer_search_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the measure used above: searching everything held on every chunk (as before) is quadratic
    from twisted_ch import _framing

    monkeypatch.setattr(_framing, "_planOf", lambda pattern: None)
    n = 2000
    small = _trickled({"deliRex": _sisAnswer()}, b"1." + b"1" * (n - 2))
    large = _trickled({"deliRex": _sisAnswer()}, b"1." + b"1" * (4 * n - 2))
    assert large.scanned > 15 * small.scanned
