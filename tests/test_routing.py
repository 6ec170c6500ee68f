"""GetConnectionHandler picks the manual's handler class for every interface row."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch import (
    GetConnectionHandler,
    ModuleVersion,
    RawSimplePipeHandler,
    RawTcpHandler,
)
from twisted_ch.extronlib.device import ProcessorDevice, SPDevice
from twisted_ch.extronlib.interface import (
    DanteInterface,
    EthernetClientInterface,
    EthernetServerInterface,
    EthernetServerInterfaceEx,
    SerialInterface,
    SPInterface,
)
from twisted_ch.testing import FakeEndpoint


def keepAlive(h: Any) -> None:
    h.Send("P")


def test_module_version() -> None:
    assert ModuleVersion() == "2.3.0"


def test_raw_rows_of_the_table() -> None:
    clock = Clock()

    def ep() -> FakeEndpoint:
        return FakeEndpoint(clock)

    host = ProcessorDevice("Main", ports={"COM1": "/dev/null"})
    sp = SPDevice("SP", spEndpoint="tcp:127.0.0.1:1")
    rows: list[tuple[Any, type]] = [
        (DanteInterface("Amp", endpoint=ep(), reactor=clock), RawTcpHandler),
        (
            EthernetClientInterface(
                "h", 22, "SSH", Credentials=("u", "p"), endpoint=ep(), reactor=clock
            ),
            RawTcpHandler,
        ),
        (EthernetClientInterface("h", 23, "TCP", endpoint=ep(), reactor=clock), RawTcpHandler),
        (
            EthernetClientInterface("h", 5000, "UDP", endpoint=ep(), reactor=clock),
            RawSimplePipeHandler,
        ),
        (SerialInterface(host, "COM1", endpoint=ep(), reactor=clock), RawSimplePipeHandler),
        (SPInterface(sp, endpoint=ep(), reactor=clock), RawSimplePipeHandler),
    ]
    for interface, expected in rows:
        handler = GetConnectionHandler(interface, keepAlive)
        assert type(handler) is expected, interface
        assert handler.Interface is interface


def test_server_rows() -> None:
    from twisted_ch._server import ServerExHandler

    assert type(GetConnectionHandler(EthernetServerInterfaceEx(0), serverTimeout=30)) is (
        ServerExHandler
    )
    with pytest.raises(TypeError, match="EthernetServerInterface is not supported"):
        GetConnectionHandler(EthernetServerInterface(0))
    with pytest.raises(TypeError, match="UDP"):
        GetConnectionHandler(EthernetServerInterfaceEx(0, Protocol="UDP"))


def test_other_ethernet_protocols_are_ValueErrors() -> None:
    clock = Clock()
    with pytest.raises(ValueError, match="Protocol must be one of TCP, UDP or SSH"):
        EthernetClientInterface("h", 23, "FTP", reactor=clock)

    class Odd(EthernetClientInterface):  # a derived interface reporting another protocol
        @property
        def Protocol(self) -> str:
            return "HTTP2"

    odd = Odd("h", 23, endpoint=FakeEndpoint(clock), reactor=clock)
    with pytest.raises(ValueError, match="Unsupported Ethernet protocol type: 'HTTP2'"):
        GetConnectionHandler(odd, keepAlive)


@pytest.mark.parametrize(
    ("kw", "exc", "text"),
    [
        ({"keepAliveQuery": 5}, ValueError, "must be the name of an Update function"),
        ({"DisconnectLimit": 0}, ValueError, "DisconnectLimit must be at least 1"),
        ({"DisconnectLimit": 2.5}, TypeError, "DisconnectLimit must be an int"),
        ({"pollFrequency": 0}, ValueError, "pollFrequency must be positive"),
        ({"pollFrequency": "1"}, TypeError, "pollFrequency must be a number"),
        ({"connectRetryTime": -1}, ValueError, "connectRetryTime must be positive"),
        ({"keepAliveQueryQualifier": [1]}, TypeError, "keepAliveQueryQualifier must be a dict"),
    ],
)
def test_bad_arguments(kw: dict[str, Any], exc: type, text: str) -> None:
    clock = Clock()
    iface = EthernetClientInterface("h", 23, endpoint=FakeEndpoint(clock), reactor=clock)
    kw.setdefault("keepAliveQuery", keepAlive)
    with pytest.raises(exc, match=text):
        GetConnectionHandler(iface, **kw)


def test_dante_and_sp_have_no_SendAndWait() -> None:
    clock = Clock()
    dante = GetConnectionHandler(
        DanteInterface("Amp", endpoint=FakeEndpoint(clock), reactor=clock), keepAlive
    )
    with pytest.raises(AttributeError, match="SendAndWait"):
        dante.SendAndWait("x", 1)
    sp = SPInterface(
        SPDevice("SP", spEndpoint="tcp:127.0.0.1:1"), endpoint=FakeEndpoint(clock), reactor=clock
    )
    with pytest.raises(AttributeError, match="SendAndWait"):
        GetConnectionHandler(sp, keepAlive).SendAndWait("x", 1)


def test_interface_argument_errors() -> None:
    clock = Clock()
    with pytest.raises(TypeError, match="IPPort must be an int"):
        EthernetClientInterface("h", "23", reactor=clock)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IPPort must be 1-65535"):
        EthernetClientInterface("h", 70000, reactor=clock)
    # an SSH interface without Credentials is accepted (Global Scripter modules pass None);
    # its connect attempts fail with a MissingCredentials reason (tests/test_extronlib_interface.py)
    with pytest.raises(TypeError, match="Credentials must be a"):
        EthernetClientInterface("h", 22, "SSH", Credentials="admin", reactor=clock)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hostKeyPolicy"):
        EthernetClientInterface(
            "h", 22, "SSH", Credentials=("a", "b"), hostKeyPolicy="yes", reactor=clock
        )
    with pytest.raises(ValueError, match="Protocol 'Extron' only"):
        DanteInterface("Amp", "Telnet", reactor=clock)
    with pytest.raises(ValueError, match="no spEndpoint"):
        SPInterface(SPDevice("SP"), reactor=clock)
