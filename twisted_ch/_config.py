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
    port = 9000                         # interface defaults to 127.0.0.1
    serverTimeout = 30

Every mistake raises one L{ConfigError} naming the file, the key (C{device[1].pollFrequency},
counting tables from 0) and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

__all__ = [
    "Config",
    "ConfigError",
    "DeviceConfig",
    "ProbeConfig",
    "ServerConfig",
    "StatusConfig",
    "DEFAULT_STATUS_LISTEN",
    "decodeEscapes",
    "loadConfig",
    "redactEndpoint",
    "parseConfig",
    "statusEndpoint",
]

#: Where the status page listens unless told otherwise: loopback only.
DEFAULT_STATUS_LISTEN = "tcp:8790:interface=127.0.0.1"

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


@dataclass(frozen=True)
class ProbeConfig:
    """A stock keep-alive probe (see L{twisted_ch.probes}) and its constructor's options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
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

    @property
    def endpointType(self) -> str:
        """The endpoint string's prefix (C{tcp}, C{udp}, C{serial}, C{ssh}, ...)."""
        return endpointType(self.endpoint)


@dataclass(frozen=True)
class ServerConfig:
    """A TCP server whose idle clients are disconnected (ServerExHandler)."""

    name: str
    port: int
    interface: str = "127.0.0.1"
    serverTimeout: float = 300.0
    MaxClients: int | None = None


@dataclass(frozen=True)
class StatusConfig:
    """The status page's listening endpoint (None: no status page)."""

    listen: str | None = DEFAULT_STATUS_LISTEN


@dataclass(frozen=True)
class Config:
    """A whole configuration file."""

    source: str
    devices: tuple[DeviceConfig, ...] = ()
    servers: tuple[ServerConfig, ...] = ()
    status: StatusConfig = field(default_factory=StatusConfig)


def endpointType(description: str) -> str:
    """The type of an endpoint description: the text before its first colon, lower-cased."""
    return description.split(":", 1)[0].strip().lower()


_SECRET_OPTIONS = re.compile(r"(?i)(?<![^:])((?:password|passphrase)=)(?:\\.|[^:\\])*")


def redactEndpoint(description: str) -> str:
    """An endpoint description with its secrets (C{password=}, C{passphrase=}) replaced by ***."""
    return _SECRET_OPTIONS.sub(r"\1***", description)


def statusEndpoint(text: str) -> str | None:
    """
    Turn a status address into a server endpoint description.

    C{8790} and C{HOST:8790} become C{tcp:...} descriptions (C{8790} alone binds 127.0.0.1);
    C{off}/C{none} disable the page; anything else is taken as an endpoint description.

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
        return f"tcp:{int(port)}:interface={host.replace(':', chr(92) + ':')}"
    return text


_KNOWN_SERVER_TYPES = frozenset({"tcp", "tcp6", "ssl", "unix", "systemd", "tls"})


# reading

_TOP = ("device", "server", "status")
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
)
_INTERFACE = "an IP address to listen on (or 'Any')"
_SERVER_KEYS = ("name", "port", "interface", "serverTimeout", "MaxClients")
_STATUS_KEYS = ("listen",)

#: Options each stock probe accepts (beyond C{type}), with the checker for each.
_PROBE_OPTIONS: dict[str, tuple[str, ...]] = {
    "sis": ("query", "expect", "timeout"),
    "pjlink": ("password", "timeout"),
    "snmp": ("community", "version", "timeout"),
    "send": ("send", "expect", "timeout"),
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
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(source, None, f"cannot read the file: {e.strerror or e}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(source, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, None, f"invalid TOML: {e}") from None
    return parseConfig(data, source, reactor)


def parseConfig(data: Mapping[str, Any], source: str = "<config>", reactor: Any = None) -> Config:
    """Check already-decoded TOML data (see L{loadConfig})."""
    r = _Reader(source)
    r.known(data, "", _TOP)
    devices = tuple(
        _device(r, table, f"device[{i}]")
        for i, table in enumerate(r.tables(data, "device", "device"))
    )
    names: dict[str, int] = {}
    for i, d in enumerate(devices):
        if d.name in names:
            r.fail(
                f"device[{i}].name", f"a unique name; {d.name!r} is also device[{names[d.name]}]"
            )
        names[d.name] = i
    servers = tuple(
        _server(r, table, f"server[{i}]")
        for i, table in enumerate(r.tables(data, "server", "server"))
    )
    ports: dict[tuple[str, int], int] = {}
    for i, s in enumerate(servers):
        key = (s.interface, s.port)
        if s.port and key in ports:
            r.fail(f"server[{i}].port", f"a free port; {s.port} is also server[{ports[key]}]")
        ports[key] = i
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
    if reactor is not None:
        for i, d in enumerate(devices):
            checkEndpoint(r, d.endpoint, f"device[{i}].endpoint", reactor)
    return Config(source, devices, servers, status)


def checkEndpoint(r: _Reader, description: str, key: str, reactor: Any) -> None:
    """Parse an endpoint description with the installed string parsers."""
    from twisted.internet.endpoints import clientFromString

    try:
        clientFromString(reactor, description)
    except Exception as e:
        text = str(e) or type(e).__name__
        if text.startswith("Unknown endpoint type"):
            text += " (no endpoint parser plugin for it is installed)"
        shown = redactEndpoint(description)
        r.fail(key, f"a client endpoint description; {shown!r} is not one: {text}")


def _device(r: _Reader, table: Mapping[str, Any], key: str) -> DeviceConfig:
    r.known(table, key, _DEVICE_KEYS)
    name = r.required(table, key, "name", r.string, "a device name (text)")
    if not name.strip():
        r.fail(f"{key}.name", "a non-empty device name")
    endpoint = r.required(
        table,
        key,
        "endpoint",
        r.string,
        "a client endpoint description such as 'tcp:host=192.0.2.10:port=23'",
    )
    if ":" not in endpoint:
        r.fail(
            f"{key}.endpoint",
            f"a client endpoint description such as 'tcp:host=192.0.2.10:port=23', "
            f"got {redactEndpoint(endpoint)!r}",
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
    pollFrequency = r.optional(table, key, "pollFrequency", r.seconds, "seconds (> 0)", 1.0)
    probe = (
        _probe(r, table.get("probe"), f"{key}.probe", pollFrequency) if "probe" in table else None
    )
    if probe is None and connection == "pipe":
        r.fail(
            f"{key}.probe",
            "a keep-alive probe: a pipe (udp, serial) connection's state comes only from it",
        )
    timeout = r.optional(table, key, "connectTimeout", r.seconds, "seconds (> 0)", None)
    return DeviceConfig(
        name=name,
        endpoint=endpoint,
        connection=connection,
        probe=probe,
        DisconnectLimit=r.optional(
            table, key, "DisconnectLimit", r.count, "a whole number of polls (>= 1)", 15
        ),
        pollFrequency=pollFrequency,
        connectRetryTime=r.optional(table, key, "connectRetryTime", r.seconds, "seconds", 5.0),
        AutoReconnect=r.optional(table, key, "AutoReconnect", r.boolean, "true or false", True),
        connectTimeout=timeout,
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
        table, key, "timeout", r.seconds, "seconds (> 0)", min(2.0, pollFrequency)
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
    return ProbeConfig(kind, options)


def _server(r: _Reader, table: Mapping[str, Any], key: str) -> ServerConfig:
    r.known(table, key, _SERVER_KEYS)
    port = r.required(table, key, "port", r.port, "a TCP port number (0-65535)")
    name = r.optional(table, key, "name", r.string, "text", f"server:{port}")
    return ServerConfig(
        name=name,
        port=port,
        interface=r.optional(table, key, "interface", r.interface, _INTERFACE, "127.0.0.1"),
        serverTimeout=r.optional(table, key, "serverTimeout", r.seconds, "seconds (> 0)", 300.0),
        MaxClients=r.optional(
            table, key, "MaxClients", r.count, "a whole number of clients (>= 1)", None
        ),
    )


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


def _describe(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        dict: "a table",
        list: "an array",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict | list) else ""
    return f"{kind} {shown}".strip()


class _Reader:
    """Checks values, raising L{ConfigError}s that name the source file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

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

    def string(self, value: Any, key: str, expected: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"{expected}, got {_describe(value)}")
        return value

    def boolean(self, value: Any, key: str, expected: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"{expected}, got {_describe(value)}")
        return value

    def seconds(self, value: Any, key: str, expected: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            self.fail(key, f"a positive number of seconds, got {_describe(value)}")
        if value == float("inf"):
            self.fail(key, "a finite number of seconds, got inf")
        return float(value)

    def count(self, value: Any, key: str, expected: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(key, f"{expected}, got {_describe(value)}")
        return value

    def port(self, value: Any, key: str, expected: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            self.fail(key, f"{expected}, got {_describe(value)}")
        return value

    def interface(self, value: Any, key: str, expected: str) -> str:
        text = self.string(value, key, expected)
        if text not in ("Any", "LAN", "AVLAN"):
            try:
                ipaddress.ip_address(text)
            except ValueError:
                self.fail(key, f"{expected}, got {text!r}")
        return text

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
