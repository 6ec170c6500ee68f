"""The chandler configuration file: schema, defaults and the error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from twisted_ch.service._config import (
    DEFAULT_STATUS_LISTEN,
    ConfigError,
    DeviceConfig,
    ProbeConfig,
    ServerConfig,
    decodeEscapes,
    loadConfig,
    parseConfig,
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
interface = "0.0.0.0"
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
        ServerConfig("127.0.0.1:9000", 9000, "127.0.0.1", 30.0, 4),
        ServerConfig("panel-server", 9001, "0.0.0.0", 300.0, 64),
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
    ("zero limit", DEVICE + "DisconnectLimit = 0\n", "device[0].DisconnectLimit", "1 to"),
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
        # an endpoint description that names no interface binds loopback, not every interface
        ("tcp:8790", "tcp:8790:interface=127.0.0.1"),
        ("tcp:port=8790", "tcp:port=8790:interface=127.0.0.1"),
        ("tcp:8790:backlog=5", "tcp:8790:backlog=5:interface=127.0.0.1"),
        ("tcp6:8790", "tcp6:8790:interface=\\:\\:1"),
        ("tcp6:8790:50", "tcp6:8790:50:interface=\\:\\:1"),  # tcp6's 2nd part is the backlog
        ("TCP:8790", "TCP:8790:interface=127.0.0.1"),
        # an explicit wildcard is deliberate: kept (the status service warns)
        ("0:8790", "tcp:8790:interface=0.0.0.0"),
        ("tcp:8790:interface=0.0.0.0", "tcp:8790:interface=0.0.0.0"),
        ("tcp:8790:0.0.0.0", "tcp:8790:0.0.0.0"),
        ("tcp6:8790:interface=\\:\\:", "tcp6:8790:interface=\\:\\:"),
        ("tcp6:8790:50:\\:\\:", "tcp6:8790:50:\\:\\:"),
    ],
)
def test_status_addresses(text: str, expected: str | None) -> None:
    assert statusEndpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("tcp:0", "127.0.0.1"),
        ("tcp:port=0", "127.0.0.1"),
        ("0:0", "0.0.0.0"),
        ("tcp:0:interface=0.0.0.0", "0.0.0.0"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_status_addresses_bind_what_they_say(text: str, bound: str) -> None:
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.protocol import Factory

    description = statusEndpoint(text)
    assert description is not None
    port = await serverFromString(reactor, description).listen(Factory()).addTimeout(5, reactor)
    try:
        assert port.getHost().host == bound  # type: ignore[attr-defined]
    finally:
        await port.stopListening()


# servers: an IP address literal, never an interface name that binds every interface


@pytest.mark.parametrize("interface", ["Any", "LAN", "AVLAN", "0", "eth0", "localhost", ""])
def test_server_interface_must_be_an_ip_address(interface: str) -> None:
    with pytest.raises(ConfigError) as info:
        parseConfig({"server": [{"port": 9000, "interface": interface}]}, "s.toml")
    assert info.value.key == "server[0].interface"
    assert "IP address" in str(info.value)


@pytest.mark.parametrize(
    ("interface", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::", "::"), ("0:0::1", "::1")],
)
def test_server_interface_addresses(interface: str, expected: str) -> None:
    config = parseConfig({"server": [{"port": 9000, "interface": interface}]})
    assert config.servers[0].interface == expected


def test_server_interface_defaults_to_loopback() -> None:
    (server,) = parseConfig({"server": [{"port": 9000}]}).servers
    assert server.interface == "127.0.0.1"


def test_a_wildcard_server_clashes_with_any_address_on_its_port() -> None:
    servers = [{"port": 9000}, {"port": 9000, "interface": "0.0.0.0"}]
    with pytest.raises(ConfigError, match="also server\\[0\\]") as info:
        parseConfig({"server": servers})
    assert info.value.key == "server[1].port"
    servers[1]["interface"] = "127.0.0.2"
    parseConfig({"server": servers})


# names: one namespace for devices and servers


def test_two_servers_named_alike_are_an_error_naming_both() -> None:
    servers = [{"name": "panel", "port": 9000}, {"name": "panel", "port": 9001}]
    with pytest.raises(ConfigError) as info:
        parseConfig({"server": servers}, "s.toml")
    assert info.value.key == "server[1].name"
    assert "also server[0]" in str(info.value)


def test_a_server_named_like_a_device_is_an_error_naming_both() -> None:
    data = {
        "device": [{"name": "panel", "endpoint": "tcp:host=192.0.2.1:port=23"}],
        "server": [{"name": "panel", "port": 9000}],
    }
    with pytest.raises(ConfigError) as info:
        parseConfig(data, "s.toml")
    assert info.value.key == "server[0].name"
    assert "also device[0]" in str(info.value)


def test_default_server_names_are_unique() -> None:
    servers = [{"port": 0}, {"port": 0}, {"port": 9000}, {"port": 9000, "interface": "::1"}]
    config = parseConfig({"server": servers})
    assert [s.name for s in config.servers] == [
        "server[0]",
        "server[1]",
        "127.0.0.1:9000",
        "[::1]:9000",
    ]


def test_a_default_server_name_taken_by_a_device_says_so() -> None:
    data = {
        "device": [{"name": "server[0]", "endpoint": "tcp:host=192.0.2.1:port=23"}],
        "server": [{"port": 0}],
    }
    with pytest.raises(ConfigError, match="default name of server\\[0\\]") as info:
        parseConfig(data)
    assert info.value.key == "server[0].name"


# secrets never show in an error message

SECRET = "Hunter2-xyzzy"

SECRET_ENDPOINTS = [
    # misspelt, spaced or capitalised option names: not parsed as password=, so not redacted
    f"ssh:127.0.0.1:22:username=admin:pasword={SECRET}",
    f"ssh:127.0.0.1:22:username=admin: password={SECRET}",
    f"ssh:127.0.0.1:22:username=admin:Password={SECRET}",
    f"ssh:127.0.0.1:22:username=admin:password ={SECRET}",
    # a right password in a description wrong elsewhere
    f"ssh:127.0.0.1:notaport:username=admin:password={SECRET}",
    f"ssh:127.0.0.1:22:username=admin:password={SECRET}:hostKeyPolicy=never",
    f"ssh:127.0.0.1:22:username=admin:passphrase={SECRET}:keys=/nonexistent/{SECRET}",
    # the secret where the parser echoes a value
    f"tcp:host=192.0.2.1:port={SECRET}",
    f"udp:host=192.0.2.1:port={SECRET}",
    f"serial:/dev/null:baudrate={SECRET}",
    f"tcp:host=192.0.2.1:port=23:password={SECRET}",
]


@pytest.mark.parametrize("endpoint", SECRET_ENDPOINTS)
def test_endpoint_errors_show_no_value(endpoint: str) -> None:
    data = {"device": [{"name": "d", "endpoint": endpoint, "probe": "sis"}]}
    with pytest.raises(ConfigError) as info:
        parseConfig(data, "s.toml", reactor)
    message = str(info.value)
    assert info.value.key == "device[0].endpoint"
    assert SECRET not in message, message
    assert SECRET.lower() not in message.lower(), message
    # what is shown instead: the type and the option names
    kind = endpoint.split(":", 1)[0]
    assert f"{kind!r} endpoint" in message, message
    assert "'username'" in message or kind != "ssh", message


def test_an_unescaped_colon_in_a_password_shows_neither_half() -> None:
    endpoint = "ssh:127.0.0.1:22:username=admin:password=Hunter2:Xyzzy99"
    data = {"device": [{"name": "d", "endpoint": endpoint, "probe": "sis"}]}
    with pytest.raises(ConfigError) as info:
        parseConfig(data, "s.toml", reactor)
    message = str(info.value)
    assert "Hunter2" not in message and "Xyzzy99" not in message, message
    assert "3 positional parts" in message and "'password'" in message, message


def test_an_endpoint_without_a_type_is_not_echoed_unless_plain() -> None:
    data = {"device": [{"name": "d", "endpoint": f"password={SECRET}"}]}
    with pytest.raises(ConfigError) as info:
        parseConfig(data, "s.toml")
    assert SECRET not in str(info.value)
    data = {"device": [{"name": "d", "endpoint": "10.0.0.5"}]}
    with pytest.raises(ConfigError, match="'10.0.0.5'"):
        parseConfig(data, "s.toml")


@pytest.mark.parametrize(
    ("probe", "key"),
    [
        ({"type": "pjlink", "password": 73217321}, "password"),
        ({"type": "pjlink", "password": 7321.7321}, "password"),
        ({"type": "pjlink", "password": True}, "password"),
        ({"type": "snmp", "community": 73217321}, "community"),
    ],
)
def test_secret_probe_values_of_the_wrong_type_are_not_shown(
    probe: dict[str, Any], key: str
) -> None:
    data = {"device": [{"name": "d", "endpoint": "tcp:host=192.0.2.1:port=23", "probe": probe}]}
    with pytest.raises(ConfigError) as info:
        parseConfig(data, "s.toml")
    message = str(info.value)
    assert info.value.key == f"device[0].probe.{key}"
    assert "7321" not in message and "True" not in message, message
    assert "expected text, got a" in message, message


def test_redacted_status_endpoints_hide_secret_looking_options() -> None:
    from twisted_ch.service._config import redactEndpoint

    assert redactEndpoint("ssh:h:22:username=a:Password=x\\:y:port=2") == (
        "ssh:h:22:username=a:Password=***:port=2"
    )
    assert redactEndpoint("snmp:h:community=c") == "snmp:h:community=***"
    assert redactEndpoint("tcp:host=h:port=23") == "tcp:host=h:port=23"


# timing values have a floor


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"pollFrequency": 0.009}, "device[0].pollFrequency"),
        ({"connectRetryTime": 0.001}, "device[0].connectRetryTime"),
        ({"connectTimeout": 0.0099}, "device[0].connectTimeout"),
        ({"probe": {"type": "sis", "timeout": 1e-9}}, "device[0].probe.timeout"),
    ],
)
def test_device_timing_values_have_a_minimum(table: dict[str, Any], key: str) -> None:
    device = {"name": "d", "endpoint": "tcp:host=192.0.2.1:port=23", **table}
    with pytest.raises(ConfigError) as info:
        parseConfig({"device": [device]}, "s.toml")
    assert info.value.key == key
    assert "at least 0.01 seconds" in str(info.value)


def test_server_timeout_has_a_minimum() -> None:
    with pytest.raises(ConfigError) as info:
        parseConfig({"server": [{"port": 9000, "serverTimeout": 0.001}]}, "s.toml")
    assert info.value.key == "server[0].serverTimeout"
    assert "at least 0.01 seconds" in str(info.value)


def test_the_minimum_itself_is_accepted() -> None:
    device = {
        "name": "d",
        "endpoint": "tcp:host=192.0.2.1:port=23",
        "pollFrequency": 0.05,
        "connectRetryTime": 0.05,
        "connectTimeout": 0.05,
        "probe": {"type": "sis", "timeout": 0.05},
    }
    config = parseConfig({"device": [device], "server": [{"port": 0, "serverTimeout": 0.05}]})
    assert config.devices[0].pollFrequency == 0.05
    assert config.servers[0].serverTimeout == 0.05


def test_config_error_fields() -> None:
    e: Any = ConfigError("f.toml", "device[0].name", "expected text")
    assert (e.source, e.key, e.problem) == ("f.toml", "device[0].name", "expected text")
    assert str(e) == "f.toml: device[0].name: expected text"


# hardening (issue 11): values that can never work, secrets however spelled


@pytest.mark.parametrize(
    ("device", "key", "expected"),
    [
        (
            {"endpoint": "tcp:host=127.0.0.1:port=99999"},
            "device[0].endpoint",
            "port must be 1-65535",
        ),
        ({"endpoint": "tcp:127.0.0.1:-5"}, "device[0].endpoint", "port must be 1-65535"),
        ({"endpoint": "tcp6:host=\\:\\:1:port=70000"}, "device[0].endpoint", "port"),
        ({"endpoint": "tcp:host=:port=23"}, "device[0].endpoint", "host must not be empty"),
        ({"endpoint": "tcp:host=a\x00b:port=23"}, "device[0].endpoint", "must not contain"),
        ({"endpoint": "ssh:a\x00b:22:username=x"}, "device[0].endpoint", "must not contain"),
        ({"endpoint": "tcp:127.0.0.1:23\\"}, "device[0].endpoint", "lone backslash"),
        ({"pollFrequency": 1e308}, "device[0].pollFrequency", "at most 86400"),
        ({"connectRetryTime": 1e300}, "device[0].connectRetryTime", "at most 86400"),
        ({"DisconnectLimit": 10**22}, "device[0].DisconnectLimit", "at most 1000000"),
        ({"name": "two\nlines"}, "device[0].name", "without control characters"),
        ({"name": "x" * 201}, "device[0].name", "at most 200"),
        ({"endpoint": "tcp:h:1:" + "x" * 5000}, "device[0].endpoint", "at most 4096"),
    ],
)
def test_values_that_can_never_work_are_refused_naming_the_key(
    device: dict[str, Any], key: str, expected: str
) -> None:
    from twisted.internet import reactor

    table = {"name": "d", "endpoint": "tcp:host=127.0.0.1:port=23", **device}
    with pytest.raises(ConfigError) as info:
        parseConfig({"device": [table]}, "site.toml", reactor)
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"site.toml: {key}: ")
    assert expected in str(info.value)
    assert "StopIteration" not in str(info.value)


def test_a_server_without_MaxClients_gets_the_documented_default() -> None:
    from twisted_ch.service._config import DEFAULT_MAX_CLIENTS

    config = parseConfig({"server": [{"port": 9000}]}, "s.toml")
    assert config.servers[0].MaxClients == DEFAULT_MAX_CLIENTS == 64
    with pytest.raises(ConfigError, match="1 to 100000"):
        parseConfig({"server": [{"port": 9000, "MaxClients": 10**9}]}, "s.toml")


@pytest.mark.parametrize(
    "spelling",
    [
        "password",
        "pass\\word",
        "\\password",
        "Pass\\Word",
        "passphrase",
        "pass\\phrase",
        "community",
        "commun\\ity",
        " password",
    ],
)
def test_redaction_works_on_the_option_names_twisted_reads(spelling: str) -> None:
    from twisted.internet.endpoints import _parse  # type: ignore[attr-defined]

    from twisted_ch.service._config import redactEndpoint

    description = f"ssh:192.0.2.1:22:username=admin:{spelling}=SECRET\\:x"
    _args, options = _parse(description)
    assert "SECRET:x" in options.values()  # Twisted reads the value under some name
    shown = redactEndpoint(description)
    assert "SECRET" not in shown and "***" in shown
    assert shown.startswith("ssh:192.0.2.1:22:username=admin:")


def test_paths_are_hidden_unless_asked_for() -> None:
    from twisted_ch.service._config import redactEndpoint

    description = "ssh:h:22:username=a:keys=/k/id:knownHosts=/etc/kh:agent=/run/agent.sock"
    shown = redactEndpoint(description)
    assert "/k/id" not in shown and "/etc/kh" not in shown and "/run/agent" not in shown
    assert shown.count("<path>") == 3
    assert redactEndpoint(description, showPaths=True) == description
    config = parseConfig({"status": {"showPaths": True}}, "s.toml")
    assert config.status.showPaths


def test_a_send_probe_can_mark_its_payload_secret() -> None:
    from twisted_ch.service.probes import makeProbe

    config = parseConfig(
        {
            "device": [
                {
                    "name": "d",
                    "endpoint": "tcp:h:1",
                    "probe": {"send": "PIN 1234\\r", "expect": "OK", "secret": True},
                }
            ]
        },
        "s.toml",
    )
    probe = config.devices[0].probe
    assert probe is not None
    made = makeProbe(probe.kind, probe.options)
    assert "1234" not in repr(made) and "1234" not in str(made.describe())
    assert made.describe()["send"] == "***"


def test_status_listen_errors_name_the_file_and_show_what_was_written() -> None:
    from twisted.internet import reactor

    with pytest.raises(ConfigError) as info:
        parseConfig({"status": {"listen": "tcp:notaport"}}, "site.toml", reactor)
    text = str(info.value)
    assert text.startswith("site.toml: status.listen: ")
    assert "'tcp:notaport'" in text and "interface=" not in text


def test_no_spelling_twisted_reads_as_a_secret_option_shows_its_value() -> None:
    """Adversarial spellings: escapes anywhere in the name, any case, escaped colons in values."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from twisted.internet.endpoints import _parse  # type: ignore[attr-defined]

    from twisted_ch.service._config import isSecretOption, redactEndpoint

    @st.composite
    def spelled(draw: st.DrawFn) -> str:
        word = draw(st.sampled_from(["password", "passphrase", "community", "secret", "token"]))
        out = []
        for c in word:
            c = c.upper() if draw(st.booleans()) else c
            out.append("\\" + c if draw(st.integers(0, 3)) == 0 else c)
        return "".join(out)

    value = st.text(alphabet="ab:=\\x", min_size=0, max_size=8)

    @settings(max_examples=300, deadline=None)
    @given(spelled(), value, st.booleans())
    def check(name: str, tail: str, first: bool) -> None:
        escaped = tail.replace("\\", "\\\\").replace(":", "\\:")
        secret = "ZZsecretZZ" + escaped
        option = f"{name}={secret}"
        parts = [option, "username=admin"] if first else ["username=admin", option]
        description = "ssh:192.0.2.1:22:" + ":".join(parts)
        _args, options = _parse(description)
        read = [k for k in options if isSecretOption(k)]
        assert read, (description, options)  # Twisted reads it under a secret name
        assert "ZZsecretZZ" not in redactEndpoint(description)

    check()


def test_a_config_that_is_a_device_a_fifo_or_too_large_is_one_error(tmp_path: Path) -> None:
    import os

    from twisted_ch.service import _config

    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="a character device, not a regular file"):
        loadConfig(link)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="a FIFO, not a regular file"):  # and no hang
        loadConfig(fifo)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (_config.MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="more than the") as info:
        loadConfig(big)
    assert str(info.value).count(str(big)) == 1  # named once, not twice


def test_toml_nested_without_end_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        loadConfig(path)


def test_status_hosts_are_names_the_status_port_also_answers_to(tmp_path: Path) -> None:
    config = loadConfig(write(tmp_path, '[status]\nhosts = ["AV.example.org", "rack-1"]\n'))
    assert config.status.hosts == ("av.example.org", "rack-1")
    for bad, key in (('"x"', "status.hosts"), ('["http://x"]', "status.hosts[0]")):
        with pytest.raises(ConfigError, match=key.replace("[", r"\[")):
            loadConfig(write(tmp_path, f"[status]\nhosts = {bad}\n"))
