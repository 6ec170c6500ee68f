"""GUI Designer layouts: the reader (twisted_ch.panel), the fixture builder (twisted_ch.testing)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from twisted_ch.panel import Layout, LayoutError, readLayout
from twisted_ch.testing import (
    BIG_POPUP_ID,
    fixtureImages,
    fixtureLayout,
    gdlButton,
    gdlDateTime,
    gdlGroupRef,
    gdlImage,
    gdlLabel,
    gdlLayout,
    gdlModalPopup,
    gdlPage,
    gdlPopup,
    gdlPopupRef,
    gdlShape,
    gdlState,
    packGDL,
    solidPNG,
    twoColourPNG,
)


def write(
    tmp_path: Path, layout: Any, images: Any = None, name: str = "fixture.gdl", **kw: Any
) -> Path:
    if images is None:
        images = fixtureImages(layout)
    path = tmp_path / name
    path.write_bytes(packGDL(layout, images, **kw))
    return path


def fixture(tmp_path: Path) -> Layout:
    return readLayout(write(tmp_path, fixtureLayout()))


# the builder's files


def test_a_packed_gdl_has_kp_signatures_that_no_zip_reader_opens() -> None:
    data = packGDL(fixtureLayout(), fixtureImages(fixtureLayout()))
    assert data[:4] == b"KP\x03\x04"
    assert data[-22:-18] == b"KP\x05\x06"
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data))


def test_solid_pngs_hold_their_size_and_colour_type() -> None:
    png = solidPNG(200, 80, (1, 2, 3, 4))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[16:26] == (200).to_bytes(4, "big") + (80).to_bytes(4, "big") + b"\x08\x06"
    assert solidPNG(3, 2, (1, 2, 3), rgb=True)[24:26] == b"\x08\x02"
    assert twoColourPNG(4, 4, (255, 0, 0, 255), (0, 0, 255, 255)) != solidPNG(4, 4, (255, 0, 0))


# reading the spec's fixture


def test_the_spec_fixture_reads_back_with_its_screen_pages_and_popups(tmp_path: Path) -> None:
    layout = fixture(tmp_path)
    assert (layout.name, layout.width, layout.height) == ("Fixture", 1024, 600)
    assert [p.name for p in layout.pages] == ["Main"]
    assert [p.name for p in layout.popups] == ["Audio", "Offline Page"]
    assert layout.source.endswith("fixture.gdl")
    assert sorted(layout.images) == list(range(10))
    assert layout.images[0] == fixtureImages(fixtureLayout())[0]


def test_controls_are_found_by_the_userid_the_program_uses(tmp_path: Path) -> None:
    layout = fixture(tmp_path)
    (power,) = layout.controlsByUserId[1]
    assert (power.kind, power.name, power.index, power.container) == ("Button", "Power", 0, 0)
    assert (power.left, power.top, power.width, power.height) == (40, 40, 200, 80)
    assert [(s.id, s.name, s.image) for s in power.states] == [(0, "Off", 1), (1, "On", 2)]
    (volume,) = layout.controlsByUserId[30]
    assert (volume.kind, volume.container, volume.thumbImage) == ("Slider", 1, 9)
    assert 0 not in layout.controlsByUserId


def test_pages_and_popups_are_found_by_name_or_id(tmp_path: Path) -> None:
    layout = fixture(tmp_path)
    assert layout.page("Main") is layout.page(0) is layout.pages[0]
    assert layout.popup("Audio") is layout.popup(1) is layout.popup("1")
    assert layout.page("Audio") is None and layout.popup("Main") is None
    assert layout.popup("Nowhere") is None
    assert layout.popupGroups == {1: (1,)}


def test_a_group_reference_holds_the_64_bit_popup_id_and_names_its_group(tmp_path: Path) -> None:
    layout = fixture(tmp_path)
    ref = layout.pages[0].controls[4]
    assert (ref.kind, ref.refGroup, ref.refPopup) == ("PopupRef", 1, None)
    doc = layout.document()["pages"][0]["controls"][4]
    assert (doc["group"], doc["popup"]) == (1, None)
    assert (
        str(BIG_POPUP_ID)
        in zipfile.ZipFile(
            io.BytesIO(gdlInner(packGDL(fixtureLayout(), fixtureImages(fixtureLayout()))))
        )
        .read("layout.json")
        .decode()
    )


def gdlInner(data: bytes) -> bytes:
    """The inner .tgz4 of a packed file (the outer signatures patched back)."""
    patched = bytearray(data)
    for sig in (b"KP\x03\x04", b"KP\x01\x02", b"KP\x05\x06"):
        start = 0
        while (i := patched.find(sig, start)) >= 0:
            patched[i : i + 2] = b"PK"
            start = i + 4
    archive = zipfile.ZipFile(io.BytesIO(bytes(patched)))
    return archive.read("fixture.tgz4")


# the document


def test_the_document_follows_the_panel_contract(tmp_path: Path) -> None:
    doc = fixture(tmp_path).document()
    json.dumps(doc)
    assert (doc["name"], doc["width"], doc["height"]) == ("Fixture", 1024, 600)
    assert (doc["defaultPage"], doc["offlinePage"]) == ("Main", None)
    assert doc["fonts"] == []  # no font file embedded: none listed
    main = doc["pages"][0]
    assert {k: main[k] for k in ("id", "name", "kind", "width", "height", "image", "fill")} == {
        "id": 0, "name": "Main", "kind": "page", "width": 1024, "height": 600, "image": 0,
        "fill": None,
    }  # fmt: skip
    assert (main["group"], main["modal"]) == (0, False)
    power = main["controls"][0]
    assert power["kind"] == "Button" and power["userId"] == 1 and power["image"] == 1
    assert power["align"] == {"h": "center", "v": "middle"}
    assert power["color"] == "rgba(255,255,255,1)"
    assert power["font"] == {
        "family": "Arial", "size": 14.0, "bold": False, "italic": False, "underline": False,
        "strikeout": False,
    }  # fmt: skip
    assert [s["text"] for s in main["controls"][1]["states"]] == ["Mute", "Muted"]
    assert (power["defaultState"], power["pressState"]) == (0, 1)
    status = main["controls"][2]
    assert (status["kind"], status["text"], status["align"]) == (
        "Label", "Ready", {"h": "left", "v": "middle"},
    )  # fmt: skip
    meter = main["controls"][3]
    assert (meter["orientation"], meter["minImage"], meter["maxImage"]) == ("vertical", 4, 5)
    audio = doc["popups"][0]
    assert (audio["group"], audio["modal"], audio["image"]) == (1, False, 6)
    volume = audio["controls"][1]
    assert volume["orientation"] == "horizontal"
    assert volume["thumb"] == {"image": 9, "width": 40, "height": 40}
    assert "states" not in volume and "thumb" not in meter


def test_the_document_is_a_new_dict_each_call(tmp_path: Path) -> None:
    layout = fixture(tmp_path)
    doc = layout.document()
    doc["pages"].clear()
    assert layout.document()["pages"]


def every_kind_layout() -> dict[str, Any]:
    main = gdlPage(
        5,
        "Home",
        [
            gdlShape(0, "Frame", 0, 0, 100, 100),
            gdlImage(1, "Logo", 10, 10, 50, 50, image=3),
            gdlDateTime(2, "Clock", 500, 0, 200, 40, "HH:mm"),
            gdlButton(
                3,
                7,
                "Input",
                10,
                300,
                states=[gdlState(10, "A", 1, "A"), gdlState(3, "B", 2, "B", align=8)],
                defaultState=3,
                pressState=99,
            ),
            gdlGroupRef(4, 2, 300, 100, 400, 300),
        ],
        image=-1,
        fill=(10, 20, 30, 255),
    )
    return gdlLayout(
        [main],
        [
            gdlPopup(6, "Lights", [gdlLabel(0, 7, "Shared", 0, 0, 50, 20, "x")], group=2),
            gdlPopup(7, "Shades", group=2),
            gdlModalPopup(8, "Confirm", [gdlButton(0, 40, "Yes", 100, 100, "Yes")]),
        ],
        enableOfflinePage=True,
    )


def test_every_control_kind_and_modal_references_reach_the_document(tmp_path: Path) -> None:
    layout = readLayout(write(tmp_path, every_kind_layout()))
    doc = layout.document()
    home = doc["pages"][0]
    assert (home["image"], home["fill"]) == (None, "rgba(10,20,30,1)")
    kinds = [c["kind"] for c in home["controls"]]
    assert kinds == ["Shape", "Image", "DateTime", "Button", "PopupRef", "PopupRef", "PopupRef"]
    assert home["controls"][2]["pattern"] == "HH:mm"
    button = home["controls"][3]
    assert (button["defaultState"], button["pressState"], button["image"]) == (3, None, 2)
    assert button["states"][1]["align"] == {"h": "right", "v": "top"}
    assert [(c["group"], c["popup"]) for c in home["controls"][4:]] == [
        (2, None), (None, 8), (None, 65535),
    ]  # fmt: skip
    assert doc["offlinePage"] == "Offline Page"
    confirm = layout.popup("Confirm")
    assert confirm is not None and confirm.modal and confirm.fill == "rgba(0,0,0,0.647)"
    assert layout.popupGroups == {2: (6, 7)}
    assert [c.kind for c in layout.controlsByUserId[7]] == ["Button", "Label"]


def test_embedded_fonts_are_served_by_file_name(tmp_path: Path) -> None:
    layout = readLayout(write(tmp_path, fixtureLayout(), fonts={"arial.ttf": b"font bytes"}))
    assert layout.fonts == {"arial.ttf": b"font bytes"}
    assert layout.document()["fonts"] == [
        {"family": "Arial", "file": "arial.ttf", "bold": False, "italic": False}
    ]


# tolerance


def test_one_bom_is_dropped_and_unknown_keys_and_control_types_are_ignored(tmp_path: Path) -> None:
    layout = fixtureLayout()
    layout["SomethingNew"] = {"x": 1}
    layout["Pages"][0]["Controls"][0]["Sparkle"] = True
    layout["Pages"][0]["Controls"].append({"__type": "PBKnob", "Type": 99, "ID": 9})
    text = "\ufeff" + json.dumps(layout)
    read = readLayout(write(tmp_path, text.encode(), fixtureImages(fixtureLayout())))
    assert len(read.pages[0].controls) == 5


def test_the_container_is_patched_only_at_its_signatures(tmp_path: Path) -> None:
    # stored entries: the signatures' bytes appear literally inside the data
    font = b"KP\x03\x04 PK\x03\x04 KP\x01\x02 KP\x05\x06"
    path = write(tmp_path, fixtureLayout(), fonts={"odd.ttf": font}, stored=True)
    assert path.read_bytes().count(b"KP\x05\x06") == 2
    assert readLayout(path).fonts["odd.ttf"] == font


# refusals


def refused(path: Path, match: str, **kw: Any) -> None:
    with pytest.raises(LayoutError, match=match) as caught:
        readLayout(path, **kw)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    refused(tmp_path / "none.gdl", "cannot read the file")


def test_a_file_that_is_not_a_gdl_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.gdl"
    path.write_bytes(b"hello world, not a zip at all" * 3)
    refused(path, "not a GDL")
    path.write_bytes(b"KP")
    refused(path, "not a GDL")


def test_a_zip_without_the_layout_entry_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("ProjectGCP", b"")
    path = tmp_path / "x.gdl"
    path.write_bytes(out.getvalue())
    refused(path, "no layout entry beside ProjectGCP")


def inner_without_layout(tmp_path: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as inner:
        inner.writestr("0.png", solidPNG(1, 1, (0, 0, 0)))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("ProjectGCP", b"")
        archive.writestr("fixture.tgz4", out.getvalue())
    path = tmp_path / "x.gdl"
    path.write_bytes(outer.getvalue())
    return path


def test_an_inner_zip_without_layout_json_is_refused(tmp_path: Path) -> None:
    refused(inner_without_layout(tmp_path), r"no layout.json in fixture\.tgz4")


def test_malformed_json_is_refused_with_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"Pages": [', {})
    refused(path, r"layout.json is malformed JSON \(.* at line 1 column 12\)")


def test_a_missing_key_is_named_with_where_it_is_missing(tmp_path: Path) -> None:
    layout = fixtureLayout()
    del layout["Pages"][0]["Controls"][1]["Left"]
    path = write(tmp_path, layout)
    refused(path, r"Pages\[0\] \(page 'Main'\) Controls\[1\] \(Button 'Mute'\): key 'Left' missing")
    layout = fixtureLayout()
    del layout["ScreenSize"]
    refused(write(tmp_path, layout), "top level: key 'ScreenSize' missing")


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    layout = fixtureLayout()
    layout["Pages"][0]["Controls"][0]["Top"] = "40"
    refused(write(tmp_path, layout), r"\(Button 'Power'\): Top is '40', not an integer")
    refused(write(tmp_path, b"[1, 2]", {}), "top level: is list, not an object")


def test_an_image_referenced_but_absent_is_refused(tmp_path: Path) -> None:
    layout = fixtureLayout()
    images = fixtureImages(layout)
    del images[9]
    path = write(tmp_path, layout, images)
    refused(path, r"\(Slider 'Volume'\): SliderIndicatorImageID 9 names an image the file lacks")


def test_entry_names_with_paths_are_refused(tmp_path: Path) -> None:
    layout = fixtureLayout()
    path = write(tmp_path, layout, fonts={"../evil.ttf": b"x"})
    refused(path, r"fixture\.tgz4 holds an entry with a path, '\.\./evil\.ttf'")


def test_an_entry_unpacking_past_the_bound_is_refused(tmp_path: Path) -> None:
    layout = fixtureLayout()
    path = write(tmp_path, layout, fonts={"bomb.ttf": b"\0" * 2_000_000})
    assert path.stat().st_size < 100_000
    refused(
        path, r"'bomb\.ttf' unpacks to 2000000 bytes, more than the 1000000", maxEntry=1_000_000
    )


def test_all_entries_together_are_bounded(tmp_path: Path) -> None:
    layout = fixtureLayout()
    fonts = {f"f{i}.ttf": b"\0" * 400_000 for i in range(5)}
    path = write(tmp_path, layout, fonts=fonts)
    readLayout(path, maxEntry=500_000)
    refused(path, "more than the", maxEntry=500_000, maxTotal=1_500_000)


def test_a_file_over_the_bound_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, fixtureLayout())
    refused(path, "more than the 1000 read", maxFile=1000)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "a directory, not a regular file")


# the spec's shell recipe


@pytest.mark.skipif(
    not (shutil.which("zip") and shutil.which("zipinfo")), reason="needs Info-ZIP zip and zipinfo"
)
def test_the_spec_shell_recipe_output_reads(tmp_path: Path) -> None:
    layout = fixtureLayout()
    fx = tmp_path / "fx"
    fx.mkdir()
    (fx / "layout.json").write_text(json.dumps(layout, separators=(",", ":")))
    for n, png in fixtureImages(layout).items():
        (fx / f"{n}.png").write_bytes(png)
    script = r"""
set -e
(cd fx && zip -q -X -D -9 ../fixture.tgz4 layout.json $(ls *.png | sort -n))
: > ProjectGCP; zip -q -X -D -9 fixture.gdl ProjectGCP fixture.tgz4
F=fixture.gdl; E=$(( $(stat -c %s $F) - 22 )); CD=$(od -An -tu4 -j $((E+16)) -N4 $F | tr -d ' ')
for o in $(zipinfo -v $F | awk '/offset of local header/{print $NF}') \
  $(LC_ALL=C grep -obUaP 'PK\x01\x02' $F | cut -d: -f1 | awk -v c=$CD '$1>=c') $E
do printf KP | dd of=$F bs=1 seek=$o conv=notrunc status=none; done
"""
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    data = (tmp_path / "fixture.gdl").read_bytes()
    assert data[:2] == b"KP" and data[-22:-20] == b"KP"
    read = readLayout(tmp_path / "fixture.gdl")
    assert read.document() == fixture(tmp_path / "fx").document()
    assert [c.name for c in read.pages[0].controls] == ["Power", "Mute", "Status", "Meter",
                                                       "Popup Page Reference"]  # fmt: skip


def test_popup_refs_and_modal_popups_built_in_code(tmp_path: Path) -> None:
    popup = gdlPopup(3, "Plain", width=100, height=100)
    page = gdlPage(0, "P", [gdlPopupRef(0, 3, 10, 20, 100, 100)])
    layout = readLayout(write(tmp_path, gdlLayout([page], [popup])))
    ref = layout.pages[0].controls[0]
    assert (ref.refPopup, ref.refGroup, ref.left, ref.top) == (3, None, 10, 20)
    # the offline page is not referenced while disabled
    assert len(layout.pages[0].controls) == 1
    assert layout.document()["offlinePage"] is None


def test_the_panel_package_exports_the_reader() -> None:
    import twisted_ch.panel as panel
    import twisted_ch.testing as testing

    for name in panel.__all__:
        assert getattr(panel, name).__module__ == "twisted_ch.panel._gdl", name
    for name in ("packGDL", "gdlLayout", "gdlButton", "solidPNG", "fixtureLayout"):
        assert getattr(testing, name).__module__ == "twisted_ch.testing._gdl", name
    assert issubclass(LayoutError, ValueError)


def test_json_numbers_python_cannot_convert_are_malformed_json(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"Pages": [], "ScreenSize": ' + b"9" * 5000 + b"}", {})
    refused(path, "layout.json is malformed JSON")


def test_a_layout_compares_by_identity_and_hashes(tmp_path: Path) -> None:
    path = write(tmp_path, fixtureLayout())
    a, b = readLayout(path), readLayout(path)
    assert a != b and len({a, b}) == 2


def test_json_nested_too_deeply_is_malformed_json(tmp_path: Path) -> None:
    refused(write(tmp_path, b"[" * 200_000, {}), r"malformed JSON \(nested too deeply\)")
