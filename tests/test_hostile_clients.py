"""
Hardening (issue 11): no crowd of clients can take the descriptors devices need: idle clients by
the hundred, a descriptor budget that cannot fit, a status port in use, the status connection
limit, and the descriptor budget's count per device.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import pytest
import pytest_twisted
from helpers import bounded, freePort
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from twisted_ch.testing import DeviceServer

# -- hardening (issue 11): no crowd of clients can take the descriptors devices need

_LIMITED = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def _idleSockets(port: int, n: int) -> list[socket.socket]:
    """C{n} connections to a loopback port that never send a byte (non-blocking connects)."""
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sockets.append(s)
    return sockets


@pytest_twisted.ensureDeferred
@bounded(120)
async def test_idle_clients_by_the_hundred_cannot_starve_devices_or_the_status_page(
    tmp_path: Any,
) -> None:
    """
    twistd runs with a soft limit of 128 descriptors (hard 300); 400 idle clients of a
    [[server]] without MaxClients and 400 of the status page arrive.  The soft limit is raised
    to the hard one, the server refuses clients beyond its default MaxClients at once (logged
    summarised), the status page answers (a newcomer replaces the least recently active
    connection), and the device, dropped meanwhile, reconnects: it still has descriptors.
    """
    import textwrap

    from test_tap import TWISTD, Twistd, getJSON, pollStatus, stop

    from twisted_ch.testing._probes import SIS_RESPONSES

    device = DeviceServer(reactor, SIS_RESPONSES)
    device.start()
    serverPort = freePort()
    config = tmp_path / "site.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [[device]]
            name = "witness"
            endpoint = "tcp:host=127.0.0.1:port={device.port}"
            probe = {{ type = "sis", query = "N" }}
            pollFrequency = 0.5
            connectRetryTime = 0.5

            [[server]]
            name = "panel"
            port = {serverPort}
            """
        )
    )
    process = Twistd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    args = ["-n", "--pidfile=", "chandler", "--status-port", "tcp:0:interface=127.0.0.1"]
    reactor.spawnProcess(
        process,
        sys.executable,
        [sys.executable, "-c", _LIMITED, "128", "300", TWISTD, *args, "--config", str(config)],
        env=env,
        path=str(tmp_path),
    )
    crowd: list[socket.socket] = []
    try:
        found = await process.waitFor(rb"status page at (http://127\.0\.0\.1:(\d+)/)status")
        base, statusPort = found.group(1).decode(), int(found.group(2))
        await process.waitFor(rb"open-descriptor limit raised from 128 to 300")
        await pollStatus(base, lambda doc: doc["devices"][0]["state"] == "Connected")

        crowd = _idleSockets(serverPort, 400) + _idleSockets(statusPort, 400)
        await process.waitFor(rb"refused client .*MaxClients \(64\) reached")
        await process.waitFor(rb"least recently active one was dropped")
        device.dropClients()  # the device must reconnect while the crowd is there
        document = await pollStatus(
            base,
            lambda doc: (
                doc["devices"][0]["state"] == "Connected" and doc["devices"][0]["transitions"] >= 3
            ),
        )
        (panel,) = document["servers"]
        assert panel["refused"] > 0
        assert "Too many open files" not in process.text
        assert process.text.count("refused client") <= 2, "refusals are summarised"
        assert (await getJSON(base + "status"))["devices"][0]["name"] == "witness"
    finally:
        for s in crowd:
            s.close()
        if process.running:
            assert await stop(process) == 0
        await device.shutdown()


@pytest_twisted.ensureDeferred
@bounded(60)
async def test_a_budget_that_cannot_fit_refuses_to_start_in_one_line(tmp_path: Any) -> None:
    from test_tap import TWISTD, Twistd, ended

    config = tmp_path / "site.toml"
    config.write_text(f"[[server]]\nport = {freePort()}\nMaxClients = 5000\n")
    process = Twistd()
    args = ["-n", "--pidfile=", "chandler", "--status-port", "tcp:0:interface=127.0.0.1"]
    reactor.spawnProcess(
        process,
        sys.executable,
        [sys.executable, "-c", _LIMITED, "256", "256", TWISTD, *args, "--config", str(config)],
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        path=str(tmp_path),
    )
    assert await ended(process) == 1
    assert "Traceback" not in process.text
    assert "'server[0]' MaxClients=5000" in process.text or "MaxClients=5000" in process.text
    assert "LimitNOFILE" in process.text


@pytest_twisted.ensureDeferred
@bounded(60)
async def test_a_status_port_in_use_exits_with_one_line(tmp_path: Any) -> None:
    from test_tap import ended, spawn

    taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    try:
        process = spawn(
            tmp_path,
            "-n",
            "--pidfile=",
            "chandler",
            "--status-port",
            f"127.0.0.1:{taken.getHost().port}",
        )
        assert await ended(process) == 1
    finally:
        await taken.stopListening()
    assert "Traceback" not in process.text
    assert "the status page cannot listen" in process.text
    assert "Address already in use" in process.text


def test_status_connections_beyond_the_limit_replace_the_least_recently_active() -> None:
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from twisted_ch.service._limits import ConnectionLimiter

    class Echo(Protocol):
        pass

    clock = Clock()
    limiter = ConnectionLimiter(
        Factory.forProtocol(Echo), maxConnections=3, idleTimeout=5, clock=clock
    )
    limiter.doStart()
    opened = []
    for i in range(3):
        p = limiter.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1000 + i))
        t = StringTransport()
        t.abortConnection = lambda t=t, p=p: (  # type: ignore[method-assign]
            setattr(t, "aborted", True),
            p.connectionLost(Failure(ConnectionError())),
        )
        p.makeConnection(t)
        opened.append((p, t))
    opened[0][0].dataReceived(b"GET")  # the first is now the most recently active
    newcomer = limiter.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2000))
    assert newcomer is not None
    assert getattr(opened[1][1], "aborted", False) and not getattr(opened[0][1], "aborted", False)
    assert limiter.evicted == 1 and limiter.connections == 3
    clock.advance(5)  # idle for idleTimeout: dropped (the newcomer never connected a transport)
    assert getattr(opened[2][1], "aborted", False) and getattr(opened[0][1], "aborted", False)
    assert limiter.idleDropped == 2
    assert clock.getDelayedCalls() == []


def test_the_descriptor_budget_counts_what_each_device_keeps() -> None:
    from twisted_ch.service._limits import (
        SPARE_DESCRIPTORS,
        DescriptorBudgetError,
        checkDescriptorBudget,
        descriptorsPerDevice,
    )

    assert [descriptorsPerDevice(t) for t in ("tcp", "udp", "serial", "SSH")] == [1, 1, 1, 2]
    # 10,000 TCP devices fit under a hard limit of 20,000 (as on this machine) ...
    needed = checkDescriptorBudget(10_000, {}, 32, 20_000, 10_000)
    assert needed == 10_000 + SPARE_DESCRIPTORS + 32 + 1
    # ... 10,000 SSH devices do not, and the error says why and what to change
    with pytest.raises(DescriptorBudgetError, match=r"10000 devices: 20000.*LimitNOFILE"):
        checkDescriptorBudget(10_000, {}, 32, 20_000, 20_000)
