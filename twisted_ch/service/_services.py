# mypy: disable-error-code="no-untyped-call"
# (twisted.application.service is unannotated)
"""
The services of C{twistd chandler}: the top service (SIGTERM, log observer), the configured
devices and servers, and a ControlScript-style program.
"""

from __future__ import annotations

import atexit
import functools
import gc
import hashlib
import ipaddress
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from twisted_ch import _site
from twisted_ch._confusables import lookAlikesAmong
from twisted_ch._link import attemptsMade
from twisted_ch._memory import MemoryLimitExceeded
from twisted_ch._objects import ownAttribute
from twisted_ch._retry import RetryPolicy
from twisted_ch._stopping import CLIENT_CLOSE_GRACE, stopHandler
from twisted_ch.service._config import (
    ConfigError,
    DeviceConfig,
    ProgramConfig,
    ServerConfig,
    isWildcardAddress,
    memoryLimitOf,
    redactEndpoint,
)
from twisted_ch.service._heap import returnBigBuffers
from twisted_ch.service._limits import (
    STATUS_MAX_HELD,
    DescriptorBudgetError,
    checkDescriptorBudget,
    descriptorsPerDevice,
    raiseDescriptorLimit,
    refuseToStart,
)
from twisted_ch.service._links import REFRESH_EVERY, ProgramLinks, addressOf, interfaceFields
from twisted_ch.service._registry import Entry, Registry, isObjectRepr
from twisted_ch.service._stalls import StallMonitor

__all__ = [
    "Shard",
    "PROGRAM_STOP_TIMEOUT",
    "ChandlerService",
    "ConfigDiff",
    "DevicesService",
    "ProgramService",
    "TraceService",
    "buildHandler",
    "buildServer",
    "diffConfigs",
    "retryPolicyFor",
    "availableCores",
    "startShare",
]

log = Logger(namespace="twisted_ch.tap")

#: Seconds a program's thread gets to finish (its top level, its queued callbacks) at stop.
PROGRAM_STOP_TIMEOUT = 5.0
#: First connects per second when the service starts: a big config's devices connect over a
#: window (17,000 devices, a shard of 50,000: 4.3 s) instead of all at once, which would
#: overflow the listen backlogs of shared device gateways and leave SYNs to the kernel's 1, 3,
#: 7 ... s retransmissions.
START_RATE = 4000.0
#: How often a batch of first connects is started (a batch is START_RATE * START_TICK devices).
START_TICK = 0.01
#: At most this many first connects are unanswered at once (a listen backlog is commonly 128),
#: so a slow gateway slows the start instead of dropping SYNs; an attempt unanswered for
#: START_PATIENCE seconds (a device that is off) no longer holds the others back.
START_OUTSTANDING = 100
START_PATIENCE = 1.0
#: Devices built (their handler made and shown) per reactor turn at start, at most, and the
#: seconds after which a slice ends earlier: the reactor serves the status page and the first
#: connects in between (a device takes about 0.2 ms to build).
BUILD_SLICE = 100
BUILD_SLICE_SECONDS = 0.005
#: The share of one core that start-up work (build slices, first connects: everything the
#: reactor's thread runs meanwhile counts) may take, when the service is given a CPU clock
#: (L{DevicesService.cpuClock}, as twistd's is): past it, the next slice or batch waits until
#: the thread has been idle long enough.  A shard that never lets go of its core (a slice per
#: reactor turn) is one more runnable process for the scheduler, and with three shards and their
#: simulators on two cores each of them waits tens of milliseconds for a core between turns:
#: those were the start-up's longest stalls (71-99 ms, of which 9-16 ms the reactor's own CPU).
START_CPU = 0.5
#: The share of the machine's cores that the start-ups of one config's shards take between them
#: (C{--shard I/N}: the N processes are taken to share this machine, as C{deploy/}'s systemd unit
#: and C{bench scale} run them): each shard keeps to L{startShare}, less than L{START_CPU} when
#: N shards at L{START_CPU} would take more.  Three shards at half a core each on two cores kept
#: the machine's run queue full for the whole start: each of them then waited 50-100 ms for a
#: core between turns (issue 21); at a third of a core each, 28-50 ms.
START_MACHINE = 0.5
#: The longest a start-up step waits for its CPU share (so that a busy reactor still builds and
#: connects at least BUILD_SLICE devices and a batch every START_PAUSE_MAX seconds).
START_PAUSE_MAX = 0.05
#: A config of more devices than this starts with one line, not one per device.
WATCH_LINES = 100
#: Seconds between two looks whether every device is Connected at start, and how many looks
#: at most (then the start-up line says how many are).
START_WATCH = 0.5
START_WATCH_CHECKS = 240
#: Handlers a look examines at most (each look goes on where the last stopped, and a device
#: once seen Connected is not looked at again): a look at every handler of a 17,000-device shard
#: held the reactor for about 5 ms every START_WATCH seconds.
START_WATCH_SLICE = 2000
#: The cyclic garbage collector's first threshold while chandler runs (CPython's default: 700).
#: Every device has a keep-alive in flight at times, and at the default a fleet collects so often
#: that those short-lived objects reach the oldest generation and force full collections of the
#: whole fleet (at 2,000 devices, a quarter of chandler's CPU went to the collector).
GC_THRESHOLD = 20_000
#: Once the first connects are over, what then exists (every device's connection) is frozen too,
#: so that full collections no longer go through it; every GC_REFREEZE seconds what has lived
#: since is collected and frozen as well.  Frozen objects are not collected: a garbage cycle
#: among them stays until the heap is unfrozen.  Churn makes such cycles: every connect attempt
#: leaves one once it is refused or its connection lost (Twisted's TCP connector and wrapping
#: factory: 5 objects, 563 bytes per dropped connection, the link breaking the transport's part;
#: a refused attempt's transport too: 0.9 KiB), and so does every device a reload removes or
#: changes (its handler, link, timer and probe: 32 objects, 3.9 KB), as measured by
#: C{python -m bench.churn}.  So at a GC_REFREEZE tick after churn (attempts plus
#: removed devices since the last full collection) of at least GC_CHURN times the fleet's
#: devices (and at least GC_CHURN_MIN), the heap is unfrozen, collected whole and frozen again:
#: what churn leaks is reclaimed within GC_REFREEZE seconds, at the cost of one full collection
#: (at 17,000 devices it holds the reactor for about a second, see bench/README.md's Findings
#: item 10); a fleet that does not churn never pays it.
GC_REFREEZE = 600.0
#: Churn (connect attempts and removed devices) per device of the fleet that is worth a full
#: collection at the next GC_REFREEZE tick, and the least churn that is (a small fleet's full
#: collection is cheap, but its garbage is too).
GC_CHURN = 0.5
GC_CHURN_MIN = 1000
#: How often the service looks whether the first connects are over (at most GC_SETTLE_CHECKS).
GC_SETTLE_CHECK = 1.0
GC_SETTLE_CHECKS = 300


@dataclass(frozen=True)
class Shard:
    """
    Shard C{index} of C{count} (1-based): the devices and servers whose name hashes to it.

    The hash is of the name alone (BLAKE2b, stable across runs, machines and Python versions),
    so adding or removing a device moves no other device to another shard.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard must be I/N with 1 <= I <= N, got {self}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """C{'2/3'} -> Shard(2, 3); ValueError naming what is expected otherwise."""
        parts = text.strip().split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"I/N such as 2/3, not {text!r}")
        index, count = (int(p) for p in parts)
        if not 1 <= index <= count:
            raise ValueError(f"I/N with 1 <= I <= N, not {text!r}")
        return cls(index, count)

    @staticmethod
    def of(name: str, count: int) -> int:
        """The shard (1..count) a name belongs to."""
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % count + 1

    def owns(self, name: str) -> bool:
        """Whether the device or server of this name is this shard's."""
        return self.count == 1 or self.of(name, self.count) == self.index

    @property
    def label(self) -> str:
        """How /status and /metrics name the shard: C{'2/3'}."""
        return f"{self.index}/{self.count}"

    def __str__(self) -> str:
        return self.label


class ChandlerService(MultiService):
    """
    The top service.  Stopping it stops every child (the program first, the status page last);
    SIGTERM stops it and then the reactor, and twistd exits with status 0.
    """

    def __init__(self, reactor: Any, registry: Registry) -> None:
        super().__init__()
        self.reactor = reactor
        self.registry = registry
        self.logObserver: ILogObserver | None = None
        self.handleSIGTERM = True
        #: whether L{exitWith} ends the process (under twistd), or only records the status
        self.exitProcess = True
        #: the exit status asked for by L{exitWith} (None: none)
        self.exitStatus: int | None = None
        #: set the garbage collector (see L{GC_THRESHOLD}) and the heap (L{returnBigBuffers}) for a
        #: long-running fleet; twistd only
        self.tuneGC = False
        self._gcTimer: IDelayedCall | None = None
        self._gcDisabled = False
        #: connect attempts made before this service (not its churn), and its churn (see
        #: L{_churn}) at the last full collection
        self._attemptsBefore = attemptsMade()
        self._churnSince = 0
        #: measures the reactor's stalls while the reactor runs (None: not measured)
        self.stallMonitor: StallMonitor | None = None
        self._previousSIGTERM: Any = None
        self._previousSIGHUP: Any = None
        #: reads the config again for L{reload}: its devices and servers (this shard's), or
        #: raises L{ConfigError}; None: there is no config file (nothing to reload)
        self.reloadConfig: Callable[[], tuple[Iterable[DeviceConfig], Iterable[ServerConfig]]]
        self.reloadConfig = None  # type: ignore[assignment]
        #: the configured devices and servers (what L{reload} changes)
        self.devices: DevicesService | None = None

    def setServiceParent(self, parent: Any) -> None:
        # twistd asks the application for an ILogObserver component before it starts logging
        super().setServiceParent(parent)
        if self.logObserver is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.logObserver)

    def startService(self) -> None:
        log.info("chandler starting")
        raiseDescriptorLimit()  # before anything opens a descriptor (see service._limits)
        threshold = gc.get_threshold()
        if self.tuneGC:
            if threshold[0] == 700:  # CPython's default: nobody chose another
                gc.set_threshold(GC_THRESHOLD, *threshold[1:])
            returnBigBuffers()  # (service._heap: a scrape's buffers are not kept for good)
        super().startService()
        if self.tuneGC:
            # what exists now (the configured devices, the modules) lives as long as the service:
            # full collections need not go through it again and again
            gc.freeze()
            # while the devices are built and first connected, nothing is collected: what is
            # made then lives as long as the service (a collection of the middle generation
            # would go through a growing fleet, tens of milliseconds each time)
            if any(getattr(child, "starting", False) for child in self):
                gc.disable()
                self._gcDisabled = True
            self._gcTimer = self.reactor.callLater(GC_SETTLE_CHECK, self._freezeWhenStarted, 1)
        if self.handleSIGTERM:
            self.reactor.callWhenRunning(self._takeSIGTERM)
        if self.stallMonitor is not None:
            self.reactor.callWhenRunning(self._startStallMonitor)

    def _startStallMonitor(self) -> None:
        if self.running and self.stallMonitor is not None:
            self.stallMonitor.start()

    def _freezeWhenStarted(self, checks: int) -> None:
        """Freeze the connections too, once no child is making first connects (L{GC_REFREEZE})."""
        starting = any(getattr(child, "starting", False) for child in self)
        if starting and checks < GC_SETTLE_CHECKS:
            self._gcTimer = self.reactor.callLater(
                GC_SETTLE_CHECK, self._freezeWhenStarted, checks + 1
            )
            return
        # what was built and connected since startService (a whole fleet) is frozen as it is:
        # going through it would hold the reactor for as long as a full collection
        gc.freeze()
        self._enableGC()
        self._churnSince = self._churn()
        self._gcTimer = self.reactor.callLater(GC_REFREEZE, self._refreeze)

    def _enableGC(self) -> None:
        if self._gcDisabled:
            self._gcDisabled = False
            gc.enable()

    def _churn(self) -> int:
        """Connect attempts made, and devices removed or replaced, since the service was made."""
        removed = sum(getattr(child, "removedDevices", 0) for child in self)
        return attemptsMade() - self._attemptsBefore + removed

    def _fleetSize(self) -> int:
        return sum(len(getattr(child, "handlers", ())) for child in self)

    def _refreeze(self) -> None:
        churn = self._churn()
        if churn - self._churnSince >= max(GC_CHURN * self._fleetSize(), GC_CHURN_MIN):
            # the garbage cycles churn left among frozen objects (see GC_REFREEZE)
            started = time.perf_counter()
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
            log.info(
                "garbage collection: {found} objects reclaimed after {churn} connect attempts "
                "and removed devices, in {seconds:.2f} s",
                found=found,
                churn=churn - self._churnSince,
                seconds=time.perf_counter() - started,
            )
            self._churnSince = churn
        else:
            # a full collection goes through what is not frozen only: what lived since the last
            # freeze
            gc.collect()
            gc.freeze()
        self._gcTimer = self.reactor.callLater(GC_REFREEZE, self._refreeze)

    def _takeSIGTERM(self) -> None:
        # twistd re-raises SIGTERM after shutdown (exit status -15); stopping the reactor
        # ourselves makes a SIGTERM an ordinary clean stop with exit status 0
        if threading.current_thread() is not threading.main_thread() or not self.running:
            return

        def onSIGTERM(number: int, frame: Any) -> None:
            log.info("received SIGTERM; stopping")
            self.reactor.callFromThread(_stopReactor, self.reactor)

        self._previousSIGTERM = signal.signal(signal.SIGTERM, onSIGTERM)

        def onSIGHUP(number: int, frame: Any) -> None:
            self.reactor.callFromThread(self.reload)

        self._previousSIGHUP = signal.signal(signal.SIGHUP, onSIGHUP)

    def reload(self) -> Deferred[ConfigDiff | None]:
        """
        Read the config again (SIGHUP, C{systemctl reload}) and apply it: added devices and
        servers start, removed ones stop, changed ones restart, unchanged ones are not touched.
        A config that does not load is refused (its one-line error logged): nothing changes.
        Fires with the difference applied (None: nothing was), once removed ones are stopped.
        """
        if self.reloadConfig is None or self.devices is None:
            log.warn("reload: nothing to reload (chandler runs without --config)")
            return succeed(None)
        try:
            devices, servers = self.reloadConfig()
        except ConfigError as e:
            log.error("reload refused: {error}; the running devices stay as they are", error=str(e))
            return succeed(None)
        diff, done = self.devices.reload(devices, servers)
        log.info(
            "reload: {added} added, {removed} removed, {changed} changed, {unchanged} unchanged",
            added=len(diff.added),
            removed=len(diff.removed),
            changed=len(diff.changed),
            unchanged=len(diff.unchanged),
            names={"added": diff.added, "removed": diff.removed, "changed": diff.changed},
        )
        return done.addCallback(lambda _: diff)

    def exitWith(self, status: int) -> None:
        """
        Stop everything and end the process with C{status} (twistd itself always exits 0 once
        its reactor has stopped: the status is set when the interpreter exits, after twistd's
        own cleanup).
        """
        if self.exitStatus is not None:
            return
        self.exitStatus = status
        if not self.exitProcess:
            return
        atexit.register(_exitStatus, status)
        self.reactor.callWhenRunning(self.reactor.stop)

    def stopService(self) -> Deferred[None]:
        log.info("chandler stopping")
        if self.stallMonitor is not None:
            self.stallMonitor.stop()
        if self._gcTimer is not None and self._gcTimer.active():
            self._gcTimer.cancel()
        self._gcTimer = None
        self._enableGC()
        if self._previousSIGTERM is not None:
            signal.signal(signal.SIGTERM, self._previousSIGTERM)
            self._previousSIGTERM = None
        if self._previousSIGHUP is not None:
            signal.signal(signal.SIGHUP, self._previousSIGHUP)
            self._previousSIGHUP = None
        d: Deferred[None] = super().stopService()

        def stopped(result: object) -> None:
            self.registry.stopTracking()
            log.info("chandler stopped: every link closed, nothing listening")

        return d.addCallback(stopped)


class TraceService(Service):
    """Starts the wire traces asked for at start (C{--trace}); stops every trace at stop."""

    def __init__(self, trace: Any, names: Iterable[str], minutes: float) -> None:
        self.trace = trace
        self.names = list(names)
        self.minutes = minutes

    def startService(self) -> None:
        super().startService()
        for name in self.names:
            self.trace.start(name, self.minutes)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.trace.stopAll()
        return succeed(None)


def _stopReactor(reactor: Any) -> None:
    """Stop C{reactor}, unless it is stopping already (a second SIGTERM during shutdown)."""
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


def _exitStatus(status: int) -> None:
    """At interpreter exit: flush what was written and end with C{status}."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


def _gather(ds: Iterable[Deferred[Any]], what: str) -> Deferred[None]:
    def logged(results: list[tuple[bool, Any]]) -> None:
        for ok, value in results:
            if not ok:
                log.failure("while stopping {what}", value, what=what)

    return DeferredList(list(ds), consumeErrors=True).addCallback(logged)


@dataclass(frozen=True)
class ConfigDiff:
    """What a reload changes, by name (devices and servers share one namespace)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


def diffConfigs(
    old: Iterable[DeviceConfig | ServerConfig], new: Iterable[DeviceConfig | ServerConfig]
) -> ConfigDiff:
    """
    The names added, removed, changed (any setting differs, or a device became a server) and
    unchanged from C{old} to C{new}, each in its config's order.
    """
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    return ConfigDiff(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        changed=tuple(n for n in after if n in before and before[n] != after[n]),
        unchanged=tuple(n for n in after if n in before and before[n] == after[n]),
    )


class DevicesService(Service):
    """
    Connection handlers built from L{DeviceConfig}s (and ServerExHandlers from
    L{ServerConfig}s), shown in the registry.  Devices added while running start at once.

    Names are unique across devices and servers: the registry and L{handlers} are keyed by
    name, and a handler replaced under its name would never be stopped.
    """

    def __init__(
        self,
        reactor: Any,
        registry: Registry,
        devices: Iterable[DeviceConfig] = (),
        servers: Iterable[ServerConfig] = (),
        clientCloseGrace: float = CLIENT_CLOSE_GRACE,
        startRate: float = START_RATE,
        buildSlice: int = BUILD_SLICE,
    ) -> None:
        self.reactor = reactor
        self.registry = registry
        self.clientCloseGrace = clientCloseGrace
        if not startRate > 0:
            raise ValueError(f"startRate must be positive, got {startRate!r}")
        if buildSlice < 1:
            raise ValueError(f"buildSlice must be at least 1, got {buildSlice!r}")
        self.startRate = startRate
        self.buildSlice = buildSlice
        #: the clock a build slice's time is measured by (a slice ends after BUILD_SLICE_SECONDS)
        self.sliceClock: Callable[[], float] = time.perf_counter
        #: the reactor thread's CPU clock (C{time.thread_time}): with it, start-up work keeps to
        #: L{startShare} of a core (see L{_Pacer}); None: slices and batches as fast as they go
        self.cpuClock: Callable[[], float] | None = None
        #: the share of a core start-up work keeps to, with a CPU clock (see L{startShare})
        self.startShare = START_CPU
        self._pacer: _Pacer | None = None
        #: whether the devices being built log at debug level (a big start, or reload)
        self._quiet = False
        #: called with a device's name as soon as it is built, before its first connect
        self.deviceAdded: list[Callable[[str], object]] = []
        #: devices still to be built at start (L{BUILD_SLICE} per reactor turn)
        self._toBuild: deque[DeviceConfig] = deque()
        self._building: IDelayedCall | None = None
        self._watching: IDelayedCall | None = None
        self._startedAt = 0.0
        self._builtAt: float | None = None
        self._connectsMadeAt: float | None = None
        #: handlers built at start whose first Connect is still to come, in config order
        self._toConnect: deque[tuple[DeviceConfig, Any]] = deque()
        self._connecting: Any = None
        #: first connects not answered yet: when each started, by handler id
        self._outstanding: dict[int, float] = {}
        #: the start's devices not seen Connected yet (L{_watchStart}), and how many were
        self._unseen: deque[tuple[str, Any]] = deque()
        self._seen = 0
        self._devices: list[DeviceConfig] = []
        self._servers: list[ServerConfig] = []
        self._names: dict[str, str] = {}
        self.handlers: dict[str, Any] = {}
        #: devices and servers stopped by a reload (removed, or changed: replaced by a new one)
        self.removedDevices = 0
        for device in devices:
            self.add(device)
        for server in servers:
            self.addServer(server)

    def _claim(self, name: str, what: str) -> None:
        taken = self._names.get(name)
        if taken is not None:
            raise ValueError(f"{what} name {name!r} is already the name of a {taken}")
        self._names[name] = what

    def add(self, device: DeviceConfig) -> None:
        """
        Watch one more device (now if running, else from the start).

        @raise ValueError: a device or server of that name exists already.
        """
        self._claim(device.name, "device")
        self._devices.append(device)
        if self.running:
            self._startDevice(device)

    def addServer(self, server: ServerConfig) -> None:
        """
        Serve one more port (now if running, else from the start).

        @raise ValueError: a device or server of that name exists already.
        """
        self._claim(server.name, "server")
        self._servers.append(server)
        if self.running:
            self._startServer(server)

    def _refuse(self, name: str) -> bool:
        """Whether a handler of this name runs already (then it is not replaced: logged)."""
        if name not in self.handlers:
            return False
        log.error("{name}: not started: a handler of that name is running already", name=name)
        return True

    def startService(self) -> None:
        soft, hard = raiseDescriptorLimit()
        try:
            needed = checkDescriptorBudget(
                len(self._devices),
                {s.name: s.MaxClients or 0 for s in self._servers},
                STATUS_MAX_HELD,
                soft,
                sum(descriptorsPerDevice(d.endpointType) for d in self._devices),
                hard,
            )
        except DescriptorBudgetError as e:
            refuseToStart(str(e))
        if len(self._devices) > WATCH_LINES:
            log.info(
                "descriptors: {devices} devices may need {needed} of the {limit} this process "
                "may open",
                devices=len(self._devices),
                needed=needed,
                limit="unlimited" if soft < 0 else soft,
            )
        super().startService()
        for server in self._servers:
            self._startServer(server)
        # the devices are built (and shown) BUILD_SLICE at a time, one slice per reactor turn,
        # so that a big config does not hold the reactor; first connects go out at startRate
        # as soon as the first are built
        self._toBuild = deque(self._devices)
        self._quiet = len(self._devices) > WATCH_LINES
        if self._quiet:
            paced = self.cpuClock is not None
            log.info(
                "watching {devices} devices (each one's line, and its first connect if made at "
                "once, at debug level){pace}",
                devices=len(self._devices),
                startShare=self.startShare if paced else None,
                pace=f"; building and first connects keep to {self.startShare:.2f} of a core"
                if paced
                else "",
            )
        self._startedAt = self.reactor.seconds()
        self._builtAt = self._connectsMadeAt = None
        self._unseen, self._seen = deque(), 0
        self._pause()  # the pace is measured from here
        self._buildSlice()
        self._connectBatch()
        self._watchStart(0)

    def _pause(self) -> float:
        """Seconds the next start-up step waits (0 without a CPU clock: see L{START_CPU})."""
        if self.cpuClock is None:
            return 0.0
        if self._pacer is None:
            self._pacer = _Pacer(self.startShare, self.cpuClock, self.reactor.seconds)
        return min(self._pacer.pause(), START_PAUSE_MAX)

    def _watchStart(self, checks: int) -> None:
        """
        Each L{START_WATCH} s until every device is Connected (at most L{START_WATCH_CHECKS}
        times): when all are, one line says how long the start took.
        """
        self._watching = None
        unseen, handlers = self._unseen, self.handlers
        for _ in range(min(START_WATCH_SLICE, len(unseen))):
            name, watched = unseen.popleft()
            current = handlers.get(name)
            if current is None or current is not watched:
                continue  # removed or replaced by a reload
            if current.ConnectionStatus == "Connected":
                self._seen += 1
            else:
                unseen.append((name, watched))
        connected = self._seen
        now = self.reactor.seconds()
        if self._builtAt is None and not self._toBuild:
            self._builtAt = now
        if self._connectsMadeAt is None and not self.starting:
            self._connectsMadeAt = now
        total = len(self._devices)
        if (not unseen and self._builtAt is not None) or checks >= START_WATCH_CHECKS:
            self._unseen = deque()
            built, made = self._builtAt, self._connectsMadeAt
            log.info(
                "start-up: {connected} of {devices} devices Connected {seconds:.1f} s after the "
                "service started (built in {built}, first connects made in {made})",
                startup=True,
                connected=connected,
                devices=total,
                seconds=now - self._startedAt,
                built="-" if built is None else f"{built - self._startedAt:.1f} s",
                made="-" if made is None else f"{made - self._startedAt:.1f} s",
            )
            return
        self._watching = self.reactor.callLater(START_WATCH, self._watchStart, checks + 1)

    def _buildSlice(self) -> None:
        self._building = None
        toBuild = self._toBuild
        clock = self.sliceClock
        started = clock()
        for _ in range(min(self.buildSlice, len(toBuild))):
            self._startDevice(toBuild.popleft(), spread=True)
            if clock() - started >= BUILD_SLICE_SECONDS:
                break
        if toBuild:
            self._building = self.reactor.callLater(self._pause(), self._buildSlice)
        elif self._builtAt is None:
            self._builtAt = self.reactor.seconds()

    def _toStart(self, devices: Iterable[DeviceConfig]) -> None:
        """Build and first connect C{devices} (while running) as at start: in slices, paced."""
        self._toBuild.extend(devices)
        if self._toBuild and self._building is None:
            self._pause()
            self._buildSlice()
        if self._connecting is None and (self._toConnect or self._toBuild):
            self._connectBatch()

    def _connectBatch(self) -> None:
        self._connecting = None
        now = self.reactor.seconds()
        outstanding = self._outstanding
        for key, started in list(outstanding.items()):
            if now - started >= START_PATIENCE:
                del outstanding[key]
        batch = min(
            max(1, round(self.startRate * START_TICK)), START_OUTSTANDING - len(outstanding)
        )
        queue = self._toConnect
        while queue and batch > 0:
            cfg, handler = queue.popleft()
            if self.handlers.get(cfg.name) is handler and not self._isPaused(cfg.name):
                result = self._connect(cfg, handler)
                batch -= 1
                if isinstance(result, Deferred) and not result.called:
                    key = id(handler)
                    outstanding[key] = now
                    result.addBoth(self._answered, key)
        if queue or self._toBuild:
            self._connecting = self.reactor.callLater(
                max(max(1, round(self.startRate * START_TICK)) / self.startRate, self._pause()),
                self._connectBatch,
            )

    def _isPaused(self, name: str) -> bool:
        """Paused for maintenance before its first connect (resuming connects it)."""
        entry = self.registry.find(name)
        return entry is not None and self.registry.pausedSince(entry) is not None

    @property
    def starting(self) -> bool:
        """Whether devices are still to be built, or first connects made or answered."""
        return bool(self._toBuild or self._toConnect or self._outstanding)

    def _answered(self, result: object, key: int) -> object:
        self._outstanding.pop(key, None)
        return result

    def _stopConnecting(self) -> None:
        if self._watching is not None:
            if self._watching.active():
                self._watching.cancel()
            self._watching = None
        if self._building is not None:
            if self._building.active():
                self._building.cancel()
            self._building = None
        self._toBuild.clear()
        self._unseen.clear()
        self._toConnect.clear()
        self._outstanding.clear()
        if self._connecting is not None:
            if self._connecting.active():
                self._connecting.cancel()
            self._connecting = None

    def _startDevice(self, cfg: DeviceConfig, spread: bool = False) -> None:
        if self._refuse(cfg.name):
            return
        try:
            handler, probe = buildHandler(self.reactor, cfg)
        except Exception:
            log.failure("{device}: cannot start", device=cfg.name)
            return
        self.handlers[cfg.name] = handler
        # a big config's start is one line (see startService); each device's at debug level
        quiet = spread and self._quiet
        self.registry.add(
            Entry(
                cfg.name,
                handler,
                cfg.endpoint,
                "device",
                probe,
                health=cfg.health,
                room=cfg.room,
                tags=cfg.tags,
                config=cfg,
            ),
            quietFirstConnect=quiet,
        )
        for added in self.deviceAdded:
            try:
                added(cfg.name)
            except Exception:
                log.failure("{device}: a device-added observer failed", device=cfg.name)
        (log.debug if quiet else log.info)(
            "{device}: watching {endpoint} ({connection}; probe {probe}; poll every {poll} s; "
            "disconnected after {limit} misses)",
            device=cfg.name,
            endpoint=_Redacted(cfg.endpoint) if quiet else redactEndpoint(cfg.endpoint),
            connection=cfg.connection,
            probe=cfg.probe.kind if cfg.probe is not None else "none",
            poll=cfg.pollFrequency,
            limit=cfg.DisconnectLimit,
        )
        if self._watching is not None or self._builtAt is None:
            self._unseen.append((cfg.name, handler))  # the start's (see _watchStart)
        if spread:
            self._toConnect.append((cfg, handler))
        else:
            self._connect(cfg, handler)

    @staticmethod
    def _connect(cfg: DeviceConfig, handler: Any) -> object:
        if cfg.connection == "stream":
            handler.AutoReconnect = cfg.AutoReconnect
            return handler.Connect(cfg.connectTimeout)
        return handler.Connect()

    def _startServer(self, cfg: ServerConfig) -> None:
        if self._refuse(cfg.name):
            return
        try:
            handler = buildServer(self.reactor, cfg)
        except Exception:
            log.failure("{server}: cannot start", server=cfg.name)
            return
        self.handlers[cfg.name] = handler
        where = cfg.interface.replace(":", "\\:")
        self.registry.add(
            Entry(
                cfg.name,
                handler,
                f"tcp:{cfg.port}:interface={where}",
                "server",
                room=cfg.room,
                tags=cfg.tags,
            )
        )
        if isWildcardAddress(cfg.interface):
            log.warn(
                "{server}: reachable from the network: it listens on {interface} (every "
                "interface); give an address such as 127.0.0.1 to keep it local",
                server=cfg.name,
                interface=cfg.interface,
            )

        def listening(result: str) -> None:
            log.info(
                "{server}: {result} on {interface} port {port} (idle clients dropped after "
                "{timeout} s)",
                server=cfg.name,
                result=result,
                interface=cfg.interface,
                port=handler.Interface.IPPort,
                timeout=cfg.serverTimeout,
            )

        handler.StartListen().addCallback(listening)

    def reload(
        self, devices: Iterable[DeviceConfig], servers: Iterable[ServerConfig]
    ) -> tuple[ConfigDiff, Deferred[None]]:
        """
        Watch C{devices} and C{servers} instead: those added start now, those removed stop,
        those changed stop and then start again (a server's port is free by then), and those
        unchanged keep their handler, link and history.  The difference, and a Deferred that
        fires once the stopped ones are stopped (and the changed ones started again).
        """
        newDevices, newServers = list(devices), list(servers)
        every: list[DeviceConfig | ServerConfig] = [*newDevices, *newServers]
        diff = diffConfigs([*self._devices, *self._servers], every)
        self._devices, self._servers = newDevices, newServers
        self._names = {d.name: "device" for d in newDevices}
        self._names.update({s.name: "server" for s in newServers})
        wanted = {c.name: c for c in every}
        if not self.running:
            return diff, succeed(None)
        # devices still to be built (a reload during start-up) are built as the new config has
        # them, or not at all: unchanged ones stay queued, the others start as added or changed
        keep = set(diff.unchanged)
        self._toBuild = deque(c for c in self._toBuild if c.name in keep)
        stops: list[Deferred[Any]] = []
        for name in diff.removed:
            stops.append(self._stopNamed(name))
        for name in diff.changed:
            cfg = wanted[name]
            stopped = self._stopNamed(name)
            stopped.addBoth(self._startAgain, cfg)
            stops.append(stopped)
        added = [wanted[name] for name in diff.added]
        for cfg in added:
            if not isinstance(cfg, DeviceConfig):
                self._startServer(cfg)
        # added devices are built in slices and first connected at the start-up's pace: a
        # reload that adds thousands does not hold the reactor for one long turn
        addedDevices = [cfg for cfg in added if isinstance(cfg, DeviceConfig)]
        self._quiet = len(addedDevices) + len(self._toBuild) > WATCH_LINES
        self._toStart(addedDevices)
        return diff, _gather(stops, "devices removed or changed")

    def _stopNamed(self, name: str) -> Deferred[Any]:
        handler = self.handlers.pop(name, None)
        self.registry.remove(name)
        if handler is None:
            return succeed(None)
        self.removedDevices += 1
        return stopHandler(handler, self.reactor, self.clientCloseGrace)

    def _startAgain(self, result: Any, cfg: DeviceConfig | ServerConfig) -> Any:
        # unless stopped, or reloaded again meanwhile (then that reload decides)
        if self.running and any(c is cfg for c in [*self._devices, *self._servers]):
            self._startConfig(cfg)
        return result

    def _startConfig(self, cfg: DeviceConfig | ServerConfig) -> None:
        if isinstance(cfg, DeviceConfig):
            self._toStart([cfg])  # a changed device: in the build slices, like an added one
        else:
            self._startServer(cfg)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopConnecting()
        handlers, self.handlers = self.handlers, {}
        stops: list[Deferred[Any]] = []
        for name, handler in handlers.items():
            self.registry.remove(name)
            stops.append(stopHandler(handler, self.reactor, self.clientCloseGrace))
        return _gather(stops, "devices")


def availableCores(cpuMax: Path = Path("/sys/fs/cgroup/cpu.max")) -> float:
    """
    The cores this process may use: the CPUs it may run on, or fewer when its control group
    has a CPU quota (cgroup v2's C{cpuMax} file, as a container's limit is).
    """
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    try:
        quota, period = cpuMax.read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            cores = min(cores, float(quota) / float(period))
    except (OSError, ValueError):
        pass
    return max(cores, 0.01)


def startShare(cores: float, shards: int = 1) -> float:
    """
    The share of a core one process's start-up keeps to: L{START_CPU}, or less when C{shards}
    processes starting together on C{cores} cores would take more than L{START_MACHINE} of
    them (3 shards on 2 cores: a third of a core each).
    """
    return min(START_CPU, START_MACHINE * cores / max(1, shards))


class _Pacer:
    """
    Keeps work to C{share} of a core by the thread's CPU clock C{cpu} against the wall clock
    C{wall}: L{pause} is how long to wait before the next step so that the CPU used so far (the
    debt over the share, never a credit for idle time) is paid back.
    """

    __slots__ = ("share", "cpu", "wall", "_cpu", "_wall", "_debt")

    def __init__(self, share: float, cpu: Callable[[], float], wall: Callable[[], float]) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self.share, self.cpu, self.wall = share, cpu, wall
        self._cpu, self._wall, self._debt = cpu(), wall(), 0.0

    def pause(self) -> float:
        """Seconds to wait before the next step (0: go on)."""
        cpu, wall = self.cpu(), self.wall()
        used, elapsed = cpu - self._cpu, wall - self._wall
        self._cpu, self._wall = cpu, wall
        self._debt = max(0.0, self._debt + used - self.share * elapsed)
        return self._debt / self.share


class _Redacted:
    """An endpoint description shown redacted when a log line is written (not before)."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def __str__(self) -> str:
        return redactEndpoint(self.description)

    __repr__ = __str__


def readableName(interface: Any) -> str:
    """An interface (or a module with none) as people read it: its class, and its address."""
    name = type(interface).__name__
    address = addressOf(interface)
    return name if isObjectRepr(address) else f"{name} {address}"


def buildHandler(reactor: Any, cfg: DeviceConfig) -> tuple[Any, Any]:
    """A connection handler (not yet connected) and its probe for one device."""
    from twisted_ch._factory import GetConnectionHandler
    from twisted_ch.endpoints._strings import clientFromString
    from twisted_ch.extronlib.interface import EndpointInterface
    from twisted_ch.service.probes import makeProbe

    probe = makeProbe(cfg.probe.kind, cfg.probe.options) if cfg.probe is not None else None
    endpoint = clientFromString(reactor, cfg.endpoint)
    interface = EndpointInterface(
        endpoint,
        reactor=reactor,
        connectionOriented=cfg.connection == "stream",
        description=cfg.name,
        reopenDelay=cfg.connectRetryTime,
        openNow=False,  # opened by the handler's Connect(), in the service's start-up pacing
    )
    handler = GetConnectionHandler(
        interface,
        probe,
        DisconnectLimit=cfg.DisconnectLimit,
        pollFrequency=cfg.pollFrequency,
        connectRetryTime=cfg.connectRetryTime,
        reactor=reactor,
    )
    if probe is not None:
        probe.attach(handler)
        # Connected with the first answer at link-up, not one pollFrequency later: a fleet of
        # 50,000 at 10 s is then all Connected while its first connects are made
        handler.pollAtLinkUp = True
    if hasattr(handler, "retryPolicy"):
        handler.retryPolicy = retryPolicyFor(cfg)
    return handler, probe


def retryPolicyFor(cfg: DeviceConfig, random: Any = None) -> RetryPolicy:
    """The reconnection delays of a configured device: its jitter and backoff settings."""
    if random is None:
        return _sharedPolicy(cfg.retryJitter, cfg.maxRetryTime)
    return RetryPolicy(jitter=cfg.retryJitter, maxRetryTime=cfg.maxRetryTime, random=random)


@functools.lru_cache(maxsize=256)
def _sharedPolicy(jitter: float, maxRetryTime: float | None) -> RetryPolicy:
    """One (immutable) policy for every device of the same settings: less memory per device."""
    return RetryPolicy(jitter=jitter, maxRetryTime=maxRetryTime)


def buildServer(reactor: Any, cfg: ServerConfig) -> Any:
    """
    A ServerExHandler (not yet listening) for one server table.  It binds exactly
    C{cfg.interface}, which must be an IP address literal: ControlScript's interface names
    (C{Any}, C{LAN}) would bind what L{INTERFACE_ADDRESSES} maps them to, every interface.
    """
    from twisted_ch._factory import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetServerInterfaceEx

    try:
        address = str(ipaddress.ip_address(cfg.interface))
    except ValueError:
        raise ValueError(
            f"server {cfg.name!r}: interface must be an IP address literal, not {cfg.interface!r}"
        ) from None
    interface = EthernetServerInterfaceEx(
        cfg.port, "TCP", address, cfg.MaxClients, reactor=reactor, bindAddress=address
    )
    return GetConnectionHandler(interface, serverTimeout=cfg.serverTimeout, reactor=reactor)


def siteOf(config: ProgramConfig) -> _site.ProgramSite:
    """
    The program site a C{[program]} section describes; with a C{project}, its panels' layouts
    and settings and its code folder too.

    @raise twisted_ch.project.ProjectError: the project cannot be read.
    """
    layouts: dict[str, str] = {}
    ui: dict[str, dict[str, Any]] = {}
    codeFolder: str | None = None
    dataFolder: str | None = None
    rfileFolder: str | None = None
    irFolder: str | None = None
    if config.project is not None:
        from twisted_ch.project import readProject

        project = readProject(config.project)
        layouts = project.layouts()
        ui = project.uiSettings()
        codeFolder = str(project.codeFolder.resolve())
        dataFolder = str((project.folder / "data").resolve())
        rfileFolder = str(project.rfileFolder.resolve()) if project.rfileFolder else None
        irFolder = str(project.irFolder.resolve()) if project.irFolder else None
    return _site.ProgramSite(
        ports=dict(config.ports),
        hostPorts={alias: dict(host.ports) for alias, host in config.hosts.items()},
        spEndpoints={
            alias: host.spEndpoint
            for alias, host in config.hosts.items()
            if host.spEndpoint is not None
        },
        dante=dict(config.dante),
        addresses=dict(config.addresses),
        layouts=layouts,
        ui=ui,
        codeFolder=codeFolder,
        dataFolder=dataFolder,
        rfileFolder=rfileFolder,
        irFolder=irFolder,
    )


class OnlineProbe:
    """
    One probe of a port host's reachability: a connection to C{description} within C{timeout}
    seconds means Online (and is closed at once), anything else Offline.  Changes are logged.
    """

    def __init__(self, reactor: Any, host: Any, description: str, timeout: float) -> None:
        self.reactor = reactor
        self.host = host
        self.description = description
        self.timeout = timeout
        self._pending: Deferred[Any] | None = None
        self._stopped = False

    def stop(self) -> None:
        """Abandon a probe under way (its result is not reported)."""
        self._stopped = True
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()

    def __call__(self) -> Deferred[None]:
        from twisted.internet.protocol import Factory, Protocol

        from twisted_ch._link import describeFailure
        from twisted_ch.endpoints._strings import clientFromString

        try:
            endpoint = clientFromString(self.reactor, self.description)
            d: Deferred[Any] = endpoint.connect(Factory.forProtocol(Protocol))
        except Exception:
            d = fail()
        d.addTimeout(self.timeout, self.reactor)
        self._pending = d

        def reached(protocol: Any) -> None:
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.loseConnection()
            self._set(True, None)

        def missed(failure: Failure) -> None:
            self._set(False, describeFailure(failure))

        def done(result: object) -> None:
            if self._pending is d:
                self._pending = None

        return d.addCallbacks(reached, missed).addBoth(done)

    def _set(self, online: bool, why: str | None) -> None:
        if self._stopped:
            return
        if online != self.host.isOnline:
            log.info(
                "{host}: {state}{why}",
                host=self.host.DeviceAlias,
                state="Online" if online else "Offline",
                why=f" ({why})" if why else "",
            )
        self.host.setOnline(online)


def _isLinkOrHandler(value: object) -> bool:
    """Whether a program's global is an interface with a link, or a handler of one."""
    if isinstance(value, type):
        return False
    try:
        return (
            hasattr(value, "link")
            and hasattr(value, "Send")
            or (hasattr(value, "Interface") and hasattr(value, "ConnectionStatus"))
        )
    except Exception:
        return False


def _isBuilt(handler: Any) -> bool:
    """
    Whether a handler is fully constructed.  A handler joins its runtime's set at the start of
    its constructor, on the program thread: the reactor thread may see it half-built.
    """
    try:
        handler.stats()
    except Exception:
        return False
    return True


def _snapshot(handlers: weakref.WeakSet[Any]) -> list[Any]:
    """The members of a WeakSet another thread may be adding to."""
    for _ in range(100):
        try:
            return list(handlers)
        except RuntimeError:  # changed size during iteration
            continue
    return list(handlers)


class ProgramService(Service):
    """
    Runs a ControlScript-style program.  Every connection handler it creates (the runtime
    records them, wherever the program keeps them) shows on the status page and is stopped
    with the service, also when the program's top level has not finished by then.  So does
    every other link it creates: an interface a handler of the program's own wraps (its
    ConnectionStatus shown), or none (its link's state shown); see L{ProgramLinks}.
    """

    def __init__(
        self,
        reactor: Any,
        path: str,
        registry: Registry,
        stopTimeout: float = PROGRAM_STOP_TIMEOUT,
        clientCloseGrace: float = CLIENT_CLOSE_GRACE,
        config: ProgramConfig | None = None,
    ) -> None:
        self.reactor = reactor
        self.path = path
        self.registry = registry
        self.stopTimeout = stopTimeout
        self.clientCloseGrace = clientCloseGrace
        self.config = config
        self.site: _site.ProgramSite | None = None
        self._online: dict[str, Any] = {}
        self.program: Any = None
        #: called with the failure when the program cannot load (its top level raised)
        self.onFailure: Callable[[Failure], object] | None = None
        #: the global name of each handler (or interface) bound to one, once the top level ran
        self._variables: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        #: the program's links that no twisted_ch handler wraps
        self.links: ProgramLinks | None = None
        self._refresh: Any = None
        self._generation = -1

    @property
    def handlers(self) -> list[Any]:
        """The connection handlers the program has created (and that still exist)."""
        if self.program is None:
            return []
        return _snapshot(self.program.thread.runtime.handlers)

    def startService(self) -> None:
        from twisted_ch.program import Program

        super().startService()
        if self.config is not None:
            self.site = siteOf(self.config)
            self.site.watchHosts(self._hostCreated)
            _site.install(self.site)
            # a project's code folder is on the path, as on the processor (import modules.x)
            if self.site.codeFolder is not None and self.site.codeFolder not in sys.path:
                sys.path.insert(0, self.site.codeFolder)
        limit = memoryLimitOf(self.config)
        self.program = Program(
            self.reactor,
            name=Path(self.path).stem,
            memoryLimit=limit,
            tuneGC=bool(getattr(self.parent, "tuneGC", False)),  # (the chandler service's)
        )
        self.links = ProgramLinks(self.program.objects, self.reactor)
        self.registry.addSource(self, self._entries)
        from twisted.internet.task import LoopingCall

        self._refresh = LoopingCall(self._refreshLinks)
        self._refresh.clock = self.reactor
        self._refresh.start(REFRESH_EVERY, now=False).addErrback(
            lambda f: log.failure("program {path}: watching its links", f, path=self.path)
        )
        log.info("running program {path}", path=self.path)
        data = self.site.dataFolder if self.site is not None else None
        self.program.runFile(self.path, data).addCallbacks(self._ran, self._failed)

    def _entries(self) -> list[Entry]:
        """
        The status rows: one per handler, named by its logName (a server: its variable), and
        one per other link of the program (named by its link's description).
        """
        entries = []
        wrapped = []
        for handler in self.handlers:
            # a handler being built is its interface's already: that is no row of its own
            interface = ownAttribute(handler, "_WrappedInterface")
            if interface is not None:
                wrapped.append(interface)
            if not _isBuilt(handler):
                continue
            interface = handler.Interface
            wrapped.append(interface)
            kind = "server" if hasattr(type(handler), "StartListen") else "device"
            variable = self._variables.get(handler)
            name = getattr(handler, "logName", None)
            if not isinstance(name, str) or not name or isObjectRepr(name):
                # no link to name it (an HTTP module): its variable, else its class and address
                name = variable or readableName(interface)
            extra: dict[str, object] = {"variable": variable} if variable else {}
            if kind == "device":
                extra.update(interfaceFields(interface), handlerKind="twisted_ch")
                state = getattr(getattr(interface, "link", None), "state", None)
                if isinstance(state, str):
                    extra["link"] = state
            entries.append(Entry(name, handler, repr(interface), kind, None, extra))
        for link in self.links.links(wrapped) if self.links is not None else ():
            interface = link.Interface
            if interface is None:
                continue
            variable = self._variableOf(link.wrapper) or self._variableOf(interface)
            extra = {"variable": variable} if variable else {}
            extra.update(interfaceFields(interface))
            entries.append(Entry(link.logName, link, repr(interface), link.kind, None, extra))
        if self.links is not None:  # modules with no interface under the program's own handlers
            for row in self.links.modules(self._ownHandlers()):
                module = row.Interface
                if module is None:
                    continue
                extra = {"variable": row.logName, **interfaceFields(module)}
                entries.append(Entry(row.logName, row, readableName(module), "device", None, extra))
        return sorted(entries, key=lambda e: e.name)

    def _ownHandlers(self) -> list[tuple[str, Any]]:
        """The program's own handlers its top level named (not twisted_ch's), by variable."""
        ours = {id(h) for h in self.handlers}
        found = []
        for value, name in list(self._variables.items()):
            if id(value) not in ours and getattr(value, "ConnectionStatus", None) is not None:
                found.append((name, value))
        return found

    def _variableOf(self, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return self._variables.get(value)
        except TypeError:  # not weakly referenceable: never recorded
            return None

    def _refreshLinks(self) -> None:
        """
        Each second: what the program's own handlers say now; and, when the program created
        something, the status rows read (so a new link's outages are logged from now on).
        """
        if self.links is None or self.program is None:
            return
        self.links.refresh()
        generation = self.program.objects.generation
        if generation != self._generation:
            self._generation = generation
            self.registry.entries()

    def _ran(self, namespace: dict[str, Any]) -> None:
        if not self.running:
            return
        handlers = self.handlers
        for name, value in namespace.items():
            if any(value is h for h in handlers) or _isLinkOrHandler(value):
                try:
                    self._variables.setdefault(value, name)
                except TypeError:  # not weakly referenceable
                    pass
        if self.links is not None:
            self.links.searchSoon()  # the handlers of the program's own are made by now
        self.registry.entries()  # its handlers' outages are logged from now on
        rows = self._entries()  # twisted_ch's handlers, and every other link of the program
        ours = {id(r.handler) for r in rows}
        named = [
            (f"{'the program' if id(e.handler) in ours else 'a'} {e.kind} row", e.name)
            for e in self.registry.entries()
        ]
        for warning in lookAlikesAmong(named, "the program"):  # beside one that looks alike
            log.warn("program {path}: {warning}", path=self.path, warning=warning)
        log.info(
            "program {path} ran its top level; {n} on the status page ({h} with twisted_ch's "
            "handlers)",
            path=self.path,
            n=f"{len(rows)} link" if len(rows) == 1 else f"{len(rows)} links",
            h=len(handlers),
        )

    def _failed(self, failure: Failure) -> None:
        if isinstance(failure.value, MemoryLimitExceeded):
            return  # stopped past its memoryLimit (one line logged); the service runs on
        if isinstance(failure.value, SystemExit) and failure.value.code in (0, None):
            log.info("program {path} ended its top level with sys.exit()", path=self.path)
            return
        log.failure(
            "program {path} cannot run: {error}; stopping",
            failure,
            path=self.path,
            error=f"{type(failure.value).__name__}: {failure.getErrorMessage()}",
        )
        if self.onFailure is not None:
            self.onFailure(failure)

    # the hosts' Online/Offline, from a probe of a real host

    def _hostCreated(self, host: Any) -> None:
        """A ProcessorDevice or SPDevice was created (on the program's thread)."""
        config = self.config.hosts.get(host.DeviceAlias) if self.config is not None else None
        if config is not None and config.online is not None:
            self.reactor.callFromThread(self._watchOnline, host, config.online, config.onlineEvery)

    def _watchOnline(self, host: Any, description: str, every: float) -> None:
        from twisted.internet.task import LoopingCall

        if not self.running or host.DeviceAlias in self._online:
            return
        knock = OnlineProbe(self.reactor, host, description, min(every, 5.0))
        loop = LoopingCall(knock)
        loop.clock = self.reactor
        self._online[host.DeviceAlias] = (loop, knock)
        loop.start(every, now=True).addErrback(
            lambda f: log.failure("{host}: the Online probe stopped", f, host=host.DeviceAlias)
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for loop, knock in self._online.values():
            knock.stop()
            if loop.running:
                loop.stop()
        self._online.clear()
        if self.site is not None:
            _site.uninstall(self.site)
        self.registry.removeSource(self)
        if self._refresh is not None and self._refresh.running:
            self._refresh.stop()
        if self.links is not None:
            self.links.stop()
        program = self.program
        if program is None:
            return succeed(None)

        def stopEvery(final: bool) -> Deferred[None]:
            # the first pass runs while the top level may still run: a handler being built is
            # left for the final pass, made once the thread has ended (when it did in time),
            # which stops every handler again (the top level may have reconnected one)
            handlers = [h for h in self.handlers if _isBuilt(h)]
            if not final:
                log.info("program {path}: stopping {n} handlers", path=self.path, n=len(handlers))
            return _gather(
                [stopHandler(h, self.reactor, self.clientCloseGrace) for h in handlers],
                "program handlers",
            )

        def stopThread(_: object) -> Deferred[None]:
            # lets a top level still running finish (bounded by stopTimeout); events the handlers
            # stopped above report are no longer run
            d: Deferred[None] = maybeDeferred(program.thread.stop, self.stopTimeout)
            return d.addErrback(
                lambda f: log.failure("program {path}: stopping its thread", f, path=self.path)
            )

        # every handler that exists now, the program thread, then any handler created meanwhile
        return stopEvery(False).addCallback(stopThread).addCallback(lambda _: stopEvery(True))
