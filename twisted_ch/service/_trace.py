"""
The wire trace: per device, every chunk sent (C{tx}) and received (C{rx}) with its time, as hex
and as printable text, for a number of minutes, after which it switches itself off.

Started with C{twistd chandler --trace NAME[,NAME]} or at run time over HTTP (C{POST /trace}
on the status port, see L{TraceResource}), which is refused unless the status port is bound to
loopback or the request carries the config's C{[status] token}.

Secrets are never traced in clear (in C{/trace}'s JSON, the log lines and their fields alike,
since all are made from the one masked record): the PJLink authentication exchange (the
projector's random and the digest that answers it), an SNMP message's community in any BER
encoding, whatever is sent after a password prompt (and, when the trace starts on a link already
up, the first chunk sent before anything is received: its prompt may have come before), a
C{secret = true} probe's payload and an SNMP probe's community; and each of those wherever it
passes again, the device's echo included (also split over chunks).  SSH credentials never reach
the trace (it sees the shell channel's data, not the SSH layer's).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_ch.protocols.device import WIRE_TAPS
from twisted_ch.service._outages import isoTime

__all__ = [
    "DEFAULT_TRACE_MINUTES",
    "MAX_TRACE_MINUTES",
    "TraceResource",
    "WireTrace",
    "printable",
]

log = Logger(namespace="twisted_ch.trace")

#: How long a trace runs unless told otherwise (then it switches itself off).
DEFAULT_TRACE_MINUTES = 30.0
#: The longest trace one request may ask for.
MAX_TRACE_MINUTES = 24 * 60.0
#: Records kept per device for C{GET /trace} (the log has them all).
KEEP = 500
#: At most this many bytes of one chunk are shown (a flood is summarised, not copied).
SHOWN = 512

_NAMES = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}


def printable(data: bytes) -> str:
    """Bytes as text a person can read: ASCII as is, C{\\r \\n \\t}, others as C{\\xHH}."""
    out = []
    for b in data:
        if b in _NAMES:
            out.append(_NAMES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


# masking secrets

_PJLINK_GREETING = re.compile(rb"(PJLINK 1 )([^\r]{1,64})")
_PJLINK_DIGEST = re.compile(rb"^([0-9A-Fa-f]{32})(%|$)")
_PASSWORD_PROMPT = re.compile(rb"(?i)(pass(?:word|phrase|code)?|pin)\s*[:>?]\s*$")
#: A known secret shorter than this is masked only where it is the whole chunk sent (a one-byte
#: PIN masked wherever it occurs would mask every such byte the device sends).
MIN_MASKED_SECRET = 3
#: Prompt answers remembered per trace, so that their echoes are masked.
KEEP_ANSWERS = 8


def _berHeader(data: bytes, at: int) -> tuple[int, int, int | None] | None:
    """
    The BER header at C{at}: C{(tag, start of contents, length)} (length None: the indefinite
    form), or None if there is none.  Every length form: short, long (1-8 bytes, leading zeros
    allowed), indefinite.
    """
    if at + 2 > len(data):
        return None
    tag, first = data[at], data[at + 1]
    if tag & 0x1F == 0x1F:
        return None  # a multi-byte tag: no SNMP header starts with one
    if first < 0x80:
        return tag, at + 2, first
    n = first & 0x7F
    if n == 0:
        return tag, at + 2, None
    if n > 8 or at + 2 + n > len(data):
        return None
    return tag, at + 2 + n, int.from_bytes(data[at + 2 : at + 2 + n], "big")


def _maskSNMPCommunity(data: bytes) -> bytes | None:
    """
    An SNMP v1/v2c message (C{SEQUENCE { INTEGER version, OCTET STRING community, ...}}) with
    its community replaced by C{*}s, or None if C{data} is not one.  Any BER encoding of the
    header is recognised (long-form or indefinite lengths, a version with leading zeros); a
    constructed community (C{0x24}) is masked to its end.
    """
    if len(data) < 5 or data[0] != 0x30:
        return None
    outer = _berHeader(data, 0)
    if outer is None:
        return None
    version = _berHeader(data, outer[1])
    if version is None or version[0] != 0x02 or not version[2] or version[2] > 8:
        return None
    community = _berHeader(data, version[1] + version[2])
    if community is None or community[0] not in (0x04, 0x24):
        return None
    start, size = community[1], community[2]
    if community[0] == 0x04:
        if size is None or start + size > len(data):
            return None
        end = start + size
    else:  # constructed: its pieces and their headers, to its end (or the data's)
        end = len(data) if size is None else min(len(data), start + size)
    return data[:start] + b"*" * (end - start) + data[end:]


def _core(secret: bytes) -> bytes:
    """A secret without the line ending and padding it was sent with (what an echo shows)."""
    return secret.strip(b"\r\n\t\0 ")


class _Masker:
    """
    Masks one device's secrets as they pass: the PJLink random and digest, SNMP communities,
    the answer to a password prompt (remembered between chunks), and every known secret (a
    C{secret = true} probe's payload, an SNMP probe's community, an answer sent to a prompt)
    wherever it passes, the device's echo included, also split over chunks.

    @param midSession: the trace starts on a link that is up already (a prompt may have come
        before it): the first chunk sent before anything is received is masked.
    """

    def __init__(self, secrets: Iterable[bytes] = (), midSession: bool = False) -> None:
        self.promptSeen = False
        self.unsure = midSession
        self.rxTail = b""
        self.secrets: list[bytes] = []
        #: per secret, how many of its first bytes ended the last chunk received
        self.pending: dict[bytes, int] = {}
        #: bytes of rx still expected to carry an echo of a secret just sent
        self.echoWindow = 0
        self.exact: set[bytes] = set()
        #: what was sent masked as a maybe-secret (L{midSession}): masked in its echo window
        self.transient: bytes | None = None
        for secret in secrets:
            self.learn(secret)

    def learn(self, secret: bytes) -> None:
        """Mask C{secret} from now on, wherever it passes."""
        if not secret:
            return
        self.exact.add(secret)
        for s in {secret, _core(secret)}:
            if len(s) >= MIN_MASKED_SECRET and s not in self.secrets:
                self.secrets.append(s)
        if len(self.secrets) > KEEP_ANSWERS * 2:
            del self.secrets[0]
        self.secrets.sort(key=len, reverse=True)

    def __call__(self, direction: str, data: bytes) -> tuple[bytes, bool]:
        """The chunk as it may be shown, and whether something was masked."""
        snmp = _maskSNMPCommunity(data)
        if snmp is not None:
            return self._known(direction, snmp)[0], True
        if direction == "rx":
            self.rxTail = (self.rxTail + data)[-64:]
            self.promptSeen = bool(_PASSWORD_PROMPT.search(self.rxTail))
            self.unsure = False
            masked, n = _PJLINK_GREETING.subn(lambda m: m.group(1) + b"<random>", data)
            masked, known = self._known(direction, masked)
            return masked, bool(n) or known
        self.rxTail = b""
        secret = self.promptSeen or self.unsure or data in self.exact
        if self.promptSeen:
            self.learn(data)  # its echo, and its next passing, are masked too
        elif self.unsure:
            self.transient = _core(data)  # maybe a secret: its echo is masked
        self.promptSeen = self.unsure = False
        if secret:
            self.echoWindow = 2 * len(data) + 64
            return b"<secret: %d bytes>" % len(data), True
        masked, n = _PJLINK_DIGEST.subn(b"<digest>\\2", data)
        masked, known = self._known(direction, masked)
        return masked, bool(n) or known

    def _known(self, direction: str, data: bytes) -> tuple[bytes, bool]:
        """C{data} with every known secret in it (or continued from the last chunk) masked."""
        rx = direction == "rx"
        window = self.echoWindow > 0
        secrets = self.secrets
        if rx and window and self.transient and len(self.transient) >= MIN_MASKED_SECRET:
            secrets = [*secrets, self.transient]  # its echo only
        if rx:
            self.echoWindow = max(0, self.echoWindow - len(data))
            if not self.echoWindow:
                self.transient = None
        if not secrets:
            return data, False
        hide = bytearray(len(data))
        hit = False
        for secret in secrets:
            if rx:
                k = self.pending.pop(secret, 0)
                if k:
                    rest = secret[k:]
                    if data.startswith(rest):
                        hide[: len(rest)] = b"\x01" * len(rest)
                        hit = True
                    elif rest.startswith(data):
                        hide[:] = b"\x01" * len(data)
                        hit = True
                        self.pending[secret] = k + len(data)
                        continue
            at = data.find(secret)
            while at >= 0:
                hide[at : at + len(secret)] = b"\x01" * len(secret)
                hit = True
                at = data.find(secret, at + 1)
            if rx:
                # the end of this chunk may be the start of the secret, the rest to follow
                for k in range(min(len(secret) - 1, len(data)), 0, -1):
                    if data.endswith(secret[:k]):
                        self.pending[secret] = k
                        if window or k >= MIN_MASKED_SECRET:
                            hide[len(data) - k :] = b"\x01" * k
                            hit = True
                        break
        if not hit:
            return data, False
        shown = bytearray(data)
        at = hide.find(1)
        while at >= 0:
            end = hide.find(0, at)
            end = len(hide) if end < 0 else end
            shown[at:end] = b"*" * (end - at)
            at = hide.find(1, end)
        return bytes(shown), True


@dataclass(frozen=True)
class TraceRecord:
    """One traced chunk."""

    time: float
    direction: str
    size: int
    data: bytes
    masked: bool

    def asJSON(self) -> dict[str, object]:
        return {
            "time": isoTime(self.time),
            "direction": self.direction,
            "bytes": self.size,
            "hex": self.data.hex(" "),
            "text": printable(self.data),
            "masked": self.masked,
        }


class _Trace:
    def __init__(self, name: str, until: float) -> None:
        self.name = name
        self.until = until
        self.link: Any = None
        self.timer: Any = None
        self.records: deque[TraceRecord] = deque(maxlen=KEEP)
        self.mask = _Masker()


class WireTrace:
    """
    The traces running now, by device name.  C{find(name)} gives a device's link (the object
    its L{DeviceProtocol}s report to), or None while there is none (yet).
    """

    def __init__(self, clock: Any, find: Callable[[str], Any]) -> None:
        self.clock = clock
        self.find = find
        self.traces: dict[str, _Trace] = {}

    def start(self, name: str, minutes: float = DEFAULT_TRACE_MINUTES) -> float:
        """
        Trace a device for C{minutes} (restarting its clock if it is traced already); the
        time it stops.  A device not found yet is looked for again every second meanwhile.
        """
        if not 0 < minutes <= MAX_TRACE_MINUTES:
            raise ValueError(f"minutes must be above 0 and at most {MAX_TRACE_MINUTES:g}")
        until: float = self.clock.seconds() + minutes * 60
        trace = self.traces.get(name)
        if trace is None:
            trace = self.traces[name] = _Trace(name, until)
            found = self.find(name) is not None
            log.info(
                "{device}: wire trace on for {minutes:g} min{waiting}",
                device=name,
                minutes=minutes,
                waiting="" if found else " (no device of that name yet: waiting for it)",
            )
        trace.until = until
        self._attach(trace)
        return until

    def deviceAdded(self, name: str) -> None:
        """A device named C{name} was just built: a trace waiting for it starts now, before its
        link opens (a look once a second could come after its first exchange)."""
        trace = self.traces.get(name)
        if trace is not None and trace.link is None:
            self._attach(trace)

    def _attach(self, trace: _Trace) -> None:
        if trace.timer is not None and trace.timer.active():
            trace.timer.cancel()
        now = self.clock.seconds()
        if now >= trace.until:
            self.stop(trace.name, "its time is up")
            return
        link = self.find(trace.name)
        if link is not None and link is not trace.link:
            if trace.link is not None:
                WIRE_TAPS.pop(trace.link, None)
            trace.link = link
            secrets = getattr(self.find, "secrets", None)
            trace.mask = _Masker(
                secrets(trace.name) if secrets is not None else (),
                midSession=bool(getattr(link, "connected", False)),
            )
            WIRE_TAPS[link] = lambda direction, data: self._record(trace, direction, data)
        # look again within a second while the device is not found, else at the end
        wait = trace.until - now if trace.link is not None else min(1.0, trace.until - now)
        trace.timer = self.clock.callLater(wait, self._attach, trace)

    def stop(self, name: str, why: str = "stopped") -> bool:
        """Stop tracing a device; whether it was traced."""
        trace = self.traces.pop(name, None)
        if trace is None:
            return False
        if trace.timer is not None and trace.timer.active():
            trace.timer.cancel()
        if trace.link is not None and WIRE_TAPS.get(trace.link) is not None:
            WIRE_TAPS.pop(trace.link, None)
        log.info("{device}: wire trace off ({why})", device=name, why=why)
        return True

    def stopAll(self) -> None:
        """Stop every trace (the service stops)."""
        for name in list(self.traces):
            self.stop(name, "the service stops")

    def _record(self, trace: _Trace, direction: str, data: bytes) -> None:
        shown, masked = trace.mask(direction, data)
        record = TraceRecord(self.clock.seconds(), direction, len(data), shown[:SHOWN], masked)
        trace.records.append(record)
        more = f" (+{len(shown) - SHOWN} bytes)" if len(shown) > SHOWN else ""
        log.info(
            "{device} {direction} {size:>5} B  {text}{more}  | {hex}",
            device=trace.name,
            direction=direction,
            size=len(data),
            text=printable(record.data),
            hex=record.data.hex(" "),
            more=more,
            masked=masked,
            trace=True,
        )

    def records(self, name: str) -> list[TraceRecord]:
        """A device's traced chunks kept so far (the newest L{KEEP})."""
        trace = self.traces.get(name)
        return list(trace.records) if trace is not None else []

    def describe(self) -> dict[str, object]:
        return {
            name: {"until": isoTime(t.until), "attached": t.link is not None}
            for name, t in sorted(self.traces.items())
        }


# the HTTP face


def isLoopback(address: object) -> bool:
    """Whether a listening address is reachable from this host only."""
    host = getattr(address, "host", None)
    if host is None:
        return type(address).__name__ == "UNIXAddress"  # a local socket file
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class TraceResource(Resource):
    """
    C{/trace}: C{GET} the running traces and their records (C{?device=NAME}), C{POST}
    C{device=NAME&minutes=N} to start one, C{device=NAME&stop=1} to stop it.

    Every request is refused (403) unless the status port is bound to loopback or the request
    carries the token (C{Authorization: Bearer TOKEN}); a browser request from another origin
    (a web page's script) is refused too.
    """

    isLeaf = True

    def __init__(
        self, trace: WireTrace, loopback: Callable[[], bool], token: str | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.trace = trace
        self.loopback = loopback
        self.token = token

    def _refusal(self, request: Request) -> str | None:
        given = request.getHeader(b"authorization") or b""
        if self.token is not None and given.startswith(b"Bearer "):
            if hmac.compare_digest(given[7:].strip(), self.token.encode("utf-8")):
                return None
            return "wrong token"
        if not self.loopback():
            return (
                "the status port is not bound to loopback: send the config's [status] token "
                "(Authorization: Bearer TOKEN)"
            )
        origin = request.getHeader(b"origin")
        host = request.getHeader(b"host")
        if origin is not None and host is not None:
            if origin.split(b"://", 1)[-1].rstrip(b"/") != host:
                return "a request from another origin"
        return None

    def _answer(self, request: Request, code: int, document: object) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(document, indent=2).encode("utf-8") + b"\n"

    def _args(self, request: Request) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, values in (request.args or {}).items():
            if values:
                found[key.decode("utf-8", "replace")] = values[-1].decode("utf-8", "replace")
        body = request.content.read(4096) if request.content is not None else b""
        if body.lstrip().startswith(b"{"):
            try:
                document = json.loads(body)
            except ValueError:
                document = {}
            if isinstance(document, dict):
                found.update({str(k): str(v) for k, v in document.items()})
        elif body:
            for key, values in parse_qs(body.decode("utf-8", "replace")).items():
                found[key] = values[-1]
        return found

    def render_GET(self, request: Request) -> bytes:
        refused = self._refusal(request)
        if refused is not None:
            return self._answer(request, 403, {"error": f"refused: {refused}"})
        args = self._args(request)
        document: dict[str, object] = {"traces": self.trace.describe()}
        name = args.get("device")
        if name is not None:
            document["device"] = name
            document["records"] = [r.asJSON() for r in self.trace.records(name)]
        return self._answer(request, 200, document)

    def render_POST(self, request: Request) -> bytes:
        refused = self._refusal(request)
        if refused is not None:
            log.warn(
                "wire trace request from {client} refused: {why}",
                client=str(request.getClientAddress()),
                why=refused,
            )
            return self._answer(request, 403, {"error": f"refused: {refused}"})
        args = self._args(request)
        name = args.get("device", "")
        if not name:
            return self._answer(request, 400, {"error": "give device=NAME"})
        if args.get("stop") not in (None, "", "0", "false"):
            stopped = self.trace.stop(name)
            return self._answer(request, 200, {"device": name, "stopped": stopped})
        try:
            minutes = float(args.get("minutes", DEFAULT_TRACE_MINUTES))
            until = self.trace.start(name, minutes)
        except ValueError as e:
            return self._answer(request, 400, {"error": f"minutes: {e}"})
        return self._answer(request, 200, {"device": name, "until": isoTime(until)})


class DeviceFinder:
    """
    C{find(name)} over status entries: the link of the device entry of that name (or, for a
    program's handler, bound to a global variable of that name); C{secrets(name)}: what its
    probe sends that the trace masks (a C{secret = true} payload, an SNMP community).
    """

    def __init__(self, entries: Callable[[], Iterable[Any]]) -> None:
        self.entries = entries

    def _entry(self, name: str) -> Any:
        for entry in self.entries():
            named = entry.name == name or entry.extra.get("variable") == name
            if named and entry.kind == "device":
                return entry
        return None

    def __call__(self, name: str) -> Any:
        entry = self._entry(name)
        interface = getattr(getattr(entry, "handler", None), "Interface", None)
        return getattr(interface, "link", None)

    def secrets(self, name: str) -> list[bytes]:
        """The secrets the device's probe sends (and the device may echo)."""
        probe = getattr(self._entry(name), "probe", None)
        found = []
        send = getattr(probe, "send", None)
        if getattr(probe, "secret", False) is True and isinstance(send, bytes):
            found.append(send)
        community = getattr(probe, "community", None)
        if isinstance(community, bytes) and community:
            found.append(community)
        return found


def linkFinder(entries: Callable[[], Iterable[Any]]) -> DeviceFinder:
    """A L{DeviceFinder} over status entries (see there)."""
    return DeviceFinder(entries)
