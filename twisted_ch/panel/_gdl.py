# -*- test-case-name: tests.test_gdl -*-
"""
GUI Designer layouts (C{.gdl}) read into a model: pages, popups and their controls, the PNGs by
number and the embedded fonts by file name (format: C{shared/spec/gdl-format.md}).

The file is read whole (bounded), its C{KP} container signatures patched in memory, the inner
C{.tgz4} ZIP opened, and C{layout.json} parsed.  Every entry is decompressed under a bound, so a
crafted file cannot exhaust memory; anything wrong is one L{LayoutError} naming the file.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, NoReturn

from twisted_ch._readfile import FileProblem, readRegularFile

__all__ = [
    "Container",
    "Control",
    "Font",
    "FontFace",
    "Layout",
    "LayoutError",
    "State",
    "readLayout",
]

#: the largest .gdl read, each entry decompressed, and all entries of the inner ZIP together
MAX_FILE: Final = 256 << 20
MAX_ENTRY: Final = 128 << 20
MAX_TOTAL: Final = 512 << 20
_MAX_ENTRIES: Final = 10_000

_PNG = re.compile(r"(0|[1-9][0-9]{0,8})\.png$")
_FONT = re.compile(r".+\.(ttf|otf|ttc|woff2?)$", re.IGNORECASE)

_KINDS: Final = {
    "PBButton": "Button",
    "PBLabel": "Label",
    "PBLevel": "Level",
    "PBSlider": "Slider",
    "PBDateTime": "DateTime",
    "PBImage": "Image",
    "PBShape": "Shape",
    "PBLine": "Line",
    "PBPopupPageReference": "PopupRef",
}
_H: Final = ("center", "left", "right")
_V: Final = ("bottom", "middle", "top")
_WHITE: Final = "rgba(255,255,255,1)"


class LayoutError(ValueError):
    """A layout that cannot be read; the message (one line) names the file and what is wrong."""


@dataclass(frozen=True)
class Font:
    """A caption's font: family, size in points and style."""

    family: str = "Arial"
    size: float = 12.0
    bold: bool = False
    italic: bool = False
    underline: bool = False
    strikeout: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "size": self.size,
            "bold": self.bold,
            "italic": self.italic,
            "underline": self.underline,
            "strikeout": self.strikeout,
        }


@dataclass(frozen=True)
class State:
    """One visual state of a button: the number C{SetState} takes, its PNG and caption."""

    id: int
    name: str
    image: int | None
    text: str
    align: tuple[str, str]
    color: str
    font: Font

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "text": self.text,
            "align": {"h": self.align[0], "v": self.align[1]},
            "color": self.color,
            "font": self.font.document(),
        }


@dataclass(frozen=True)
class Control:
    """
    A control of a page or popup.  C{userId} is the number the program uses (0: none); C{index}
    is its ID within C{container} (the ID of its page or popup).
    """

    kind: str
    userId: int
    index: int
    name: str
    container: int
    left: int
    top: int
    width: int
    height: int
    image: int | None
    text: str
    align: tuple[str, str]
    color: str
    font: Font
    states: tuple[State, ...] = ()
    defaultState: int = 0
    pressState: int | None = None
    orientation: str = "horizontal"
    minImage: int | None = None
    maxImage: int | None = None
    thumbImage: int | None = None
    thumbWidth: int = 0
    thumbHeight: int = 0
    pattern: str = ""
    refGroup: int | None = None
    refPopup: int | None = None

    def state(self, stateId: int) -> State | None:
        """The state numbered C{stateId}, if the button has it."""
        return next((s for s in self.states if s.id == stateId), None)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "userId": self.userId,
            "index": self.index,
            "name": self.name,
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
            "image": self.image,
            "text": self.text,
            "align": {"h": self.align[0], "v": self.align[1]},
            "color": self.color,
            "font": self.font.document(),
        }
        if self.kind == "Button":
            doc["states"] = [s.document() for s in self.states]
            doc["defaultState"] = self.defaultState
            doc["pressState"] = self.pressState
        elif self.kind in ("Slider", "Level"):
            doc["orientation"] = self.orientation
            doc["minImage"] = self.minImage
            doc["maxImage"] = self.maxImage
            if self.kind == "Slider":
                doc["thumb"] = {
                    "image": self.thumbImage,
                    "width": self.thumbWidth,
                    "height": self.thumbHeight,
                }
        elif self.kind == "DateTime":
            doc["pattern"] = self.pattern
        elif self.kind == "PopupRef":
            doc["group"] = self.refGroup
            doc["popup"] = self.refPopup
        return doc


@dataclass(frozen=True)
class Container:
    """A page or a popup: its ID (shared ID space), name, size, background and controls."""

    id: int
    name: str
    kind: str
    width: int
    height: int
    image: int | None
    fill: str | None
    group: int
    modal: bool
    controls: tuple[Control, ...]

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "image": self.image,
            "fill": self.fill if self.image is None else None,
            "group": self.group,
            "modal": self.modal,
            "controls": [c.document() for c in self.controls],
        }


@dataclass(frozen=True)
class FontFace:
    """An embedded font file and the family and style it provides."""

    family: str
    file: str
    bold: bool
    italic: bool


@dataclass(frozen=True, eq=False)
class Layout:
    """
    A GUI Designer layout.

    @ivar source: the path it was read from.
    @ivar images: PNG bytes by TLPImageID.
    @ivar fonts: embedded font files by file name.
    @ivar controlsByUserId: per UserId (non-zero), its controls on every page and popup, in file
        order (a UserId may recur in several popups: one control for the program).
    @ivar popupGroups: per popup group ID, the IDs of its popups.
    """

    source: str
    name: str
    width: int
    height: int
    images: Mapping[int, bytes]
    fonts: Mapping[str, bytes]
    fontFaces: tuple[FontFace, ...]
    pages: tuple[Container, ...]
    popups: tuple[Container, ...]
    defaultPage: int | None
    offlinePage: int | None
    controlsByUserId: Mapping[int, tuple[Control, ...]] = field(init=False, repr=False)
    popupGroups: Mapping[int, tuple[int, ...]] = field(init=False, repr=False)
    _byId: Mapping[int, Container] = field(init=False, repr=False)
    _byName: Mapping[str, Container] = field(init=False, repr=False)
    _userIds: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        byUser: dict[int, list[Control]] = {}
        for container in self.pages + self.popups:
            for control in container.controls:
                if control.userId:
                    byUser.setdefault(control.userId, []).append(control)
        groups: dict[int, list[int]] = {}
        for popup in self.popups:
            if popup.group:
                groups.setdefault(popup.group, []).append(popup.id)
        containers = self.pages + self.popups
        fix = object.__setattr__
        fix(self, "controlsByUserId", MappingProxyType({k: tuple(v) for k, v in byUser.items()}))
        fix(self, "popupGroups", MappingProxyType({k: tuple(v) for k, v in groups.items()}))
        fix(self, "_byId", MappingProxyType({c.id: c for c in containers}))
        fix(self, "_byName", MappingProxyType({c.name: c for c in reversed(containers)}))
        names = {c.name: uid for uid, cs in reversed(byUser.items()) for c in reversed(cs)}
        fix(self, "_userIds", MappingProxyType(names))

    def userIdOf(self, name: str) -> int | None:
        """The UserId of the (first) addressable control named C{name}, if any."""
        return self._userIds.get(name)

    def control(self, userId: int) -> Control | None:
        """The first control with the UserId C{userId}, if any."""
        found = self.controlsByUserId.get(userId)
        return found[0] if found else None

    def page(self, page: int | str) -> Container | None:
        """The page named C{page} (else with that ID), if any."""
        found = self._find(page)
        return found if found is not None and found.kind == "page" else None

    def popup(self, popup: int | str) -> Container | None:
        """The popup named C{popup} (else with that ID), if any."""
        found = self._find(popup)
        return found if found is not None and found.kind == "popup" else None

    def container(self, ID: int) -> Container | None:
        """The page or popup with the ID C{ID}."""
        return self._byId.get(ID)

    def _find(self, key: int | str) -> Container | None:
        if isinstance(key, str):
            found = self._byName.get(key)
            if found is None and key.strip().isdigit():
                found = self._byId.get(int(key))
            return found
        return self._byId.get(key)

    def document(self) -> dict[str, Any]:
        """What the browser renders (PANEL-CONTRACT.md): a new JSON-ready dict on each call."""
        default = self._byId.get(self.defaultPage) if self.defaultPage is not None else None
        offline = self._byId.get(self.offlinePage) if self.offlinePage is not None else None
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "defaultPage": default.name if default is not None else None,
            "offlinePage": offline.name if offline is not None else None,
            "fonts": [
                {"family": f.family, "file": f.file, "bold": f.bold, "italic": f.italic}
                for f in self.fontFaces
            ],
            "pages": [p.document() for p in self.pages],
            "popups": [p.document() for p in self.popups],
        }


# the container


def _signed(data: bytearray, at: int, kind: bytes) -> bool:
    """Whether a ZIP signature (C{KP} or C{PK}, then C{kind}) starts at byte C{at}."""
    return bytes(data[at : at + 2]) in (b"KP", b"PK") and bytes(data[at + 2 : at + 4]) == kind


def _unpatch(data: bytearray, fail: Callable[[str], NoReturn]) -> None:
    """Write C{PK} over the C{KP} signatures the spec names (only those offsets)."""
    if len(data) < 22:
        fail("not a GDL (too short for a ZIP end record)")
    end = len(data) - 22
    if not _signed(data, end, b"\x05\x06"):
        fail("not a GDL (no end record in its last 22 bytes)")
    count, _size, cdOffset = struct.unpack_from("<HII", data, end + 10)
    if count > _MAX_ENTRIES:
        fail(f"not a GDL ({count} entries)")
    data[end : end + 2] = b"PK"
    offset = cdOffset
    for _ in range(count):
        if offset + 46 > end or not _signed(data, offset, b"\x01\x02"):
            fail(f"not a GDL (no central record at byte {offset})")
        n, e, c = struct.unpack_from("<HHH", data, offset + 28)
        (local,) = struct.unpack_from("<I", data, offset + 42)
        if local + 30 > cdOffset or not _signed(data, local, b"\x03\x04"):
            fail(f"not a GDL (no local header at byte {local})")
        data[offset : offset + 2] = b"PK"
        data[local : local + 2] = b"PK"
        offset += 46 + n + e + c


class _Reader:
    """One read of one file: the bounds spent so far and the errors naming it."""

    def __init__(self, source: str, maxEntry: int, maxTotal: int) -> None:
        self.source = source
        self.maxEntry = maxEntry
        self.left = maxTotal

    def fail(self, what: str) -> NoReturn:
        raise LayoutError(f"{self.source}: {what}")

    def open(self, data: bytes, what: str) -> zipfile.ZipFile:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            self.fail(f"{what} is not a readable ZIP ({e})")
        if len(archive.infolist()) > _MAX_ENTRIES:
            self.fail(f"{what} holds {len(archive.infolist())} entries")
        for info in archive.infolist():
            name = info.filename
            if "/" in name or "\\" in name or name in ("", ".", "..") or "\0" in name:
                self.fail(f"{what} holds an entry with a path, {name!r}")
        return archive

    def entry(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
        bound = min(self.maxEntry, self.left)
        label = f"{what} entry {info.filename!r}"
        if info.file_size > bound:
            self.fail(f"{label} unpacks to {info.file_size} bytes, more than the {bound} allowed")
        chunks: list[bytes] = []
        size = 0
        try:
            with archive.open(info) as stream:
                while True:
                    chunk = stream.read(min(1 << 20, bound + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > bound:
                        self.fail(f"{label} unpacks to more than the {bound} bytes allowed")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as e:
            self.fail(f"{label} cannot be unpacked ({e})")
        except NotImplementedError as e:
            self.fail(f"{label} cannot be unpacked ({e})")
        self.left -= size
        return b"".join(chunks)


def readLayout(
    path: str | os.PathLike[str],
    *,
    maxFile: int = MAX_FILE,
    maxEntry: int = MAX_ENTRY,
    maxTotal: int = MAX_TOTAL,
) -> Layout:
    """
    Read the GUI Designer layout at C{path}.

    @param maxFile: the largest file read; C{maxEntry}, C{maxTotal}: the most bytes one entry,
        and all entries together, may unpack to.
    @raise LayoutError: the file cannot be read or is not a layout this reader understands.
    """
    source = os.fspath(path)
    reader = _Reader(source, maxEntry, maxTotal)
    try:
        raw = readRegularFile(source, maxFile)
    except FileProblem as e:
        raise LayoutError(str(e)) from None
    data = bytearray(raw)
    del raw
    _unpatch(data, reader.fail)
    outer = reader.open(bytes(data), "its outer ZIP")
    inners = [i for i in outer.infolist() if i.filename != "ProjectGCP"]
    tgz4 = [i for i in inners if i.filename.lower().endswith(".tgz4")] or inners
    if not tgz4:
        reader.fail("not a GDL (no layout entry beside ProjectGCP)")
    innerName = tgz4[0].filename
    inner = reader.open(reader.entry(outer, tgz4[0], "the GDL"), innerName)
    images: dict[int, bytes] = {}
    fonts: dict[str, bytes] = {}
    layoutJSON: bytes | None = None
    for info in inner.infolist():
        name = info.filename
        if name == "layout.json":
            layoutJSON = reader.entry(inner, info, innerName)
        elif (m := _PNG.match(name)) is not None:
            images[int(m.group(1))] = reader.entry(inner, info, innerName)
        elif _FONT.match(name):
            fonts[name] = reader.entry(inner, info, innerName)
    if layoutJSON is None:
        reader.fail(f"no layout.json in {innerName}")
    try:
        text = layoutJSON.decode("utf-8")
    except UnicodeDecodeError as e:
        reader.fail(f"layout.json is not UTF-8 (byte {e.start})")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        reader.fail(f"layout.json is malformed JSON ({e.msg} at line {e.lineno} column {e.colno})")
    except RecursionError:
        reader.fail("layout.json is malformed JSON (nested too deeply)")
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        reader.fail(f"layout.json is malformed JSON ({e})")
    return _Parser(reader, images, fonts).layout(document)


# layout.json


class _Parser:
    def __init__(self, reader: _Reader, images: dict[int, bytes], fonts: dict[str, bytes]) -> None:
        self.reader = reader
        self.images = images
        self.fonts = fonts

    def fail(self, where: str, what: str) -> NoReturn:
        self.reader.fail(f"layout.json {where}: {what}")

    def obj(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"is {type(value).__name__}, not an object")
        return value

    def get(self, obj: dict[str, Any], key: str, where: str) -> Any:
        if key not in obj:
            self.fail(where, f"key {key!r} missing")
        return obj[key]

    def int_(self, obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
        value = obj.get(key, default) if default is not None else self.get(obj, key, where)
        if value is None and default is not None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"{key} is {value!r}, not an integer")
        return value

    def str_(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = obj.get(key, default) if default is not None else self.get(obj, key, where)
        if value is None and default is not None:
            value = default
        if not isinstance(value, str):
            self.fail(where, f"{key} is {value!r}, not a string")
        return value

    def bool_(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = obj.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(where, f"{key} is {value!r}, not true or false")
        return value

    def list_(self, obj: dict[str, Any], key: str, where: str, required: bool) -> list[Any]:
        value = self.get(obj, key, where) if required else obj.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.fail(where, f"{key} is {type(value).__name__}, not a list")
        return value

    def image(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        n = self.int_(obj, key, where, -1)
        if n < 0:
            return None
        if n not in self.images:
            self.fail(where, f"{key} {n} names an image the file lacks ({n}.png)")
        return n

    def color(self, value: object, where: str) -> str | None:
        if value is None:
            return None
        c = self.obj(value, where)
        parts = []
        for key in ("R", "G", "B", "A"):
            n = c.get(key, 255)
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 255:
                self.fail(where, f"colour {key} is {n!r}, not 0-255")
            parts.append(n)
        r, g, b, a = parts
        return f"rgba({r},{g},{b},{round(a / 255, 3):g})"

    def font(self, value: object, where: str) -> Font:
        if value is None:
            return Font()
        f = self.obj(value, f"{where} Font")
        size = f.get("PointSize", 12)
        if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size < 1000:
            self.fail(f"{where} Font", f"PointSize is {size!r}, not a size")
        style = f.get("Style") or {}
        style = self.obj(style, f"{where} Font Style")
        w = f"{where} Font Style"
        return Font(
            family=self.str_(f, "Name", f"{where} Font", "Arial"),
            size=float(size),
            bold=self.bool_(style, "Bold", w),
            italic=self.bool_(style, "Italic", w),
            underline=self.bool_(style, "Underline", w),
            strikeout=self.bool_(style, "Strikeout", w),
        )

    def align(self, obj: dict[str, Any], where: str) -> tuple[str, str]:
        n = self.int_(obj, "TextAlignment", where, 3)
        if not 0 <= n <= 8:
            return ("center", "middle")
        return (_H[n % 3], _V[n // 3])

    def layout(self, document: object) -> Layout:
        top = self.obj(document, "top level")
        screen = self.obj(self.get(top, "ScreenSize", "top level"), "ScreenSize")
        width = self.int_(screen, "width", "ScreenSize")
        height = self.int_(screen, "height", "ScreenSize")
        if not (0 < width <= 16384 and 0 < height <= 16384):
            self.fail("ScreenSize", f"{width}x{height} is not a screen size")
        pages = tuple(
            self.container(p, f"Pages[{i}]", "page")
            for i, p in enumerate(self.list_(top, "Pages", "top level", True))
        )
        popups = tuple(
            self.container(p, f"PopupPages[{i}]", "popup")
            for i, p in enumerate(self.list_(top, "PopupPages", "top level", False))
        )
        seen: dict[int, str] = {}
        for c in pages + popups:
            if c.id in seen:
                self.fail(f"{c.kind} {c.name!r}", f"ID {c.id} is also {seen[c.id]!r}'s")
            seen[c.id] = c.name
        defaultPage = top.get("DefaultPage")
        if isinstance(defaultPage, bool) or not isinstance(defaultPage, int):
            defaultPage = pages[0].id if pages else None
        offline = None
        if self.bool_(top, "EnableOfflinePage", "top level"):
            offline = self.int_(top, "OfflinePageID", "top level", 65535)
        return Layout(
            source=self.reader.source,
            name=self.str_(top, "Name", "top level", ""),
            width=width,
            height=height,
            images=MappingProxyType(self.images),
            fonts=MappingProxyType(self.fonts),
            fontFaces=self.fontFaces(top),
            pages=pages,
            popups=popups,
            defaultPage=defaultPage,
            offlinePage=offline,
        )

    def fontFaces(self, top: dict[str, Any]) -> tuple[FontFace, ...]:
        faces = []
        for i, value in enumerate(self.list_(top, "NonDefaultFontResources", "top level", False)):
            where = f"NonDefaultFontResources[{i}]"
            r = self.obj(value, where)
            file = r.get("EmbeddedFileName")
            if not isinstance(file, str) or file not in self.fonts:
                continue
            families = r.get("FamilyName")
            family = families[0] if isinstance(families, list) and families else None
            if not isinstance(family, str):
                family = self.str_(r, "WindowsFamilyName", where, file.rsplit(".", 1)[0])
            style = self.str_(r, "WindowsStyleName", where, "Regular")
            faces.append(FontFace(family, file, "Bold" in style, "Italic" in style))
        return tuple(faces)

    def container(self, value: object, where: str, kind: str) -> Container:
        c = self.obj(value, where)
        name = self.str_(c, "Name", where)
        where = f"{where} ({kind} {name!r})"
        ID = self.int_(c, "ID", where)
        controls = []
        for i, control in enumerate(self.list_(c, "Controls", where, False)):
            parsed = self.control(control, f"{where} Controls[{i}]", ID)
            if parsed is not None:
                controls.append(parsed)
        return Container(
            id=ID,
            name=name,
            kind=kind,
            width=self.int_(c, "Width", where),
            height=self.int_(c, "Height", where),
            image=self.image(c, "TLPImageID", where),
            fill=self.color(c.get("BackgroundFillColor"), f"{where} BackgroundFillColor"),
            group=self.int_(c, "GroupID", where, 0) if kind == "popup" else 0,
            modal=self.bool_(c, "Modal", where) if kind == "popup" else False,
            controls=tuple(controls),
        )

    def state(self, value: object, where: str, fallback: str) -> State:
        s = self.obj(value, where)
        color = self.color(s.get("TextColor"), f"{where} TextColor")
        return State(
            id=self.int_(s, "ID", where),
            name=self.str_(s, "Name", where, ""),
            image=self.image(s, "TLPImageID", where),
            text=self.str_(s, "Text", where, ""),
            align=self.align(s, where),
            color=color or fallback,
            font=self.font(s.get("Font"), where),
        )

    def control(self, value: object, where: str, container: int) -> Control | None:
        c = self.obj(value, where)
        kind = _KINDS.get(c.get("__type"))  # type: ignore[arg-type]
        if kind is None:
            return None  # a control type this reader does not know: not drawn
        name = self.str_(c, "Name", where, "")
        where = f"{where} ({kind} {name!r})"
        color = self.color(c.get("TextColor"), f"{where} TextColor")
        states = tuple(
            self.state(s, f"{where} States[{i}]", color or _WHITE)
            for i, s in enumerate(self.list_(c, "States", where, False))
        )
        defaultState = self.int_(c, "TLPDefaultStateID", where, 0)
        first = next((s for s in states if s.id == defaultState), states[0] if states else None)
        if color is None:
            color = first.color if first is not None else _WHITE
        press = c.get("TLPPressFeedbackStateID")
        pressState = (
            press if isinstance(press, int) and any(s.id == press for s in states) else None
        )
        extra: dict[str, Any] = {}
        if kind in ("Slider", "Level"):
            extra["orientation"] = "vertical" if c.get("Orientation") in (2, 3) else "horizontal"
            extra["minImage"] = self.image(c, "TLPMinValueImageID", where)
            extra["maxImage"] = self.image(c, "TLPMaxValueImageID", where)
            if kind == "Slider":
                extra["thumbImage"] = self.image(c, "SliderIndicatorImageID", where)
                extra["thumbWidth"] = self.int_(c, "SliderIndicatorWidth", where, 0)
                extra["thumbHeight"] = self.int_(c, "SliderIndicatorHeight", where, 0)
        elif kind == "DateTime":
            extra["pattern"] = self.str_(c, "Pattern", where, "h:mm tt")
        elif kind == "PopupRef":
            ref = self.obj(self.get(c, "PopupPageID", where), f"{where} PopupPageID")
            w = f"{where} PopupPageID"
            if self.bool_(ref, "IsPopupGroupIdValid", w):
                extra["refGroup"] = self.int_(ref, "GroupID", w)
            if self.bool_(ref, "IsPopupPageIdValid", w):
                extra["refPopup"] = self.int_(ref, "PopupID", w)
        return Control(
            kind=kind,
            userId=self.int_(c, "UserId", where, 0),
            index=self.int_(c, "ID", where),
            name=name,
            container=container,
            left=self.int_(c, "Left", where),
            top=self.int_(c, "Top", where),
            width=self.int_(c, "Width", where),
            height=self.int_(c, "Height", where),
            image=self.image(c, "TLPImageID", where),
            text=self.str_(c, "Text", where, ""),
            align=self.align(c, where),
            color=color,
            font=self.font(c.get("Font"), where),
            states=states,
            defaultState=defaultState,
            pressState=pressState,
            **extra,
        )
