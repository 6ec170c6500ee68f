"""
A meeting-room program as Global Scripter writes it, for the virtual panel:

    twistd -n chandler --program examples/panel/main.py

then open http://127.0.0.1:8790/panel/ and press the buttons.  The projector is simulated by
simulated_projector.py beside this file (a TCP server on loopback answering power and input
commands, run on the reactor), so nothing else is needed: the log shows each command it takes
(``projector simulator: INP 2``).  To drive a real projector, delete the simulator's import and
start line and set PROJECTOR to its address and port.
"""

## Begin ControlScript Import --------------------------------------------------
## End ControlScript Import ----------------------------------------------------
import simulated_projector  # beside this file: the simulated projector
from ConnectionHandler import GetConnectionHandler
from extronlib import Version, event
from extronlib.device import ProcessorDevice, UIDevice
from extronlib.interface import EthernetClientInterface
from extronlib.system import MESet, ProgramLog, Timer
from extronlib.ui import Button, Label, Level

print(Version())  ## Sanity check ControlScript Import

## A projector simulator, run on the reactor: the keep-alive's SendAndWait blocks this program's
## thread, so a simulator on it could only answer after the wait timed out.  To drive a real
## projector, delete this line (and the import) and set PROJECTOR = ("192.168.1.50", 4999).
PROJECTOR = simulated_projector.start()
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


@event(Projector, "ReceiveData")
def ProjectorAnswers(interface, data):
    # the answers to the panel's commands (those not claimed by the keep-alive's SendAndWait)
    if b"PWR=" in data:
        interface.ResponseAccepted()


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
