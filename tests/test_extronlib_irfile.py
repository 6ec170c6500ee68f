"""
IRInterface reads its IR file when present: the function list is checked and listed, an unknown
function is a clear error; a file it cannot read (Extron's undocumented binary .eir) is reported
once and the port keeps playing unchecked (followups item 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import LoggedEvents
from twisted.logger import LogLevel

from twisted_ch.extronlib import _files
from twisted_ch.extronlib._irfile import IRFileError, findIRFile, loadIRFile
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import IRInterface

XML = """<?xml version="1.0" encoding="utf-8"?>
<irfile device="Projector">
  <function name="Power On" repeat="2">0000 006D 0022 0002 0157 00AC</function>
  <function name="Power Off"><code>0000 006D 0022 0002 0157 00AD</code></function>
  <Command><Name>Input HDMI</Name></Command>
</irfile>
"""

LINES = """# a projector's functions
Power On = 0000 006D 0022 0002 0157 00AC
Power Off = 0000 006D 0022 0002 0157 00AD   # the second
Mute =
"""


class Backend:
    def __init__(self) -> None:
        self.applied: list[tuple[str, object]] = []

    def apply(self, port: Any, setting: str, value: object) -> None:
        self.applied.append((setting, value))


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    _files.setDataDirectory(tmp_path)
    (tmp_path / "ir").mkdir()
    yield tmp_path
    _files.setDataDirectory(None)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    def keep(event: dict[str, Any]) -> bool:
        return event.get("log_level") == LogLevel.warn and "IR file" in str(event.get("log_format"))

    with LoggedEvents(keep, text=True) as seen:
        yield seen


def test_an_xml_ir_file_is_read_and_its_functions_checked(data: Path) -> None:
    (data / "ir" / "projector.eir").write_text(XML)
    backend = Backend()
    ir = IRInterface(ProcessorDevice("IRHost"), "IRS1", "projector.eir", backend=backend)
    assert ir.fileProblem is None
    assert ir.functions == ["Power On", "Power Off", "Input HDMI"]
    assert ir.irFile is not None
    assert ir.irFile.functions["Power Off"].code == "0000 006D 0022 0002 0157 00AD"
    ir.PlayContinuous("Power On")
    ir.PlayCount("Power On")  # None: the file's repeat count
    ir.PlayCount("Power Off", 3)
    assert backend.applied == [
        ("Play", ("Continuous", "Power On", None)),
        ("Play", ("Count", "Power On", 2)),
        ("Play", ("Count", "Power Off", 3)),
    ]
    for play in (ir.PlayContinuous, ir.PlayCount, lambda f: ir.PlayTime(f, 1)):
        with pytest.raises(
            ValueError, match=r"projector.eir has no IR function 'Power'.*'Power On'"
        ):
            play("Power")
    assert len(backend.applied) == 3  # nothing played for a name the file lacks


def test_a_text_ir_file_and_initialize_with_another(data: Path, warnings: list[str]) -> None:
    (data / "tv.txt").write_text(LINES)  # in the data directory itself
    (data / "ir" / "projector.eir").write_text(XML)
    ir = IRInterface(ProcessorDevice("IRHost"), "IRS1", "tv.txt")
    assert ir.functions == ["Power On", "Power Off", "Mute"]
    ir.PlayCount("Mute")
    ir.Initialize("projector.eir")
    assert ir.File == "projector.eir" and ir.functions is not None and "Mute" not in ir.functions
    with pytest.raises(ValueError, match="no IR function 'Mute'"):
        ir.PlayCount("Mute")
    assert warnings == []


def test_a_missing_or_unreadable_file_is_reported_and_plays_stay_unchecked(
    data: Path, warnings: list[str]
) -> None:
    backend = Backend()
    host = ProcessorDevice("IRHost")
    missing = IRInterface(host, "IRS1", "nowhere.eir", backend=backend)
    assert missing.functions is None and missing.fileProblem is not None
    assert (
        "nowhere.eir is not in" in missing.fileProblem and str(data / "ir") in missing.fileProblem
    )
    missing.PlayContinuous("Anything")  # as before: the backend decides
    # an Extron binary .eir: cannot be read here, said so
    (data / "ir" / "learned.eir").write_bytes(b"EIR\x01\x00\x00\xff\xfeP\x00o\x00w\x00e\x00r\x00")
    binary = IRInterface(host, "IRS2", "learned.eir", backend=backend)
    assert binary.functions is None
    assert binary.fileProblem is not None and "format is not documented" in binary.fileProblem
    binary.PlayCount("Power", 1)
    assert backend.applied == [
        ("Play", ("Continuous", "Anything", None)),
        ("Play", ("Count", "Power", 1)),
    ]
    assert len(warnings) == 2 and "IRS2" in warnings[1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("<irfile><function name='A'>1</irfile>", "not well-formed XML"),
        ("<irfile><function>1</function></irfile>", "a function without a name"),
        ("<irfile><function name='A'/><command name='A'/></irfile>", "'A' is named twice"),
        ("<irfile><function name='A' repeat='16'/></irfile>", "repeat must be 0-15"),
        ("<irfile><device name='projector'/></irfile>", "names no IR function"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><irfile/>', "DTDs and entities"),
        ("Power On 0000 006D\n", "line 1: expected 'name = code'"),
        ("A = 1\nA = 2\n", "line 2: function 'A' is named twice"),
        ("# only a comment\n", "names no IR function"),
    ],
)
def test_a_malformed_ir_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.eir"
    path.write_text(content)
    with pytest.raises(IRFileError, match=message):
        loadIRFile(path)


def test_file_names_stay_in_their_folders(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("A = 1\n")
    folder = tmp_path / "ir"
    folder.mkdir()
    with pytest.raises(IRFileError, match=r"may not contain '\.\.'"):
        findIRFile("../secret", [folder])
    assert findIRFile(str(tmp_path / "secret"), [folder]) == tmp_path / "secret"  # absolute: as is
    assert findIRFile("secret", [folder]) is None
