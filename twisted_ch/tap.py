# mypy: disable-error-code="no-untyped-call"
# (twisted.application.service and twisted.internet.abstract are unannotated)
"""
C{twistd chandler}: keep the devices of a config file (or the built-in demo) alive, run a
ControlScript-style program, and serve the status page.

    twistd -n chandler                                  # built-in demo, nothing to configure
    twistd -n chandler --config site.toml               # your devices (twisted_ch.service._config)
    twistd -n chandler --program main.py                # a ControlScript program
    twistd -n chandler --project MyProject --config map.toml   # a Global Scripter project folder
    twistd -n chandler --config site.toml --log-format json --status-port 127.0.0.1:9100
    twistd chandler --check-config site.toml             # validate only: exit 0, or 2 and why

A command-line or config mistake is one line on standard error (C{FILE: key: problem}, or the
option's problem) and exit status 2: not twistd's usage text.
"""

from __future__ import annotations

import json
import re
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from twisted.application.service import IService, MultiService
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.logfile import LogFile

from twisted_ch._readfile import FileProblem, readRegularFile
from twisted_ch.service._config import (
    DEFAULT_STATUS_LISTEN,
    HOST_KEY_POLICIES,
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    DeviceConfig,
    ProgramConfig,
    ServerConfig,
    checkStatusListen,
    loadConfig,
    parseConfig,
    statusEndpoint,
)
from twisted_ch.service._logs import OutageLinesOnly, jsonLogObserver
from twisted_ch.service._registry import Registry
from twisted_ch.service._services import (
    ChandlerService,
    DevicesService,
    ProgramService,
    Shard,
    TraceService,
    availableCores,
    startShare,
)
from twisted_ch.service._stalls import STALL_REPORT, StallMonitor
from twisted_ch.service._trace import (
    DEFAULT_TRACE_MINUTES,
    MAX_TRACE_MINUTES,
    WireTrace,
    linkFinder,
)
from twisted_ch.service._web import StatusService

__all__ = ["USAGE_ERROR_STATUS", "Options", "makeService"]

#: The exit status of a command-line or config mistake (as argparse and most Unix tools).
USAGE_ERROR_STATUS = 2

_LEVELS = ("debug", "info", "warn", "error", "critical")

_log = Logger(namespace="twisted_ch.tap")


class Options(usage.Options):
    """Options of C{twistd chandler}."""

    synopsis = (
        "[--config FILE [--shard I/N]] [--program FILE | --project DIR] [--status-port ADDRESS] "
        "[--log-format text|json] [--trace NAME[,NAME]]"
    )
    longdesc = (
        "Keeps AV device links alive with keep-alive probes and reconnection (Extron's "
        "ConnectionHandler on Twisted) and serves /status (JSON) and /metrics (Prometheus). "
        "Without --config or --program it runs a built-in demo of simulated devices on loopback."
    )
    optParameters = [
        ["config", "c", None, "TOML file of the devices and servers to keep alive."],
        [
            "check-config",
            None,
            None,
            "Only check this config file (as --config would, with the other options given): "
            "print what it holds and exit 0, or its one-line error and exit 2.",
        ],
        ["program", "p", None, "A ControlScript-style program (main.py) to run."],
        [
            "project",
            None,
            None,
            "A Global Scripter project folder (or its <name>.json) to run: its entry file, with "
            "its code folder on the path and its panels' layouts "
            "[default: the config's [program] project].",
        ],
        [
            "ssh-host-key-policy",
            None,
            None,
            "SSH host-key policy of program interfaces that pass none (Global Scripter modules): "
            "'reject' unknown hosts or 'accept-new' (trust on first use) "
            "[default: the config's [program] hostKeyPolicy, else reject].",
        ],
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
            "shard",
            None,
            None,
            "I/N: watch only shard I of N of the config's devices and servers (by a stable hash "
            "of each name); its status port is the configured one + I - 1 unless --status-port "
            'is given, and its /metrics carry shard="I/N".',
        ],
        [
            "start-cpu",
            None,
            None,
            "Share of a core (above 0, at most 1) that start-up work (building the devices, their "
            "first connects) keeps to [default: 0.5; with --shard I/N, less when N shards on "
            "this machine's cores would take more than half of them: 0.33 for 3 shards on 2 "
            "cores]. Shards on machines of their own can take 0.5.",
        ],
        [
            "stall-report",
            None,
            f"{STALL_REPORT:g}",
            "Seconds between two log lines giving the reactor's longest stall (the longest "
            "gap between its iterations) in that period and since start; 0: do not measure.",
        ],
        [
            "demo-schedule",
            None,
            "40:20",
            "Built-in demo only: UP:DOWN seconds the flaky device is up, then out.",
        ],
        [
            "trace",
            "t",
            None,
            "Trace the bytes sent to and received from these devices (NAME[,NAME]) from the "
            "start, for --trace-minutes (then the trace switches itself off).",
        ],
        [
            "trace-minutes",
            None,
            f"{DEFAULT_TRACE_MINUTES:g}",
            "Minutes a wire trace runs (--trace, and POST /trace without minutes=).",
        ],
    ]
    compData = usage.Completions(
        optActions={
            "config": usage.CompleteFiles("*.toml"),
            "program": usage.CompleteFiles("*.py"),
            "project": usage.CompleteDirs(),
            "log-format": usage.CompleteList(["text", "json"]),
            "log-level": usage.CompleteList(list(_LEVELS)),
        }
    )

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse the options.  Under twistd (which sets C{parent}) a mistake is one line on
        standard error and exit status L{USAGE_ERROR_STATUS} (twistd would print its whole usage
        text above it); used alone, it raises L{usage.UsageError}.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            refuse(str(e))
        if self["check-config"] is not None:
            config: Config = self["parsedConfig"]
            print(
                f"{self['check-config']}: ok: {_count(len(config.devices), 'device')}, "
                f"{_count(len(config.servers), 'server')}"
                + (", a [program] section" if config.program is not None else "")
                + "".join(f"\n{self['check-config']}: warning: {w}" for w in config.warnings),
                flush=True,
            )
            raise SystemExit(0)

    def _number(self, option: str, fits: Callable[[float], bool], expected: str) -> float:
        """The number given as C{--option}; a UsageError saying C{expected} if it does not fit."""
        try:
            value = float(self[option])
        except ValueError:
            value = float("nan")  # fits no range
        if not fits(value):
            raise usage.UsageError(f"--{option} must be {expected}, not {self[option]!r}")
        return value

    def postOptions(self) -> None:
        check = self["check-config"]
        if check is not None:
            if self["config"] is not None and self["config"] != check:
                raise usage.UsageError("--check-config FILE checks FILE: give no other --config")
            self["config"] = check
        if self["log-format"] not in ("text", "json"):
            raise usage.UsageError(
                f"--log-format must be 'text' or 'json', not {self['log-format']!r}"
            )
        if self["log-level"] not in _LEVELS:
            raise usage.UsageError(
                f"--log-level must be one of {', '.join(_LEVELS)}, not {self['log-level']!r}"
            )
        if self["ssh-host-key-policy"] not in (None, *HOST_KEY_POLICIES):
            raise usage.UsageError(
                "--ssh-host-key-policy must be 'reject' or 'accept-new', "
                f"not {self['ssh-host-key-policy']!r}"
            )
        m = re.fullmatch(r"(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)", self["demo-schedule"])
        if m is None or not all(float(g) > 0 for g in m.groups()):
            raise usage.UsageError(
                f"--demo-schedule must be UP:DOWN positive seconds, not {self['demo-schedule']!r}"
            )
        self["demoSchedule"] = (float(m.group(1)), float(m.group(2)))
        self["traceNames"] = _traceNames(self["trace"])
        self["stallReport"] = self._number(
            "stall-report", lambda v: 0 <= v < float("inf"), "0 or more seconds"
        )
        if self["start-cpu"] is not None:
            self["startShare"] = self._number(
                "start-cpu", lambda v: 0 < v <= 1, "above 0 and at most 1"
            )
        self["traceMinutes"] = self._number(
            "trace-minutes",
            lambda v: 0 < v <= MAX_TRACE_MINUTES,
            f"above 0 and at most {MAX_TRACE_MINUTES:g}",
        )
        if self["program"] is not None and self["project"] is not None:
            raise usage.UsageError(
                "--program and --project: give one (a project runs its own entry file)"
            )
        if self["program"] is not None and not Path(self["program"]).is_file():
            raise usage.UsageError(f"--program: no such file {self['program']!r}")
        from twisted.internet import reactor

        shard: Shard | None = None
        if self["shard"] is not None:
            if self["config"] is None:
                raise usage.UsageError("--shard needs --config (the devices to share out)")
            try:
                shard = Shard.parse(self["shard"])
            except ValueError as e:
                raise usage.UsageError(f"--shard: expected {e}") from None
        config: Config | None = None
        if self["config"] is not None:
            try:
                if shard is not None and check is None:
                    config = loadShardConfig(self["config"], shard, reactor)
                else:
                    config = loadConfig(self["config"], reactor)
            except ConfigError as e:
                raise usage.UsageError(str(e)) from None
            if shard is not None:
                config = _ofShard(config, shard)
        self["parsedShard"] = shard
        self["parsedConfig"] = config
        # the process's program-wide default: the command line, else [program], else reject
        policy = self["ssh-host-key-policy"]
        if policy is None and config is not None and config.program is not None:
            policy = config.program.options.get("hostKeyPolicy")
        from twisted_ch.extronlib.interface import setDefaultHostKeyPolicy

        setDefaultHostKeyPolicy(policy or "reject")
        self["programConfig"] = _programConfig(self, config)
        if self["program"] is None and config is not None and config.program is not None:
            if config.program.file is not None:
                # relative to the config file, as its other paths
                path = Path(self["config"]).parent / config.program.file
                if not path.is_file():
                    raise usage.UsageError(
                        f"{self['config']}: program.file: no such file {str(path)!r}"
                    )
                self["program"] = str(path)
        if self["status-port"] is not None:
            try:
                self["statusListen"] = statusEndpoint(self["status-port"])
            except ValueError as e:
                raise usage.UsageError(f"--status-port: expected {e}") from None
        elif config is not None:
            self["statusListen"] = config.status.listen
            if shard is not None and self["statusListen"] is not None:
                try:
                    self["statusListen"] = shardStatusListen(self["statusListen"], shard)
                except ValueError as e:
                    raise usage.UsageError(str(e)) from None
        else:
            self["statusListen"] = DEFAULT_STATUS_LISTEN
        if self["status-port"] is not None and self["statusListen"] is not None:
            # (a config file's status.listen was checked, naming the file, by loadConfig)
            try:
                checkStatusListen(self["status-port"], self["statusListen"], reactor)
            except ValueError as e:
                raise usage.UsageError(f"--status-port: expected {e}") from None


def refuse(message: str) -> NoReturn:
    """End the process: C{message} as one line on standard error, exit status 2."""
    line = " ".join(message.split("\n"))
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    raise SystemExit(USAGE_ERROR_STATUS)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _programConfig(options: Options, config: Config | None) -> ProgramConfig | None:
    """
    The C{[program]} section the program runs with: with a project (C{--project}, else the
    config's C{[program] project} unless C{--program} is given) its entry file becomes the
    program (C{options["program"]}) and the project is read now, so a broken one is a usage error.
    """
    from twisted_ch.project import ProjectError, readProject

    section = config.program if config is not None else None
    project = options["project"]
    if project is None and options["program"] is None and section is not None:
        project = section.project
    if project is None:
        # --program wins over the config's project
        return replace(section, project=None) if section is not None else None
    try:
        entry = readProject(project).entryFile
    except ProjectError as e:
        raise usage.UsageError(str(e)) from None
    options["program"] = str(entry)
    return replace(section or ProgramConfig(), project=project, file=None)


def shardStatusListen(description: str, shard: Shard) -> str:
    """
    The status endpoint of a shard: the config's TCP port + I - 1 (port 0 stays 0); any other
    kind of endpoint cannot be shared out and needs --status-port per shard.
    """
    m = re.fullmatch(r"(tcp6?:(?:port=)?)(\d+)(.*)", description)
    if m is None:
        raise ValueError(
            f"--shard: the status endpoint {description!r} is not a TCP port that can be offset "
            "per shard; give each shard its own --status-port"
        )
    port = int(m.group(2))
    if port:
        port += shard.index - 1
        if port > 65535:
            raise ValueError(f"--shard: status port {port} of shard {shard} is beyond 65535")
    return f"{m.group(1)}{port}{m.group(3)}"


def makeService(options: Options) -> MultiService:
    """The chandler service: status page, then devices (or the demo), then the program."""
    from twisted.internet import reactor

    shard: Shard | None = options.get("parsedShard")
    config: Config | None = options.get("parsedConfig")
    registry = Registry(
        shard=shard.label if shard is not None else None,
        clock=reactor,
        health=config.health if config is not None else None,
    )
    top = ChandlerService(reactor, registry)
    top.tuneGC = True  # a process of its own (startedService, for tests in-process, turns it off)
    top.logObserver = logObserverFor(options, registry)
    stallReport = options.get("stallReport", STALL_REPORT)
    if stallReport:
        top.stallMonitor = StallMonitor(
            reactor, now=time.monotonic, report=stallReport, cpu=time.thread_time
        )
    trace = WireTrace(reactor, linkFinder(registry.entries))
    if options.get("statusListen"):
        token = config.status.token if config is not None else None
        hosts = config.status.hosts if config is not None else ()
        StatusService(
            reactor, options["statusListen"], registry, trace, token, hosts=hosts
        ).setServiceParent(top)
    if shard is not None and config is not None:
        _log.info(
            "shard {shard}: {devices} devices and {servers} servers of the config are this shard's",
            shard=shard.label,
            devices=len(config.devices),
            servers=len(config.servers),
        )
    if config is not None:
        registry.showPaths = config.status.showPaths
        top.devices = DevicesService(reactor, registry, config.devices, config.servers)
        top.devices.cpuClock = time.thread_time  # start-up keeps to a share of a core
        top.devices.startShare = options.get("startShare") or startShare(
            availableCores(), shard.count if shard is not None else 1
        )
        top.devices.deviceAdded.append(trace.deviceAdded)
        top.devices.setServiceParent(top)
        top.reloadConfig = _reloader(options["config"], shard, reactor)
    elif options["program"] is None:
        from twisted_ch.service._demo import DemoService

        up, down = options.get("demoSchedule", (40.0, 20.0))
        DemoService(reactor, registry, up=up, down=down).setServiceParent(top)
    if options["program"] is not None:
        program = ProgramService(
            reactor,
            options["program"],
            registry,
            config=options.get("programConfig", config.program if config is not None else None),
        )
        program.onFailure = lambda failure: top.exitWith(_programExitStatus(failure))
        program.setServiceParent(top)
    TraceService(
        trace, options.get("traceNames", []), options.get("traceMinutes", DEFAULT_TRACE_MINUTES)
    ).setServiceParent(top)
    return top


def _reloader(
    path: str, shard: Shard | None, reactor: Any
) -> Callable[[], tuple[tuple[DeviceConfig, ...], tuple[ServerConfig, ...]]]:
    """Reads C{path} again (for SIGHUP): its devices and servers (C{shard}'s); or ConfigError."""

    def load() -> tuple[tuple[DeviceConfig, ...], tuple[ServerConfig, ...]]:
        if shard is None:
            config = loadConfig(path, reactor)
        else:
            config = _ofShard(loadShardConfig(path, shard, reactor), shard)
        return config.devices, config.servers

    return load


def _ofShard(config: Config, shard: Shard) -> Config:
    """C{config} with only C{shard}'s devices and servers."""
    return replace(
        config,
        devices=tuple(d for d in config.devices if shard.owns(d.name)),
        servers=tuple(s for s in config.servers if shard.owns(s.name)),
    )


def loadShardConfig(path: str, shard: Shard, reactor: Any = None) -> Config:
    """
    The config file C{path} as L{loadConfig} reads it, but with the device tables of other
    shards left out before they are checked (each shard checks its own in full, and every
    device name for uniqueness): a shard of a 50,000-device config reads in a third of the
    time and memory.  A file that does not load is read whole again, so that its error is the
    one L{loadConfig} gives (naming a table by its index in the file).

    @raise ConfigError: the file, or this shard's part of it, does not load.
    """
    try:
        raw = readRegularFile(path, MAX_CONFIG_BYTES)
        data = tomllib.loads(raw.decode("utf-8"))
    except (FileProblem, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return loadConfig(path, reactor)  # raises its one-line error
    tables = data.get("device")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return loadConfig(path, reactor)
    names = [t.get("name") for t in tables]
    if len(set(n for n in names if isinstance(n, str))) != sum(isinstance(n, str) for n in names):
        return loadConfig(path, reactor)  # a name given twice: that error names both tables
    data["device"] = [
        t for t, name in zip(tables, names, strict=True)
        if not isinstance(name, str) or shard.owns(name)
    ]  # fmt: skip
    del tables, names
    try:
        # a fresh copy of what is kept, so that the whole file's decoded tables (freed now)
        # leave no heap the kept ones are scattered over: 24 MiB instead of 52 for a shard of
        # 50,000 devices
        data = json.loads(json.dumps(data))
    except (TypeError, ValueError):  # a TOML date or time: kept as decoded
        pass
    try:
        return parseConfig(data, str(path), reactor)
    except ConfigError:
        return loadConfig(path, reactor)


def _programExitStatus(failure: Any) -> int:
    """The exit status for a program that could not run: its C{sys.exit(N)}, else 1."""
    if failure.check(SystemExit):
        code = failure.value.code
        return code if isinstance(code, int) and 0 < code < 256 else 1
    return 1


def _traceNames(text: str | None) -> list[str]:
    """The device names of C{--trace NAME[,NAME]}."""
    if text is None:
        return []
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise usage.UsageError(f"--trace: expected NAME[,NAME], got {text!r}")
    return names


def logObserverFor(options: Options, registry: Registry | None = None) -> ILogObserver:
    """
    The log observer twistd will use (unless given --logger): text or JSON lines, at
    --log-level and above, written where twistd would write: --logfile, else stdout with -n,
    else twistd.log.  Above debug level, a watched device's outage lines replace its
    per-attempt and transition lines (L{OutageLinesOnly}).
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
    predicates: list[Any] = [LogLevelFilterPredicate(defaultLogLevel=level)]
    if registry is not None and level > LogLevel.debug:
        predicates.append(OutageLinesOnly(registry))
    return FilteringLogObserver(observer, predicates)


# for tests: a service tree started in-process, as twistd would
def startedService(options: Options) -> IService:
    """Build and start the chandler service without twistd (no SIGTERM handling)."""
    service = makeService(options)
    if isinstance(service, ChandlerService):
        service.handleSIGTERM = False
        service.exitProcess = False
        service.tuneGC = False
        service.stallMonitor = None
    service.startService()
    return service
