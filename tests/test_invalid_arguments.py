"""
A table of invalid arguments to every public call: each raises one clear error naming the
argument; and a PollTimer's bounds are its pollFrequency's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import rig
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler, RawSimplePipeHandler, RawTcpHandler
from twisted_ch.extronlib.interface import (
    DanteInterface,
    EndpointInterface,
    EthernetClientInterface,
    EthernetServerInterfaceEx,
)
from twisted_ch.extronlib.software import DanteDomainManager, SummitConnect
from twisted_ch.extronlib.system import Clock as ScheduleClock
from twisted_ch.extronlib.system import Email, Timer, Wait

# -- invalid arguments, everywhere

_clock = Clock()


def _iface() -> EthernetClientInterface:
    return rig(clock=_clock, handler=False).interface


def _handler() -> Any:
    return GetConnectionHandler(_iface(), lambda h: None, reactor=_clock)


def _timer() -> Timer:
    return Timer(1, None, reactor=_clock)


def _gch(**kw: Any) -> Any:
    return GetConnectionHandler(_iface(), None, **kw)


@pytest.mark.parametrize("interval", [-1, 0, 1e-9, 0.009, 0.01, 0.5, 86400, 86400.5, 1e300])
def test_a_handlers_PollTimer_Change_has_the_bounds_of_its_pollFrequency(interval: float) -> None:
    """
    What GetConnectionHandler refuses as pollFrequency, PollTimer.Change refuses too; what it
    accepts, Change sets the same: below 0.1 s, 0.1 s (an extronlib Timer's minimum, issue 20).
    """
    try:
        GetConnectionHandler(_iface(), lambda h: None, pollFrequency=interval, reactor=_clock)
    except ValueError as e:
        refusedBy = str(e)
    else:
        refusedBy = ""
    timer = _handler().PollTimer
    if refusedBy:
        with pytest.raises(ValueError, match=r"^Interval must be (at most|positive)") as info:
            timer.Change(interval)
        assert str(info.value).replace("Interval", "pollFrequency") == refusedBy
        assert timer.Interval == 1
    else:
        timer.Change(interval)
        assert timer.Interval == max(interval, 0.1)


def _gchServer(serverTimeout: float, connectRetryTime: float = 5) -> Any:
    server = EthernetServerInterfaceEx(0, Interface="127.0.0.1", reactor=_clock)
    return GetConnectionHandler(
        server, serverTimeout=serverTimeout, connectRetryTime=connectRetryTime
    )


NAN, INF = float("nan"), float("inf")

# (id, call, exception, the message must match)
BAD_CALLS: list[Any] = [
    # GetConnectionHandler
    ("GCH-limit-0", lambda: _gch(DisconnectLimit=0), ValueError, "DisconnectLimit.*at least 1"),
    ("GCH-limit-str", lambda: _gch(DisconnectLimit="3"), TypeError, "DisconnectLimit.*int.*str"),
    ("GCH-limit-bool", lambda: _gch(DisconnectLimit=True), TypeError, "DisconnectLimit.*bool"),
    ("GCH-limit-float", lambda: _gch(DisconnectLimit=2.5), TypeError, "DisconnectLimit.*float"),
    # issue 11: one set of bounds for config and API
    (
        "GCH-limit-huge",
        lambda: _gch(DisconnectLimit=10**400),
        ValueError,
        "DisconnectLimit.*at most",
    ),
    ("GCH-limit-23", lambda: _gch(DisconnectLimit=10**22), ValueError, "DisconnectLimit.*at most"),
    ("GCH-poll-zero", lambda: _gch(pollFrequency=0), ValueError, "pollFrequency.*positive"),
    ("GCH-poll-1e308", lambda: _gch(pollFrequency=1e308), ValueError, "pollFrequency.*at most"),
    (
        "GCH-retry-1e300",
        lambda: _gch(connectRetryTime=1e300),
        ValueError,
        "connectRetryTime.*at most",
    ),
    ("GCH-retry-big-int", lambda: _gch(connectRetryTime=10**400), ValueError, "connectRetryTime"),
    (
        "auto-no",
        lambda: setattr(_handler(), "AutoReconnect", "no"),
        TypeError,
        "AutoReconnect.*True or False",
    ),
    ("auto-2", lambda: setattr(_handler(), "AutoReconnect", 2), TypeError, "AutoReconnect"),
    ("GCH-poll-0", lambda: _gch(pollFrequency=0), ValueError, "pollFrequency.*positive"),
    ("GCH-poll-neg", lambda: _gch(pollFrequency=-1), ValueError, "pollFrequency.*positive"),
    ("GCH-poll-nan", lambda: _gch(pollFrequency=NAN), ValueError, "pollFrequency"),
    ("GCH-poll-str", lambda: _gch(pollFrequency="1"), TypeError, "pollFrequency.*seconds"),
    ("GCH-retry-0", lambda: _gch(connectRetryTime=0), ValueError, "connectRetryTime.*positive"),
    ("GCH-retry-None", lambda: _gch(connectRetryTime=None), TypeError, "connectRetryTime"),
    ("GCH-qualifier", lambda: _gch(keepAliveQueryQualifier=[1]), TypeError, "must be a dict"),
    ("GCH-query-int", lambda: GetConnectionHandler(_iface(), 5), ValueError, "callable"),
    ("GCH-iface-object", lambda: GetConnectionHandler(object()), TypeError, "'object'.*supported"),
    ("GCH-iface-None", lambda: GetConnectionHandler(None), TypeError, "NoneType.*supported"),
    # handler classes used directly
    ("RawTcp-iface", lambda: RawTcpHandler(object()), TypeError, "not a twisted_ch device"),
    ("RawTcp-query", lambda: RawTcpHandler(_iface(), 15, 1, 5), TypeError, "keepAliveQuery"),
    ("RawPipe-noquery", lambda: RawSimplePipeHandler(_iface(), 15, 1, None), ValueError, "needs"),
    # handler calls
    ("Connect-0", lambda: _handler().Connect(0), ValueError, "timeout.*positive"),
    ("Connect-neg", lambda: _handler().Connect(-1), ValueError, "timeout.*positive"),
    ("Connect-nan", lambda: _handler().Connect(NAN), ValueError, "timeout"),
    ("Connect-str", lambda: _handler().Connect("5"), TypeError, "timeout.*seconds"),
    ("Send-int", lambda: _handler().Send(123), TypeError, "data must be bytes or str"),
    ("Send-None", lambda: _handler().Send(None), TypeError, "data must be bytes or str"),
    ("Send-wide", lambda: _handler().Send("€"), ValueError, "not single bytes"),
    ("event-int", lambda: setattr(_handler(), "Connected", 5), TypeError, "Connected.*callable"),
    ("event-str", lambda: setattr(_handler(), "ReceiveData", "f"), TypeError, "ReceiveData"),
    ("PollTimer-0", lambda: _handler().PollTimer.Change(0), ValueError, "Interval.*positive"),
    # SendAndWait and its conditions
    ("SAW-timeout-str", lambda: _handler().SendAndWait("P", "x"), TypeError, "timeout"),
    ("SAW-timeout-neg", lambda: _handler().SendAndWait("P", -1), ValueError, "negative"),
    ("SAW-data-int", lambda: _handler().SendAndWait(5, 1), TypeError, "data"),
    ("SAW-len-0", lambda: _handler().SendAndWait("P", 1, deliLen=0), ValueError, "deliLen"),
    ("SAW-len-str", lambda: _handler().SendAndWait("P", 1, deliLen="3"), TypeError, "deliLen"),
    ("SAW-len-huge", lambda: _handler().SendAndWait("P", 1, deliLen=10**9), ValueError, "limit"),
    ("SAW-tag-empty", lambda: _handler().SendAndWait("P", 1, deliTag=b""), ValueError, "deliTag"),
    ("SAW-tag-int", lambda: _handler().SendAndWait("P", 1, deliTag=5), TypeError, "deliTag"),
    ("SAW-rex-int", lambda: _handler().SendAndWait("P", 1, deliRex=5), TypeError, "deliRex"),
    (
        "SAW-two-conditions",
        lambda: _handler().SendAndWait("P", 1, deliLen=3, deliTag=b"\r"),
        ValueError,
        "at most one condition",
    ),
    (
        "SAW-unknown-keyword",
        lambda: _handler().SendAndWait("P", 1, delim=b"\r"),
        TypeError,
        "unknown SendAndWait condition delim",
    ),
    # EthernetClientInterface / EndpointInterface
    ("ECI-host-empty", lambda: EthernetClientInterface("", 23), ValueError, "Hostname.*empty"),
    ("ECI-host-int", lambda: EthernetClientInterface(5, 23), TypeError, "Hostname"),
    ("ECI-port-neg", lambda: EthernetClientInterface("h", -1), ValueError, "IPPort.*65535"),
    ("ECI-port-big", lambda: EthernetClientInterface("h", 70000), ValueError, "IPPort"),
    ("ECI-port-str", lambda: EthernetClientInterface("h", "23"), TypeError, "IPPort.*int"),
    ("ECI-proto", lambda: EthernetClientInterface("h", 23, "HTTP"), ValueError, "TCP, UDP or SSH"),
    ("ECI-proto-int", lambda: EthernetClientInterface("h", 23, 5), TypeError, "Protocol"),
    ("ECI-service", lambda: EthernetClientInterface("h", 23, "TCP", -1), ValueError, "ServicePort"),
    (
        "ECI-credentials",
        lambda: EthernetClientInterface("h", 22, "SSH", Credentials="admin"),
        TypeError,
        "Credentials",
    ),
    ("EPI-endpoint", lambda: EndpointInterface(object()), TypeError, "IStreamClientEndpoint"),
    # Timer / Wait / Clock
    ("Timer-0", lambda: Timer(0, None, reactor=_clock), ValueError, "Interval.*positive"),
    ("Timer-str", lambda: Timer("1", None, reactor=_clock), TypeError, "Interval.*seconds"),
    ("Timer-nan", lambda: Timer(NAN, None, reactor=_clock), ValueError, "Interval"),
    ("Timer-func", lambda: Timer(1, 5, reactor=_clock), TypeError, "Function.*callable"),
    ("Timer-Change", lambda: _timer().Change(-1), ValueError, "Interval"),
    ("Timer-Function=", lambda: setattr(_timer(), "Function", 5), TypeError, "callable"),
    ("Wait-neg", lambda: Wait(-1, None, reactor=_clock), ValueError, "Time.*negative"),
    ("Wait-str", lambda: Wait("x", None, reactor=_clock), TypeError, "Time.*seconds"),
    ("Wait-func", lambda: Wait(1, 5, reactor=_clock), TypeError, "Function.*callable"),
    ("Wait-Add", lambda: Wait(1, None, reactor=_clock).Add(-1), ValueError, "negative"),
    ("Wait-decorate", lambda: Wait(1, reactor=_clock)(5), TypeError, "callable"),
    ("Clock-str", lambda: ScheduleClock("12:00:00", reactor=_clock), TypeError, "list"),
    ("Clock-time", lambda: ScheduleClock(["25:00:00"], reactor=_clock), ValueError, "HH:MM:SS"),
    (
        "Clock-day",
        lambda: ScheduleClock(["12:00:00"], ["Funday"], reactor=_clock),
        ValueError,
        "Funday.*Monday",
    ),
    ("Clock-func", lambda: ScheduleClock(["12:00:00"], None, 5, reactor=_clock), TypeError, "call"),
    (
        "Clock-SetDays",
        lambda: ScheduleClock(["12:00:00"], reactor=_clock).SetDays(["x"]),
        ValueError,
        "day",
    ),
    # non-finite numbers, unusable ports and limits, observers and statuses
    ("GCH-poll-inf", lambda: _gch(pollFrequency=INF), ValueError, "pollFrequency"),
    ("GCH-retry-inf", lambda: _gch(connectRetryTime=INF), ValueError, "connectRetryTime"),
    ("GCH-serverTimeout", lambda: _gch(serverTimeout="x"), TypeError, "serverTimeout"),
    ("SAW-timeout-nan", lambda: _handler().SendAndWait("P", NAN), ValueError, "timeout"),
    ("SAW-rex-syntax", lambda: _handler().SendAndWait("P", 1, deliRex="("), ValueError, "deliRex"),
    ("observer-int", lambda: _handler().addStatusObserver(5), TypeError, "callable"),
    ("whenStatus-bogus", lambda: _handler().whenStatus("Bogus"), ValueError, "Connected"),
    ("ECI-port-0", lambda: EthernetClientInterface("h", 0), ValueError, "IPPort"),
    ("ECI-maxResponse", lambda: EthernetClientInterface("h", 23, maxResponse=0), ValueError, "max"),
    ("Timer-inf", lambda: Timer(INF, None, reactor=_clock), ValueError, "Interval"),
    ("Wait-nan", lambda: Wait(NAN, lambda: None, reactor=_clock), ValueError, "Time"),
    ("KeepAlive-nan", lambda: _iface().StartKeepAlive(NAN, "x"), ValueError, "interval"),
    ("Clock-None", lambda: ScheduleClock(None, reactor=_clock), TypeError, "Times"),
    # issue 11 item 8: the config's bounds, also for these
    ("GCH-server-tiny", lambda: _gchServer(0.001), ValueError, "serverTimeout.*at least 0.01"),
    ("GCH-server-huge", lambda: _gchServer(1e6), ValueError, "serverTimeout.*at most 86400"),
    ("GCH-server-retry", lambda: _gchServer(30, 1e-9), ValueError, "connectRetryTime.*at least"),
    ("GCH-serverTimeout-tiny", lambda: _gch(serverTimeout=0.001), ValueError, "serverTimeout"),
    ("ECI-host-NUL", lambda: EthernetClientInterface("a\0b", 23), ValueError, r"Hostname.*\\x00"),
    ("ECI-host-space", lambda: EthernetClientInterface("a b", 23), ValueError, "Hostname.*' '"),
    ("ECI-host-long", lambda: EthernetClientInterface("a" * 256, 23), ValueError, "Hostname.*255"),
    (
        "ECI-SSH-host-NUL",
        lambda: EthernetClientInterface("a\0b", 22, "SSH", Credentials=("u", "p")),
        ValueError,
        "Hostname",
    ),
    ("ECI-UDP-host-empty", lambda: EthernetClientInterface("", 9, "UDP"), ValueError, "Hostname"),
    ("Summit-host-empty", lambda: SummitConnect("", reactor=_clock), ValueError, "Hostname"),
    ("Summit-host-NUL", lambda: SummitConnect("a\0b", reactor=_clock), ValueError, "Hostname"),
    ("Summit-host-int", lambda: SummitConnect(5, reactor=_clock), TypeError, "Hostname.*str"),
    ("DDM-host-NUL", lambda: DanteDomainManager("a\0b", reactor=_clock), ValueError, "Hostname"),
    (
        "Dante-host-NUL",
        lambda: DanteInterface("d", host="a\0b", reactor=_clock),
        ValueError,
        "host",
    ),
    ("Dante-host-empty", lambda: DanteInterface("d", host="", reactor=_clock), ValueError, "host"),
    ("Dante-port", lambda: DanteInterface("d", port=70000, reactor=_clock), ValueError, "port"),
    ("Dante-name", lambda: DanteInterface("a b", reactor=_clock), ValueError, "DeviceName"),
    ("Email-host-NUL", lambda: Email("a\0b", reactor=_clock), ValueError, "smtpServer"),
    (
        "PollTimer-negative",
        lambda: _handler().PollTimer.Change(-1e-9),
        ValueError,
        "Interval.*positive",
    ),
    (
        "PollTimer-huge",
        lambda: _handler().PollTimer.Change(1e300),
        ValueError,
        "Interval.*at most 86400",
    ),
]


@pytest.mark.parametrize(
    ("call", "exception", "message"), [pytest.param(c, e, m, id=i) for i, c, e, m in BAD_CALLS]
)
def test_invalid_arguments_raise_clear_errors(
    call: Callable[[], object], exception: type[Exception], message: str
) -> None:
    try:
        with pytest.raises(exception) as info:
            call()
        assert re.search(message, str(info.value)), str(info.value)
    finally:
        for pending in _clock.getDelayedCalls():  # Timers made by the calls run on this clock
            pending.cancel()
