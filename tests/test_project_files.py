"""
A project's RFile and IR folders (C{system.rfile_folder_path}, C{irfile_folder_path}) as the
processor uses them: its RFiles are in the RFile area once the program runs (a deploy puts them
there), its IR files are found by an IRInterface.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_project_folder import projectData, writeProject

from twisted_ch import _site
from twisted_ch.extronlib import _files
from twisted_ch.extronlib.device import ProcessorDevice
from twisted_ch.extronlib.interface import IRInterface
from twisted_ch.project import readProject
from twisted_ch.service._config import ProgramConfig
from twisted_ch.service._services import siteOf


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "data"
    _files.setDataDirectory(where)
    yield where
    _files.setDataDirectory(None)


def test_the_projects_rfiles_and_ir_files_are_where_the_program_looks(
    tmp_path: Path, data: Path
) -> None:
    folder = tmp_path / "Boardroom"
    folder.mkdir()
    writeProject(folder, projectData(rfile_folder_path="secrets"))
    (folder / "secrets" / "sub").mkdir(parents=True)
    (folder / "secrets" / "settings.json").write_text('{"room": "Boardroom"}')
    (folder / "secrets" / "sub" / "key.txt").write_text("k")
    (folder / "ir").mkdir()
    (folder / "ir" / "projector.eir").write_text("Power On = 0000 006D\n")
    project = readProject(folder)
    assert (project.rfileFolder, project.irFolder) == (folder / "secrets", folder / "ir")
    site = siteOf(ProgramConfig(project=str(folder)))
    assert site.rfileFolder == str((folder / "secrets").resolve())
    # its files live in the project folder's data/, never in its code (GS uploads that)
    assert site.dataFolder == str((folder / "data").resolve()) and site.codeFolder is not None
    assert not site.dataFolder.startswith(site.codeFolder + "/")
    # the program wrote a file of its own before, and an old copy of the project's
    (data / "restricted").mkdir(parents=True)
    (data / "restricted" / "settings.json").write_text("old")
    (data / "restricted" / "mine.txt").write_text("mine")
    _site.install(site)
    try:
        with _files.RFile("settings.json") as f:
            assert json.loads(f.read()) == {"room": "Boardroom"}  # the project's, as deployed
        assert _files.RFile.Exists("sub/key.txt") and _files.RFile.Exists("mine.txt")
        assert (data / "restricted" / "settings.json").stat().st_mode & 0o077 == 0
        # deployed once: what the program writes then stays
        with _files.RFile("settings.json", "w") as f:
            f.write("changed")
        assert _files.RFile("settings.json").read() == "changed"
        ir = IRInterface(ProcessorDevice("IRHost"), "IRS1", "projector.eir")
        assert ir.fileProblem is None and ir.functions == ["Power On"]
        assert not _files.File.Exists("settings.json")  # File's area is not the RFile area
    finally:
        _site.uninstall(site)


def test_without_a_project_nothing_is_deployed(tmp_path: Path, data: Path) -> None:
    _site.install(_site.ProgramSite())
    try:
        assert _files.RFile.ListDir() == ""
        ir = IRInterface(ProcessorDevice("IRHost2"), "IRS1", "projector.eir")
        assert ir.fileProblem is not None and str(data / "ir") in ir.fileProblem
    finally:
        _site.uninstall()


def test_a_program_runs_with_the_data_directory_it_is_given(tmp_path: Path) -> None:
    from twisted.internet.testing import MemoryReactorClock

    from twisted_ch.program import Program

    (tmp_path / "src").mkdir()
    entry = tmp_path / "src" / "main.py"
    entry.write_text("x = 1\n")
    program = Program(MemoryReactorClock())  # never running: the file is not executed
    try:
        program.runFile(entry, tmp_path / "data")
        assert _files.dataDirectory() == (tmp_path / "data").resolve()
        program.runFile(entry)
        assert _files.dataDirectory() == (tmp_path / "src" / "data").resolve()
    finally:
        _files.setDataDirectory(None, program=True)
