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
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseDone

from twisted_ch._probe_simulators import SIS_RESPONSES
from twisted_ch.testing import DeviceServer

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
    for option in ("--config=", "--program=", "--status-port=", "--log-format=", "127.0.0.1"):
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
        assert 'chandler_device_up{device="flaky-switcher"} 1.0' in metrics
        assert re.search(
            r'chandler_device_transitions_total\{device="flaky-switcher"\} [3-9]', metrics
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
        document = await pollStatus(
            base,
            lambda doc: any(
                d["name"] == "Projector" and d["state"] == "Connected" and d["polls"] > 1
                for d in doc["devices"]
            ),
        )
        assert [d["name"] for d in document["devices"]] == ["Projector"]
        await process.waitFor(rb"Projector is Connected")
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await device.shutdown()
    assert "chandler stopped" in process.text


# a clean stop leaves nothing behind (in a fresh process: its reactor has only our timers)

STOP_CHECK = """
import json, os, sys
from twisted.internet import task
from twisted.internet.defer import ensureDeferred
from twisted_ch.tap import DevicesService, Options, startedService

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
    assert set(report["handlers"].values()) <= {"Disconnected", None}, report
    assert report["timers"] == [], report
    assert report["files"] == [], report
    assert report["readers"] == [], report


# the pieces, in-process


def test_json_log_lines_are_flat_and_name_the_device() -> None:
    from twisted.logger import LogLevel

    from twisted_ch._status import eventAsLine

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
    from twisted_ch._status import Entry, Registry

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
