"""The manual's UDP and serial variants of its examples (imports and the interface line changed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from twisted_ch.program import Program
from twisted_ch.testing import listenUDPDevice, waitUntil

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "manual"
TCP_LINE = (
    "EthernetClientInterface('192.168.1.1',\n"
    "                                       5000, Protocol='TCP')"
)


def variant(name: str, interface: str, extra: str = "") -> str:
    text = (EXAMPLES / name).read_text()
    assert TCP_LINE in text
    return extra + text.replace(TCP_LINE, interface)


FIX_MSG = "    msg = res.decode().partition('\\r\\n')[0]\n    Command = msg[:3]"


@pytest_twisted.ensureDeferred
async def test_synchronous_example_udp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = listenUDPDevice(reactor, {b"P": b"Pwr0\r\n"})
    text = variant(
        "synchronous_tcp.py", f"EthernetClientInterface('127.0.0.1', {device.port}, Protocol='UDP')"
    ).replace("    Command = msg[:3]", FIX_MSG)
    path = tmp_path / "main.py"
    path.write_text(text)
    program = Program(reactor)
    try:
        ns = await program.runFile(path)
        handler = ns["DeviceInterface"]
        # UDP has no connection events: the first accepted keep-alive response means Connected
        await waitUntil(reactor, lambda: "Device is Connected." in capsys.readouterr().out)
        assert type(handler).__name__ == "RawSimplePipeHandler"
        assert handler.ConnectionStatus == "Connected"
    finally:
        await handler.Disconnect()
        await program.stop()
        await device.stop()


@pytest_twisted.ensureDeferred
async def test_asynchronous_example_udp_device_goes_away_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = listenUDPDevice(reactor, {b"P": b"Pwr3\r\n"})
    text = variant(
        "asynchronous_tcp.py",
        f"EthernetClientInterface('127.0.0.1', {device.port}, Protocol='UDP')",
    ).replace("DeviceKeepAlive)", "DeviceKeepAlive, DisconnectLimit=2, pollFrequency=0.05)")
    path = tmp_path / "main.py"
    path.write_text(text)
    program = Program(reactor)
    out = []
    try:
        ns = await program.runFile(path)
        handler = ns["DeviceInterface"]
        await waitUntil(
            reactor,
            lambda: out.append(capsys.readouterr().out) or "Device is Connected." in "".join(out),
        )
        await device.stop()  # the port closes: ICMP unreachable must not break the link
        await waitUntil(
            reactor,
            lambda: (
                out.append(capsys.readouterr().out) or "Device is Disconnected." in "".join(out)
            ),
        )
        device.start()
        await waitUntil(
            reactor,
            lambda: (
                out.append(capsys.readouterr().out)
                or "".join(out).count("Device is Connected.") == 2
            ),
        )
        assert "".join(out).splitlines() == [
            "Device is Connected.",
            "Device is Disconnected.",
            "Device is Connected.",
        ]
    finally:
        await handler.Disconnect()
        await program.stop()
        await device.stop()
