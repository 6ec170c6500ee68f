"""
Every link of a program on the status page, whatever ConnectionHandler it uses: a project that
ships its own ConnectionHandler.py (a stand-in with Extron's public names) shows each of its
devices on /status and /metrics, its outages are logged once, and /trace attaches to them.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from browser import waitFor
from twisted.internet import reactor, threads
from twisted.internet.task import Clock, deferLater
from twisted.logger import formatEvent, globalLogPublisher

from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.service._links import ProgramLink, interfaceFields
from twisted_ch.service._registry import Entry, Registry
from twisted_ch.service._services import ProgramService
from twisted_ch.service._trace import WireTrace, linkFinder
from twisted_ch.service._web import StatusService
from twisted_ch.testing import DeviceServer, FakeEndpoint, UDPDeviceServer

#: A stand-in for Extron's ConnectionHandler.py: its public names, its own ConnectionStatus,
#: polling with an extronlib Timer.  RawTcpHandler learns of a lost link through the interface's
#: events (set with @event, a closure over the handler); RawSimplePipeHandler only polls.
CONNECTION_HANDLER = """
from extronlib import event
from extronlib.system import Timer

ModuleVersion = '0.0-standin'


class _Handler:
    def __init__(self, Interface, DisconnectLimit=2, pollFrequency=0.2, keepAliveQuery=None,
                 keepAliveQueryQualifier=None, connectRetryTime=0.2):
        self.__interface = Interface
        self.__status = 'Unknown'
        self.__limit = DisconnectLimit
        self.__misses = 0
        self._query = keepAliveQuery
        self.Connected = None
        self.Disconnected = None
        self.__timer = Timer(pollFrequency, self._Poll)
        self.__timer.Stop()

    @property
    def Interface(self):
        return self.__interface

    @property
    def ConnectionStatus(self):
        return self.__status

    def _Set(self, status):
        if status != self.__status:
            self.__status = status
            callback = self.Connected if status == 'Connected' else self.Disconnected
            if callback is not None:
                callback(self.__interface, status)

    def ResponseAccepted(self):
        self.__misses = 0
        self._Set('Connected')

    def _Missed(self):
        self.__misses += 1
        if self.__misses > self.__limit and self.__status == 'Connected':
            self._Set('Disconnected')

    def _Ask(self):
        if self.__interface.SendAndWait(self._query, 0.3, deliTag=b'\\r\\n'):
            self.ResponseAccepted()
        else:
            self._Missed()

    def Connect(self, timeout=None):
        self.__timer.Restart()
        return 'Connected'

    def Disconnect(self):
        self.__timer.Stop()
        self.__interface.Disconnect()
        self._Set('Disconnected')


class RawTcpHandler(_Handler):
    def __init__(self, Interface, *args, **kwargs):
        super().__init__(Interface, *args, **kwargs)
        handler = self

        @event(Interface, ['Connected', 'Disconnected'])
        def LinkEvent(interface, state):
            if state == 'Disconnected':
                handler._Set('Disconnected')

    def _Poll(self, timer, count):
        result = self.Interface.Connect(0.5)
        if result in ('Connected', 'ConnectedAlready'):
            self._Ask()


class RawSimplePipeHandler(_Handler):
    def _Poll(self, timer, count):
        self._Ask()


ModuleTcpHandler = RawTcpHandler
ModuleSimplePipeHandler = RawSimplePipeHandler


class ServerExHandler:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError('not in the stand-in')


def GetConnectionHandler(Interface, keepAliveQuery=None, keepAliveQueryQualifier=None,
                         DisconnectLimit=2, pollFrequency=0.2, connectRetryTime=0.2):
    if getattr(Interface, 'Protocol', 'TCP') in ('TCP', 'SSH'):
        kind = RawTcpHandler
    else:
        kind = RawSimplePipeHandler
    return kind(Interface, DisconnectLimit, pollFrequency, keepAliveQuery)
"""

#: A Global Scripter-style device module: a class deriving from extronlib's interface.
MODULE = """
from extronlib.interface import EthernetClientInterface


class DeviceClass(EthernetClientInterface):
    def __init__(self, Hostname, IPPort, Protocol='TCP', ServicePort=0, Model=None):
        EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol, ServicePort)
        self.Model = Model
"""

MAIN = """
from extronlib.interface import EthernetClientInterface
from ConnectionHandler import GetConnectionHandler
import standin_projector

Switcher = GetConnectionHandler(EthernetClientInterface('127.0.0.1', {switcher}), b'Q')
Projector = GetConnectionHandler(
    standin_projector.DeviceClass('127.0.0.1', {projector}, Model='X1'), b'Q'
)
Audio = GetConnectionHandler(EthernetClientInterface('127.0.0.1', {audio}, 'UDP'), b'Q')
for device in (Switcher, Projector, Audio):
    device.Connect()
"""

ANSWERS = {b"Q": b"1.23\r\n"}


class Events(list[dict[str, Any]]):
    def __enter__(self) -> Events:
        globalLogPublisher.addObserver(self.append)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self.append)

    def outages(self, text: str) -> list[str]:
        return [
            formatEvent(e)
            for e in self
            if e.get("log_namespace") == "twisted_ch.outage" and text in formatEvent(e)
        ]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A program folder with its own ConnectionHandler.py (its modules forgotten after)."""
    (tmp_path / "ConnectionHandler.py").write_text(CONNECTION_HANDLER)
    (tmp_path / "standin_projector.py").write_text(MODULE)
    before = list(sys.path)
    for name in ("ConnectionHandler", "standin_projector"):
        sys.modules.pop(name, None)
    yield tmp_path
    sys.path[:] = before
    for name in ("ConnectionHandler", "standin_projector"):
        sys.modules.pop(name, None)


async def until(check: Any, what: str, tries: int = 200) -> None:
    """A bounded wait (tries x 50 ms) for C{check()}."""
    for _ in range(tries):
        if check():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


#: Each device row of the dashboard: its name, state and the name cell's title.
ROWS = """
return Array.from(document.querySelectorAll('#devices tbody tr')).map((tr) => ({
  name: tr.dataset.name,
  state: tr.querySelector('td.state').textContent,
  title: tr.querySelector('td.name').title,
}));
"""


def dashboardRows(browser: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in browser.execute_script(ROWS)}


def fetch(url: str, data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
        return bytes(r.read())


@pytest_twisted.ensureDeferred
async def test_a_program_with_its_own_connection_handler_shows_every_device(
    project: Path, browser: Any
) -> None:
    switcher = DeviceServer(reactor, ANSWERS)
    projector = DeviceServer(reactor, ANSWERS)
    audio = UDPDeviceServer(reactor, ANSWERS)
    for server in (switcher, projector, audio):
        server.start()
    main = project / "main.py"
    main.write_text(MAIN.format(switcher=switcher.port, projector=projector.port, audio=audio.port))
    registry = Registry(clock=reactor)
    trace = WireTrace(reactor, linkFinder(registry.entries))
    status = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry, trace)
    status.startService()
    service = ProgramService(reactor, str(main), registry)
    failed: list[Any] = []
    service.onFailure = failed.append
    names = {
        "Switcher": f"tcp:127.0.0.1:{switcher.port}",
        "Projector": f"tcp:127.0.0.1:{projector.port}",
        "Audio": f"udp:127.0.0.1:{audio.port}",
    }

    def rows() -> dict[str, dict[str, Any]]:
        return {str(r["name"]): r for r in registry.rows()}

    with Events() as events:
        service.startService()
        try:
            await until(
                lambda: (
                    all(rows().get(n, {}).get("state") == "Connected" for n in names.values())
                    and all("variable" in r for r in rows().values())
                ),
                "three devices Connected",
            )
            assert failed == []
            told = [
                formatEvent(e) for e in events if "ran its top level" in str(e.get("log_format"))
            ]
            assert told and "; 3 links on the status page (0 with twisted_ch's" in told[0], told
            base = str(status.url)
            document = json.loads(await threads.deferToThread(fetch, base + "status"))
            devices = {d["name"]: d for d in document["devices"]}
            assert sorted(devices) == sorted(names.values())  # each device once
            switcherRow = devices[names["Switcher"]]
            assert switcherRow["variable"] == "Switcher"
            assert switcherRow["interface"] == "EthernetClientInterface"
            assert switcherRow["address"] == f"127.0.0.1:{switcher.port}"
            assert switcherRow["protocol"] == "TCP"
            assert switcherRow["handler"] == "RawTcpHandler"
            assert switcherRow["handlerKind"] == "program"
            assert switcherRow["link"] == "connected"
            assert switcherRow["health"] == "ok"
            projectorRow = devices[names["Projector"]]
            assert projectorRow["module"] == "standin_projector.DeviceClass"
            assert projectorRow["interface"] == "EthernetClientInterface"
            assert projectorRow["variable"] == "Projector"
            audioRow = devices[names["Audio"]]
            assert (audioRow["handler"], audioRow["protocol"]) == ("RawSimplePipeHandler", "UDP")
            assert document["summary"]["up"] == 3
            metrics = (await threads.deferToThread(fetch, base + "metrics")).decode()
            for name in names.values():
                assert f'chandler_device_up{{device="{name}"}} 1.0' in metrics, metrics

            # the dashboard's rows, in headless Chromium
            await threads.deferToThread(browser.get, base)
            shown = await threads.deferToThread(
                waitFor,
                browser,
                lambda b: (lambda r: r if set(names.values()) <= set(r) else None)(
                    dashboardRows(b)
                ),
                message="the three devices on the dashboard",
            )
            assert {shown[n]["state"] for n in names.values()} == {"Connected"}
            assert "standin_projector.DeviceClass" in shown[names["Projector"]]["title"]
            assert "RawTcpHandler (link connected)" in shown[names["Switcher"]]["title"]

            # /trace attaches to a program's own handler's link, named by its variable
            answer = json.loads(
                await threads.deferToThread(fetch, base + "trace", b"device=Switcher&minutes=1")
            )
            assert answer["device"] == "Switcher"
            # (>= 4: a trace started on a link already up masks its first send)
            await until(lambda: len(trace.records("Switcher")) >= 4, "traced polls")
            traced = json.loads(await threads.deferToThread(fetch, base + "trace?device=Switcher"))
            assert traced["traces"]["Switcher"]["attached"] is True
            assert {r["direction"] for r in traced["records"]} == {"tx", "rx"}
            assert any("51" in r["hex"] for r in traced["records"])  # b"Q"
            trace.stopAll()

            # the devices stop: one outage line each, as for twisted_ch's own handlers
            switcher.dropClients()
            await switcher.stop()
            await projector.stop()
            projector.dropClients()
            await audio.stop()
            await until(
                lambda: all(rows()[n]["state"] == "Disconnected" for n in names.values()),
                "three devices Disconnected",
            )
            await until(
                lambda: all(
                    events.outages(f"{n}: Connected -> Disconnected") for n in names.values()
                ),
                "the outage lines",
            )
            # back: one line each; the refreshes meanwhile logged no second outage
            switcher.start()
            projector.start()
            audio.start()
            await until(
                lambda: all(
                    events.outages(f"{n}: Disconnected -> Connected") for n in names.values()
                ),
                "the devices back",
                tries=400,
            )
            for name in names.values():
                assert len(events.outages(f"{name}: Connected -> Disconnected")) == 1, (
                    events.outages(name)
                )
                assert len(events.outages(f"{name}: Disconnected -> Connected")) == 1, (
                    events.outages(name)
                )
        finally:
            trace.stopAll()
            await service.stopService()
            await status.stopService()
            for server in (switcher, projector):
                await server.shutdown()
            await audio.stop()
    assert registry.rows() == []


def test_a_bare_interface_shows_its_links_state_and_fields() -> None:
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    endpoint.refuse = True
    iface = EthernetClientInterface("192.0.2.7", 23, reactor=clock, endpoint=endpoint)
    link = ProgramLink(iface, clock)
    registry = Registry(clock=clock)
    registry.add(Entry(link.logName, link, repr(iface), extra=interfaceFields(iface)))
    with Events() as events:
        iface.link.connect()
        clock.advance(1)
        (row,) = registry.rows()
        assert (row["state"], row["handler"], row["link"]) == ("Unknown", None, "closed")
        assert row["lastError"] == "Connection refused"
        assert row["address"] == "192.0.2.7:23"
        assert events.outages("not reached")  # an outage as for twisted_ch's handlers
        endpoint.refuse = False
        iface.link.connect()
        assert registry.rows()[0]["state"] == "Connected"
        assert events.outages("-> Connected")
        endpoint.transport.loseConnection()  # type: ignore[union-attr]
        clock.advance(0)
        (row,) = registry.rows()
        assert (row["state"], row["transitions"]) == ("Disconnected", 2)
        assert len(events.outages("Connected -> Disconnected")) == 1
    registry.stopTracking()
    link.detach()
    assert link not in iface.link.observers


class BoundHandler:
    """A handler that sets a bound method of its own on the interface's events."""

    def __init__(self, interface: Any) -> None:
        self.Interface = interface
        self.ConnectionStatus = "Connected"
        interface.Disconnected = self.onDisconnected

    def onDisconnected(self, interface: Any, state: str) -> None:
        self.ConnectionStatus = "Disconnected"


class QuietHandler:
    """A handler that sets no event: found only among the interface's referrers."""

    def __init__(self, interface: Any) -> None:
        self._interface = interface
        self.ConnectionStatus = "Disconnected"

    @property
    def Interface(self) -> Any:
        return self._interface


def test_the_programs_own_handlers_are_found_however_they_hold_the_interface() -> None:
    from twisted_ch.extronlib._lifetime import ProgramObjects
    from twisted_ch.service._links import SEARCH_EVERY, SEARCH_GAP, ProgramLinks

    clock = Clock()

    def interface(port: int) -> EthernetClientInterface:
        return EthernetClientInterface(
            "127.0.0.1", port, reactor=clock, endpoint=FakeEndpoint(clock)
        )

    objects = ProgramObjects(clock)
    links = ProgramLinks(objects, clock)
    bound, quiet, bare, late = (interface(port) for port in (1, 2, 3, 4))
    for iface in (bound, quiet, bare, late):
        objects.add(iface)
    handlers = [BoundHandler(bound), QuietHandler(quiet)]
    found = {link.Interface: link for link in links.links()}
    assert found[bound].wrapper is handlers[0]
    assert found[quiet].wrapper is handlers[1]
    assert found[bare].wrapper is None
    assert (found[bound].status, found[quiet].status, found[bare].status) == (
        "Connected",
        "Disconnected",
        "Unknown",
    )
    # a handler made later: found at the next search (not at every read)
    handlers.append(QuietHandler(late))
    assert found[late].wrapper is None
    links.links()
    assert found[late].wrapper is None  # nothing new created, the last search is recent
    clock.advance(SEARCH_EVERY)
    links.links()
    assert found[late].wrapper is handlers[2]
    # what a handler says is read at each refresh
    handlers[0].ConnectionStatus = "Disconnected"
    links.refresh()
    assert found[bound].status == "Disconnected"
    # a new object of the program triggers a search sooner, after SEARCH_GAP
    other = interface(5)
    objects.add(other)
    links.links()
    handlers.append(QuietHandler(other))
    clock.advance(SEARCH_GAP)
    assert {link.Interface: link for link in links.links()}[other].wrapper is handlers[3]
    # twisted_ch's handlers' interfaces are theirs: no row of their own
    assert [link.Interface for link in links.links(wrapped=[bound, quiet])] == [bare, late, other]
    links.stop()
    assert all(not any(isinstance(o, ProgramLink) for o in i.link.observers) for i in found)


def test_an_interfaces_fields_name_it_as_the_program_did() -> None:
    from twisted_ch.extronlib.software import SummitConnect

    clock = Clock()
    ssh = EthernetClientInterface(
        "192.168.1.12", 22023, "SSH", Credentials=("admin", "secret"), reactor=clock
    )
    assert interfaceFields(ssh) == {
        "interface": "EthernetClientInterface",
        "protocol": "SSH",
        "address": "192.168.1.12:22023",
    }
    assert "secret" not in repr(ssh)
    summit = SummitConnect("studio.example", reactor=clock, endpoint=FakeEndpoint(clock))
    assert interfaceFields(summit) == {
        "interface": "SummitConnect",
        "address": "studio.example:5000",
    }


def test_a_server_interface_without_a_handler_has_a_server_row() -> None:
    from twisted.internet.testing import MemoryReactorClock

    from twisted_ch.extronlib._lifetime import ProgramObjects
    from twisted_ch.extronlib.interface import EthernetServerInterfaceEx
    from twisted_ch.service._links import ProgramLinks, ProgramServer

    reactor = MemoryReactorClock()
    objects = ProgramObjects(reactor)
    links = ProgramLinks(objects, reactor)
    server = EthernetServerInterfaceEx(5000, "TCP", "Any", reactor=reactor, bindAddress="127.0.0.1")
    client = EthernetClientInterface(
        "127.0.0.1", 1, reactor=reactor, endpoint=FakeEndpoint(reactor)
    )
    objects.add(server)
    objects.add(client)
    found = links.links()
    [row] = [link for link in found if isinstance(link, ProgramServer)]
    assert row.Interface is server and row.kind == "server"
    assert [link.kind for link in found] == ["server", "device"]
    registry = Registry(clock=reactor)
    registry.add(Entry(row.logName, row, repr(server), row.kind, None, interfaceFields(server)))
    (shown,) = registry.snapshot()["servers"]  # type: ignore[misc]
    assert shown["state"] == "Not listening"
    assert shown["interface"] == "EthernetServerInterfaceEx"
    assert (shown["protocol"], shown["address"]) == ("TCP", "Any:5000")
    assert shown["name"] == "<EthernetServerInterfaceEx TCP 127.0.0.1:5000>"
    server.startListening()
    (shown,) = registry.snapshot()["servers"]  # type: ignore[misc]
    assert (shown["state"], shown["clients"], shown["lastError"]) == ("Listening", 0, None)
    # a server twisted_ch's handler wraps is that handler's row
    assert [link.Interface for link in links.links(wrapped=[server])] == [client]
    links.stop()


def test_a_search_that_finds_nothing_waits_twice_as_long_before_the_next() -> None:
    import itertools

    from twisted_ch.extronlib._lifetime import ProgramObjects
    from twisted_ch.service import _links
    from twisted_ch.service._links import SEARCH_EVERY, SEARCH_LONGEST, ProgramLinks

    clock = Clock()
    objects = ProgramObjects(clock)
    links = ProgramLinks(objects, clock)
    bare = EthernetClientInterface("127.0.0.1", 1, reactor=clock, endpoint=FakeEndpoint(clock))
    objects.add(bare)
    searches: list[float] = []
    real = links._search

    def counted(unwrapped: Any) -> bool:
        searches.append(clock.seconds())
        return real(unwrapped)

    links._search = counted  # type: ignore[method-assign]
    links.links()
    for _ in range(80):
        clock.advance(SEARCH_EVERY)
        links.links()
    gaps = [b - a for a, b in itertools.pairwise(searches)]
    assert gaps[:5] == [k * SEARCH_EVERY for k in (2, 4, 8, 16, 16)]
    assert max(gaps) == SEARCH_LONGEST
    # a handler made after the program creates something is found SEARCH_GAP later, and the
    # waits start again from SEARCH_EVERY
    late = QuietHandler(bare)
    objects.add(
        EthernetClientInterface("127.0.0.1", 2, reactor=clock, endpoint=FakeEndpoint(clock))
    )
    clock.advance(_links.SEARCH_GAP)
    found = {link.Interface: link for link in links.links()}
    assert found[bare].wrapper is late
    assert links._every == SEARCH_EVERY
