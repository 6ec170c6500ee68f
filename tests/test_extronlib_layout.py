"""extronlib with a GUI Designer layout: names, initial states, shared controls, popup groups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import LoggedEvents
from twisted.internet.task import Clock

from twisted_ch import _site
from twisted_ch.extronlib.device import UIDevice
from twisted_ch.extronlib.ui import Button, Knob, Label, Level, Slider
from twisted_ch.panel import Layout, readLayout
from twisted_ch.testing import (
    fixtureImages,
    gdlButton,
    gdlGroupRef,
    gdlLabel,
    gdlLayout,
    gdlLevel,
    gdlModalPopup,
    gdlPage,
    gdlPopup,
    gdlSlider,
    gdlState,
    packGDL,
)


def projectLayout() -> dict[str, Any]:
    """Two pages, a popup group of two, a modal popup; a UserId shared by two popups."""
    main = gdlPage(
        0,
        "Main",
        [
            gdlButton(0, 2001, "Wireless1 Mute", 40, 40, "Mute", "Muted"),
            gdlButton(
                1, 2002, "Source", 40, 140,
                states=[gdlState(0, "A", 1, "HDMI"), gdlState(5, "B", 2, "VGA")],
                defaultState=5,
            ),
            gdlLabel(2, 10, "Room Name", 40, 260, 300, 50, "Board Room"),
            gdlLevel(3, 20, "Meter", 300, 40, 40, 300, minImage=4, maxImage=5),
            gdlGroupRef(4, 1, 480, 100, 500, 400),
        ],
    )  # fmt: skip
    settings = gdlPage(2, "Settings", [gdlButton(0, 3001, "Back", 10, 10, "Back")])
    audio = gdlPopup(
        10,
        "Audio",
        [gdlSlider(0, 30, "Program Volume", 20, 200, 400, 40, minImage=7, maxImage=8, thumbImage=9),
         gdlButton(1, 99, "Close", 400, 0, "X", width=80, height=80)],
        group=1,
    )  # fmt: skip
    video = gdlPopup(11, "Video", [gdlButton(0, 99, "Close", 400, 0, "X")], group=1)
    confirm = gdlModalPopup(12, "Confirm", [gdlButton(0, 40, "Yes", 100, 100, "Yes")])
    return gdlLayout([main, settings], [audio, video, confirm])


@pytest.fixture
def gdlPath(tmp_path: Path) -> Path:
    layout = projectLayout()
    path = tmp_path / "room.gdl"
    path.write_bytes(packGDL(layout, fixtureImages(layout)))
    return path


@pytest.fixture
def layout(gdlPath: Path) -> Layout:
    return readLayout(gdlPath)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.program", text=True) as lines:
        yield lines


@pytest.fixture
def site() -> Iterator[_site.ProgramSite]:
    installed = _site.ProgramSite()
    _site.install(installed)
    try:
        yield installed
    finally:
        _site.uninstall(installed)


def panel(layout: Layout | None) -> tuple[Clock, UIDevice]:
    clock = Clock()
    tlp = UIDevice("TLP", reactor=clock)
    tlp.useLayout(layout)
    return clock, tlp


def recorder(*objects: Any, names: tuple[str, ...] = ("Pressed", "Released")) -> list[Any]:
    calls: list[Any] = []
    for obj in objects:
        for name in names:
            setattr(obj, name, lambda o, *args, name=name: calls.append((o, name, *args)))
    return calls


# the layout from the program's site


def test_a_uidevice_reads_the_layout_its_site_gives_its_alias(
    gdlPath: Path, site: _site.ProgramSite
) -> None:
    site.layouts = {"TLP": str(gdlPath)}
    tlp = UIDevice("TLP", reactor=Clock())
    assert tlp.layout is not None and tlp.layout.source == str(gdlPath)
    assert Button(tlp, 2001).Name == "Wireless1 Mute"
    assert UIDevice("Other", reactor=Clock()).layout is None


def test_a_layout_that_cannot_be_read_is_one_log_line_and_the_panel_runs_without(
    tmp_path: Path, site: _site.ProgramSite, logged: list[str]
) -> None:
    bad = tmp_path / "broken.gdl"
    bad.write_bytes(b"not a layout")
    site.layouts = {"TLP": str(bad)}
    tlp = UIDevice("TLP", reactor=Clock())
    assert tlp.layout is None
    assert len(logged) == 1
    assert logged[0].startswith("TLP: runs without its layout: ")
    assert "broken.gdl: not a GDL" in logged[0]
    assert Button(tlp, 2001).Name == "Button2001"


# names, states, text


def test_names_initial_states_and_texts_come_from_the_layout(layout: Layout) -> None:
    _, tlp = panel(layout)
    mute, source = Button(tlp, 2001), Button(tlp, 2002)
    label, level, slider = Label(tlp, 10), Level(tlp, 20), Slider(tlp, 30)
    assert (mute.Name, mute.State, mute.Text) == ("Wireless1 Mute", 0, "Mute")
    assert (source.Name, source.State, source.Text) == ("Source", 5, "VGA")
    assert (label.Name, label.Text) == ("Room Name", "Board Room")
    assert (level.Name, slider.Name) == ("Meter", "Program Volume")
    assert mute.Name[:-5] == "Wireless1"  # what a program builds DSP control names from
    assert Button(tlp, 7777).Name == "Button7777"  # not in the layout: as without one


def test_a_control_created_by_its_layout_name_is_the_one_with_that_userid(layout: Layout) -> None:
    _, tlp = panel(layout)
    byName = Button(tlp, "Wireless1 Mute")
    assert byName.ID == 2001 and byName.Name == "Wireless1 Mute"
    byName.SetState(1)
    assert Button(tlp, 2001).State == 1
    assert Button(tlp, "Not In Layout").ID == "Not In Layout"


def test_without_a_layout_names_are_generated_as_before() -> None:
    _, tlp = panel(None)
    b = Button(tlp, 2001)
    assert (b.Name, b.State, b.Text, b.ID) == ("Button2001", 0, "", 2001)
    assert tlp.layoutReport() == {"missing": [], "unwrapped": []}


# two objects, one control


def test_two_buttons_for_one_id_share_what_the_panel_shows(
    layout: Layout, logged: list[str]
) -> None:
    _, tlp = panel(layout)
    first, second = Button(tlp, 2001), Button(tlp, 2001)
    first.SetState(1)
    assert second.State == 1 and tlp.controls[2001].State == 1
    second.SetText("Muted!")
    assert first.Text == "Muted!"
    second.SetBlinking("Fast", [0, 1])
    assert first.BlinkState == "Blinking"
    first.SetState(0)
    assert second.BlinkState == "Not blinking"
    second.SetVisible(False)
    first.SetEnable(False)
    assert (first.Visible, second.Enabled) == (False, False)
    assert logged == []  # no "replaces the first"
    assert list(tlp.controls) == [2001] and tlp.controls[2001] is first


def test_a_press_fires_the_events_of_every_object_for_the_id() -> None:
    clock, tlp = panel(None)
    first, second = Button(tlp, 1), Button(tlp, 1, holdTime=1)
    calls = recorder(first, second, names=("Pressed", "Released", "Held", "Tapped"))
    first.press()  # the panel presses the control, whichever object it holds
    assert calls == [(first, "Pressed", "Pressed"), (second, "Pressed", "Pressed")]
    assert first.PressedState and second.PressedState
    calls.clear()
    clock.advance(1)
    second.release()
    assert calls == [(second, "Held", "Held"), (first, "Released", "Released"),
                     (second, "Released", "Released")]  # fmt: skip
    assert clock.getDelayedCalls() == []


def test_a_disabled_shared_control_fires_nothing_for_any_object() -> None:
    _, tlp = panel(None)
    first, second = Button(tlp, 1), Button(tlp, 1)
    calls = recorder(first, second)
    second.SetEnable(False)
    first.press()
    first.release()
    assert calls == []


def test_sliders_knobs_and_levels_for_one_id_are_one_control() -> None:
    _, tlp = panel(None)
    a, b = Slider(tlp, 5), Slider(tlp, 5)
    a.SetRange(0, 10)
    assert b.Max == 10
    calls = recorder(a, b, names=("Changed",))
    b.slide(4)
    assert calls == [(a, "Changed", "Changed", 4), (b, "Changed", "Changed", 4)]
    assert a.Fill == 4
    k1, k2 = Knob(tlp, 6), Knob(tlp, 6)
    turns = recorder(k1, k2, names=("Turned",))
    k1.turn(2)
    assert turns == [(k1, "Turned", 2), (k2, "Turned", 2)]
    l1, l2 = Level(tlp, 7), Level(tlp, 7)
    l1.SetLevel(30)
    l2.Inc()
    assert l1.Level == 31


def test_stopping_the_panel_stops_the_timers_of_every_object() -> None:
    clock, tlp = panel(None)
    Button(tlp, 1, repeatTime=1)
    second = Button(tlp, 1, holdTime=2)
    second.press()
    assert len(clock.getDelayedCalls()) == 2
    tlp.stopTimers()
    assert clock.getDelayedCalls() == []


# pages, popups, groups


def test_showing_a_popup_hides_the_others_of_its_layout_group(layout: Layout) -> None:
    _, tlp = panel(layout)
    assert tlp.popupGroups == {1: {"Audio", "Video"}}
    tlp.ShowPopup("Confirm")
    tlp.ShowPopup("Audio")
    tlp.ShowPopup(11)  # Video, by ID: Audio hides
    assert tlp.popups == ["Confirm", 11]
    tlp.ShowPopup("Video")  # the same popup by name: shown once
    assert tlp.popups == ["Confirm", "Video"]
    tlp.HidePopup(11)
    assert tlp.popups == ["Confirm"]


def test_hide_popup_group_takes_the_layout_group_id(layout: Layout, logged: list[str]) -> None:
    _, tlp = panel(layout)
    tlp.ShowPopup("Confirm")
    tlp.ShowPopup(10)
    tlp.HidePopupGroup(1)
    assert tlp.popups == ["Confirm"]
    tlp.HidePopupGroup(7)  # no such group: nothing hidden, one line
    tlp.HidePopupGroup(7)
    assert tlp.popups == ["Confirm"]
    assert logged == [f"TLP: the layout {layout.source} has no popup group 7"]


def test_a_timed_popup_shown_under_its_other_name_is_replaced(layout: Layout) -> None:
    clock, tlp = panel(layout)
    tlp.ShowPopup(10, 5)
    tlp.ShowPopup("Audio")  # until hidden: the timer of the first showing is gone
    clock.advance(6)
    assert tlp.popups == ["Audio"] and clock.getDelayedCalls() == []


def test_pages_and_popups_by_name_or_id_and_unknown_ones_logged_once(
    layout: Layout, logged: list[str]
) -> None:
    _, tlp = panel(layout)
    tlp.ShowPage("Settings")
    tlp.ShowPage(0)
    assert tlp.page == 0 and logged == []
    tlp.ShowPage("Nowhere")
    tlp.ShowPage("Nowhere")
    tlp.ShowPopup("Main")  # a page is not a popup
    assert tlp.page == "Nowhere" and tlp.popups == ["Main"]
    assert logged == [
        f"TLP: the layout {layout.source} has no page 'Nowhere'",
        f"TLP: the layout {layout.source} has no popup 'Main'",
    ]


def test_without_a_layout_unknown_groups_hide_every_popup_as_before() -> None:
    _, tlp = panel(None)
    tlp.ShowPopup("A")
    tlp.HidePopupGroup(3)
    assert tlp.popups == []


# the report


def test_the_layout_report_lists_missing_and_unwrapped_controls(layout: Layout) -> None:
    _, tlp = panel(layout)
    Button(tlp, 2001)
    Button(tlp, 2001)
    Button(tlp, 8000)
    Label(tlp, "Nameless")
    Slider(tlp, 30)
    assert tlp.layoutReport() == {
        "missing": [8000, "Nameless"],
        "unwrapped": [10, 20, 40, 99, 2002, 3001],
    }
