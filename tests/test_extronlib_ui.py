"""extronlib.ui controls and UIDevice/eBUSDevice state and events, driven on a task.Clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch.extronlib import event
from twisted_ch.extronlib.device import ProcessorDevice, UIDevice, eBUSDevice, uiDevices
from twisted_ch.extronlib.system import MESet
from twisted_ch.extronlib.ui import Button, Knob, Label, Level, Slider


def panel() -> tuple[Clock, UIDevice]:
    clock = Clock()
    return clock, UIDevice("PodiumTLP", reactor=clock)


def recorder(obj: Any, *names: str) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    for name in names:
        setattr(obj, name, lambda *args, name=name: calls.append((name, *args[1:])))
    return calls


def test_button_press_release_without_hold_time() -> None:
    clock, tlp = panel()
    b = Button(tlp, 8000)
    calls = recorder(b, "Pressed", "Released", "Tapped", "Held", "Repeated")
    b.press()
    assert b.PressedState and calls == [("Pressed", "Pressed")]
    b.press()  # a second press while pressed is no new event
    clock.advance(10)
    b.release()
    assert not b.PressedState
    assert calls == [("Pressed", "Pressed"), ("Released", "Released")]
    assert clock.getDelayedCalls() == []


def test_button_tapped_before_hold_time_held_and_repeated_after() -> None:
    clock, tlp = panel()
    b = Button(tlp, "Volume Up", holdTime=1, repeatTime=0.5)
    calls = recorder(b, "Pressed", "Released", "Tapped", "Held", "Repeated")
    b.press()
    clock.advance(0.9)
    b.release()
    assert calls == [("Pressed", "Pressed"), ("Tapped", "Tapped")]
    calls.clear()
    b.press()
    clock.pump([0.5] * 5)  # 2.5 s: held at 1, repeated at 1.5, 2.0, 2.5
    b.release()
    assert calls == [
        ("Pressed", "Pressed"),
        ("Held", "Held"),
        ("Repeated", "Repeated"),
        ("Repeated", "Repeated"),
        ("Repeated", "Repeated"),
        ("Released", "Released"),
    ]
    assert clock.getDelayedCalls() == []
    assert b.Name == "Volume Up" and b.ID == "Volume Up" and b.Host is tlp


def test_button_repeat_without_hold_and_disabled_buttons_fire_nothing() -> None:
    clock, tlp = panel()
    b = Button(tlp, 1, repeatTime=0.2)
    calls = recorder(b, "Pressed", "Released", "Repeated")
    b.press()
    clock.pump([0.2, 0.2])
    b.release()
    assert [c[0] for c in calls] == ["Pressed", "Repeated", "Repeated", "Released"]
    calls.clear()
    b.SetEnable(False)
    b.press()
    b.release()
    assert calls == [] and not b.Enabled


def test_button_visual_state_text_blinking() -> None:
    _, tlp = panel()
    b = Button(tlp, 2)
    b.SetText("Projector")
    b.SetBlinking("Fast", [0, 1])
    assert b.BlinkState == "Blinking" and b.blinking == (0.25, [0, 1])
    b.SetState(1)
    assert b.State == 1 and b.BlinkState == "Not blinking" and b.Text == "Projector"
    b.CustomBlink(0.3, [1, 2])
    assert b.blinking == (0.3, [1, 2])
    with pytest.raises(ValueError, match="rate must be one of"):
        b.SetBlinking("Warp", [0])
    with pytest.raises(TypeError, match="State must be an int"):
        b.SetState("on")  # type: ignore[arg-type]
    b.SetVisible(False)
    assert not b.Visible


def test_event_decorator_on_buttons_and_a_raising_handler_does_not_stop_others() -> None:
    clock, tlp = panel()
    buttons = [Button(tlp, i) for i in (1, 2, 3)]
    seen: list[Any] = []

    @event(buttons, "Pressed")
    def pressed(button: Button, state: str) -> None:
        seen.append(button.ID)
        if button.ID == 2:
            raise RuntimeError("boom")

    for b in buttons:
        b.press()
        b.release()
    assert seen == [1, 2, 3]


def test_label_level_slider_knob() -> None:
    clock, tlp = panel()
    label = Label(tlp, 10)
    label.SetText("Hello")
    assert label.Text == "Hello"
    level = Level(tlp, 11)
    level.SetRange(0, 10, 2)
    level.SetLevel(5)
    level.Inc()
    assert level.Level == 7
    level.SetLevel(50)
    assert level.Level == 10
    level.Dec()
    assert level.Level == 8 and (level.Min, level.Max, level.Step) == (0, 10, 2)
    with pytest.raises(ValueError, match="Min must be below Max"):
        level.SetRange(5, 5)
    slider = Slider(tlp, 12)
    calls = recorder(slider, "Pressed", "Changed", "Released")
    slider.SetRange(0, 100, 5)
    slider.press(12)
    slider.slide(48.9)
    slider.release(200)
    assert calls == [
        ("Pressed", "Pressed", 10),
        ("Changed", "Changed", 50),
        ("Released", "Released", 100),
    ]
    assert slider.Fill == 100
    slider.SetFill(30)
    assert slider.Fill == 30
    knob = Knob(tlp, 13)
    turns = recorder(knob, "Turned")
    knob.turn(-3)
    assert turns == [("Turned", -3)]
    assert set(tlp.controls) >= {10, 11, 12, 13}


def test_meset_sets_states_of_its_buttons() -> None:
    _, tlp = panel()
    a, b, c = (Button(tlp, i) for i in (21, 22, 23))
    group = MESet([a, b, c])
    group.SetStates(c, 2, 5)
    group.SetCurrent(b)
    assert (a.State, b.State, c.State) == (0, 1, 2) and group.GetCurrent() is b
    group.SetCurrent(2)
    assert (a.State, b.State, c.State) == (0, 0, 5)
    group.SetCurrent(None)
    assert c.State == 2 and group.GetCurrent() is None
    group.Remove(a)
    assert group.Objects == [b, c]
    with pytest.raises(ValueError, match="not in this MESet"):
        group.SetCurrent(a)


def test_pages_popups_with_duration_leds_volume() -> None:
    clock, tlp = panel()
    tlp.ShowPage("Main")
    tlp.ShowPopup("Volume", 5)
    tlp.ShowPopup("Help")
    assert tlp.page == "Main" and tlp.popups == ["Volume", "Help"]
    clock.advance(4)
    tlp.ShowPopup("Volume", 5)  # shown again: the time starts over
    clock.advance(4)
    assert "Volume" in tlp.popups
    clock.advance(1)
    assert tlp.popups == ["Help"]
    tlp.popupGroups[1] = {"Help", "Sources"}
    tlp.ShowPopup("Sources")  # hides Help, its group's other popup
    assert tlp.popups == ["Sources"]
    tlp.ShowPopup("Lights")
    tlp.HidePopupGroup(1)
    assert tlp.popups == ["Lights"]
    tlp.HideAllPopups()
    assert tlp.popups == [] and clock.getDelayedCalls() == []
    tlp.SetLEDState(65533, "Red")
    tlp.SetLEDBlinking(65534, "Slow", ["Red", "Off"])
    assert tlp.leds == {65533: "Red"} and tlp.ledBlinking == {65534: ("Slow", ["Red", "Off"])}
    tlp.SetVolume("Master", 40)
    tlp.SetMute("Master", "On")
    assert tlp.GetVolume("Master") == 40 and tlp.GetMute("Master") == "On"
    with pytest.raises(ValueError, match="level must be 0-100"):
        tlp.SetVolume("Master", 101)


def test_sleep_inactivity_and_sensor_reports() -> None:
    clock, tlp = panel()
    calls = recorder(
        tlp,
        "SleepChanged",
        "InactivityChanged",
        "LidChanged",
        "BrightnessChanged",
        "InputPresenceChanged",
        "MotionDetected",
    )
    tlp.SetInactivityTime([30, 60])
    tlp.SetSleepTimer("On", 90)
    clock.advance(29)
    button = Button(tlp, 1)
    button.press()  # activity starts the inactivity over
    button.release()
    clock.advance(59)
    assert calls == [("InactivityChanged", 30.0)]
    assert tlp.InactivityTime == 59
    clock.advance(31)
    assert calls[1:] == [("InactivityChanged", 60.0), ("SleepChanged", "Asleep")]
    tlp.touch()
    assert tlp.SleepState == "Awake" and calls[-1] == ("SleepChanged", "Awake")
    calls.clear()
    tlp.report("Lid", "Closed")
    tlp.report("InputPresence", ("HDMI", True))
    tlp.SetBrightness(50)
    tlp.SetBrightness(50)
    tlp.report("Motion", "Motion")
    assert calls == [
        ("LidChanged", "Closed"),
        ("InputPresenceChanged", ("HDMI", True)),
        ("BrightnessChanged", 50),
        ("MotionDetected", "Motion"),
    ]
    assert tlp.GetInputPresence("HDMI") and tlp.LidState == "Closed"
    tlp.stopTimers()
    assert clock.getDelayedCalls() == []


def test_ebus_device_and_registry() -> None:
    clock = Clock()
    main = ProcessorDevice("Main", reactor=clock)
    ebus = eBUSDevice(main, "EBP", reactor=clock)
    got = recorder(ebus, "ReceiveData")
    ebus.SendCustomCommand("PING")
    ebus.receive(b"PONG")
    assert ebus.sent == [b"PING"] and got == [("ReceiveData", b"PONG")]
    assert ebus.Host is main and ebus.DeviceAlias == "EBP"
    tlp = UIDevice("Registered", reactor=clock)
    assert tlp in uiDevices()
    with pytest.raises(TypeError, match="UIHost must be a UIDevice"):
        Button(main, 1)  # type: ignore[arg-type]
