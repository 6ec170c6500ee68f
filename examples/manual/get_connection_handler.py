# Manual: "GetConnectionHandler Function", its snippet.  The names it takes from its program are
# defined first: the Global Scripter module (the shipped SIS module plays the DVS 605), the main
# processor and MlcKeepAlive ("a function that sends a programmer-specified query string").
from twisted_ch import GetConnectionHandler
import twisted_ch.devices.extr_sis_generic as DvsModule
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import EthernetServerInterfaceEx, SerialInterface

MainProcessor = ProcessorDevice('Main')


def MlcKeepAlive(interface):
    interface.Send('Q')


Server = GetConnectionHandler(EthernetServerInterfaceEx(9000),
                              serverTimeout=30)

# The connection handler will use the Global Scripter Module's Video
# Mute query function to keep the connection alive.
Dvs605 = GetConnectionHandler(DvsModule.EthernetClass('192.168.1.1',
                              9000, Model='DVS 605'), 'VideoMute',
                              DisconnectLimit=5)

# MlcKeepAlive in this example is a function that sends a programmer-
# specified query string.
Mlc206 = GetConnectionHandler(SerialInterface(MainProcessor, 'COM2'),
                              MlcKeepAlive)
