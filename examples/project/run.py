# -*- test-case-name: tests.test_examples -*-
"""
The example project in one command: its simulated devices (simulators.py, on loopback) and
the project itself, run exactly as::

    twistd -n chandler --project examples/project --config examples/project/map.toml

runs it (twistd's own entry point, in this process, with the simulators on its reactor)::

    python examples/project/run.py [more twistd chandler options, e.g. --status-port 9100]

then open http://127.0.0.1:8790/panel/.  For real devices, run that twistd command instead,
with map.toml's addresses pointing at them (or deleted).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    import simulators
    from twisted.internet import reactor
    from twisted.scripts.twistd import run

    # before the program's first connect (twistd starts its services when the reactor runs)
    reactor.callWhenRunning(simulators.listen, reactor)
    sys.argv = [
        "twistd",
        "-n",
        "--pidfile=",
        "chandler",
        "--project",
        str(HERE),
        "--config",
        str(HERE / "map.toml"),
        *argv[1:],
    ]
    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main(sys.argv)
