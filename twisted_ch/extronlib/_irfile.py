"""
IR files for L{IRInterface<twisted_ch.extronlib.interface.IRInterface>}: found, read, checked,
and their function names listed.

Extron's own C{.eir} format (what IR Learner and the IR library write) is not documented, and
none is described here: such a file cannot be read, and an interface using one plays any function
name, unchecked, as before.  What twisted_ch reads is an IR function list in one of two open forms
(the codes, typically Pronto hex, go to the I/O backend, which drives the emitter):

XML, each function an element named C{function}, C{command}, C{irfunction} or C{ircommand} (any
case and namespace) with its name in a C{name} attribute (or a C{<name>} child), and optionally
its code in a C{code}/C{pronto} attribute, a C{<code>}/C{<pronto>} child or its text, and its
repeat count (0-15) in a C{repeat} attribute::

    <irfile device="Projector">
      <function name="Power On" repeat="2">0000 006D 0022 0002 0157 00AC ...</function>
    </irfile>

or text, one function a line, C{name = code} (C{#} starts a comment)::

    Power On = 0000 006D 0022 0002 0157 00AC ...
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from twisted_ch._readfile import FileProblem, readRegularFile

__all__ = ["IRFile", "IRFileError", "IRFunction", "findIRFile", "loadIRFile"]

#: the largest IR file read (a function list is a few kilobytes; a device's bytes are refused)
MAX_IR_FILE = 4 * 1024 * 1024

_FUNCTION_TAGS = {"function", "command", "irfunction", "ircommand"}


class IRFileError(ValueError):
    """An IR file cannot be used: missing, unreadable, not an IR function list, or inconsistent."""


@dataclass(frozen=True)
class IRFunction:
    """One function of an IR file: its name, its code (if the file gives one), its repeats."""

    name: str
    code: str | None = None
    repeat: int | None = None


@dataclass(frozen=True)
class IRFile:
    """An IR file read: its path and its functions by name, in file order."""

    path: Path
    functions: dict[str, IRFunction] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The function names, in file order."""
        return list(self.functions)


def findIRFile(name: str, folders: list[Path]) -> Path | None:
    """
    The file called C{name}: an absolute path as it is, else the first of C{folders} holding
    it.  C{name} may not leave those folders.
    """
    given = Path(name)
    # (found if it exists at all: a FIFO or a device is then refused by loadIRFile, by name)
    if given.is_absolute():
        return given if given.exists() else None
    if ".." in given.parts:
        raise IRFileError(f"IR file name {name!r} may not contain '..'")
    for folder in folders:
        candidate = folder / given
        if candidate.exists():
            return candidate
    return None


def loadIRFile(path: Path) -> IRFile:
    """
    Read and check an IR file (see the module's description of the forms read): a regular file
    of at most L{MAX_IR_FILE} bytes, opened without blocking (a FIFO or a device is refused).
    """
    try:
        data = readRegularFile(path, MAX_IR_FILE)
    except FileProblem as e:
        raise IRFileError(str(e)) from None
    if not data.strip():
        raise IRFileError(f"{path}: is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IRFileError(
            f"{path}: not an IR function list twisted_ch can read (binary: Extron's .eir format "
            "is not documented; give the functions as XML or 'name = code' lines)"
        ) from None
    if "\0" in text:
        raise IRFileError(f"{path}: not an IR function list twisted_ch can read (binary data)")
    functions = _fromXML(path, text) if text.lstrip().startswith("<") else _fromLines(path, text)
    if not functions:
        raise IRFileError(f"{path}: names no IR function")
    return IRFile(path, {f.name: f for f in functions})


def _add(path: Path, found: list[IRFunction], function: IRFunction, where: str) -> None:
    if not function.name:
        raise IRFileError(f"{path}: {where}: a function without a name")
    if any(f.name == function.name for f in found):
        raise IRFileError(f"{path}: {where}: function {function.name!r} is named twice")
    found.append(function)


def _repeat(path: Path, value: str | None, where: str) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,2}", value.strip()) or not 0 <= int(value) <= 15:
        raise IRFileError(f"{path}: {where}: repeat must be 0-15, got {value!r}")
    return int(value)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].lower()


def _fromXML(path: Path, text: str) -> list[IRFunction]:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # no entity expansion from a file
        raise IRFileError(f"{path}: DTDs and entities are not accepted in an IR file")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise IRFileError(f"{path}: not well-formed XML ({e})") from None
    found: list[IRFunction] = []
    for element in root.iter():
        if not isinstance(element.tag, str) or _local(element.tag) not in _FUNCTION_TAGS:
            continue
        attributes = {k.rpartition("}")[2].lower(): v for k, v in element.attrib.items()}
        children = {
            _local(c.tag): (c.text or "").strip() for c in element if isinstance(c.tag, str)
        }
        name = (attributes.get("name") or children.get("name") or "").strip()
        code = (
            attributes.get("code")
            or attributes.get("pronto")
            or children.get("code")
            or children.get("pronto")
            or (element.text or "").strip()
            or None
        )
        where = f"<{_local(element.tag)}> {name!r}" if name else f"<{_local(element.tag)}>"
        repeat = _repeat(path, attributes.get("repeat"), where)
        _add(path, found, IRFunction(name, code, repeat), where)
    return found


def _fromLines(path: Path, text: str) -> list[IRFunction]:
    found: list[IRFunction] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, equals, code = line.partition("=")
        if not equals:
            raise IRFileError(f"{path}: line {number}: expected 'name = code', got {raw.strip()!r}")
        _add(path, found, IRFunction(name.strip(), code.strip() or None), f"line {number}")
    return found
