# mypy: disable-error-code="no-untyped-call"
# (twisted.application.service and twisted.internet.abstract are unannotated)
"""
C{twistd chandler}: keep the devices of a config file (or the built-in demo) alive, run a
ControlScript-style program, and serve the status page.

    twistd -n chandler                                  # built-in demo, nothing to configure
    twistd -n chandler --config site.toml               # your devices (see twisted_ch._config)
    twistd -n chandler --program main.py                # a ControlScript program
    twistd -n chandler --config site.toml --log-format json --status-port 127.0.0.1:9100
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile

from twisted_ch._config import (
    DEFAULT_STATUS_LISTEN,
    Config,
    ConfigError,
    DeviceConfig,
    ServerConfig,
    loadConfig,
    redactEndpoint,
    statusEndpoint,
)
from twisted_ch._status import Entry, Registry, StatusService, jsonLogObserver

__all__ = ["ChandlerService", "DevicesService", "Options", "makeService"]

log = Logger(namespace="twisted_ch.tap")

_LEVELS = ("debug", "info", "warn", "error", "critical")


class Options(usage.Options):
    """Options of C{twistd chandler}."""

    synopsis = "[--config FILE] [--program FILE] [--status-port ADDRESS] [--log-format text|json]"
    longdesc = (
        "Keeps AV device links alive with keep-alive probes and reconnection (Extron's "
        "ConnectionHandler on Twisted) and serves /status (JSON) and /metrics (Prometheus). "
        "Without --config or --program it runs a built-in demo of simulated devices on loopback."
    )
    optParameters = [
        ["config", "c", None, "TOML file of the devices and servers to keep alive."],
        ["program", "p", None, "A ControlScript-style program (main.py) to run."],
        [
            "status-port",
            "s",
            None,
            "Status page address: PORT, HOST:PORT, a server endpoint description, or 'off' "
            f"[default: the config's [status] listen, else {DEFAULT_STATUS_LISTEN}]",
        ],
        ["log-format", None, "text", "'text' or 'json' (one JSON object per line)."],
        ["log-level", None, "info", "Least level logged: debug, info, warn, error or critical."],
        [
            "demo-schedule",
            None,
            "40:20",
            "Built-in demo only: UP:DOWN seconds the flaky device is up, then out.",
        ],
    ]
    compData = usage.Completions(
        optActions={
            "config": usage.CompleteFiles("*.toml"),
            "program": usage.CompleteFiles("*.py"),
            "log-format": usage.CompleteList(["text", "json"]),
            "log-level": usage.CompleteList(list(_LEVELS)),
        }
    )

    def postOptions(self) -> None:
        if self["log-format"] not in ("text", "json"):
            raise usage.UsageError(
                f"--log-format must be 'text' or 'json', not {self['log-format']!r}"
            )
        if self["log-level"] not in _LEVELS:
            raise usage.UsageError(
                f"--log-level must be one of {', '.join(_LEVELS)}, not {self['log-level']!r}"
            )
        m = re.fullmatch(r"(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)", self["demo-schedule"])
        if m is None or not all(float(g) > 0 for g in m.groups()):
            raise usage.UsageError(
                f"--demo-schedule must be UP:DOWN positive seconds, not {self['demo-schedule']!r}"
            )
        self["demoSchedule"] = (float(m.group(1)), float(m.group(2)))
        if self["program"] is not None and not Path(self["program"]).is_file():
            raise usage.UsageError(f"--program: no such file {self['program']!r}")
        from twisted.internet import reactor

        config: Config | None = None
        if self["config"] is not None:
            try:
                config = loadConfig(self["config"], reactor)
            except ConfigError as e:
                raise usage.UsageError(str(e)) from None
        self["parsedConfig"] = config
        if self["status-port"] is not None:
            try:
                self["statusListen"] = statusEndpoint(self["status-port"])
            except ValueError as e:
                raise usage.UsageError(f"--status-port: expected {e}") from None
        elif config is not None:
            self["statusListen"] = config.status.listen
        else:
            self["statusListen"] = DEFAULT_STATUS_LISTEN
        if self["statusListen"] is not None:
            from twisted.internet.endpoints import serverFromString

            try:
                serverFromString(reactor, self["statusListen"])
            except Exception as e:
                where = "--status-port" if self["status-port"] is not None else "status.listen"
                raise usage.UsageError(
                    f"{where}: {self['statusListen']!r} is not a server endpoint description: {e}"
                ) from None


def makeService(options: Options) -> MultiService:
    """The chandler service: status page, then devices (or the demo), then the program."""
    from twisted.internet import reactor

    registry = Registry()
    top = ChandlerService(reactor, registry)
    top.logObserver = logObserverFor(options)
    if options.get("statusListen"):
        StatusService(reactor, options["statusListen"], registry).setServiceParent(top)
    config: Config | None = options.get("parsedConfig")
    if config is not None:
        DevicesService(reactor, registry, config.devices, config.servers).setServiceParent(top)
    elif options["program"] is None:
        from twisted_ch._demo import DemoService

        up, down = options.get("demoSchedule", (40.0, 20.0))
        DemoService(reactor, registry, up=up, down=down).setServiceParent(top)
    if options["program"] is not None:
        ProgramService(reactor, options["program"], registry).setServiceParent(top)
    return top


def logObserverFor(options: Options) -> ILogObserver:
    """
    The log observer twistd will use (unless given --logger): text or JSON lines, at
    --log-level and above, written where twistd would write: --logfile, else stdout with -n,
    else twistd.log.
    """
    parent = getattr(options, "parent", None)
    logfile = parent.get("logfile") if parent is not None else None
    nodaemon = parent.get("nodaemon", True) if parent is not None else True
    out: Any
    if logfile == "-" or (not logfile and nodaemon):
        out = sys.stdout
    else:
        out = LogFile.fromFullPath(logfile or "twistd.log")
    if options["log-format"] == "json":
        observer = jsonLogObserver(out)
    else:
        observer = textFileLogObserver(out)
    level = LogLevel.levelWithName(options["log-level"])
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=level)])


class ChandlerService(MultiService):
    """
    The top service.  Stopping it stops every child (the program first, the status page last);
    SIGTERM stops it and then the reactor, and twistd exits with status 0.
    """

    def __init__(self, reactor: Any, registry: Registry) -> None:
        super().__init__()
        self.reactor = reactor
        self.registry = registry
        self.logObserver: ILogObserver | None = None
        self.handleSIGTERM = True
        self._previousSIGTERM: Any = None

    def setServiceParent(self, parent: Any) -> None:
        # twistd asks the application for an ILogObserver component before it starts logging
        super().setServiceParent(parent)
        if self.logObserver is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.logObserver)

    def startService(self) -> None:
        log.info("chandler starting")
        super().startService()
        if self.handleSIGTERM:
            self.reactor.callWhenRunning(self._takeSIGTERM)

    def _takeSIGTERM(self) -> None:
        # twistd re-raises SIGTERM after shutdown (exit status -15); stopping the reactor
        # ourselves makes a SIGTERM an ordinary clean stop with exit status 0
        if threading.current_thread() is not threading.main_thread() or not self.running:
            return

        def onSIGTERM(number: int, frame: Any) -> None:
            log.info("received SIGTERM; stopping")
            self.reactor.callFromThread(self.reactor.stop)

        self._previousSIGTERM = signal.signal(signal.SIGTERM, onSIGTERM)

    def stopService(self) -> Deferred[None]:
        log.info("chandler stopping")
        if self._previousSIGTERM is not None:
            signal.signal(signal.SIGTERM, self._previousSIGTERM)
            self._previousSIGTERM = None
        d: Deferred[None] = super().stopService()

        def stopped(result: object) -> None:
            log.info("chandler stopped: every link closed, nothing listening")

        return d.addCallback(stopped)


def _gather(ds: Iterable[Deferred[Any]], what: str) -> Deferred[None]:
    def logged(results: list[tuple[bool, Any]]) -> None:
        for ok, value in results:
            if not ok:
                log.failure("while stopping {what}", value, what=what)

    return DeferredList(list(ds), consumeErrors=True).addCallback(logged)


class DevicesService(Service):
    """
    Connection handlers built from L{DeviceConfig}s (and ServerExHandlers from
    L{ServerConfig}s), shown in the registry.  Devices added while running start at once.
    """

    def __init__(
        self,
        reactor: Any,
        registry: Registry,
        devices: Iterable[DeviceConfig] = (),
        servers: Iterable[ServerConfig] = (),
    ) -> None:
        self.reactor = reactor
        self.registry = registry
        self._devices: list[DeviceConfig] = list(devices)
        self._servers: list[ServerConfig] = list(servers)
        self.handlers: dict[str, Any] = {}

    def add(self, device: DeviceConfig) -> None:
        """Watch one more device (now if running, else from the start)."""
        self._devices.append(device)
        if self.running:
            self._startDevice(device)

    def addServer(self, server: ServerConfig) -> None:
        """Serve one more port (now if running, else from the start)."""
        self._servers.append(server)
        if self.running:
            self._startServer(server)

    def startService(self) -> None:
        super().startService()
        for device in self._devices:
            self._startDevice(device)
        for server in self._servers:
            self._startServer(server)

    def _startDevice(self, cfg: DeviceConfig) -> None:
        try:
            handler, probe = buildHandler(self.reactor, cfg)
        except Exception:
            log.failure("{device}: cannot start", device=cfg.name)
            return
        self.handlers[cfg.name] = handler
        self.registry.add(Entry(cfg.name, handler, cfg.endpoint, "device", probe))
        log.info(
            "{device}: watching {endpoint} ({connection}; probe {probe}; poll every {poll} s; "
            "disconnected after {limit} misses)",
            device=cfg.name,
            endpoint=redactEndpoint(cfg.endpoint),
            connection=cfg.connection,
            probe=cfg.probe.kind if cfg.probe is not None else "none",
            poll=cfg.pollFrequency,
            limit=cfg.DisconnectLimit,
        )
        if cfg.connection == "stream":
            handler.AutoReconnect = cfg.AutoReconnect
            handler.Connect(cfg.connectTimeout)
        else:
            handler.Connect()

    def _startServer(self, cfg: ServerConfig) -> None:
        try:
            handler = buildServer(self.reactor, cfg)
        except Exception:
            log.failure("{server}: cannot start", server=cfg.name)
            return
        self.handlers[cfg.name] = handler
        self.registry.add(Entry(cfg.name, handler, f"tcp:{cfg.port}:{cfg.interface}", "server"))

        def listening(result: str) -> None:
            log.info(
                "{server}: {result} on {interface} port {port} (idle clients dropped after "
                "{timeout} s)",
                server=cfg.name,
                result=result,
                interface=cfg.interface,
                port=handler.Interface.IPPort,
                timeout=cfg.serverTimeout,
            )

        handler.StartListen().addCallback(listening)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        handlers, self.handlers = self.handlers, {}
        stops: list[Deferred[Any]] = []
        for name, handler in handlers.items():
            self.registry.remove(name)
            stops.append(stopHandler(handler))
        return _gather(stops, "devices")


def buildHandler(reactor: Any, cfg: DeviceConfig) -> tuple[Any, Any]:
    """A connection handler (not yet connected) and its probe for one device."""
    from twisted.internet.endpoints import clientFromString

    from twisted_ch._factory import GetConnectionHandler
    from twisted_ch.extronlib.interface import EndpointInterface
    from twisted_ch.probes import makeProbe

    probe = makeProbe(cfg.probe.kind, cfg.probe.options) if cfg.probe is not None else None
    endpoint = clientFromString(reactor, cfg.endpoint)
    interface = EndpointInterface(
        endpoint,
        reactor=reactor,
        connectionOriented=cfg.connection == "stream",
        description=cfg.name,
        reopenDelay=cfg.connectRetryTime,
    )
    handler = GetConnectionHandler(
        interface,
        probe,
        DisconnectLimit=cfg.DisconnectLimit,
        pollFrequency=cfg.pollFrequency,
        connectRetryTime=cfg.connectRetryTime,
        reactor=reactor,
    )
    if probe is not None:
        probe.attach(handler)
    return handler, probe


def buildServer(reactor: Any, cfg: ServerConfig) -> Any:
    """A ServerExHandler (not yet listening) for one server table."""
    from twisted_ch._factory import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetServerInterfaceEx

    interface = EthernetServerInterfaceEx(
        cfg.port, "TCP", cfg.interface, cfg.MaxClients, reactor=reactor
    )
    return GetConnectionHandler(interface, serverTimeout=cfg.serverTimeout, reactor=reactor)


def stopHandler(handler: Any) -> Deferred[Any]:
    """Stop a client handler (Disconnect) or a server handler (StopListen, drop clients)."""
    try:
        if hasattr(type(handler), "StopListen"):
            for client in list(handler.Clients):
                client.Disconnect()
            result = handler.StopListen()
        else:
            result = handler.Disconnect()
    except Exception:
        return fail()
    return result if isinstance(result, Deferred) else succeed(result)


class ProgramService(Service):
    """Runs a ControlScript-style program; its module-level handlers show on the status page."""

    def __init__(self, reactor: Any, path: str, registry: Registry) -> None:
        self.reactor = reactor
        self.path = path
        self.registry = registry
        self.program: Any = None
        self.handlers: dict[str, Any] = {}

    def startService(self) -> None:
        from twisted_ch.program import Program

        super().startService()
        self.program = Program(self.reactor, name=Path(self.path).stem)
        log.info("running program {path}", path=self.path)
        self.program.runFile(self.path).addCallbacks(self._ran, self._failed)

    def _ran(self, namespace: dict[str, Any]) -> None:
        from twisted_ch._handlers import ConnectionHandler

        if not self.running:
            return
        for name, value in namespace.items():
            if isinstance(value, ConnectionHandler) or hasattr(type(value), "StartListen"):
                kind = "device" if isinstance(value, ConnectionHandler) else "server"
                self.handlers[name] = value
                self.registry.add(Entry(name, value, repr(value.Interface), kind))
        log.info(
            "program {path} ran its top level; {n} handlers on the status page",
            path=self.path,
            n=len(self.handlers),
        )

    def _failed(self, failure: Failure) -> None:
        log.failure("program {path} failed", failure, path=self.path)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        handlers, self.handlers = self.handlers, {}
        stops: list[Deferred[Any]] = []
        for name, handler in handlers.items():
            self.registry.remove(name)
            stops.append(stopHandler(handler))
        d = _gather(stops, "program handlers")
        program = self.program
        if program is not None:
            d.addCallback(lambda _: program.stop())
        return d


# for tests: a service tree started in-process, as twistd would
def startedService(options: Options) -> IService:
    """Build and start the chandler service without twistd (no SIGTERM handling)."""
    service = makeService(options)
    if isinstance(service, ChandlerService):
        service.handleSIGTERM = False
    service.startService()
    return service
