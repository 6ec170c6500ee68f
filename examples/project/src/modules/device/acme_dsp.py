"""
A Global Scripter-style device module for a (fictional) Acme DSP over TCP: Mute and Gain.

Protocol: ``GET MUTE``, ``SET MUTE 0|1``, ``GET GAIN``, ``SET GAIN -60..0``, each ended by a
carriage return; the DSP answers ``MUTE n`` or ``GAIN n`` (and pushes them when they change).
Used as Global Scripter modules are::

    import modules.device.acme_dsp as AcmeDSP
    DSP = AcmeDSP.EthernetClass('192.168.1.21', 1702, Model='Acme DSP 1')
    DSP.SubscribeStatus('Mute', None, MuteChanged)
    DSPHandler = GetConnectionHandler(DSP, 'Mute')
"""

from extronlib.interface import EthernetClientInterface


class DeviceClass:
    def __init__(self):
        self.Unidirectional = 'False'
        self.connectionCounter = 5
        self.DefaultResponseTimeout = 0.3
        self.Subscription = {}
        self.counter = 0
        self.connectionFlag = True
        self.Models = {'Acme DSP 1': self.acme_dsp_1}
        self.Commands = {
            'ConnectionStatus': {'Status': {}},
            'Mute': {'Status': {}},
            'Gain': {'Status': {}},
        }
        self._buffer = b''
        self.ReceiveData = self.__ReceiveData

    def acme_dsp_1(self):
        pass

    # --- commands -------------------------------------------------------------------------
    def SetMute(self, value, qualifier):
        states = {'On': '1', 'Off': '0'}
        if value in states:
            self.__Send('SET MUTE {}\r'.format(states[value]))
        else:
            print('Invalid Command for SetMute')

    def UpdateMute(self, value, qualifier):
        self.__Update('GET MUTE\r')

    def SetGain(self, value, qualifier):
        if -60 <= int(value) <= 0:
            self.__Send('SET GAIN {}\r'.format(int(value)))
        else:
            print('Invalid Command for SetGain')

    def UpdateGain(self, value, qualifier):
        self.__Update('GET GAIN\r')

    # --- what every Global Scripter module has ---------------------------------------------
    def __Send(self, data):
        self.Send(data)

    def __Update(self, data):
        self.counter += 1
        if self.counter > self.connectionCounter and self.connectionFlag:
            self.OnDisconnected()
        self.__Send(data)

    def __ReceiveData(self, interface, data):
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b'\r')
        for line in lines:
            parts = line.decode('ascii', 'replace').split()
            if len(parts) != 2:
                continue
            if parts[0] == 'MUTE':
                self.WriteStatus('Mute', 'On' if parts[1] == '1' else 'Off')
            elif parts[0] == 'GAIN':
                self.WriteStatus('Gain', int(parts[1]))

    def OnConnected(self):
        self.connectionFlag = True
        self.counter = 0
        self.WriteStatus('ConnectionStatus', 'Connected')

    def OnDisconnected(self):
        self.WriteStatus('ConnectionStatus', 'Disconnected')
        self.connectionFlag = False

    def Set(self, command, value, qualifier=None):
        method = getattr(self, 'Set%s' % command, None)
        if method is None:
            print(command, 'does not support Set.')
        else:
            method(value, qualifier)

    def Update(self, command, qualifier=None):
        method = getattr(self, 'Update%s' % command, None)
        if method is None:
            print(command, 'does not support Update.')
        else:
            method(None, qualifier)

    def SubscribeStatus(self, command, qualifier, callback):
        if command in self.Commands:
            self.Subscription[command] = {'method': {'callback': callback, 'qualifier': qualifier}}
        else:
            print(command, 'does not exist in the module')

    def NewStatus(self, command, value, qualifier):
        method = self.Subscription.get(command, {}).get('method')
        if method:
            method['callback'](command, value, qualifier)

    def WriteStatus(self, command, value, qualifier=None):
        if command != 'ConnectionStatus':
            self.counter = 0
            if not self.connectionFlag or self.ReadStatus('ConnectionStatus') != 'Connected':
                self.OnConnected()
        status = self.Commands[command]['Status']
        if status.get('Live') != value:
            status['Live'] = value
            self.NewStatus(command, value, qualifier)

    def ReadStatus(self, command, qualifier=None):
        return self.Commands.get(command, {}).get('Status', {}).get('Live')


class EthernetClass(EthernetClientInterface, DeviceClass):
    def __init__(self, Hostname, IPPort, Protocol='TCP', ServicePort=0, Model=None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, ServicePort)
        self.ConnectionType = 'Ethernet'
        DeviceClass.__init__(self)
        if Model in self.Models:
            self.Models[Model]()
