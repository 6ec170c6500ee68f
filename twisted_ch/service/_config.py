"""
The C{twistd chandler --config} file: TOML, checked completely before anything starts.

    [status]
    listen = "127.0.0.1:8790"          # or an endpoint description, or "off"

    [[device]]
    name = "switcher"
    endpoint = "tcp:host=192.0.2.10:port=23"
    probe = { type = "sis", query = "Q" }
    pollFrequency = 5
    DisconnectLimit = 3

    [[server]]
    port = 9000                         # interface: an IP address, default 127.0.0.1
    serverTimeout = 30

    [health]                            # thresholds of the health levels (also per device)
    warningMisses = 2
    errorAfter = 0
    outageSummary = 60

    [program]                           # what a ControlScript program names, on this machine
    file = "main.py"                    # or project = "MyProject" (a Global Scripter folder)
    ports = { COM1 = "/dev/ttyUSB0", COM2 = "tcp:host=192.0.2.5:port=4002" }
    addresses = { "192.168.1.12:22023" = "tcp:127.0.0.1:2222", "192.168.1.20" = "127.0.0.1" }

Every mistake raises one L{ConfigError} naming the file, the key (C{device[1].pollFrequency},
counting tables from 0) and what was expected.  Messages never show a secret: a probe's
C{password}, C{community} or C{passphrase} is described only by its type, and an endpoint
description that does not parse only by its type and option names.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from twisted.logger import Logger

from twisted_ch import _checks
from twisted_ch._confusables import lookAlikes
from twisted_ch._memory import DEFAULT_MEMORY_LIMIT, MIN_MEMORY_LIMIT
from twisted_ch._readfile import FileProblem, readRegularFile

log = Logger(namespace="twisted_ch.config")

__all__ = [
    "Config",
    "ConfigError",
    "DeviceConfig",
    "HealthConfig",
    "ProgramConfig",
    "ProgramHostConfig",
    "ProbeConfig",
    "ServerConfig",
    "StatusConfig",
    "DEFAULT_STATUS_LISTEN",
    "MIN_SECONDS",
    "decodeEscapes",
    "describeEndpoint",
    "isWildcardAddress",
    "loadConfig",
    "redactEndpoint",
    "parseConfig",
    "statusEndpoint",
]

#: Where the status page listens unless told otherwise: loopback only.
DEFAULT_STATUS_LISTEN = "tcp:8790:interface=127.0.0.1"

#: The shortest time a configuration may give (a poll period, a timeout, a retry delay): the
#: API's bound too (L{twisted_ch._checks.MIN_PERIOD}).
MIN_SECONDS = _checks.MIN_PERIOD
#: The longest: one day.
MAX_SECONDS = _checks.MAX_PERIOD

#: Clients a C{[[server]]} serves at once unless its C{MaxClients} says otherwise: beyond them a
#: new client is refused at once, so idle clients cannot take the descriptors devices need.
DEFAULT_MAX_CLIENTS = 64
#: The largest C{MaxClients} a C{[[server]]} may give.
MAX_MAX_CLIENTS = 100_000
#: The longest text a config value may hold (an endpoint description, a name, a pattern).
MAX_TEXT = 4096

#: Option names whose values are secrets: error messages describe them only by their type.
SECRET_KEYS = frozenset({"password", "community", "passphrase"})
#: Endpoint options whose values are local paths: hidden on the status page unless asked for.
PATH_OPTIONS = frozenset({"keys", "knownhosts", "agent"})

Connection = Literal["stream", "pipe"]

#: Endpoint types whose transport reports no connection state: the keep-alive decides.
PIPE_ENDPOINT_TYPES = frozenset({"udp", "serial"})

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is unusable; the message says where and why."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """A stock keep-alive probe (see L{twisted_ch.service.probes}) and its constructor's options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthConfig:
    """
    How a device's health level is judged (see L{twisted_ch.service._outages.healthOf}), and how
    often an outage is summarised in the log.

    @ivar warningMisses: a Connected device with this many unanswered sends (or more) is
        C{warning}; the default, 2, does not count the keep-alive in flight.
    @ivar errorAfter: a device Disconnected for less than this many seconds is C{warning}
        (reconnecting after a loss), then C{error}.
    @ivar outageSummary: seconds between the "still down" log lines of an outage.
    """

    warningMisses: int = 2
    errorAfter: float = 0.0
    outageSummary: float = 60.0


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One device link kept alive by a connection handler."""

    name: str
    endpoint: str
    connection: Connection = "stream"
    probe: ProbeConfig | None = None
    DisconnectLimit: int = 15
    pollFrequency: float = 1.0
    connectRetryTime: float = 5.0
    AutoReconnect: bool = True
    connectTimeout: float | None = None
    #: each reconnection delay is spread over ±retryJitter of itself
    retryJitter: float = 0.1
    #: when set, delays double after each consecutive failure up to this many seconds
    maxRetryTime: float | None = None
    health: HealthConfig | None = None
    #: the room the device is in ("" when none is given): the dashboard groups by it
    room: str = ""
    #: free labels for filtering /status (C{?tag=})
    tags: tuple[str, ...] = ()

    @property
    def endpointType(self) -> str:
        """The endpoint string's prefix (C{tcp}, C{udp}, C{serial}, C{ssh}, ...)."""
        return endpointType(self.endpoint)


@dataclass(frozen=True)
class ServerConfig:
    """A TCP server whose idle clients are disconnected (ServerExHandler)."""

    name: str
    port: int
    #: an IP address literal (0.0.0.0 or :: listen on every interface)
    interface: str = "127.0.0.1"
    serverTimeout: float = 300.0
    MaxClients: int = DEFAULT_MAX_CLIENTS
    #: the room the server is in ("" when none is given)
    room: str = ""
    #: free labels for filtering /status (C{?tag=})
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatusConfig:
    """
    The status page's listening endpoint (None: no status page), and the token that lets a
    request change something (start a wire trace) when the page is not bound to loopback.
    """

    listen: str | None = DEFAULT_STATUS_LISTEN
    #: show endpoint options holding local paths (key files, known_hosts, agent socket)
    showPaths: bool = False
    token: str | None = field(default=None, repr=False)
    #: names the status port answers to besides this machine's own (a Host header naming
    #: another is refused: DNS rebinding)
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgramHostConfig:
    """
    A port host a program names (its C{DeviceAlias}): its port aliases, its Secure Platform
    endpoint, and the endpoint whose reachability is its Online/Offline state.
    """

    ports: Mapping[str, str] = field(default_factory=dict)
    spEndpoint: str | None = None
    online: str | None = None
    onlineEvery: float = 10.0


@dataclass(frozen=True)
class ProgramConfig:
    """
    The C{[program]} section: the program to run and what it names, mapped to this machine.

    @ivar ports: port aliases of every host (C{COM1} -> a device path, or a C{serial:}/C{tcp:}
        client endpoint description such as a ser2net port).
    @ivar hosts: per host alias (a ProcessorDevice or SPDevice), its own settings.
    @ivar dante: Dante device names -> client endpoint descriptions.
    @ivar options: keys other sections of the code read (see L{PROGRAM_KEYS}).
    @ivar project: a Global Scripter project folder (or its C{.json}) to run instead of
        C{file}; written relative to the config file's folder, held joined to it.
    @ivar addresses: what the program names (an address, a host name, C{address:port}) -> an
        address, C{address:port} or a client endpoint description on this machine (see
        L{twisted_ch.project._addresses}).
    """

    file: str | None = None
    ports: Mapping[str, str] = field(default_factory=dict)
    hosts: Mapping[str, ProgramHostConfig] = field(default_factory=dict)
    dante: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    project: str | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)
    #: the program's memory bound in bytes (None: unbounded); see L{twisted_ch._memory}
    memoryLimit: int | None = DEFAULT_MEMORY_LIMIT


@dataclass(frozen=True)
class Config:
    """A whole configuration file."""

    source: str
    devices: tuple[DeviceConfig, ...] = ()
    servers: tuple[ServerConfig, ...] = ()
    status: StatusConfig = field(default_factory=StatusConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    program: ProgramConfig | None = None
    #: what loading it warned about (logged then): names that look like another
    warnings: tuple[str, ...] = ()


def endpointType(description: str) -> str:
    """The type of an endpoint description: the text before its first colon, lower-cased."""
    return description.split(":", 1)[0].strip().lower()


def isSecretOption(name: str) -> bool:
    """
    Whether an endpoint option of this name holds a secret: its name as Twisted reads it (escapes
    removed, so C{pass\\word} is C{password}), spaces and case aside, names or contains
    C{pass}, C{secret}, C{community} or C{token}.
    """
    bare = name.strip().lower()
    return any(word in bare for word in ("pass", "secret", "community", "token"))


def redactEndpoint(description: str, showPaths: bool = False) -> str:
    """
    An endpoint description with the values of its secret options (C{password=},
    C{passphrase=}, C{community=}, whatever the spelling Twisted would read as one) replaced by
    ***, and (unless C{showPaths}) those of its path options (C{keys=}, C{knownHosts=},
    C{agent=}) by C{<path>}.

    Redaction works on the parts as Twisted's parser splits them, so an escaped option name
    (C{pass\\word=}) is redacted too.  A description Twisted could not parse (a lone trailing
    backslash) is shown with L{describeEndpoint} instead.
    """
    if _lastBackslashUnpaired(description):
        return describeEndpoint(description)
    parts = _splitRaw(description)
    shown = [parts[0]]
    for part in parts[1:]:
        m = _OPTION.match(part)
        if m is None:
            shown.append(part)
            continue
        name = _unescape(m.group(1))
        if isSecretOption(name):
            shown.append(f"{name.strip()}=***")
        elif not showPaths and name.strip().lower() in PATH_OPTIONS:
            shown.append(f"{name.strip()}=<path>")
        else:
            shown.append(part)
    return ":".join(shown)


def _lastBackslashUnpaired(text: str) -> bool:
    """Whether C{text} ends with an escape character that escapes nothing."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


_OPTION = re.compile(r"((?:\\.|[^=\\])*+)=(.*)", re.S)


def _splitRaw(description: str) -> list[str]:
    """The parts of a description, split on unescaped colons, each as written."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(description):
        c = description[i]
        if c == "\\" and i + 1 < len(description):
            current.append(description[i : i + 2])
            i += 2
            continue
        if c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class _Parts:
    """An endpoint description split as Twisted's parsers split it."""

    kind: str
    args: tuple[str, ...]
    options: tuple[tuple[str, str], ...]

    def values(self) -> list[str]:
        """Every value given (positional parts and option values), as written and unescaped."""
        found = [*self.args, *(value for _, value in self.options)]
        return found + [_unescape(v) for v in found]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.S)


def _splitDescription(description: str) -> _Parts:
    """Split on unescaped colons; a part with an unescaped C{=} is an option (C{name=value})."""
    parts = _splitRaw(description)
    args: list[str] = []
    options: list[tuple[str, str]] = []
    for part in parts[1:]:
        m = _OPTION.match(part)
        if m is None:
            args.append(part)
        else:
            options.append((_unescape(m.group(1)), m.group(2)))
    return _Parts(parts[0].strip().lower(), tuple(args), tuple(options))


def describeEndpoint(description: str) -> str:
    """
    What an endpoint description holds, without any value: its type, how many positional parts
    and its option names (C{'ssh' endpoint (2 positional parts; options 'username', 'password')}).
    """
    parts = _splitDescription(description)
    kind = repr(parts.kind) if re.fullmatch(r"[a-z0-9_+.\-]+", parts.kind) else "unreadable"
    shown = []
    if parts.args:
        n = len(parts.args)
        shown.append(f"{n} positional part{'s' if n != 1 else ''}")
    if parts.options:
        shown.append("options " + ", ".join(repr(name) for name, _ in parts.options))
    else:
        shown.append("no options")
    return f"{kind} endpoint ({'; '.join(shown)})"


def _scrub(text: str, values: list[str]) -> str:
    """
    C{text} (a parser's error message) with each of C{values} replaced by ***: as a whole word,
    and for values of 4 characters or more wherever they occur.
    """
    for value in sorted({v for v in values if v.strip()}, key=len, reverse=True):
        pattern = r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])"
        text = re.sub(pattern, "***", text)
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def isWildcardAddress(host: str) -> bool:
    """Whether binding C{host} listens on every interface (C{0.0.0.0}, C{::}, C{0}, C{""})."""
    host = host.strip().strip("[]")
    if host in ("", "0", "*"):
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


#: Where each listening endpoint type takes its interface as a positional part (after the port).
_INTERFACE_POSITION = {"tcp": 1, "tcp6": 2, "ssl": 4}
_LOOPBACK = {"tcp": "127.0.0.1", "tcp6": "\\:\\:1", "ssl": "127.0.0.1"}


def statusEndpoint(text: str) -> str | None:
    """
    Turn a status address into a server endpoint description.

    C{8790} and C{HOST:8790} become C{tcp:...} descriptions (C{8790} alone binds 127.0.0.1, and
    C{0:8790} means C{0.0.0.0:8790}); C{off}/C{none} disable the page; anything else is taken as
    an endpoint description, and a C{tcp}, C{tcp6} or C{ssl} one that names no interface binds
    loopback (C{interface=127.0.0.1}, C{::1} for tcp6), never every interface by default.  An
    explicit wildcard (C{0.0.0.0}, C{::}) is kept: the status service warns about it.

    @raise ValueError: the text is empty.
    """
    text = text.strip()
    if not text:
        raise ValueError("an address such as 127.0.0.1:8790 or tcp:8790:interface=127.0.0.1")
    if text.lower() in ("off", "none"):
        return None
    if text.isdigit():
        return f"tcp:{int(text)}:interface=127.0.0.1"
    m = re.fullmatch(r"\[?([0-9A-Za-z.:\-]*?)\]?:(\d+)", text)
    if m and endpointType(text) not in _KNOWN_SERVER_TYPES:
        host, port = m.groups()
        host = host or "127.0.0.1"
        if host == "0":
            host = "0.0.0.0"
        return f"tcp:{int(port)}:interface={host.replace(':', chr(92) + ':')}"
    return _withInterface(text)


def _withInterface(description: str) -> str:
    """C{description}, bound to loopback if it is a tcp/tcp6/ssl one that names no interface."""
    parts = _splitDescription(description)
    position = _INTERFACE_POSITION.get(parts.kind)
    if position is None:
        return description
    if any(name.strip() == "interface" for name, _ in parts.options):
        return description
    if len(parts.args) > position:
        return description
    return f"{description}:interface={_LOOPBACK[parts.kind]}"


_KNOWN_SERVER_TYPES = frozenset({"tcp", "tcp6", "ssl", "unix", "systemd", "tls"})


# reading

_TOP = ("device", "server", "status", "health", "program")
_DEVICE_KEYS = (
    "name",
    "endpoint",
    "connection",
    "probe",
    "DisconnectLimit",
    "pollFrequency",
    "connectRetryTime",
    "AutoReconnect",
    "connectTimeout",
    "retryJitter",
    "maxRetryTime",
    "health",
    "room",
    "tags",
)
_INTERFACE = "an IP address to listen on, such as 127.0.0.1 (0.0.0.0: every interface)"
_SERVER_KEYS = ("name", "port", "interface", "serverTimeout", "MaxClients", "room", "tags")
_STATUS_KEYS = ("listen", "showPaths", "token", "hosts")
#: the largest config file read (a larger one, or one that is no regular file, is refused)
MAX_CONFIG_BYTES = 16 << 20

#: Options each stock probe accepts (beyond C{type}), with the checker for each.
_PROBE_OPTIONS: dict[str, tuple[str, ...]] = {
    "sis": ("query", "expect", "timeout"),
    "pjlink": ("password", "timeout"),
    "snmp": ("community", "version", "timeout"),
    "send": ("send", "expect", "timeout", "secret"),
}


def loadConfig(path: str | Path, reactor: Any = None) -> Config:
    """
    Read and check a configuration file.

    With C{reactor}, each device's endpoint description is also parsed with
    L{twisted.internet.endpoints.clientFromString} (this creates the endpoint objects, it does not
    connect), so a string no parser accepts is a L{ConfigError} too.

    @raise ConfigError: the file cannot be read, is not TOML, or breaks the schema.
    """
    source = str(path)
    try:
        raw = readRegularFile(path, MAX_CONFIG_BYTES)
    except FileProblem as e:
        why = str(e).removeprefix(f"{os.fspath(path)}: ")
        raise ConfigError(source, None, why) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(source, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, None, f"invalid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(source, None, "invalid TOML: nested too deeply") from None
    return parseConfig(data, source, reactor)


def parseConfig(data: Mapping[str, Any], source: str = "<config>", reactor: Any = None) -> Config:
    """Check already-decoded TOML data (see L{loadConfig})."""
    r = _Reader(source)
    r.known(data, "", _TOP)
    health = _health(r, data["health"], "health", None) if "health" in data else HealthConfig()
    devices = tuple(
        _device(r, table, f"device[{i}]", health)
        for i, table in enumerate(r.tables(data, "device", "device"))
    )
    serverTables = r.tables(data, "server", "server")
    servers = tuple(_server(r, table, f"server[{i}]", i) for i, table in enumerate(serverTables))
    for i, s in enumerate(servers):
        for j, other in enumerate(servers[:i]):
            if s.port and s.port == other.port and _overlap(s.interface, other.interface):
                r.fail(f"server[{i}].port", f"a free port; {s.port} is also server[{j}]")
    # one namespace for devices and servers: the status page, the metrics and the service's
    # handlers are all keyed by name
    names: dict[str, str] = {}
    named = [(f"device[{i}]", d.name, True) for i, d in enumerate(devices)] + [
        (f"server[{i}]", s.name, "name" in t)
        for i, (s, t) in enumerate(zip(servers, serverTables, strict=True))
    ]
    for where, name, given in named:
        if name in names:
            hint = "" if given else f" (the default name of {where}: give it a name)"
            r.fail(f"{where}.name", f"a unique name; {name!r} is also {names[name]}{hint}")
        names[name] = where
    status = StatusConfig()
    if "status" in data:
        table = r.table(data["status"], "status")
        r.known(table, "status", _STATUS_KEYS)
        if "listen" in table:
            text = r.string(table["listen"], "status.listen", "an address such as 127.0.0.1:8790")
            try:
                status = StatusConfig(statusEndpoint(text))
            except ValueError as e:
                r.fail("status.listen", str(e))
            if reactor is not None and status.listen is not None:
                try:
                    checkStatusListen(text, status.listen, reactor)
                except ValueError as e:
                    r.fail("status.listen", str(e))
        if "showPaths" in table:
            status = StatusConfig(
                status.listen,
                r.boolean(table["showPaths"], "status.showPaths", "true or false"),
            )
        status = _statusToken(r, table, status)
        if "hosts" in table:
            status = replace(status, hosts=_statusHosts(r, table["hosts"]))
    program = _program(r, data["program"], "program", reactor) if "program" in data else None
    if reactor is not None:
        for i, d in enumerate(devices):
            checkEndpoint(r, d.endpoint, f"device[{i}].endpoint", reactor)
    warnings = _lookAlikes(named, devices, servers, program)
    for warning in warnings:
        log.warn("{source}: {warning}", source=source, warning=warning)
    return Config(source, devices, servers, status, health, program, tuple(warnings))


def _lookAlikes(
    named: list[tuple[str, str, bool]],
    devices: tuple[DeviceConfig, ...],
    servers: tuple[ServerConfig, ...],
    program: ProgramConfig | None,
) -> list[str]:
    """Names (of devices and servers, rooms, a program's aliases) that look like another."""
    warnings = lookAlikes(((f"{where}.name", name) for where, name, _ in named))
    rooms: dict[str, str] = {}
    placed = [(f"device[{i}].room", d.room) for i, d in enumerate(devices)]
    placed += [(f"server[{i}].room", s.room) for i, s in enumerate(servers)]
    for where, room in placed:
        if room:
            rooms.setdefault(room, where)
    warnings += lookAlikes((where, room) for room, where in rooms.items())
    if program is not None:
        aliases = [("program.hosts", program.hosts), ("program.dante", program.dante)]
        warnings += lookAlikes((f"{key}.{name}", name) for key, table in aliases for name in table)
        warnings += lookAlikes(
            [(f"program.ports.{name}", name) for name in program.ports]
            + [
                (f"program.hosts.{alias}.ports.{name}", name)
                for alias, host in program.hosts.items()
                for name in host.ports
            ]
        )
    return warnings


def checkStatusListen(written: str, description: str, reactor: Any) -> None:
    """
    Parse a status address's server endpoint C{description} (made from C{written}, what the
    operator wrote) with the installed parsers.

    @raise ValueError: it does not parse; the message quotes C{written}, never text added to it.
    """
    from twisted.internet.endpoints import serverFromString

    if _lastBackslashUnpaired(written):
        raise ValueError(f"a server endpoint description; {written!r} ends with a lone backslash")
    try:
        serverFromString(reactor, description)
    except Exception as e:
        raise ValueError(
            f"an address such as 127.0.0.1:8790 or a server endpoint description; {written!r} is "
            f"not one: {e}"
        ) from None


def _overlap(a: str, b: str) -> bool:
    """Whether listening on addresses C{a} and C{b} (same port) would clash."""
    if a == b:
        return True
    x, y = ipaddress.ip_address(a), ipaddress.ip_address(b)
    return x.version == y.version and (x.is_unspecified or y.is_unspecified)


def checkEndpoint(r: _Reader, description: str, key: str, reactor: Any) -> None:
    """
    Parse an endpoint description with the installed string parsers.  On failure the message
    shows the type and option names only: no value, not even with the secret options hidden
    (a mistyped C{pasword=} or an unescaped colon inside a password would otherwise show).
    """
    from twisted_ch.endpoints._strings import clientFromString

    shown = describeEndpoint(description)
    if _lastBackslashUnpaired(description):
        r.fail(key, f"a client endpoint description; the {shown} ends with a lone backslash")
    problem = endpointValueProblem(description)
    if problem is not None:
        r.fail(key, f"a client endpoint description; the {shown} has {problem}")
    try:
        clientFromString(reactor, description)
    except Exception as e:
        text = _scrub(str(e) or type(e).__name__, _splitDescription(description).values())
        if text.startswith("Unknown endpoint type"):
            text += " (no endpoint parser plugin for it is installed)"
        r.fail(key, f"a client endpoint description; the {shown} is not one: {text}")


#: Where host and port are for the network endpoint types: (host option, port option, default
#: port or None if required); positional parts come in that order.
_NETWORK_ENDPOINTS = {
    "tcp": ("host", "port", None),
    "tcp6": ("host", "port", None),
    "udp": ("host", "port", None),
    "ssh": ("host", "port", 22),
}


def endpointValueProblem(description: str) -> str | None:
    """
    What makes a tcp, tcp6, udp or ssh description unusable although its parser accepts it (a
    port out of range, an empty host, a NUL or a '/' in it, a URL's C{tcp://}), or None.  The
    message names the option and shows no value but the port.
    """
    parts = _splitDescription(description)
    spec = _NETWORK_ENDPOINTS.get(parts.kind)
    if spec is None:
        return None
    hostName, portName, _default = spec
    given = {name.strip(): _unescape(value) for name, value in parts.options}
    positional = [_unescape(a) for a in parts.args]
    host = given.get(hostName)
    port = given.get(portName)
    if host is None and positional:
        host = positional.pop(0)
    if port is None and positional:
        port = positional.pop(0)
    if host is not None and (host.startswith("//") or "/" in host):
        if host.startswith("//"):
            return (
                f"a URL-style address ('{parts.kind}://'): write it as "
                f"'{parts.kind}:{hostName}=HOST:{portName}=PORT'"
            )
        return f"an unusable {hostName}: a host name or address has no '/'"
    if host is not None:
        try:
            _checks.host(host, hostName)
        except ValueError as e:
            text = str(e).split(", got", 1)[0]
            return f"an unusable {hostName}: {text}"
    if port is not None:
        digits = port.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,12}", digits):
            return None  # the parser's own error says it best
        try:
            _checks.port(int(digits), portName)
        except ValueError as e:
            return f"an unusable {portName}: {e}"
    return None


def _device(
    r: _Reader, table: Mapping[str, Any], key: str, health: HealthConfig | None = None
) -> DeviceConfig:
    r.known(table, key, _DEVICE_KEYS)
    name = r.required(table, key, "name", r.string, "a device name (text)")
    r.checkName(name, f"{key}.name", "device")
    endpoint = r.required(
        table,
        key,
        "endpoint",
        r.string,
        "a client endpoint description such as 'tcp:host=192.0.2.10:port=23'",
    )
    if ":" not in endpoint:
        plain = re.fullmatch(r"[A-Za-z0-9._\-]{1,64}", endpoint) is not None
        r.fail(
            f"{key}.endpoint",
            "a client endpoint description such as 'tcp:host=192.0.2.10:port=23', got "
            + (f"{endpoint!r} (no type)" if plain else "text with no type (no ':')"),
        )
    kind = endpointType(endpoint)
    default: Connection = "pipe" if kind in PIPE_ENDPOINT_TYPES else "stream"
    connection: Connection = default
    if "connection" in table:
        text = r.string(table["connection"], f"{key}.connection", '"stream" or "pipe"')
        if text == "stream":
            connection = "stream"
        elif text == "pipe":
            connection = "pipe"
        else:
            r.fail(f"{key}.connection", f'"stream" or "pipe", got {text!r}')
    pollFrequency = r.optional(table, key, "pollFrequency", r.seconds, "seconds", 1.0)
    probe = (
        _probe(r, table.get("probe"), f"{key}.probe", pollFrequency) if "probe" in table else None
    )
    if probe is None and connection == "pipe":
        r.fail(
            f"{key}.probe",
            "a keep-alive probe: a pipe (udp, serial) connection's state comes only from it",
        )
    timeout = r.optional(table, key, "connectTimeout", r.seconds, "seconds", None)
    retryTime = r.optional(table, key, "connectRetryTime", r.seconds, "seconds", 5.0)
    retry = _retryKeys(r, table, key, retryTime)
    # a device's own thresholds, over the [health] table's; None: the [health] table's
    health = _health(r, table["health"], f"{key}.health", health) if "health" in table else None
    share = r.share
    return DeviceConfig(
        name=name,
        endpoint=endpoint,
        connection=share(connection),
        probe=probe,
        DisconnectLimit=r.optional(
            table,
            key,
            "DisconnectLimit",
            r.count,
            f"a whole number of polls (1 to {_checks.MAX_DISCONNECT_LIMIT})",
            15,
        ),
        pollFrequency=share(pollFrequency),
        connectRetryTime=share(retryTime),
        AutoReconnect=r.optional(table, key, "AutoReconnect", r.boolean, "true or false", True),
        connectTimeout=share(timeout),
        retryJitter=share(retry[0]),
        maxRetryTime=share(retry[1]),
        health=health,
        room=share(_room(r, table, key)),
        tags=share(_tags(r, table, key)),
    )


def _probe(r: _Reader, value: Any, key: str, pollFrequency: float) -> ProbeConfig:
    kinds = ", ".join(f'"{k}"' for k in _PROBE_OPTIONS)
    if isinstance(value, str):
        table: Mapping[str, Any] = {"type": value}
    elif isinstance(value, dict):
        table = value
    else:
        r.fail(key, f"a probe name ({kinds}) or a table, got {_describe(value)}")
    if "type" in table:
        kind = r.string(table["type"], f"{key}.type", f"one of {kinds}")
    elif "send" in table:
        kind = "send"
    else:
        r.fail(f"{key}.type", f"one of {kinds} (or give send and expect)")
    if kind not in _PROBE_OPTIONS:
        r.fail(f"{key}.type", f"one of {kinds}, got {kind!r}")
    r.known(table, key, ("type", *_PROBE_OPTIONS[kind]))
    options: dict[str, Any] = {}
    options["timeout"] = r.optional(
        table, key, "timeout", r.seconds, "seconds", min(2.0, pollFrequency)
    )
    if kind == "sis":
        options["query"] = decodeEscapesAt(
            r, r.optional(table, key, "query", r.string, "the SIS query text", "Q"), f"{key}.query"
        )
        if not options["query"]:
            r.fail(f"{key}.query", "a non-empty SIS query such as 'Q', 'N' or 'I'")
        if "expect" in table:
            options["expect"] = r.regex(table["expect"], f"{key}.expect")
    elif kind == "pjlink":
        if "password" in table:
            options["password"] = r.string(table["password"], f"{key}.password", "text")
    elif kind == "snmp":
        options["community"] = r.optional(table, key, "community", r.string, "text", "public")
        version = r.optional(table, key, "version", r.string, '"1" or "2c"', "2c")
        if version not in ("1", "2c"):
            r.fail(f"{key}.version", f'"1" or "2c", got {version!r}')
        options["version"] = version
        from importlib.util import find_spec

        if find_spec("pyasn1") is None:
            r.fail(
                f"{key}.type",
                "an installed probe: the snmp probe needs pyasn1 (pip install 'twisted_ch[snmp]')",
            )
    elif kind == "send":
        send = r.required(table, key, "send", r.string, "the bytes to send (escapes allowed)")
        options["send"] = decodeEscapesAt(r, send, f"{key}.send")
        if not options["send"]:
            r.fail(f"{key}.send", "at least one byte to send")
        if "expect" not in table:
            r.fail(f"{key}.expect", "a regular expression the answer must match")
        options["expect"] = r.regex(table["expect"], f"{key}.expect")
        if "secret" in table:
            options["secret"] = r.boolean(table["secret"], f"{key}.secret", "true or false")
    return r.share(ProbeConfig(kind, options), ProbeConfig, kind, *sorted(options.items()))


def _server(r: _Reader, table: Mapping[str, Any], key: str, index: int) -> ServerConfig:
    r.known(table, key, _SERVER_KEYS)
    port = r.required(table, key, "port", r.port, "a TCP port number (0-65535)")
    interface = r.optional(table, key, "interface", r.interface, _INTERFACE, "127.0.0.1")
    # unique whenever the ports are (port 0 picks a free port, so it names no one server)
    shown = f"[{interface}]" if ":" in interface else interface
    default = f"{shown}:{port}" if port else f"server[{index}]"
    name = r.optional(table, key, "name", r.string, "text", default)
    r.checkName(name, f"{key}.name", "server")
    return ServerConfig(
        name=name,
        port=port,
        interface=interface,
        serverTimeout=r.optional(table, key, "serverTimeout", r.seconds, "seconds", 300.0),
        MaxClients=r.optional(
            table,
            key,
            "MaxClients",
            r.count,
            f"a whole number of clients (1 to {MAX_MAX_CLIENTS})",
            DEFAULT_MAX_CLIENTS,
        ),
        room=_room(r, table, key),
        tags=_tags(r, table, key),
    )


# rooms and tags (the dashboard's grouping, /status filters, the /metrics room label)

MAX_TAGS = 32


def _room(r: _Reader, table: Mapping[str, Any], key: str) -> str:
    """A device's or server's C{room}: one printable line of text, or "" when not given."""
    if "room" not in table:
        return ""
    room = r.string(table["room"], f"{key}.room", "a room name (text)")
    r.checkName(room, f"{key}.room", "room")
    return room


def _tags(r: _Reader, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A device's or server's C{tags}: distinct, non-empty, printable texts without spaces."""
    if "tags" not in table:
        return ()
    value = table["tags"]
    expected = 'an array of tags, such as ["projector", "floor-2"]'
    if not isinstance(value, list):
        r.fail(f"{key}.tags", f"{expected}, got {_describe(value)}")
    if len(value) > MAX_TAGS:
        r.fail(f"{key}.tags", f"at most {MAX_TAGS} tags, got {len(value)}")
    tags: list[str] = []
    for i, item in enumerate(value):
        where = f"{key}.tags[{i}]"
        tag = r.string(item, where, "a tag (text)")
        if not tag or len(tag) > 64 or any(c.isspace() or not c.isprintable() for c in tag):
            r.fail(where, f"a tag of 1 to 64 characters without spaces, got {tag!r}")
        if tag in tags:
            r.fail(where, f"a tag given once, got {tag!r} again")
        tags.append(tag)
    return tuple(tags)


# the operators' keys: reconnection jitter and backoff, health thresholds, the status token,
# the [program] section


def _retryKeys(
    r: _Reader, table: Mapping[str, Any], key: str, connectRetryTime: float
) -> tuple[float, float | None]:
    """A device's C{retryJitter} (a fraction) and C{maxRetryTime} (seconds, or None)."""
    jitter = r.optional(table, key, "retryJitter", r.fraction, "a fraction from 0 to 1", 0.1)
    cap = r.optional(table, key, "maxRetryTime", r.seconds, "seconds", None)
    if cap is not None and cap < connectRetryTime:
        r.fail(
            f"{key}.maxRetryTime",
            f"at least connectRetryTime ({connectRetryTime:g} s), got {cap:g}",
        )
    return jitter, cap


_HEALTH_KEYS = ("warningMisses", "errorAfter", "outageSummary")


def _health(r: _Reader, value: Any, key: str, base: HealthConfig | None) -> HealthConfig:
    """A C{[health]} table (or a device's C{health}); keys it leaves out keep C{base}'s."""
    table = r.table(value, key)
    r.known(table, key, _HEALTH_KEYS)
    base = base or HealthConfig()
    misses = r.optional(
        table, key, "warningMisses", r.count, "a whole number of sends (>= 1)", base.warningMisses
    )
    errorAfter = base.errorAfter
    if "errorAfter" in table:
        errorAfter = r.nonNegative(table["errorAfter"], f"{key}.errorAfter", "seconds (>= 0)")
    summary = r.optional(table, key, "outageSummary", r.seconds, "seconds", base.outageSummary)
    return HealthConfig(misses, errorAfter, summary)


def _statusHosts(r: _Reader, value: Any) -> tuple[str, ...]:
    """C{[status] hosts}: host names (no port, no scheme) the status port also answers to."""
    if not isinstance(value, list):
        r.fail("status.hosts", "a list of host names")
    names: list[Any] = value
    hosts = []
    for i, name in enumerate(names):
        key = f"status.hosts[{i}]"
        text = r.string(name, key, "a host name such as av.example.org")
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", text):
            r.fail(key, f"a host name (letters, digits, '.' and '-'), got {text!r}")
        hosts.append(text.lower())
    return tuple(hosts)


def _statusToken(r: _Reader, table: Mapping[str, Any], status: StatusConfig) -> StatusConfig:
    """The C{[status] token}: at least 16 characters (it guards run-time changes)."""
    if "token" not in table:
        return status
    token = r.string(table["token"], "status.token", "text of at least 16 characters")
    if len(token) < 16 or not token.isprintable():
        r.fail("status.token", "printable text of at least 16 characters")
    return StatusConfig(status.listen, status.showPaths, token)


#: Keys of the [program] section; code elsewhere reads the keys of L{ProgramConfig.options}
#: (add a name here and a checker in L{_PROGRAM_OPTION_CHECKS} to extend the section).
PROGRAM_KEYS = ("file", "project", "ports", "hosts", "dante", "addresses", "memoryLimit")
_PROGRAM_OPTION_CHECKS: dict[str, Callable[[_Reader, Any, str], Any]] = {}
#: SSH host-key policies a program's interfaces may default to (reject stays the default).
HOST_KEY_POLICIES = ("reject", "accept-new")


def _hostKeyPolicy(r: _Reader, value: Any, key: str) -> str:
    """C{[program] hostKeyPolicy}: the default of SSH interfaces that pass none (modules)."""
    policy = r.string(value, key, "'reject' or 'accept-new'")
    if policy not in HOST_KEY_POLICIES:
        r.fail(key, f"'reject' or 'accept-new', got {policy!r}")
    return policy


_PROGRAM_OPTION_CHECKS["hostKeyPolicy"] = _hostKeyPolicy
_HOST_KEYS = ("ports", "spEndpoint", "online", "onlineEvery")


def _program(r: _Reader, value: Any, key: str, reactor: Any) -> ProgramConfig:
    table = r.table(value, key)
    r.known(table, key, (*PROGRAM_KEYS, *_PROGRAM_OPTION_CHECKS))
    file = r.optional(table, key, "file", r.string, "the program's path", None)
    ports = _portMap(r, table.get("ports", {}), f"{key}.ports", reactor)
    hosts: dict[str, ProgramHostConfig] = {}
    for alias, host in r.table(table.get("hosts", {}), f"{key}.hosts").items():
        where = f"{key}.hosts.{alias}"
        host = r.table(host, where)
        r.known(host, where, _HOST_KEYS)
        sp = r.optional(host, where, "spEndpoint", r.string, "a client endpoint description", None)
        if sp is not None and reactor is not None:
            checkEndpoint(r, sp, f"{where}.spEndpoint", reactor)
        online = r.optional(host, where, "online", r.string, "a client endpoint description", None)
        if online is not None and reactor is not None:
            checkEndpoint(r, online, f"{where}.online", reactor)
        hosts[alias] = ProgramHostConfig(
            ports=_portMap(r, host.get("ports", {}), f"{where}.ports", reactor),
            spEndpoint=sp,
            online=online,
            onlineEvery=r.optional(host, where, "onlineEvery", r.seconds, "seconds", 10.0),
        )
    dante: dict[str, str] = {}
    for name, endpoint in r.table(table.get("dante", {}), f"{key}.dante").items():
        where = f"{key}.dante.{name}"
        dante[name] = r.string(endpoint, where, "a client endpoint description")
        if reactor is not None:
            checkEndpoint(r, dante[name], where, reactor)
    options = {
        name: check(r, table[name], f"{key}.{name}")
        for name, check in _PROGRAM_OPTION_CHECKS.items()
        if name in table
    }
    project = r.optional(table, key, "project", r.string, "a project folder's path", None)
    if project is not None:
        if file is not None:
            r.fail(f"{key}.project", "either file (a program) or project (a folder), not both")
        if not project.strip():
            r.fail(f"{key}.project", "a project folder's path, got ''")
        # relative to the config file, as its other paths
        project = str(Path(r.source).parent / project) if r.source != "<config>" else project
    addresses = _addresses(r, table.get("addresses", {}), f"{key}.addresses", reactor)
    memoryLimit: int | None = DEFAULT_MEMORY_LIMIT
    if "memoryLimit" in table:
        memoryLimit = _memoryLimit(r, table["memoryLimit"], f"{key}.memoryLimit")
    return ProgramConfig(file, ports, hosts, dante, options, project, addresses, memoryLimit)


def memoryLimitOf(config: ProgramConfig | None) -> int | None:
    """The memory bound of a program run with C{config} (none: the default)."""
    return DEFAULT_MEMORY_LIMIT if config is None else config.memoryLimit


_UNITS = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_MAX_MEMORY_LIMIT = 1024**4


def _memoryLimit(r: _Reader, value: Any, key: str) -> int | None:
    """
    C{[program] memoryLimit}: C{"512 MiB"} (KiB, MiB, GiB, TiB), a number of MiB, or
    C{"off"}; at least L{MIN_MEMORY_LIMIT}.
    """
    expected = (
        f'a size such as "512 MiB" or "2 GiB" (at least {MIN_MEMORY_LIMIT >> 20} MiB), or "off"'
    )
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    if isinstance(value, bool):
        r.fail(key, f"{expected}, got {r.got(value, key)}")
    if isinstance(value, int | float):
        size = float(value) * _UNITS["mib"]
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]iB)\s*", value, re.IGNORECASE)
        if m is None:
            r.fail(key, f"{expected}, got {value[:40]!r}")
        size = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        r.fail(key, f"{expected}, got {r.got(value, key)}")
    if not MIN_MEMORY_LIMIT <= size <= _MAX_MEMORY_LIMIT:
        r.fail(key, f"{expected} and at most 1 TiB, got {value!r}")
    return int(size)


def _addresses(r: _Reader, value: Any, key: str, reactor: Any) -> dict[str, str]:
    """What the program names -> an address, address:port or a client endpoint description."""
    from twisted_ch.project._addresses import AddressProblem, parseName, parseTarget

    found: dict[str, str] = {}
    seen: dict[tuple[str, int | None], str] = {}
    for name, target in r.table(value, key).items():
        where = f'{key}."{name}"'
        try:
            normal = parseName(name)
        except AddressProblem as e:
            r.fail(where, f"a key that is {e}")
        if normal in seen:
            r.fail(where, f"one entry per address; {name!r} is also {seen[normal]!r}")
        seen[normal] = name
        text = r.string(target, where, "an address, address:port or a client endpoint description")
        try:
            parsed = parseTarget(text)
        except AddressProblem as e:
            r.fail(where, str(e))
        if parsed.description is not None and reactor is not None:
            checkEndpoint(r, parsed.description, where, reactor)
        found[name] = text
    return found


def _portMap(r: _Reader, value: Any, key: str, reactor: Any) -> dict[str, str]:
    """Port aliases -> a device path (C{/dev/...}) or a client endpoint description."""
    found: dict[str, str] = {}
    for alias, target in r.table(value, key).items():
        where = f"{key}.{alias}"
        text = r.string(target, where, "a device path such as /dev/ttyUSB0 or an endpoint")
        if not text.strip():
            r.fail(where, "a device path such as /dev/ttyUSB0 or an endpoint, got ''")
        if not text.startswith("/") and reactor is not None:
            checkEndpoint(r, text, where, reactor)
        found[alias] = text
    return found


# escapes

_ESCAPES = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "e": "\x1b", "a": "\a"}


def decodeEscapes(text: str) -> bytes:
    r"""
    Bytes from text with backslash escapes: C{\r \n \t \0 \e (ESC) \\ \xHH}.

    TOML basic strings already turn C{"\r"} into a carriage return; literal strings
    (C{'P\r'}) keep the backslash and are decoded here, so both spellings work.

    @raise ValueError: an unknown escape, or a character above U+00FF.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 2 : i + 4]):
            out.append(chr(int(text[i + 2 : i + 4], 16)))
            i += 4
        else:
            raise ValueError(
                f"unknown escape {text[i : i + 2]!r} at position {i} "
                r"(use \r \n \t \0 \e \\ or \xHH)"
            )
    try:
        return "".join(out).encode("latin-1")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"character {e.object[e.start]!r} at position {e.start} is not a single byte; "
            r"write bytes as \xHH"
        ) from None


def decodeEscapesAt(r: _Reader, text: str, key: str) -> bytes:
    try:
        return decodeEscapes(text)
    except ValueError as e:
        r.fail(key, f"text with escapes: {e}")


# checking values


def _describe(value: object, secret: bool = False) -> str:
    """What a value is (its TOML type, and the value itself unless it is a C{secret})."""
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        dict: "a table",
        list: "an array",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict | list) and not secret else ""
    return f"{kind} {shown}".strip()


def _isSecretKey(key: str) -> bool:
    """Whether the value at C{key} (C{device[0].probe.password}) is a secret."""
    return key.rsplit(".", 1)[-1].strip().lower() in SECRET_KEYS


class _Reader:
    """Checks values, raising L{ConfigError}s that name the source file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source
        #: one object for every equal immutable value of the file (see L{share})
        self._shared: dict[Any, Any] = {}

    def share(self, value: T, *key: object) -> T:
        """
        The first value equal to C{value} (by C{key}, else by its type and itself) that this
        file gave: a fleet's devices share their probe configs, numbers and strings instead of
        holding a copy each (a device of a 50,000-device file holds its own decoded copy).
        Values that cannot be hashed are returned as they are.
        """
        try:
            return self._shared.setdefault(key or (type(value), value), value)  # type: ignore[no-any-return]
        except TypeError:
            return value

    def fail(self, key: str | None, expected: str) -> NoReturn:
        raise ConfigError(self.source, key, f"expected {expected}")

    def known(self, table: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                lower = {a.lower(): a for a in allowed}
                hint = f" (did you mean {lower[name.lower()]!r}?)" if name.lower() in lower else ""
                raise ConfigError(
                    self.source,
                    where,
                    f"unknown key{hint}; known keys here: {', '.join(allowed)}",
                )

    def tables(self, data: Mapping[str, Any], name: str, key: str) -> list[Mapping[str, Any]]:
        if name not in data:
            return []
        value = data[name]
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            self.fail(key, f"an array of tables ([[{name}]]), got {_describe(value)}")
        return list(value)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"a table ([{key}]), got {_describe(value)}")
        return value

    def required(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        check: Callable[[Any, str, str], T],
        expected: str,
    ) -> T:
        if name not in table:
            raise ConfigError(self.source, f"{key}.{name}", f"missing; expected {expected}")
        return check(table[name], f"{key}.{name}", expected)

    def optional(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        check: Callable[[Any, str, str], T],
        expected: str,
        default: T,
    ) -> T:
        if name not in table:
            return default
        return check(table[name], f"{key}.{name}", expected)

    def got(self, value: Any, key: str) -> str:
        """How a wrong value is shown: never the value of a secret key, only its type."""
        return _describe(value, secret=_isSecretKey(key))

    def string(self, value: Any, key: str, expected: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        if len(value) > MAX_TEXT:
            self.fail(key, f"{expected} of at most {MAX_TEXT} characters, got {len(value)}")
        return value

    def checkName(self, name: str, key: str, what: str) -> None:
        """A name shown on the status page and in logs: non-empty, one printable line."""
        if not name.strip():
            self.fail(key, f"a non-empty {what} name")
        if len(name) > 200:
            self.fail(key, f"a {what} name of at most 200 characters, got {len(name)}")
        bad = next((c for c in name if not c.isprintable()), None)
        if bad is not None:
            self.fail(key, f"a {what} name without control characters, got {name!r}")

    def boolean(self, value: Any, key: str, expected: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        return value

    def seconds(self, value: Any, key: str, expected: str) -> float:
        """A period: the API's bounds (L{twisted_ch._checks.period})."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            self.fail(
                key,
                f"a positive number of seconds (at least {MIN_SECONDS:g}), "
                f"got {self.got(value, key)}",
            )
        try:
            return _checks.period(value, key)
        except ValueError as e:
            self.fail(key, f"{MIN_SECONDS:g} to {MAX_SECONDS:g} seconds: {e}")

    def fraction(self, value: Any, key: str, expected: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        return float(value)

    def nonNegative(self, value: Any, key: str, expected: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value < float("inf")
        ):
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        return float(value)

    def count(self, value: Any, key: str, expected: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        maximum = _checks.MAX_DISCONNECT_LIMIT if key.endswith("DisconnectLimit") else None
        if key.endswith("MaxClients"):
            maximum = MAX_MAX_CLIENTS
        try:
            return _checks.count(value, key, maximum=maximum or _checks.MAX_COUNT)
        except ValueError as e:
            self.fail(key, f"{expected}: {e}")

    def port(self, value: Any, key: str, expected: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            self.fail(key, f"{expected}, got {self.got(value, key)}")
        return value

    def interface(self, value: Any, key: str, expected: str) -> str:
        """
        An IP address literal, normalised.  ControlScript's names (C{Any}, C{LAN}, C{AVLAN}) are
        refused: they bind whatever the deployment maps them to (every interface, by default),
        where a configuration file must say which address it means.
        """
        text = self.string(value, key, expected)
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            pass
        if text in ("Any", "LAN", "AVLAN"):
            self.fail(
                key,
                f"an IP address to listen on, got the interface name {text!r}: write "
                "127.0.0.1 (this host only) or 0.0.0.0 (every interface)",
            )
        self.fail(key, f"{expected}, got {text!r}")

    def regex(self, value: Any, key: str) -> bytes:
        text = self.string(value, key, "a regular expression")
        try:
            pattern = text.encode("latin-1")
            re.compile(pattern)
        except UnicodeEncodeError:
            self.fail(key, r"a regular expression of single-byte characters (write \xHH)")
        except re.error as e:
            self.fail(key, f"a valid regular expression: {e}")
        return pattern
