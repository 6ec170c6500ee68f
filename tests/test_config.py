"""The chandler configuration file: schema, defaults and the error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor

from twisted_ch._config import (
    DEFAULT_STATUS_LISTEN,
    ConfigError,
    DeviceConfig,
    ProbeConfig,
    ServerConfig,
    decodeEscapes,
    loadConfig,
    statusEndpoint,
)

EXAMPLE = r"""
[status]
listen = "127.0.0.1:9100"

[[device]]
name = "switcher"
endpoint = "tcp:host=192.0.2.10:port=23"
probe = { type = "sis", query = "N" }
pollFrequency = 5
DisconnectLimit = 3
connectRetryTime = 2.5
AutoReconnect = false
connectTimeout = 4

[[device]]
name = "projector"
endpoint = "tcp:host=192.0.2.20:port=4352"
probe = { type = "pjlink", password = "secret" }

[[device]]
name = "ups"
endpoint = "udp:host=192.0.2.30:port=161"
probe = { type = "snmp", community = "site-ro", version = "1", timeout = 0.5 }
pollFrequency = 10

[[device]]
name = "display"
endpoint = "serial:/dev/ttyUSB0:baudrate=9600"
pollFrequency = 0.5
[device.probe]
send = '\x02PWR?\x03'
expect = 'PWR=[01]\r'

[[device]]
name = "codec"
endpoint = "tcp:host=192.0.2.40:port=23"

[[server]]
port = 9000
serverTimeout = 30
MaxClients = 4

[[server]]
name = "panel-server"
port = 9001
interface = "Any"
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file(tmp_path: Path) -> None:
    config = loadConfig(write(tmp_path, EXAMPLE), reactor)
    switcher, projector, ups, display, codec = config.devices
    assert switcher == DeviceConfig(
        name="switcher",
        endpoint="tcp:host=192.0.2.10:port=23",
        connection="stream",
        probe=ProbeConfig("sis", {"timeout": 2.0, "query": b"N"}),
        DisconnectLimit=3,
        pollFrequency=5.0,
        connectRetryTime=2.5,
        AutoReconnect=False,
        connectTimeout=4.0,
    )
    assert projector.probe == ProbeConfig("pjlink", {"timeout": 1.0, "password": "secret"})
    assert (projector.DisconnectLimit, projector.pollFrequency, projector.AutoReconnect) == (
        15,
        1.0,
        True,
    )
    assert ups.connection == "pipe"
    assert ups.probe == ProbeConfig(
        "snmp", {"timeout": 0.5, "community": "site-ro", "version": "1"}
    )
    assert display.connection == "pipe"
    # the probe's timeout defaults to the poll period, at most 2 s
    assert display.probe == ProbeConfig(
        "send", {"timeout": 0.5, "send": b"\x02PWR?\x03", "expect": rb"PWR=[01]\r"}
    )
    assert codec.probe is None and codec.connection == "stream"
    assert config.servers == (
        ServerConfig("server:9000", 9000, "127.0.0.1", 30.0, 4),
        ServerConfig("panel-server", 9001, "Any", 300.0, None),
    )
    assert config.status.listen == "tcp:9100:interface=127.0.0.1"
    assert config.source == str(tmp_path / "site.toml")


def test_empty_file_is_valid_and_listens_on_loopback(tmp_path: Path) -> None:
    config = loadConfig(write(tmp_path, ""))
    assert config.devices == () and config.servers == ()
    assert config.status.listen == DEFAULT_STATUS_LISTEN
    assert "interface=127.0.0.1" in DEFAULT_STATUS_LISTEN


def test_probe_shorthand_and_connection_override(tmp_path: Path) -> None:
    config = loadConfig(
        write(
            tmp_path,
            """
            [[device]]
            name = "a"
            endpoint = "tcp:host=192.0.2.1:port=23"
            probe = "sis"
            connection = "pipe"
            """,
        )
    )
    (device,) = config.devices
    assert device.probe == ProbeConfig("sis", {"timeout": 1.0, "query": b"Q"})
    assert device.connection == "pipe"


DEVICE = '[[device]]\nname = "d"\nendpoint = "tcp:host=192.0.2.1:port=23"\n'

BAD: list[tuple[str, str, str | None, str]] = [
    ("bad TOML", "[[device]\nname = 1", None, "invalid TOML"),
    ("unknown top-level key", "[devices]\n", "devices", "unknown key"),
    (
        "unknown device key",
        DEVICE + "pollfrequency = 2\n",
        "device[0].pollfrequency",
        "pollFrequency",
    ),
    ("wrong type", DEVICE + 'pollFrequency = "fast"\n', "device[0].pollFrequency", "seconds"),
    (
        "bool is not a number",
        DEVICE + "DisconnectLimit = true\n",
        "device[0].DisconnectLimit",
        "boolean",
    ),
    ("zero limit", DEVICE + "DisconnectLimit = 0\n", "device[0].DisconnectLimit", ">= 1"),
    (
        "negative seconds",
        DEVICE + "connectRetryTime = -1\n",
        "device[0].connectRetryTime",
        "positive",
    ),
    ("missing endpoint", '[[device]]\nname = "d"\n', "device[0].endpoint", "missing"),
    ("missing name", '[[device]]\nendpoint = "tcp:host=h:port=1"\n', "device[0].name", "missing"),
    (
        "endpoint without type",
        '[[device]]\nname = "d"\nendpoint = "10.0.0.5"\n',
        "device[0].endpoint",
        "endpoint description",
    ),
    ("duplicate name", DEVICE + DEVICE, "device[1].name", "also device[0]"),
    ("device not a table array", 'device = "x"\n', "device", "array of tables"),
    (
        "bad connection",
        DEVICE + 'connection = "packet"\n',
        "device[0].connection",
        '"stream" or "pipe"',
    ),
    (
        "pipe without probe",
        '[[device]]\nname = "u"\nendpoint = "udp:host=192.0.2.1:port=161"\n',
        "device[0].probe",
        "keep-alive probe",
    ),
    ("unknown probe", DEVICE + 'probe = "ping"\n', "device[0].probe.type", '"sis"'),
    (
        "unknown probe option",
        DEVICE + 'probe = { type = "sis", password = "x" }\n',
        "device[0].probe.password",
        "unknown key",
    ),
    (
        "send without expect",
        DEVICE + 'probe = { send = "P" }\n',
        "device[0].probe.expect",
        "regular expression",
    ),
    (
        "bad escape",
        DEVICE + "probe = { send = 'P\\q', expect = 'x' }\n",
        "device[0].probe.send",
        "unknown escape",
    ),
    (
        "bad regex",
        DEVICE + "probe = { send = 'P', expect = 'Pwr[' }\n",
        "device[0].probe.expect",
        "valid regular expression",
    ),
    (
        "bad snmp version",
        DEVICE + 'probe = { type = "snmp", version = "3" }\n',
        "device[0].probe.version",
        '"1" or "2c"',
    ),
    ("server port", "[[server]]\nport = 70000\n", "server[0].port", "0-65535"),
    (
        "server interface",
        '[[server]]\nport = 9000\ninterface = "eth0"\n',
        "server[0].interface",
        "IP address",
    ),
    ("server missing port", "[[server]]\nserverTimeout = 3\n", "server[0].port", "missing"),
    (
        "server port twice",
        "[[server]]\nport = 9000\n[[server]]\nport = 9000\n",
        "server[1].port",
        "also server[0]",
    ),
    ("status listen", '[status]\nlisten = ""\n', "status.listen", "address"),
    ("status unknown key", "[status]\nport = 1\n", "status.port", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_name_the_file_the_key_and_what_was_expected(
    tmp_path: Path, text: str, key: str | None, expected: str
) -> None:
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ConfigError) as info:
        loadConfig(path, reactor)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert info.value.key == key, message
    if key is not None:
        assert f": {key}: " in message, message
    assert expected in message, message


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("bogus:host=x", "Unknown endpoint type"),
        ("tcp:host=192.0.2.1:port=notaport", "not one"),
        ("tcp:host=192.0.2.1:port=23:colour=blue", "not one"),
        ("udp:host=192.0.2.1", "port"),
    ],
)
def test_endpoint_strings_are_parsed_when_a_reactor_is_given(
    tmp_path: Path, endpoint: str, expected: str
) -> None:
    text = f'[[device]]\nname = "d"\nendpoint = "{endpoint}"\nprobe = "sis"\n'
    path = write(tmp_path, text, "ep.toml")
    loadConfig(path)  # without a reactor only the shape is checked
    with pytest.raises(ConfigError) as info:
        loadConfig(path, reactor)
    assert info.value.key == "device[0].endpoint"
    assert expected in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file") as info:
        loadConfig(tmp_path / "missing.toml")
    assert str(tmp_path / "missing.toml") in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        loadConfig(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Q", b"Q"),
        ("P\r", b"P\r"),
        (r"P\r\n", b"P\r\n"),
        (r"\x02PWR\x03", b"\x02PWR\x03"),
        (r"\eCN\r", b"\x1bCN\r"),
        (r"a\\b", b"a\\b"),
        ("\u00e9", b"\xe9"),
    ],
)
def test_escapes(text: str, expected: bytes) -> None:
    assert decodeEscapes(text) == expected


@pytest.mark.parametrize("text", [r"\q", "\\", r"\x1", "\u20ac"])
def test_bad_escapes(text: str) -> None:
    with pytest.raises(ValueError):
        decodeEscapes(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8790", "tcp:8790:interface=127.0.0.1"),
        ("127.0.0.1:8790", "tcp:8790:interface=127.0.0.1"),
        ("0.0.0.0:80", "tcp:80:interface=0.0.0.0"),
        ("[::1]:8790", "tcp:8790:interface=\\:\\:1"),
        ("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"),
        ("unix:/run/chandler.sock", "unix:/run/chandler.sock"),
        ("off", None),
    ],
)
def test_status_addresses(text: str, expected: str | None) -> None:
    assert statusEndpoint(text) == expected


def test_config_error_fields() -> None:
    e: Any = ConfigError("f.toml", "device[0].name", "expected text")
    assert (e.source, e.key, e.problem) == ("f.toml", "device[0].name", "expected text")
    assert str(e) == "f.toml: device[0].name: expected text"
