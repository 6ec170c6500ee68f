"""extronlib.system: Timer as a decorator, its StateChanged and minimum, files, log, time zones."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock as TaskClock

from twisted_ch.extronlib import _files, system
from twisted_ch.extronlib.system import (
    Clock,
    File,
    GetCurrentTimezone,
    GetSystemUpTime,
    GetTimezoneList,
    ProgramLog,
    RFile,
    SaveProgramLog,
    SetTimeZone,
    Timer,
)


def test_timer_as_a_decorator() -> None:
    clock = TaskClock()
    ticks: list[int] = []

    @Timer(5, reactor=clock)
    def poll(timer: Timer, count: int) -> None:
        ticks.append(count)

    clock.pump([5, 5])
    assert ticks == [1, 2]
    # the name stands for the timer, as programs use it; calling it calls the function
    assert isinstance(poll, Timer) and poll.Count == 2
    poll(poll, 99)
    assert ticks == [1, 2, 99]
    poll.Stop()
    assert clock.getDelayedCalls() == []


def test_wait_as_a_decorator_names_the_wait() -> None:
    from twisted_ch.extronlib.system import Wait

    clock = TaskClock()
    calls: list[str] = []

    @Wait(300, reactor=clock)
    def Shutdown() -> None:
        calls.append("shutdown")

    clock.advance(100)
    Shutdown.Restart()
    clock.advance(299)
    assert calls == []
    Shutdown.Cancel()
    clock.advance(10)
    assert calls == [] and clock.getDelayedCalls() == []
    Shutdown()
    assert calls == ["shutdown"]


def test_timer_state_changed_event() -> None:
    clock = TaskClock()
    t = Timer(1, reactor=clock)
    states: list[str] = []
    t.StateChanged = lambda timer, state: states.append(state)
    t.Pause()
    t.Pause()
    t.Resume()
    t.Stop()
    t.Restart()
    assert states == ["Paused", "Running", "Stopped", "Running"]
    t.Stop()


def test_timer_minimum_interval_is_a_tenth_of_a_second() -> None:
    clock = TaskClock()
    ticks: list[int] = []
    t = Timer(0.01, lambda timer, count: ticks.append(count), reactor=clock)
    assert t.Interval == 0.1
    clock.advance(0.05)
    assert ticks == []
    clock.advance(0.05)
    assert ticks == [1]
    t.Change(0.001)
    assert t.Interval == 0.1
    t.Stop()


def test_a_tick_is_skipped_while_the_previous_call_runs() -> None:
    clock = TaskClock()
    running: list[Deferred[None]] = []
    calls: list[int] = []

    def slow(timer: Timer, count: int) -> Deferred[None]:
        calls.append(count)
        d: Deferred[None] = Deferred()
        running.append(d)
        return d

    t = Timer(1, slow, reactor=clock)
    clock.pump([1, 1, 1])
    assert calls == [1] and t.Count == 3  # ticks 2 and 3 counted, not called
    running[0].callback(None)
    clock.advance(1)
    assert calls == [1, 4]
    running[1].callback(None)
    t.Stop()


def test_a_running_calls_skipped_ticks_are_logged_once(loggedEvents: Any) -> None:
    running: list[Deferred[None]] = []

    def slow(timer: Timer, count: int) -> Deferred[None]:
        running.append(Deferred())
        return running[-1]

    clock = TaskClock()
    t = Timer(1, slow, reactor=clock)
    clock.pump([1, 1, 1, 1])  # called at 1; 2, 3 and 4 skipped
    running[0].callback(None)
    clock.pump([1, 1, 1])  # called at 5; 6 and 7 skipped
    skipped = [e for e in loggedEvents.texts() if "still running" in e]
    assert [e.split("; ")[1] for e in skipped] == [
        "tick 2 skipped (and those after it until it ends)",
        "tick 6 skipped (and those after it until it ends)",
    ]
    assert t.Count == 7
    running[1].callback(None)
    t.Stop()


@pytest.fixture
def dataDir(tmp_path: Path) -> Iterator[Path]:
    _files.setDataDirectory(tmp_path / "data")
    try:
        yield tmp_path / "data"
    finally:
        _files.setDataDirectory(None)


def test_files_live_in_the_user_area_with_the_processors_path_rules(dataDir: Path) -> None:
    with File("settings/room.json", "w") as f:
        f.write('{"name": "Boardroom"}')
    assert (dataDir / "user" / "settings" / "room.json").read_text() == '{"name": "Boardroom"}'
    assert File.Exists("/settings/room.json") and not File.Exists("nothing")
    File.ChangeDir("settings")
    assert File.GetCurrentDir() == "/settings"
    with File("room.json") as f:
        assert f.read() == '{"name": "Boardroom"}'
    File.MakeDir("logs/old")
    assert File.ListDir() == "logs/\nroom.json\n"
    File.RenameFile("room.json", "../room.json")
    File.ChangeDir("/")
    assert File.Exists("room.json")
    with File("bytes.bin", "wb") as f:
        f.write(b"\x00\x01")
    with File("bytes.bin", "rb") as f:
        assert f.read() == b"\x00\x01"
    File.DeleteFile("bytes.bin")
    File.DeleteDirRecursive("settings")
    assert File.ListDir("/") == "room.json\n"
    for escape in ("../outside.txt", "/../../etc/passwd", "a/../../b"):
        with pytest.raises(ValueError, match="leaves the File area"):
            File(escape, "w")
    os.symlink("/etc", dataDir / "user" / "etc")
    with pytest.raises(ValueError, match="leaves the File area"):
        File("etc/hostname")
    with pytest.raises(FileNotFoundError):
        File.ChangeDir("nowhere")


def test_restricted_files_are_private_and_apart(dataDir: Path) -> None:
    with RFile("secret.txt", "w") as f:
        f.write("key")
    path = dataDir / "restricted" / "secret.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not File.Exists("secret.txt") and RFile.Exists("secret.txt")


def test_save_program_log_to_a_file(dataDir: Path) -> None:
    ProgramLog("projector warming up", "info")
    ProgramLog("projector lamp failed")
    with File("log.txt", "w") as f:
        SaveProgramLog(f)
    text = (dataDir / "user" / "log.txt").read_text()
    assert "info: projector warming up\n" in text and "error: projector lamp failed\n" in text
    SaveProgramLog("again.txt")
    assert "projector lamp failed" in (dataDir / "user" / "again.txt").read_text()


def test_system_uptime_and_time_zones() -> None:
    assert GetSystemUpTime() > 0
    zones = GetTimezoneList()
    assert any(z.id == "Europe/Berlin" for z in zones)
    try:
        SetTimeZone("Asia/Tokyo")
        assert GetCurrentTimezone().id == "Asia/Tokyo"
        assert GetCurrentTimezone().description.startswith("(UTC+09:00)")
        reactor = TaskClock()
        reactor.advance(dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC).timestamp())
        fired: list[dt.datetime] = []
        c = Clock(["09:30:00"], None, lambda clk, when: fired.append(when), reactor=reactor)
        c.Enable()
        reactor.advance(30 * 60)  # 00:30 UTC is 09:30 in Tokyo
        assert [f.strftime("%H:%M") for f in fired] == ["09:30"]
        c.Disable()
        with pytest.raises(ValueError, match="unknown time zone"):
            SetTimeZone("Mars/Olympus")
    finally:
        system._zone = None


def test_meset_rejects_a_string() -> None:
    with pytest.raises(TypeError, match="list of objects"):
        system.MESet("abc")
