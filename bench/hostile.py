"""
The "hostile neighbour" scenario: N healthy devices kept alive by a real C{twistd chandler},
first alone, then beside one hostile party of each kind (issue 11), side by side in one run.

Three processes, so that no party's CPU is counted as another's:

  - the simulators (this module with C{--serve}): one SIS device answering every healthy handler,
    and the hostile devices: an SIS device answering each C{Q} with C{1.} and 65,000 digits (the
    worst case of the old answer pattern), a PJLink projector answering with 63 KB of
    C{%1POWR=} without a CR, an SNMP agent sending 20 datagrams of 4,300 varbinds with every
    answer, a device flooding endless bytes, a device that never reads, a device trickling digits
    one byte per millisecond without ever ending a line, and an SSH server whose client's
    known_hosts is a FIFO;
  - C{twistd -n chandler --config} with the healthy devices (and, in the hostile phase, the
    hostile ones, a C{[[server]]} without C{MaxClients} and the status page);
  - this driver: in the hostile phase it also holds 400 idle connections to the server and 400
    to the status page; it reads C{/status} every 0.25 s (blocking C{urllib}, one new connection
    each time) and reports the healthy devices' poll rate, their false transitions and the
    C{/status} latency.

Then the HTTP cases (issue 19), each in a fresh C{twistd chandler} with C{httpDevices} healthy
devices (the witnesses, polled every 0.5 s), one hostile HTTP party at a time run by a child
process (C{--attack KIND PORT}), beside a dashboard that fetches C{/status?compact=1} once a
second on a new connection (16 requests, 5 s each at most):

  - C{pipelining}: connections each sending 300 pipelined C{GET /status} and never reading;
  - C{slowloris}: 600 connections trickling a request's headers a byte a second;
  - C{connect-close}: a connect/close loop (~57/s) plus 31 connections trickling headers;
  - C{concurrent-status}: 32 clients looping full C{GET /status} (keep-alive).

Each row: the witnesses' poll rate (per cent of the expected), the dashboard's successes out of
16, and what the party got (answers, 429s, connections dropped).

Plus a row per stock answer pattern: the cost of one search over its worst case at 16 KiB and
64 KiB, and their ratio (4.0 is linear), with the old SIS C{Q} pattern for comparison, and the
matcher's whole cost for a response trickled one byte per read (16 vs 64 KiB; 16 is quadratic).
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

TWISTD = str(Path(sys.executable).with_name("twistd"))

HOSTILE_KINDS = (
    "sis-backtrack",
    "pjlink-backtrack",
    "snmp-flood",
    "byte-flood",
    "not-reading",
    "trickle",
)


# -- the simulators (a child process)


def serve(healthy: int) -> None:
    """Run every simulator on loopback; print their ports as one JSON line; run until killed."""
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol

    from twisted_ch.service.probes import SYS_UPTIME, _asn1, encodeMessage
    from twisted_ch.testing import DeviceServer, listenSNMP
    from twisted_ch.testing._probes import SIS_RESPONSES
    from twisted_ch.testing._ssh import EchoProtocol, SSHTestServer

    ports: dict[str, int] = {}
    sis = DeviceServer(reactor, SIS_RESPONSES)
    sis.start()
    ports["healthy"] = sis.port

    def answering(answer: bytes, greeting: bytes = b"") -> Factory:
        class Hostile(Protocol):
            def connectionMade(self) -> None:
                if greeting and self.transport is not None:
                    self.transport.write(greeting)

            def dataReceived(self, data: bytes) -> None:
                if self.transport is not None:
                    self.transport.write(answer)

        return Factory.forProtocol(Hostile)

    class Flood(Protocol):
        def connectionMade(self) -> None:
            assert self.transport is not None
            self.transport.registerProducer(self, False)  # type: ignore[attr-defined]

        def resumeProducing(self) -> None:
            if self.transport is not None:
                self.transport.write(b"x" * 65536)

        def stopProducing(self) -> None:
            pass

    class NotReading(Protocol):
        def connectionMade(self) -> None:
            self.transport.pauseProducing()  # type: ignore[union-attr]

    class Trickle(Protocol):
        """Digits one byte at a time, every millisecond, never a line end: no answer ever."""

        def connectionMade(self) -> None:
            from twisted.internet.task import LoopingCall

            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
            self.loop = LoopingCall(self.transport.write, b"9")  # type: ignore[union-attr]
            self.loop.clock = reactor
            self.loop.start(0.001)

        def connectionLost(self, reason: object = None) -> None:
            if self.loop.running:
                self.loop.stop()

    def listen(name: str, factory: Factory) -> None:
        ports[name] = reactor.listenTCP(0, factory, interface="127.0.0.1").getHost().port  # type: ignore[attr-defined]

    listen("sis-backtrack", answering(b"1." + b"9" * 65000))
    listen("pjlink-backtrack", answering(b"%1POWR=" * 9000, greeting=b"PJLINK 0\r"))
    listen("byte-flood", Factory.forProtocol(Flood))
    listen("not-reading", Factory.forProtocol(NotReading))
    listen("trickle", Factory.forProtocol(Trickle))
    agent = listenSNMP(reactor, "public")
    a = _asn1()
    big = encodeMessage(1, b"public", "response", 1, [(SYS_UPTIME, a.NULL)] * 4300)
    agent.junk = [big] * 20
    ports["snmp-flood"] = agent.port
    ssh = SSHTestServer(reactor, Factory.forProtocol(EchoProtocol), users={"admin": "x"})
    ssh.start()
    ports["ssh-fifo"] = ssh.port
    print(json.dumps(ports), flush=True)
    reactor.run()  # type: ignore[attr-defined]


# -- the driver


def _config(ports: dict[str, int], healthy: int, hostile: bool, serverPort: int, fifo: str) -> str:
    lines = []
    for i in range(healthy):
        lines.append(
            textwrap.dedent(
                f"""
                [[device]]
                name = "healthy-{i}"
                endpoint = "tcp:host=127.0.0.1:port={ports["healthy"]}"
                probe = {{ type = "sis", query = "N" }}
                pollFrequency = 0.5
                DisconnectLimit = 3
                connectRetryTime = 1
                """
            )
        )
    if hostile:
        probes = {
            "sis-backtrack": '{ type = "sis", query = "Q" }',
            "pjlink-backtrack": '{ type = "pjlink" }',
            "byte-flood": '{ type = "sis", query = "Q" }',
            "not-reading": '{ type = "sis", query = "Q" }',
            "trickle": '{ type = "sis", query = "Q" }',
        }
        for kind, probe in probes.items():
            lines.append(
                f'[[device]]\nname = "{kind}"\n'
                f'endpoint = "tcp:host=127.0.0.1:port={ports[kind]}"\nprobe = {probe}\n'
                "pollFrequency = 1\n"
            )
        lines.append(
            '[[device]]\nname = "snmp-flood"\n'
            f'endpoint = "udp:host=127.0.0.1:port={ports["snmp-flood"]}"\n'
            'probe = { type = "snmp" }\npollFrequency = 1\n'
        )
        lines.append(
            '[[device]]\nname = "ssh-fifo"\n'
            f'endpoint = "ssh:127.0.0.1:{ports["ssh-fifo"]}:username=admin:password=x:'
            f'knownHosts={fifo}:hostKeyPolicy=accept-new"\nconnectRetryTime = 0.5\n'
        )
        lines.append(f'[[server]]\nname = "panel"\nport = {serverPort}\n')
    return "\n".join(lines)


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (loopback)
        document = json.loads(response.read())
    return time.monotonic() - start, document


def _idle(port: int, n: int) -> list[socket.socket]:
    crowd = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        crowd.append(s)
    return crowd


def _phase(
    ports: dict[str, int], healthy: int, hostile: bool, seconds: float, workdir: Path, log: Any
) -> dict[str, Any]:
    serverPort = _freePort()
    fifo = workdir / "known_hosts.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    config = workdir / ("hostile.toml" if hostile else "alone.toml")
    config.write_text(_config(ports, healthy, hostile, serverPort, str(fifo)))
    output = open(workdir / (config.stem + ".log"), "w+b")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    process = subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "chandler", "--config", str(config),
         "--status-port", "tcp:0:interface=127.0.0.1"],
        stdout=output, stderr=subprocess.STDOUT, env=env, cwd=workdir,
    )  # fmt: skip
    crowd: list[socket.socket] = []
    try:
        base = None
        deadline = time.monotonic() + 30
        while base is None and time.monotonic() < deadline:
            time.sleep(0.2)
            output.seek(0)
            m = re.search(rb"status page at (http://127\.0\.0\.1:(\d+)/)status", output.read())
            if m:
                base = m.group(1).decode()
                statusPort = int(m.group(2))
        if base is None:
            raise RuntimeError("twistd did not start")
        url = base + "status"

        def healthyRows(doc: dict[str, Any]) -> list[dict[str, Any]]:
            return [d for d in doc["devices"] if d["name"].startswith("healthy-")]

        while True:  # every healthy device Connected first
            _, doc = _status(url)
            if all(d["state"] == "Connected" for d in healthyRows(doc)):
                break
            time.sleep(0.2)
        if hostile:
            crowd = _idle(serverPort, 400) + _idle(statusPort, 400)
        time.sleep(2.0)  # settle: the hostile parties are at it
        latencies: list[float] = []
        _, first = _status(url)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            latency, last = _status(url)
            latencies.append(latency)
            time.sleep(0.25)
        elapsed = time.monotonic() - t0
        before = {d["name"]: d for d in healthyRows(first)}
        after = healthyRows(last)
        polls = sum(d["polls"] - before[d["name"]]["polls"] for d in after)
        falseTransitions = sum(d["transitions"] - before[d["name"]]["transitions"] for d in after)
        cpu = _cpuOf(process.pid)
        hostileRows = {d["name"]: d for d in last["devices"] if not d["name"].startswith("healthy")}
        result = {
            "hostile": hostile,
            "healthy": healthy,
            "seconds": round(elapsed, 1),
            "pollsPerSecond": round(polls / elapsed, 1),
            "expectedPollsPerSecond": healthy / 0.5,
            "falseTransitions": falseTransitions,
            "statusGets": len(latencies),
            "statusMedianMs": round(statistics.median(latencies) * 1000, 1),
            "statusP95Ms": round(sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000, 1),
            "statusMaxMs": round(max(latencies) * 1000, 1),
            "twistdCpuSeconds": cpu,
            "hostileStates": {k: v["state"] for k, v in hostileRows.items()},
            "servers": last["servers"],
        }
        log(f"{'hostile' if hostile else 'alone'}: {result}")
        return result
    finally:
        for s in crowd:
            s.close()
        process.terminate()
        process.wait(30)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
        output.close()
        if "Traceback" in text or "Too many open files" in text:
            log("twistd output had a traceback or EMFILE:\n" + text[-4000:])


def _cpuOf(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def patternCosts() -> list[dict[str, Any]]:
    """One search of each stock answer pattern over its worst case: 16 KiB vs 64 KiB."""
    from twisted_ch.service.probes import _PJLINK_ANSWER, SISProbe

    cases = [
        ("sis Q", SISProbe("Q").answer, lambda n: b"1." + b"9" * n),
        ("sis *Q", SISProbe("*Q").answer, lambda n: b"1." + b"9" * n),
        ("sis N", SISProbe("N").answer, lambda n: b"60-1234-01" + b"x" * n),
        ("pjlink POWR", _PJLINK_ANSWER, lambda n: b"%1POWR=" * (n // 7)),
        (
            "old sis Q (before)",
            re.compile(rb"(?m)^(?:(?P<e>E\d\d)|(?P<a>(?:Ver\d+\*)?\d+\.\d+[\w.\-]*))\r?\n"),
            lambda n: b"1." + b"9" * n,
        ),
    ]
    rows = []
    for name, pattern, make in cases:
        sizes = (2048, 8192) if name.startswith("old") else (16384, 65536)
        costs = []
        for n in sizes:
            text = make(n)
            start = time.perf_counter()
            pattern.search(text)
            costs.append(time.perf_counter() - start)
        rows.append(
            {
                "pattern": name,
                "sizes": sizes,
                "ms": [round(c * 1000, 3) for c in costs],
                "ratio": round(costs[1] / costs[0], 1),
            }
        )
    # a device trickling bytes: the matcher's work for 16 KiB and 64 KiB fed one byte per read
    from twisted_ch._framing import ResponseMatcher

    for name, pattern in [("trickle sis Q (1-byte reads)", SISProbe("Q").answer)]:
        costs = []
        for n in (16384, 65536):
            text = b"1." + b"9" * (n - 2)
            matcher = ResponseMatcher(deliRex=pattern)
            start = time.perf_counter()
            for i in range(n):
                matcher.feed(text[i : i + 1])
            costs.append(time.perf_counter() - start)
        rows.append(
            {
                "pattern": name,
                "sizes": (16384, 65536),
                "ms": [round(c * 1000, 3) for c in costs],
                "ratio": round(costs[1] / costs[0], 1),
            }
        )
    return rows


# -- the HTTP cases (issue 19)

HTTP_KINDS = ("pipelining", "slowloris", "connect-close", "concurrent-status")
_GET_STATUS = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def attack(kind: str, port: int) -> None:
    """Run one hostile HTTP party against 127.0.0.1:C{port} until killed; print counts on exit."""
    import selectors
    import signal
    import threading

    counts = {"connections": 0, "answers": 0, "tooMany": 0, "dropped": 0}
    stop = threading.Event()

    def report(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, report)

    def trickler(n: int, pace: float) -> None:
        """C{n} connections each sending a request's headers a byte every C{pace} seconds."""
        sel = selectors.DefaultSelector()
        socks: dict[socket.socket, int] = {}

        def open1() -> None:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks[s] = 0
            sel.register(s, selectors.EVENT_READ)
            counts["connections"] += 1

        for _ in range(n):
            open1()
        head = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
        next_ = time.monotonic()
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:  # dropped by the server: open another
                    sel.unregister(s)
                    s.close()  # type: ignore[union-attr]
                    del socks[s]  # type: ignore[arg-type]
                    counts["dropped"] += 1
                    open1()
            if time.monotonic() >= next_:
                next_ += pace
                for s, sent in list(socks.items()):
                    try:
                        s.send(head[sent : sent + 1])
                        socks[s] = min(sent + 1, len(head) - 1)
                    except OSError:
                        pass

    def pipeliner() -> None:
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                counts["connections"] += 1
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(_GET_STATUS * 300)  # never read
                s.settimeout(0.5)
                end = time.monotonic() + 3
                while time.monotonic() < end and not stop.is_set():
                    try:
                        if not s.recv(1, socket.MSG_PEEK):
                            counts["dropped"] += 1
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        counts["dropped"] += 1
                        break
                    time.sleep(0.5)
                s.close()
            except OSError:
                time.sleep(0.05)

    def connectClose() -> None:
        while not stop.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                counts["connections"] += 1
            except OSError:
                pass
            time.sleep(1 / 57)

    def looper() -> None:
        import http.client

        conn: Any = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    counts["connections"] += 1
                conn.request("GET", "/status")
                response = conn.getresponse()
                response.read()
                counts["answers" if response.status == 200 else "tooMany"] += 1
                if response.status == 429:
                    time.sleep(0.01)
            except (OSError, http.client.HTTPException):
                counts["dropped"] += 1
                conn = None
                time.sleep(0.05)

    workers: list[Any] = []
    if kind == "pipelining":
        workers = [pipeliner] * 4
    elif kind == "slowloris":
        workers = [lambda: trickler(600, 1.0)]
    elif kind == "connect-close":
        workers = [connectClose, lambda: trickler(31, 1.0)]
    elif kind == "concurrent-status":
        workers = [looper] * 32
    else:
        raise SystemExit(f"unknown attack {kind!r}")
    threads = [threading.Thread(target=w, daemon=True) for w in workers]
    for t in threads:
        t.start()
    stop.wait()
    print(json.dumps(counts), flush=True)


def _get(url: str, timeout: float) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return bytes(response.read()) if response.status == 200 else None
    except OSError:
        return None


def _witnessPolls(url: str) -> tuple[float, int]:
    """When, and the polls of the healthy devices so far (retried until /status answers)."""
    for _ in range(100):
        body = _get(url, 10)
        if body is not None:
            doc = json.loads(body)
            polls = sum(d["polls"] for d in doc["devices"] if d["name"].startswith("healthy-"))
            return time.monotonic(), polls
        time.sleep(0.2)
    raise RuntimeError("/status did not answer")


def _httpPhase(
    ports: dict[str, int], devices: int, kind: str | None, workdir: Path, log: Any
) -> dict[str, Any]:
    config = workdir / f"http-{kind or 'alone'}.toml"
    config.write_text(_config(ports, devices, False, 0, ""))
    output = open(workdir / (config.stem + ".log"), "w+b")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    process = subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "chandler", "--config", str(config),
         "--status-port", "tcp:0:interface=127.0.0.1"],
        stdout=output, stderr=subprocess.STDOUT, env=env, cwd=workdir,
    )  # fmt: skip
    attacker: subprocess.Popen[bytes] | None = None
    try:
        base = None
        deadline = time.monotonic() + 60
        while base is None and time.monotonic() < deadline:
            time.sleep(0.2)
            output.seek(0)
            m = re.search(rb"status page at (http://127\.0\.0\.1:(\d+)/)status", output.read())
            if m:
                base, statusPort = m.group(1).decode(), int(m.group(2))
        if base is None:
            raise RuntimeError("twistd did not start")
        compact = base + "status?compact=1"
        while True:  # every witness Connected first
            doc = json.loads(_get(compact, 30) or b'{"devices": []}')
            rows = [d for d in doc["devices"] if d["name"].startswith("healthy-")]
            if rows and all(d["state"] == "Connected" for d in rows):
                break
            time.sleep(0.5)
        time.sleep(2.0)
        t0, polls0 = _witnessPolls(compact)
        if kind is not None:
            attacker = subprocess.Popen(
                [sys.executable, "-m", "bench.hostile", "--attack", kind, str(statusPort)],
                stdout=subprocess.PIPE,
                cwd=Path(__file__).resolve().parent.parent,
            )
            time.sleep(2.0)  # the party is at it
        ok = 0
        latencies = []
        for _ in range(16):  # the dashboard: a request a second, on a new connection
            start = time.monotonic()
            if _get(compact, 5) is not None:
                ok += 1
                latencies.append(time.monotonic() - start)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        party: dict[str, Any] = {}
        if attacker is not None:
            attacker.terminate()
            out, _ = attacker.communicate(timeout=30)
            party = json.loads(out.decode().strip().splitlines()[-1] or "{}")
            attacker = None
        t1, polls1 = _witnessPolls(compact)
        rate = (polls1 - polls0) / (t1 - t0)
        result = {
            "case": kind or "alone",
            "devices": devices,
            "witnessPollsPerSecond": round(rate, 1),
            "witnessPercent": round(100 * rate / (devices / 0.5), 1),
            "dashboardOk": ok,
            "dashboardOf": 16,
            "dashboardMaxMs": round(max(latencies) * 1000, 1) if latencies else None,
            "party": party,
            "twistdCpuSeconds": _cpuOf(process.pid),
        }
        log(f"http {result['case']}: {result}")
        return result
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.wait(10)
        process.terminate()
        process.wait(30)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
        output.close()
        if "Traceback" in text or "Too many open files" in text:
            log(f"twistd output ({kind}) had a traceback or EMFILE:\n" + text[-4000:])


def runHTTP(
    devices: int = 500, log: Any = print, kinds: tuple[str, ...] = HTTP_KINDS
) -> list[dict[str, Any]]:
    """The HTTP cases (and a row without any party), each in a fresh twistd."""
    workdir = Path(tempfile.mkdtemp(prefix="hostile-http-"))
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.hostile", "--serve", "1"],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        return [_httpPhase(ports, devices, kind, workdir, log) for kind in (None, *kinds)]
    finally:
        sim.terminate()
        sim.wait(30)


def run(
    healthy: int = 50,
    seconds: float = 20.0,
    log: Any = print,
    httpDevices: int = 500,
) -> dict[str, Any]:
    """Both phases against one simulator process; the pattern rows; the HTTP cases."""
    workdir = Path(tempfile.mkdtemp(prefix="hostile-"))
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.hostile", "--serve", str(healthy)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        alone = _phase(ports, healthy, False, seconds, workdir, log)
        beside = _phase(ports, healthy, True, seconds, workdir, log)
    finally:
        sim.terminate()
        sim.wait(30)
    http = runHTTP(httpDevices, log) if httpDevices else []
    return {"alone": alone, "hostile": beside, "patterns": patternCosts(), "http": http}


def table(result: dict[str, Any]) -> str:
    """Markdown tables of a run."""
    a, h = result["alone"], result["hostile"]
    rows = [
        "| healthy devices (SIS, 0.5 s polls) | alone | beside the hostile neighbours |",
        "|---|---:|---:|",
        f"| devices | {a['healthy']} | {h['healthy']} |",
        f"| polls/s (expected {a['expectedPollsPerSecond']:g}) | {a['pollsPerSecond']} | "
        f"{h['pollsPerSecond']} |",
        f"| false transitions | {a['falseTransitions']} | {h['falseTransitions']} |",
        f"| /status median ms | {a['statusMedianMs']} | {h['statusMedianMs']} |",
        f"| /status p95 ms | {a['statusP95Ms']} | {h['statusP95Ms']} |",
        f"| /status max ms | {a['statusMaxMs']} | {h['statusMaxMs']} |",
        f"| twistd CPU s (whole run) | {a['twistdCpuSeconds']} | {h['twistdCpuSeconds']} |",
        "",
        "| answer pattern, worst case | sizes (bytes) | ms per search | ratio (4.0 = linear) |",
        "|---|---|---|---:|",
    ]
    for p in result["patterns"]:
        rows.append(
            f"| {p['pattern']} | {p['sizes'][0]} / {p['sizes'][1]} | "
            f"{p['ms'][0]} / {p['ms'][1]} | {p['ratio']} |"
        )
    rows += httpTable(result.get("http", []))
    return "\n".join(rows)


def httpTable(http: list[dict[str, Any]]) -> list[str]:
    """The HTTP cases' rows (markdown)."""
    if not http:
        return []
    rows = [
        "",
        f"| status-port case ({http[0]['devices']} witnesses, 0.5 s polls) | witness polls/s "
        "(% of expected) | dashboard ok | dashboard max ms | the party got |",
        "|---|---:|---:|---:|---|",
    ]
    for r in http:
        party = ", ".join(f"{k} {v}" for k, v in r["party"].items()) or "-"
        rows.append(
            f"| {r['case']} | {r['witnessPollsPerSecond']} ({r['witnessPercent']}%) | "
            f"{r['dashboardOk']}/{r['dashboardOf']} | {r['dashboardMaxMs']} | {party} |"
        )
    return rows


# -- the cost of the status port's pages to the reactor (issue 21)


def statusCost(
    devices: int,
    rounds: int = 3,
    pages: tuple[str, ...] = ("status", "status?compact=1", "metrics"),
) -> dict[str, Any]:
    """
    C{devices} real TCP handlers (never connected: their rows as they are) on a status page in
    this process; each of C{/status}, C{/status?compact=1}, C{/metrics} fetched C{rounds} times
    by a client in another thread: per page the median wall time of a fetch and the longest
    reactor turn seen during the fetches (the longest gap between two turns of a 0-delay loop).
    """
    import threading

    from twisted.internet import reactor

    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetClientInterface
    from twisted_ch.service._registry import Entry, Registry
    from twisted_ch.service._web import StatusService
    from twisted_ch.service.probes import SISProbe
    from twisted_ch.testing import FakeEndpoint

    registry = Registry(clock=reactor)
    for i in range(devices):
        endpoint = FakeEndpoint(reactor)
        iface = EthernetClientInterface("127.0.0.1", 23, reactor=reactor, endpoint=endpoint)
        iface.link.description = f"device-{i}"
        handler = GetConnectionHandler(iface, lambda h: None, pollFrequency=10)
        registry.add(
            Entry(f"device-{i}", handler, "tcp:host=127.0.0.1:port=23", probe=SISProbe("N"),
                  room=f"room {i % 50}")
        )  # fmt: skip
    import gc

    gc.collect()
    gc.freeze()  # the fleet built: its objects are not the collector's to walk every turn
    service = StatusService(reactor, "tcp:0:interface=127.0.0.1", registry)
    service.startService()
    assert service.port is not None
    base = f"http://127.0.0.1:{service.port.getHost().port}/"
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now
        if running[0]:
            reactor.callLater(0, tick)  # type: ignore[attr-defined]

    running = [True]
    found: dict[str, Any] = {"devices": devices}

    def client() -> None:
        try:
            for page in pages:
                walls, longest = [], 0.0
                for _ in range(rounds):
                    reactor.callFromThread(gaps.clear)  # type: ignore[attr-defined]
                    time.sleep(0.2)
                    start = time.monotonic()
                    # a client in another process: no GIL shared with the reactor
                    while True:
                        got = subprocess.run(
                            ["curl", "-s", "-w", "%{http_code}", "--max-time", "120", base + page],
                            capture_output=True,
                            check=True,
                        ).stdout
                        if not got.endswith(b"429"):  # spent its budget (before): wait
                            break
                        time.sleep(1.0)
                        start = time.monotonic()
                    size = len(got) - 3
                    walls.append(time.monotonic() - start)
                    time.sleep(0.05)
                    seen: list[float] = []
                    done = threading.Event()

                    def copy(into: list[float] = seen, ev: threading.Event = done) -> None:
                        into.extend(gaps)
                        ev.set()

                    reactor.callFromThread(copy)  # type: ignore[attr-defined]
                    done.wait(60)
                    longest = max(longest, max(seen, default=0.0))
                    if page == "status?compact=1":
                        time.sleep(STATUS_REUSE_WAIT)  # not the reused document: built again
                found[page] = {
                    "ms": round(statistics.median(walls) * 1000, 1),
                    "longestTurnMs": round(longest * 1000, 1),
                    "bytes": size,
                }
        except Exception as e:
            found["error"] = repr(e)
        finally:
            renders = getattr(service.site, "renders", None)
            if renders is not None:
                found["longestStepMs"] = round(renders.longest * 1000, 1)
                found["steps"] = renders.steps
                steps = sorted(b - a for a, b in zip(marks[::2], marks[1::2], strict=False))
                if steps:
                    found["medianStepMs"] = round(steps[len(steps) // 2] * 1000, 2)
                    found["p99StepMs"] = round(steps[int(len(steps) * 0.99)] * 1000, 2)
            running[0] = False
            reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    renders = getattr(service.site, "renders", None)
    marks: list[float] = []
    if renders is not None:  # every step's time (the queue reads its timer around each)

        def timer() -> float:
            marks.append(time.perf_counter())
            return marks[-1]

        renders.timer = timer
    reactor.callLater(0, tick)  # type: ignore[attr-defined]
    threading.Thread(target=client, daemon=True).start()
    reactor.run()  # type: ignore[attr-defined]
    return found


#: Seconds the cost benchmark waits between compact fetches (past their reuse).
STATUS_REUSE_WAIT = 6.0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--attack"]:
        attack(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--status-cost"]:  # --status-cost DEVICES
        print(
            json.dumps(
                statusCost(
                    int(sys.argv[2]), **({"pages": tuple(sys.argv[3:])} if sys.argv[3:] else {})
                )
            )
        )
    elif sys.argv[1:2] == ["--http"]:  # the HTTP cases alone: --http [DEVICES [KIND...]]
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
        kinds = tuple(sys.argv[3:]) or HTTP_KINDS
        found = runHTTP(n, lambda m: print(m, file=sys.stderr, flush=True), kinds)
        print("\n".join(httpTable(found)))
