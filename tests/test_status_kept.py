"""
A kept compact C{/status} is kept gzipped (L{twisted_ch.service._gzip}): sent as it is to a
client that accepts gzip, inflated a step at a time for one that does not.
"""

from __future__ import annotations

import gzip
import json

import pytest
from test_status_paging import CompactRig, Device, body, connect, turn

from twisted_ch.service._gzip import GzipKeeper, acceptsGzip, gunzipped
from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Entry

PATH = "/status?compact=1"


def test_a_keeper_gzips_piece_by_piece_and_inflating_gives_it_back_in_steps() -> None:
    pieces = [json.dumps({"name": f"dev-{i}", "state": "Connected"}).encode() for i in range(5000)]
    keeper = GzipKeeper()
    for piece in pieces:
        keeper.append(piece)
    whole = b"".join(pieces)
    kept = keeper.finish()
    assert keeper.size == len(whole) and gzip.decompress(kept) == whole
    assert len(kept) < len(whole) / 8
    steps: list[bytes] = []
    inflating = gunzipped(kept, step=10_000)
    while True:
        try:
            steps.append(next(inflating))
        except StopIteration as e:
            steps.append(e.value)
            break
    assert b"".join(steps) == whole
    assert len(steps) > len(whole) // 10_000 - 1 and all(len(s) <= 10_000 for s in steps[:-1])
    empty = GzipKeeper()
    assert gzip.decompress(empty.finish()) == b""


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        (None, False),
        (b"", False),
        (b"identity", False),
        (b"gzip", True),
        (b"gzip, deflate, br", True),
        (b"deflate, GZIP;q=0.5", True),
        (b"gzip;q=0", False),
        (b"gzip;q=0.0, deflate", False),
        (b"gzip;q=nonsense", False),
        (b"*", True),
        (b"br, x-gzip", True),
        (b"gzipped", False),
    ],
)
def test_which_clients_take_gzip(header: bytes | None, takes: bool) -> None:
    assert acceptsGzip(header) is takes


class Rig(CompactRig):
    """L{CompactRig} of C{devices} devices, a step a turn, asked with an C{Accept-Encoding}."""

    def __init__(self, devices: int) -> None:
        super().__init__(devices)
        self.site.renders.share = 1.0
        self.site.renders.turn = 0.0  # a step a turn

    def fetch(self, encoding: str | None = None) -> tuple[bytes, bytes, int]:
        """The head and body of C{/status?compact=1}, and the turns it took."""
        channel, transport = connect(self.site)
        extra = f"Accept-Encoding: {encoding}\r\n" if encoding is not None else ""
        channel.dataReceived(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        turns = 0
        while b"0\r\n\r\n" not in transport.value() and b"content-length" not in (
            transport.value().lower()
        ):
            turn(self.clock)
            turns += 1
            assert turns < 1000
        raw = transport.value()
        return raw.partition(b"\r\n\r\n")[0].lower(), body(raw)[1], turns


def test_a_kept_document_is_gzip_to_a_client_that_takes_it_and_inflated_in_steps_to_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twisted_ch.service import _gzip

    rig = Rig(STATUS_ROWS_PER_STEP * 20)
    head, first, turns = rig.fetch("gzip")  # rendered now: streamed as it is made
    assert b"content-encoding" not in head and b"vary: accept-encoding" in head and turns >= 19
    document = json.loads(first)
    assert len(document["devices"]) == STATUS_ROWS_PER_STEP * 20
    [(key, (until, kept))] = rig.status._kept.items()
    assert key == PATH.encode() and gzip.decompress(kept) == first
    assert len(kept) < len(first) / 5  # what stays in memory meanwhile
    head, again, turns = rig.fetch("gzip, deflate")  # served again: gzip as kept
    assert b"content-encoding: gzip" in head and b"vary: accept-encoding" in head
    assert again == kept and turns == 0
    monkeypatch.setattr(_gzip, "INFLATE_STEP", 4096)
    head, plain, turns = rig.fetch()  # no gzip: inflated a step per turn
    assert b"content-encoding" not in head and plain == first
    assert turns >= len(first) // 4096 - 1
    head, plain, _ = rig.fetch("gzip;q=0")
    assert b"content-encoding" not in head and plain == first


def test_a_document_of_one_step_is_kept_and_served_again_too() -> None:
    rig = Rig(3)
    _, first, _ = rig.fetch()
    head, again, _ = rig.fetch("gzip")
    assert b"content-encoding: gzip" in head and gzip.decompress(again) == first
    rig.now[0] += 10.0  # its time is up: rendered again, with the new device
    rig.registry.add(Entry("hall", Device("Disconnected")))
    _, fresh, _ = rig.fetch("gzip")
    assert b'"hall"' in fresh
