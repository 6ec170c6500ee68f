"""
The three keep-alive pollers compared by C{python -m bench poll}, each run in its own child process:

twisted_ch   N handlers from C{GetConnectionHandler(EthernetClientInterface(...), keepAlive,
             pollFrequency=1)}; the keep-alive sends C{P}, a ReceiveData callback calls
             ResponseAccepted on C{Pwr}.
twisted      raw Twisted: N plain Protocols, each with a LoopingCall writing C{P} and parsing
             the answer lines in dataReceived.
twisted-direct  the same, but writing with C{socket.send} as twisted_ch's DeviceProtocol does
             when nothing is queued: the least a LoopingCall poller on the reactor can cost.
asyncio      plain asyncio Protocols rescheduling their own poll with C{loop.call_at}.

Run as C{python -m bench.pollers --impl NAME --devices N --ports P1,P2 --seconds S}; prints one
JSON line with what it measured.  Two shapes (C{--shape}):

spread       connections are opened evenly over C{--ramp} seconds, so the polls are spread over
             each second, as they are for devices started at different times (the fleet's
             first connects are spread by the service itself, at C{--start-rate}).
together     what a ControlScript program does: the N handlers (or protocols) are connected at
             once with the same pollFrequency, so their polls fall due in the same reactor
             iteration.  The raw pollers start their LoopingCalls at one common phase; the
             fleet, whose service spreads first connects, has every device's PollTimer
             restarted in one reactor turn once all are Connected (L{together}).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from bench._util import cpuSeconds, now, openFds, raiseFileLimit, rssBytes

IMPLS = ("twisted_ch", "twisted", "twisted-direct", "asyncio")
#: raw Twisted with one thread blocking on each round trip: the program row's floor
THREAD_IMPLS = ("twisted-thread",)
#: the paths users run (issue 12), each compared with raw Twisted in the same rounds
PATHS = (
    "twisted_ch-async",
    "twisted_ch-async-tuned",
    "twisted_ch-program",
    "fleet-sis",
    "fleet-pjlink",
    "fleet-send",
)
#: SNMP over UDP is compared with a raw Twisted UDP poller using the same codec
SNMP_IMPLS = ("fleet-snmp", "twisted-snmp")
ALL_IMPLS = IMPLS + PATHS + SNMP_IMPLS + THREAD_IMPLS
#: how often the fleet rows scrape /status and /metrics (from another process)
SCRAPE_EVERY = 15.0
INTERVAL = 1.0
REQUEST = b"P"
SHAPES = ("together", "spread")
#: the run's shape: C{together} is set by main() from C{--shape}; C{epoch} is the common phase
#: of the raw pollers' polls in that shape (set at the first connection)
SHAPE: dict[str, Any] = {"together": False, "epoch": None}


def firstPollDelay(now: float) -> float | None:
    """
    In the C{together} shape, how long until a raw poller connected at C{now} polls first, so
    that every poller polls at the same phase (None in the C{spread} shape: poll one interval
    after connecting, as LoopingCall's C{now=False} does).
    """
    if not SHAPE["together"]:
        return None
    epoch = SHAPE["epoch"]
    if epoch is None:
        epoch = SHAPE["epoch"] = now + INTERVAL
    ahead = epoch - now
    while ahead <= 0:
        ahead += INTERVAL
    return ahead


def together(handlers: list[Any]) -> None:
    """
    Restart every handler's PollTimer in this one reactor turn, so their polls fall due together
    from now on (as for a program's handlers created and connected at once).  The C{together}
    shape's knob for the fleet, whose service spreads first connects, and for bench.events,
    whose program thread connects its handlers one blocking Connect() after another.
    """
    for h in handlers:
        h._PollTimer.Restart()


@dataclass
class Counters:
    connected: int = 0
    lost: int = 0
    sent: int = 0
    answered: int = 0


@dataclass
class Result:
    impl: str
    devices: int
    shape: str
    seconds: float
    connected: int
    pollsPerSecond: float
    cpuMicrosPerPoll: float
    cpuFraction: float
    sentPerSecond: float
    lostInWindow: int
    rssKiBPerHandler: float
    fds: int
    fdsBaseline: int
    tracedKiBPerHandler: float | None = None
    tracedKiBPerUnconnectedHandler: float | None = None
    gcMillisPerSecond: float | None = None
    connectSeconds: float | None = None
    setupSeconds: float | None = None
    slowestFirstConnect: float | None = None
    firstConnectsOverOneSecond: int | None = None
    gcCollections: dict[str, int] = field(default_factory=dict)
    gcMillisByGeneration: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class GCTimer:
    """Time spent in cyclic garbage collection, per generation (via C{gc.callbacks})."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.counts = {"gen0": 0, "gen1": 0, "gen2": 0}
        #: milliseconds spent per generation
        self.millis = {"gen0": 0.0, "gen1": 0.0, "gen2": 0.0}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = now()
        else:
            spent = now() - self._started
            self.seconds += spent
            self.counts[f"gen{info['generation']}"] += 1
            self.millis[f"gen{info['generation']}"] += spent * 1e3


class Lines:
    """Splits a byte stream into CRLF lines and counts the C{Pwr} answers."""

    __slots__ = ("buffer", "counters")

    def __init__(self, counters: Counters) -> None:
        self.buffer = b""
        self.counters = counters

    def feed(self, data: bytes) -> None:
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            if buffer.startswith(b"Pwr"):
                self.counters.answered += 1
            buffer = buffer[end + 2 :]
        self.buffer = buffer


# -- the implementations: each returns a function that opens connection i (or a Deferred of it)


def _handlers(
    ports: list[int], n: int, c: Counters, keepAlive: Callable[[Any], object]
) -> list[Any]:
    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetClientInterface

    def onConnected(h: Any, state: str) -> None:
        c.connected += 1

    def onDisconnected(h: Any, state: str) -> None:
        c.lost += 1

    handlers = []
    for i in range(n):
        iface = EthernetClientInterface("127.0.0.1", ports[i % len(ports)])
        h = GetConnectionHandler(iface, keepAlive, pollFrequency=INTERVAL)
        h.Connected = onConnected
        h.Disconnected = onDisconnected
        handlers.append(h)
    return handlers


def setupTwistedChAsync(
    reactor: Any, ports: list[int], n: int, c: Counters, tuned: bool = False
) -> Callable[[int], None]:
    """
    The README's quick start: an C{async def} keep-alive awaiting SendAndWait on the reactor;
    C{tuned}, with C{tuneGC()} called first (the process's collector otherwise left alone).
    """

    async def keepAlive(h: Any) -> None:
        c.sent += 1
        response = await h.SendAndWait(REQUEST, 2, deliTag=b"\r\n")
        if response.startswith(b"Pwr"):
            c.answered += 1
            h.ResponseAccepted()

    if tuned:  # README, "Many handlers in one process": once at start
        from twisted_ch import tuneGC

        tuneGC()
    handlers = _handlers(ports, n, c, keepAlive)
    setupTwistedChAsync.handlers = handlers  # type: ignore[attr-defined]

    def start(i: int) -> None:
        handlers[i].Connect()

    return start


def setupTwistedChProgram(reactor: Any, ports: list[int], n: int, c: Counters) -> Any:
    """
    The manual's pattern as C{twistd chandler --program} runs it: handlers created by program
    code, whose keep-alive blocks the one program thread in C{SendAndWait}.
    """
    from twisted_ch.program import Program

    def keepAlive(h: Any) -> None:
        c.sent += 1
        response = h.SendAndWait("P", 2, deliTag=b"\r\n")
        if response.startswith(b"Pwr"):
            c.answered += 1
            h.ResponseAccepted()

    program = Program(reactor, name="bench", tuneGC=True)  # as twistd chandler --program runs it
    setupTwistedChProgram.program = program  # type: ignore[attr-defined]

    def ready(handlers: list[Any]) -> Callable[[int], None]:
        def start(i: int) -> None:
            handlers[i].Connect()  # on the reactor thread: not blocking

        return start

    return program.runCallable(_handlers, ports, n, c, keepAlive).addCallback(ready)


class FleetCounters(Counters):
    """Answers are the stock probes' accepted counts."""

    probes: list[Any]

    @property  # type: ignore[override]
    def answered(self) -> int:
        return sum(p.accepted for p in getattr(self, "probes", ()))

    @answered.setter
    def answered(self, value: int) -> None:
        pass


def fleetConfig(kind: str, n: int, ports: dict[str, Any], pollFrequency: float = INTERVAL) -> str:
    """A TOML config of C{n} devices with the stock probe C{kind} against the simulator."""
    lines = ["[status]", 'listen = "off"', ""]
    for i in range(n):
        if kind == "snmp":
            endpoint = f"udp:host=127.0.0.1:port={ports['snmp']}"
            probe = '{ type = "snmp" }'
        elif kind == "sis":
            endpoint = f"tcp:host=127.0.0.1:port={ports['sis'][i % len(ports['sis'])]}"
            probe = '{ type = "sis", query = "Q" }'
        elif kind == "pjlink":
            endpoint = f"tcp:host=127.0.0.1:port={ports['pjlink'][i % len(ports['pjlink'])]}"
            probe = '{ type = "pjlink" }'
        else:
            endpoint = f"tcp:host=127.0.0.1:port={ports['ports'][i % len(ports['ports'])]}"
            probe = "{ send = 'P', expect = 'Pwr1\\r\\n' }"
        lines += [
            "[[device]]",
            f'name = "{kind}-{i:05d}"',
            f'endpoint = "{endpoint}"',
            f"probe = {probe}",
            f"pollFrequency = {pollFrequency}",
            "",
        ]
    return "\n".join(lines)


def setupFleet(
    reactor: Any, kind: str, n: int, c: FleetCounters, args: argparse.Namespace
) -> Callable[[int], None]:
    """
    C{twistd chandler --config} as twistd builds it (tap.Options, makeService), with the status
    page on, scraped every L{SCRAPE_EVERY} s from another process.
    """
    import tempfile

    from twisted_ch import tap

    folder = tempfile.mkdtemp(prefix="bench-fleet-")
    path = os.path.join(folder, "fleet.toml")
    with open(path, "w") as f:
        f.write(fleetConfig(kind, n, args.sim, args.poll_frequency))
    argv = ["--config", path, "--status-port", "127.0.0.1:0"]
    if args.shard:
        argv += ["--shard", args.shard]
    options = tap.Options()
    options.parseOptions(argv)
    service = tap.makeService(options)
    setupFleet.service = service  # type: ignore[attr-defined]
    if args.start_rate:
        # the polls of the raw pollers are spread over --ramp (their connects are); give the
        # fleet's the same spread, so that neither gains from polls bunched in one reactor turn
        for child in service:
            if hasattr(child, "startRate"):
                child.startRate = args.start_rate

    # when the service asks each device to connect, and how long its first connect took: a SYN
    # dropped by a full listen queue is retransmitted after 1 s, so no first connect taking 1 s
    # means no SYN was dropped (the kernel's overflow counters are shared with other processes)
    from twisted_ch.service._services import DevicesService

    asked: dict[int, float] = {}
    firstConnect: list[float] = []
    connectOf = DevicesService._connect

    class FirstLink:
        """Times a device's first connect: asked -> its link open (TCP's handshake done)."""

        def __init__(self, key: int) -> None:
            self.key = key

        def linkMade(self) -> None:
            started = asked.pop(self.key, None)
            if started is not None:
                firstConnect.append(now() - started)

        def linkFailed(self, reason: str) -> None:
            pass

        def linkLost(self, reason: str) -> None:
            pass

        def linkData(self, data: bytes) -> None:
            pass

    def recordingConnect(cfg: Any, handler: Any) -> object:
        asked[id(handler)] = now()
        link = getattr(getattr(handler, "Interface", None), "link", None)
        if link is not None:
            link.observers.append(FirstLink(id(handler)))
        return connectOf(cfg, handler)

    DevicesService._connect = staticmethod(recordingConnect)  # type: ignore[method-assign]
    c.firstConnects = firstConnect  # type: ignore[attr-defined]

    def statusObserver(handler: Any) -> Callable[[str], None]:
        def onStatus(status: str) -> None:
            if status == "Connected":
                c.connected += 1
            elif status == "Disconnected":
                c.lost += 1

        return onStatus

    def start(i: int) -> None:
        if i != 0:
            return
        from twisted.logger import (
            FilteringLogObserver,
            LogLevel,
            LogLevelFilterPredicate,
            globalLogBeginner,
            textFileLogObserver,
        )

        # what twistd does at its default level, written to stderr (stdout carries the result)
        observer = FilteringLogObserver(
            textFileLogObserver(sys.stderr),
            [LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)],
        )
        globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
        if os.environ.get("XGC"):
            gc.set_threshold(int(os.environ["XGC"]), 10, 10)
        service.startService()
        if os.environ.get("XFREEZE"):
            gc.freeze()
        devices = [s for s in service if hasattr(s, "handlers")]
        c.probes = []
        c.handlers = []  # type: ignore[attr-defined]
        c.devices = 0  # type: ignore[attr-defined]

        def watch(h: Any) -> None:
            h.addStatusObserver(statusObserver(h))
            c.probes.append(h._keepAliveQuery)
            c.handlers.append(h)  # type: ignore[attr-defined]

        for d in devices:
            # the service builds its devices in slices: the first is built now, the rest in
            # the next reactor turns (each watched as it is built, before its first connect)
            for h in d.handlers.values():
                watch(h)
            d.deviceAdded.append(lambda name, d=d: watch(d.handlers[name]))
            c.devices += len(d.handlers) + len(d._toBuild)  # type: ignore[attr-defined]
        status = [s for s in service if getattr(s, "url", None)]
        c.statusURL = status[0].url if status else None  # type: ignore[attr-defined]

    return start


def scraper(url: str, every: float) -> Any:
    """A child process fetching /status and /metrics every C{every} s (not in our CPU time)."""
    import subprocess

    code = (
        "import sys, time, urllib.request\n"
        "url, every = sys.argv[1], float(sys.argv[2])\n"
        "while True:\n"
        "    for page in ('status', 'metrics'):\n"
        "        urllib.request.urlopen(url + page, timeout=30).read()\n"
        "    time.sleep(every)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(every)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def startLoop(reactor: Any, loop: Any) -> None:
    """Start a raw poller's LoopingCall: one interval from now, or at the common phase."""
    delay = firstPollDelay(reactor.seconds())
    if delay is None:
        loop.start(INTERVAL, now=False)
    else:
        reactor.callLater(delay, lambda: loop.running or loop.start(INTERVAL, now=True))


def setupTwistedSNMP(
    reactor: Any, ports: list[int], n: int, c: Counters, args: argparse.Namespace
) -> Callable[[int], None]:
    """
    Raw Twisted SNMP: a LoopingCall per device sending a GET over connected UDP, with the codec
    the SNMP probe uses (the GET patched from a template, the usual answer read without pyasn1,
    anything else decoded by pyasn1).
    """
    from twisted.internet.protocol import DatagramProtocol
    from twisted.internet.task import LoopingCall

    from twisted_ch.protocols._probecodec import GetRequestTemplate, decodeUptime
    from twisted_ch.service.probes import SYS_UPTIME, decodeMessage, decodeTimeTicks

    template = GetRequestTemplate(1, b"public")
    port = args.sim["snmp"]
    ids = iter(range(1, 2**31))

    class Poller(DatagramProtocol):
        noisy = False

        def startProtocol(self) -> None:
            assert self.transport is not None
            self.transport.connect("127.0.0.1", port)  # type: ignore[attr-defined]
            c.connected += 1
            self.rid = 0
            self.loop = LoopingCall(self.poll)
            self.loop.clock = reactor
            startLoop(reactor, self.loop)

        def poll(self) -> None:
            c.sent += 1
            self.rid = next(ids)
            self.transport.write(template.encode(self.rid))  # type: ignore[union-attr]

        def datagramReceived(self, datagram: bytes, addr: Any) -> None:
            message = decodeUptime(datagram)
            if message is None:
                try:
                    message = decodeMessage(datagram)
                except ValueError:
                    return
            if message.pduKind == "response" and message.requestId == self.rid:
                for oid, value in message.binds:
                    if oid == SYS_UPTIME:
                        decodeTimeTicks(value)
                        c.answered += 1

    def start(i: int) -> None:
        reactor.listenUDP(0, Poller(), interface="127.0.0.1")

    return start


def setupTwistedCh(reactor: Any, ports: list[int], n: int, c: Counters) -> Callable[[int], None]:
    def keepAlive(h: Any) -> None:
        c.sent += 1
        h.Send(REQUEST)

    def onData(h: Any, data: bytes) -> None:
        k = data.count(b"Pwr")
        if k:
            c.answered += k
            h.ResponseAccepted()

    handlers = _handlers(ports, n, c, keepAlive)
    for h in handlers:
        h.ReceiveData = onData
    setupTwistedCh.handlers = handlers  # type: ignore[attr-defined]

    def start(i: int) -> None:
        handlers[i].Connect()

    return start


def setupTwistedDirect(
    reactor: Any, ports: list[int], n: int, c: Counters
) -> Callable[[int], None]:
    return setupTwisted(reactor, ports, n, c, direct=True)


def setupTwisted(
    reactor: Any, ports: list[int], n: int, c: Counters, direct: bool = False
) -> Callable[[int], None]:
    from twisted.internet.protocol import ClientFactory, Protocol
    from twisted.internet.task import LoopingCall

    class Poller(Protocol):
        def connectionMade(self) -> None:
            c.connected += 1
            self.lines = Lines(c)
            self.loop = LoopingCall(self.poll)
            self.loop.clock = reactor
            startLoop(reactor, self.loop)

        def poll(self) -> None:
            c.sent += 1
            if direct:
                # the floor: what a Twisted poller costs when it skips the write queue, as
                # twisted_ch does (its queue is always empty here: one byte a second)
                self.transport.socket.send(REQUEST)  # type: ignore[union-attr]
            else:
                self.transport.write(REQUEST)  # type: ignore[union-attr]

        def dataReceived(self, data: bytes) -> None:
            self.lines.feed(data)

        def connectionLost(self, reason: object = None) -> None:
            c.lost += 1
            if self.loop.running:
                self.loop.stop()

    factory = ClientFactory.forProtocol(Poller)

    def start(i: int) -> None:
        reactor.connectTCP("127.0.0.1", ports[i % len(ports)], factory)

    return start


def setupTwistedThread(
    reactor: Any, ports: list[int], n: int, c: Counters
) -> Callable[[int], None]:
    """
    The least one thread's blocking round trips cost on Twisted (the program row's floor): each
    poll's LoopingCall, on the reactor, queues the poll for one thread (C{queue.SimpleQueue}),
    which asks the reactor to write (C{callFromThread}) and blocks on a lock that the answer's
    C{dataReceived} releases (a C{Pwr} line, split and counted by L{Lines}); one poll at a
    time, and no tick queued while the last one waits (as a handler's PollTimer); no timer.
    """
    import queue
    import threading

    from twisted.internet.protocol import ClientFactory, Protocol
    from twisted.internet.task import LoopingCall

    jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()

    class Poller(Protocol):
        def connectionMade(self) -> None:
            c.connected += 1
            self.lines = Lines(c)
            self.answered = threading.Lock()
            self.answered.acquire()
            self.busy = False
            self.loop = LoopingCall(self.tick)
            self.loop.clock = reactor
            startLoop(reactor, self.loop)

        def tick(self) -> None:
            if not self.busy:  # as a handler's PollTimer: no tick queued while one waits
                self.busy = True
                jobs.put(self)

        def dataReceived(self, data: bytes) -> None:
            answered = c.answered
            self.lines.feed(data)
            # the answer awaited (one more beyond it: no second release)
            if c.answered != answered and self.answered.locked():
                self.answered.release()

        def connectionLost(self, reason: object = None) -> None:
            c.lost += 1
            if self.loop.running:
                self.loop.stop()

    def program() -> None:
        callFromThread = reactor.callFromThread
        while (p := jobs.get()) is not None:
            c.sent += 1
            callFromThread(p.transport.write, REQUEST)
            if not p.answered.acquire(timeout=2):
                # no answer in 2 s: the device is dropped (counted lost), so that a late answer
                # cannot stand for the next poll's
                callFromThread(p.transport.loseConnection)
                continue
            p.busy = False

    threading.Thread(target=program, daemon=True, name="program").start()
    reactor.addSystemEventTrigger("before", "shutdown", jobs.put, None)
    factory = ClientFactory.forProtocol(Poller)

    def start(i: int) -> None:
        reactor.connectTCP("127.0.0.1", ports[i % len(ports)], factory)

    return start


def runTwisted(impl: str, args: argparse.Namespace) -> Result:
    import twisted.internet.endpoints  # noqa: F401 - loaded before the memory baseline
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import deferLater

    if impl == "twisted_ch":
        import twisted_ch.extronlib.interface  # noqa: F401

    if impl.startswith("fleet") or impl == "twisted-snmp":
        import twisted_ch.service._services  # noqa: F401
        import twisted_ch.service.probes  # noqa: F401
        import twisted_ch.tap  # noqa: F401
    if impl in ("fleet-snmp", "twisted-snmp"):
        from twisted_ch.service.probes import _asn1

        _asn1()

    c: Counters = FleetCounters() if impl.startswith("fleet-") else Counters()
    setup: Any
    if impl.startswith("fleet-"):
        kind = impl.split("-", 1)[1]

        def setup(reactor: Any, ports: list[int], n: int, c: Any) -> Callable[[int], None]:
            return setupFleet(reactor, kind, n, c, args)

    elif impl == "twisted-snmp":

        def setup(reactor: Any, ports: list[int], n: int, c: Any) -> Callable[[int], None]:
            return setupTwistedSNMP(reactor, ports, n, c, args)

    else:
        setup = {
            "twisted_ch": setupTwistedCh,
            "twisted": setupTwisted,
            "twisted-direct": setupTwistedDirect,
            "twisted-thread": setupTwistedThread,
            "twisted_ch-async": setupTwistedChAsync,
            "twisted_ch-async-tuned": partial(setupTwistedChAsync, tuned=True),
            "twisted_ch-program": setupTwistedChProgram,
        }[impl]
    out: list[Result] = []

    async def main() -> None:
        async def sleep(s: float) -> None:
            await deferLater(reactor, s)

        out.append(await measure(impl, args, c, setup, reactor.callLater, sleep, reactor))

    d = ensureDeferred(main())
    d.addErrback(lambda f: f.printTraceback())
    d.addBoth(lambda _: reactor.stop())
    reactor.run()  # type: ignore[attr-defined]
    return out[0]


def runAsyncio(args: argparse.Namespace) -> Result:
    import asyncio

    c = Counters()

    async def main() -> Result:
        loop = asyncio.get_running_loop()

        class Poller(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                c.connected += 1
                self.transport: asyncio.Transport = transport  # type: ignore[assignment]
                self.lines = Lines(c)
                delay = firstPollDelay(loop.time())
                self.next = loop.time() + (INTERVAL if delay is None else delay)
                self.handle = loop.call_at(self.next, self.poll)

            def poll(self) -> None:
                c.sent += 1
                self.transport.write(REQUEST)
                self.next += INTERVAL
                self.handle = loop.call_at(self.next, self.poll)

            def data_received(self, data: bytes) -> None:
                self.lines.feed(data)

            def connection_lost(self, exc: Exception | None) -> None:
                c.lost += 1
                self.handle.cancel()

        tasks: set[asyncio.Task[Any]] = set()

        def setup(
            reactor: Any, ports: list[int], n: int, counters: Counters
        ) -> Callable[[int], None]:
            def start(i: int) -> None:
                coro = loop.create_connection(Poller, "127.0.0.1", ports[i % len(ports)])
                task = loop.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            return start

        return await measure("asyncio", args, c, setup, loop.call_later, asyncio.sleep, None)

    return asyncio.run(main())


def preload(impl: str) -> None:
    """
    Import what C{impl}'s setup imports before the memory baseline: the modules are a cost of
    the process, paid once, not of its devices (at N=1000, the service's imports alone would
    add 3 KiB to each device's share).
    """
    if impl.startswith(("twisted_ch", "fleet-")):
        import twisted_ch.service.probes
        import twisted_ch.tap  # noqa: F401
    if impl.endswith("snmp"):
        from twisted_ch.service.probes import SYS_UPTIME, _asn1, decodeMessage, encodeMessage

        # the codec's own caches fill on first use: one round trip
        message = encodeMessage(1, b"public", "get-request", 1, [(SYS_UPTIME, _asn1().NULL)])
        decodeMessage(message)


async def measure(
    impl: str,
    args: argparse.Namespace,
    c: Counters,
    setup: Callable[[Any, list[int], int, Counters], Callable[[int], None]],
    callLater: Callable[..., Any],
    sleep: Callable[[float], Any],
    reactor: Any,
) -> Result:
    """The common protocol: connect all over the ramp, settle, then measure a window."""
    n, ports = args.devices, args.ports
    notes: list[str] = []
    preload(impl)
    gc.collect()
    if args.memory:
        tracemalloc.start()
    rss0, fds0 = rssBytes(), openFds()
    traced0 = tracemalloc.get_traced_memory()[0] if args.memory else 0
    started = now()
    start = setup(reactor, ports, n, c)
    if hasattr(start, "addCallback"):  # built on a program thread
        start = await start
    tracedUnconnected = None
    if args.memory and impl == "twisted_ch":
        gc.collect()
        tracedUnconnected = (tracemalloc.get_traced_memory()[0] - traced0) / n / 1024
    fleet = impl.startswith("fleet-")
    notes += getattr(c, "notes", [])
    connectStart = now()
    if fleet:  # the service starts every device itself, spread as it chooses
        start(0)
        n = getattr(c, "devices", n)
    else:
        ramp = 0.0 if SHAPE["together"] else args.ramp
        for i in range(n):
            callLater(ramp * i / n, start, i)
    deadline = now() + args.ramp + 60 + n / 200
    while c.connected < n and now() < deadline:
        await sleep(0.02 if fleet else 0.1)
    connectSeconds = now() - connectStart
    firsts = sorted(getattr(c, "firstConnects", []))
    if firsts:
        notes.append(
            f"first connects: median {1e3 * firsts[len(firsts) // 2]:.1f} ms, "
            f"slowest {1e3 * firsts[-1]:.1f} ms, {sum(1 for x in firsts if x >= 1.0)} took 1 s "
            "or more (a SYN retransmitted)"
        )
    if c.connected < n:
        notes.append(f"only {c.connected} of {n} connected")
    if fleet and SHAPE["together"]:
        together(getattr(c, "handlers", []))
        notes.append("together: every device's PollTimer restarted in one reactor turn")
    await sleep(INTERVAL * max(1.0, args.poll_frequency) + args.settle)
    scraping = None
    url = getattr(c, "statusURL", None)

    gc.collect()
    rss1, fds1 = rssBytes(), openFds()
    traced1 = tracemalloc.get_traced_memory()[0] if args.memory else 0
    # a full collection of N handlers stalls the reactor; let the polls due meanwhile run first
    await sleep(1.5)
    profiler = threadProfiler = None
    program = getattr(setupTwistedChProgram, "program", None) if impl.endswith("program") else None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        if program is not None:  # the program thread's own profile, beside the reactor's
            threadProfiler = cProfile.Profile()
            await program.runCallable(threadProfiler.enable)
        profiler.enable()
    gcTimer = GCTimer()
    gc.callbacks.append(gcTimer)
    if url is not None:
        scraping = scraper(url, SCRAPE_EVERY)
    cpu0, t0, answered0, sent0, lost0 = cpuSeconds(), now(), c.answered, c.sent, c.lost
    await sleep(args.seconds)
    cpu1, t1, answered1, sent1, lost1 = cpuSeconds(), now(), c.answered, c.sent, c.lost
    gc.callbacks.remove(gcTimer)
    if scraping is not None:
        scraping.kill()
        notes.append(f"/status and /metrics scraped every {SCRAPE_EVERY:g} s from another process")
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
        if threadProfiler is not None and program is not None:
            await program.runCallable(threadProfiler.disable)
            threadProfiler.dump_stats(args.profile + ".program")
        notes.append(f"cProfile of the window in {args.profile} (CPU figures include its cost)")
    wall = t1 - t0
    answered = answered1 - answered0
    return Result(
        impl=impl,
        devices=n,
        shape="together" if SHAPE["together"] else "spread",
        seconds=round(wall, 3),
        connected=c.connected,
        pollsPerSecond=round(answered / wall, 1),
        cpuMicrosPerPoll=round((cpu1 - cpu0) / max(answered, 1) * 1e6, 2),
        cpuFraction=round((cpu1 - cpu0) / wall, 3),
        sentPerSecond=round((sent1 - sent0) / wall, 1),
        lostInWindow=lost1 - lost0,
        rssKiBPerHandler=round((rss1 - rss0) / n / 1024, 2),
        fds=fds1,
        fdsBaseline=fds0,
        tracedKiBPerHandler=round((traced1 - traced0) / n / 1024, 2) if args.memory else None,
        tracedKiBPerUnconnectedHandler=(
            round(tracedUnconnected, 2) if tracedUnconnected is not None else None
        ),
        gcMillisPerSecond=round(gcTimer.seconds / wall * 1e3, 2),
        connectSeconds=round(connectSeconds, 3),
        slowestFirstConnect=round(firsts[-1], 4) if firsts else None,
        firstConnectsOverOneSecond=sum(1 for x in firsts if x >= 1.0),
        setupSeconds=round(connectStart - started, 3),
        gcCollections=gcTimer.counts,
        gcMillisByGeneration={k: round(v, 1) for k, v in gcTimer.millis.items()},
        notes=notes,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pollers")
    parser.add_argument("--impl", choices=ALL_IMPLS, required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--ports", type=lambda s: [int(p) for p in s.split(",")], required=True)
    parser.add_argument("--sim", type=json.loads, default={}, help="the simulator's port line")
    parser.add_argument("--shard", help="fleet rows: run as twistd chandler --shard I/N")
    parser.add_argument("--poll-frequency", type=float, default=INTERVAL, help="fleet rows")
    parser.add_argument(
        "--start-rate", type=float, default=0, help="fleet rows: first connects per second"
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="spread",
        help="together: polls fall due in one reactor turn; spread: over the --ramp",
    )
    parser.add_argument(
        "--ramp", type=float, default=1.0, help="spread: seconds to open all connections"
    )
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--memory", action="store_true", help="trace allocations (slower)")
    parser.add_argument("--profile", help="write a cProfile of the measured window to this file")
    args = parser.parse_args(argv)
    SHAPE["together"] = args.shape == "together"
    # the fleet checks its descriptor budget at start (2 per device, see service._limits)
    raiseFileLimit(2 * args.devices + 1024)
    result = runAsyncio(args) if args.impl == "asyncio" else runTwisted(args.impl, args)
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip closing thousands of sockets one by one


if __name__ == "__main__":
    main()
