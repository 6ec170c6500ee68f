"""
C{bench paths}' floor of the program row (C{twisted-thread}): a tiny run end to end, a real
child process polling a real simulator on loopback, in both shapes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is beside the package, not installed
    sys.path.insert(0, str(ROOT))

from bench import paths, poll  # noqa: E402


def test_the_floor_row_sits_right_below_the_program_row() -> None:
    rows = paths.ROW_IMPLS
    assert rows.index("twisted-thread") == rows.index("twisted_ch-program") + 1
    assert "twisted-thread" not in paths.LIMITS  # a reference, with no target of its own
    assert "floor" in paths.LABELS["twisted-thread"]


@pytest.mark.parametrize("shape", ["together", "spread"])
def test_one_thread_polls_every_device_one_round_trip_at_a_time(shape: str) -> None:
    with poll.simulator(10) as (_, ports):
        got = poll.runChild("twisted-thread", 10, ports, 2, "--shape", shape)
    assert got["connected"] == 10 and got["lostInWindow"] == 0
    # every device answered about once a second (1 Hz), none twice per tick
    assert 8 <= got["pollsPerSecond"] <= 12, got
    assert got["sentPerSecond"] <= 12, got
