# Manual: "Asynchronous Devices Without a Global Scripter Module", as printed (serial, COM2).
# Transcription fix: the manual's PDF text reads `whileTrue :`; Python needs `while True:`.
from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib import event
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import SerialInterface

# The program's processor, defined before the example (its COM2 is /dev/ttyS1 unless mapped).
MainProcessor = ProcessorDevice('Main')


# First we need a function to send the keep alive query to the device. It
# must accept the interface that will be used to send the query string.
def DeviceKeepAlive(interface):
    interface.Send('P')


# Create a buffer to hold device response data.
DeviceBuffer = ''

# Instantiate the connection handler referencing the function above for the
# keepAliveQuery parameter.
DeviceInterface = GetConnectionHandler(SerialInterface(MainProcessor, 'COM2'),
                                       DeviceKeepAlive)


def Initialize():
    DeviceInterface.Connect()


# Process device responses in a handler for SerialDevice's ReceiveData
# event.
@event(DeviceInterface, 'ReceiveData')
def DeviceReceiveData(interface, rcvString):
    global DeviceBuffer
    DeviceBuffer += rcvString.decode()
    while True:
        msg, delim, remainder = DeviceBuffer.partition('\r\n')
        if not delim:
            break  # '\r\n' wasn't in the buffer
        DeviceBuffer = remainder  # save the leftovers
        Command = msg[:3]
        State = msg[3:]
        if Command == 'Pwr' and State in ['0', '1', '2', '3']:
            # When not using a Global Scripter Module you must manually
            # inform the connection handler that a good response has been
            # received.
            interface.ResponseAccepted()


@event(DeviceInterface, ['Connected', 'Disconnected'])
def DeviceConnectHandler(interface, state):
    print('Device is {}.'.format(state))


Initialize()
