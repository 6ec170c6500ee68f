"""
The documented ControlScript surface (Extron Library 3.x with the Pro xi additions), as data:
module -> name -> signature (positional parameters with their defaults; keyword-only extras of
twisted_ch are allowed), and each class's methods, properties and events.  Every entry must exist
as written: programs from the field call these names positionally.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import twisted_ch.extronlib

twisted_ch.extronlib.install()

# module -> {name: signature}; "Class.Method": signature; "Class.Name": "property" or "event"
SURFACE: dict[str, dict[str, str]] = {
    "extronlib": {
        "event": "(Object, EventName)",
        "Version": "()",
        "Platform": "()",
    },
    "extronlib.device": {
        "ProcessorDevice": "(DeviceAlias, PartNumber=None)",
        "ProcessorDevice.Reboot": "()",
        "ProcessorDevice.SetExecutiveMode": "(ExecutiveMode)",
        **{
            f"ProcessorDevice.{p}": "property"
            for p in (
                "CurrentLoad DeviceAlias ExecutiveMode FirmwareVersion Hostname IPAddress "
                "LinkLicenses MACAddress ModelName PartNumber SerialNumber UserUsage "
                "SystemSettings"
            ).split()
        },
        **{f"ProcessorDevice.{e}": "event" for e in ("Online", "Offline", "ExecutiveModeChanged")},
        "UIDevice": "(DeviceAlias, PartNumber=None)",
        "UIDevice.Click": "(count=1, interval=None)",
        "UIDevice.GetHDCPStatus": "(videoInput)",
        "UIDevice.GetInputPresence": "(videoInput)",
        "UIDevice.GetMute": "(name)",
        "UIDevice.GetVolume": "(name)",
        "UIDevice.HideAllPopups": "()",
        "UIDevice.HidePopup": "(popup)",
        "UIDevice.HidePopupGroup": "(group)",
        "UIDevice.PlaySound": "(filename)",
        "UIDevice.Reboot": "()",
        "UIDevice.SetAutoBrightness": "(state)",
        "UIDevice.SetBrightness": "(level)",
        "UIDevice.SetDisplayTimer": "(state, timeout)",
        "UIDevice.SetInactivityTime": "(times)",
        "UIDevice.SetInput": "(videoInput)",
        "UIDevice.SetLEDBlinking": "(ledId, rate, stateList)",
        "UIDevice.SetLEDState": "(ledId, state)",
        "UIDevice.SetMotionDecayTime": "(duration)",
        "UIDevice.SetMute": "(name, mute)",
        "UIDevice.SetSleepTimer": "(state, duration=None)",
        "UIDevice.SetVolume": "(name, level)",
        "UIDevice.SetWakeOnMotion": "(state)",
        "UIDevice.ShowPage": "(page)",
        "UIDevice.ShowPopup": "(popup, duration=0)",
        "UIDevice.Sleep": "()",
        "UIDevice.StopSound": "()",
        "UIDevice.Wake": "()",
        **{
            f"UIDevice.{p}": "property"
            for p in (
                "AmbientLightValue AutoBrightness Brightness DeviceAlias DisplayState "
                "DisplayTimer DisplayTimerEnabled FirmwareVersion Hostname IPAddress "
                "InactivityTime LidState LightDetectedState LinkLicenses MACAddress ModelName "
                "MotionDecayTime MotionState OverTemperature OverTemperatureWarningState "
                "PartNumber SerialNumber SleepState SleepTimer SleepTimerEnabled SystemSettings "
                "UserUsage WakeOnMotion"
            ).split()
        },
        **{
            f"UIDevice.{e}": "event"
            for e in (
                "BrightnessChanged HDCPStatusChanged InactivityChanged InputPresenceChanged "
                "LidChanged LightChanged MotionDetected Offline Online OverTemperatureChanged "
                "OverTemperatureWarning OverTemperatureWarningStateChanged SleepChanged"
            ).split()
        },
        "eBUSDevice": "(Host, DeviceAlias)",
        "eBUSDevice.Click": "(count=1, interval=None)",
        "eBUSDevice.GetMute": "(name)",
        "eBUSDevice.PlaySound": "(filename)",
        "eBUSDevice.Reboot": "()",
        "eBUSDevice.SendCustomCommand": "(command)",
        "eBUSDevice.SetInactivityTime": "(times)",
        "eBUSDevice.SetMute": "(name, mute)",
        "eBUSDevice.SetSleepTimer": "(state, duration=None)",
        "eBUSDevice.Sleep": "()",
        "eBUSDevice.StopSound": "()",
        "eBUSDevice.Wake": "()",
        **{
            f"eBUSDevice.{p}": "property"
            for p in "DeviceAlias InactivityTime LidState SleepState SleepTimer".split()
        },
        **{
            f"eBUSDevice.{e}": "event"
            for e in "InactivityChanged LidChanged Offline Online ReceiveData SleepChanged".split()
        },
        "SPDevice": "(DeviceAlias, PartNumber=None)",
        "SPDevice.Online": "event",
        "SPDevice.Offline": "event",
        "AdapterDevice": "(Host, DeviceAlias)",
        "AdapterDevice.Online": "event",
        "AdapterDevice.Offline": "event",
    },
    "extronlib.interface": {
        "EthernetClientInterface": (
            "(Hostname, IPPort, Protocol='TCP', ServicePort=0, Credentials=None, bufferSize=4096)"
        ),
        "EthernetClientInterface.Connect": "(timeout=None)",
        "EthernetClientInterface.Disconnect": "()",
        "EthernetClientInterface.Send": "(data)",
        "EthernetClientInterface.SendAndWait": "(data, timeout, **delimiter)",
        "EthernetClientInterface.SetBufferSize": "(bufferSize)",
        "EthernetClientInterface.SSLWrap": (
            "(certificate=None, cert_reqs='CERT_NONE', ssl_version='TLSv2', ca_certs=None)"
        ),
        "EthernetClientInterface.StartKeepAlive": "(interval, data)",
        "EthernetClientInterface.StopKeepAlive": "()",
        **{
            f"EthernetClientInterface.{p}": "property"
            for p in "Credentials Hostname IPAddress IPPort Protocol ServicePort".split()
        },
        **{
            f"EthernetClientInterface.{e}": "event"
            for e in "Connected Disconnected ReceiveData".split()
        },
        "EthernetServerInterfaceEx": "(IPPort, Protocol='TCP', Interface='Any', MaxClients=None)",
        "EthernetServerInterfaceEx.StartListen": "(timeout=0)",
        "EthernetServerInterfaceEx.StopListen": "()",
        "EthernetServerInterfaceEx.SSLWrap": (
            "(certificate=None, cert_reqs='CERT_NONE', ssl_version='TLSv2', ca_certs=None)"
        ),
        **{
            f"EthernetServerInterfaceEx.{p}": "property"
            for p in "Clients Interface IPPort MaxClients Protocol".split()
        },
        **{
            f"EthernetServerInterfaceEx.{e}": "event"
            for e in "Connected Disconnected ReceiveData".split()
        },
        "EthernetServerInterface": "(IPPort, Protocol='TCP', Interface='Any', ServicePort=0)",
        "SerialInterface": (
            "(Host, Port, Baud=9600, Data=8, Parity='None', Stop=1, FlowControl='Off', "
            "CharDelay=0, Mode='RS232')"
        ),
        "SerialInterface.Initialize": (
            "(Baud=None, Data=None, Parity=None, Stop=None, FlowControl=None, CharDelay=None, "
            "Mode=None)"
        ),
        "SerialInterface.Send": "(data)",
        "SerialInterface.SendAndWait": "(data, timeout, **delimiter)",
        "SerialInterface.StartKeepAlive": "(interval, data)",
        "SerialInterface.StopKeepAlive": "()",
        "SPInterface": "(Host)",
        "SPInterface.Send": "(data)",
        "DanteInterface": "(DeviceName, Protocol='Extron', DanteDomainManager=None, Domain=None)",
        "DanteInterface.StartService": "(interface='LAN')",
        "DanteInterface.Connect": "(timeout=None)",
        "DanteInterface.Disconnect": "()",
        "DanteInterface.Send": "(data)",
        "IRInterface": "(Host, Port, File)",
        "IRInterface.Initialize": "(File=None)",
        "IRInterface.PlayContinuous": "(irFunction)",
        "IRInterface.PlayCount": "(irFunction, repeatCount=None)",
        "IRInterface.PlayTime": "(irFunction, duration)",
        "IRInterface.Stop": "()",
        "RelayInterface": "(Host, Port)",
        "RelayInterface.Pulse": "(duration)",
        "RelayInterface.SetState": "(State)",
        "RelayInterface.Toggle": "()",
        "RelayInterface.State": "property",
        "ContactInterface": "(Host, Port)",
        "ContactInterface.State": "property",
        "ContactInterface.StateChanged": "event",
        "DigitalInputInterface": "(Host, Port, Pullup=False)",
        "DigitalInputInterface.Initialize": "(Pullup=None)",
        "DigitalInputInterface.StateChanged": "event",
        "DigitalIOInterface": "(Host, Port, Mode='DigitalInput', Pullup=False)",
        "DigitalIOInterface.Initialize": "(Mode=None, Pullup=None)",
        "DigitalIOInterface.Pulse": "(duration)",
        "DigitalIOInterface.SetState": "(State)",
        "DigitalIOInterface.Toggle": "()",
        "DigitalIOInterface.StateChanged": "event",
        "FlexIOInterface": (
            "(Host, Port, Mode='DigitalInput', Pullup=False, Upper=2.8, Lower=2.0)"
        ),
        "FlexIOInterface.Initialize": "(Mode=None, Pullup=None, Upper=None, Lower=None)",
        "FlexIOInterface.Pulse": "(duration)",
        "FlexIOInterface.SetState": "(State)",
        "FlexIOInterface.Toggle": "()",
        "FlexIOInterface.AnalogVoltage": "property",
        "FlexIOInterface.AnalogVoltageChanged": "event",
        "FlexIOInterface.StateChanged": "event",
        "VolumeInterface": "(Host, Port)",
        "VolumeInterface.SetLevel": "(Level)",
        "VolumeInterface.SetMute": "(Mute)",
        "VolumeInterface.SetRange": "(Min, Max)",
        "VolumeInterface.SetSoftStart": "(SoftStart)",
        "SWPowerInterface": "(Host, Port)",
        "SWPowerInterface.Pulse": "(duration)",
        "SWPowerInterface.SetState": "(State)",
        "SWPowerInterface.Toggle": "()",
        "PoEInterface": "(Host, Port)",
        "PoEInterface.SetState": "(State)",
        "PoEInterface.Toggle": "()",
        "PoEInterface.CurrentLoad": "property",
        "PoEInterface.PowerStatus": "property",
        "PoEInterface.PowerStatusChanged": "event",
        "CircuitBreakerInterface": "(Host, Port)",
        "CircuitBreakerInterface.State": "property",
        "CircuitBreakerInterface.StateChanged": "event",
        "SWACReceptacleInterface": "(Host, Port)",
        "SWACReceptacleInterface.SetState": "(State)",
        "SWACReceptacleInterface.Toggle": "()",
        "SWACReceptacleInterface.Current": "property",
        "SWACReceptacleInterface.CurrentChanged": "event",
        "TallyInterface": "(Host, Port)",
        "TallyInterface.Pulse": "(duration)",
        "TallyInterface.SetState": "(State)",
        "TallyInterface.Toggle": "()",
        **{
            f"{c}.{e}": "event"
            for c in (
                "IRInterface RelayInterface ContactInterface DigitalInputInterface "
                "DigitalIOInterface FlexIOInterface VolumeInterface SWPowerInterface PoEInterface "
                "CircuitBreakerInterface SWACReceptacleInterface TallyInterface"
            ).split()
            for e in ("Online", "Offline")
        },
    },
    "extronlib.system": {
        "Clock": "(Times, Days=None, Function=None)",
        "Clock.Disable": "()",
        "Clock.Enable": "()",
        "Clock.SetDays": "(Days)",
        "Clock.SetTimes": "(Times)",
        "Email": "(smtpServer=None, port=None, username=None, password=None, sslEnabled=None)",
        "Email.Receiver": "(receiver=None, cc=False)",
        "Email.SendMessage": "(msg)",
        "Email.Sender": "(sender)",
        "Email.Subject": "(subject, charset='utf-8')",
        "File": "(Filename, mode='r', encoding=None, newline=None)",
        "File.ChangeDir": "(path)",
        "File.DeleteDir": "(path)",
        "File.DeleteDirRecursive": "(path)",
        "File.DeleteFile": "(filename)",
        "File.Exists": "(path)",
        "File.GetCurrentDir": "()",
        "File.ListDir": "(path=None)",
        "File.MakeDir": "(path)",
        "File.RenameFile": "(oldname, newname)",
        "File.close": "()",
        "File.read": "(size=-1)",
        "File.readline": "()",
        "File.readlines": "()",
        "File.seek": "(offset, whence=0)",
        "File.tell": "()",
        "File.write": "(data)",
        "File.writelines": "(seq)",
        "RFile": "(Filename, mode='r', encoding=None, newline=None)",
        "RFile.ListDir": "(path=None)",
        "MESet": "(Objects)",
        "MESet.Append": "(obj)",
        "MESet.GetCurrent": "()",
        "MESet.Remove": "(obj)",
        "MESet.SetCurrent": "(obj)",
        "MESet.SetStates": "(obj, offState, onState)",
        "MESet.Objects": "property",
        "Timer": "(Interval, Function=None)",
        "Timer.Change": "(Interval)",
        "Timer.Pause": "()",
        "Timer.Restart": "()",
        "Timer.Resume": "()",
        "Timer.Stop": "()",
        "Timer.StateChanged": "event",
        **{f"Timer.{p}": "property" for p in "Count Function Interval State".split()},
        "Wait": "(Time, Function=None)",
        "Wait.Add": "(Time)",
        "Wait.Cancel": "()",
        "Wait.Change": "(Time)",
        "Wait.Restart": "()",
        "ProgramLog": "(Entry, Severity='error')",
        "SaveProgramLog": "(path)",
        "GetSystemUpTime": "()",
        "GetUnverifiedContext": "()",
        "GetSSLContext": "(alias=None)",
        "Ping": "(hostname='localhost', count=5)",
        "WakeOnLan": "(macAddress, port=9)",
        "SetAutomaticTime": "(TimeServer)",
        "SetTimeZone": "(id)",
        "GetCurrentTimezone": "()",
        "GetTimezoneList": "()",
    },
    "extronlib.ui": {
        "Button": "(UIHost, ID, holdTime=None, repeatTime=None)",
        "Button.CustomBlink": "(rate, stateList)",
        "Button.SetBlinking": "(rate, stateList)",
        "Button.SetEnable": "(enable)",
        "Button.SetState": "(State)",
        "Button.SetText": "(text)",
        "Button.SetVisible": "(visible)",
        **{
            f"Button.{p}": "property"
            for p in "BlinkState Enabled Host ID Name PressedState State Visible".split()
        },
        **{f"Button.{e}": "event" for e in "Held Pressed Released Repeated Tapped".split()},
        "Knob": "(UIHost, ID)",
        "Knob.Turned": "event",
        "Knob.Host": "property",
        "Knob.ID": "property",
        "Label": "(UIHost, ID)",
        "Label.SetText": "(text)",
        "Label.SetVisible": "(visible)",
        **{f"Label.{p}": "property" for p in "Host ID Name Visible".split()},
        "Level": "(UIHost, ID)",
        "Level.Dec": "()",
        "Level.Inc": "()",
        "Level.SetLevel": "(Level)",
        "Level.SetRange": "(Min, Max, Step=1)",
        "Level.SetVisible": "(visible)",
        **{f"Level.{p}": "property" for p in "Host ID Level Max Min Name Visible".split()},
        "Slider": "(UIHost, ID)",
        "Slider.SetEnable": "(enable)",
        "Slider.SetFill": "(Fill)",
        "Slider.SetRange": "(Min, Max, Step=1)",
        "Slider.SetVisible": "(visible)",
        **{
            f"Slider.{p}": "property"
            for p in "Enabled Fill Host ID Max Min Name Step Visible".split()
        },
        **{f"Slider.{e}": "event" for e in "Changed Pressed Released".split()},
    },
    "extronlib.software": {
        "SummitConnect": "(Hostname, IPPort=None)",
        "SummitConnect.Connect": "(timeout=None)",
        "SummitConnect.Disconnect": "()",
        "SummitConnect.Send": "(data)",
        "SummitConnect.SetListeningPorts": "(portList=None)",
        **{f"SummitConnect.{p}": "property" for p in "Hostname IPAddress IPPort".split()},
        **{f"SummitConnect.{e}": "event" for e in "Connected Disconnected ReceiveData".split()},
        "DanteDomainManager": "(Hostname, Credentials=None, VerifyServerCert=True)",
        "DanteDomainManager.Connect": "(timeout=None)",
        "DanteDomainManager.Disconnect": "()",
    },
}


def positional(f: Any) -> str:
    """A signature as the data writes it: parameters callable positionally, and **kwargs."""
    parts = []
    for p in inspect.signature(f).parameters.values():
        if p.name in ("self", "cls") or p.kind is p.KEYWORD_ONLY:
            continue
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
        else:
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return "(" + ", ".join(parts) + ")"


ENTRIES = [(m, n, s) for m, names in SURFACE.items() for n, s in names.items()]


@pytest.mark.parametrize(
    ("module", "name", "expected"), ENTRIES, ids=[f"{m}.{n}" for m, n, _ in ENTRIES]
)
def test_every_documented_name_exists_with_its_signature(
    module: str, name: str, expected: str
) -> None:
    import importlib

    from twisted_ch._events import Event

    mod = importlib.import_module(module)
    owner, _, member = name.partition(".")
    obj = getattr(mod, owner)
    if member:
        assert hasattr(obj, member), f"{module}.{name} is missing"
        attr = inspect.getattr_static(obj, member)
        if expected == "event":
            assert isinstance(attr, Event), f"{module}.{name} is not an event"
            return
        if expected == "property":
            assert isinstance(attr, property) or not callable(attr), f"{name} is not a property"
            return
        obj = getattr(obj, member)
        assert callable(obj), f"{module}.{name} is not callable"
    assert positional(obj) == expected


def test_the_modules_resolve_to_twisted_ch() -> None:
    import extronlib
    import extronlib.ui

    assert extronlib is twisted_ch.extronlib
    assert extronlib.ui.Button.__module__ == "twisted_ch.extronlib.ui"
