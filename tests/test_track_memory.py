# -*- test-case-name: tests.test_track_memory -*-
"""A device's track is small: slotted; tracks made in the same millisecond share its text."""

from __future__ import annotations

from twisted.internet.task import Clock

from twisted_ch.service._config import HealthConfig
from twisted_ch.service._outages import DeviceTrack, isoTime


class Handler:
    ConnectionStatus = "Unknown"


def test_a_track_has_no_dict_and_tracks_of_one_instant_share_its_text() -> None:
    clock = Clock()
    clock.advance(1_700_000_000.0004)
    one = DeviceTrack("a", Handler(), clock, HealthConfig())
    two = DeviceTrack("b", Handler(), clock, HealthConfig())
    assert not hasattr(one, "__dict__")
    assert one.history == [(clock.seconds(), isoTime(clock.seconds()), "Unknown", None)]
    assert one.history[0][1] is two.history[0][1]
    clock.advance(0.002)
    three = DeviceTrack("c", Handler(), clock, HealthConfig())
    assert three.history[0][1] == isoTime(clock.seconds()) != one.history[0][1]
    assert three.recent()[0] == [isoTime(clock.seconds()), "Unknown", None]
