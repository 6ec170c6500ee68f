# -*- test-case-name: tests.test_readfile -*-
"""
Reading a file named by a user (a project file, a layout, a config): a regular file of bounded
size, opened without blocking, or one clear error.  A FIFO, a device (C{/dev/zero}), a directory
or a file over the bound is refused before anything is read into memory.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

__all__ = ["FileProblem", "fileKind", "readRegularFile", "readTextFile"]

_FLAGS: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_FLAGS_NOCTTY: Final = _FLAGS | getattr(os, "O_NOCTTY", 0)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def fileKind(mode: int) -> str:
    """What a file of this C{st_mode} is, when it is not a regular file ('a FIFO', ...)."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


class FileProblem(ValueError):
    """A file that cannot be read as asked; the message names the file and says why."""


def _describe(error: OSError) -> str:
    return error.strerror or str(error)


def readRegularFile(path: str | os.PathLike[str], limit: int) -> bytes:
    """
    The whole content of the regular file C{path}, at most C{limit} bytes.

    @raise FileProblem: the file is missing, unreadable, not a regular file, or larger than
        C{limit} (also when it grows past it while read).
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, _FLAGS_NOCTTY)
    except OSError as e:
        raise FileProblem(f"{name}: cannot read the file ({_describe(e)})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{name}: it is {fileKind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise FileProblem(f"{name}: it holds {st.st_size} bytes, more than the {limit} read")
        chunks: list[bytes] = []
        offset = 0
        while True:
            chunk = os.pread(fd, limit + 1 - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            if offset > limit:
                raise FileProblem(f"{name}: it grew past the {limit} bytes read")
        return b"".join(chunks)
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise FileProblem(f"{name}: it is a directory, not a regular file") from None
        raise FileProblem(f"{name}: cannot read the file ({_describe(e)})") from None
    finally:
        os.close(fd)


def readTextFile(path: str | os.PathLike[str], limit: int) -> str:
    """L{readRegularFile} decoded as UTF-8 (one leading BOM dropped)."""
    data = readRegularFile(path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileProblem(f"{os.fspath(path)}: not UTF-8 text (byte {e.start})") from None
