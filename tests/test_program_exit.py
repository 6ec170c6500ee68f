"""
Smaller hardening cases (issue 19 item 9): C{sys.exit()} in a program callback is one clear
line, not "Unhandled error in Deferred"; C{ssh ... timeout=inf} is refused.
"""

from __future__ import annotations

import gc
import math
import sys
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from twisted_ch import _runtime
from twisted_ch._runtime import ProgramThread, ReactorDispatcher
from twisted_ch.endpoints.ssh import SSHShellEndpoint, parseSSHShellEndpoint


def onData(data: bytes) -> None:
    sys.exit(3)


@pytest_twisted.ensureDeferred
async def test_sys_exit_in_a_program_callback_is_one_clear_line() -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    thread = ProgramThread(reactor)
    thread.start()
    try:
        for _ in range(3):
            await thread.call(onData, b"x")
        ran: list[bytes] = []
        await thread.call(ran.append, b"after")  # the thread still runs callbacks
        assert ran == [b"after"]
        ReactorDispatcher().call(onData, b"y")  # the Twisted face too
        await thread.run(lambda: None)  # the exit lines are logged on the reactor thread
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(events.append)
        await thread.stop()
        _runtime._raised.stop()
    shown = [formatEvent(e) for e in events if e.get("log_level", LogLevel.debug) >= LogLevel.warn]
    assert shown == [
        "callback onData called sys.exit(3): ignored, a callback cannot end the program "
        "(it keeps running)"
    ]
    assert not any("Unhandled error" in formatEvent(e) for e in events)
    assert not any("log_failure" in e for e in events)


@pytest.mark.parametrize("timeout", ["inf", "-inf", "nan", "0", "-1", "soon"])
def test_an_ssh_endpoint_refuses_a_timeout_that_is_not_finite_and_positive(timeout: str) -> None:
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds above 0"):
        parseSSHShellEndpoint(reactor, "127.0.0.1", username="admin", timeout=timeout)


@pytest.mark.parametrize("timeout", [math.inf, math.nan, 0, True])
def test_an_ssh_endpoint_refuses_a_connect_timeout_that_is_not_finite(timeout: Any) -> None:
    with pytest.raises(ValueError, match="connectTimeout must be a finite number"):
        SSHShellEndpoint(reactor, "127.0.0.1", username="admin", connectTimeout=timeout)
