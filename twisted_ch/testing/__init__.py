"""
Test helpers for twisted_ch users: fake endpoints and transports driven by a C{task.Clock}, device
simulators on real loopback sockets (TCP, UDP, serial ptys, SSH), and soak-test helpers.  Usable
from trial or pytest.
"""

from twisted_ch.testing._flapping import (
    EventLog,
    FlappingDevice,
    StateSequence,
    twistedChDelayedCalls,
)
from twisted_ch.testing._kit import (
    DeviceServer,
    FakeEndpoint,
    FakeTransport,
    PtyPair,
    SimulatedDevice,
    UDPDeviceServer,
    listenDevice,
    listenUDPDevice,
    serveSerialDevice,
    waitUntil,
)
from twisted_ch.testing._loopback import (
    LoopbackServer,
    dropConnections,
    listenLoopback,
    listenStable,
    stablePorts,
)
from twisted_ch.testing._probes import (
    SIS_RESPONSES,
    PJLinkServer,
    SNMPAgent,
    listenPJLink,
    listenSNMP,
)
from twisted_ch.testing._sis import SISDevice, SISPump, SISServer, SISSession, listenSIS
from twisted_ch.testing._ssh import EchoProtocol, ServerSession, SSHTestServer, generateKey

__all__ = [
    "DeviceServer",
    "EchoProtocol",
    "EventLog",
    "FakeEndpoint",
    "FakeTransport",
    "FlappingDevice",
    "LoopbackServer",
    "PJLinkServer",
    "PtyPair",
    "SISDevice",
    "SISPump",
    "SISServer",
    "SISSession",
    "SIS_RESPONSES",
    "SNMPAgent",
    "SSHTestServer",
    "ServerSession",
    "SimulatedDevice",
    "StateSequence",
    "UDPDeviceServer",
    "dropConnections",
    "generateKey",
    "listenDevice",
    "listenLoopback",
    "listenPJLink",
    "listenSIS",
    "listenSNMP",
    "listenStable",
    "listenUDPDevice",
    "serveSerialDevice",
    "stablePorts",
    "twistedChDelayedCalls",
    "waitUntil",
]
