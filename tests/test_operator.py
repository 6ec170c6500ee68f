"""
Operating C{twistd chandler} day to day (issue 18): one-line errors, running from your own
directory, C{--check-config}; real twistd (and C{./dev}) child processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import pytest_twisted
from test_tap import BAD_CONFIGS, chandler, ended, spawn

# friction 1: a mistake is the only thing printed: one line, exit status 2


@pytest.mark.parametrize(("name", "text", "key"), BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
@pytest_twisted.ensureDeferred
async def test_a_config_error_is_one_line_and_exit_status_2(
    tmp_path: Path, name: str, text: str, key: str
) -> None:
    config = tmp_path / f"{name}.toml"
    config.write_text(text)
    process = chandler(tmp_path, "--config", config.name)
    assert await ended(process) == 2, process.text
    (line,) = process.text.splitlines()
    assert line.startswith(f"{config.name}: ") and key in line, process.text


OPTION_ERRORS = [
    (["--trace", "a,,b"], "--trace: expected NAME[,NAME]"),
    (["--log-format", "xml"], "--log-format must be"),
    (["--colour"], "option --colour not recognized"),
    (["--config", "nowhere.toml"], "nowhere.toml: cannot read the file"),
    (["--shard", "2/3"], "--shard needs --config"),
]


@pytest.mark.parametrize(("args", "expected"), OPTION_ERRORS, ids=[a[1] for a in OPTION_ERRORS])
@pytest_twisted.ensureDeferred
async def test_an_option_error_is_one_line_and_exit_status_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    process = chandler(tmp_path, *args)
    assert await ended(process) == 2, process.text
    assert process.text.splitlines() == [process.text.strip()], process.text
    assert process.text.startswith(expected), process.text


# item 9: --check-config FILE


@pytest_twisted.ensureDeferred
async def test_check_config_says_what_the_file_holds_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(
        '[[device]]\nname = "d"\nendpoint = "tcp:host=127.0.0.1:port=1"\n[[server]]\nport = 9000\n'
    )
    # as README shows it: no -n, no --pidfile (nothing starts, nothing is written)
    process = spawn(tmp_path, "chandler", "--check-config", "site.toml")
    assert await ended(process) == 0, process.text
    assert process.text == "site.toml: ok: 1 device, 1 server\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]


@pytest_twisted.ensureDeferred
async def test_check_config_refuses_a_bad_file_with_its_one_line_and_exit_status_2(
    tmp_path: Path,
) -> None:
    (tmp_path / "site.toml").write_text(
        '[[device]]\nname = "d"\nendpoint = "tcp:host=127.0.0.1:port=1"\npollFrequncy = 1\n'
    )
    process = spawn(tmp_path, "chandler", "--check-config", "site.toml")
    assert await ended(process) == 2, process.text
    (line,) = process.text.splitlines()
    assert line.startswith("site.toml: device[0].pollFrequncy: unknown key"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]


# friction 3: an endpoint that can never work is refused at load time, naming the key

NEVER_WORKS = [
    ("tcp://127.0.0.1:24101", "a URL-style address ('tcp://'): write it as 'tcp:host=HOST:port="),
    ("udp://127.0.0.1:161", "a URL-style address ('udp://')"),
    ("ssh://127.0.0.1:22:username=u", "a URL-style address ('ssh://')"),
    ("tcp:host=127.0.0.1/24:port=23", "an unusable host: a host name or address has no '/'"),
]


@pytest.mark.parametrize(("endpoint", "expected"), NEVER_WORKS, ids=[e[0] for e in NEVER_WORKS])
def test_an_endpoint_that_can_never_work_is_refused_at_load(endpoint: str, expected: str) -> None:
    from twisted.internet import reactor

    from twisted_ch.service._config import ConfigError, parseConfig

    table = {"name": "d", "endpoint": endpoint, "probe": {"send": "Q", "expect": "OK"}}
    with pytest.raises(ConfigError) as info:
        parseConfig({"device": [table]}, "site.toml", reactor)
    assert info.value.key == "device[0].endpoint"
    assert expected in str(info.value), str(info.value)
    assert "127.0.0.1" not in str(info.value)  # values are not shown (they may hold secrets)


@pytest_twisted.ensureDeferred
async def test_a_url_style_endpoint_stops_twistd_at_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(
        '[[device]]\nname = "d"\nendpoint = "tcp://127.0.0.1:24101"\n'
    )
    process = chandler(tmp_path, "--config", "site.toml")
    assert await ended(process) == 2, process.text
    (line,) = process.text.splitlines()
    assert line.startswith("site.toml: device[0].endpoint: ") and "URL-style" in line, line


# frictions 2 and 5: ./dev chandler runs where you are, and says what it installs

REPO = Path(__file__).resolve().parent.parent


def _fakeVenv(root: Path) -> Path:
    """A venv whose python records its pip calls and whose twistd prints where it runs."""
    bin = root / "bin"
    bin.mkdir(parents=True)
    (bin / "python").write_text('#!/bin/sh\necho "python $*" >>"$(dirname "$0")/../calls"\n')
    (bin / "twistd").write_text('#!/bin/sh\necho "twistd in $(pwd): $*"\n')
    for script in bin.iterdir():
        script.chmod(0o755)
    return root


def test_dev_chandler_runs_in_the_callers_directory_and_says_what_it_installs(
    tmp_path: Path,
) -> None:
    import subprocess

    venv = _fakeVenv(tmp_path / "venv")
    here = tmp_path / "site"
    here.mkdir()
    done = subprocess.run(
        [str(REPO / "dev"), "chandler", "--config", "site.toml"],
        cwd=here,
        env={"PATH": "/usr/bin:/bin", "VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # friction 5: one line says what the long step is, before it starts
    assert done.stderr.startswith("dev: installing twisted_ch"), done.stderr
    assert "pip install" in (venv / "calls").read_text()
    # friction 2: twistd runs in the caller's directory, so site.toml is the caller's
    assert done.stdout == f"twistd in {here}: --pidfile= -n chandler --config site.toml\n"


@pytest.mark.skipif(
    not (Path(sys.prefix) / ".twisted_ch-installed").exists(),
    reason="needs the venv ./dev made (the test must not install into another)",
)
def test_dev_chandler_check_config_of_a_file_beside_you(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "site.toml").write_text(
        '[[device]]\nname = "d"\nendpoint = "tcp:host=127.0.0.1:port=1"\n'
    )
    done = subprocess.run(
        [str(REPO / "dev"), "chandler", "--check-config", "site.toml"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "VENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout) == (0, "site.toml: ok: 1 device, 0 servers\n"), (
        done.stderr
    )


# friction 7: a program's HTTP module is named readably in its outage lines

HTTP_PROGRAM = """
from twisted_ch import GetConnectionHandler

class DisplayHTTPClass:
    ConnectionType = "HTTP"

    def __init__(self, ipAddress):
        self.ipAddress = ipAddress
        self.n = 0
        self.callbacks = {}
        self.status = {}

    def UpdatePower(self, value, qualifier):
        self.n += 1
        if self.n == 3:
            self.WriteStatus("ConnectionStatus", "Disconnected")
        elif self.n == 8:
            self.WriteStatus("ConnectionStatus", "Connected")

    def Update(self, command, qualifier=None):
        getattr(self, "Update" + command)(None, qualifier)

    def SubscribeStatus(self, command, qualifier, callback):
        self.callbacks[command] = callback

    def WriteStatus(self, command, value, qualifier=None):
        if self.status.get(command) != value:
            self.status[command] = value
            if command in self.callbacks:
                self.callbacks[command](command, value, qualifier)

Display = GetConnectionHandler(DisplayHTTPClass("127.0.0.1"), "Power", pollFrequency=0.1)
Display.Connect()
"""


@pytest_twisted.ensureDeferred
async def test_an_http_module_is_named_readably_in_outage_lines(tmp_path: Path) -> None:
    from test_tap import stop

    (tmp_path / "main.py").write_text(HTTP_PROGRAM)
    process = chandler(tmp_path, "--program", "main.py")
    try:
        await process.waitFor(rb"-> Connected after")
        assert await stop(process) == 0
    finally:
        if process.running:
            process.transport.signalProcess("KILL")  # type: ignore[attr-defined]
    assert "object at 0x" not in process.text, process.text
    assert "no reason given" not in process.text, process.text
    lines = [line for line in process.text.splitlines() if "-> " in line]
    assert any("Display: " in line or "DisplayHTTPClass 127.0.0.1: " in line for line in lines), (
        lines
    )


# friction 8: stopping invents no events


def test_stopping_a_module_handler_that_never_connected_fires_no_disconnected() -> None:
    from test_modules import rig

    r = rig("tcp")
    r.endpoint.refuse = True
    r.handler.Connect()
    r.run(3)
    assert (r.states(), r.handler.ConnectionStatus) == ([], "Unknown")
    r.handler.Disconnect()  # what the service's stop (SIGTERM) does
    r.run(3)
    assert (r.states(), r.handler.ConnectionStatus) == ([], "Unknown")
