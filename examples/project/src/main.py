## Begin ControlScript Import --------------------------------------------------
from extronlib import event, Version
from extronlib.device import ProcessorDevice, UIDevice
from extronlib.interface import EthernetClientInterface
from extronlib.ui import Button, Label, Slider
from extronlib.system import MESet

print(Version()) ## Sanity check ControlScript Import
## End ControlScript Import ----------------------------------------------------
##
## Begin User Import -----------------------------------------------------------
from ConnectionHandler import GetConnectionHandler
import modules.device.acme_dsp as AcmeDSP
import modules.device.acme_lights as AcmeLights
## End User Import -------------------------------------------------------------
##
## Begin Device/Processor Definition -------------------------------------------
Processor = ProcessorDevice('Processor')
## End Device/Processor Definition ---------------------------------------------
##
## Begin Device/User Interface Definition --------------------------------------
TLP = UIDevice('PanelTLP')
## End Device/User Interface Definition ----------------------------------------
##
## Begin Communication Interface Definition ------------------------------------
Projector = EthernetClientInterface('192.168.1.20', 4999)
DSP = AcmeDSP.EthernetClass('192.168.1.21', 1702, Model='Acme DSP 1')
Lights = AcmeLights.HTTPClass('192.168.1.22', 8080)
## End Communication Interface Definition --------------------------------------

# the Welcome page
Start = Button(TLP, 2)

# the Main page
Power = Button(TLP, 1)
Inputs = [Button(TLP, 11), Button(TLP, 12), Button(TLP, 13)]
InputGroup = MESet(Inputs)
AudioTab = Button(TLP, 20)
LightsTab = Button(TLP, 21)
Shutdown = Button(TLP, 30)
Status = Label(TLP, 100)
ProjectorStatus = Label(TLP, 101)

# the Audio popup (group 1)
Mute = Button(TLP, 40)
Gain = Slider(TLP, 41)
GainText = Label(TLP, 42)

# the Lights popup (group 1)
Scenes = [Button(TLP, 51), Button(TLP, 52), Button(TLP, 53), Button(TLP, 54)]
SceneGroup = MESet(Scenes)

# the Confirm modal popup
ShutdownYes = Button(TLP, 31)
ShutdownNo = Button(TLP, 32)


## The projector: a raw TCP link kept alive by the ConnectionHandler ----------
def ProjectorKeepAlive(interface):
    answer = interface.SendAndWait('PWR?\r', 1, deliTag=b'\r')
    if answer and answer.startswith(b'PWR='):
        interface.ResponseAccepted()
        ShowProjector(answer)


ProjectorHandler = GetConnectionHandler(Projector, ProjectorKeepAlive, pollFrequency=2,
                                        DisconnectLimit=2)


def ShowProjector(answer):
    fields = dict(part.split('=') for part in answer.decode().split() if '=' in part)
    Power.SetState(1 if fields.get('PWR') == '1' else 0)
    if fields.get('INP', '').isdigit() and 1 <= int(fields['INP']) <= len(Inputs):
        InputGroup.SetCurrent(Inputs[int(fields['INP']) - 1])


ProjectorBuffer = [b'']


@event(ProjectorHandler, 'ReceiveData')
def ProjectorReceived(interface, data):
    # what the projector answers to the panel's commands (not claimed by a SendAndWait)
    *answers, ProjectorBuffer[0] = (ProjectorBuffer[0] + data).split(b'\r')
    for answer in answers:
        if answer.startswith(b'PWR='):
            interface.ResponseAccepted()
            ShowProjector(answer)


@event(ProjectorHandler, ['Connected', 'Disconnected'])
def ProjectorConnection(interface, state):
    ProjectorStatus.SetText('Projector {}'.format(state))


## The DSP and the lights: Global Scripter modules under ConnectionHandler ---
DSPHandler = GetConnectionHandler(DSP, 'Mute', pollFrequency=2, DisconnectLimit=3)
LightsHandler = GetConnectionHandler(Lights, 'Scene', pollFrequency=2, DisconnectLimit=3)


@event(DSPHandler, 'Connected')
def DSPConnected(interface, state):
    DSP.Update('Gain')


def DSPMuteChanged(command, value, qualifier):
    Mute.SetState(1 if value == 'On' else 0)


def DSPGainChanged(command, value, qualifier):
    Gain.SetFill(value)
    GainText.SetText('{} dB'.format(value))


def LightsSceneChanged(command, value, qualifier):
    if value.isdigit() and 1 <= int(value) <= len(Scenes):
        SceneGroup.SetCurrent(Scenes[int(value) - 1])


DSP.SubscribeStatus('Mute', None, DSPMuteChanged)
DSP.SubscribeStatus('Gain', None, DSPGainChanged)
Lights.SubscribeStatus('Scene', None, LightsSceneChanged)


## Panel events ---------------------------------------------------------------
@event(Start, 'Pressed')
def StartPressed(button, state):
    ProjectorHandler.Send('PWR 1\r')
    TLP.ShowPage('Main')
    TLP.ShowPopup('Audio')
    Status.SetText('Welcome')


@event(Power, 'Pressed')
def PowerPressed(button, state):
    ProjectorHandler.Send('PWR {}\r'.format(0 if Power.State == 1 else 1))


@event(Inputs, 'Pressed')
def InputPressed(button, state):
    InputGroup.SetCurrent(button)
    ProjectorHandler.Send('INP {}\r'.format(Inputs.index(button) + 1))
    Status.SetText('Input {}'.format(Inputs.index(button) + 1))


@event(AudioTab, 'Pressed')
def AudioTabPressed(button, state):
    TLP.ShowPopup('Audio')  # hides Lights: the same popup group


@event(LightsTab, 'Pressed')
def LightsTabPressed(button, state):
    TLP.ShowPopup('Lights')


@event(Mute, 'Pressed')
def MutePressed(button, state):
    DSP.Set('Mute', 'Off' if Mute.State == 1 else 'On')


@event(Gain, ['Changed', 'Released'])
def GainMoved(slider, state, value):
    DSP.Set('Gain', int(value))


@event(Scenes, 'Pressed')
def ScenePressed(button, state):
    Lights.Set('Scene', str(Scenes.index(button) + 1))


@event(Shutdown, 'Pressed')
def ShutdownPressed(button, state):
    TLP.ShowPopup('Confirm')


@event(ShutdownYes, 'Pressed')
def ShutdownConfirmed(button, state):
    ProjectorHandler.Send('PWR 0\r')
    TLP.HideAllPopups()
    TLP.ShowPage('Welcome')


@event(ShutdownNo, 'Pressed')
def ShutdownCancelled(button, state):
    TLP.HidePopup('Confirm')


## Start -----------------------------------------------------------------------
def Initialize():
    Gain.SetRange(-60, 0, 1)
    TLP.ShowPage('Welcome')
    Status.SetText('Ready')
    ProjectorHandler.Connect()
    DSPHandler.Connect()
    LightsHandler.Connect()


Initialize()
