# Manual: "Pause and Resume Polling".  `DeviceInterface` is the program's connection handler and
# HandleProjectorPower a projector module's power status callback (as in the manual).
from twisted_ch.extronlib.system import Wait


def ResumeProjectorPolling():
    # Resume polling.
    DeviceInterface.PollTimer.Resume()  # noqa: F821


def HandleProjectorPower(dev, state, qualifier):
    if state == 'On':
        pass  # handle On state
    elif state == 'Off':
        pass  # handle Off state
    elif state == 'Cooling Down':
        # handle Cooling Down state
        # Pause polling.
        DeviceInterface.PollTimer.Pause()  # noqa: F821
        Wait(60, ResumeProjectorPolling)
    elif state == 'Warming Up':
        # handle Warming Up state
        # Pause polling.
        DeviceInterface.PollTimer.Pause()  # noqa: F821
        Wait(30, ResumeProjectorPolling)
