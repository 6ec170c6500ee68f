"""
Test helpers for twisted_ch users.  Usable from trial or pytest.

Deterministic fakes (C{_fakes}), for C{task.Clock}-driven tests: nothing moves unless the test
moves it.  L{FakeEndpoint} and its L{FakeTransport}; L{SISPump}, an L{SISDevice} behind a
FakeEndpoint.

Simulators on real loopback sockets, driven by the reactor: L{DeviceServer} / L{listenDevice}
(canned answers over TCP), L{UDPDeviceServer}, L{PtyPair} / L{serveSerialDevice} (serial ptys),
L{SISServer}, L{PJLinkServer}, L{SNMPAgent}, L{SSHTestServer}, L{FlappingDevice} (soak tests),
L{LoopbackServer} and its helpers; L{waitUntil} polls a condition on a real reactor.

Recorders for soak tests: L{EventLog}, L{StateSequence}, L{twistedChDelayedCalls}.

GUI Designer layout fixtures: L{packGDL} and the C{gdl*} builders.
"""

from twisted_ch.testing._fakes import FakeEndpoint, FakeTransport, SISPump
from twisted_ch.testing._flapping import (
    EventLog,
    FlappingDevice,
    StateSequence,
    twistedChDelayedCalls,
)
from twisted_ch.testing._gdl import (
    BIG_POPUP_ID,
    fixtureImages,
    fixtureLayout,
    gdlButton,
    gdlColor,
    gdlDateTime,
    gdlFont,
    gdlGroupRef,
    gdlImage,
    gdlLabel,
    gdlLayout,
    gdlLevel,
    gdlModalPopup,
    gdlPage,
    gdlPopup,
    gdlPopupRef,
    gdlShape,
    gdlSlider,
    gdlState,
    packGDL,
    solidPNG,
    twoColourPNG,
)
from twisted_ch.testing._kit import (
    DeviceServer,
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
from twisted_ch.testing._sis import SISDevice, SISServer, SISSession, listenSIS
from twisted_ch.testing._ssh import EchoProtocol, ServerSession, SSHTestServer, generateKey

__all__ = [
    "BIG_POPUP_ID",
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
    "fixtureImages",
    "fixtureLayout",
    "gdlButton",
    "gdlColor",
    "gdlDateTime",
    "gdlFont",
    "gdlGroupRef",
    "gdlImage",
    "gdlLabel",
    "gdlLayout",
    "gdlLevel",
    "gdlModalPopup",
    "gdlPage",
    "gdlPopup",
    "gdlPopupRef",
    "gdlShape",
    "gdlSlider",
    "gdlState",
    "generateKey",
    "listenDevice",
    "listenLoopback",
    "listenPJLink",
    "listenSIS",
    "listenSNMP",
    "listenStable",
    "listenUDPDevice",
    "packGDL",
    "serveSerialDevice",
    "solidPNG",
    "stablePorts",
    "twistedChDelayedCalls",
    "twoColourPNG",
    "waitUntil",
]
