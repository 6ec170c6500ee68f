"""
ControlScript's C{extronlib.ui}: the controls of a L{UIDevice<twisted_ch.extronlib.device.UIDevice>}
(L{Button}, L{Knob}, L{Label}, L{Level}, L{Slider}), in memory.

What the program sets (text, state, level, visibility) is state the virtual panel shows.  What a
person does is driven by the lowercase methods: C{Button.press()}/C{release()},
C{Knob.turn(steps)}, C{Slider.press(value)}/C{slide(value)}/C{release(value)}; they fire the
program's events as a panel would (through its program thread), and a disabled control fires none.
Hold and repeat times run on the runtime's reactor (a L{twisted.internet.task.Clock} in tests).

Several objects created for one ID are one control, as on a panel: they show one state (what one
sets, the others read), and a touch fires the events of every one of them, each with its own
hold and repeat times.  With a layout (L{UIDevice.layout}) a control's Name, its initial state and
text come from the layout's control of that UserId (a name given as ID is looked up there too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall

from twisted_ch._checks import seconds
from twisted_ch._events import Event, emit
from twisted_ch._runtime import Runtime
from twisted_ch.extronlib.device import UIDevice

if TYPE_CHECKING:
    from twisted_ch.panel._gdl import Control

__all__ = ["Button", "Knob", "Label", "Level", "Slider"]

_BLINK_RATES = {"Slow": 1.0, "Medium": 0.5, "Fast": 0.25}


class _Look:
    """What a panel shows of one control ID: shared by every object the program made for it."""

    def __init__(self, layout: Control | None) -> None:
        self.visible = True
        self.enabled = True
        self.state = layout.defaultState if layout is not None else 0
        self.text = layout.text if layout is not None else ""
        self.blink: tuple[float, list[int]] | None = None
        self.min: float = 0
        self.max: float = 100
        self.step: float = 1
        self.level: float = 0
        self.fill: float = 0


class _Control:
    """What every control shares: its host, ID, name and visibility."""

    def __init__(self, UIHost: UIDevice, ID: int | str) -> None:
        if not isinstance(UIHost, UIDevice):
            raise TypeError(f"UIHost must be a UIDevice, not {type(UIHost).__name__}")
        if isinstance(ID, bool) or not isinstance(ID, int | str):
            raise TypeError(f"ID must be an int or a name, not {ID!r}")
        self._host = UIHost
        self._rt: Runtime = UIHost._rt
        self._id, layout = UIHost._layoutControl(ID)
        if layout is not None:
            self._name = layout.name
        else:
            self._name = ID if isinstance(ID, str) else f"{type(self).__name__}{ID}"
        first = UIHost._addControl(self)
        self._look: _Look = first._look if first is not None else _Look(layout)

    @property
    def Host(self) -> UIDevice:
        """The UIDevice the control is on."""
        return self._host

    @property
    def ID(self) -> int | str:
        """The control's ID (or the name it was created with, unless a layout has that name)."""
        return self._id

    @property
    def Name(self) -> str:
        """The control's name."""
        return self._name

    @property
    def Visible(self) -> bool:
        """Whether the control is shown."""
        return self._look.visible

    @property
    def Enabled(self) -> bool:
        """Whether the control reacts to touches."""
        return self._look.enabled

    @property
    def _enabled(self) -> bool:
        return self._look.enabled

    def SetVisible(self, visible: bool) -> None:
        """Show or hide the control."""
        self._look.visible = _bool(visible, "visible")

    def _setEnable(self, enable: bool) -> None:
        self._look.enabled = _bool(enable, "enable")

    def _emit(self, name: str, *args: object) -> None:
        emit(self._rt, self, name, self, *args)

    def _everyObject(self) -> list[Any]:
        """Every object the program made for this control's ID (this one included)."""
        return self._host._sharersOf(self)

    def _stopTimers(self) -> None:
        """Cancel the control's pending timers (its host's clean stop; reactor thread)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id!r} on {self._host.DeviceAlias}>"


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool | int):
        raise TypeError(f"{what} must be True or False, not {value!r}")
    return bool(value)


def _optionalSeconds(value: object, what: str) -> float | None:
    return None if value is None else seconds(value, what)


class Button(_Control):
    """
    A hard or soft button.  Pressed, then (with C{holdTime}) Held once after C{holdTime}
    seconds, and Repeated every C{repeatTime} seconds while it stays pressed (after the hold, or
    from the press without C{holdTime}).  On release: Released, except that with C{holdTime} a
    release before the hold is Tapped instead.  Each event is called as C{(button, state)}.
    """

    Pressed = Event["Button"]("Called as C{(button, 'Pressed')}.")
    Released = Event["Button"]("Called as C{(button, 'Released')}.")
    Held = Event["Button"]("Called as C{(button, 'Held')} once, holdTime after the press.")
    Repeated = Event["Button"]("Called as C{(button, 'Repeated')} every repeatTime while held.")
    Tapped = Event["Button"]("Called as C{(button, 'Tapped')} for a release before holdTime.")

    def __init__(
        self,
        UIHost: UIDevice,
        ID: int | str,
        holdTime: float | None = None,
        repeatTime: float | None = None,
    ) -> None:
        self._holdTime = _optionalSeconds(holdTime, "holdTime")
        self._repeatTime = _optionalSeconds(repeatTime, "repeatTime")
        super().__init__(UIHost, ID)
        self._pressed = False
        self._held = False
        self._timer: IDelayedCall | None = None

    # documented properties

    @property
    def PressedState(self) -> bool:
        """Whether the button is pressed now."""
        return self._pressed

    @property
    def State(self) -> int:
        """The visual state number."""
        return self._look.state

    @property
    def BlinkState(self) -> str:
        """'Blinking' or 'Not blinking'."""
        return "Blinking" if self._look.blink is not None else "Not blinking"

    @property
    def Text(self) -> str:
        """The text set with L{SetText} (at first: the layout's)."""
        return self._look.text

    @property
    def blinking(self) -> tuple[float, list[int]] | None:
        """(seconds per state, states) while blinking, else None."""
        return self._look.blink

    # documented methods

    def SetState(self, State: int) -> None:
        """Set the visual state (stops blinking)."""
        if isinstance(State, bool) or not isinstance(State, int):
            raise TypeError(f"State must be an int, not {type(State).__name__}")
        self._look.blink = None
        self._look.state = State

    def SetText(self, text: str) -> None:
        """Set the button's text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        self._look.text = text

    def SetEnable(self, enable: bool) -> None:
        """Enable or disable the button (a disabled button fires no events)."""
        self._setEnable(enable)

    def SetBlinking(self, rate: str, stateList: list[int]) -> None:
        """Blink through C{stateList} at 'Slow', 'Medium' or 'Fast' (0.5, 1, 2 Hz)."""
        if rate not in _BLINK_RATES:
            raise ValueError(f"rate must be one of {', '.join(_BLINK_RATES)}, got {rate!r}")
        self._look.blink = (_BLINK_RATES[rate], self._states(stateList))

    def CustomBlink(self, rate: float, stateList: list[int]) -> None:
        """Blink through C{stateList}, C{rate} seconds per state."""
        self._look.blink = (seconds(rate, "rate"), self._states(stateList))

    @staticmethod
    def _states(stateList: object) -> list[int]:
        if not isinstance(stateList, list | tuple) or not stateList:
            raise TypeError("stateList must be a non-empty list of state numbers")
        for s in stateList:
            if isinstance(s, bool) or not isinstance(s, int):
                raise TypeError(f"state numbers are ints, not {s!r}")
        return list(stateList)

    # driving it

    def press(self) -> None:
        """A finger on the button: Pressed, and the hold/repeat timers start."""
        self._rt.twoFaced(self._touchAll, "_press")

    def release(self) -> None:
        """The finger lifted: Released (or Tapped), timers stopped."""
        self._rt.twoFaced(self._touchAll, "_release")

    def _touchAll(self, what: str) -> None:
        for button in self._everyObject():
            getattr(button, what)()

    def _press(self) -> None:
        if self._pressed or not self._enabled:
            return
        self._host._touch()
        self._pressed = True
        self._held = False
        self._emit("Pressed", "Pressed")
        if self._holdTime is not None:
            self._schedule(self._holdTime, self._hold)
        elif self._repeatTime is not None:
            self._schedule(self._repeatTime, self._repeat)

    def _hold(self) -> None:
        self._held = True
        self._emit("Held", "Held")
        if self._repeatTime is not None:
            self._schedule(self._repeatTime, self._repeat)

    def _repeat(self) -> None:
        self._emit("Repeated", "Repeated")
        assert self._repeatTime is not None
        self._schedule(self._repeatTime, self._repeat)

    def _schedule(self, delay: float, f: Any) -> None:
        self._timer = self._rt.reactor.callLater(delay, f)

    def _stopTimers(self) -> None:
        # a button held when the program stops repeats no more (it is released quietly)
        self._pressed = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _release(self) -> None:
        if not self._pressed:
            return
        self._pressed = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._holdTime is not None and not self._held:
            self._emit("Tapped", "Tapped")
        else:
            self._emit("Released", "Released")


class Knob(_Control):
    """A rotary knob: Turned is called as C{(knob, steps)} (negative: counterclockwise)."""

    Turned = Event["Knob"]("Called as C{(knob, steps)}.")

    def turn(self, steps: int) -> None:
        """The knob was turned C{steps} detents."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps == 0:
            raise ValueError(f"steps must be a non-zero int, got {steps!r}")
        self._rt.twoFaced(self._turnAll, steps)

    def _turnAll(self, steps: int) -> None:
        for knob in self._everyObject():
            knob._turn(steps)

    def _turn(self, steps: int) -> None:
        if self._enabled:
            self._host._touch()
            self._emit("Turned", steps)


class Label(_Control):
    """A text label."""

    @property
    def Text(self) -> str:
        """The text set with L{SetText} (at first: the layout's)."""
        return self._look.text

    def SetText(self, text: str) -> None:
        """Set the label's text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        self._look.text = text


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    return value


class _Ranged(_Control):
    @property
    def Min(self) -> float:
        """The lowest value."""
        return self._look.min

    @property
    def Max(self) -> float:
        """The highest value."""
        return self._look.max

    @property
    def Step(self) -> float:
        """The step between values."""
        return self._look.step

    def SetRange(self, Min: float, Max: float, Step: float = 1) -> None:
        """Set the range and step; the value is brought inside it."""
        low, high, step = _number(Min, "Min"), _number(Max, "Max"), _number(Step, "Step")
        if not low < high:
            raise ValueError(f"Min must be below Max, got {low!r} and {high!r}")
        if step <= 0:
            raise ValueError(f"Step must be positive, got {step!r}")
        self._look.min, self._look.max, self._look.step = low, high, step
        self._clampValue()

    def _clamp(self, value: float) -> float:
        return min(self._look.max, max(self._look.min, value))

    def _clampValue(self) -> None:
        raise NotImplementedError


class Level(_Ranged):
    """A bar graph showing a level between Min and Max."""

    @property
    def Level(self) -> float:
        """The level shown."""
        return self._look.level

    def SetLevel(self, Level: float) -> None:
        """Show C{Level} (kept within Min..Max)."""
        self._look.level = self._clamp(_number(Level, "Level"))

    def Inc(self) -> None:
        """Raise the level by one step."""
        self._look.level = self._clamp(self._look.level + self._look.step)

    def Dec(self) -> None:
        """Lower the level by one step."""
        self._look.level = self._clamp(self._look.level - self._look.step)

    def _clampValue(self) -> None:
        self._look.level = self._clamp(self._look.level)


class Slider(_Ranged):
    """
    A slider: Pressed, Changed and Released are called as C{(slider, state, value)} as a finger
    touches, moves and leaves it; the program shows a value with L{SetFill}.
    """

    Pressed = Event["Slider"]("Called as C{(slider, 'Pressed', value)}.")
    Changed = Event["Slider"]("Called as C{(slider, 'Changed', value)}.")
    Released = Event["Slider"]("Called as C{(slider, 'Released', value)}.")

    def __init__(self, UIHost: UIDevice, ID: int | str) -> None:
        super().__init__(UIHost, ID)
        self._pressed = False

    @property
    def Fill(self) -> float:
        """The value shown."""
        return self._look.fill

    def SetFill(self, Fill: float) -> None:
        """Show C{Fill} (kept within Min..Max)."""
        self._look.fill = self._clamp(_number(Fill, "Fill"))

    def SetEnable(self, enable: bool) -> None:
        """Enable or disable the slider."""
        self._setEnable(enable)

    def _clampValue(self) -> None:
        self._look.fill = self._clamp(self._look.fill)

    def _snap(self, value: float) -> float:
        steps = round((self._clamp(_number(value, "value")) - self._look.min) / self._look.step)
        snapped = self._clamp(self._look.min + steps * self._look.step)
        return int(snapped) if float(snapped).is_integer() else snapped

    # driving it

    def press(self, value: float) -> None:
        """A finger touches the slider at C{value}."""
        self._rt.twoFaced(self._touchAll, "Pressed", self._snap(value))

    def slide(self, value: float) -> None:
        """The finger moved to C{value}."""
        self._rt.twoFaced(self._touchAll, "Changed", self._snap(value))

    def release(self, value: float) -> None:
        """The finger left the slider at C{value}."""
        self._rt.twoFaced(self._touchAll, "Released", self._snap(value))

    def _touchAll(self, state: str, value: float) -> None:
        for slider in self._everyObject():
            slider._touchAt(state, value)

    def _touchAt(self, state: str, value: float) -> None:
        if not self._enabled:
            return
        self._host._touch()
        if state == "Pressed":
            self._pressed = True
        elif state == "Released":
            self._pressed = False
        self._look.fill = value
        self._emit(state, state, value)
