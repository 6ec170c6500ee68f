"""
C{twistd chandler} end to end: the real twistd, started as a child process, read over HTTP.

Each test bounds its waits with reactor-driven timeouts; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from helpers import LoggedEvents
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseDone

from twisted_ch.testing import DeviceServer
from twisted_ch.testing._probes import SIS_RESPONSES

TWISTD = str(Path(sys.executable).with_name("twistd"))
LOOPBACK_ANY_PORT = "tcp:0:interface=127.0.0.1"
URL = re.compile(rb"status page at (http://127\.0\.0\.1:\d+/)status")


class Twistd(ProcessProtocol):
    """A twistd child: its output so far, and Deferreds for what it prints and its end."""

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[int | None] = Deferred()
        self._waits: list[tuple[re.Pattern[bytes], Deferred[re.Match[bytes]]]] = []
        self.exitCode: int | None = None
        self.running = True

    def outReceived(self, data: bytes) -> None:
        self.output += data
        self._check()

    errReceived = outReceived

    def _check(self) -> None:
        for pattern, d in list(self._waits):
            m = pattern.search(self.output)
            if m is not None:
                self._waits.remove((pattern, d))
                d.callback(m)

    def waitFor(self, pattern: bytes, seconds: float = 15.0) -> Deferred[re.Match[bytes]]:
        """Fires with the first match of C{pattern} in the output."""
        d: Deferred[re.Match[bytes]] = Deferred()
        self._waits.append((re.compile(pattern), d))
        self._check()
        return d.addTimeout(seconds, reactor)

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        if reason.check(ProcessDone):
            self.exitCode = 0
        elif reason.check(ProcessTerminated):
            value = reason.value
            self.exitCode = value.exitCode if value.exitCode is not None else -value.signal
        for _, d in self._waits:
            d.errback(AssertionError(f"twistd ended; output:\n{self.text}"))
        self._waits = []
        self.ended.callback(self.exitCode)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


def spawn(cwd: Path, *args: str) -> Twistd:
    process = Twistd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    reactor.spawnProcess(process, TWISTD, [TWISTD, *args], env=env, path=str(cwd))
    return process


def chandler(cwd: Path, *args: str) -> Twistd:
    """C{twistd -n chandler ARGS} with no pidfile, its status page on a free loopback port."""
    return spawn(cwd, "-n", "--pidfile=", "chandler", "--status-port", LOOPBACK_ANY_PORT, *args)


async def ended(process: Twistd, seconds: float = 15.0) -> int | None:
    return await process.ended.addTimeout(seconds, reactor)


async def stop(process: Twistd) -> int | None:
    """SIGTERM, then wait for the end (the safety net kills it)."""
    if process.running:
        process.transport.signalProcess("TERM")  # type: ignore[attr-defined]
    try:
        return await ended(process)
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]


class _Body(Protocol):
    """Collects a response body."""

    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:  # noqa: B008
        if reason.check(ResponseDone):
            self.done.callback(self.data)
        else:
            self.done.errback(reason)


async def get(url: str) -> bytes:
    """GET C{url} with Twisted's Agent; the body of a 200 response."""
    response = await Agent(reactor).request(b"GET", url.encode("ascii")).addTimeout(5, reactor)
    assert response.code == 200, response.code
    body = _Body()
    response.deliverBody(body)
    return await body.done.addTimeout(5, reactor)


async def getJSON(url: str) -> Any:
    return json.loads(await get(url))


async def getText(url: str) -> str:
    return (await get(url)).decode("utf-8")


async def pollStatus(
    base: str, done: Callable[[dict[str, Any]], bool], seconds: float = 20.0
) -> dict[str, Any]:
    """Read /status every 100 ms until C{done(document)}; the last document."""
    deadline = reactor.seconds() + seconds
    while True:
        document: dict[str, Any] = await getJSON(base + "status")
        if done(document):
            return document
        if reactor.seconds() > deadline:
            raise AssertionError(f"status never satisfied the test: {document}")
        await deferLater(reactor, 0.1, lambda: None)


def byName(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in document["devices"] + document["servers"]}


# the plugin


@pytest_twisted.ensureDeferred
async def test_twistd_help_lists_chandler(tmp_path: Path) -> None:
    process = spawn(tmp_path, "--help")
    assert await ended(process) == 0
    assert re.search(r"^\s+chandler\s+Keep AV device links alive", process.text, re.M), process.text


@pytest_twisted.ensureDeferred
async def test_chandler_help_lists_its_options(tmp_path: Path) -> None:
    process = spawn(tmp_path, "chandler", "--help")
    assert await ended(process) == 0
    for option in (
        "--config=",
        "--program=",
        "--status-port=",
        "--log-format=",
        "--trace=",
        "127.0.0.1",
    ):
        assert option in process.text, process.text


# the built-in default


@pytest_twisted.ensureDeferred
async def test_default_shows_every_transport_a_transition_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    process = chandler(tmp_path, "--demo-schedule", "4:3")
    try:
        base = (await process.waitFor(URL.pattern)).group(1).decode("ascii")
        seen: set[str] = set()

        def everyDeviceSeenConnected(document: dict[str, Any]) -> bool:
            seen.update(d["name"] for d in document["devices"] if d["state"] == "Connected")
            return seen >= {d["name"] for d in document["devices"]}

        document = await pollStatus(base, everyDeviceSeenConnected)
        names = set(byName(document))
        expected = {"switcher", "projector", "flaky-switcher"}
        if find_spec("twisted_ch.endpoints.udp") and find_spec("pyasn1"):
            expected.add("ups")
        if find_spec("twisted_ch.endpoints.serial"):
            expected.add("display")
        if find_spec("twisted_ch._server"):
            expected.add("control-server")
            assert byName(document)["control-server"]["state"] == "Listening"
        assert expected <= names, names

        # the flaky device drops out (missed polls) and comes back (reconnects)
        def flakyCameBack(document: dict[str, Any]) -> bool:
            flaky = byName(document)["flaky-switcher"]
            return flaky["transitions"] >= 3 and flaky["state"] == "Connected"

        document = await pollStatus(base, flakyCameBack)
        flaky = byName(document)["flaky-switcher"]
        assert flaky["reconnects"] >= 1 and flaky["misses"] == 0
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", flaky["since"])
        assert "Connected -> Disconnected" in process.text
        assert "Disconnected -> Connected" in process.text

        metrics = await getText(base + "metrics")
        assert 'chandler_device_up{device="flaky-switcher",room="Lecture hall"} 1.0' in metrics
        assert re.search(
            r"chandler_device_transitions_total"
            r'\{device="flaky-switcher",room="Lecture hall"\} [3-9]',
            metrics,
        )
        for name in ("polls_total", "misses", "reconnects_total"):
            assert f"chandler_device_{name}{{" in metrics

        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "received SIGTERM; stopping" in process.text
    assert "chandler stopped" in process.text
    assert "Traceback" not in process.text, process.text


def test_a_second_sigterm_while_stopping_is_no_traceback() -> None:
    """
    SIGTERM twice (an impatient operator, systemd's stop and a kill): the second, while the
    reactor is stopping, is no ReactorNotRunning traceback.
    """
    import signal

    from twisted.internet.error import ReactorNotRunning

    from twisted_ch.service._services import ChandlerService

    class StoppingReactor:
        def __init__(self) -> None:
            self.stops = 0

        def callFromThread(self, f: Any, *args: Any) -> None:
            f(*args)

        def stop(self) -> None:
            self.stops += 1
            if self.stops > 1:
                raise ReactorNotRunning("Can't stop reactor that isn't running.")

    from twisted_ch.service._registry import Registry

    fake = StoppingReactor()
    service = ChandlerService(fake, Registry(clock=Clock()))
    service.running = True
    before = signal.getsignal(signal.SIGTERM)
    try:
        service._takeSIGTERM()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler) and handler is not before
        handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)  # raised before: the reactor was stopping already
        assert fake.stops == 2
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGHUP, service._previousSIGHUP or signal.SIG_DFL)


@pytest_twisted.ensureDeferred
async def test_trace_at_start_masks_secrets_and_switches_itself_off(tmp_path: Path) -> None:
    process = chandler(
        tmp_path, "--trace", "projector,codec", "--trace-minutes", "0.1", "--demo-schedule", "5:5"
    )
    try:
        await process.waitFor(rb"projector: wire trace on for 0\.1 min")
        await process.waitFor(rb"projector tx .*<digest>%1POWR \?")
        await process.waitFor(rb"codec rx ")
        await process.waitFor(rb"projector: wire trace off \(its time is up\)", 20)
        await process.waitFor(rb"codec: wire trace off \(its time is up\)", 20)
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    lines = [line for line in process.text.splitlines() if "[twisted_ch.trace#" in line]
    assert any(re.search(r"projector rx .*PJLINK 1 <random>", line) for line in lines), lines
    # no digest, no random, in text or in hex
    assert not any(re.search(r"[0-9a-f]{32}", line) for line in lines)
    assert not any(re.search(r"PJLINK 1 (?!<random>)", line) for line in lines)
    assert "Traceback" not in process.text


@pytest_twisted.ensureDeferred
async def test_trace_option_is_checked(tmp_path: Path) -> None:
    for args in (["--trace", "a,,b"], ["--trace-minutes", "0"], ["--trace-minutes", "soon"]):
        process = chandler(tmp_path, *args)
        assert await ended(process) not in (0, None), process.text
        assert "--trace" in process.text.strip().splitlines()[-1], process.text


# a configuration file


@pytest_twisted.ensureDeferred
async def test_config_file_with_json_logs(tmp_path: Path) -> None:
    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    config = tmp_path / "site.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [[device]]
            name = "switcher"
            endpoint = "tcp:host=127.0.0.1:port={device.port}"
            probe = {{ type = "sis", query = "N" }}
            pollFrequency = 0.2
            DisconnectLimit = 2
            connectRetryTime = 0.5
            """
        )
    )
    process = chandler(tmp_path, "--config", str(config), "--log-format", "json")
    try:
        base = (
            (await process.waitFor(rb'"statusURL": "(http://127\.0\.0\.1:\d+/)status"'))
            .group(1)
            .decode("ascii")
        )
        document = await pollStatus(
            base,
            lambda doc: (
                doc["devices"][0]["state"] == "Connected" and doc["devices"][0]["polls"] > 1
            ),
        )
        (switcher,) = document["devices"]
        assert switcher["endpoint"] == f"tcp:host=127.0.0.1:port={device.port}"
        assert switcher["probe"]["query"] == "N"
        assert b"N" in device.received

        # the device goes away: the status says so, with the reason
        await device.shutdown()
        document = await pollStatus(base, lambda doc: doc["devices"][0]["state"] == "Disconnected")
        assert document["devices"][0]["lastError"]
        assert document["devices"][0]["health"] == "error"
        # it keeps trying: the log says so once, not once per attempt
        await pollStatus(base, lambda doc: doc["devices"][0]["reconnects"] >= 3)
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await device.shutdown()
    records = [json.loads(line) for line in process.text.splitlines() if line.strip()]
    changes = [(r["previous"], r["chStatus"]) for r in records if "chStatus" in r]
    assert {r["device"] for r in records if "chStatus" in r} == {"switcher"}
    assert ("Unknown", "Connected") in changes and ("Connected", "Disconnected") in changes
    assert all({"time", "level", "namespace", "text"} <= set(r) for r in records)
    assert not [r for r in records if "connect failed" in r["text"]]
    downs = [r for r in records if r.get("chStatus") == "Disconnected"]
    assert len(downs) == 1 and downs[0]["reason"], downs
    assert any("chandler stopped" in r["text"] for r in records)


BAD_CONFIGS = [
    ("bad-toml", "[[device]\nname = 1\n", "invalid TOML"),
    (
        "unknown-key",
        '[[device]]\nname = "d"\nendpoint = "tcp:host=h:port=1"\ncolour = 1\n',
        "device[0].colour",
    ),
    (
        "wrong-type",
        '[[device]]\nname = "d"\nendpoint = "tcp:host=h:port=1"\npollFrequency = "often"\n',
        "device[0].pollFrequency",
    ),
    ("missing-endpoint", '[[device]]\nname = "d"\n', "device[0].endpoint"),
    (
        "bad-endpoint",
        '[[device]]\nname = "d"\nendpoint = "tcp:host=h:port=twenty-three"\n',
        "device[0].endpoint",
    ),
]


@pytest.mark.parametrize(("name", "text", "key"), BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
@pytest_twisted.ensureDeferred
async def test_bad_config_starts_nothing(tmp_path: Path, name: str, text: str, key: str) -> None:
    config = tmp_path / f"{name}.toml"
    config.write_text(text)
    process = chandler(tmp_path, "--config", str(config))
    code = await ended(process)
    assert code not in (0, None), process.text
    message = process.text.strip().splitlines()[-1]
    assert str(config) in message and key in message, process.text
    assert "status page at" not in process.text


# a ControlScript program


@pytest_twisted.ensureDeferred
async def test_program_runs_and_its_handlers_show_on_the_status_page(tmp_path: Path) -> None:
    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    device.start()
    program = tmp_path / "main.py"
    program.write_text(
        textwrap.dedent(
            f"""
            from extronlib import event
            from extronlib.interface import EthernetClientInterface
            from twisted_ch import GetConnectionHandler

            def KeepAlive(interface):
                if interface.SendAndWait('P', 1, deliTag=b'\\r\\n').startswith(b'Pwr'):
                    interface.ResponseAccepted()

            Projector = GetConnectionHandler(
                EthernetClientInterface('127.0.0.1', {device.port}), KeepAlive, pollFrequency=0.2
            )

            @event(Projector, ['Connected', 'Disconnected'])
            def Status(interface, state):
                print('Projector is', state)

            Projector.Connect()
            """
        )
    )
    process = chandler(tmp_path, "--program", str(program))
    try:
        base = (await process.waitFor(URL.pattern)).group(1).decode("ascii")
        # named as its log lines name it; the global it is bound to shows as "variable"
        document = await pollStatus(
            base,
            lambda doc: any(
                d.get("variable") == "Projector" and d["state"] == "Connected" and d["polls"] > 1
                for d in doc["devices"]
            ),
        )
        assert [(d["name"], d["variable"]) for d in document["devices"]] == [
            (f"tcp:127.0.0.1:{device.port}", "Projector")
        ]
        await process.waitFor(rb"Projector is Connected")
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await device.shutdown()
    assert "chandler stopped" in process.text


BROKEN_PROGRAMS = [
    ("syntax", "def broken(:\n    pass\n", 1, "SyntaxError"),
    ("import", "import no_such_module_here\n", 1, "ModuleNotFoundError: No module named"),
    (
        "top-level",
        "from extronlib.interface import EthernetClientInterface\n"
        "from twisted_ch import GetConnectionHandler\n"
        "h = GetConnectionHandler(EthernetClientInterface('127.0.0.1', 9), lambda i: None)\n"
        "h.Connect()\n"
        "raise RuntimeError('the program gave up')\n",
        1,
        "RuntimeError: the program gave up",
    ),
    ("sys-exit", "import sys\nsys.exit(3)\n", 3, "SystemExit: 3"),
]


@pytest.mark.parametrize(
    ("name", "text", "status", "error"), BROKEN_PROGRAMS, ids=[b[0] for b in BROKEN_PROGRAMS]
)
@pytest_twisted.ensureDeferred
async def test_a_program_that_cannot_run_ends_twistd_with_its_traceback(
    tmp_path: Path, name: str, text: str, status: int, error: str
) -> None:
    program = tmp_path / "main.py"
    program.write_text(text)
    process = chandler(tmp_path, "--program", str(program))
    try:
        code = await ended(process, 20)
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert code == status, process.text
    assert "Traceback" in process.text and error in process.text, process.text
    assert f"program {program} cannot run" in process.text
    assert "chandler stopped" in process.text


@pytest_twisted.ensureDeferred
async def test_a_program_that_ends_with_sys_exit_0_keeps_its_handlers(tmp_path: Path) -> None:
    program = tmp_path / "main.py"
    program.write_text("import sys\nsys.exit(0)\n")
    process = chandler(tmp_path, "--program", str(program))
    try:
        await process.waitFor(rb"ended its top level with sys.exit\(\)")
        assert process.running
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]


# a clean stop leaves nothing behind (in a fresh process: its reactor has only our timers)

STOP_CHECK = """
import json, os, sys
from twisted.internet import task
from twisted.internet.defer import ensureDeferred
from twisted_ch.service._services import DevicesService
from twisted_ch.tap import Options, startedService

def devices(service):
    if isinstance(service, DevicesService):
        yield service
    for child in getattr(service, "services", []):
        yield from devices(child)

def openFiles():
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return found

async def main(reactor):
    await task.deferLater(reactor, 0, lambda: None)
    fds = openFiles()
    options = Options()
    options.parseOptions(sys.argv[1:])
    service = startedService(options)
    handlers = {}
    for _ in range(500):
        handlers = {k: v for d in devices(service) for k, v in d.handlers.items()}
        polled = [h for h in handlers.values() if getattr(h, "polls", 0) > 2]
        if polled and all(h.ConnectionStatus == "Connected" for h in polled):
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    await service.stopService()
    await task.deferLater(reactor, 0.05, lambda: None)
    print(json.dumps({
        "handlers": {k: getattr(h, "ConnectionStatus", None) for k, h in handlers.items()},
        "timers": [repr(c) for c in reactor.getDelayedCalls() if c.active()],
        # the first listenTCP reserves /dev/null for the process's life (EMFILE recovery)
        "files": sorted(
            f for fd, f in openFiles().items() if fds.get(fd) != f and f != os.devnull
        ),
        "readers": [  # less the reactor's own wakers
            repr(r) for r in reactor.getReaders() if "_signals" not in type(r).__module__
        ],
    }))

task.react(lambda reactor: ensureDeferred(main(reactor)))
"""


class Child(ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.ended: Deferred[BaseException] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(reason.value)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("what", ["config", "default"])
@pytest_twisted.ensureDeferred
async def test_stop_closes_everything_and_leaves_no_timers(tmp_path: Path, what: str) -> None:
    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    args = ["--status-port", LOOPBACK_ANY_PORT]
    if what == "config":
        config = tmp_path / "site.toml"
        config.write_text(
            f'[[device]]\nname = "d"\nendpoint = "tcp:host=127.0.0.1:port={device.port}"\n'
            'probe = "sis"\npollFrequency = 0.1\n'
            + (
                "[[server]]\nport = 0\nserverTimeout = 5\n"
                if find_spec("twisted_ch._server")
                else ""
            )
        )
        args += ["--config", str(config)]
    else:
        args += ["--demo-schedule", "1:1"]
    child = Child()
    reactor.spawnProcess(
        child, sys.executable, [sys.executable, "-c", STOP_CHECK, *args], env=dict(os.environ)
    )
    try:
        reason = await child.ended.addTimeout(20, reactor)
    finally:
        await device.shutdown()
    assert isinstance(reason, ProcessDone), child.out.decode()
    report = json.loads(child.out.decode().strip().splitlines()[-1])
    assert report["handlers"], report
    # a device that never answered a probe is still Unknown (issue 10), else Disconnected
    assert set(report["handlers"].values()) <= {"Disconnected", "Unknown", None}, report
    assert report["timers"] == [], report
    assert report["files"] == [], report
    assert report["readers"] == [], report


# the pieces, in-process


def test_json_log_lines_are_flat_and_name_the_device() -> None:
    from twisted.logger import LogLevel

    from twisted_ch.service._logs import eventAsLine

    try:
        raise ValueError("boom")
    except ValueError:
        failure = Failure()
    event = {
        "log_format": "{link}: connect failed: {reason}",
        "log_level": LogLevel.warn,
        "log_namespace": "twisted_ch._link.DeviceLink",
        "log_time": 0.0,
        "log_failure": failure,
        "link": "projector",
        "reason": "Connection refused",
        "raw": b"\x02P",
        "thing": object(),
    }
    record = json.loads(eventAsLine(event))
    assert record["time"] == "1970-01-01T00:00:00.000+00:00"
    assert record["level"] == "warning"
    assert record["text"] == "projector: connect failed: Connection refused"
    assert record["device"] == "projector"
    assert record["raw"] == "\x02P"
    assert record["thing"].startswith("<object object")
    assert "ValueError: boom" in record["failure"]


def test_status_rows_hide_endpoint_secrets() -> None:
    from twisted_ch.service._registry import Entry, Registry

    class Handler:
        ConnectionStatus = "Connected"

        def stats(self) -> dict[str, object]:
            return {"status": "Connected", "since": 0.0, "polls": 3, "misses": 1}

    registry = Registry()
    registry.add(Entry("codec", Handler(), "ssh:10.0.0.9:username=admin:password=hunter2"))
    (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
    assert row["endpoint"] == "ssh:10.0.0.9:username=admin:password=***"
    assert (row["state"], row["polls"], row["misses"], row["reconnects"]) == ("Connected", 3, 1, 0)
    assert row["since"] == "1970-01-01T00:00:00.000+00:00"


# the services, in-process: what they bind, log and leave behind


def _ipv6Loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


STATUS_BINDS = [
    ("tcp:0", "127.0.0.1", False),
    ("tcp:port=0", "127.0.0.1", False),
    ("0:0", "0.0.0.0", True),
    ("tcp:0:interface=0.0.0.0", "0.0.0.0", True),
    pytest.param(
        "tcp6:0",
        "::1",
        False,
        marks=pytest.mark.skipif(not _ipv6Loopback(), reason="no IPv6 loopback"),
    ),
]


@pytest.mark.parametrize(("listen", "host", "wildcard"), STATUS_BINDS)
@pytest_twisted.ensureDeferred
async def test_status_page_binds_loopback_unless_told_and_logs_what_it_bound(
    listen: str, host: str, wildcard: bool
) -> None:
    from twisted.logger import LogLevel

    from twisted_ch.service._config import statusEndpoint
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._web import StatusService

    description = statusEndpoint(listen)
    assert description is not None
    service = StatusService(reactor, description, Registry())
    with LoggedEvents() as events:
        service.startService()
    try:
        assert service.port is not None
        address: Any = service.port.getHost()
        assert address.host == host
        shown = f"[{host}]" if ":" in host else host
        assert service.url == f"http://{shown}:{address.port}/"
        assert any(
            f"status page at http://{shown}:{address.port}/status" in t for t in events.texts()
        )
        warnings = [t for t in events.texts(LogLevel.warn) if "reachable from the network" in t]
        assert bool(warnings) == wildcard, events.texts()
    finally:
        await service.stopService()


def test_a_server_must_bind_an_ip_address_literal() -> None:
    from twisted_ch.service._config import ServerConfig
    from twisted_ch.service._services import buildServer

    for name in ("LAN", "Any", "AVLAN"):
        with pytest.raises(ValueError, match="IP address literal"):
            buildServer(reactor, ServerConfig("panel", 0, name))


@pytest_twisted.ensureDeferred
async def test_a_server_on_every_interface_warns() -> None:
    from twisted.logger import LogLevel

    from twisted_ch.service._config import ServerConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService

    service = DevicesService(reactor, Registry(), servers=[ServerConfig("panel", 0, "0.0.0.0")])
    with LoggedEvents() as events:
        service.startService()
    try:
        warnings = [t for t in events.texts(LogLevel.warn) if "reachable from the network" in t]
        assert len(warnings) == 1 and "panel" in warnings[0], events.texts()
    finally:
        await service.stopService()


class RecordingReactor:
    """The global reactor, remembering every port it was asked to listen on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.ports: list[Any] = []

    def listenTCP(self, *args: Any, **kwargs: Any) -> Any:
        port = self.real.listenTCP(*args, **kwargs)
        self.ports.append(port)
        return port

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest_twisted.ensureDeferred
async def test_a_name_taken_is_refused_and_stopping_leaves_nothing_listening() -> None:
    from twisted_ch.service._config import DeviceConfig, ServerConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService

    recording = RecordingReactor(reactor)
    with pytest.raises(ValueError, match="'twin'"):
        DevicesService(
            recording, Registry(), servers=[ServerConfig("twin", 0), ServerConfig("twin", 0)]
        )
    service = DevicesService(recording, Registry(), servers=[ServerConfig("panel", 0)])
    service.startService()
    try:
        with pytest.raises(ValueError, match="'panel'"):
            service.addServer(ServerConfig("panel", 0))
        with pytest.raises(ValueError, match="'panel'"):
            service.add(DeviceConfig("panel", "tcp:host=127.0.0.1:port=9"))
    finally:
        await service.stopService().addTimeout(10, reactor)
    assert len(recording.ports) == 1
    assert not any(port.connected for port in recording.ports)


class _Peer(Protocol):
    """A client of a server under test; one that does not read keeps a graceful close waiting."""

    def __init__(self, reads: bool) -> None:
        self.reads = reads
        self.lost: Deferred[BaseException] = Deferred()

    def connectionMade(self) -> None:
        if not self.reads:
            self.transport.pauseProducing()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:  # noqa: B008
        self.lost.callback(reason.value)  # the exception: a Failure would errback


class _WhenClients:
    """A server observer firing once the server has C{n} clients."""

    def __init__(self, iface: Any, n: int) -> None:
        self.iface = iface
        self.n = n
        self.reached: Deferred[None] = Deferred()

    def clientConnected(self, client: Any) -> None:
        if len(self.iface.Clients) >= self.n and not self.reached.called:
            self.reached.callback(None)

    def clientLost(self, client: Any, reason: str) -> None:
        pass

    def clientData(self, client: Any, data: bytes) -> None:
        pass


@pytest_twisted.ensureDeferred
async def test_stopping_a_server_waits_for_its_clients_and_aborts_the_stuck_one() -> None:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.error import ConnectionDone

    from twisted_ch._server import IdleClientProtocol
    from twisted_ch.service._config import ServerConfig
    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import DevicesService

    grace = 0.3
    service = DevicesService(
        reactor,
        Registry(),
        servers=[ServerConfig("panel", 0, serverTimeout=60)],
        clientCloseGrace=grace,
    )
    service.startService()
    handler = service.handlers["panel"]
    reading, stuck = _Peer(reads=True), _Peer(reads=False)
    try:
        assert handler.Interface.listening
        whenTwo = _WhenClients(handler.Interface, 2)
        handler.Interface.observers.append(whenTwo)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", handler.Interface.IPPort)
        await connectProtocol(endpoint, reading).addTimeout(5, reactor)
        await connectProtocol(endpoint, stuck).addTimeout(5, reactor)
        await whenTwo.reached.addTimeout(5, reactor)
        stuckPort = stuck.transport.getHost().port  # type: ignore[union-attr]
        (toStuck,) = [c for c in handler.Clients if c.ServicePort == stuckPort]
        toStuck.Send(b"x" * (64 << 20))  # more than the socket buffers hold: the close must wait

        started = reactor.seconds()
        await service.stopService().addTimeout(10, reactor)
        # fired only once every client was gone: the stuck one after the grace period
        assert handler.Clients == []
        assert reactor.seconds() - started >= grace * 0.9
        assert not handler.Interface.listening
        reason = await reading.lost.addTimeout(5, reactor)
        assert isinstance(reason, ConnectionDone), reason  # closed gracefully, not aborted
        stuck.transport.resumeProducing()  # type: ignore[union-attr]
        await stuck.lost.addTimeout(5, reactor)
        leftover = [
            c
            for c in reactor.getDelayedCalls()
            if isinstance(getattr(c.func, "__self__", None), IdleClientProtocol)
            or "closeClients" in getattr(c.func, "__qualname__", "")
        ]
        assert leftover == []
    finally:
        for peer in (reading, stuck):
            if peer.transport is not None and not peer.lost.called:
                peer.transport.abortConnection()  # type: ignore[attr-defined]


# a program's handlers, wherever it keeps them

LIST_PROGRAM = """
import chandler_test_hooks as hooks
from extronlib.interface import EthernetClientInterface
from twisted_ch import GetConnectionHandler

links = [
    GetConnectionHandler(
        EthernetClientInterface('127.0.0.1', {port}), pollFrequency=0.1, connectRetryTime=0.1
    )
]
links[0].Connect()
hooks.ready(links[0])
if hooks.wait:
    hooks.gate.wait(10)
"""


class _HalfBuilt:
    """A handler as the reactor thread may see it while its constructor runs."""

    stopped = 0

    def stats(self) -> dict[str, object]:
        raise AttributeError("'RawTcpHandler' object has no attribute 'reconnects'")

    def Disconnect(self) -> None:
        self.stopped += 1


@pytest.mark.parametrize("when", ["ran", "running", "stuck"])
@pytest_twisted.ensureDeferred
async def test_program_handlers_in_a_list_are_shown_and_stopped(tmp_path: Path, when: str) -> None:
    """
    ran: the top level had finished; running: it finishes while the service stops; stuck: it
    does not finish within the stop timeout.  Every time the handler is stopped for good.
    """
    import threading
    import types

    from twisted_ch.service._registry import Registry
    from twisted_ch.service._services import ProgramService

    device = DeviceServer(reactor, {b"P": b"Pwr1\r\n"})
    device.start()
    ready: Deferred[Any] = Deferred()
    hooks: Any = types.ModuleType("chandler_test_hooks")
    hooks.ready = lambda handler: reactor.callFromThread(ready.callback, handler)
    hooks.gate = threading.Event()
    hooks.wait = when != "ran"
    sys.modules["chandler_test_hooks"] = hooks
    program = tmp_path / "main.py"
    program.write_text(LIST_PROGRAM.format(port=device.port))
    registry = Registry()
    service = ProgramService(reactor, str(program), registry, stopTimeout=0.5)
    try:
        service.startService()
        handler = await ready.addTimeout(10, reactor)
        assert handler.ConnectionStatus == "Connected"
        # a handler still in its constructor (on the program thread) is neither shown nor stopped
        halfBuilt = _HalfBuilt()
        service.program.thread.runtime.handlers.add(halfBuilt)
        (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
        assert (row["name"], row["state"]) == (f"tcp:127.0.0.1:{device.port}", "Connected")

        stopping = service.stopService()
        if when == "running":
            hooks.gate.set()
        await stopping.addTimeout(10, reactor)

        assert handler.ConnectionStatus == "Disconnected"
        assert handler.PollTimer.State == "Stopped"
        assert not [
            c for c in reactor.getDelayedCalls() if getattr(c.func, "__self__", None) is handler
        ]
        assert registry.snapshot()["devices"] == []
        assert halfBuilt.stopped == 0
    finally:
        hooks.gate.set()
        sys.modules.pop("chandler_test_hooks", None)
        await device.shutdown()
