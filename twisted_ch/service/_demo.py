# mypy: disable-error-code="no-untyped-call"
# (twisted.application.service and twisted.internet.abstract are unannotated)
"""
The built-in default of C{twistd chandler}: the whole product on one machine, nothing to configure.

Simulated devices listen on loopback, one per transport this installation has, and connection
handlers keep them alive with the stock probes.  One device drops out and comes back on a
schedule, so transitions show in the log and on the status page.

Each transport is one small function below taking a L{_Demo}: it starts its simulator, registers
how to stop it, and adds the device (or server) to watch, or raises L{_Skip} saying why it cannot.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import abstract, fdesc
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import quoteStringArgument
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_ch.service._config import DeviceConfig, ProbeConfig, ServerConfig
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import DevicesService

__all__ = ["DemoService", "TRANSPORTS"]

log = Logger(namespace="twisted_ch.demo")

#: The PJLink password of the demo projector (a demo value, not a secret).
DEMO_PJLINK_PASSWORD = "demo-pjlink"


class _Skip(Exception):
    """This transport cannot be shown here; the message says why."""


@dataclass
class _Demo:
    """What a transport function gets: the reactor, the devices to add to, the cleanups."""

    reactor: Any
    devices: DevicesService
    up: float
    down: float
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    def watch(self, device: DeviceConfig) -> None:
        self.devices.add(device)

    def serve(self, server: ServerConfig) -> None:
        self.devices.addServer(server)

    def onStop(self, f: Callable[[], object]) -> None:
        self.cleanups.append(f)


def _need(module: str, what: str) -> None:
    try:
        found = find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        raise _Skip(f"{what} ({module}) is not available")


def _needParser(reactor: Any, description: str) -> None:
    from twisted_ch.endpoints._strings import clientFromString

    try:
        clientFromString(reactor, description)
    except Exception as e:
        raise _Skip(f"cannot parse {description.split(':', 1)[0]!r} endpoints: {e}") from None


def _sisResponses() -> dict[bytes, bytes]:
    from twisted_ch.testing._probes import SIS_RESPONSES

    return dict(SIS_RESPONSES)


# one function per transport


def tcpSwitcher(demo: _Demo) -> str:
    """An Extron SIS switcher on TCP, probed with C{Q} (firmware version)."""
    from twisted_ch.testing import DeviceServer

    server = DeviceServer(demo.reactor, _sisResponses())
    server.noisy = False
    port = server.start()
    demo.onStop(server.shutdown)
    demo.watch(
        DeviceConfig(
            "switcher",
            f"tcp:host=127.0.0.1:port={port}",
            probe=ProbeConfig("sis", {"query": b"Q", "timeout": 1.0}),
            pollFrequency=1.0,
            DisconnectLimit=3,
            connectRetryTime=2.0,
        )
    )
    return "switcher (TCP, SIS)"


def tcpProjector(demo: _Demo) -> str:
    """A PJLink projector that requires authentication."""
    from twisted_ch.testing._probes import PJLinkServer

    server = PJLinkServer(demo.reactor, password=DEMO_PJLINK_PASSWORD)
    port = server.start()
    demo.onStop(server.shutdown)
    demo.watch(
        DeviceConfig(
            "projector",
            f"tcp:host=127.0.0.1:port={port}",
            probe=ProbeConfig("pjlink", {"password": DEMO_PJLINK_PASSWORD, "timeout": 1.0}),
            pollFrequency=2.0,
            DisconnectLimit=3,
            connectRetryTime=2.0,
        )
    )
    return "projector (TCP, PJLink with authentication)"


def tcpFlaky(demo: _Demo) -> str:
    """A SIS switcher that goes silent and refuses connections for C{down} of every cycle."""
    from twisted_ch.testing import DeviceServer

    server = DeviceServer(demo.reactor, _sisResponses())
    server.noisy = False
    port = server.start()
    state: dict[str, IDelayedCall | None] = {"next": None}

    def goDown() -> None:
        log.info(
            "demo: flaky-switcher drops out for {down:g} s (silent, refusing connections)",
            down=demo.down,
        )
        server.silent = True
        server.stop()
        state["next"] = demo.reactor.callLater(demo.down, comeBack)

    def comeBack() -> None:
        log.info("demo: flaky-switcher is back", up=demo.up)
        server.silent = False
        server.start()
        state["next"] = demo.reactor.callLater(demo.up, goDown)

    def stop() -> Deferred[None]:
        pending = state["next"]
        if pending is not None and pending.active():
            pending.cancel()
        return server.shutdown()

    state["next"] = demo.reactor.callLater(demo.up, goDown)
    demo.onStop(stop)
    demo.watch(
        DeviceConfig(
            "flaky-switcher",
            f"tcp:host=127.0.0.1:port={port}",
            probe=ProbeConfig("sis", {"query": b"Q", "timeout": 0.4}),
            pollFrequency=0.5,
            DisconnectLimit=2,
            connectRetryTime=1.0,
            connectTimeout=2.0,
        )
    )
    return f"flaky-switcher (TCP, SIS; out {demo.down:g} s of every {demo.up + demo.down:g} s)"


def udpSNMP(demo: _Demo) -> str:
    """An SNMP agent (a UPS, say) on UDP, probed with a GET of sysUpTime."""
    _need("twisted_ch.endpoints.udp", "the UDP endpoint")
    _need("pyasn1", "pyasn1 (the snmp extra)")
    _needParser(demo.reactor, "udp:host=127.0.0.1:port=9")
    from twisted_ch.testing._probes import SNMPAgent

    agent = SNMPAgent(demo.reactor, community="public")
    port = agent.start()
    demo.onStop(agent.shutdown)
    demo.watch(
        DeviceConfig(
            "ups",
            f"udp:host=127.0.0.1:port={port}",
            connection="pipe",
            probe=ProbeConfig("snmp", {"community": "public", "version": "2c", "timeout": 1.0}),
            pollFrequency=2.0,
            DisconnectLimit=3,
            connectRetryTime=2.0,
        )
    )
    return "ups (UDP, SNMP sysUpTime)"


class _PtyDevice(abstract.FileDescriptor):
    """The device end of a pseudo-terminal: moves bytes between its master fd and a protocol."""

    def __init__(self, reactor: Any, fd: int, protocol: Protocol) -> None:
        super().__init__(reactor)
        self.fd = fd
        self.protocol = protocol
        fdesc.setNonBlocking(fd)
        self.connected = 1
        protocol.makeConnection(self)
        self.startReading()

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> Any:
        return fdesc.readFromFD(self.fd, self.protocol.dataReceived)

    def writeSomeData(self, data: bytes) -> Any:
        return fdesc.writeToFD(self.fd, data)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
        self.protocol.connectionLost(reason)


def serialDisplay(demo: _Demo) -> str:
    """A display on a serial line (a pseudo-terminal), probed as in the manual: C{P} -> C{Pwr1}."""
    _need("twisted_ch.endpoints.serial", "the serial endpoint")
    _need("serial", "pyserial")
    if not hasattr(os, "openpty"):
        raise _Skip("this platform has no pseudo-terminals")
    import tty

    from twisted_ch.testing import DeviceServer, SimulatedDevice

    _needParser(demo.reactor, "serial:/dev/ttyS0")
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    state = DeviceServer(demo.reactor, {b"P": b"Pwr1\r\n"})
    device = _PtyDevice(demo.reactor, master, SimulatedDevice(state))

    def stop() -> None:
        device.loseConnection()
        os.close(slave)

    demo.onStop(stop)
    demo.watch(
        DeviceConfig(
            "display",
            f"serial:{path}:baudrate=9600",
            connection="pipe",
            probe=ProbeConfig("send", {"send": b"P", "expect": rb"Pwr[0-3]\r\n", "timeout": 1.0}),
            pollFrequency=1.0,
            DisconnectLimit=3,
            connectRetryTime=2.0,
        )
    )
    return f"display (serial on {path}, send/expect)"


def sshCodec(demo: _Demo) -> str:
    """A SIS device behind an SSH shell (password login, pinned host key), served in-process."""
    _need("twisted_ch.endpoints.ssh", "the SSH endpoint")
    _need("twisted_ch.testing._ssh", "the in-process SSH server")
    _needParser(demo.reactor, "ssh:127.0.0.1:22:username=demo")
    import shutil
    import tempfile

    from twisted_ch.testing import DeviceServer
    from twisted_ch.testing._ssh import SSHTestServer

    password = secrets.token_urlsafe(12)
    device = DeviceServer(demo.reactor, _sisResponses())
    server = SSHTestServer(demo.reactor, device, users={"admin": password})
    server.start()
    folder = tempfile.mkdtemp(prefix="chandler-demo-")
    knownHosts = os.path.join(folder, "known_hosts")
    with open(knownHosts, "w", encoding="ascii") as f:
        f.write(server.knownHostsLine())

    def stop() -> Deferred[None]:
        return server.stop().addBoth(lambda r: shutil.rmtree(folder, ignore_errors=True))

    demo.onStop(stop)
    endpoint = ":".join(
        [
            "ssh:127.0.0.1",
            str(server.port),
            "username=admin",
            f"password={password}",
            f"knownHosts={quoteStringArgument(knownHosts)}",
            "hostKeyPolicy=reject",
        ]
    )
    demo.watch(
        DeviceConfig(
            "codec",
            endpoint,
            probe=ProbeConfig("sis", {"query": b"Q", "timeout": 1.0}),
            pollFrequency=2.0,
            DisconnectLimit=3,
            connectRetryTime=2.0,
        )
    )
    return "codec (SSH shell, SIS)"


class _Panel(Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"hello\r\n")


class _PanelFactory(ClientFactory):
    """Connects a panel that says hello and then idles."""

    noisy = False
    protocol = _Panel


def tcpServer(demo: _Demo) -> str:
    """A control server that drops idle clients, and a panel that connects and then idles."""
    _need("twisted_ch._server", "the server handler")

    timeout = max(2.0, min(10.0, demo.up / 2))
    demo.serve(ServerConfig("control-server", 0, "127.0.0.1", serverTimeout=timeout))
    connectors: list[Any] = []

    def visit() -> None:
        handler = demo.devices.handlers.get("control-server")
        if handler is None or not handler.Interface.listening:
            return
        connectors[:] = [c for c in connectors if c.state != "disconnected"]
        port = handler.Interface.IPPort
        connectors.append(demo.reactor.connectTCP("127.0.0.1", port, _PanelFactory(), timeout=5))

    visits = LoopingCall(visit)
    visits.clock = demo.reactor
    # the first visit once the devices service (started after the simulators) listens
    first = demo.reactor.callLater(0.5, visits.start, demo.up + demo.down)

    def stop() -> None:
        if first.active():
            first.cancel()
        if visits.running:
            visits.stop()
        for connector in connectors:
            connector.disconnect()

    demo.onStop(stop)
    return f"control-server (TCP server; idle clients dropped after {timeout:g} s)"


#: The transports the demo tries, in order.
TRANSPORTS: list[Callable[[_Demo], str]] = [
    tcpSwitcher,
    tcpProjector,
    tcpFlaky,
    udpSNMP,
    serialDisplay,
    sshCodec,
    tcpServer,
]


class _Simulators(Service):
    def __init__(self, demo: _Demo) -> None:
        self.demo = demo

    def startService(self) -> None:
        super().startService()
        shown: list[str] = []
        for transport in TRANSPORTS:
            try:
                shown.append(transport(self.demo))
            except _Skip as e:
                log.info("demo: skipping {transport}: {why}", transport=transport.__name__, why=e)
            except Exception:
                log.failure("demo: {transport} failed to start", transport=transport.__name__)
        log.info(
            "demo: {n} simulated devices on loopback: {shown}", n=len(shown), shown="; ".join(shown)
        )

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        cleanups, self.demo.cleanups = self.demo.cleanups, []
        return DeferredList([maybeDeferred(f) for f in reversed(cleanups)], consumeErrors=True)


class DemoService(MultiService):
    """The simulators, then the handlers watching them (stopped in the reverse order)."""

    def __init__(self, reactor: Any, registry: Registry, up: float = 40.0, down: float = 20.0):
        super().__init__()
        self.devices = DevicesService(reactor, registry)
        self.demo = _Demo(reactor, self.devices, up, down)
        _Simulators(self.demo).setServiceParent(self)
        self.devices.setServiceParent(self)
