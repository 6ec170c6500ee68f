"""
L{twisted_ch.endpoints.clientFromString}: Twisted's endpoints from descriptions, without a scan
of the installed plugins on every call.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import endpoints

from twisted_ch.endpoints import _strings, clientFromString

DESCRIPTIONS = [
    "udp:host=127.0.0.1:port=161",
    r"udp:host=127.0.0.1:port=1161:maxDatagram=2048",
    "serial:/dev/ttyUSB0:baudrate=9600",
    "ssh:host=127.0.0.1:port=22:username=admin:knownHosts=/dev/null:command=",
    "tcp:host=127.0.0.1:port=23",
    "unix:path=/tmp/device.sock",
]


def _shape(endpoint: object) -> tuple[type, dict[str, Any]]:
    state = {
        k: v
        for k, v in vars(endpoint).items()
        if isinstance(v, str | bytes | int | float | bool | type(None))
    }
    return type(endpoint), state


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_the_same_endpoint_as_twisteds(description: str) -> None:
    from twisted.internet import reactor

    ours = clientFromString(reactor, description)
    theirs = endpoints.clientFromString(reactor, description)
    assert _shape(ours) == _shape(theirs)


def test_the_plugins_are_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[object] = []
    real = _strings.getPlugins

    def counting(interface: Any, package: Any = None) -> Any:
        scans.append(interface)
        return real(interface) if package is None else real(interface, package)

    monkeypatch.setattr(_strings, "getPlugins", counting)
    monkeypatch.setattr(_strings, "_parsers", {})
    from twisted.internet import reactor

    for port in range(100):
        clientFromString(reactor, f"udp:host=127.0.0.1:port={port + 1}")
        clientFromString(reactor, f"serial:/dev/ttyS{port}")
    assert len(scans) == 1
    clientFromString(reactor, "tcp:host=127.0.0.1:port=23")  # Twisted's own: no scan
    assert len(scans) == 1


def test_an_unknown_type_scans_again_and_fails_as_twisted_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scans: list[object] = []
    real = _strings.getPlugins
    monkeypatch.setattr(_strings, "getPlugins", lambda i: scans.append(i) or real(i))
    from twisted.internet import reactor

    with pytest.raises(ValueError) as theirs:
        endpoints.clientFromString(reactor, "carrier-pigeon:host=roof")
    with pytest.raises(ValueError) as ours:
        clientFromString(reactor, "carrier-pigeon:host=roof")
    assert str(ours.value) == str(theirs.value)
    assert scans  # looked again: a plugin may have been installed since


def test_bad_options_raise_what_twisted_raises() -> None:
    from twisted.internet import reactor

    for description in ("udp:host=127.0.0.1", "udp:host=127.0.0.1:port=x", "serial:"):
        with pytest.raises(Exception) as theirs:
            endpoints.clientFromString(reactor, description)
        with pytest.raises(Exception) as ours:
            clientFromString(reactor, description)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)
