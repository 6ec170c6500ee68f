"""
Text a device or a peer supplies reaches log lines escaped (issue 19 item 6): an SSH server's
DISCONNECT message (sent before host-key verification), its banner, its refusals.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from twisted_ch._link import describeFailure
from twisted_ch.endpoints._ssh_errors import peerText
from twisted_ch.endpoints.ssh import SSHShellEndpoint

HOSTILE = b"bye\x1b[2J\x1b]0;owned\x07\x00\r\nFAKE: connected\xe2\x80\xae"


def test_peer_text_escapes_control_characters_and_is_bounded() -> None:
    assert peerText(HOSTILE) == ("bye\\x1b[2J\\x1b]0;owned\\x07\\x00\\r\\nFAKE: connected\\u202e")
    assert peerText("plain text, ünïcode") == "plain text, ünïcode"
    long = peerText(b"x" * 100_000)
    assert len(long) == 203 and long.endswith("...")


def _packet(payload: bytes) -> bytes:
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    return struct.pack(">LB", len(payload) + padding + 1, padding) + payload + b"\0" * padding


class Disconnecting(Protocol):
    """An SSH server that says goodbye, with terminal escapes, before any key exchange."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"SSH-2.0-Hostile_1.0\r\n")

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        message = struct.pack(">BL", 1, 2) + struct.pack(">L", len(HOSTILE)) + HOSTILE
        self.transport.write(_packet(message + struct.pack(">L", 0)))
        self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_disconnect_message_with_escapes_reaches_errors_escaped(tmp_path: Any) -> None:
    port = reactor.listenTCP(0, Factory.forProtocol(Disconnecting), interface="127.0.0.1")
    try:
        endpoint = SSHShellEndpoint(
            reactor,
            "127.0.0.1",
            port.getHost().port,
            username="admin",
            password="secret",
            knownHosts=str(tmp_path / "known_hosts"),
        )
        try:
            await endpoint.connect(Factory.forProtocol(Protocol)).addTimeout(10, reactor)
        except Exception as e:
            error = e
        else:
            raise AssertionError("connected to a server that disconnected")
    finally:
        await port.stopListening()
    # what "connect failed", "not reached" and "still down" show: the link's reason
    reason = describeFailure(Failure(error))
    assert "disconnected during" in reason and "\\x1b[2J" in reason, reason
    assert reason.isprintable(), reason
