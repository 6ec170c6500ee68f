# -*- test-case-name: tests.test_track_memory -*-
"""A device's track is small: slotted; its transitions keep their time, not its text."""

from __future__ import annotations

from twisted.internet.task import Clock

from twisted_ch.service._config import HealthConfig
from twisted_ch.service._outages import DeviceTrack, isoTime


class Handler:
    ConnectionStatus = "Unknown"


def test_a_track_has_no_dict_and_keeps_times_not_their_text() -> None:
    clock = Clock()
    clock.advance(1_700_000_000.0004)
    start = clock.seconds()
    track = DeviceTrack("a", Handler(), clock, HealthConfig())
    assert not hasattr(track, "__dict__")
    assert track.history == [(start, "Unknown", None)]
    clock.advance(2.5)
    track.statusChanged("Connected")
    assert track.history == [(start, "Unknown", None), (start + 2.5, "Connected", None)]
    # the text is made when shown, the same as it was kept before
    assert track.recent() == [
        ["2023-11-14T22:13:20.000+00:00", "Unknown", None],
        [isoTime(start + 2.5), "Connected", None],
    ]
