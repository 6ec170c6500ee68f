"""
ControlScript's I/O port interfaces (IR, relays, contacts, digital and flex I/O, volume, power,
PoE, circuit breakers, AC receptacles, tally), kept in memory with a backend hook.

A program's settings (C{SetState}, C{Pulse}, C{PlayCount}, C{SetLevel}, ...) change the port's
state and are handed to its L{IOBackend} (C{backend=}, or the one given to L{setIOBackend}), which
drives real hardware where there is some (a USB relay board, GPIO).  What the hardware sees (an
input changing, a current measured, a breaker tripping) is reported with the port's L{report},
which fires the program's events (StateChanged, AnalogVoltageChanged, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from twisted_ch._checks import seconds
from twisted_ch._events import Event, emit
from twisted_ch._runtime import Runtime
from twisted_ch.extronlib._irfile import IRFile, IRFileError, findIRFile, irFolders, loadIRFile
from twisted_ch.extronlib._lifetime import adopt
from twisted_ch.extronlib.device import _Host

__all__ = [
    "CircuitBreakerInterface",
    "ContactInterface",
    "DigitalIOInterface",
    "DigitalInputInterface",
    "FlexIOInterface",
    "IOBackend",
    "IRInterface",
    "PoEInterface",
    "RelayInterface",
    "SWACReceptacleInterface",
    "SWPowerInterface",
    "TallyInterface",
    "VolumeInterface",
    "setIOBackend",
]

log = Logger(namespace="twisted_ch.io")

#: the shortest pulse a processor makes
MIN_PULSE = 0.1


class IOBackend(Protocol):
    """Real I/O behind the ports: told every setting a program makes, on the reactor thread."""

    def apply(self, port: IOPort, setting: str, value: object) -> None:
        """C{port}'s C{setting} (C{'State'}, C{'Level'}, C{'Play'}, ...) is now C{value}."""


_defaultBackend: IOBackend | None = None


def setIOBackend(backend: IOBackend | None) -> None:
    """The backend of ports created without C{backend=} from now on (None: in memory only)."""
    global _defaultBackend
    _defaultBackend = backend


def _onOff(State: object, on: str = "On", off: str = "Off", *more: str) -> str:
    if State in (1, on, *more) and not isinstance(State, bool | float):
        return on
    if State in (0, off) and not isinstance(State, bool | float):
        return off
    raise ValueError(f"State must be {on!r} or 1, {off!r} or 0, got {State!r}")


class IOPort:
    """The common base: a port of an extronlib device, with Online/Offline and a backend."""

    Online = Event["IOPort"]("Called as C{(interface, 'Online')}.")
    Offline = Event["IOPort"]("Called as C{(interface, 'Offline')}.")

    _reportable: ClassVar[tuple[str, ...]] = ()
    _state: str

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        if not isinstance(Host, _Host):
            raise TypeError(f"Host must be an extronlib device, not {type(Host).__name__}")
        if not isinstance(Port, str) or not Port:
            raise TypeError(f"Port must be a port name such as 'RLY1', not {Port!r}")
        self.Host = Host
        self.Port = Port
        self.backend = backend if backend is not None else _defaultBackend
        self._rt: Runtime = Host._rt
        self._pulse: IDelayedCall | None = None
        adopt(self._rt, self)

    def _release(self) -> None:
        """The program stopped: nothing of this port keeps running (reactor thread)."""

    def _apply(self, setting: str, value: object) -> None:
        if self.backend is not None:
            self._rt.twoFaced(self._toBackend, setting, value)

    def _toBackend(self, setting: str, value: object) -> None:
        assert self.backend is not None
        try:
            self.backend.apply(self, setting, value)
        except Exception:
            log.failure(
                "{port}: the I/O backend failed to apply {setting}", port=self, setting=setting
            )

    def _fire(self, name: str, *args: object) -> None:
        self._rt.twoFaced(emit, self._rt, self, name, self, *args)

    def _reportState(self, state: str) -> None:
        """A reported input state: kept, and C{StateChanged} fired when it changed."""
        if state != self._state:
            self._state = state
            self._fire("StateChanged", state)

    def setOnline(self, online: bool) -> None:
        """Report the port online or offline (fires Online/Offline)."""
        state = "Online" if online else "Offline"
        self._fire(state, state)

    def report(self, **values: Any) -> None:
        """Report what the hardware measured (C{State=}, ...); fires the matching events."""
        for key in values:
            if key not in self._reportable:
                raise TypeError(
                    f"{type(self).__name__} reports {', '.join(self._reportable) or 'nothing'}, "
                    f"not {key!r}"
                )
        self._report(**values)

    def _report(self, **values: Any) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.Host.DeviceAlias}:{self.Port}>"


class _Switch(IOPort):
    """An output with an On/Off State, Toggle and (for most) Pulse."""

    _on = "On"
    _off = "Off"
    _stateEvent = False

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self._state = self._off

    @property
    def State(self) -> str:
        """The output's state."""
        return self._state

    def SetState(self, State: int | str) -> None:
        """Set the output (C{'On'}/1 or C{'Off'}/0; relays: C{'Close'}/1, C{'Open'}/0)."""
        self._checkOutput()
        self._rt.twoFaced(self._cancelPulse)
        self._set(self._parse(State))

    def _parse(self, State: object) -> str:
        return _onOff(State, self._on, self._off)

    def _checkOutput(self) -> None:
        pass

    def Toggle(self) -> None:
        """Set the opposite state."""
        self.SetState(self._off if self._state == self._on else self._on)

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._apply("State", state)
            if self._stateEvent:
                self._fire("StateChanged", state)

    def _startPulse(self, duration: float) -> None:
        self._cancelPulse()
        self._set(self._on)
        self._pulse = self._rt.reactor.callLater(duration, self._endPulse)

    def _endPulse(self) -> None:
        self._pulse = None
        self._set(self._off)

    def _cancelPulse(self) -> None:
        if self._pulse is not None and self._pulse.active():
            self._pulse.cancel()
        self._pulse = None

    def _release(self) -> None:
        # a pulse under way ends now rather than leaving the output on for good
        if self._pulse is not None and self._pulse.active():
            self._cancelPulse()
            self._endPulse()

    def _doPulse(self, duration: float) -> None:
        self._checkOutput()
        wait = max(MIN_PULSE, seconds(duration, "duration"))
        self._rt.twoFaced(self._startPulse, wait)


class RelayInterface(_Switch):
    """A relay: C{'Close'} (1) or C{'Open'} (0)."""

    _on = "Close"
    _off = "Open"

    def _parse(self, State: object) -> str:
        return _onOff(State, "Close", "Open", "Closed")

    def Pulse(self, duration: float) -> None:
        """Close the relay for C{duration} seconds (at least 0.1)."""
        self._doPulse(duration)


class SWPowerInterface(_Switch):
    """A switched power output."""

    def Pulse(self, duration: float) -> None:
        """Turn the output on for C{duration} seconds (at least 0.1)."""
        self._doPulse(duration)


class TallyInterface(_Switch):
    """A tally output."""

    def Pulse(self, duration: float) -> None:
        """Turn the tally on for C{duration} seconds (at least 0.1)."""
        self._doPulse(duration)


class PoEInterface(_Switch):
    """A Power over Ethernet port: State, and PowerStatus/CurrentLoad as the hardware reports."""

    PowerStatusChanged = Event["PoEInterface"]("Called as C{(interface, status)}.")
    _reportable = ("PowerStatus", "CurrentLoad")

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self._powerStatus = "Inactive"
        self._currentLoad = 0.0

    @property
    def PowerStatus(self) -> str:
        """'Active', 'Inactive' or a fault (as reported)."""
        return self._powerStatus

    @property
    def CurrentLoad(self) -> float:
        """Watts drawn (as reported)."""
        return self._currentLoad

    def _report(self, **values: Any) -> None:
        if "CurrentLoad" in values:
            self._currentLoad = float(values["CurrentLoad"])
        if "PowerStatus" in values and values["PowerStatus"] != self._powerStatus:
            self._powerStatus = str(values["PowerStatus"])
            self._fire("PowerStatusChanged", self._powerStatus)


class SWACReceptacleInterface(_Switch):
    """A switched AC receptacle: State, and Current as the hardware reports."""

    StateChanged = Event["SWACReceptacleInterface"]("Called as C{(interface, state)}.")
    CurrentChanged = Event["SWACReceptacleInterface"]("Called as C{(interface, amps)}.")
    _stateEvent = True
    _reportable = ("Current",)

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self._current = 0.0

    @property
    def Current(self) -> float:
        """Amps drawn (as reported)."""
        return self._current

    def _report(self, **values: Any) -> None:
        current = float(values["Current"])
        if current != self._current:
            self._current = current
            self._fire("CurrentChanged", current)


class _Input(IOPort):
    StateChanged = Event["_Input"]("Called as C{(interface, state)}.")
    _reportable = ("State",)

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self._state = "Off"

    @property
    def State(self) -> str:
        """'On' or 'Off'."""
        return self._state

    def _report(self, **values: Any) -> None:
        self._reportState(_onOff(values["State"]))


class ContactInterface(_Input):
    """A contact closure input."""


class DigitalInputInterface(_Input):
    """A digital input, with its pull-up."""

    def __init__(
        self, Host: _Host, Port: str, Pullup: bool = False, *, backend: IOBackend | None = None
    ) -> None:
        super().__init__(Host, Port, backend=backend)
        self.Pullup = bool(Pullup)

    def Initialize(self, Pullup: bool | None = None) -> None:
        """Change the pull-up (None leaves it)."""
        if Pullup is not None:
            self.Pullup = bool(Pullup)
            self._apply("Pullup", self.Pullup)


class CircuitBreakerInterface(IOPort):
    """A circuit breaker: State 'Closed' or 'Tripped' (as the hardware reports)."""

    StateChanged = Event["CircuitBreakerInterface"]("Called as C{(interface, state)}.")
    _reportable = ("State",)

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self._state = "Closed"

    @property
    def State(self) -> str:
        """'Closed' or 'Tripped'."""
        return self._state

    def _report(self, **values: Any) -> None:
        state = values["State"]
        if state not in ("Closed", "Tripped"):
            raise ValueError(f"State is 'Closed' or 'Tripped', not {state!r}")
        self._reportState(state)


_DIO_MODES = ("DigitalInput", "DigitalOutput")
_FLEX_MODES = ("AnalogInput", "DigitalInput", "DigitalOutput")


class DigitalIOInterface(_Switch):
    """A digital I/O port: an input (reported) or an output (set) as its Mode says."""

    StateChanged = Event["DigitalIOInterface"]("Called as C{(interface, state)}.")
    _stateEvent = True
    _reportable: ClassVar[tuple[str, ...]] = ("State",)
    _modes: ClassVar[tuple[str, ...]] = _DIO_MODES

    def __init__(
        self,
        Host: _Host,
        Port: str,
        Mode: str = "DigitalInput",
        Pullup: bool = False,
        *,
        backend: IOBackend | None = None,
    ) -> None:
        super().__init__(Host, Port, backend=backend)
        self.Mode = self._checkMode(Mode)
        self.Pullup = bool(Pullup)

    def _checkMode(self, Mode: object) -> str:
        if Mode not in self._modes:
            raise ValueError(f"Mode must be one of {', '.join(self._modes)}, got {Mode!r}")
        return str(Mode)

    def _checkOutput(self) -> None:
        if self.Mode != "DigitalOutput":
            raise ValueError(f"{self!r} is in {self.Mode} mode: only an output can be set")

    def Initialize(self, Mode: str | None = None, Pullup: bool | None = None) -> None:
        """Change the mode and pull-up (None leaves a setting)."""
        if Mode is not None:
            self.Mode = self._checkMode(Mode)
            self._apply("Mode", self.Mode)
        if Pullup is not None:
            self.Pullup = bool(Pullup)
            self._apply("Pullup", self.Pullup)

    def Pulse(self, duration: float) -> None:
        """Turn the output on for C{duration} seconds (at least 0.1)."""
        self._doPulse(duration)

    def _report(self, **values: Any) -> None:
        if self.Mode == "DigitalOutput":
            raise ValueError(f"{self!r} is an output: its state is set, not reported")
        self._reportState(_onOff(values["State"]))


class FlexIOInterface(DigitalIOInterface):
    """
    A flex I/O port: digital input or output, or an analog input whose AnalogVoltage is reported
    (in DigitalInput mode a reported voltage above C{Upper} is 'On', below C{Lower} 'Off').
    """

    AnalogVoltageChanged = Event["FlexIOInterface"]("Called as C{(interface, volts)}.")
    _reportable = ("State", "AnalogVoltage")
    _modes = _FLEX_MODES

    def __init__(
        self,
        Host: _Host,
        Port: str,
        Mode: str = "DigitalInput",
        Pullup: bool = False,
        Upper: float = 2.8,
        Lower: float = 2.0,
        *,
        backend: IOBackend | None = None,
    ) -> None:
        super().__init__(Host, Port, Mode, Pullup, backend=backend)
        self.Upper, self.Lower = self._thresholds(Upper, Lower)
        self._voltage = 0.0

    @staticmethod
    def _thresholds(upper: object, lower: object) -> tuple[float, float]:
        for v, what in ((upper, "Upper"), (lower, "Lower")):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"{what} must be volts, not {v!r}")
        assert isinstance(upper, int | float) and isinstance(lower, int | float)
        if not lower < upper:
            raise ValueError(f"Lower must be below Upper, got {lower!r} and {upper!r}")
        return float(upper), float(lower)

    @property
    def AnalogVoltage(self) -> float:
        """Volts on the input (as reported)."""
        return self._voltage

    def Initialize(
        self,
        Mode: str | None = None,
        Pullup: bool | None = None,
        Upper: float | None = None,
        Lower: float | None = None,
    ) -> None:
        """Change the mode, pull-up and thresholds (None leaves a setting)."""
        if Upper is not None or Lower is not None:
            self.Upper, self.Lower = self._thresholds(
                self.Upper if Upper is None else Upper, self.Lower if Lower is None else Lower
            )
            self._apply("Thresholds", (self.Upper, self.Lower))
        super().Initialize(Mode, Pullup)

    def _report(self, **values: Any) -> None:
        if "AnalogVoltage" in values:
            volts = float(values["AnalogVoltage"])
            if volts != self._voltage:
                self._voltage = volts
                self._fire("AnalogVoltageChanged", volts)
            if self.Mode == "DigitalInput" and "State" not in values:
                if volts >= self.Upper:
                    values["State"] = "On"
                elif volts <= self.Lower:
                    values["State"] = "Off"
        if "State" in values:
            super()._report(State=values["State"])


class VolumeInterface(IOPort):
    """A volume control port: Level 0-100 %, Mute, the voltage range and soft start."""

    def __init__(self, Host: _Host, Port: str, *, backend: IOBackend | None = None) -> None:
        super().__init__(Host, Port, backend=backend)
        self.Level = 0
        self.Mute = "Off"
        self.Min = 0.0
        self.Max = 10.0
        self.SoftStart = "Disabled"

    def SetLevel(self, Level: int) -> None:
        """Set the level, 0-100 %."""
        if isinstance(Level, bool) or not isinstance(Level, int | float) or not 0 <= Level <= 100:
            raise ValueError(f"Level must be 0-100, got {Level!r}")
        self.Level = int(Level)
        self._apply("Level", self.Level)

    def SetMute(self, Mute: str) -> None:
        """Mute ('On') or unmute ('Off')."""
        self.Mute = _onOff(Mute)
        self._apply("Mute", self.Mute)

    def SetRange(self, Min: float, Max: float) -> None:
        """The control voltage range, 0-10 V."""
        for v, what in ((Min, "Min"), (Max, "Max")):
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 10:
                raise ValueError(f"{what} must be 0-10 volts, got {v!r}")
        if not Min < Max:
            raise ValueError(f"Min must be below Max, got {Min!r} and {Max!r}")
        self.Min, self.Max = float(Min), float(Max)
        self._apply("Range", (self.Min, self.Max))

    def SetSoftStart(self, SoftStart: str) -> None:
        """'Enabled' or 'Disabled'."""
        if SoftStart not in ("Enabled", "Disabled"):
            raise ValueError(f"SoftStart must be 'Enabled' or 'Disabled', got {SoftStart!r}")
        self.SoftStart = SoftStart
        self._apply("SoftStart", SoftStart)


class IRInterface(IOPort):
    """
    An IR port playing the functions of an IR file; what it plays is recorded in L{playing} and
    handed to the backend as the C{'Play'} setting: C{(how, function, amount)} (the function's
    code is in L{irFile}).

    C{File} is looked for as given (an absolute path), else in the program data directory's
    C{ir/} folder, then in the data directory itself.  A file found is read and checked when the
    interface is created (and at L{Initialize}): L{functions} lists its function names, and
    playing a name it lacks raises ValueError.  A file that is missing or cannot be read (Extron's
    undocumented binary C{.eir}: see L{twisted_ch.extronlib._irfile} for the forms read) is
    reported once in the log and in L{fileProblem}; the port then plays any name, unchecked.
    """

    def __init__(
        self, Host: _Host, Port: str, File: str, *, backend: IOBackend | None = None
    ) -> None:
        super().__init__(Host, Port, backend=backend)
        self.File = self._checkFile(File)
        #: what is playing: (how, function, amount), or None
        self.playing: tuple[str, str, float | None] | None = None
        self._end: IDelayedCall | None = None
        #: the IR file read (None: missing or unreadable, see L{fileProblem})
        self.irFile: IRFile | None = None
        #: why the IR file is not in use, or None
        self.fileProblem: str | None = None
        self._load()

    @staticmethod
    def _checkFile(File: object) -> str:
        if not isinstance(File, str) or not File:
            raise TypeError(f"File must be an IR file name, not {File!r}")
        return File

    @property
    def functions(self) -> list[str] | None:
        """The IR file's function names, in file order (None: the file is not in use)."""
        return None if self.irFile is None else self.irFile.names

    def _load(self) -> None:
        self.irFile = None
        folders = irFolders()
        try:
            path = findIRFile(self.File, folders)
            if path is None:
                where = ", ".join(str(f) for f in folders)
                raise IRFileError(f"{self.File} is not in {where}")
            self.irFile = loadIRFile(path)
        except IRFileError as e:
            self.fileProblem = str(e)
            log.warn(
                "{port}: IR file not in use, function names are not checked: {why}",
                port=self,
                why=self.fileProblem,
            )
            return
        self.fileProblem = None
        log.info(
            "{port}: IR file {path}: {n} functions",
            port=self,
            path=str(path),
            n=len(self.irFile.functions),
        )

    def Initialize(self, File: str | None = None) -> None:
        """Use another IR file (None leaves it); it is read and checked as at creation."""
        if File is not None:
            self.File = self._checkFile(File)
            self._load()
            self._apply("File", self.File)

    def _checkFunction(self, irFunction: object) -> str:
        if not isinstance(irFunction, str) or not irFunction:
            raise TypeError(f"irFunction must be a function name, not {irFunction!r}")
        if self.irFile is not None and irFunction not in self.irFile.functions:
            names = self.irFile.names
            shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
            raise ValueError(f"{self.File} has no IR function {irFunction!r} (it has {shown})")
        return irFunction

    def PlayContinuous(self, irFunction: str) -> None:
        """Play a function until L{Stop}."""
        self._play("Continuous", self._checkFunction(irFunction), None)

    def PlayCount(self, irFunction: str, repeatCount: int | None = None) -> None:
        """Play a function once plus C{repeatCount} repeats (0-15; None: the file's count)."""
        name = self._checkFunction(irFunction)
        if repeatCount is not None and (
            isinstance(repeatCount, bool)
            or not isinstance(repeatCount, int)
            or not 0 <= repeatCount <= 15
        ):
            raise ValueError(f"repeatCount must be 0-15 or None, got {repeatCount!r}")
        if repeatCount is None and self.irFile is not None:
            repeatCount = self.irFile.functions[name].repeat  # the file's count, if it gives one
        self._play("Count", name, repeatCount)

    def PlayTime(self, irFunction: str, duration: float) -> None:
        """Play a function for C{duration} seconds."""
        name = self._checkFunction(irFunction)
        self._play("Time", name, seconds(duration, "duration"))

    def Stop(self) -> None:
        """Stop playing."""
        self._rt.twoFaced(self._stop)

    def _play(self, how: str, name: str, amount: float | None) -> None:
        self._rt.twoFaced(self._start, how, name, amount)

    def _start(self, how: str, name: str, amount: float | None) -> None:
        self._cancelEnd()
        self.playing = (how, name, amount)
        self._apply("Play", self.playing)
        if how == "Time" and amount is not None:
            self._end = self._rt.reactor.callLater(amount, self._stop)
        elif how == "Count":
            self.playing = None  # a count plays out by itself

    def _stop(self) -> None:
        self._cancelEnd()
        if self.playing is not None:
            self.playing = None
        self._apply("Play", None)

    def _cancelEnd(self) -> None:
        if self._end is not None and self._end.active():
            self._end.cancel()
        self._end = None

    def _release(self) -> None:
        # an emitter playing continuously (or for a time) stops with the program
        if self.playing is not None or self._end is not None:
            self._stop()
