# -*- test-case-name: tests.test_status_health -*-
"""
C{/metrics}: every device's counters in the Prometheus text format, labelled with its
C{device}, its C{room} (when it has one) and the C{shard}.
"""

from __future__ import annotations

from collections.abc import Generator

from twisted_ch.service._outages import _number
from twisted_ch.service._registry import STATUS_ROWS_PER_STEP, Registry, allOf

__all__ = ["METRICS_CONTENT_TYPE", "metricsPieces", "metricsText"]

#: The Prometheus text format (version 0.0.4) that L{metricsText} writes.
METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

#: (name, type, help) of each per-device family, in the order L{metricsText} writes them.
_FAMILIES = (
    ("chandler_device_up", "gauge", "1 if the device is Connected, else 0"),
    ("chandler_device_polls_total", "counter", "Keep-alive polls sent"),
    ("chandler_device_misses", "gauge", "Keep-alive polls sent since the last good answer"),
    ("chandler_device_transitions_total", "counter", "Changes of connection status"),
    ("chandler_device_reconnects_total", "counter", "Reconnection attempts"),
    (
        "chandler_device_health",
        "gauge",
        "1, labelled with the device's health level: ok, warning, error, unknown or paused",
    ),
    ("chandler_device_paused", "gauge", "1 if the device is paused for maintenance, else 0"),
)


def _labelValue(text: str) -> str:
    """A label value escaped as the text format wants (backslash, double quote, newline)."""
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def _sample(value: object) -> str:
    """A counter's or gauge's value as the text format writes it (C{1.0}, C{+Inf}, C{NaN})."""
    number = _number(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def metricsText(registry: Registry) -> bytes:
    """C{/metrics} at once (L{metricsPieces} joined)."""
    return allOf(metricsPieces(registry))


def metricsPieces(
    registry: Registry, step: int = STATUS_ROWS_PER_STEP
) -> Generator[bytes, None, bytes]:
    """
    C{/metrics}: every device's counters in the Prometheus text format, in pieces: each
    C{next()} reads at most C{step} entries (yielding nothing), then each family is one piece
    (the format keeps a family's samples together), the last one returned.  A registry of one
    step is one piece.
    """
    shard = registry.shard
    tail = "" if shard is None else f',shard="{_labelValue(shard)}"'
    columns: list[list[str]] = [[] for _ in _FAMILIES]
    up, polls, misses, transitions, reconnects, health, paused = columns
    for done, entry in enumerate(registry.entries(), 1):
        if done % step == 0:
            yield b""
        if entry.kind != "device":
            continue
        row = registry.rowOf(entry, brief=True)  # (the counters: no times as text)
        # a room label only where a room is given (an absent label is an empty one)
        room = row.get("room")
        inRoom = f',room="{_labelValue(room)}"' if isinstance(room, str) and room else ""
        labels = f'{{device="{_labelValue(str(row["name"]))}"{inRoom}{tail}}} '
        up.append(labels + ("1.0" if row["state"] == "Connected" else "0.0"))
        polls.append(labels + _sample(row.get("polls")))
        misses.append(labels + _sample(row.get("misses")))
        transitions.append(labels + _sample(row.get("transitions")))
        reconnects.append(labels + _sample(row.get("reconnects")))
        # one sample per device (the others would be 0): count by (level) still works
        level = _labelValue(str(row.get("health", "unknown")))
        health.append(f'{labels[:-2]},level="{level}"}} 1.0')
        paused.append(labels + ("1.0" if row.get("paused") else "0.0"))
    stepped = len(up) >= step
    families: list[bytes] = []
    for (name, kind, text), samples in zip(_FAMILIES, columns, strict=True):
        out = f"# HELP {name} {text}\n# TYPE {name} {kind}\n"
        if samples:
            out += name + ("\n" + name).join(samples) + "\n"
        if stepped and families:
            yield b"".join(families)
            families = []
        families.append(out.encode("utf-8"))
    return b"".join(families)
