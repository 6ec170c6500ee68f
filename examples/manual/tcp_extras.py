# Manual: "TCP Extras".
from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib import event
from twisted_ch.extronlib.interface import EthernetClientInterface


def DeviceKeepAlive(interface):
    interface.Send('P')


DeviceBuffer = ''

EthInterface = EthernetClientInterface('192.168.1.1', 5000)
DeviceInterface = GetConnectionHandler(EthInterface, DeviceKeepAlive)


def Initialize():
    DeviceInterface.StartPolling()


@event(DeviceInterface, 'ConnectFailed')
def DeviceConnectFailed(interface, reason):
    print('Failed to connect to Device:', reason)


Initialize()
