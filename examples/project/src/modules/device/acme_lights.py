"""
A Global Scripter-style HTTP module for a (fictional) Acme lighting controller: Scene.

``GET http://HOST:PORT/api/scene`` answers the current scene number; ``GET .../api/scene?set=N``
recalls scene N (1-4) and answers it.  Like Extron's HTTP modules it calls ``urllib`` with the
device's address, so a test bench reaches a simulator through ``[program] addresses``.
"""

import urllib.error
import urllib.request


class DeviceClass:
    def __init__(self):
        self.Unidirectional = 'False'
        self.connectionCounter = 3
        self.Subscription = {}
        self.counter = 0
        self.connectionFlag = True
        self.Models = {}
        self.Commands = {
            'ConnectionStatus': {'Status': {}},
            'Scene': {'Status': {}},
        }

    def SetScene(self, value, qualifier):
        if value in ('1', '2', '3', '4'):
            self.__Request('set={}'.format(value))
        else:
            print('Invalid Command for SetScene')

    def UpdateScene(self, value, qualifier):
        self.__Request(None)

    def __Request(self, query):
        url = '{}/api/scene{}'.format(self.url, '' if query is None else '?' + query)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                answer = response.read().decode('ascii', 'replace').strip()
        except (urllib.error.URLError, OSError, ValueError):
            self.counter += 1
            if self.counter > self.connectionCounter and self.connectionFlag:
                self.OnDisconnected()
            return
        self.WriteStatus('Scene', answer)

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


class HTTPClass(DeviceClass):
    def __init__(self, ipAddress, port='80', deviceUsername=None, devicePassword=None,
                 Model=None):
        self.ConnectionType = 'HTTP'
        self.url = 'http://{}:{}'.format(ipAddress, port)
        self.timeout = 2
        DeviceClass.__init__(self)
