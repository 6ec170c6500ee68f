# Manual: "Synchronous Devices Without a Global Scripter Module", as printed (serial, COM2).
# As printed, the manual's keep-alive parses a name `msg` it never assigned (it assigned `res`):
# it raises NameError on every poll.  Kept verbatim; twisted_ch logs the error and keeps polling.
from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib import event
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import SerialInterface

# The program's processor, defined before the example (its COM2 is /dev/ttyS1 unless mapped).
MainProcessor = ProcessorDevice('Main')


# First we need a function to send the keep alive query to the device and
# process the response for correctness. It must accept the interface that
# will be used to send the query string.
def DeviceKeepAlive(interface):
    res = interface.SendAndWait('P', 3, deliTag=b'\r\n')
    Command = msg[:3]  # noqa: F821 - the manual's bug, see above
    State = msg[3:]  # noqa: F821
    if Command == 'Pwr' and State in ['0', '1', '2', '3']:
        # When not using a Global Scripter Module you must manually inform
        # the connection handler that a good response has been received.
        interface.ResponseAccepted()


# Instantiate the connection handler referencing the function above for the
# keepAliveQuery parameter.
DeviceInterface = GetConnectionHandler(SerialInterface(MainProcessor, 'COM2'),
                                       DeviceKeepAlive)


def Initialize():
    DeviceInterface.Connect()


# While SerialInterface and UDP protocol EthernetClientInterface don't have
# Connected and Disconnected events, all ConnectionHandler instances do.
@event(DeviceInterface, ['Connected', 'Disconnected'])
def DeviceConnectHandler(interface, state):
    print('Device is {}.'.format(state))


Initialize()
