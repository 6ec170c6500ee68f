"""
Hardening (issue 11): service details. Status pages that do not exist, the device named when a
silent one is dropped, status rows without local paths or secrets, a status port option quoted as
written, and a FIFO known_hosts that neither hangs twistd nor delays SIGTERM.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from helpers import ANSWER, LoggedEvents, Watch, bounded
from twisted.internet import reactor
from twisted.internet.protocol import Factory

from twisted_ch.testing import listenDevice, waitUntil

# -- hardening (issue 11): status details


async def _get(url: str) -> tuple[int, bytes]:
    from test_tap import _Body
    from twisted.web.client import Agent

    response = await Agent(reactor).request(b"GET", url.encode()).addTimeout(5, reactor)
    body = _Body()
    response.deliverBody(body)
    return response.code, await body.done.addTimeout(5, reactor)


@pytest_twisted.ensureDeferred
@bounded(30)
async def test_status_pages_that_do_not_exist_are_404_and_names_stay_one_row(
    tmp_path: Any,
) -> None:
    from twisted.logger import formatEvent

    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._web import StatusService

    registry = Registry()
    registry.add(Entry("evil\nname\r\x1b[31m", object(), "tcp:host=h:port=1"))
    registry.add(Entry("plain", object(), "tcp:host=h:port=2"))
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    try:
        assert service.url is not None
        for path in ("status/anything", "status/x/y", "metrics/anything"):
            code, _ = await _get(service.url + path)
            assert code == 404, path
        assert (await _get(service.url + "status"))[0] == 200
        code, body = await _get(service.url)
        rows = body.decode().splitlines()
        assert code == 200
        assert sum(1 for row in rows if row.startswith("evil")) == 1
        assert "\x1b" not in body.decode()
    finally:
        await service.stopService()

    socketPath = tmp_path / "status.sock"
    unix = StatusService(reactor, f"unix:{socketPath}", registry)
    with LoggedEvents() as events:
        unix.startService()
        await unix.stopService()
    texts = [formatEvent(e) for e in events]
    assert any(f"UNIX socket {socketPath}" in t for t in texts), texts
    assert not any("UNIXAddress(" in t for t in texts)


@pytest_twisted.ensureDeferred
@bounded(30)
async def test_dropping_a_silent_device_names_the_device_not_the_handler() -> None:
    from twisted.logger import formatEvent

    device = listenDevice(reactor, {b"P": ANSWER})
    device.silent = True
    w = Watch(device.port, pollFrequency=0.05, DisconnectLimit=2)
    try:
        with LoggedEvents() as events:
            await w.handler.Connect()
            await waitUntil(reactor, lambda: "Disconnected" in w.states(), 10)
    finally:
        await w.handler.Disconnect()
        await device.shutdown()
    (line,) = [formatEvent(e) for e in events if "dropping the link" in formatEvent(e)][:1]
    assert line.startswith(f"127.0.0.1:{device.port}") or line.startswith(w.handler.logName), line
    assert "<RawTcpHandler" not in line


def test_status_rows_hide_local_paths_and_secrets_unless_paths_are_asked_for() -> None:
    from twisted_ch.service._registry import Entry, Registry

    endpoint = "ssh:h:22:username=a:pass\\word=SECRET:keys=/home/a/id:knownHosts=/etc/kh"
    for showPaths in (False, True):
        registry = Registry(showPaths)
        registry.add(Entry("codec", object(), endpoint))
        (row,) = registry.snapshot()["devices"]  # type: ignore[misc]
        shown = str(row["endpoint"])
        assert "SECRET" not in shown and "password=***" in shown
        assert ("/home/a/id" in shown) == showPaths and ("/etc/kh" in shown) == showPaths


def test_a_status_port_option_that_does_not_parse_is_quoted_as_written() -> None:
    from twisted.python import usage

    from twisted_ch.tap import Options

    with pytest.raises(usage.UsageError) as info:
        Options().parseOptions(["--status-port", "tcp:notaport"])
    text = str(info.value)
    assert text.startswith("--status-port: ") and "'tcp:notaport'" in text
    assert "interface=" not in text
    with pytest.raises(usage.UsageError, match="lone backslash"):
        Options().parseOptions(["--status-port", "tcp:8790\\"])


@pytest.mark.parametrize("logFormat", ["text", "json"])
@pytest_twisted.ensureDeferred
@bounded(60)
async def test_a_fifo_known_hosts_neither_hangs_twistd_nor_delays_SIGTERM(
    tmp_path: Any, logFormat: str
) -> None:
    """
    A device whose known_hosts is a FIFO (opened for reading, it would wait for a writer
    forever): every attempt fails with a clear error naming it, and SIGTERM ends twistd with 0.
    """
    from test_tap import chandler, stop

    from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer

    fifo = tmp_path / "known_hosts"
    os.mkfifo(fifo)
    secret = "Sekr1t-xyzzy"
    server = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": secret})
    server.start()
    config = tmp_path / "site.toml"
    endpoint = (
        f"ssh:127.0.0.1:{server.port}:username=admin:pass\\\\word={secret}:knownHosts={fifo}"
        ":hostKeyPolicy=accept-new"
    )
    config.write_text(
        f'[[device]]\nname = "codec"\nendpoint = "{endpoint}"\nconnectRetryTime = 0.2\n'
    )
    # debug level: every attempt is logged (above it, one line per outage, and repeated
    # identical link failures are one line then a count)
    process = chandler(
        tmp_path, "--config", str(config), "--log-format", logFormat, "--log-level", "debug"
    )
    try:
        await process.waitFor(rb"codec: connect failed: KnownHostsFileError: .*a FIFO")
        await process.waitFor(rb"codec: watching ssh:127.0.0.1:\d+:username=admin:password=\*\*\*")
        await process.waitFor(rb"(?s)connect failed.*connect failed.*connect failed")
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
        await server.stop()
    assert "closed during TCP connect" not in process.text
    assert secret not in process.text  # (its option spelled pass\\word)
