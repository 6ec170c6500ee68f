"""
A meeting-room program as Global Scripter writes it, for the virtual panel:

    twistd -n chandler --program examples/panel/main.py

then open http://127.0.0.1:8790/panel/ and press the buttons.  The projector is simulated in
this file (a TCP server on loopback answering power and input commands), so nothing else is
needed; set PROJECTOR to a real one's address to drive it instead.
"""

## Begin ControlScript Import --------------------------------------------------
## End ControlScript Import ----------------------------------------------------
from ConnectionHandler import GetConnectionHandler
from extronlib import Version, event
from extronlib.device import ProcessorDevice, UIDevice
from extronlib.interface import EthernetClientInterface, EthernetServerInterfaceEx
from extronlib.system import MESet, ProgramLog, Timer
from extronlib.ui import Button, Label, Level

print(Version())  ## Sanity check ControlScript Import

## A projector simulator (remove it, and set PROJECTOR, to drive a real one) ----
Simulator = EthernetServerInterfaceEx(4999, Interface="127.0.0.1")
SimulatorState = {"power": "0", "input": "1"}


@event(Simulator, "ReceiveData")
def SimulatorAnswers(client, data):
    for command in data.decode("ascii", "replace").split("\r"):
        if command.startswith("PWR "):
            SimulatorState["power"] = command[4:]
        elif command.startswith("INP "):
            SimulatorState["input"] = command[4:]
        if command:
            client.Send("PWR={power} INP={input}\r".format(**SimulatorState))


Simulator.StartListen()
PROJECTOR = ("127.0.0.1", Simulator.IPPort)
## -----------------------------------------------------------------------------

Processor = ProcessorDevice("Main")
Panel = UIDevice("Room 101 TLP")

PowerOn = Button(Panel, 1, holdTime=2)
PowerOff = Button(Panel, 2)
Sources = [Button(Panel, 11), Button(Panel, 12), Button(Panel, 13)]
SourceGroup = MESet(Sources)
Status = Label(Panel, 100)
Clock = Label(Panel, 101)
Warmup = Level(Panel, 200)

for number, button in enumerate(Sources, 1):
    button.SetText(f"Input {number}")
PowerOn.SetText("Power on (hold)")
PowerOff.SetText("Power off")


def KeepAlive(interface):
    answer = interface.SendAndWait("PWR?\r", 1, deliTag=b"\r")
    if answer.startswith(b"PWR="):
        interface.ResponseAccepted()


Projector = GetConnectionHandler(
    EthernetClientInterface(*PROJECTOR), KeepAlive, pollFrequency=2, DisconnectLimit=2
)


@event(Projector, ["Connected", "Disconnected"])
def ProjectorState(interface, state):
    Status.SetText(f"Projector {state}")
    ProgramLog(f"projector {state}", "info")


@event(PowerOn, "Held")
def PowerOnHeld(button, state):
    Projector.Send("PWR 1\r")
    Status.SetText("Warming up")
    Warmup.SetLevel(0)
    WarmupTimer.Restart()


@event(PowerOn, "Tapped")
def PowerOnTapped(button, state):
    Status.SetText("Hold the button to power on")


@event(PowerOff, "Pressed")
def PowerOffPressed(button, state):
    Projector.Send("PWR 0\r")
    SourceGroup.SetCurrent(None)
    Status.SetText("Off")


@event(Sources, "Pressed")
def SourcePressed(button, state):
    SourceGroup.SetCurrent(button)
    Projector.Send(f"INP {Sources.index(button) + 1}\r")
    Status.SetText(button.Text)


@Timer(0.5)
def WarmupTimer(timer, count):
    if count <= 10:
        Warmup.SetLevel(count * 10)


WarmupTimer.Stop()  # started by PowerOnHeld


@Timer(1)
def ShowTime(timer, count):
    import time

    Clock.SetText(time.strftime("%H:%M:%S"))


Panel.ShowPage("Main")
Status.SetText("Ready")
Projector.Connect()
