"""
[program] addresses: what a program names mapped to this machine, for every interface kind and the
program's own HTTP requests, on loopback as a non-root user.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from helpers import LoggedEvents
from test_extronlib_net import certificates, httpsServer  # noqa: F401 - the fixtures
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.web import resource, server

from twisted_ch import _site
from twisted_ch.extronlib.interface import (
    DanteInterface,
    EthernetClientInterface,
    EthernetServerInterfaceEx,
)
from twisted_ch.extronlib.software import SummitConnect
from twisted_ch.project import AddressMap, AddressProblem, Target, _http
from twisted_ch.project._addresses import parseName, parseTarget
from twisted_ch.service._config import ConfigError, ProgramConfig, parseConfig
from twisted_ch.testing import listenDevice, listenUDPDevice
from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer

# the table itself


def test_names_and_targets_are_parsed() -> None:
    assert parseName("192.168.1.12") == ("192.168.1.12", None)
    assert parseName("192.168.1.12:22023") == ("192.168.1.12", 22023)
    assert parseName("Projector.Example.") == ("projector.example", None)
    assert parseName("fe80::0:1") == ("fe80::1", None)
    assert parseName("[fe80::1]:80") == ("fe80::1", 80)
    assert parseTarget("127.0.0.1") == Target(host="127.0.0.1")
    assert parseTarget("localhost:2222") == Target(host="localhost", port=2222)
    assert parseTarget("tcp:127.0.0.1:2222") == Target(description="tcp:127.0.0.1:2222")
    assert parseTarget("tcp:host=127.0.0.1:port=2222").kind == "tcp"
    assert parseTarget("unix:path=/tmp/sim.sock").kind == "unix"
    assert parseTarget("udp:127.0.0.1:5000").kind == "udp"


BAD_NAMES = ["", " 192.168.1.1", "tcp://192.168.1.1", "http://x/y", "host:0", "host:65536",
             "host:port", "a b", "1.2.3", "[::1", "[fe80::zz]:1", "user@host"]  # fmt: skip
BAD_TARGETS = ["tcp://127.0.0.1:2222", "tcp:127.0.0.1", "tcp:127.0.0.1:70000", "unix:",
               "serial:/dev/ttyUSB0", "127.0.0.1:0", "nonsense:thing", "udp:host=x"]  # fmt: skip


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(AddressProblem):
        parseName(name)


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_bad_targets_are_refused(target: str) -> None:
    with pytest.raises(AddressProblem):
        parseTarget(target)


def logged() -> Iterator[list[str]]:
    with LoggedEvents(lambda e: e.get("log_namespace") == "twisted_ch.program", text=True) as lines:
        yield lines


programLog = pytest.fixture(logged)


def test_address_and_port_wins_over_address_and_each_entry_is_logged_once(
    programLog: list[str],
) -> None:
    routes = AddressMap(
        {"192.168.1.12:22023": "tcp:127.0.0.1:2222", "192.168.1.12": "127.0.0.1", "Dsp": "::1"}
    )
    assert routes.route("192.168.1.12", 22023) == (
        "192.168.1.12:22023",
        Target(description="tcp:127.0.0.1:2222"),
    )
    assert routes.route("192.168.1.12", 23) == ("192.168.1.12", Target(host="127.0.0.1"))
    assert routes.route("192.168.1.12", 22023) is not None
    assert routes.route("dsp.", 1702, used=False) == ("Dsp", Target(host="::1"))
    assert routes.route("192.168.1.13", 23) is None
    assert programLog == ["192.168.1.12:22023 -> tcp:127.0.0.1:2222", "192.168.1.12 -> 127.0.0.1"]


def program(addresses: str) -> str:
    return f"[program]\nfile = 'main.py'\naddresses = {{ {addresses} }}\n"


CONFIG_ERRORS = [
    ('"tcp://192.168.1.2" = "127.0.0.1"', 'program.addresses."tcp://192.168.1.2"', "not a URL"),
    ('"192.168.1.2:99999" = "127.0.0.1"', 'program.addresses."192.168.1.2:99999"', "1 to 65535"),
    ('"h" = "tcp://127.0.0.1:2"', 'program.addresses."h"', "(not a URL)"),
    ('"h" = "127.0.0.1:0"', 'program.addresses."h"', "a port from 1 to 65535"),
    ('"h" = "tcp:127.0.0.1:2:bogus=1"', 'program.addresses."h"', "is not one"),
    ('"h" = 5', 'program.addresses."h"', "got an integer"),
    ('"H" = "::1", "h." = "::1"', 'program.addresses."h."', "'h.' is also 'H'"),
]


@pytest.mark.parametrize(("table", "key", "problem"), CONFIG_ERRORS)
def test_config_refuses_bad_addresses_naming_the_key(table: str, key: str, problem: str) -> None:
    import tomllib

    with pytest.raises(ConfigError) as e:
        parseConfig(tomllib.loads(program(table)), "site.toml", reactor)
    assert e.value.key == key, str(e.value)
    assert problem in str(e.value)


def test_config_project_key_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from twisted_ch.service._config import loadConfig

    path = tmp_path / "site.toml"
    path.write_text('[program]\nproject = "Boardroom"\naddresses = { "10.0.0.1" = "::1" }\n')
    config = loadConfig(path, reactor)
    assert config.program is not None
    assert config.program.project == str(tmp_path / "Boardroom")
    assert config.program.addresses == {"10.0.0.1": "::1"}
    path.write_text('[program]\nproject = "Boardroom"\nfile = "main.py"\n')
    with pytest.raises(ConfigError, match="program.project: expected either file"):
        loadConfig(path, reactor)


def test_site_of_a_program_section_holds_its_addresses() -> None:
    from twisted_ch.service._services import siteOf

    site = siteOf(ProgramConfig(addresses={"192.168.1.20": "127.0.0.1"}))
    assert site.route("192.168.1.20", 80, used=False) == ("192.168.1.20", Target(host="127.0.0.1"))
    assert _site.ProgramSite().route("192.168.1.20", 80) is None


# interfaces, on loopback


@pytest.fixture
def installed() -> Iterator[list[_site.ProgramSite]]:
    sites: list[_site.ProgramSite] = []
    try:
        yield sites
    finally:
        for site in sites:
            _site.uninstall(site)


def mapping(installed: list[_site.ProgramSite], **addresses: str) -> _site.ProgramSite:
    site = _site.ProgramSite(addresses=addresses)
    _site.install(site)
    installed.append(site)
    return site


def received(iface: Any) -> Deferred[bytes]:
    d: Deferred[bytes] = Deferred()
    iface.ReceiveData = lambda i, data: None if d.called else d.callback(data)
    return d.addTimeout(5, reactor)


@pytest_twisted.ensureDeferred
async def test_a_tcp_interface_reaches_the_simulator_its_address_is_mapped_to(
    installed: list[_site.ProgramSite], programLog: list[str]
) -> None:
    device = listenDevice(reactor, {b"P": b"Pwr1\r\n"})
    mapping(installed, **{"192.168.1.12:23": f"tcp:127.0.0.1:{device.port}"})
    iface = EthernetClientInterface("192.168.1.12", 23)
    try:
        assert await iface.Connect(5) == "Connected"
        assert await iface.SendAndWait("P", 5, deliTag=b"\r\n") == b"Pwr1\r\n"
        # the program reads what it gave
        assert (iface.Hostname, iface.IPAddress, iface.IPPort) == (
            "192.168.1.12",
            "192.168.1.12",
            23,
        )
        assert programLog.count(f"192.168.1.12:23 -> tcp:127.0.0.1:{device.port}") == 1
    finally:
        await iface.Disconnect()
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_a_serial_over_ethernet_module_and_an_address_target(
    installed: list[_site.ProgramSite],
) -> None:
    class DeviceSerialOverEthernetClass(EthernetClientInterface):  # as a GS module declares it
        def __init__(self, Hostname: str, IPPort: int, Protocol: str = "TCP") -> None:
            EthernetClientInterface.__init__(self, Hostname, IPPort, Protocol)

    device = listenDevice(reactor, {b"Q": b"Ver1\r\n"})
    # the address alone maps every port of it; the target's port is the simulator's
    mapping(installed, **{"av-switcher.local": f"127.0.0.1:{device.port}"})
    iface = DeviceSerialOverEthernetClass("AV-Switcher.local", 2003)
    try:
        assert await iface.Connect(5) == "Connected"
        assert await iface.SendAndWait("Q", 5, deliTag=b"\r\n") == b"Ver1\r\n"
        assert iface.IPAddress == "AV-Switcher.local"
    finally:
        await iface.Disconnect()
        await device.shutdown()


@pytest_twisted.ensureDeferred
async def test_an_sslwrap_interface_speaks_tls_over_the_mapped_stream(
    installed: list[_site.ProgramSite],
    certificates: Path,  # noqa: F811
) -> None:
    tls = EthernetServerInterfaceEx(0, bindAddress="127.0.0.1", reactor=reactor)
    tls.SSLWrap(certificate="server")
    tls.ReceiveData = lambda client, data: client.Send(data.upper())
    assert await tls.StartListen() == "Listening"
    mapping(
        installed,
        **{"192.168.1.30:443": f"tcp:127.0.0.1:{tls.IPPort}", "192.168.1.31": "ssl:127.0.0.1:9"},
    )
    client = EthernetClientInterface("192.168.1.30", 443)
    client.SSLWrap()
    double = EthernetClientInterface("192.168.1.31", 443)
    double.SSLWrap()
    try:
        assert await client.Connect(5) == "Connected"
        assert await client.SendAndWait("ping!", 5, deliTag=b"!") == b"PING!"
        reason = await double.Connect(5)
        assert "does not fit an SSLWrap TCP interface" in reason and "tcp, tcp6, unix" in reason
    finally:
        await client.Disconnect()
        await double.Disconnect()
        await tls.StopListen()


@pytest_twisted.ensureDeferred
async def test_a_udp_interface_is_mapped_to_a_udp_description(
    installed: list[_site.ProgramSite],
) -> None:
    device = listenUDPDevice(reactor, {b"ping": b"pong"})
    mapping(installed, **{"192.168.1.40:52000": f"udp:127.0.0.1:{device.port}"})
    iface = EthernetClientInterface("192.168.1.40", 52000, "UDP")
    try:
        answer = received(iface)
        from twisted_ch.testing import waitUntil

        await waitUntil(reactor, lambda: iface.link.state == "connected")
        iface.Send(b"ping")
        assert await answer == b"pong"
        assert iface.IPAddress == "192.168.1.40"
    finally:
        await iface.Disconnect()
        await device.stop()


@pytest_twisted.ensureDeferred
async def test_an_ssh_interface_keeps_speaking_ssh_to_the_mapped_host_and_port(
    installed: list[_site.ProgramSite], tmp_path: Path
) -> None:
    sshd = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": "extron"})
    sshd.start()
    knownHosts = tmp_path / "known_hosts"
    knownHosts.write_text(sshd.knownHostsLine("127.0.0.1"))
    mapping(
        installed,
        **{"192.168.1.12:22023": f"tcp:127.0.0.1:{sshd.port}", "192.168.1.13": "unix:path=/x"},
    )
    iface = EthernetClientInterface(
        "192.168.1.12", 22023, "SSH", Credentials=("admin", "extron"), knownHosts=str(knownHosts)
    )
    unfit = EthernetClientInterface("192.168.1.13", 22, "SSH", Credentials=("admin", "extron"))
    try:
        assert await iface.Connect(10) == "Connected"
        answer = received(iface)
        iface.Send(b"hello\n")
        assert (await answer).startswith(b"hello")
        assert (iface.IPAddress, iface.IPPort) == ("192.168.1.12", 22023)
        assert len(sshd.sessions) == 1
        reason = await unfit.Connect(5)
        assert "'192.168.1.13' -> unix:path=/x does not fit an SSH interface" in reason
    finally:
        await iface.Disconnect()
        await unfit.Disconnect()
        await sshd.stop()


@pytest_twisted.ensureDeferred
async def test_dante_and_summitconnect_are_mapped(installed: list[_site.ProgramSite]) -> None:
    dante = listenDevice(reactor, {b"D": b"d\n"})
    summit = listenDevice(reactor, {b"S": b"s\n"})
    mapping(
        installed,
        **{
            "mixer.local:23": f"127.0.0.1:{dante.port}",
            "192.168.1.50": f"tcp:127.0.0.1:{summit.port}",
        },
    )
    interfaces = [DanteInterface("Mixer"), SummitConnect("192.168.1.50")]
    try:
        for iface, ask in zip(interfaces, ("D", "S"), strict=True):
            assert await iface.Connect(5) == "Connected", iface
            answer = received(iface)
            iface.Send(ask)
            assert await answer == ask.lower().encode() + b"\n"
        assert interfaces[1].IPAddress == "192.168.1.50"
    finally:
        for iface in interfaces:
            await iface.Disconnect()
        await dante.shutdown()
        await summit.shutdown()


def test_an_unmapped_interface_is_as_before_and_an_explicit_endpoint_is_never_mapped(
    installed: list[_site.ProgramSite],
) -> None:
    from twisted_ch.endpoints.tcp import TCPHostnameEndpoint
    from twisted_ch.testing import FakeEndpoint

    clock = Clock()
    mapping(installed, **{"192.168.1.12": "127.0.0.1"})
    plain = EthernetClientInterface("192.168.1.99", 23, reactor=clock)
    endpoint = plain._makeEndpoint()
    assert isinstance(endpoint, TCPHostnameEndpoint)
    assert (endpoint._host, endpoint._port) == ("192.168.1.99", 23)
    fake = FakeEndpoint(clock)
    explicit = EthernetClientInterface("192.168.1.12", 23, reactor=clock, endpoint=fake)
    assert explicit._site is None and not explicit._mapped


# the program's own HTTP requests


class _Echo(resource.Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - twisted.web's name
        return b"host=" + (request.getHeader(b"host") or b"") + b" path=" + request.path


@pytest_twisted.ensureDeferred
async def test_http_requests_of_the_program_thread_are_mapped_and_only_those(
    installed: list[_site.ProgramSite], programLog: list[str]
) -> None:
    from twisted_ch.program import Program

    web = reactor.listenTCP(0, server.Site(_Echo()), interface="127.0.0.1")
    live = web.getHost().port
    dead = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    deadPort = dead.getHost().port
    await dead.stopListening()  # nothing listens there now: a refused connection
    original = http.client.HTTPConnection.connect
    site = mapping(
        installed,
        **{
            "192.168.1.20:8080": f"127.0.0.1:{live}",
            f"127.0.0.1:{deadPort}": f"tcp:127.0.0.1:{live}",
            "192.168.1.21": "unix:path=/nowhere",
        },
    )
    assert _http.active() and http.client.HTTPConnection.connect is not original

    def fetch(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: bytes = answer.read()
            return body

    def onTheProgramThread() -> list[Any]:
        results: list[Any] = [fetch("http://192.168.1.20:8080/status") for _ in range(2)]
        results.append(fetch(f"http://127.0.0.1:{deadPort}/a"))
        results.append(fetch(f"http://127.0.0.1:{live}/unmapped"))
        try:
            fetch("http://192.168.1.21/x")
        except urllib.error.URLError as e:
            results.append(str(e.reason))
        return results

    runner = Program(reactor, name="http")
    try:
        results = await runner.runCallable(onTheProgramThread).addTimeout(20, reactor)
        assert results[:4] == [
            b"host=192.168.1.20:8080 path=/status",
            b"host=192.168.1.20:8080 path=/status",
            f"host=127.0.0.1:{deadPort} path=/a".encode(),
            f"host=127.0.0.1:{live} path=/unmapped".encode(),
        ]
        assert "does not fit an HTTP request" in results[4]
        assert programLog.count(f"192.168.1.20:8080 -> 127.0.0.1:{live}") == 1

        # a thread working for the program (with its runtime, as a module's connect thread)
        def forTheProgram() -> bytes:
            from twisted_ch._runtime import useRuntime

            with useRuntime(runner.thread.runtime):
                return fetch(f"http://127.0.0.1:{deadPort}/b")

        assert await deferToThread(forTheProgram) == f"host=127.0.0.1:{deadPort} path=/b".encode()
        # off the program's threads nothing is mapped
        with pytest.raises(urllib.error.URLError):
            await deferToThread(fetch, f"http://127.0.0.1:{deadPort}/a")
    finally:
        await runner.stop()
        _site.uninstall(site)
        await web.stopListening()
    assert not _http.active() and http.client.HTTPConnection.connect is original


@pytest_twisted.ensureDeferred
async def test_https_requests_keep_tls_and_the_name_the_program_gave(
    installed: list[_site.ProgramSite],
    httpsServer: int,  # noqa: F811
) -> None:
    import ssl

    from twisted_ch.program import Program

    mapping(installed, **{"192.168.1.22:443": f"127.0.0.1:{httpsServer}"})

    def fetch() -> bytes:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen("https://192.168.1.22/", timeout=5, context=context) as r:
            body: bytes = r.read()
            return body

    runner = Program(reactor, name="https")
    try:
        assert await runner.runCallable(fetch).addTimeout(20, reactor) == b"hello over TLS"
    finally:
        await runner.stop()
