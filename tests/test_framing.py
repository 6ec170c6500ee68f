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
