"""
Extron SIS scaler/switcher (a DVS 605-like device): a Global Scripter-style device module.

Built from Extron's SIS (Simple Instruction Set) conventions in the structure Global Scripter
modules share - a C{DeviceClass} with C{Set}/C{Update}/C{SubscribeStatus}/C{ReadStatus}/
C{WriteStatus}/C{NewStatus}, C{Set<Command>}/C{Update<Command>} methods, C{connectionCounter},
C{counter}, C{connectionFlag}, C{OnConnected}/C{OnDisconnected}, C{devicePassword} and its own
C{ReceiveData} parser, mixed into C{EthernetClass}, C{SerialClass} and C{SPIClass} - so
C{GetConnectionHandler(EthernetClass(...), 'VideoMute')} drives it as it would drive Extron's.

It imports C{extronlib} as a processor module does: import it after
L{twisted_ch.extronlib.install} (importing L{twisted_ch.devices} does that).

Commands::

    Command           Set value -> SIS             Update query -> answer   Status values
    Input             '1'..'6'  -> '<n>!'          '!' -> 'In<n> All'       '1'..'6'
    VideoMute         'Off', 'On', 'Video & Sync'  'B' -> 'Vmt<n>'          as Set
                      -> '0B', '1B', '2B'
    Freeze            'Off', 'On' -> '0F', '1F'    'F' -> 'Frz<n>'          'Off', 'On'
    ConnectionStatus  -                            -                        'Connected',
                                                                            'Disconnected'

Models: 'DVS 605' (6 inputs, the default) and 'SIS Generic' (8 inputs).

ConnectionStatus: 'Connected' on the first parsed answer (not on the first Update, as some modules
report it), 'Disconnected' once C{counter} passes C{connectionCounter}; writing ConnectionStatus
never calls C{OnConnected}, so C{OnDisconnected} may safely be repeated.

Sessions: a new TCP/SSH connection (the interface's Connected event, which the module handles
itself) holds every command for C{greetingTime} seconds (a C{Wait}) so the banner and any
C{Password:} prompt arrive first: at the prompt, whatever is sent is taken for a password.  The
first prompt of a session is answered with C{devicePassword} and a CR; a second one means the
password was refused ("Log in failed"), and a refused or missing password is retried every
C{loginRetryTime} seconds, so a corrected C{devicePassword} is used without reconnecting.  As in
Extron's own modules, the login state (prompt count, authenticated flag, verbose mode) is reset in
C{OnDisconnected}, which C{Disconnect} calls: the connection handler calls them on every drop and
loss, so each new session logs in at its first prompt.  Before the first command of every session
the device is switched to verbose mode 3 (C{ESC 3CV} -> C{Vrb3}) so query answers come tagged.
Error answers (C{E01}, C{E10}, C{E13}, ...) reset the counter (the device is there) and go to the
program log.  Set waits for the device's answer
(SendAndWait) except over SPInterface, which has no SendAndWait; Update only sends, its answer is
parsed when it arrives.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from typing import Any

from extronlib.interface import (  # type: ignore[import-not-found]
    EthernetClientInterface,
    SerialInterface,
    SPInterface,
)
from extronlib.system import ProgramLog, Wait  # type: ignore[import-not-found]

Qualifier = dict[str, str] | None

_ERRORS = {
    "01": "Invalid input number",
    "10": "Invalid command",
    "13": "Invalid parameter",
    "14": "Not valid for this configuration",
    "22": "Busy",
    "24": "Privilege violation",
    "25": "Device not present",
    "26": "Maximum number of connections exceeded",
}

_VIDEO_MUTE = {"Off": "0", "On": "1", "Video & Sync": "2"}
_FREEZE = {"Off": "0", "On": "1"}
_LOGGED_IN = ("Admin", "User", "Not Needed")


class DeviceClass:
    # provided by the extronlib interface each connection class below mixes in
    Send: Callable[[bytes | str], None]
    SendAndWait: Callable[..., bytes]

    def __init__(self) -> None:
        self.Unidirectional = "False"
        self.connectionCounter = 15

        # Do not change the variables below
        self.DefaultResponseTimeout = 1.0
        self.greetingTime = 0.5
        self.loginRetryTime = 5.0
        self.counter = 0
        self.connectionFlag = True
        self.devicePassword: str | None = None
        self.SetWaitsForReply = True
        self.InputCount = 6
        self.Models: dict[str, Callable[[], None]] = {
            "DVS 605": self.extr_sis_DVS_605,
            "SIS Generic": self.extr_sis_Generic,
        }
        self.Commands: dict[str, dict[str, Any]] = {
            "ConnectionStatus": {"Status": {}},
            "Freeze": {"Status": {}},
            "Input": {"Status": {}},
            "VideoMute": {"Status": {}},
        }
        self.Subscription: dict[str, dict[str, Any]] = {}
        self.VerboseDisabled = True
        self.Authenticated = "Not Needed"
        self.PasswdPromptCount = 0
        self._session = 0
        self._ReceiveBuffer = b""
        self._compile_list: dict[re.Pattern[bytes], dict[str, Any]] = {}

        if self.Unidirectional == "False":
            self.AddMatchString(re.compile(rb"In(\d+) All"), self.__MatchInput, None)
            self.AddMatchString(re.compile(rb"Vmt([0-2])"), self.__MatchVideoMute, None)
            self.AddMatchString(re.compile(rb"Frz([01])"), self.__MatchFreeze, None)
            self.AddMatchString(re.compile(rb"Vrb(\d)"), self.__MatchVerboseMode, None)
            self.AddMatchString(re.compile(rb"E(\d\d)"), self.__MatchError, None)
            self.AddMatchString(re.compile(rb"Login (Administrator|User)"), self.__MatchLogin, None)
            self.AddMatchString(re.compile(rb"\(c\) Copyright .*"), self.__MatchBanner, None)

        self.ReceiveData = self.__ReceiveData

    # Models

    def extr_sis_DVS_605(self) -> None:
        self.InputCount = 6

    def extr_sis_Generic(self) -> None:
        self.InputCount = 8

    def _SelectModel(self, Model: str | None) -> None:
        if Model is None:
            return
        setup = self.Models.get(Model)
        if setup is None:
            self.Error([f"Model mismatch: {Model!r} is not one of {', '.join(self.Models)}"])
        else:
            setup()

    # Commands

    def SetInput(self, value: str, qualifier: Qualifier) -> None:
        if value.isdigit() and 1 <= int(value) <= self.InputCount:
            self.__SetHelper("Input", f"{int(value)}!", value, qualifier)
        else:
            self.Discard("Invalid Command for SetInput")

    def UpdateInput(self, value: object, qualifier: Qualifier) -> None:
        self.__UpdateHelper("Input", "!", qualifier)

    def __MatchInput(self, match: re.Match[bytes], tag: object) -> None:
        self.WriteStatus("Input", str(int(match.group(1))), None)

    def SetVideoMute(self, value: str, qualifier: Qualifier) -> None:
        state = _VIDEO_MUTE.get(value)
        if state is None:
            self.Discard("Invalid Command for SetVideoMute")
        else:
            self.__SetHelper("VideoMute", f"{state}B", value, qualifier)

    def UpdateVideoMute(self, value: object, qualifier: Qualifier) -> None:
        self.__UpdateHelper("VideoMute", "B", qualifier)

    def __MatchVideoMute(self, match: re.Match[bytes], tag: object) -> None:
        states = {v: k for k, v in _VIDEO_MUTE.items()}
        self.WriteStatus("VideoMute", states[match.group(1).decode()], None)

    def SetFreeze(self, value: str, qualifier: Qualifier) -> None:
        state = _FREEZE.get(value)
        if state is None:
            self.Discard("Invalid Command for SetFreeze")
        else:
            self.__SetHelper("Freeze", f"{state}F", value, qualifier)

    def UpdateFreeze(self, value: object, qualifier: Qualifier) -> None:
        self.__UpdateHelper("Freeze", "F", qualifier)

    def __MatchFreeze(self, match: re.Match[bytes], tag: object) -> None:
        states = {v: k for k, v in _FREEZE.items()}
        self.WriteStatus("Freeze", states[match.group(1).decode()], None)

    # Session: verbose mode, login, errors

    def __MatchVerboseMode(self, match: re.Match[bytes], tag: object) -> None:
        self.VerboseDisabled = match.group(1) != b"3"

    def __MatchError(self, match: re.Match[bytes], tag: object) -> None:
        self.counter = 0
        code = match.group(1).decode()
        self.Error([f"E{code}: {_ERRORS.get(code, 'Unrecognized error code')}"])

    def __MatchBanner(self, match: re.Match[bytes], tag: object) -> None:
        # the device greets a new connection, or announces a restart, and is back in its default
        # verbose mode
        self.VerboseDisabled = True

    def _SessionStarted(self, interface: object, state: str) -> None:
        # a new TCP/SSH session: hold commands until the banner and any login prompt are in (the
        # login state itself was reset by OnDisconnected when the last session ended)
        self._session += 1
        self.Authenticated = "Pending"
        session = self._session

        @Wait(self.greetingTime)  # type: ignore[untyped-decorator]
        def GreetingTimeout() -> None:
            if self._session == session and self.Authenticated == "Pending":
                self.Authenticated = "Not Needed"

    def __MatchPassword(self) -> None:
        self.Authenticated = "None"
        self.PasswdPromptCount += 1
        if self.devicePassword is None:
            self.Error(["The device asks for a password: set devicePassword"])
            self.__RetryLogin()
        elif self.PasswdPromptCount > 1:
            self.Error(["Log in failed: check devicePassword"])
            self.__RetryLogin()
        else:
            self.__Send(f"{self.devicePassword}\r")

    def __RetryLogin(self) -> None:
        session = self._session

        @Wait(self.loginRetryTime)  # type: ignore[untyped-decorator]
        def RetryLogin() -> None:
            if self._session != session or self.Authenticated != "None":
                return
            if self.devicePassword is None:
                self.__RetryLogin()
            else:
                self.__Send(f"{self.devicePassword}\r")

    def __MatchLogin(self, match: re.Match[bytes], tag: object) -> None:
        self.Authenticated = "Admin" if match.group(1) == b"Administrator" else "User"
        self.PasswdPromptCount = 0

    def __SessionPrefix(self) -> str:
        return "\x1b3CV" if self.VerboseDisabled else ""

    # Helpers

    def __Send(self, data: str) -> None:
        try:
            self.Send(data)
        except OSError as e:
            self.Error([f"Send failed: {e}"])

    def __SetHelper(
        self, command: str, commandstring: str, value: str, qualifier: Qualifier
    ) -> None:
        if self.Unidirectional == "True":
            self.__Send(commandstring)
            self.WriteStatus(command, value, qualifier)
            return
        if self.Authenticated not in _LOGGED_IN:
            self.Discard(f"Set{command}: not logged in")
            return
        data = self.__SessionPrefix() + commandstring
        if not self.SetWaitsForReply:
            self.__Send(data)
            return
        tag = {"Input": rb"In\d+ All", "VideoMute": rb"Vmt\d", "Freeze": rb"Frz\d"}[command]
        try:
            res = self.SendAndWait(
                data, self.DefaultResponseTimeout, deliRex=re.compile(tag + rb"\r\n|E\d\d\r\n")
            )
        except OSError as e:
            self.Error([f"Set{command}: {e}"])
            return
        if not res:
            self.Error([f"Set{command}: no response"])
            return
        self.__Parse(res)

    def __UpdateHelper(self, command: str, commandstring: str, qualifier: Qualifier) -> None:
        self.counter += 1
        if self.counter > self.connectionCounter and self.connectionFlag:
            self.OnDisconnected()
        if self.Unidirectional == "True":
            self.Discard(f"Inappropriate Command {command}")
            return
        if self.Authenticated not in _LOGGED_IN:
            return  # at a password prompt anything sent would be taken as a password
        self.__Send(self.__SessionPrefix() + commandstring)

    def OnConnected(self) -> None:
        self.connectionFlag = True
        self.counter = 0
        self.WriteStatus("ConnectionStatus", "Connected")

    def OnDisconnected(self) -> None:
        self.connectionFlag = False
        self._ReceiveBuffer = b""
        # the session is over: log in again at the next prompt, in the device's default mode
        self.VerboseDisabled = True
        self.PasswdPromptCount = 0
        self.Authenticated = "Not Needed"
        self.WriteStatus("ConnectionStatus", "Disconnected")

    ######################################################
    # RECOMMENDED not to modify the code below this point
    ######################################################

    def Set(self, command: str, value: str, qualifier: Qualifier = None) -> None:
        method = getattr(self, "Set" + command, None)
        if method is not None and callable(method):
            method(value, qualifier)
        else:
            self.Discard(f"{command} does not support Set.")

    def Update(self, command: str, qualifier: Qualifier = None) -> None:
        method = getattr(self, "Update" + command, None)
        if method is not None and callable(method):
            method(None, qualifier)
        else:
            self.Discard(f"{command} does not support Update.")

    def SubscribeStatus(
        self, command: str, qualifier: Qualifier, callback: Callable[[str, Any, Qualifier], Any]
    ) -> None:
        if command in self.Commands:
            self.Subscription[command] = {"callback": callback, "qualifier": qualifier}
        else:
            self.Discard(f"{command} does not exist in the module")

    def NewStatus(self, command: str, value: Any, qualifier: Qualifier) -> None:
        Method = self.Subscription.get(command)
        if Method and Method["callback"]:
            try:
                Method["callback"](command, value, qualifier)
            except Exception:
                # a failing callback must not stop the parsing of the rest of the answer
                ProgramLog(f"{command} status callback failed:\n{traceback.format_exc()}", "error")

    def WriteStatus(self, command: str, value: Any, qualifier: Qualifier = None) -> None:
        if command != "ConnectionStatus":
            # a parsed answer: the device is there
            self.counter = 0
            if self.ReadStatus("ConnectionStatus") != "Connected":
                self.OnConnected()
        Status = self.Commands[command]["Status"]
        if Status.get("Live") != value:
            Status["Live"] = value
            self.NewStatus(command, value, qualifier)

    def ReadStatus(self, command: str, qualifier: Qualifier = None) -> Any:
        Command = self.Commands.get(command)
        if Command is None:
            self.Discard(f"{command} does not exist in the module")
            return None
        return Command["Status"].get("Live")

    def __ReceiveData(self, interface: object, data: bytes) -> None:
        self.__Parse(data)

    def __Parse(self, data: bytes) -> None:
        self._ReceiveBuffer += data
        self.CheckMatchedString()
        if len(self._ReceiveBuffer) > 10000:
            self._ReceiveBuffer = b""

    def AddMatchString(
        self, regex_string: re.Pattern[bytes], callback: Callable[..., None], arg: object
    ) -> None:
        if regex_string not in self._compile_list:
            self._compile_list[regex_string] = {"callback": callback, "para": arg}

    def CheckMatchedString(self) -> bool:
        """Parse every complete line; the login prompt is the one message without a line end."""
        while True:
            line, end, rest = self._ReceiveBuffer.partition(b"\r\n")
            if not end:
                break
            self._ReceiveBuffer = rest
            for regex, entry in self._compile_list.items():
                match = regex.fullmatch(line)
                if match is not None:
                    entry["callback"](match, entry["para"])
                    break
        if self._ReceiveBuffer.endswith(b"Password:"):
            self._ReceiveBuffer = b""
            self.__MatchPassword()
        return True

    def Error(self, message: list[str]) -> None:
        ProgramLog(f"Module: {__name__} Error Message: {message[0]}", "warning")

    def Discard(self, message: str) -> None:
        self.Error([message])


class SerialClass(SerialInterface, DeviceClass):  # type: ignore[misc]
    def __init__(
        self,
        Host: Any,
        Port: str,
        Baud: int = 9600,
        Data: int = 8,
        Parity: str = "None",
        Stop: int = 1,
        FlowControl: str = "Off",
        CharDelay: float = 0,
        Mode: str = "RS232",
        Model: str | None = None,
        **interfaceOptions: Any,
    ) -> None:
        SerialInterface.__init__(
            self, Host, Port, Baud, Data, Parity, Stop, FlowControl, CharDelay, Mode,
            **interfaceOptions,
        )  # fmt: skip
        self.ConnectionType = "Serial"
        DeviceClass.__init__(self)
        self._SelectModel(Model)

    def Error(self, message: list[str]) -> None:
        portInfo = f"Host Alias: {self.Host.DeviceAlias}, Port: {self.Port}"
        ProgramLog(f"Module: {__name__} {portInfo} Error Message: {message[0]}", "warning")


class EthernetClass(EthernetClientInterface, DeviceClass):  # type: ignore[misc]
    def __init__(
        self,
        Hostname: str,
        IPPort: int,
        Protocol: str = "TCP",
        ServicePort: int = 0,
        Credentials: tuple[str, str] | None = None,
        Model: str | None = None,
        **interfaceOptions: Any,
    ) -> None:
        EthernetClientInterface.__init__(
            self, Hostname, IPPort, Protocol, ServicePort, Credentials, **interfaceOptions
        )
        self.ConnectionType = "Ethernet"
        DeviceClass.__init__(self)
        self.Connected = self._SessionStarted
        self._SelectModel(Model)

    def Disconnect(self) -> Any:
        result = EthernetClientInterface.Disconnect(self)
        self.OnDisconnected()
        return result

    def Error(self, message: list[str]) -> None:
        portInfo = f"IP Address/Host: {self.Hostname}:{self.IPPort}"
        ProgramLog(f"Module: {__name__} {portInfo} Error Message: {message[0]}", "warning")


class SPIClass(SPInterface, DeviceClass):  # type: ignore[misc]
    def __init__(self, Host: Any, Model: str | None = None, **interfaceOptions: Any) -> None:
        SPInterface.__init__(self, Host, **interfaceOptions)
        self.ConnectionType = "SPI"
        DeviceClass.__init__(self)
        self.SetWaitsForReply = False  # SPInterface has no SendAndWait
        self._SelectModel(Model)

    def Error(self, message: list[str]) -> None:
        portInfo = f"Host Alias: {self.Host.DeviceAlias}"
        ProgramLog(f"Module: {__name__} {portInfo} Error Message: {message[0]}", "warning")
