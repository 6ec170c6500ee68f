"""
The heap gives big buffers back (L{twisted_ch.service._heap}): glibc's mmap threshold fixed for
C{twistd chandler}, and the free pages trimmed a while after big pages were rendered.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.server import Request

from twisted_ch.service import _heap
from twisted_ch.service._heap import (
    TRIM_AFTER,
    TRIM_DELAY,
    TRIM_WAIT_MAX,
    HeapTrimmer,
)
from twisted_ch.service._stream import RenderQueue


def test_one_trim_a_while_after_the_last_of_a_megabyte_and_none_before() -> None:
    clock = Clock()
    trims: list[float] = []
    heap = HeapTrimmer(clock, trim=lambda: trims.append(clock.seconds()))
    heap.used(TRIM_AFTER - 1)
    clock.advance(10)
    assert trims == [] and clock.getDelayedCalls() == []
    heap.used(1)  # a megabyte now: one trim, TRIM_DELAY after the last piece
    clock.advance(TRIM_DELAY / 2)
    heap.used(100)  # more meanwhile: the same trim, later
    clock.advance(TRIM_DELAY / 2)
    assert trims == []
    clock.advance(TRIM_DELAY / 2)
    assert trims == [10 + 1.5 * TRIM_DELAY] and heap.trims == 1
    clock.advance(10)
    assert heap.trims == 1  # what was counted is gone with the trim
    heap.used(TRIM_AFTER)
    heap.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert heap.trims == 1


def test_pages_rendered_without_a_pause_are_trimmed_every_while() -> None:
    clock = Clock()
    trims: list[float] = []
    heap = HeapTrimmer(clock, trim=lambda: trims.append(clock.seconds()))
    for _ in range(int(3 * TRIM_WAIT_MAX / 0.1)):
        heap.used(TRIM_AFTER)
        clock.advance(0.1)
    assert len(trims) >= 2
    assert all(b - a <= TRIM_WAIT_MAX + 0.2 for a, b in zip([0.0, *trims], trims, strict=False))


def test_without_glibc_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_heap, "_libcTrim", lambda: None)
    clock = Clock()
    heap = HeapTrimmer(clock)
    heap.used(10 * TRIM_AFTER)
    assert clock.getDelayedCalls() == [] and heap.trims == 0


def test_a_render_tells_its_bytes() -> None:
    clock = Clock()
    told: list[int] = []

    class Heap(HeapTrimmer):
        def used(self, nbytes: int) -> None:
            told.append(nbytes)

    queue = RenderQueue(clock, timer=clock.seconds, heap=Heap(clock, trim=lambda: None))
    request: Any = Request.__new__(Request)
    written: list[bytes] = []
    request.write = written.append
    request.registerProducer = lambda producer, streaming: None
    request.unregisterProducer = lambda: None
    request.finish = lambda: None
    request.notifyFinish = Deferred

    def pieces() -> Any:
        yield b"a" * 10
        yield b"b" * 20
        return b"c" * 5

    queue.stream(request, pieces(), None)
    for _ in range(5):
        clock.advance(0.1)
    assert written == [b"a" * 10, b"b" * 20, b"c" * 5] and told == [10, 20, 5]


def _returnBigBuffers(env: dict[str, str]) -> str:
    """What L{returnBigBuffers} answers in a process of its own (mallopt is for good)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_",)}
    clean.pop("GLIBC_TUNABLES", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from twisted_ch.service._heap import returnBigBuffers as r; print(r())",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_threshold_is_set_on_glibc_unless_the_environment_chose() -> None:
    assert _returnBigBuffers({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=262144"}) == "False"
    assert _returnBigBuffers({"MALLOC_MMAP_THRESHOLD_": "262144"}) == "False"
    onGlibc = platform.libc_ver()[0] == "glibc"
    assert _returnBigBuffers({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}) == str(onGlibc)
    assert _returnBigBuffers({}) == str(onGlibc)


def test_no_trim_after_stop() -> None:
    clock = Clock()
    heap = HeapTrimmer(clock, trim=lambda: None)
    heap.stop()
    heap.used(10 * TRIM_AFTER)  # a render still streaming to a connection of the stopped site
    assert clock.getDelayedCalls() == [] and heap.trims == 0
