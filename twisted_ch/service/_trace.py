"""
The wire trace: per device, every chunk sent (C{tx}) and received (C{rx}) with its time, as hex
and as printable text, for a number of minutes, after which it switches itself off.

Started with C{twistd chandler --trace NAME[,NAME]} or at run time over HTTP (C{POST /trace}
on the status port, see L{TraceResource}), which is refused unless the status port is bound to
loopback or the request carries the config's C{[status] token}.

Secrets are never traced in clear: the PJLink authentication exchange (the projector's random
and the digest that answers it), an SNMP message's community and whatever is sent after a
password prompt are masked in the trace; SSH credentials never reach it (the trace sees the
shell channel's data, not the SSH layer's).
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


def _maskSNMPCommunity(data: bytes) -> bytes | None:
    """
    An SNMP v1/v2c message (C{SEQUENCE { INTEGER version, OCTET STRING community, ...}}) with
    its community replaced by C{*}s, or None if C{data} is not one.
    """

    def length(at: int) -> tuple[int, int] | None:
        """A BER length at C{at}: (value, where the content starts)."""
        if at >= len(data):
            return None
        first = data[at]
        if first < 0x80:
            return first, at + 1
        n = first & 0x7F
        if not 1 <= n <= 3 or at + 1 + n > len(data):
            return None
        return int.from_bytes(data[at + 1 : at + 1 + n], "big"), at + 1 + n

    if len(data) < 8 or data[0] != 0x30:
        return None
    outer = length(1)
    if outer is None or data[outer[1] : outer[1] + 3] not in (b"\x02\x01\x00", b"\x02\x01\x01"):
        return None
    at = outer[1] + 3
    if at >= len(data) or data[at] != 0x04:
        return None
    community = length(at + 1)
    if community is None or community[1] + community[0] > len(data):
        return None
    start, end = community[1], community[1] + community[0]
    return data[:start] + b"*" * (end - start) + data[end:]


class _Masker:
    """Masks one device's secrets as they pass, remembering a password prompt between chunks."""

    def __init__(self) -> None:
        self.promptSeen = False

    def __call__(self, direction: str, data: bytes) -> tuple[bytes, bool]:
        """The chunk as it may be shown, and whether something was masked."""
        snmp = _maskSNMPCommunity(data)
        if snmp is not None:
            return snmp, True
        if direction == "rx":
            self.promptSeen = bool(_PASSWORD_PROMPT.search(data[-64:]))
            masked, n = _PJLINK_GREETING.subn(lambda m: m.group(1) + b"<random>", data)
            return masked, bool(n)
        if self.promptSeen:
            self.promptSeen = False
            return b"<secret: %d bytes>" % len(data), True
        masked, n = _PJLINK_DIGEST.subn(b"<digest>\\2", data)
        return masked, bool(n)


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


def linkFinder(entries: Callable[[], Iterable[Any]]) -> Callable[[str], Any]:
    """
    C{find(name)} over status entries: the link of the device entry of that name (or, for a
    program's handler, bound to a global variable of that name).
    """

    def find(name: str) -> Any:
        for entry in entries():
            named = entry.name == name or entry.extra.get("variable") == name
            if named and entry.kind == "device":
                interface = getattr(entry.handler, "Interface", None)
                return getattr(interface, "link", None)
        return None

    return find
