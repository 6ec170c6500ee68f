"""
Stock keep-alive probes, so most devices need no code.

Each probe is a callable C{probe(handler)} to pass as C{keepAliveQuery}: it sends one query, calls
C{handler.ResponseAccepted()} on a good answer, and returns a Deferred firing with whether the
answer was good (called from a program thread, it blocks and returns the bool).  Probes that watch
unsolicited data (PJLink's greeting, SNMP datagrams) must see the link from its start: call
L{Probe.attach} before C{Connect()}.

    probe = PJLinkProbe(password="...")
    projector = GetConnectionHandler(EndpointInterface(endpoint), probe, pollFrequency=5)
    probe.attach(projector)
    projector.Connect()

Problems are logged once per change (not every poll) and kept in L{Probe.lastProblem}; no probe
logs a password or anything derived from one.
"""

from __future__ import annotations

import hmac
import re
import secrets
from _thread import get_ident
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from twisted_ch._framing import toBytes
from twisted_ch._handlers import TELLS_END, _keepAliveEnded
from twisted_ch._link import DeviceLink
from twisted_ch._runtime import Runtime
from twisted_ch.protocols._probecodec import (
    SNMP_VERSIONS,
    SYS_UPTIME,
    ProbeUnavailable,
    SNMPMessage,
    _asn1,
    decodeMessage,
    decodeTimeTicks,
    decodeUptime,
    encodeMessage,
    peekResponse,
    pjlinkDigest,
    sharedTemplate,
)
from twisted_ch.protocols.device import LinkDown, deadlinesOf, tellInstead
from twisted_ch.service._trace import printable

__all__ = [
    "PJLinkProbe",
    "Probe",
    "ProbeUnavailable",
    "SISProbe",
    "SNMPProbe",
    "STOCK_PROBES",
    "SYS_UPTIME",
    "SendExpectProbe",
    "encodeMessage",
    "makeProbe",
    "peekResponse",
    "pjlinkDigest",
]

log = Logger(namespace="twisted_ch.service.probes")


def _label(handler: Any) -> str:
    """The name log lines use for a handler's device: its link's description."""
    link = _linkOf(handler)
    return link.description if link is not None else repr(handler)


def _linkOf(handler: Any) -> DeviceLink | None:
    interface = getattr(handler, "Interface", handler)
    link = getattr(interface, "link", None)
    return link if isinstance(link, DeviceLink) else None


def _requireLink(handler: Any, probe: str) -> DeviceLink:
    link = _linkOf(handler)
    if link is None:
        raise TypeError(f"the {probe} probe needs a twisted_ch device interface, not {handler!r}")
    return link


class Probe:
    """
    Base of the stock probes: runs L{query} on the reactor thread and accepts good answers.

    @ivar lastProblem: why the last probe failed, or None after a good answer.
    @ivar accepted: good answers so far.
    """

    kind = "probe"
    #: the class's own L{query}, when it is L{_send} judged by L{_judge} (the stock probes):
    #: L{_once} then chains the two itself, with one callback per poll, or none on a handler's
    #: tick (L{_pollTellingEnd})
    _sendQuery: Any = None

    def __init__(self, timeout: float = 2.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.lastProblem: str | None = None
        self.accepted = 0

    def attach(self, handler: Any) -> None:
        """Start watching C{handler}'s link (before it connects); idempotent."""

    def __call__(self, handler: Any) -> Any:
        ioThread = threadable.ioThread
        if ioThread is None or ioThread != get_ident():  # (on the reactor thread: at once)
            rt = getattr(handler, "_rt", None)
            if isinstance(rt, Runtime):
                return rt.twoFaced(self._once, handler)
        return self._once(handler)

    def _pollTellingEnd(self, handler: Any, run: int) -> Any:
        """
        A handler's keep-alive tick (reactor thread, see L{TELLS_END}): L{_once}, where a stock
        probe's wait judges its answer and tells the handler's end itself, with no callback.
        """
        ioThread = threadable.ioThread
        onReactor = ioThread is None or ioThread == get_ident()
        if not onReactor or type(self).__call__ is not Probe.__call__:
            return self(handler)  # (another thread's tick, or a probe called its own way)
        return self._once(handler, run)

    def _asksNow(self, handler: Any) -> bool:
        """
        Whether this poll of a stock probe is L{_send} judged by L{_judge} (otherwise its
        L{query} runs): always, unless a class whose polls are not all that says per poll.
        """
        return True

    def _once(self, handler: Any, run: int | None = None) -> Any:
        self.attach(handler)
        query = self.query
        try:
            cls = type(self)
            if getattr(query, "__func__", None) is cls._sendQuery is not None and (
                cls._asksNow is Probe._asksNow or self._asksNow(handler)
            ):
                sent = self._send(handler)
                if isinstance(sent, Deferred):
                    # a stock probe: its send's wait judges and accepts the answer (or reports
                    # its failure) and ends the handler's keep-alive, or its Deferred does in
                    # one callback
                    if run is not None and tellInstead(sent, _answeredEnded, self, handler, run):
                        return TELLS_END
                    return sent.addBoth(_answered, self, handler)
                result = sent.addCallback(self._judge, handler)  # what its query does with it
            else:
                result = query(handler)
        except Exception:
            d: Deferred[bool] = fail()
        else:
            # the stock probes answer with the SendAndWait Deferred and a callback: no coroutine
            # per poll (a keep-alive in flight on every device; see bench/README)
            d = result if isinstance(result, Deferred) else ensureDeferred(result)
        return d.addCallbacks(
            self._judged, self._failed, callbackArgs=(handler,), errbackArgs=(handler,)
        )

    def _answered(self, response: Any, handler: Any) -> bool:
        """
        L{_judge} then L{_judged}, or L{_failed}, in one callback (what C{query}'s chain does
        in two, and its errback).
        """
        if isinstance(response, Failure):
            return self._failed(response, handler)
        try:
            good = self._judge(response, handler)
        except Exception:
            return self._failed(Failure(), handler)
        return self._judged(good, handler)

    def _send(self, handler: Any) -> Deferred[Any]:
        """A stock probe's query without its judge: a Deferred of the answer (L{_judge}'s)."""
        raise NotImplementedError

    def _judge(self, response: Any, handler: Any) -> bool:
        """Whether a stock probe's answer (what L{_send} gave) is good."""
        raise NotImplementedError

    def _judged(self, good: bool, handler: Any) -> bool:
        if good:
            self.accepted += 1
            if self.lastProblem is not None:
                log.info(
                    "{device}: {probe} probe answered again",
                    device=_label(handler),
                    probe=self.kind,
                )
            self.lastProblem = None
            handler.ResponseAccepted()
        return good

    def _failed(self, f: Failure, handler: Any) -> bool:
        if f.check(LinkDown):
            return False
        self.problem(handler, f"{type(f.value).__name__}: {f.getErrorMessage()}", failure=f)
        return False

    def query(self, handler: Any) -> Deferred[bool] | Coroutine[Any, Any, bool]:
        """
        Send the query and judge the answer (reactor thread): a coroutine or a Deferred of
        whether the answer was good.
        """
        raise NotImplementedError

    def problem(self, handler: Any, text: str, failure: Failure | None = None) -> None:
        """Record why a probe failed; log it when it differs from the last one."""
        if text == self.lastProblem:
            return
        self.lastProblem = text
        if failure is not None:
            log.failure(
                "{device}: {probe} probe failed: {problem}",
                failure,
                device=_label(handler),
                probe=self.kind,
                problem=text,
            )
        else:
            log.warn(
                "{device}: {probe} probe: {problem}",
                device=_label(handler),
                probe=self.kind,
                problem=text,
            )

    def describe(self) -> dict[str, object]:
        """Settings worth showing operators (never secrets)."""
        return {"type": self.kind, "timeout": self.timeout}


def _answered(response: Any, probe: Probe, handler: Any) -> bool:
    """
    L{Probe._answered}, as a stock probe's one callback per poll: a function given the probe,
    not a bound method, so each poll in flight holds one object fewer for the collector.
    """
    return probe._answered(response, handler)


def _answeredEnded(response: Any, probe: Probe, handler: Any, run: int) -> None:
    """L{_answered}, then the handler's keep-alive ended (a stock probe's wait's end)."""
    try:
        probe._answered(response, handler)
    except BaseException:  # (as a Deferred's callback: logged, the keep-alive ended)
        _keepAliveEnded(Failure(), handler, run, probe)
    else:
        _keepAliveEnded(None, handler, run)


# Extron SIS

#: Regular expressions for the answer line of well-known SIS queries (without the CR LF).
#: Every quantifier is possessive (C{++}, C{*+}) and none can match what the next one matches, so
#: a search is linear in its input (a line of 60,000 digits costs microseconds, not minutes).
SIS_ANSWERS: Mapping[bytes, bytes] = {
    b"Q": rb"(?:Ver\d++\*)?\d++\.\d++[\w.\-]*+",
    b"*Q": rb"\d++\.\d++[^\r\n]*+",
    b"N": rb"(?:Pno)?\d{2}-\d{3,4}-\d{2}[^\r\n]*+",
    b"I": rb"[^\r\n]++",
}


class SISProbe(Probe):
    """
    An Extron SIS query: C{Q} (firmware version, the default), C{N} (part number), C{I}
    (information) or any other query with an C{expect} pattern for its answer line.

    SIS error answers (C{E10}, ...) and lines that do not match (such as the copyright banner a
    device prints on connect) are not accepted.
    """

    kind = "sis"

    def __init__(
        self, query: bytes | str = b"Q", expect: bytes | str | None = None, timeout: float = 2.0
    ) -> None:
        super().__init__(timeout)
        self.request = toBytes(query, "query")
        if not self.request:
            raise ValueError("query must not be empty")
        answer = toBytes(expect, "expect") if expect is not None else None
        if answer is None:
            answer = SIS_ANSWERS.get(self.request.strip().upper(), SIS_ANSWERS[b"I"])
        self.answer = re.compile(
            rb"(?m)^(?:(?P<sisError>E\d\d)|(?P<sisAnswer>" + answer + rb"))\r?\n"
        )

    def query(self, handler: Any) -> Deferred[bool]:
        return self._send(handler).addCallback(self._judge, handler)

    _sendQuery = query

    def _send(self, handler: Any) -> Deferred[bytes]:
        d: Deferred[bytes] = handler.SendAndWait(self.request, self.timeout, deliRex=self.answer)
        return d

    def _judge(self, response: bytes, handler: Any) -> bool:
        if not response:
            self.problem(
                handler, f"no answer to {printable(self.request)} within {self.timeout:g} s"
            )
            return False
        m = self.answer.search(response)
        if m is None:  # pragma: no cover - the matcher only returns matching responses
            return False
        if m.group("sisError"):
            code = m.group("sisError").decode("ascii")
            self.problem(
                handler, f"device answered {printable(self.request)} with SIS error {code}"
            )
            return False
        return True

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "query": printable(self.request)}


def patternText(pattern: bytes) -> str:
    """
    A regular expression as operators read it: its own backslashes kept, control bytes written
    C{\\r \\n \\t \\xHH} (never a bytes repr, whose backslashes come doubled).
    """
    out = []
    for b in pattern:
        if b == 0x5C or 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(printable(bytes([b])))
    return "".join(out)


# generic send / expect


class SendExpectProbe(Probe):
    """
    Send fixed bytes; a response matching the C{expect} regular expression is good.

    With C{secret}, the payload (a login, a PIN) is never shown: L{describe} and the status page
    say C{***} instead.  The C{expect} pattern is searched over up to C{maxResponse} bytes of
    each answer: keep it free of nested or adjacent overlapping quantifiers (use possessive
    ones, C{\\d++}), or a hostile answer can make it backtrack.
    """

    kind = "send"

    def __init__(
        self, send: bytes | str, expect: bytes | str, timeout: float = 2.0, secret: bool = False
    ) -> None:
        super().__init__(timeout)
        if not isinstance(secret, bool):
            raise TypeError(f"secret must be True or False, not {type(secret).__name__}")
        self.secret = secret
        self.send = toBytes(send, "send")
        if not self.send:
            raise ValueError("send must not be empty")
        self.expect = re.compile(toBytes(expect, "expect"))

    def __repr__(self) -> str:
        shown = "***" if self.secret else repr(self.send)
        return f"<SendExpectProbe send={shown}>"

    def query(self, handler: Any) -> Deferred[bool]:
        return self._send(handler).addCallback(self._judge, handler)

    _sendQuery = query

    def _send(self, handler: Any) -> Deferred[bytes]:
        d: Deferred[bytes] = handler.SendAndWait(self.send, self.timeout, deliRex=self.expect)
        return d

    def _judge(self, response: bytes, handler: Any) -> bool:
        if not response:
            sent = "***" if self.secret else printable(self.send)
            self.problem(
                handler,
                f"no answer to {sent} matching {patternText(self.expect.pattern)} "
                f"within {self.timeout:g} s",
            )
            return False
        return True

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "send": "***" if self.secret else printable(self.send),
            "expect": patternText(self.expect.pattern),
        }


# PJLink


# bounded quantifiers: a search costs at most a few dozen steps per position, however long the
# input (63 KB of "%1POWR=" without a CR took seconds with an unbounded [^\r]*)
_PJLINK_GREETING = re.compile(
    rb"PJLINK (?:(?P<none>0)|1 (?P<random>[^\r\s]{1,32}+)|(?P<erra>ERRA))\r"
)
#: the power query (class 1), after an authentication prefix when there is one
_POWER_QUERY = b"%1POWR ?\r"
_PJLINK_ANSWER = re.compile(rb"(?:%1POWR=(?P<power>[^\r%]{0,16}+)|PJLINK (?P<erra>ERRA))\r")
_PJLINK_POWER = {"0": "off", "1": "on", "2": "cooling", "3": "warming"}


@dataclass
class _Greeting:
    random: bytes | None  # None: no authentication


class _PJLinkSession:
    """Watches one link for the greeting a PJLink projector sends on every connection."""

    def __init__(self, link: DeviceLink) -> None:
        self.link = link
        self._reset()

    def _reset(self) -> None:
        self.buffer = b""
        self.greeting: _Greeting | None = None
        self.authenticated = False
        self.waiters: list[Deferred[_Greeting | None]] = []

    def _wake(self, value: _Greeting | None) -> None:
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.callback(value)

    def waitGreeting(self, timeout: float) -> Deferred[_Greeting | None]:
        if self.greeting is not None:
            d: Deferred[_Greeting | None] = Deferred()
            d.callback(self.greeting)
            return d
        d = Deferred()
        self.waiters.append(d)
        d.addTimeout(timeout, self.link.clock, onTimeoutCancel=lambda result, t: None)
        return d

    # link observer

    def linkMade(self) -> None:
        self._wake(None)
        self._reset()

    def linkLost(self, reason: str) -> None:
        self._wake(None)
        self._reset()

    def linkFailed(self, reason: str) -> None:
        pass

    def linkData(self, data: bytes) -> None:
        if self.greeting is not None:
            return
        self.buffer = (self.buffer + data)[-256:]
        m = _PJLINK_GREETING.search(self.buffer)
        if m is None:
            return
        self.buffer = b""
        if m.group("erra"):
            return  # an authentication error, not a greeting
        self.greeting = _Greeting(m.group("random"))
        self._wake(self.greeting)


class PJLinkProbe(Probe):
    """
    PJLink class 1 power query (C{%1POWR ?}), authenticating when the projector asks for it.

    A projector greets each connection with C{PJLINK 0} (no authentication) or C{PJLINK 1
    <random>}: the first command is then prefixed with MD5(random + password) in hex.  A
    C{PJLINK ERRA} answer is logged as an authentication error (without the password).
    """

    kind = "pjlink"

    def __init__(self, password: str | None = None, timeout: float = 2.0) -> None:
        super().__init__(timeout)
        if password is not None and not isinstance(password, str):
            raise TypeError("password must be a str")
        self._password = password
        self._sessions: dict[int, _PJLinkSession] = {}
        self.authFailures = 0
        self.power: str | None = None

    def __repr__(self) -> str:
        return f"<PJLinkProbe password={'set' if self._password else 'none'}>"

    def attach(self, handler: Any) -> None:
        self._session(handler)

    def _session(self, handler: Any) -> _PJLinkSession:
        link = getattr(getattr(handler, "Interface", handler), "link", None)  # (_linkOf)
        if not isinstance(link, DeviceLink):
            link = _requireLink(handler, "pjlink")
        session = self._sessions.get(id(link))
        if session is None or session.link is not link:
            session = _PJLinkSession(link)
            self._sessions[id(link)] = session
            link.observers.append(session)
        return session

    def query(self, handler: Any) -> Deferred[bool] | Coroutine[Any, Any, bool]:
        session = self._session(handler)
        if self._greeted(session):
            return self._ask(handler, session, b"")
        return self._greetedQuery(handler, session)

    _sendQuery = query

    @staticmethod
    def _greeted(session: _PJLinkSession) -> bool:
        """The usual poll: greeted (and authenticated) already, so it just asks."""
        greeting = session.greeting
        return greeting is not None and (greeting.random is None or session.authenticated)

    def _asksNow(self, handler: Any) -> bool:
        # (a subclass asking its own way takes its query)
        return type(self)._ask is PJLinkProbe._ask and self._greeted(self._session(handler))

    def _send(self, handler: Any) -> Deferred[bytes]:
        d: Deferred[bytes] = handler.SendAndWait(_POWER_QUERY, self.timeout, deliRex=_PJLINK_ANSWER)
        return d

    def _judge(self, response: bytes, handler: Any) -> bool:
        return self._judgePower(response, handler, self._session(handler))

    async def _greetedQuery(self, handler: Any, session: _PJLinkSession) -> bool:
        greeting = await session.waitGreeting(self.timeout)
        prefix = b""
        if greeting is not None and greeting.random is not None and not session.authenticated:
            if self._password is None:
                self.problem(
                    handler, "the projector requires authentication and no password is configured"
                )
                return False
            prefix = pjlinkDigest(greeting.random, self._password)
        return await self._ask(handler, session, prefix)

    def _ask(self, handler: Any, session: _PJLinkSession, prefix: bytes) -> Deferred[bool]:
        d: Deferred[bytes] = handler.SendAndWait(
            prefix + _POWER_QUERY, self.timeout, deliRex=_PJLINK_ANSWER
        )
        return d.addCallback(self._judgePower, handler, session)

    def _judgePower(self, response: bytes, handler: Any, session: _PJLinkSession) -> bool:
        m = _PJLINK_ANSWER.search(response) if response else None
        if m is None:
            self.problem(handler, f"no answer to the power query within {self.timeout:g} s")
            return False
        if m.group("erra"):
            self.authFailures += 1
            session.authenticated = False
            self.problem(handler, "authentication failed (PJLINK ERRA): check the password")
            return False
        session.authenticated = True
        value = m.group("power").decode("latin-1")
        self.power = _PJLINK_POWER.get(value, value)
        return True

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "power": self.power, "authFailures": self.authFailures}


# SNMP


#: The largest datagram the SNMP probe decodes: a sysUpTime response takes under 100 bytes.
MAX_SNMP_DATAGRAM = 1472
#: Datagrams per second the SNMP probe decodes per device (of those that pass the cheap header
#: checks: an outstanding request-id, the version and community); more are dropped undecoded.
SNMP_DATAGRAM_BUDGET = 50


class _SNMPSession:
    """
    Matches the datagrams arriving on one link to outstanding requests by request-id.

    The link's UDP socket is connected, so the kernel delivers only the device's datagrams.  Each
    is then judged cheaply before it is decoded: none larger than L{MAX_SNMP_DATAGRAM}, and only a
    Response with the probe's version and community that carries an outstanding request-id is
    decoded (once per answered request), at most L{SNMP_DATAGRAM_BUDGET} per second.  The budget
    is charged only for datagrams that pass the cheap checks, so a flood of junk costs a header
    peek per datagram and never crowds out the device's real answer; the others pay nothing.
    """

    __slots__ = ("link", "probe", "pending", "_window", "_inWindow", "_deadlines")

    def __init__(self, link: DeviceLink, probe: SNMPProbe) -> None:
        self.link = link
        self.probe = probe
        self.pending: dict[int, Deferred[SNMPMessage | None]] = {}
        self._window = -1.0
        self._inWindow = 0
        #: the clock's one timer for every request's timeout (no DelayedCall per request)
        self._deadlines = deadlinesOf(link.clock)

    def _withinBudget(self) -> bool:
        now = self.link.clock.seconds()
        if now - self._window >= 1.0:
            self._window, self._inWindow = now, 0
        self._inWindow += 1
        return self._inWindow <= SNMP_DATAGRAM_BUDGET

    def expect(self, requestId: int, timeout: float) -> Deferred[SNMPMessage | None]:
        """A Deferred of the response to C{requestId}, or of None after C{timeout} seconds."""
        d: Deferred[SNMPMessage | None] = Deferred()
        self.pending[requestId] = d
        self._deadlines.add(timeout, self, requestId)
        d.addBoth(self._forget, requestId)
        return d

    def _forget(self, result: object, requestId: int) -> object:
        if self.pending.pop(requestId, None) is not None:
            self._deadlines.ended()
        return result

    def _waiting(self, serial: int) -> bool:
        return serial in self.pending

    def _deadlinePassed(self, serial: int) -> None:
        d = self.pending.get(serial)
        if d is not None and not d.called:
            d.callback(None)  # no answer in time

    def linkMade(self) -> None:
        pass

    def linkFailed(self, reason: str) -> None:
        pass

    def linkLost(self, reason: str) -> None:
        for d in list(self.pending.values()):
            if not d.called:
                d.callback(None)
        self._deadlines.connectionEnded()

    def linkData(self, data: bytes) -> None:
        probe = self.probe
        pending = self.pending
        message = None
        if pending and len(data) <= MAX_SNMP_DATAGRAM:
            # the usual answer, read without pyasn1 (decodeUptime); it passes the cheap checks
            # when _reject would pass it (the same fields), else _reject below says why not
            message = decodeUptime(data)
            if (
                message is not None
                and message.requestId in pending
                and message.version == SNMP_VERSIONS[probe.version]
                and hmac.compare_digest(message.community, probe.community)
            ):
                if not self._withinBudget():
                    probe.dropped += 1
                    return
                pending[message.requestId].callback(message)
                return
        why = self._reject(data)
        if why is not None:
            probe.ignored += 1
            log.debug("{link}: ignored a datagram: {why}", link=self.link.description, why=why)
            return
        # only datagrams worth decoding are charged: junk must not use up the answer's budget
        if not self._withinBudget():
            probe.dropped += 1
            return
        # any other shape than the usual answer is pyasn1's to judge
        try:
            message = decodeMessage(data)
        except ValueError as e:
            probe.ignored += 1
            log.debug("{link}: ignored a datagram: {why}", link=self.link.description, why=e)
            return
        waiter = pending.get(message.requestId)
        if message.pduKind != "response" or waiter is None:  # pragma: no cover - peeked above
            probe.ignored += 1
            return
        waiter.callback(message)

    def _reject(self, data: bytes) -> str | None:
        """Why a datagram answers no outstanding request (cheap checks), or None."""
        if not self.pending:
            return "no request outstanding"
        if len(data) > MAX_SNMP_DATAGRAM:
            return f"{len(data)} bytes (at most {MAX_SNMP_DATAGRAM} are decoded)"
        header = peekResponse(data)
        if header is None:
            return "not an SNMP v1/v2c Response"
        version, community, rid = header
        if version != SNMP_VERSIONS[self.probe.version]:
            return f"SNMP version {version}"
        if not hmac.compare_digest(community, self.probe.community):
            return "another community"
        if rid not in self.pending:
            return f"request-id {rid} is not outstanding"
        return None


class SNMPProbe(Probe):
    """
    SNMP GET of sysUpTime.0 (v1 or v2c, with a community string) over a UDP device link.

    Only a response carrying the request's request-id counts; others are ignored (counted in
    L{ignored}).  Needs pyasn1 (the C{snmp} extra).
    """

    kind = "snmp"

    def __init__(
        self, community: str = "public", version: str = "2c", timeout: float = 2.0
    ) -> None:
        super().__init__(timeout)
        _asn1()  # fail now, clearly, when pyasn1 is missing
        if version not in SNMP_VERSIONS:
            raise ValueError(f"version must be '1' or '2c', not {version!r}")
        self.community = community.encode("utf-8")
        self.version = version
        #: the session of the first link the probe serves (a device's probe serves one), and
        #: those of any other links by C{id(link)}, made only when there are others
        self._first: _SNMPSession | None = None
        self._sessions: dict[int, _SNMPSession] | None = None
        #: the GetRequest encoded once, patched with each request's id
        self._template = sharedTemplate(SNMP_VERSIONS[version], self.community)
        self._nextId = secrets.randbelow(2**30) + 1
        #: datagrams that answered no outstanding request; dropped unread over the budget
        self.ignored = 0
        self.dropped = 0
        self.uptime: float | None = None

    def __repr__(self) -> str:
        return f"<SNMPProbe v{self.version}>"

    def attach(self, handler: Any) -> None:
        self._session(handler)

    def _session(self, handler: Any) -> _SNMPSession:
        link = getattr(getattr(handler, "Interface", handler), "link", None)  # (_linkOf)
        if not isinstance(link, DeviceLink):
            link = _requireLink(handler, "snmp")
        first = self._first
        if first is not None and first.link is link:
            return first
        if first is None:
            session = self._first = _SNMPSession(link, self)
        else:
            if self._sessions is None:
                self._sessions = {}
            known = self._sessions.get(id(link))
            if known is not None and known.link is link:
                return known
            session = self._sessions[id(link)] = _SNMPSession(link, self)
        link.observers.append(session)
        return session

    def requestId(self) -> int:
        """A fresh request-id (31 bits, wrapping)."""
        rid = self._nextId
        self._nextId = rid % (2**31 - 1) + 1
        return rid

    def query(self, handler: Any) -> Deferred[bool]:
        return self._send(handler).addCallback(self._judge, handler)

    _sendQuery = query

    def _request(self, requestId: int) -> bytes:
        """The GetRequest of sysUpTime.0 carrying C{requestId} (L{encodeMessage}'s bytes)."""
        template = self._template
        version = SNMP_VERSIONS[self.version]
        if template.community != self.community or template.version != version:
            template = self._template = sharedTemplate(version, self.community)
        return template.encode(requestId)

    def _send(self, handler: Any) -> Deferred[SNMPMessage | None]:
        session = self._session(handler)
        rid = self.requestId()
        request = self._request(rid)
        answer = session.expect(rid, self.timeout)
        try:
            handler.Send(request)
        except LinkDown:
            answer.addErrback(lambda f: None)
            answer.cancel()
            raise
        return answer

    def _judge(self, message: SNMPMessage | None, handler: Any) -> bool:
        if message is None:
            self.problem(handler, f"no response within {self.timeout:g} s")
            return False
        if message.errorStatus != 0:
            self.problem(handler, f"agent answered with error-status {message.errorStatus}")
            return False
        if message.uptimeTicks is not None:  # decodeUptime read it (the usual answer)
            self.uptime = message.uptimeTicks / 100
            return True
        for oid, value in message.binds:
            if oid == SYS_UPTIME:
                try:
                    self.uptime = decodeTimeTicks(value) / 100
                except ValueError:
                    break
                return True
        self.problem(handler, "response carries no sysUpTime (noSuchObject?)")
        return False

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "version": self.version,
            "uptime": self.uptime,
            "ignored": self.ignored,
            "dropped": self.dropped,
        }


# by name

STOCK_PROBES: Mapping[str, Callable[..., Probe]] = {
    "sis": SISProbe,
    "pjlink": PJLinkProbe,
    "snmp": SNMPProbe,
    "send": SendExpectProbe,
}


def makeProbe(kind: str, options: Mapping[str, Any] | None = None) -> Probe:
    """
    A stock probe by name (C{sis}, C{pjlink}, C{snmp}, C{send}) with its constructor's options.

    @raise ValueError: no such probe.
    @raise ProbeUnavailable: its optional dependency is missing.
    """
    factory = STOCK_PROBES.get(kind)
    if factory is None:
        raise ValueError(f"no stock probe {kind!r} (known: {', '.join(STOCK_PROBES)})")
    return factory(**dict(options or {}))
