# -*- test-case-name: tests.test_probes -*-
"""
The stock probes' wire formats, with no I/O: PJLink's authentication digest and SNMP v1/v2c
messages (BER, through pyasn1).  Used by the probes (L{twisted_ch.service.probes}) and by the
simulators of L{twisted_ch.testing}.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

__all__ = [
    "SNMP_VERSIONS",
    "SYS_UPTIME",
    "ProbeUnavailable",
    "GetRequestTemplate",
    "SNMPMessage",
    "decodeMessage",
    "decodeUptime",
    "decodeTimeTicks",
    "encodeMessage",
    "peekResponse",
    "pjlinkDigest",
    "sharedTemplate",
]

#: sysUpTime.0, the SNMP object the SNMP probe reads.
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


class ProbeUnavailable(RuntimeError):
    """A probe's optional dependency is not installed."""


def pjlinkDigest(random: bytes, password: str) -> bytes:
    """PJLink class 1 authentication: MD5 of the greeting's random and the password, as hex."""
    return (
        hashlib.md5(random + password.encode("utf-8"), usedforsecurity=False).hexdigest().encode()
    )


@cache
def _asn1() -> SimpleNamespace:
    """The SNMP message types, built with pyasn1 on first use."""
    try:
        from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
        from pyasn1.type import namedtype, tag, univ  # type: ignore[import-untyped]
    except ImportError as e:
        raise ProbeUnavailable(
            f"the SNMP probe needs pyasn1 ({e}); install it with: pip install 'twisted_ch[snmp]'"
        ) from None

    def implicit(base: Any, cls: int, fmt: int, number: int) -> Any:
        return base.tagSet.tagImplicitly(tag.Tag(cls, fmt, number))

    class TimeTicks(univ.Integer):  # type: ignore[misc]
        tagSet = implicit(univ.Integer, tag.tagClassApplication, tag.tagFormatSimple, 3)

    class VarBind(univ.Sequence):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("name", univ.ObjectIdentifier()),
            namedtype.NamedType("value", univ.Any()),
        )

    class VarBindList(univ.SequenceOf):  # type: ignore[misc]
        componentType = VarBind()

    fields = namedtype.NamedTypes(
        namedtype.NamedType("request-id", univ.Integer()),
        namedtype.NamedType("error-status", univ.Integer()),
        namedtype.NamedType("error-index", univ.Integer()),
        namedtype.NamedType("variable-bindings", VarBindList()),
    )
    constructed = tag.tagClassContext, tag.tagFormatConstructed

    class GetRequestPDU(univ.Sequence):  # type: ignore[misc]
        tagSet = implicit(univ.Sequence, *constructed, 0)
        componentType = fields

    class ResponsePDU(univ.Sequence):  # type: ignore[misc]
        tagSet = implicit(univ.Sequence, *constructed, 2)
        componentType = fields

    class PDUs(univ.Choice):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("get-request", GetRequestPDU()),
            namedtype.NamedType("response", ResponsePDU()),
        )

    class Message(univ.Sequence):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("version", univ.Integer()),
            namedtype.NamedType("community", univ.OctetString()),
            namedtype.NamedType("data", PDUs()),
        )

    return SimpleNamespace(
        univ=univ,
        encode=encoder.encode,
        decode=decoder.decode,
        TimeTicks=TimeTicks,
        VarBind=VarBind,
        GetRequestPDU=GetRequestPDU,
        ResponsePDU=ResponsePDU,
        Message=Message,
        NULL=encoder.encode(univ.Null("")),
    )


SNMP_VERSIONS = {"1": 0, "2c": 1}


def encodeMessage(
    version: int, community: bytes, pduKind: str, requestId: int, binds: list[tuple[str, Any]]
) -> bytes:
    """BER-encode an SNMP message; each bind's value is BER bytes or a pyasn1 value."""
    a = _asn1()
    pdu = (a.GetRequestPDU if pduKind == "get-request" else a.ResponsePDU)()
    pdu["request-id"] = requestId
    pdu["error-status"] = 0
    pdu["error-index"] = 0
    binds_ = pdu["variable-bindings"]
    for i, (oid, value) in enumerate(binds):
        vb = a.VarBind()
        vb["name"] = a.univ.ObjectIdentifier(oid)
        vb["value"] = a.univ.Any(value if isinstance(value, bytes) else a.encode(value))
        binds_[i] = vb
    message = a.Message()
    message["version"] = version
    message["community"] = community
    message["data"][pduKind] = pdu
    return a.encode(message)  # type: ignore[no-any-return]


@dataclass
class SNMPMessage:
    """A decoded SNMP v1/v2c message."""

    version: int
    community: bytes
    pduKind: str
    requestId: int
    errorStatus: int
    binds: list[tuple[str, bytes]]  # (oid, BER-encoded value)
    #: sysUpTime's hundredths of a second, when L{decodeUptime} read them (else None)
    uptimeTicks: int | None = None


def decodeMessage(datagram: bytes) -> SNMPMessage:
    """
    Decode an SNMP GetRequest or Response.

    @raise ValueError: the datagram is not one.
    """
    a = _asn1()
    try:
        message, rest = a.decode(datagram, asn1Spec=a.Message())
        data = message["data"]
        kind = data.getName()
        pdu = data.getComponent()
        binds = [
            (str(vb["name"]), bytes(vb["value"].asOctets())) for vb in pdu["variable-bindings"]
        ]
        return SNMPMessage(
            int(message["version"]),
            bytes(message["community"]),
            kind,
            int(pdu["request-id"]),
            int(pdu["error-status"]),
            binds,
        )
    except Exception as e:
        raise ValueError(f"not an SNMP message: {e}") from None


def decodeTimeTicks(value: bytes) -> int:
    """The hundredths of a second in a BER TimeTicks value; ValueError if it is not one."""
    a = _asn1()
    try:
        ticks, _ = a.decode(value, asn1Spec=a.TimeTicks())
        return int(ticks)
    except Exception as e:
        raise ValueError(f"not TimeTicks: {e}") from None


def _berItem(data: bytes, at: int) -> tuple[int, int, int] | None:
    """
    The BER item at C{data[at:]}: C{(tag, start of contents, end of contents)}, or None when it
    is malformed or runs past the data.  Constant work: a one-byte tag, at most 4 length bytes.
    """
    if at + 2 > len(data):
        return None
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 4 or at + n > len(data):
            return None
        length = int.from_bytes(data[at : at + n], "big")
        at += n
    if at + length > len(data):
        return None
    return tag, at, at + length


def peekResponse(datagram: bytes) -> tuple[int, bytes, int] | None:
    """
    Read an SNMP Response's header without decoding it: C{(version, community, request-id)}, or
    None if the datagram is not a v1/v2c Response.  Costs a handful of steps whatever its size,
    so a datagram that answers no outstanding request is rejected before any decoding.
    """
    outer = _berItem(datagram, 0)
    if outer is None or outer[0] != 0x30:
        return None
    version = _berItem(datagram, outer[1])
    if version is None or version[0] != 0x02 or version[2] - version[1] != 1:
        return None
    community = _berItem(datagram, version[2])
    if community is None or community[0] != 0x04:
        return None
    pdu = _berItem(datagram, community[2])
    if pdu is None or pdu[0] != 0xA2:
        return None
    rid = _berItem(datagram, pdu[1])
    if rid is None or rid[0] != 0x02 or not 1 <= rid[2] - rid[1] <= 5:
        return None
    return (
        datagram[version[1]],
        datagram[community[1] : community[2]],
        int.from_bytes(datagram[rid[1] : rid[2]], "big", signed=True),
    )


def _intLength(n: int) -> int:
    """The bytes of a positive C{n}'s shortest two's complement encoding (as BER writes it)."""
    return n.bit_length() // 8 + 1


class GetRequestTemplate:
    """
    A GetRequest of one OID (a NULL value) for one version and community, encoded by pyasn1
    once per length of request-id and then only patched with each request's id: the bytes are
    L{encodeMessage}'s for the same arguments.
    """

    __slots__ = ("version", "community", "oid", "_parts", "__weakref__")

    def __init__(self, version: int, community: bytes, oid: str = SYS_UPTIME) -> None:
        self.version = version
        self.community = community
        self.oid = oid
        #: request-id content length -> (the bytes before the id's content, those after)
        self._parts: dict[int, tuple[bytes, bytes]] = {}

    def encode(self, requestId: int) -> bytes:
        """The GetRequest carrying C{requestId} (1 to 2**31 - 1, as the SNMP probe makes them)."""
        if not 0 < requestId < 2**31:
            raise ValueError(f"request-id must be 1 to 2**31 - 1, not {requestId}")
        n = _intLength(requestId)
        parts = self._parts.get(n)
        if parts is None:
            parts = self._parts[n] = self._split(requestId)
        return parts[0] + requestId.to_bytes(n, "big") + parts[1]

    def _split(self, requestId: int) -> tuple[bytes, bytes]:
        whole = encodeMessage(
            self.version, self.community, "get-request", requestId, [(self.oid, _asn1().NULL)]
        )
        outer = _berItem(whole, 0)
        version = _berItem(whole, outer[1]) if outer else None
        community = _berItem(whole, version[2]) if version else None
        pdu = _berItem(whole, community[2]) if community else None
        rid = _berItem(whole, pdu[1]) if pdu else None
        content = requestId.to_bytes(_intLength(requestId), "big")
        if rid is None or rid[0] != 0x02 or whole[rid[1] : rid[2]] != content:
            raise ValueError(f"pyasn1 encoded request-id {requestId} unexpectedly")
        return whole[: rid[1]], whole[rid[2] :]


_templates: weakref.WeakValueDictionary[tuple[int, bytes, str], GetRequestTemplate] = (
    weakref.WeakValueDictionary()
)


def sharedTemplate(version: int, community: bytes, oid: str = SYS_UPTIME) -> GetRequestTemplate:
    """
    The one L{GetRequestTemplate} of C{version}, C{community} and C{oid} while any probe holds
    it: a fleet's SNMP devices mostly share a community, and each template holds its encoded
    parts (about 0.4 KiB).
    """
    key = (version, community, oid)
    template = _templates.get(key)
    if template is None:
        template = _templates[key] = GetRequestTemplate(version, community, oid)
    return template


#: sysUpTime.0's OBJECT IDENTIFIER contents, as BER writes them
_SYS_UPTIME_OID = bytes.fromhex("2b06010201010300")


def _int(data: bytes, item: tuple[int, int, int] | None, most: int) -> int | None:
    """The value of an INTEGER item of 1 to C{most} content bytes, else None."""
    if item is None or item[0] != 0x02 or not 1 <= item[2] - item[1] <= most:
        return None
    return int.from_bytes(data[item[1] : item[2]], "big", signed=True)


def decodeUptime(datagram: bytes) -> SNMPMessage | None:
    """
    The usual answer to the SNMP probe, decoded without pyasn1: a v1/v2c Response carrying one
    binding, sysUpTime.0 with a TimeTicks value, and nothing else (no byte left over anywhere).
    Anything else gives None, for L{decodeMessage} to judge.  What it returns is what
    L{decodeMessage} returns for the same datagram, with L{SNMPMessage.uptimeTicks} set to what
    L{decodeTimeTicks} reads from the value.
    """
    outer = _berItem(datagram, 0)
    if outer is None or outer[0] != 0x30 or outer[2] != len(datagram):
        return None
    versionItem = _berItem(datagram, outer[1])
    version = _int(datagram, versionItem, 1)
    if version is None or versionItem is None:
        return None
    community = _berItem(datagram, versionItem[2])
    if community is None or community[0] != 0x04:
        return None
    pdu = _berItem(datagram, community[2])
    if pdu is None or pdu[0] != 0xA2 or pdu[2] != outer[2]:
        return None
    ridItem = _berItem(datagram, pdu[1])
    requestId = _int(datagram, ridItem, 5)
    if requestId is None or ridItem is None:
        return None
    statusItem = _berItem(datagram, ridItem[2])
    errorStatus = _int(datagram, statusItem, 4)
    if errorStatus is None or statusItem is None:
        return None
    indexItem = _berItem(datagram, statusItem[2])
    if _int(datagram, indexItem, 4) is None or indexItem is None:
        return None
    binds = _berItem(datagram, indexItem[2])
    if binds is None or binds[0] != 0x30 or binds[2] != pdu[2]:
        return None
    bind = _berItem(datagram, binds[1])
    if bind is None or bind[0] != 0x30 or bind[2] != binds[2]:
        return None
    oid = _berItem(datagram, bind[1])
    if oid is None or oid[0] != 0x06 or datagram[oid[1] : oid[2]] != _SYS_UPTIME_OID:
        return None
    value = _berItem(datagram, oid[2])
    if value is None or value[0] != 0x43 or value[2] != bind[2]:
        return None
    if not 1 <= value[2] - value[1] <= 8:
        return None
    return SNMPMessage(
        version,
        datagram[community[1] : community[2]],
        "response",
        requestId,
        errorStatus,
        [(SYS_UPTIME, datagram[oid[2] : value[2]])],
        int.from_bytes(datagram[value[1] : value[2]], "big", signed=True),
    )
