# -*- test-case-name: tests.test_gdl -*-
"""
GUI Designer layout fixtures for tests: C{layout.json} pieces as the format describes them
(C{shared/spec/gdl-format.md} section 7), solid-colour PNGs, and L{packGDL}, which writes a real
C{.gdl} (the C{KP} container around the inner C{.tgz4} ZIP).

    layout = gdlLayout([gdlPage(0, "Main", [gdlButton(0, 1, "Power", 40, 40)])])
    path.write_bytes(packGDL(layout, fixtureImages(layout)))
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "BIG_POPUP_ID",
    "fixtureImages",
    "fixtureLayout",
    "gdlButton",
    "gdlColor",
    "gdlDateTime",
    "gdlFont",
    "gdlGroupRef",
    "gdlImage",
    "gdlLabel",
    "gdlLayout",
    "gdlLevel",
    "gdlModalPopup",
    "gdlPage",
    "gdlPopup",
    "gdlPopupRef",
    "gdlShape",
    "gdlSlider",
    "gdlState",
    "packGDL",
    "solidPNG",
    "twoColourPNG",
]

#: the PopupID of a group reference (2^64-1)
BIG_POPUP_ID = 18446744073709551615

RGBA = tuple[int, int, int, int]


def gdlFont(
    name: str = "Arial",
    size: float = 14,
    *,
    bold: bool = False,
    italic: bool = False,
    underline: bool = False,
    strikeout: bool = False,
) -> dict[str, Any]:
    """A C{PBFont}."""
    return {
        "__type": "PBFont",
        "Type": 22,
        "FontResourceReference": {
            "__type": "PBResourceReferenceFont",
            "Type": 21,
            "ResourceName": f"{name} Regular Bold Italic",
            "ResourceType": 7,
        },
        "Name": name,
        "PointSize": size,
        "Style": {
            "__type": "PBFontStyle",
            "Bold": bold,
            "Italic": italic,
            "Strikeout": strikeout,
            "Underline": underline,
        },
        "WindowsFamilyName": name,
        "WindowsStyleName": "Regular",
    }


def gdlColor(r: int, g: int, b: int, a: int = 255, *, typed: bool = True) -> dict[str, Any]:
    """A colour (C{typed}: a C{PBColor}, as a TextColor is)."""
    color: dict[str, Any] = {"A": a, "B": b, "G": g, "R": r}
    return {"__type": "PBColor", **color} if typed else color


_WHITE = gdlColor(255, 255, 255)


def _common(obj: dict[str, Any]) -> dict[str, Any]:
    """The keys every page, popup and control gets unless set (section 7)."""
    defaults: dict[str, Any] = {
        "Comments": "",
        "HwID": 0,
        "IsHardwareBased": False,
        "WasGroupIdEntered": False,
        "TransparentPixels": 0,
        "FlattenText": False,
        "DynamicText": True,
        "BackgroundFillColor": gdlColor(255, 255, 255, 0, typed=False),
        "Font": gdlFont(),
        "TextColor": _WHITE,
        "Text": "",
        "TextAlignment": 3,
        "IsConfigurable": obj.get("UserId", 0) != 0,
    }
    return {**defaults, **obj}


def gdlState(
    ID: int,
    name: str,
    image: int,
    text: str = "",
    *,
    align: int = 3,
    color: dict[str, Any] | None = None,
    font: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A button's C{PBState}: the number C{SetState} takes, its PNG and caption."""
    return {
        "__type": "PBState",
        "Type": 19,
        "EBUSControlState": 0,
        "Font": font or gdlFont(),
        "ID": ID,
        "Name": name,
        "TLPImageID": image,
        "Text": text,
        "TextAlignment": align,
        "TextColor": color or _WHITE,
    }


def _control(
    typeName: str,
    typeNumber: int,
    index: int,
    userId: int,
    name: str,
    box: tuple[int, int, int, int],
    image: int,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    left, top, width, height = box
    return _common(
        {
            "__type": typeName,
            "Type": typeNumber,
            "ID": index,
            "UserId": userId,
            "Name": name,
            "Left": left,
            "Top": top,
            "Width": width,
            "Height": height,
            "TLPImageID": image,
            **extra,
        }
    )


def gdlButton(
    index: int,
    userId: int,
    name: str,
    left: int,
    top: int,
    text: str = "",
    text2: str | None = None,
    *,
    width: int = 200,
    height: int = 80,
    states: Sequence[dict[str, Any]] | None = None,
    defaultState: int = 0,
    pressState: int = 1,
    **keys: Any,
) -> dict[str, Any]:
    """
    A C{PBButton} (section 7's C{$B}): by default two states, 0 "Off" (PNG 1, C{text}) and
    1 "On" (PNG 2, C{text2}, else C{text}); the button's own image and text copy its default state.
    """
    if states is None:
        states = [
            gdlState(0, "Off", 1, text),
            gdlState(1, "On", 2, text if text2 is None else text2),
        ]
    default = next((s for s in states if s["ID"] == defaultState), states[0])
    extra = {
        "Text": default["Text"],
        "States": list(states),
        "TLPDefaultStateID": defaultState,
        "TLPPressFeedbackStateID": pressState,
        **keys,
    }
    box = (left, top, width, height)
    return _control("PBButton", 7, index, userId, name, box, default["TLPImageID"], extra)


def gdlLabel(
    index: int,
    userId: int,
    name: str,
    left: int,
    top: int,
    width: int,
    height: int,
    text: str = "",
    *,
    image: int = -1,
    align: int = 3,
    **keys: Any,
) -> dict[str, Any]:
    """A C{PBLabel} showing C{text}."""
    extra = {"Text": text, "TextAlignment": align, **keys}
    return _control("PBLabel", 11, index, userId, name, (left, top, width, height), image, extra)


def gdlLevel(
    index: int,
    userId: int,
    name: str,
    left: int,
    top: int,
    width: int,
    height: int,
    *,
    minImage: int,
    maxImage: int,
    orientation: int = 2,
    **keys: Any,
) -> dict[str, Any]:
    """A C{PBLevel} (orientation 2 vertical, 0 horizontal) with its always-0 keys."""
    extra: dict[str, Any] = {
        "Orientation": orientation,
        "TLPMinValueImageID": minImage,
        "TLPMaxValueImageID": maxImage,
        "SliderIndicatorImageID": 0,
        "DisplayType": 0,
        "VolumeLEDCount": 0,
        "VolumeLEDStateImageWidth": 0,
        "EBUSControlID": 0,
        "Pressable": False,
        **{f"SliderIndicator{m}Rect{p}": 0 for m in ("Max", "Min") for p in ("Left", "Top")},
        **{f"SliderIndicator{m}Rect{p}": 0 for m in ("Max", "Min") for p in ("Width", "Height")},
        **keys,
    }
    box = (left, top, width, height)
    return _control("PBLevel", 9, index, userId, name, box, maxImage, extra)


def gdlSlider(
    index: int,
    userId: int,
    name: str,
    left: int,
    top: int,
    width: int,
    height: int,
    *,
    minImage: int,
    maxImage: int,
    thumbImage: int,
    thumbWidth: int = 40,
    thumbHeight: int = 40,
    orientation: int = 0,
    **keys: Any,
) -> dict[str, Any]:
    """A C{PBSlider} (orientation 0 horizontal, 2 vertical)."""
    extra = {
        "DynamicText": False,
        "Orientation": orientation,
        "Pressable": False,
        "TLPMinValueImageID": minImage,
        "TLPMaxValueImageID": maxImage,
        "SliderIndicatorImageID": thumbImage,
        "SliderIndicatorWidth": thumbWidth,
        "SliderIndicatorHeight": thumbHeight,
        "SliderTrackWidth": 12,
        **keys,
    }
    box = (left, top, width, height)
    return _control("PBSlider", 27, index, userId, name, box, minImage, extra)


def gdlDateTime(
    index: int,
    name: str,
    left: int,
    top: int,
    width: int,
    height: int,
    pattern: str = "h:mm tt",
    *,
    image: int = -1,
    **keys: Any,
) -> dict[str, Any]:
    """A C{PBDateTime} showing the time per the .NET C{pattern}."""
    extra = {
        "Pattern": pattern,
        "Text": "12:00 PM",
        "DaylightSavingsTime": False,
        "TimeZoneGMTMinuteOffset": 0,
        **keys,
    }
    return _control("PBDateTime", 8, index, 0, name, (left, top, width, height), image, extra)


def gdlShape(
    index: int, name: str, left: int, top: int, width: int, height: int, image: int = -1
) -> dict[str, Any]:
    """A C{PBShape}."""
    return _control("PBShape", 13, index, 0, name, (left, top, width, height), image, {})


def gdlImage(
    index: int, name: str, left: int, top: int, width: int, height: int, image: int
) -> dict[str, Any]:
    """A C{PBImage} showing PNG C{image}."""
    return _control("PBImage", 10, index, 0, name, (left, top, width, height), image, {})


def _reference(
    index: int, box: tuple[int, int, int, int], group: int, popup: int
) -> dict[str, Any]:
    popupPageId = {
        "__type": "PBPopupPageID",
        "GroupID": group,
        "IsPopupGroupIdValid": group != 0,
        "IsPopupPageIdValid": group == 0,
        "PopupID": popup,
    }
    extra = {"PopupPageID": popupPageId}
    return _control("PBPopupPageReference", 6, index, 0, "Popup Page Reference", box, -1, extra)


def gdlGroupRef(
    index: int, group: int, left: int, top: int, width: int, height: int
) -> dict[str, Any]:
    """The rectangle where a popup of group C{group} appears on a page."""
    return _reference(index, (left, top, width, height), group, BIG_POPUP_ID)


def gdlPopupRef(
    index: int, popup: int, left: int = 0, top: int = 0, width: int = 1024, height: int = 600
) -> dict[str, Any]:
    """An ID reference placing popup C{popup} (modal ones: full screen at 0,0)."""
    return _reference(index, (left, top, width, height), 0, popup)


def gdlPage(
    ID: int,
    name: str,
    controls: Iterable[dict[str, Any]] = (),
    *,
    image: int = 0,
    width: int = 1024,
    height: int = 600,
    fill: RGBA = (20, 30, 40, 255),
) -> dict[str, Any]:
    """A C{PBPage} (C{image} -1: drawn with C{fill})."""
    return _common(
        {
            "__type": "PBPage",
            "Type": 4,
            "ID": ID,
            "UserId": ID,
            "Name": name,
            "Left": 0,
            "Top": 0,
            "Width": width,
            "Height": height,
            "TLPImageID": image,
            "DynamicText": False,
            "IsConfigurable": True,
            "BackgroundFillColor": gdlColor(*fill, typed=False),
            "Controls": list(controls),
        }
    )


def gdlPopup(
    ID: int,
    name: str,
    controls: Iterable[dict[str, Any]] = (),
    *,
    group: int = 0,
    width: int = 500,
    height: int = 400,
    image: int = -1,
    modal: bool = False,
    fill: RGBA = (60, 60, 60, 255),
    configurable: bool = True,
) -> dict[str, Any]:
    """A C{PBPopupPage}, in popup group C{group} (0: none)."""
    popup = _common(
        {
            "__type": "PBPopupPage",
            "Type": 5,
            "ID": ID,
            "UserId": ID,
            "Name": name,
            "Left": 0,
            "Top": 0,
            "Width": width,
            "Height": height,
            "TLPImageID": image,
            "DynamicText": False,
            "IsConfigurable": configurable,
            "BackgroundFillColor": gdlColor(*fill, typed=False),
            "WasGroupIdEntered": group != 0,
            "GroupID": group,
            "IsGroupValid": group != 0,
            "Modal": modal,
            "HasReferences": True,
        }
    )
    controls = list(controls)
    if controls:
        popup["Controls"] = controls
    return popup


def gdlModalPopup(
    ID: int,
    name: str,
    controls: Iterable[dict[str, Any]] = (),
    *,
    image: int = -1,
    width: int = 1024,
    height: int = 600,
    fill: RGBA = (0, 0, 0, 165),
) -> dict[str, Any]:
    """A full-screen modal popup (a scrim; placed by an ID reference at 0,0)."""
    return gdlPopup(
        ID, name, controls, width=width, height=height, image=image, modal=True, fill=fill
    )


def gdlLayout(
    pages: Iterable[dict[str, Any]],
    popups: Iterable[dict[str, Any]] = (),
    *,
    name: str = "Fixture",
    width: int = 1024,
    height: int = 600,
    defaultPage: int | None = None,
    enableOfflinePage: bool = False,
    referenceModals: bool = True,
    **keys: Any,
) -> dict[str, Any]:
    """
    A whole C{layout.json} (section 7), as real files hold it: the "Offline Page" popup 65535 is
    added, and (C{referenceModals}) every page ends with a full-screen ID reference per modal
    popup it does not reference yet (the offline page only with C{enableOfflinePage}).
    """
    pages = [dict(p, Controls=list(p.get("Controls", []))) for p in pages]
    popups = list(popups)
    if not any(p["ID"] == 65535 for p in popups):
        offline = gdlModalPopup(65535, "Offline Page", width=width, height=height)
        offline["IsConfigurable"] = False
        offline["HasReferences"] = enableOfflinePage
        popups.append(offline)
    if referenceModals:
        modals = [
            p["ID"] for p in popups if p.get("Modal") and (p["ID"] != 65535 or enableOfflinePage)
        ]
        for page in pages:
            controls = page["Controls"]
            referenced = {c["PopupPageID"]["PopupID"] for c in controls if "PopupPageID" in c}
            for modal in modals:
                if modal not in referenced:
                    index = max((c["ID"] for c in controls), default=-1) + 1
                    controls.append(gdlPopupRef(index, modal, 0, 0, width, height))
    if defaultPage is None:
        defaultPage = pages[0]["ID"] if pages else 0
    platform = {
        "__type": "PBTLP725TPlatform",
        "Type": 27,
        "PartNumber": "60-1562-02",
        "HorizontalResolution": width,
        "VerticalResolution": height,
        "SupportedResolutions": [{"ResolutionX": width, "ResolutionY": height}],
    }
    arial = {
        "__type": "PBFontResource",
        "Type": 7,
        "Author": 0,
        "Name": "Arial Regular Bold Italic",
        "Size": 778580,
        "EmbeddedFileName": "arial.ttf",
        "FamilyName": ["Arial"],
        "StyleName": ["Regular Bold Italic"],
        "WindowsFamilyName": "Arial",
        "WindowsStyleName": "Regular",
    }
    return {
        "Type": 26,
        "ApplicationName": "GUI Designer",
        "ApplicationBuildVersionInfo": "1.21.0.3",
        "SchemaVersion": "2.0.0",
        "ID": "00000000-0000-4000-8000-000000000001",
        "Name": name,
        "Author": "test",
        "FileName": f"C:\\{name.lower()}.gdl",
        "CreationDate": "/Date(1700000000000+0000)/",
        "RevisionDate": "/Date(1700000000000+0000)/",
        "VersionInfo": "0.0.1",
        "Language": "en-US",
        "DefaultPage": defaultPage,
        "EnableOfflinePage": enableOfflinePage,
        "OfflinePageID": 65535,
        "EnableScaleToFit": False,
        "IsExtronModeLayout": False,
        "IsVersionFormatted": True,
        "NumberOfInputs": 0,
        "SupportsSliderControls": True,
        "SupportsVideoControls": False,
        "TLPImageFileExtension": ".png",
        "PartNumber": "60-1562-02",
        "ScreenSize": {"height": height, "width": width},
        "Platform": platform,
        "NonDefaultFontResources": [arial],
        "Pages": pages,
        "PopupPages": popups,
        **keys,
    }


def fixtureLayout() -> dict[str, Any]:
    """Section 7's minimal fixture: page "Main" (Power, Mute, a label, a level, a group
    reference) and popup "Audio" of group 1 (a button and a slider); images: L{fixtureImages}."""
    main = gdlPage(
        0,
        "Main",
        [
            gdlButton(0, 1, "Power", 40, 40, "Power", "Power"),
            gdlButton(1, 2, "Mute", 40, 140, "Mute", "Muted"),
            gdlLabel(2, 10, "Status", 40, 260, 300, 50, "Ready", image=3, align=4),
            gdlLevel(3, 20, "Meter", 300, 40, 40, 300, minImage=4, maxImage=5),
            gdlGroupRef(4, 1, 480, 100, 500, 400),
        ],
    )
    audio = gdlPopup(
        1,
        "Audio",
        [
            gdlButton(0, 3, "Source", 20, 20, "Source", "Source"),
            gdlSlider(1, 30, "Volume", 20, 200, 400, 40, minImage=7, maxImage=8, thumbImage=9),
        ],
        group=1,
        image=6,
    )
    return gdlLayout([main], [audio])


def fixtureImages(layout: Mapping[str, Any]) -> dict[int, bytes]:
    """A solid PNG of the right size for every image ID C{layout} references (page backgrounds
    RGB, the others RGBA), each a different colour."""
    sizes: dict[int, tuple[int, int, bool]] = {}

    def note(obj: Mapping[str, Any], key: str, size: tuple[int, int], rgb: bool = False) -> None:
        n = obj.get(key, -1)
        if isinstance(n, int) and n >= 0:
            sizes.setdefault(n, (*size, rgb))

    for kind in ("Pages", "PopupPages"):
        for c in layout.get(kind, []):
            note(c, "TLPImageID", (c["Width"], c["Height"]), kind == "Pages")
            for control in c.get("Controls", []):
                box = (control["Width"], control["Height"])
                for key in ("TLPImageID", "TLPMinValueImageID", "TLPMaxValueImageID"):
                    note(control, key, box)
                if control.get("__type") == "PBSlider":
                    thumb = (control["SliderIndicatorWidth"], control["SliderIndicatorHeight"])
                    note(control, "SliderIndicatorImageID", thumb)
                for state in control.get("States", []):
                    note(state, "TLPImageID", box)
    return {n: solidPNG(w, h, _palette(n), rgb=rgb) for n, (w, h, rgb) in sorted(sizes.items())}


def _palette(n: int) -> RGBA:
    return ((n * 67 + 40) % 256, (n * 131 + 90) % 256, (n * 29 + 160) % 256, 255)


def _png(width: int, height: int, rows: Iterable[bytes], rgb: bool) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2 if rgb else 6, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _pixel(color: Sequence[int], rgb: bool) -> bytes:
    return bytes(color[:3]) if rgb else bytes((*color[:3], color[3] if len(color) > 3 else 255))


def solidPNG(width: int, height: int, color: Sequence[int], *, rgb: bool = False) -> bytes:
    """A C{width}x{height} PNG of one colour (RGBA, or RGB with C{rgb})."""
    if width <= 0 or height <= 0:
        raise ValueError(f"a PNG needs a positive size, not {width}x{height}")
    row = _pixel(color, rgb) * width
    return _png(width, height, (row for _ in range(height)), rgb)


def twoColourPNG(
    width: int, height: int, top: Sequence[int], bottom: Sequence[int], *, rgb: bool = False
) -> bytes:
    """A PNG whose upper half is C{top} and lower half C{bottom}."""
    if width <= 0 or height <= 0:
        raise ValueError(f"a PNG needs a positive size, not {width}x{height}")
    upper, lower = _pixel(top, rgb) * width, _pixel(bottom, rgb) * width
    return _png(width, height, (upper if y < height // 2 else lower for y in range(height)), rgb)


def _zip(entries: Iterable[tuple[str, bytes]], stored: bool = False) -> bytes:
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method, compresslevel=None if stored else 9) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.create_system = 0
            archive.writestr(info, data)
    return out.getvalue()


def _kp(data: bytes) -> bytes:
    """Write C{KP} over the signatures of each local header, central record and the end record."""
    out = bytearray(data)
    end = len(out) - 22
    count, _size, offset = struct.unpack_from("<HII", out, end + 10)
    for _ in range(count):
        n, e, c = struct.unpack_from("<HHH", out, offset + 28)
        (local,) = struct.unpack_from("<I", out, offset + 42)
        out[local : local + 2] = b"KP"
        out[offset : offset + 2] = b"KP"
        offset += 46 + n + e + c
    out[end : end + 2] = b"KP"
    return bytes(out)


def packGDL(
    layout: Mapping[str, Any] | str | bytes,
    images: Mapping[int, bytes],
    fonts: Mapping[str, bytes] | Iterable[tuple[str, bytes]] = (),
    *,
    stem: str = "fixture",
    stored: bool = False,
) -> bytes:
    """
    A real C{.gdl}: C{layout.json} (a dict, or its text), the PNGs by number and the font files
    zipped as C{<stem>.tgz4}, beside an empty C{ProjectGCP}, with C{KP} signatures (section 7).
    C{stored}: both ZIPs store their entries uncompressed (to test a reader's container code).
    """
    if isinstance(layout, Mapping):
        layoutBytes = json.dumps(layout, ensure_ascii=False, separators=(",", ":")).encode()
    elif isinstance(layout, str):
        layoutBytes = layout.encode()
    else:
        layoutBytes = layout
    fontItems = list(fonts.items() if isinstance(fonts, Mapping) else fonts)
    inner = _zip(
        [("layout.json", layoutBytes)]
        + [(f"{n}.png", images[n]) for n in sorted(images, key=lambda n: str(n))]
        + fontItems,
        stored,
    )
    return _kp(_zip([("ProjectGCP", b""), (f"{stem}.tgz4", inner)], stored))
