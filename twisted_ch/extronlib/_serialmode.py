"""
A serial port's C{Mode} (C{'RS232'}, C{'RS422'}, C{'RS485'}, C{'RS485-HD'}) applied to a Linux
port through the kernel's RS-485 settings (the C{TIOCGRS485}/C{TIOCSRS485} ioctls, as pyserial's
C{Serial.rs485_mode} uses them).

What each mode asks of the port's driver:

  - C{'RS232'} and C{'RS422'}: no RS-485 direction control (both are full duplex: the transmitter
    is always on; RS-422's differential lines are the adapter's wiring, not a driver setting).
    A port whose driver has no RS-485 settings is in this mode already.
  - C{'RS485'} (four wires, full duplex): direction control on (RTS high while sending), and the
    receiver kept on while sending, since it listens on its own pair.
  - C{'RS485-HD'} (two wires, half duplex): direction control on (RTS high while sending), the
    receiver off while sending (the port does not hear its own transmission).

The ioctls are made directly rather than through pyserial's C{rs485_mode}: pyserial cannot turn
RS-485 off again once on, and keeps a mode that failed, failing every later reconfiguration.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MODES", "ModeNotApplied", "RS485Flags", "applyMode", "flagsFor"]

#: the modes, as ControlScript names them
MODES = ("RS232", "RS422", "RS485", "RS485-HD")

# linux/serial.h and asm-generic/ioctls.h
TIOCGRS485 = 0x542E
TIOCSRS485 = 0x542F
SER_RS485_ENABLED = 1 << 0
SER_RS485_RTS_ON_SEND = 1 << 1
SER_RS485_RTS_AFTER_SEND = 1 << 2
SER_RS485_RX_DURING_TX = 1 << 4
_OURS = (
    SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND | SER_RS485_RTS_AFTER_SEND | SER_RS485_RX_DURING_TX
)


@dataclass(frozen=True)
class RS485Flags:
    """What a mode sets in the kernel's C{serial_rs485.flags} (the other bits are kept)."""

    enabled: bool
    rtsOnSend: bool = False
    rtsAfterSend: bool = False
    rxDuringTx: bool = False

    def apply(self, flags: int) -> int:
        """C{flags} with this mode's bits set and cleared."""
        flags &= ~_OURS
        if self.enabled:
            flags |= SER_RS485_ENABLED
            if self.rtsOnSend:
                flags |= SER_RS485_RTS_ON_SEND
            if self.rtsAfterSend:
                flags |= SER_RS485_RTS_AFTER_SEND
            if self.rxDuringTx:
                flags |= SER_RS485_RX_DURING_TX
        return flags


_FLAGS = {
    "RS232": RS485Flags(enabled=False),
    "RS422": RS485Flags(enabled=False),
    "RS485": RS485Flags(enabled=True, rtsOnSend=True, rxDuringTx=True),
    "RS485-HD": RS485Flags(enabled=True, rtsOnSend=True, rxDuringTx=False),
}


def flagsFor(mode: str) -> RS485Flags:
    """The RS-485 settings a mode asks for."""
    try:
        return _FLAGS[mode]
    except KeyError:
        raise ValueError(f"Mode must be one of {', '.join(MODES)}, got {mode!r}") from None


class ModeNotApplied(Exception):
    """The port cannot take the mode (no RS-485 support in its driver, a pty, not Linux)."""


Ioctl = Callable[[int, int, Any], Any]


def applyMode(fd: int, mode: str, ioctl: Ioctl = fcntl.ioctl) -> bool:
    """
    Set C{mode} on the open serial port C{fd}: read the driver's RS-485 settings, change the
    mode's bits (keeping the delays and any other flag) and write them back if they changed.
    Returns whether they were written.

    @raise ModeNotApplied: the port has no RS-485 settings and the mode needs them, or the
        driver refused them.  A full-duplex mode on a port without RS-485 settings is not an
        error: the port is in that mode already.
    """
    wanted = flagsFor(mode)
    if not sys.platform.startswith("linux"):
        if wanted.enabled:
            raise ModeNotApplied(f"RS-485 settings are Linux-only (this is {sys.platform})")
        return False
    settings = array.array("I", [0] * 8)  # flags, delay before send, delay after send, padding
    try:
        ioctl(fd, TIOCGRS485, settings)
    except OSError as e:
        if not wanted.enabled:
            return False  # no RS-485 in this driver: it is full duplex already
        raise ModeNotApplied(_why(e)) from None
    flags = wanted.apply(settings[0])
    if flags == settings[0]:
        return False
    settings[0] = flags
    try:
        ioctl(fd, TIOCSRS485, settings)
    except OSError as e:
        raise ModeNotApplied(_why(e)) from None
    return True


def _why(e: OSError) -> str:
    text = os.strerror(e.errno) if e.errno else str(e)
    if e.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
        return f"its driver has no RS-485 support ({text})"
    return text
