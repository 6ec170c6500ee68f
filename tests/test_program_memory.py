"""
A program cannot exhaust the service's memory (issue 19 item 7): its callback queue is bounded
in bytes as well as in callbacks, and a program whose process grows past C{[program]
memoryLimit} is stopped with one line while the service and its other devices run on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from twisted_ch import GetConnectionHandler
from twisted_ch._memory import MemoryLimitExceeded, MemoryWatchdog, residentBytes
from twisted_ch._runtime import ProgramThread
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.program import Program
from twisted_ch.service._config import ConfigError, ProgramConfig, parseConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import ProgramService
from twisted_ch.testing import DeviceServer
from twisted_ch.testing._probes import SIS_RESPONSES

MiB = 1024 * 1024


class Lines(list[dict[str, Any]]):
    def texts(self) -> list[str]:
        return [formatEvent(e) for e in self]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """The events logged at warn or above."""
    seen = Lines()

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level", LogLevel.debug) >= LogLevel.warn:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


# the callback queue, bounded in bytes


def test_a_slow_receive_data_and_a_chatty_device_hold_at_most_the_byte_bound(
    lines: Lines,
) -> None:
    clock = Clock()
    thread = ProgramThread(clock, maxQueueBytes=1 * MiB)  # never started: nothing drains it
    chunk = b"\x00" * 65536
    states = []
    for i in range(10_000):  # the 10,000 x 64 KB = 655 MB
        thread.call(lambda data: None, chunk, droppable=True)
        if i % 1000 == 0:
            states.append(thread.call(lambda state: None, "Connected"))  # never dropped
    assert thread.queuedBytes == 1 * MiB  # 16 chunks of 64 KiB, then none
    assert thread.dropped == 10_000 - 16 and thread.droppedBytes == (10_000 - 16) * 65536
    assert thread._queue.qsize() == 16 + len(states)
    texts = lines.texts()
    assert len(texts) == 1, texts
    assert "17 callbacks behind; dropped" in texts[0] and "1048576 bytes of data queued" in texts[0]
    clock.advance(60)
    assert len(lines) == 2 and "(9983 more like it in the previous 60 s)" in lines.texts()[1]
    thread.stop()
    assert clock.getDelayedCalls() == []


def test_one_chunk_larger_than_the_bound_is_queued_when_nothing_else_is() -> None:
    clock = Clock()
    thread = ProgramThread(clock, maxQueueBytes=1000)
    thread.call(lambda data: None, b"x" * 5000, droppable=True)
    thread.call(lambda data: None, b"y", droppable=True)
    assert (thread.queuedBytes, thread.dropped) == (5000, 1)
    thread.stop()


@pytest_twisted.inlineCallbacks
def test_the_byte_count_falls_as_the_program_thread_takes_the_data() -> Any:
    thread = ProgramThread(reactor, maxQueueBytes=10 * MiB)
    got: list[int] = []
    done = [
        thread.call(lambda data: got.append(len(data)), b"z" * MiB, droppable=True)
        for _ in range(5)
    ]
    assert thread.queuedBytes == 5 * MiB
    thread.start()
    yield DeferredList(done)
    assert got == [MiB] * 5 and thread.queuedBytes == 0
    yield thread.stop()


# the watchdog, sampled by hand


def test_the_watchdog_trips_once_past_the_limit() -> None:
    readings = iter([100 * MiB, 120 * MiB, 163 * MiB, 170 * MiB, 400 * MiB])
    trips: list[int] = []
    watchdog = MemoryWatchdog(64 * MiB, trips.append, read=lambda: next(readings))
    assert watchdog.sample() is None  # not started
    assert watchdog.start()
    assert watchdog.sample() == 20 * MiB and trips == []
    assert watchdog.sample() == 63 * MiB and trips == []
    assert watchdog.sample() == 70 * MiB and trips == [70 * MiB]
    assert watchdog.sample() == 300 * MiB and trips == [70 * MiB]  # once
    assert watchdog.peak == 300 * MiB


def test_where_memory_cannot_be_read_the_watchdog_says_so() -> None:
    watchdog = MemoryWatchdog(64 * MiB, lambda growth: None, read=lambda: None)
    assert not watchdog.start()
    assert residentBytes() is not None  # Linux: /proc/self/statm


def hog(chunks: list[bytes], cap: int) -> None:
    """A program callback allocating without bound (up to a cap, should the bound fail)."""
    while len(chunks) < cap:
        chunks.append(b"\x01" * MiB)  # filled: resident at once


@pytest_twisted.inlineCallbacks
def test_a_program_past_its_limit_is_interrupted_and_stopped(lines: Lines) -> Any:
    limit = 64 * MiB
    program = Program(reactor, name="hog", memoryLimit=limit, samplePeriod=None)
    chunks: list[bytes] = []
    ran = program.runCallable(hog, chunks, 1024)
    watchdog = program.memory
    assert watchdog is not None
    for _ in range(20_000):  # sampled by hand each reactor turn; bounded
        if watchdog.sample() is not None and watchdog.tripped:
            break
        yield deferLater(reactor, 0.001, lambda: None)
    assert watchdog.tripped
    raised = yield ran.addCallbacks(lambda result: result, lambda failure: failure.value)
    assert isinstance(raised, MemoryLimitExceeded)  # in the program's code
    assert program.stoppedForMemory is not None
    yield program.stoppedForMemory
    held = len(chunks)
    assert held < 1024  # interrupted long before its cap
    program.thread._thread.join(10)  # it has ended (the stop fired): its function returns
    assert not program.thread._thread.is_alive()
    texts = [t for t in lines.texts() if "hog" in t]
    assert len(texts) == 1, texts
    assert "program hog stopped: the process grew by" in texts[0]
    assert "past its memoryLimit of 64 MiB" in texts[0]
    print(f"\nby hand: tripped at {watchdog.peak // MiB} MiB of growth; {held} MiB allocated")
    # nothing of it runs: a call now is not run
    more = yield program.thread.call(lambda: chunks.append(b"late"))
    assert more is None and len(chunks) == held


def stubborn(chunks: list[bytes], cap: int) -> None:
    """A program that catches even the watchdog's exception (once), and allocates on."""
    try:
        hog(chunks, cap)
    except BaseException:
        hog(chunks, cap)


@pytest_twisted.inlineCallbacks
def test_a_program_that_catches_the_exception_gets_it_again(lines: Lines) -> Any:
    program = Program(reactor, name="stubborn", memoryLimit=64 * MiB, samplePeriod=None)
    chunks: list[bytes] = []
    ran = program.runCallable(stubborn, chunks, 1024)
    watchdog = program.memory
    assert watchdog is not None
    for _ in range(20_000):  # sampled by hand; then abort again, as the sampler thread does
        if watchdog.sample() is not None and watchdog.tripped:
            program.thread.abort()
        if ran.called:
            break
        yield deferLater(reactor, 0.001, lambda: None)
    raised = yield ran.addCallbacks(lambda result: result, lambda failure: failure.value)
    assert isinstance(raised, MemoryLimitExceeded)
    assert len(chunks) < 1024
    yield program.stoppedForMemory
    assert len([t for t in lines.texts() if "stubborn" in t]) == 1


def test_memory_limit_in_the_config(tmp_path: Path) -> None:
    def program(value: str) -> ProgramConfig:
        parsed = parseConfig(tomllib.loads(f"[program]\nfile = 'main.py'\n{value}\n"))
        assert parsed.program is not None
        return parsed.program

    assert program("").memoryLimit == 1024 * MiB  # the default
    assert program('memoryLimit = "512 MiB"').memoryLimit == 512 * MiB
    assert program('memoryLimit = "2GiB"').memoryLimit == 2048 * MiB
    assert program("memoryLimit = 256").memoryLimit == 256 * MiB
    assert program('memoryLimit = "off"').memoryLimit is None
    for bad in ('"10 MiB"', '"lots"', "true", '"2 TiB"', "nan"):
        with pytest.raises(ConfigError, match=r"program\.memoryLimit"):
            program(f"memoryLimit = {bad}")


# the whole service: the program stopped, a witness device polled on

HOG = """
hog = []
while len(hog) < 1024:                     # a cap, should the bound fail
    hog.append(b"\\x01" * (1 << 20))
"""


@pytest_twisted.inlineCallbacks
def test_a_hog_is_stopped_with_one_line_and_the_witness_is_polled_on(
    tmp_path: Path, lines: Lines
) -> Any:
    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    witness = GetConnectionHandler(
        EthernetClientInterface("127.0.0.1", device.port),
        lambda h: h.Send(b"Q"),
        pollFrequency=0.1,
        DisconnectLimit=100,
    )
    path = tmp_path / "hog.py"
    path.write_text(HOG)
    registry = Registry(clock=reactor)
    service = ProgramService(
        reactor, str(path), registry, config=ProgramConfig(memoryLimit=64 * MiB)
    )
    failed: list[Any] = []
    service.onFailure = failed.append
    try:
        yield witness.Connect()
        service.startService()
        program = service.program
        for _ in range(2000):  # bounded: the program runs, then is stopped
            if program.stoppedForMemory is not None:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        assert program.stoppedForMemory is not None
        yield program.stoppedForMemory
        polled = device.requests
        for _ in range(2000):  # the witness keeps being polled
            if device.requests >= polled + 20:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        assert device.requests >= polled + 20
        assert witness.Interface.link.connected
        assert failed == [] and service.running  # the service runs on
        texts = lines.texts()  # every line at warn or above
        assert len(texts) == 1, texts
        assert "program hog stopped: the process grew by" in texts[0]
        assert program.memory is not None
        after = (residentBytes() or 0) - (program.memory.baseline or 0)
        print(
            f"\nservice: tripped at {program.memory.peak // MiB} MiB of growth (limit 64 MiB);"
            f" witness polls answered after the stop: {device.requests - polled};"
            f" growth once stopped: {after // MiB} MiB"
        )
    finally:
        yield service.stopService()
        yield witness.Disconnect()
        yield device.shutdown()


@pytest_twisted.ensureDeferred
async def test_twistd_stops_a_hog_and_polls_its_devices_on(tmp_path: Path) -> None:
    from test_tap import chandler, stop

    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    (tmp_path / "hog.py").write_text(HOG)
    (tmp_path / "site.toml").write_text(
        "[[device]]\n"
        'name = "witness"\n'
        f'endpoint = "tcp:host=127.0.0.1:port={device.port}"\n'
        'probe = { type = "sis", query = "Q" }\n'
        "pollFrequency = 0.1\n"
        "[program]\n"
        'file = "hog.py"\n'
        'memoryLimit = "64 MiB"\n'
    )
    process = chandler(tmp_path, "--config", "site.toml")
    try:
        await process.waitFor(rb"program hog stopped: [^\n]*\n", 60)
        polled = device.requests
        for _ in range(1000):  # bounded: the witness is polled on
            if device.requests >= polled + 10:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert device.requests >= polled + 10
        assert process.running
    finally:
        code = await stop(process)
        await device.shutdown()
    assert code == 0, process.text
    levels = ("#warn]", "#error]", "#critical]")
    lines = [line for line in process.text.splitlines() if any(x in line for x in levels)]
    stopped = [line for line in lines if "program hog stopped" in line]
    assert len(stopped) == 1, process.text
    assert "past its memoryLimit of 64 MiB" in stopped[0]
    assert [line for line in lines if "hog" in line] == stopped, lines
    print("\ntwistd:", stopped[0].split("] ", 1)[1], f"; witness polls: {device.requests}")
