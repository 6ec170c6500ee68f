# -*- test-case-name: tests.test_examples -*-
"""
Writes ``layout/Room.gdl``, the example project's touch-panel layout, from the spec below with
twisted_ch's layout builder (``twisted_ch.testing``, which writes real GUI Designer ``.gdl`` files
from the format's description; no Extron software, nobody's real layout).  The file is committed;
``tests/test_examples.py`` checks this script still makes exactly it.  After editing the spec::

    python examples/project/make_layout.py

The panel (1024x600): page "Welcome" (Start), page "Main" (projector power and inputs, the
Audio/Lights tabs, Shut down, two labels, the popup group's place), popups "Audio" (mute, gain)
and "Lights" (four scenes) of popup group 1, and the modal popup "Confirm".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted_ch.testing import (
    gdlButton,
    gdlFont,
    gdlGroupRef,
    gdlLabel,
    gdlLayout,
    gdlModalPopup,
    gdlPage,
    gdlPopup,
    gdlSlider,
    gdlState,
    packGDL,
    solidPNG,
)

OUT = Path(__file__).resolve().parent / "layout" / "Room.gdl"

OFF, ON = (52, 73, 94, 255), (26, 188, 156, 255)


class Images:
    """The layout's PNGs by number: one per colour and size."""

    def __init__(self) -> None:
        self.pngs: dict[int, bytes] = {}
        self._ids: dict[tuple[tuple[int, ...], int, int, bool], int] = {}

    def __call__(self, color: tuple[int, ...], width: int, height: int, rgb: bool = False) -> int:
        key = (color, width, height, rgb)
        if key not in self._ids:
            self._ids[key] = n = len(self._ids) + 1
            self.pngs[n] = solidPNG(width, height, color, rgb=rgb)
        return self._ids[key]


def spec() -> tuple[dict[str, Any], dict[int, bytes]]:
    """The layout document and its images."""
    image = Images()
    index = iter(range(1000))  # each container numbers its controls from 0

    def button(
        userId: int,
        name: str,
        left: int,
        top: int,
        text: str,
        text2: str | None = None,
        width: int = 200,
        height: int = 80,
    ) -> dict[str, Any]:
        font = gdlFont("Arial", 16, bold=True)
        states = [
            gdlState(0, "Off", image(OFF, width, height), text, font=font),
            gdlState(
                1, "On", image(ON, width, height), text if text2 is None else text2, font=font
            ),
        ]
        return gdlButton(
            next(index), userId, name, left, top, text, width=width, height=height, states=states
        )

    def label(
        userId: int, name: str, left: int, top: int, width: int, height: int, text: str
    ) -> dict[str, Any]:
        return gdlLabel(next(index), userId, name, left, top, width, height, text, align=3)

    index = iter(range(1000))
    welcome = gdlPage(
        0,
        "Welcome",
        [
            label(0, "Title", 212, 140, 600, 80, "Meeting Room 101"),
            button(2, "Start", 412, 300, "Start"),
        ],
        image=image((20, 30, 48, 255), 1024, 600, rgb=True),
    )
    index = iter(range(1000))
    main = gdlPage(
        1,
        "Main",
        [
            button(1, "Projector Power", 40, 40, "Projector off", "Projector on"),
            button(11, "Input 1", 40, 150, "Laptop"),
            button(12, "Input 2", 40, 250, "PC"),
            button(13, "Input 3", 40, 350, "Camera"),
            button(20, "Audio Tab", 480, 20, "Audio", width=160, height=60),
            button(21, "Lights Tab", 660, 20, "Lights", width=160, height=60),
            button(30, "Shutdown", 40, 480, "Shut down"),
            label(100, "Status", 260, 480, 400, 80, ""),
            label(101, "Projector Status", 260, 40, 200, 80, ""),
            gdlGroupRef(next(index), 1, 480, 100, 500, 400),
        ],
        image=image((30, 40, 56, 255), 1024, 600, rgb=True),
    )
    index = iter(range(1000))
    audio = gdlPopup(
        2,
        "Audio",
        [
            button(40, "Mute", 20, 20, "Mute", "Muted"),
            gdlSlider(
                next(index),
                41,
                "Gain",
                20,
                200,
                400,
                40,
                minImage=image((70, 70, 70, 255), 400, 40),
                maxImage=image(ON, 400, 40),
                thumbImage=image((240, 240, 240, 255), 40, 40),
            ),
            label(42, "Gain Text", 20, 260, 400, 60, ""),
        ],
        group=1,
        fill=(44, 62, 80, 255),
    )
    index = iter(range(1000))
    lights = gdlPopup(
        3,
        "Lights",
        [
            button(51, "Scene 1", 20, 20, "Full"),
            button(52, "Scene 2", 260, 20, "Meeting"),
            button(53, "Scene 3", 20, 140, "Presentation"),
            button(54, "Scene 4", 260, 140, "Off"),
        ],
        group=1,
        fill=(44, 62, 80, 255),
    )
    index = iter(range(1000))
    confirm = gdlModalPopup(
        4,
        "Confirm",
        [
            label(0, "Question", 262, 180, 500, 80, "Shut the room down?"),
            button(31, "Yes", 312, 300, "Yes"),
            button(32, "No", 522, 300, "No"),
        ],
    )
    layout = gdlLayout([welcome, main], [audio, lights, confirm], name="Room", defaultPage=0)
    return layout, image.pngs


def build() -> bytes:
    """The bytes of ``layout/Room.gdl``."""
    layout, images = spec()
    return packGDL(layout, images, stem="Room")


def main(argv: list[str]) -> int:
    data = build()
    if argv[1:] == ["--check"]:
        current = OUT.read_bytes() if OUT.is_file() else b""
        if current != data:
            print(f"{OUT} is not what make_layout.py makes: run it again", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
