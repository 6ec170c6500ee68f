# -*- test-case-name: tests.test_differences -*-
"""
README's table of deliberate differences from the reference: each row names the tests that show
twisted_ch's behaviour, and those tests exist (most of them are here, on a Clock).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, tcpHandler
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twisted_ch import GetConnectionHandler
from twisted_ch.extronlib.interface import EthernetClientInterface
from twisted_ch.testing import FakeEndpoint

ROOT = Path(__file__).resolve().parent.parent


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


def answering(**kw: Any) -> tuple[Clock, FakeEndpoint, Any, Recorder, list[Any]]:
    polls: list[Any] = []

    def keepAlive(h: Any) -> None:
        polls.append(h)
        h.Send("P")
        h.ResponseAccepted()

    clock, ep, h, rec = tcpHandler(keepAlive, **kw)
    return clock, ep, h, rec, polls


# --- the table --------------------------------------------------------------------------------


def differencesTable() -> list[str]:
    """The rows of README's deliberate-differences table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Where twisted_ch deliberately differs from the reference")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def namesOfTests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_row_of_the_differences_table_names_tests_that_exist() -> None:
    rows = differencesTable()
    assert len(rows) >= 15
    for row in rows:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row)
        assert named, f"a row names no test: {row}"
        for path, name in named:
            assert name in namesOfTests(ROOT / path), f"{path}::{name} (named in README) not found"


# --- rows shown here --------------------------------------------------------------------------


def test_Connect_on_a_connected_raw_handler_keeps_polling() -> None:
    clock, ep, h, rec, polls = answering()
    assert result(h.Connect()) == "Connected"
    clock.pump([1] * 2)
    assert result(h.Connect()) == "ConnectedAlready"
    before = len(polls)
    clock.pump([1] * 3)
    assert len(polls) == before + 3  # the reference stops polling until the next loss


def test_the_keep_alive_is_not_called_while_the_link_is_down() -> None:
    clock, ep, h, rec, polls = answering(connectRetryTime=5)
    ep.refuse = True
    h.Connect()
    clock.pump([1] * 12)
    assert polls == [] and len(ep.attempts) == 3


def test_AutoReconnect_False_after_a_loss_cancels_the_pending_reconnect() -> None:
    clock, ep, h, rec, polls = answering(connectRetryTime=5)
    h.Connect()
    clock.advance(1)
    assert ep.transport is not None
    ep.transport.deviceResets()
    clock.advance(0)
    h.AutoReconnect = False
    clock.advance(20)
    assert len(ep.attempts) == 1  # the reference reconnects once


def test_events_on_the_wrapped_interface_and_on_the_handler_both_fire() -> None:
    clock, ep, h, rec, polls = answering()
    seen: list[str] = []
    h.Interface.ReceiveData = lambda i, data: seen.append("interface")
    h.ReceiveData = lambda handler, data: seen.append("handler")
    h.Connect()
    ep.respond(b"hello")
    assert sorted(seen) == ["handler", "interface"]


def test_udp_Disconnect_then_Connect_reopens_the_socket() -> None:
    clock = Clock()
    ep = FakeEndpoint(clock)
    iface = EthernetClientInterface("192.0.2.1", 5000, Protocol="UDP", reactor=clock, endpoint=ep)
    h = GetConnectionHandler(iface, lambda h: h.Send("P"), connectRetryTime=1)
    h.Connect()
    assert iface.link.connected
    d = h.Disconnect()
    clock.advance(0)
    assert result(d) is None and not iface.link.connected
    h.Connect()
    clock.advance(0)
    assert iface.link.connected  # the reference never recovers


def test_StartListen_on_a_listening_server_returns_ListeningAlready() -> None:
    from test_server import clockServer

    clock, h, ev = clockServer()
    assert result(h.StartListen()) == "Listening"
    assert result(h.StartListen()) == "ListeningAlready"
    assert ev.of("ListenFailed") == []  # the reference loops ListenFailed('ListeningAlready')


def test_an_invalid_Send_argument_raises_TypeError_and_is_not_counted() -> None:
    clock, ep, h, rec = tcpHandler(DisconnectLimit=3)
    h.Connect()
    h.PollTimer.Pause()
    with pytest.raises(TypeError):
        h.Send(42)
    with pytest.raises(TypeError):
        h.SendAndWait(None, 1)
    assert h.missedPolls == 0


def test_ConnectionStatus_right_after_Disconnect_is_Disconnected() -> None:
    clock, ep, h, rec, polls = answering()
    h.Connect()
    clock.advance(1)
    assert h.ConnectionStatus == "Connected"
    h.Disconnect()
    clock.advance(0)
    assert h.ConnectionStatus == "Disconnected"


def test_Disconnect_with_AutoReconnect_on_stays_disconnected() -> None:
    clock, ep, h, rec, polls = answering(connectRetryTime=1)
    h.Connect()
    clock.advance(1)
    h.Disconnect()
    clock.pump([1] * 10)
    assert len(ep.attempts) == 1 and h.ConnectionStatus == "Disconnected"


def test_unassigned_events_read_as_None_and_StartPolling_is_Connect() -> None:
    clock, ep, h, rec = tcpHandler()
    fresh = GetConnectionHandler(
        EthernetClientInterface("192.0.2.1", 23, reactor=clock, endpoint=FakeEndpoint(clock)),
        lambda h: None,
    )
    assert fresh.Connected is None and fresh.Disconnected is None and fresh.ReceiveData is None
    assert result(fresh.StartPolling()) == "Connected"
