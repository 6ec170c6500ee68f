"""
A Global Scripter project folder written by a test (for tests/test_project_e2e.py): the files a
GS user has, addressed as on site (192.168.1.x), and the loopback simulators of its devices.

The project: an SSH matrix switcher module (``SSHClass('192.168.1.12', 22023, Credentials=...)``),
a serial-over-Ethernet display module (``SerialOverEthernetClass('192.168.1.12', 2003)``), a raw
TCP projector (``EthernetClientInterface('192.168.1.20', 4999)``, a keep-alive function), an HTTP
lighting module (``urllib`` to ``192.168.1.22:8080``), and a panel whose layout has two pages, a
popup group of two popups and a modal popup.  With C{ownHandler}, the project brings its own
``ConnectionHandler.py`` (L{STAND_IN_CONNECTION_HANDLER}: Extron's public names, a simple
polling implementation over extronlib), as real projects do.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.protocol import Factory, Protocol

from twisted_ch.testing import (
    gdlButton,
    gdlGroupRef,
    gdlLabel,
    gdlLayout,
    gdlModalPopup,
    gdlPage,
    gdlPopup,
    packGDL,
    solidPNG,
)

ALIAS = "BoardroomTLP"

#: what the program names -> the simulator kind that answers it
ADDRESSES = {
    "192.168.1.12:22023": "matrix",
    "192.168.1.12:2003": "display",
    "192.168.1.20:4999": "projector",
    "192.168.1.22:8080": "lights",
}

GS_BASE = '''
class DeviceClass:
    """What every Global Scripter module has: Set/Update/SubscribeStatus/WriteStatus/ReadStatus."""

    def __init__(self):
        self.Unidirectional = 'False'
        self.connectionCounter = 3
        self.Subscription = {}
        self.counter = 0
        self.connectionFlag = True
        self.Models = {}
        self._buffer = b''

    def _Poll(self, data):
        self.counter += 1
        if self.counter > self.connectionCounter and self.connectionFlag:
            self.OnDisconnected()
        self.Send(data)

    def _Lines(self, data):
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b'\\r')
        return [line.decode('ascii', 'replace') for line in lines]

    def OnConnected(self):
        self.connectionFlag = True
        self.counter = 0
        self.WriteStatus('ConnectionStatus', 'Connected')

    def OnDisconnected(self):
        self.WriteStatus('ConnectionStatus', 'Disconnected')
        self.connectionFlag = False

    def Set(self, command, value, qualifier=None):
        getattr(self, 'Set' + command)(value, qualifier)

    def Update(self, command, qualifier=None):
        getattr(self, 'Update' + command)(None, qualifier)

    def SubscribeStatus(self, command, qualifier, callback):
        self.Subscription[command] = callback

    def WriteStatus(self, command, value, qualifier=None):
        if command != 'ConnectionStatus':
            self.counter = 0
            if not self.connectionFlag or self.ReadStatus('ConnectionStatus') != 'Connected':
                self.OnConnected()
        status = self.Commands[command]['Status']
        if status.get('Live') != value:
            status['Live'] = value
            if command in self.Subscription:
                self.Subscription[command](command, value, qualifier)

    def ReadStatus(self, command, qualifier=None):
        return self.Commands.get(command, {}).get('Status', {}).get('Live')
'''

MATRIX_MODULE = """
from extronlib.interface import EthernetClientInterface
from modules.device.gs_base import DeviceClass as _Base


class DeviceClass(_Base):
    def __init__(self):
        _Base.__init__(self)
        self.Commands = {'ConnectionStatus': {'Status': {}}, 'Input': {'Status': {}}}
        self.ReceiveData = self.__ReceiveData

    def SetInput(self, value, qualifier):
        self.Send('{}*{}!\\r'.format(value, qualifier['Output']))

    def UpdateInput(self, value, qualifier):
        self._Poll('Q{}\\r'.format(qualifier['Output']))

    def __ReceiveData(self, interface, data):
        for line in self._Lines(data):
            words = line.split()
            if len(words) == 2 and words[0].startswith('Out') and words[1].startswith('In'):
                self.WriteStatus('Input', words[1][2:], {'Output': words[0][3:]})


class SSHClass(EthernetClientInterface, DeviceClass):
    def __init__(self, Hostname, IPPort, Protocol='SSH', ServicePort=0, Credentials=(None),
                 Model=None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, ServicePort,
                                         Credentials)
        self.ConnectionType = 'Ethernet'
        DeviceClass.__init__(self)
"""

DISPLAY_MODULE = """
from extronlib.interface import EthernetClientInterface
from modules.device.gs_base import DeviceClass as _Base


class DeviceClass(_Base):
    def __init__(self):
        _Base.__init__(self)
        self.Commands = {'ConnectionStatus': {'Status': {}}, 'Power': {'Status': {}}}
        self.ReceiveData = self.__ReceiveData

    def SetPower(self, value, qualifier):
        self.Send('POWR {}\\r'.format(1 if value == 'On' else 0))

    def UpdatePower(self, value, qualifier):
        self._Poll('POWR?\\r')

    def __ReceiveData(self, interface, data):
        for line in self._Lines(data):
            if line.startswith('POWR='):
                self.WriteStatus('Power', 'On' if line[5:] == '1' else 'Off')


class SerialOverEthernetClass(EthernetClientInterface, DeviceClass):
    def __init__(self, Hostname, IPPort, Protocol='TCP', ServicePort=0, Model=None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, ServicePort)
        self.ConnectionType = 'Serial'
        DeviceClass.__init__(self)
"""

LIGHTS_MODULE = """
import urllib.request
from modules.device.gs_base import DeviceClass as _Base


class DeviceClass(_Base):
    def __init__(self):
        _Base.__init__(self)
        self.Commands = {'ConnectionStatus': {'Status': {}}, 'Scene': {'Status': {}}}

    def SetScene(self, value, qualifier):
        self.__Request('?set={}'.format(value))

    def UpdateScene(self, value, qualifier):
        self.__Request('')

    def __Request(self, query):
        try:
            with urllib.request.urlopen(self.url + '/api/scene' + query, timeout=2) as answer:
                self.WriteStatus('Scene', answer.read().decode().strip())
        except OSError:
            self.counter += 1
            if self.counter > self.connectionCounter and self.connectionFlag:
                self.OnDisconnected()


class HTTPClass(DeviceClass):
    def __init__(self, ipAddress, port='80', deviceUsername=None, devicePassword=None,
                 Model=None):
        self.ConnectionType = 'HTTP'
        self.url = 'http://{}:{}'.format(ipAddress, port)
        DeviceClass.__init__(self)
"""

MAIN = """
## Begin ControlScript Import --------------------------------------------------
from extronlib import event, Version
from extronlib.device import ProcessorDevice, UIDevice
from extronlib.interface import EthernetClientInterface
from extronlib.ui import Button, Label
print(Version())
## End ControlScript Import ----------------------------------------------------
from ConnectionHandler import GetConnectionHandler
import modules.device.acme_matrix as AcmeMatrix
import modules.device.acme_display as AcmeDisplay
import modules.device.acme_lights as AcmeLights

Processor = ProcessorDevice('Processor')
TLP = UIDevice('BoardroomTLP')

Matrix = AcmeMatrix.SSHClass('192.168.1.12', 22023, Credentials=('admin', 'extron'))
Display = AcmeDisplay.SerialOverEthernetClass('192.168.1.12', 2003)
Projector = EthernetClientInterface('192.168.1.20', 4999)
Lights = AcmeLights.HTTPClass('192.168.1.22', 8080)


def ProjectorKeepAlive(interface):
    if interface.SendAndWait('PWR?\\r', 1, deliTag=b'\\r').startswith(b'PWR='):
        interface.ResponseAccepted()


MatrixHandler = GetConnectionHandler(Matrix, 'Input', {'Output': '1'}, DisconnectLimit=3,
                                     pollFrequency=1)
DisplayHandler = GetConnectionHandler(Display, 'Power', DisconnectLimit=3, pollFrequency=1)
ProjectorHandler = GetConnectionHandler(Projector, ProjectorKeepAlive, DisconnectLimit=3,
                                        pollFrequency=1)
LightsHandler = GetConnectionHandler(Lights, 'Scene', DisconnectLimit=3, pollFrequency=1)

Rooms = Button(TLP, 1)       # page Main: go to page Rooms
Sources = Button(TLP, 2)     # page Main: the Sources popup (group 1)
Lighting = Button(TLP, 3)    # page Main: the Lighting popup (group 1)
Off = Button(TLP, 4)         # page Main: the modal Confirm popup
Laptop = Button(TLP, 11)     # popup Sources: matrix input 2 to output 1
DisplayOn = Button(TLP, 12)  # popup Sources: the display on, the projector to input 3
Scene = Button(TLP, 21)      # popup Lighting: scene 3
Yes = Button(TLP, 31)        # popup Confirm
Back = Button(TLP, 41)       # page Rooms: back to Main
Status = Label(TLP, 100)


@event(Rooms, 'Pressed')
def RoomsPressed(button, state):
    TLP.ShowPage('Rooms')


@event(Back, 'Pressed')
def BackPressed(button, state):
    TLP.ShowPage('Main')


@event(Sources, 'Pressed')
def SourcesPressed(button, state):
    TLP.ShowPopup('Sources')


@event(Lighting, 'Pressed')
def LightingPressed(button, state):
    TLP.ShowPopup('Lighting')


@event(Laptop, 'Pressed')
def LaptopPressed(button, state):
    Matrix.Set('Input', '2', {'Output': '1'})
    Status.SetText('Laptop')


@event(DisplayOn, 'Pressed')
def DisplayOnPressed(button, state):
    Display.Set('Power', 'On')
    ProjectorHandler.Send('INP 3\\r')


@event(Scene, 'Pressed')
def ScenePressed(button, state):
    Lights.Set('Scene', '3')


@event(Off, 'Pressed')
def OffPressed(button, state):
    TLP.ShowPopup('Confirm')


@event(Yes, 'Pressed')
def YesPressed(button, state):
    Display.Set('Power', 'Off')
    TLP.HidePopup('Confirm')


def MatrixInput(command, value, qualifier):
    Laptop.SetState(1 if value == '2' else 0)


Matrix.SubscribeStatus('Input', {'Output': '1'}, MatrixInput)
TLP.ShowPage('Main')
Status.SetText('Ready')
for handler in (MatrixHandler, DisplayHandler, ProjectorHandler, LightsHandler):
    handler.Connect()
"""

#: A stand-in for Extron's ConnectionHandler.py (its public names, not its code): the handler
#: kinds poll their interface over extronlib's Timer and say Connected/Disconnected.
STAND_IN_CONNECTION_HANDLER = '''
"""A stand-in ConnectionHandler: Extron's public names over a simple poll."""
from extronlib.system import Timer

ModuleVersion = '0.0 stand-in'


class _Handler:
    def __init__(self, Interface, keepAliveQuery, qualifier, DisconnectLimit, pollFrequency,
                 connectRetryTime):
        self.Interface = Interface
        self.keepAliveQuery = keepAliveQuery
        self.qualifier = qualifier
        self.DisconnectLimit = DisconnectLimit
        self.pollFrequency = pollFrequency
        self.connectRetryTime = connectRetryTime
        self.ConnectionStatus = 'Unknown'
        self.Connected = None
        self.Disconnected = None
        self._missed = 0
        self._timer = Timer(pollFrequency, self._Tick)
        self._timer.Stop()

    def __getattr__(self, name):
        return getattr(self.Interface, name)

    def Connect(self, timeout=None):
        result = 'Connected'
        if hasattr(self.Interface, 'Connect') and getattr(self.Interface, 'Protocol', '') in (
                'TCP', 'SSH'):
            result = self.Interface.Connect(timeout or 5)
        self._timer.Restart()
        return result

    def Disconnect(self):
        self._timer.Stop()
        if hasattr(self.Interface, 'Disconnect'):
            self.Interface.Disconnect()

    def ResponseAccepted(self):
        self._missed = 0
        self._Status('Connected')

    def Send(self, data):
        self.Interface.Send(data)

    def SendAndWait(self, data, timeout, **delimiter):
        return self.Interface.SendAndWait(data, timeout, **delimiter)

    def _Status(self, state):
        if state != self.ConnectionStatus:
            self.ConnectionStatus = state
            callback = self.Connected if state == 'Connected' else self.Disconnected
            if callback is not None:
                callback(self, state)

    def _Tick(self, timer, count):
        self._missed += 1
        if self._missed > self.DisconnectLimit:
            self._Status('Disconnected')
        if callable(self.keepAliveQuery):
            self.keepAliveQuery(self)
        else:
            self.Interface.Update(self.keepAliveQuery, self.qualifier)
            if self.Interface.ReadStatus('ConnectionStatus') == 'Connected':
                self.ResponseAccepted()


class RawTcpHandler(_Handler):
    pass


class RawSimplePipeHandler(_Handler):
    pass


class ModuleTcpHandler(_Handler):
    pass


class ModuleSimplePipeHandler(_Handler):
    pass


class ServerExHandler:
    def __init__(self, Interface, serverTimeout=300):
        self.Interface = Interface
        self.serverTimeout = serverTimeout

    def __getattr__(self, name):
        return getattr(self.Interface, name)


def GetConnectionHandler(Interface, keepAliveQuery=None, keepAliveQueryQualifier=None,
                         DisconnectLimit=15, pollFrequency=1, connectRetryTime=5,
                         serverTimeout=300):
    module = isinstance(keepAliveQuery, str)
    stream = getattr(Interface, 'Protocol', '') in ('TCP', 'SSH')
    kind = {(True, True): ModuleTcpHandler, (True, False): ModuleSimplePipeHandler,
            (False, True): RawTcpHandler, (False, False): RawSimplePipeHandler}[module, stream]
    return kind(Interface, keepAliveQuery, keepAliveQueryQualifier, DisconnectLimit,
                pollFrequency, connectRetryTime)
'''


def layout() -> tuple[dict[str, Any], dict[int, bytes]]:
    """Two pages, a popup group of two popups and a modal popup; every image its own colour."""
    images: dict[int, bytes] = {}

    def png(color: tuple[int, int, int], width: int, height: int) -> int:
        n = len(images) + 1
        images[n] = solidPNG(width, height, (*color, 255))
        return n

    def button(index: int, uid: int, name: str, left: int, top: int, text: str) -> Any:
        from twisted_ch.testing import gdlState

        off, on = png((40, 60, 90), 200, 80), png((30, 180, 150), 200, 80)
        states = [gdlState(0, "Off", off, text), gdlState(1, "On", on, text)]
        return gdlButton(index, uid, name, left, top, text, states=states)

    main = gdlPage(
        0,
        "Main",
        [
            button(0, 1, "Rooms", 20, 20, "Rooms"),
            button(1, 2, "Sources", 20, 120, "Sources"),
            button(2, 3, "Lighting", 20, 220, "Lighting"),
            button(3, 4, "Off", 20, 320, "Off"),
            gdlLabel(4, 100, "Status", 20, 450, 400, 60, ""),
            gdlGroupRef(5, 1, 480, 100, 500, 400),
        ],
        image=png((25, 35, 50), 1024, 600),
    )
    rooms = gdlPage(1, "Rooms", [button(0, 41, "Back", 20, 20, "Back")], image=-1)
    sources = gdlPopup(
        2,
        "Sources",
        [button(0, 11, "Laptop", 20, 20, "Laptop"), button(1, 12, "Display", 20, 120, "Display")],
        group=1,
    )
    lighting = gdlPopup(3, "Lighting", [button(0, 21, "Scene 3", 20, 20, "Scene 3")], group=1)
    confirm = gdlModalPopup(4, "Confirm", [button(0, 31, "Yes", 412, 260, "Yes")])
    # gdlLayout adds the modal popup's full-screen reference to each page
    return gdlLayout([main, rooms], [sources, lighting, confirm], name="Boardroom"), images


def writeProject(root: Path, targets: dict[str, str], *, ownHandler: bool = False) -> Path:
    """
    Write the project into C{root} (its GS folder) and C{map.toml} beside it, mapping each of
    L{ADDRESSES} to C{targets[kind]}; the path of map.toml.
    """
    src = root / "src"
    (src / "modules" / "device").mkdir(parents=True)
    (root / "layout").mkdir()
    for init in (src / "modules" / "__init__.py", src / "modules" / "device" / "__init__.py"):
        init.write_text("")
    files = {
        "main.py": MAIN,
        "modules/device/gs_base.py": GS_BASE,
        "modules/device/acme_matrix.py": MATRIX_MODULE,
        "modules/device/acme_display.py": DISPLAY_MODULE,
        "modules/device/acme_lights.py": LIGHTS_MODULE,
    }
    if ownHandler:
        files["ConnectionHandler.py"] = STAND_IN_CONNECTION_HANDLER
    for name, text in files.items():
        (src / name).write_text(textwrap.dedent(text).lstrip())
    document, images = layout()
    (root / "layout" / "Boardroom.gdl").write_bytes(packGDL(document, images, stem="Boardroom"))
    project = {
        "schemaVersion": "1.0.0",
        "system": {
            "name": "Boardroom",
            "code_folder_path": "src",
            "code_entry_file": "main.py",
            "layout_folder_path": "layout",
            "rfile_folder_path": "rfile",
            "irfile_folder_path": "ir",
            "sound_folder_path": "sound",
            "system_id": "7",
            "author": {"name": "", "email": ""},
            "version": "1.0.0",
            "primary_device_alias": "Processor",
        },
        "devices": [
            {
                "name": "Boardroom Processor",
                "part_number": "60-1916-01",
                "alias": "Processor",
                "network": {"interfaces": [{"address": "192.168.1.10", "type": "LAN"}]},
            },
            {
                "name": "Boardroom Panel",
                "part_number": "60-1562-02",
                "alias": ALIAS,
                "network": {"host_network_type": "LAN", "interfaces": [{"address": ""}]},
                "ui": {
                    "layout_file": "Boardroom.gdl",
                    "enable_click_sound": True,
                    "click_sound_file": "Touch.wav",
                    "press_feedback": "state",
                    "thumb_change_report_interval": 0.1,
                    "thumb_to_fill_sync_time": 0.5,
                },
                "extron_control_web_id": "ui",
            },
        ],
    }
    (root / "Boardroom.json").write_text(json.dumps(project, indent=4))
    mapping = "\n".join(f'"{a}" = "{targets[kind]}"' for a, kind in ADDRESSES.items())
    config = root.parent / "map.toml"
    config.write_text(f"[program.addresses]\n{mapping}\n")
    return config


class _Lines(Protocol):
    factory: Any

    def __init__(self) -> None:
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\r")
        for line in lines:
            answer = self.factory.take(line.decode("ascii", "replace"))
            if answer:
                self.transport.write(answer)


@dataclass(eq=False)
class Matrix(Factory):
    """The SSH matrix switcher's shell: C{I*O!} ties, C{QO} asks; both answer C{OutO InI}."""

    ties: dict[str, str] = field(default_factory=lambda: {"1": "1"})
    commands: list[str] = field(default_factory=list)
    protocol = _Lines

    def take(self, command: str) -> bytes:
        self.commands.append(command)
        if command.startswith("Q"):
            output = command[1:]
        elif command.endswith("!") and "*" in command:
            source, output = command[:-1].split("*", 1)
            self.ties[output] = source
        else:
            return b"E01\r"
        return f"Out{output} In{self.ties.get(output, '0')}\r".encode()


@dataclass(eq=False)
class Display(Factory):
    """The display behind a serial-over-Ethernet port: C{POWR?}, C{POWR n} -> C{POWR=n}."""

    power: str = "0"
    commands: list[str] = field(default_factory=list)
    protocol = _Lines

    def take(self, command: str) -> bytes:
        self.commands.append(command)
        if command in ("POWR 0", "POWR 1"):
            self.power = command[-1]
        return f"POWR={self.power}\r".encode()
