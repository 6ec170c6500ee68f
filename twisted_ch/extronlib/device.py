"""
ControlScript's devices: L{ProcessorDevice} (its properties read from this host, or from
L{PROCESSOR_PROPERTIES}), L{UIDevice} (a touch panel kept in memory, shown by the virtual panel),
L{eBUSDevice}, L{SPDevice} and L{AdapterDevice}, with Online/Offline events.

On a Linux box a host maps its port aliases (C{'COM1'}) to device paths: pass C{ports=}, or rely
on the default C{'COMn'} -> C{/dev/ttyS<n-1>}, C{'IRS1'}... are not available.  Something outside
the program (a USB hub watcher, the operator, a test) reports the host going offline or coming back
with L{setOnline}.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twisted_ch import _site
from twisted_ch._events import Event, emit
from twisted_ch._runtime import Runtime, resolveRuntime
from twisted_ch.extronlib._lifetime import adopt

if TYPE_CHECKING:
    from twisted_ch.panel._gdl import Container, Control, Layout

__all__ = [
    "PROCESSOR_PROPERTIES",
    "AdapterDevice",
    "ProcessorDevice",
    "SPDevice",
    "UIDevice",
    "eBUSDevice",
    "uiDevices",
]

_COM = re.compile(r"COM(\d+)$")

_log = Logger(namespace="twisted_ch.program")


class _Host:
    #: the device's alias and part number (set by the constructor)
    DeviceAlias: str = ""
    PartNumber: str | None = None

    Online = Event["_Host"]("Called as C{(device, 'Online')}.")
    Offline = Event["_Host"]("Called as C{(device, 'Offline')}.")

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        reactor: Any = None,
    ) -> None:
        if not isinstance(DeviceAlias, str) or not DeviceAlias:
            raise TypeError(f"DeviceAlias must be a non-empty str, not {DeviceAlias!r}")
        self.DeviceAlias = DeviceAlias
        self.PartNumber = PartNumber
        site = _site.current()  # the machine's mapping (twistd chandler's [program] section)
        self._ports = {**dict(ports or {}), **(site.portsFor(DeviceAlias) if site else {})}
        self._rt: Runtime = resolveRuntime(reactor)
        self._online = True
        if site is not None:
            site.hostCreated(self)

    def portPath(self, alias: str) -> str:
        """The device path behind a port alias such as C{'COM1'}."""
        if alias in self._ports:
            return self._ports[alias]
        m = _COM.match(alias)
        if m is None or int(m.group(1)) < 1:
            known = ", ".join(sorted(self._ports)) or "none configured"
            raise ValueError(
                f"{self.DeviceAlias} has no port {alias!r} (configured: {known}; "
                f"COMn defaults to /dev/ttyS<n-1>)"
            )
        return f"/dev/ttyS{int(m.group(1)) - 1}"

    def setPort(self, alias: str, path: str) -> None:
        """Map a port alias to a device path."""
        self._ports[alias] = path

    @property
    def isOnline(self) -> bool:
        """Whether the host is reachable."""
        return self._online

    def setOnline(self, online: bool) -> None:
        """Report the host online or offline; fires Online/Offline on a change."""
        online = bool(online)
        if online == self._online:
            return
        self._online = online
        state = "Online" if online else "Offline"
        self._rt.twoFaced(emit, self._rt, self, state, self, state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.DeviceAlias}>"


#: Properties a ProcessorDevice reports instead of what it reads from this host (a program's
#: config may set Hostname, IPAddress, MACAddress, ModelName, SerialNumber, FirmwareVersion, ...).
PROCESSOR_PROPERTIES: dict[str, Any] = {}


def _defaultRouteInterface() -> str | None:
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return fields[0]
    except OSError:
        pass
    return None


def _interfaceAddress(name: str) -> str | None:
    import fcntl
    import socket
    import struct

    SIOCGIFADDR = 0x8915
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None


def _hostFacts() -> dict[str, Any]:
    """What this host says about itself (no packet is sent)."""
    import platform
    import socket
    from pathlib import Path

    from twisted_ch._version import __version__

    iface = _defaultRouteInterface()
    address = (_interfaceAddress(iface) if iface else None) or "127.0.0.1"
    mac = "00:00:00:00:00:00"
    if iface:
        try:
            mac = Path(f"/sys/class/net/{iface}/address").read_text().strip() or mac
        except OSError:
            pass
    serial = ""
    try:
        serial = Path("/etc/machine-id").read_text().strip()[:12]
    except OSError:
        pass
    uname = platform.uname()
    return {
        "Hostname": socket.gethostname(),
        "IPAddress": address,
        "MACAddress": mac.replace(":", "-").upper(),
        "ModelName": f"twisted_ch on {uname.system} {uname.machine}",
        "SerialNumber": serial,
        "FirmwareVersion": __version__,
    }


class ProcessorDevice(_Host):
    """
    A control processor: this host.  Its serial ports are used by alias (C{'COM1'}); its
    properties come from this host (name, address and MAC of the default route's interface,
    C{/etc/machine-id}) unless L{PROCESSOR_PROPERTIES} or C{properties=} give them.
    """

    ExecutiveModeChanged = Event["ProcessorDevice"]("Called as C{(device, mode)}.")

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        properties: Mapping[str, Any] | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__(DeviceAlias, PartNumber, ports=ports, reactor=reactor)
        self._facts = {**_hostFacts(), **PROCESSOR_PROPERTIES, **dict(properties or {})}
        self._executiveMode = 0

    def _fact(self, name: str) -> Any:
        return self._facts.get(name)

    @property
    def Hostname(self) -> str:
        """The host name."""
        return str(self._fact("Hostname"))

    HostName = Hostname

    @property
    def IPAddress(self) -> str:
        """The address of the interface of the default route (127.0.0.1 without one)."""
        return str(self._fact("IPAddress"))

    @property
    def MACAddress(self) -> str:
        """That interface's MAC address, as C{'00-05-A6-12-34-56'}."""
        return str(self._fact("MACAddress"))

    @property
    def ModelName(self) -> str:
        """The model name (C{twisted_ch on Linux x86_64} unless configured)."""
        return str(self._fact("ModelName"))

    @property
    def SerialNumber(self) -> str:
        """The serial number (from C{/etc/machine-id} unless configured)."""
        return str(self._fact("SerialNumber"))

    @property
    def FirmwareVersion(self) -> str:
        """twisted_ch's version unless configured."""
        return str(self._fact("FirmwareVersion"))

    @property
    def CurrentLoad(self) -> float | None:
        """The 12 V supply's load in watts: None, as on processors without one."""
        value = self._fact("CurrentLoad")
        return float(value) if isinstance(value, int | float) else None

    @property
    def LinkLicenses(self) -> list[str]:
        """LinkLicense part numbers (none unless configured)."""
        return list(self._fact("LinkLicenses") or [])

    @property
    def UserUsage(self) -> tuple[int, int]:
        """(used, total) KB of the file system holding the program data directory."""
        import shutil

        from twisted_ch.extronlib._files import dataDirectory

        folder = dataDirectory()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        usage = shutil.disk_usage(folder)
        return (usage.used // 1024, usage.total // 1024)

    @property
    def ExecutiveMode(self) -> int:
        """The executive mode number."""
        return self._executiveMode

    def SetExecutiveMode(self, ExecutiveMode: int) -> None:
        """Set the executive mode; fires ExecutiveModeChanged on a change."""
        if isinstance(ExecutiveMode, bool) or not isinstance(ExecutiveMode, int):
            raise TypeError(f"ExecutiveMode must be an int, not {type(ExecutiveMode).__name__}")
        if ExecutiveMode < 0:
            raise ValueError(f"ExecutiveMode must not be negative, got {ExecutiveMode}")
        if ExecutiveMode != self._executiveMode:
            self._executiveMode = ExecutiveMode
            self._rt.twoFaced(emit, self._rt, self, "ExecutiveModeChanged", self, ExecutiveMode)

    @property
    def SystemSettings(self) -> dict[str, Any]:
        """The network and program settings, as ControlScript's dictionary."""
        return {
            "Network": {
                "LAN": {
                    "Hostname": self.Hostname,
                    "IPAddress": self.IPAddress,
                    "MACAddress": self.MACAddress,
                }
            },
            "ProgramInformation": dict(self._fact("ProgramInformation") or {}),
        }

    def Reboot(self) -> None:
        """Logged and ignored: a program does not reboot the host it runs on."""
        from twisted.logger import Logger

        Logger(namespace="twisted_ch.program").warn(
            "{device}: Reboot() ignored (this host is not rebooted)", device=self
        )


# user-interface devices, kept in memory: what the program sets (page, popups, LEDs, volumes,
# sleep, the controls of extronlib.ui) is state the virtual panel (twisted_ch.service._panel) and
# tests read; what a person does on a panel (a touch, a button, the lid, motion, an input
# appearing) is driven by the lowercase methods (UIDevice.touch, UIDevice.report, the controls'
# press/release...), which fire the program's events as the panel would.

_registry: list[weakref.ref[UIDevice]] = []
_registryLock = threading.Lock()

_BLINK_RATES = ("Slow", "Medium", "Fast")
_LED_STATES = ("Red", "Green", "Off")


def uiDevices() -> list[UIDevice]:
    """The UIDevices that exist, in the order they were created."""
    with _registryLock:
        alive = [d for d in (r() for r in _registry) if d is not None]
        _registry[:] = [weakref.ref(d) for d in alive]
    return alive


def _onOff(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("On", "Off"):
        return value == "On"
    raise ValueError(f"{what} must be True/False or 'On'/'Off', got {value!r}")


def _level(value: object, what: str, low: int = 0, high: int = 100) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be {low}-{high}, got {value!r}")
    return int(value)


class _Panel(_Host):
    """What UIDevice and eBUSDevice share: sleep, inactivity, mutes and sounds."""

    SleepChanged = Event["_Panel"]("Called as C{(device, 'Asleep' or 'Awake')}.")
    InactivityChanged = Event["_Panel"]("Called as C{(device, seconds)} at each inactivity time.")

    def __init__(self, DeviceAlias: str, PartNumber: str | None, *, reactor: Any) -> None:
        super().__init__(DeviceAlias, PartNumber, reactor=reactor)
        self._sleepState = "Awake"
        self._sleepTimer = 0
        self._sleepTimerEnabled = False
        self._inactivityTimes: list[int] = []
        self._inactivityCalls: list[Any] = []
        self._lastActivity = self._rt.reactor.seconds()
        self.mutes: dict[str, str] = {}
        #: the sound playing (a file name), or None
        self.playing: str | None = None
        #: button clicks played: (count, interval)
        self.clicks: list[tuple[int, float | None]] = []
        adopt(self._rt, self)

    # properties

    @property
    def SleepState(self) -> str:
        """'Asleep' or 'Awake'."""
        return self._sleepState

    @property
    def SleepTimer(self) -> int:
        """Seconds of inactivity before the device sleeps."""
        return self._sleepTimer

    @property
    def SleepTimerEnabled(self) -> bool:
        """Whether the sleep timer is on."""
        return self._sleepTimerEnabled

    @property
    def InactivityTime(self) -> int:
        """Seconds since the last touch (0: active now)."""
        return int(self._rt.reactor.seconds() - self._lastActivity)

    # methods

    def Sleep(self) -> None:
        """Put the device to sleep now."""
        self._rt.twoFaced(self._setSleep, "Asleep")

    def Wake(self) -> None:
        """Wake the device now."""
        self._rt.twoFaced(self._setSleep, "Awake")

    def _setSleep(self, state: str) -> None:
        if state != self._sleepState:
            self._sleepState = state
            emit(self._rt, self, "SleepChanged", self, state)

    def SetSleepTimer(self, state: bool | str, duration: int | None = None) -> None:
        """Turn the sleep timer on or off ('On'/True), optionally with a new duration."""
        enabled = _onOff(state, "state")
        if duration is not None:
            self._sleepTimer = _level(duration, "duration", 0, 65535)
        self._sleepTimerEnabled = enabled
        self._rt.twoFaced(self._scheduleInactivity)

    def SetInactivityTime(self, times: list[int]) -> None:
        """The inactivity times (seconds) at which InactivityChanged fires."""
        if isinstance(times, int | float) or not isinstance(times, list | tuple):
            raise TypeError("times must be a list of seconds")
        parsed = sorted(_level(t, "inactivity time", 1, 1_000_000) for t in times)
        self._inactivityTimes = parsed
        self._rt.twoFaced(self._scheduleInactivity)

    def GetMute(self, name: str) -> str:
        """The mute state of a channel ('On' or 'Off')."""
        return self.mutes.get(name, "Off")

    def SetMute(self, name: str, mute: str) -> None:
        """Mute ('On') or unmute ('Off') a channel ('Master', 'Speaker', 'Click', ...)."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a channel name, not {name!r}")
        self.mutes[name] = "On" if _onOff(mute, "mute") else "Off"

    def PlaySound(self, filename: str) -> None:
        """Play a sound file (recorded: this host has no panel speaker)."""
        if not isinstance(filename, str) or not filename:
            raise TypeError(f"filename must be a file name, not {filename!r}")
        self.playing = filename

    def StopSound(self) -> None:
        """Stop the sound playing."""
        self.playing = None

    def Click(self, count: int = 1, interval: float | None = None) -> None:
        """Play the button click C{count} times (recorded)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        if count > 1 and interval is None:
            raise ValueError("interval must be given when count is more than 1")
        self.clicks.append((count, interval))

    def Reboot(self) -> None:
        """Reboot the panel: it comes back awake, every popup hidden."""
        self._rt.twoFaced(self._reboot)

    def _reboot(self) -> None:
        self._setSleep("Awake")

    # driving it (a person at the panel, the virtual panel, a test)

    def touch(self) -> None:
        """Someone touched the panel: it wakes, and its inactivity starts over."""
        self._rt.twoFaced(self._touch)

    def _touch(self) -> None:
        self._lastActivity = self._rt.reactor.seconds()
        self._setSleep("Awake")
        self._scheduleInactivity()

    def _scheduleInactivity(self) -> None:
        for call in self._inactivityCalls:
            if call.active():
                call.cancel()
        self._inactivityCalls = []
        reactor = self._rt.reactor
        idle = reactor.seconds() - self._lastActivity
        for t in self._inactivityTimes:
            if t > idle:
                self._inactivityCalls.append(reactor.callLater(t - idle, self._inactive, t))
        if self._sleepTimerEnabled and self._sleepTimer > idle:
            self._inactivityCalls.append(
                reactor.callLater(self._sleepTimer - idle, self._setSleep, "Asleep")
            )

    def _inactive(self, seconds: int) -> None:
        emit(self._rt, self, "InactivityChanged", self, float(seconds))

    def stopTimers(self) -> None:
        """
        Cancel the device's pending timers (inactivity, sleep, popups, its buttons' hold and
        repeat): for a clean stop (a program's stop does it).
        """
        self._rt.twoFaced(self._stopTimers)

    def _release(self) -> None:
        self._stopTimers()

    def _stopTimers(self) -> None:
        for call in self._inactivityCalls:
            if call.active():
                call.cancel()
        self._inactivityCalls = []


class UIDevice(_Panel):
    """
    A touch panel or button panel, in memory: the page and popups shown, LEDs, volumes,
    brightness, sleep and the controls created on it (L{twisted_ch.extronlib.ui}).  The virtual
    panel on the status page shows it and presses its buttons.
    """

    BrightnessChanged = Event["UIDevice"]("Called as C{(device, level)}.")
    HDCPStatusChanged = Event["UIDevice"]("Called as C{(device, (input, status))}.")
    InputPresenceChanged = Event["UIDevice"]("Called as C{(device, (input, present))}.")
    LidChanged = Event["UIDevice"]("Called as C{(device, 'Opened' or 'Closed')}.")
    LightChanged = Event["UIDevice"]("Called as C{(device, level 0-255)}.")
    MotionDetected = Event["UIDevice"]("Called as C{(device, 'Motion' or 'No Motion')}.")
    OverTemperatureChanged = Event["UIDevice"]("Called as C{(device, degrees)}.")
    OverTemperatureWarning = Event["UIDevice"]("Called as C{(device, degrees)}.")
    OverTemperatureWarningStateChanged = Event["UIDevice"]("Called as C{(device, state)}.")

    def __init__(self, DeviceAlias: str, PartNumber: str | None = None, *, reactor: Any = None):
        super().__init__(DeviceAlias, PartNumber, reactor=reactor)
        #: the page shown (a name or number), None before ShowPage
        self.page: int | str | None = None
        #: the popups shown, in the order shown
        self.popups: list[int | str] = []
        self._popupCalls: dict[int | str, Any] = {}
        #: popup group number -> its popups (the GUI file's groups; a program or a test may
        #: describe them): showing a popup hides the others of its group
        self.popupGroups: dict[int, set[int | str]] = {}
        #: LED id -> 'Red', 'Green' or 'Off'; blinking LEDs: id -> (rate, states)
        self.leds: dict[int, str] = {}
        self.ledBlinking: dict[int, tuple[str, list[str]]] = {}
        self.volumes: dict[str, int] = {}
        self.input: str | None = None
        self._inputPresence: dict[str, bool] = {}
        self._hdcp: dict[str, bool] = {}
        self._brightness = 100
        self._autoBrightness = False
        self._ambientLight = 0
        self._lidState = "Opened"
        self._motionState = "No Motion"
        self._motionDecay = 10
        self._wakeOnMotion = False
        self._displayTimer = 0
        self._displayTimerEnabled = False
        self._displayState = "On"
        self._overTemperature = 0
        #: ID -> control (Button, Label, Level, Slider, Knob), in creation order: the first
        #: object created for each ID (the others share its state)
        self.controls: dict[int | str, Any] = {}
        self._sharers: dict[int | str, list[Any]] = {}
        #: the panel's GUI Designer layout, if the project gives it one (L{useLayout})
        self.layout: Layout | None = None
        self._logged: set[tuple[str, int | str]] = set()
        with _registryLock:
            _registry.append(weakref.ref(self))
        site = _site.current()
        path = site.layoutFor(DeviceAlias) if site is not None else None
        if path is not None:
            self._loadLayout(path)

    # the layout

    def _loadLayout(self, path: str) -> None:
        from twisted_ch.panel._gdl import LayoutError, readLayout

        try:
            layout = readLayout(path)
        except LayoutError as e:
            _log.error("{device}: runs without its layout: {why}", device=self.DeviceAlias, why=e)
            return
        self.useLayout(layout)

    def useLayout(self, layout: Layout | None) -> None:
        """
        Give the panel its layout (before the program creates its controls): controls take their
        Name, initial state and text from it, L{popupGroups} are its popup groups, and pages and
        popups are found by name or ID.  C{None}: no layout (and no popup groups).
        """
        self.layout = layout
        self.popupGroups = {}
        if layout is not None:
            for group, popups in layout.popupGroups.items():
                members = (layout.container(p) for p in popups)
                self.popupGroups[group] = {c.name for c in members if c is not None}

    def layoutReport(self) -> dict[str, list[int | str]]:
        """
        C{missing}: the IDs of the controls the program created that the layout lacks;
        C{unwrapped}: the layout's UserIds the program created no control for (no layout: none).
        """
        if self.layout is None:
            return {"missing": [], "unwrapped": []}
        have = self.layout.controlsByUserId
        missing: list[int | str] = [
            ID for ID in list(self.controls) if not (isinstance(ID, int) and ID in have)
        ]
        unwrapped: list[int | str] = [u for u in sorted(have) if u not in self.controls]
        return {"missing": missing, "unwrapped": unwrapped}

    def _layoutControl(self, ID: int | str) -> tuple[int | str, Control | None]:
        """The ID a control created with C{ID} has, and its control in the layout (if any)."""
        if self.layout is None:
            return ID, None
        if isinstance(ID, str):
            userId = self.layout.userIdOf(ID)
            if userId is None:
                return ID, None
            ID = userId
        return ID, self.layout.control(ID)

    def _addControl(self, control: Any) -> Any:
        """Register C{control}; the object created first for its ID, if another was."""
        sharers = self._sharers.setdefault(control.ID, [])
        sharers.append(control)
        if len(sharers) == 1:
            self.controls[control.ID] = control
            return None
        return sharers[0]

    def _sharersOf(self, control: Any) -> list[Any]:
        return list(self._sharers.get(control.ID, [control]))

    def _logOnce(self, what: str, name: int | str, message: str) -> None:
        if (what, name) not in self._logged:
            self._logged.add((what, name))
            _log.warn("{device}: {message}", device=self.DeviceAlias, message=message)

    def _known(self, what: str, name: int | str) -> Container | None:
        """The layout's page or popup C{name} (logged once when the layout lacks it)."""
        if self.layout is None:
            return None
        found = self.layout.page(name) if what == "page" else self.layout.popup(name)
        if found is None:
            source = self.layout.source
            self._logOnce(what, name, f"the layout {source} has no {what} {name!r}")
        return found

    def _same(self, a: int | str, b: int | str) -> bool:
        """Whether two popup names or numbers name one popup."""
        if a == b:
            return True
        if self.layout is None:
            return False
        found = self.layout.popup(a)
        return found is not None and found is self.layout.popup(b)

    # properties

    @property
    def Brightness(self) -> int:
        """The LCD brightness, 0-100."""
        return self._brightness

    @property
    def AutoBrightness(self) -> bool:
        """Whether brightness follows the ambient light."""
        return self._autoBrightness

    @property
    def AmbientLightValue(self) -> int:
        """The ambient light, 0-255 (as last reported)."""
        return self._ambientLight

    @property
    def LidState(self) -> str:
        """'Opened' or 'Closed'."""
        return self._lidState

    @property
    def LightDetectedState(self) -> str:
        """'Detected' or 'Not Detected'."""
        return "Detected" if self._ambientLight > 0 else "Not Detected"

    @property
    def MotionState(self) -> str:
        """'Motion' or 'No Motion'."""
        return self._motionState

    @property
    def MotionDecayTime(self) -> int:
        """Seconds after the last motion before 'No Motion' (at least 10)."""
        return self._motionDecay

    @property
    def WakeOnMotion(self) -> bool:
        """Whether motion wakes the panel."""
        return self._wakeOnMotion

    @property
    def DisplayTimer(self) -> int:
        """Seconds before the display turns off."""
        return self._displayTimer

    @property
    def DisplayTimerEnabled(self) -> bool:
        """Whether the display timer is on."""
        return self._displayTimerEnabled

    @property
    def DisplayState(self) -> str:
        """'On' or 'Off'."""
        return self._displayState

    @property
    def OverTemperature(self) -> int:
        """Degrees over the maximum operating temperature (as last reported)."""
        return self._overTemperature

    @property
    def OverTemperatureWarningState(self) -> bool:
        """Whether the panel is over its maximum temperature."""
        return self._overTemperature > 0

    @property
    def ModelName(self) -> str:
        """The model: the part number given, else 'Virtual Panel'."""
        return self.PartNumber or "Virtual Panel"

    Hostname = property(lambda self: self.DeviceAlias, doc="The alias (a virtual panel).")
    IPAddress = property(lambda self: "127.0.0.1", doc="Loopback: the panel is this host's.")
    MACAddress = property(lambda self: "00-00-00-00-00-00", doc="None: the panel is virtual.")
    SerialNumber = property(lambda self: "", doc="None: the panel is virtual.")
    FirmwareVersion = property(lambda self: "", doc="None: the panel is virtual.")
    UserUsage = property(lambda self: (0, 0), doc="(used, total) KB: none.")
    LinkLicenses = property(lambda self: [], doc="None.")
    SystemSettings = property(lambda self: {}, doc="None.")

    # pages and popups

    def ShowPage(self, page: int | str) -> None:
        """Show a page (by name or number)."""
        self._checkName(page, "page")
        self._known("page", page)
        self.page = page

    def ShowPopup(self, popup: int | str, duration: float = 0) -> None:
        """Show a popup, for C{duration} seconds (0: until hidden)."""
        self._checkName(popup, "popup")
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
            raise ValueError(f"duration must be a non-negative number, got {duration!r}")
        self._known("popup", popup)
        self._rt.twoFaced(self._showPopup, popup, float(duration))

    def _showPopup(self, popup: int | str, duration: float) -> None:
        for members in self.popupGroups.values():
            if any(self._same(popup, m) for m in members):
                for shown in list(self.popups):
                    if not self._same(shown, popup) and any(self._same(shown, m) for m in members):
                        self._hidePopup(shown)
        for shown in list(self.popups):
            if shown != popup and self._same(shown, popup):
                self._hidePopup(shown)  # shown before under its other name
        self._cancelPopup(popup)
        if popup not in self.popups:
            self.popups.append(popup)
        if duration > 0:
            self._popupCalls[popup] = self._rt.reactor.callLater(duration, self._hidePopup, popup)

    def HidePopup(self, popup: int | str) -> None:
        """Hide a popup."""
        self._checkName(popup, "popup")
        self._rt.twoFaced(self._hidePopup, popup)

    def _hidePopup(self, popup: int | str) -> None:
        self._cancelPopup(popup)
        for shown in list(self.popups):
            if self._same(shown, popup):
                self._cancelPopup(shown)
                self.popups.remove(shown)

    def _cancelPopup(self, popup: int | str) -> None:
        call = self._popupCalls.pop(popup, None)
        if call is not None and call.active():
            call.cancel()

    def HidePopupGroup(self, group: int) -> None:
        """
        Hide the popups of a group (the layout's GroupID, or of L{popupGroups}).  A group not
        described: every popup, or with a layout none (logged once).
        """
        if isinstance(group, bool) or not isinstance(group, int):
            raise TypeError(f"group must be a group number, not {group!r}")
        members = self.popupGroups.get(group)
        if members is None and self.layout is not None:
            self._logOnce(
                "group", group, f"the layout {self.layout.source} has no popup group {group}"
            )
            return
        if members is None:
            self.HideAllPopups()
            return
        for popup in list(members):
            self._rt.twoFaced(self._hidePopup, popup)

    def HideAllPopups(self) -> None:
        """Hide every popup."""
        self._rt.twoFaced(self._hideAll)

    def _hideAll(self) -> None:
        for popup in list(self.popups):
            self._hidePopup(popup)

    def _reboot(self) -> None:
        self._hideAll()
        super()._reboot()

    def _stopTimers(self) -> None:
        super()._stopTimers()
        for popup in list(self._popupCalls):
            self._cancelPopup(popup)
        for sharers in list(self._sharers.values()):
            for control in list(sharers):
                control._stopTimers()

    @staticmethod
    def _checkName(value: object, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"{what} must be a name or number, not {value!r}")

    # LEDs, volume, brightness, display

    def SetLEDState(self, ledId: int, state: str) -> None:
        """Drive an LED 'Red', 'Green' or 'Off' (stops its blinking)."""
        if state not in _LED_STATES:
            raise ValueError(f"state must be one of {', '.join(_LED_STATES)}, got {state!r}")
        self.ledBlinking.pop(ledId, None)
        self.leds[ledId] = state

    def SetLEDBlinking(self, ledId: int, rate: str, stateList: list[str]) -> None:
        """Blink an LED through C{stateList} at 'Slow', 'Medium' or 'Fast'."""
        if rate not in _BLINK_RATES:
            raise ValueError(f"rate must be one of {', '.join(_BLINK_RATES)}, got {rate!r}")
        for s in stateList:
            if s not in _LED_STATES:
                raise ValueError(f"LED state must be one of {', '.join(_LED_STATES)}, got {s!r}")
        self.ledBlinking[ledId] = (rate, list(stateList))

    def GetVolume(self, name: str) -> int:
        """A channel's volume, 0-100."""
        return self.volumes.get(name, 0)

    def SetVolume(self, name: str, level: int) -> None:
        """Set a channel's volume, 0-100."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a channel name, not {name!r}")
        self.volumes[name] = _level(level, "level")

    def SetBrightness(self, level: int) -> None:
        """Set the LCD brightness, 0-100; fires BrightnessChanged on a change."""
        value = _level(level, "level")
        self._rt.twoFaced(self._setBrightness, value)

    def _setBrightness(self, value: int) -> None:
        if value != self._brightness:
            self._brightness = value
            emit(self._rt, self, "BrightnessChanged", self, value)

    def SetAutoBrightness(self, state: bool | str) -> None:
        """Turn auto brightness on ('On'/True) or off."""
        self._autoBrightness = _onOff(state, "state")

    def SetDisplayTimer(self, state: bool | str, timeout: int) -> None:
        """Turn the display timer on or off, with its timeout in seconds."""
        self._displayTimerEnabled = _onOff(state, "state")
        self._displayTimer = _level(timeout, "timeout", 0, 65535)

    def SetMotionDecayTime(self, duration: float) -> None:
        """Seconds after the last motion before 'No Motion' (at least 10)."""
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 10:
            raise ValueError(f"duration must be at least 10 seconds, got {duration!r}")
        self._motionDecay = int(duration)

    def SetWakeOnMotion(self, state: bool | str) -> None:
        """Whether motion wakes the panel."""
        self._wakeOnMotion = _onOff(state, "state")

    def SetInput(self, videoInput: str) -> None:
        """Select a video input ('HDMI' or 'XTP')."""
        if not isinstance(videoInput, str):
            raise TypeError(f"videoInput must be a str, not {videoInput!r}")
        self.input = videoInput

    def GetInputPresence(self, videoInput: str) -> bool:
        """Whether a signal is present on an input (as last reported)."""
        return self._inputPresence.get(videoInput, False)

    def GetHDCPStatus(self, videoInput: str) -> bool:
        """Whether an input's HDCP is authenticated (as last reported)."""
        return self._hdcp.get(videoInput, False)

    # driving it

    def report(self, what: str, value: Any) -> None:
        """
        Report what the panel's sensors saw, firing the matching event: C{'Lid'}
        ('Opened'/'Closed'), C{'Light'} (0-255), C{'Motion'} ('Motion'/'No Motion'),
        C{'InputPresence'} and C{'HDCPStatus'} (C{(input, bool)}), C{'OverTemperature'} (degrees).
        """
        self._rt.twoFaced(self._report, what, value)

    def _report(self, what: str, value: Any) -> None:
        if what == "Lid":
            if value not in ("Opened", "Closed"):
                raise ValueError(f"Lid is 'Opened' or 'Closed', not {value!r}")
            if value != self._lidState:
                self._lidState = value
                emit(self._rt, self, "LidChanged", self, value)
        elif what == "Light":
            level = _level(value, "Light", 0, 255)
            if level != self._ambientLight:
                self._ambientLight = level
                emit(self._rt, self, "LightChanged", self, level)
        elif what == "Motion":
            if value not in ("Motion", "No Motion"):
                raise ValueError(f"Motion is 'Motion' or 'No Motion', not {value!r}")
            self._motionState = value
            if value == "Motion" and self._wakeOnMotion:
                self._setSleep("Awake")
            emit(self._rt, self, "MotionDetected", self, value)
        elif what in ("InputPresence", "HDCPStatus"):
            videoInput, state = value
            table = self._inputPresence if what == "InputPresence" else self._hdcp
            if table.get(videoInput) != bool(state):
                table[videoInput] = bool(state)
                emit(self._rt, self, f"{what}Changed", self, (videoInput, bool(state)))
        elif what == "OverTemperature":
            degrees = int(value)
            wasOver = self._overTemperature > 0
            if degrees != self._overTemperature:
                self._overTemperature = degrees
                emit(self._rt, self, "OverTemperatureChanged", self, degrees)
            if (degrees > 0) != wasOver:
                emit(self._rt, self, "OverTemperatureWarningStateChanged", self, degrees > 0)
            if degrees > 0:
                emit(self._rt, self, "OverTemperatureWarning", self, degrees)
        else:
            raise ValueError(f"unknown report {what!r}")


class eBUSDevice(_Panel):  # noqa: N801 - ControlScript's name
    """An eBUS button panel or sensor on a processor's eBUS (C{Host}), in memory."""

    ReceiveData = Event["eBUSDevice"]("Called as C{(device, data)} for a custom command's answer.")
    LidChanged = Event["eBUSDevice"]("Called as C{(device, 'Opened' or 'Closed')}.")

    def __init__(self, Host: _Host, DeviceAlias: str, *, reactor: Any = None) -> None:
        if not isinstance(Host, _Host):
            raise TypeError(f"Host must be a ProcessorDevice, not {type(Host).__name__}")
        super().__init__(DeviceAlias, None, reactor=reactor)
        self.Host = Host
        self.ID = 0
        self._lidState = "Opened"
        #: custom commands sent
        self.sent: list[bytes] = []

    @property
    def LidState(self) -> str:
        """'Opened' or 'Closed'."""
        return self._lidState

    @property
    def ModelName(self) -> str:
        """'eBUS device' (virtual)."""
        return "eBUS device"

    def SendCustomCommand(self, command: bytes | str) -> None:
        """Send a custom eBUS command (recorded; answers come through L{receive})."""
        data = command.encode("latin-1") if isinstance(command, str) else bytes(command)
        self.sent.append(data)

    def receive(self, data: bytes) -> None:
        """The device answered: fires ReceiveData."""
        self._rt.twoFaced(emit, self._rt, self, "ReceiveData", self, bytes(data))


class AdapterDevice(_Host):
    """An adapter (Pro xi: an I/O or control adapter attached to C{Host}), in memory."""

    def __init__(
        self, Host: _Host, DeviceAlias: str, *, reactor: Any = None, PartNumber: str | None = None
    ) -> None:
        if not isinstance(Host, _Host):
            raise TypeError(f"Host must be an extronlib device, not {type(Host).__name__}")
        super().__init__(DeviceAlias, PartNumber, reactor=reactor)
        self.Host = Host

    @property
    def ModelName(self) -> str:
        """The part number given, else 'Adapter'."""
        return self.PartNumber or "Adapter"


class SPDevice(_Host):
    """
    A Secure Platform device: hosts serial ports (by alias, like a processor) and an SP link,
    whose endpoint description C{spEndpoint} (a Twisted client string such as C{tcp:host:port} or
    C{serial:/dev/ttyUSB0}) L{SPInterface<twisted_ch.extronlib.interface.SPInterface>} uses.
    """

    def __init__(
        self,
        DeviceAlias: str,
        PartNumber: str | None = None,
        *,
        ports: Mapping[str, str] | None = None,
        spEndpoint: str | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__(DeviceAlias, PartNumber, ports=ports, reactor=reactor)
        site = _site.current()
        configured = site.spEndpointFor(DeviceAlias) if site is not None else None
        self.spEndpoint = configured or spEndpoint
