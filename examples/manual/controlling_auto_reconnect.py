# Manual: "Controlling Auto Reconnect".  `DeviceInterface` is the program's TCP connection handler,
# defined before this code (as in the manual).
from twisted_ch.extronlib.system import Clock


def DisableReconnect(clock, dt):
    # Called by the NightlyShutdown Clock instance to stop automatic
    # reconnection attempts and polling.
    DeviceInterface.AutoReconnect = False  # noqa: F821


def EnableReconnect(clock, dt):
    # Called by the MorningPowerOn Clock instance to re-enable automatic
    # reconnection attempts and polling.
    DeviceInterface.AutoReconnect = True  # noqa: F821
    # Enabling automatic reconnection doesn't also begin making connection
    # attempts.
    DeviceInterface.Connect()  # noqa: F821


NightlyShutdown = Clock(['21:00:00'], None, DisableReconnect)
NightlyShutdown.Enable()
MorningPowerOn = Clock(['08:00:00'], None, EnableReconnect)
MorningPowerOn.Enable()
