# -*- test-case-name: tests.test_project_folder -*-
"""
A Global Scripter project folder, read: its project file C{<name>.json} (the system: code folder,
entry file, layout folder, primary device; the devices: alias, part number, panel settings and
layout), checked so that a missing or malformed piece is one L{ProjectError} naming the file and
the key.  Keys twisted_ch does not use (author, version, network, sound and IR folders, ...) are
kept as read and otherwise ignored.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from twisted_ch._readfile import FileProblem, readTextFile

__all__ = ["PROJECT_FILE_LIMIT", "Project", "ProjectDevice", "ProjectError", "readProject"]

#: The largest project file read (a big system's file is a few hundred KiB).
PROJECT_FILE_LIMIT: Final = 8 * 1024 * 1024


class ProjectError(ValueError):
    """A project folder that cannot be run: the message names the file and the key."""

    def __init__(self, path: str | os.PathLike[str], key: str | None, problem: str) -> None:
        self.path = os.fspath(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ProjectDevice:
    """
    One entry of the project's C{devices}: its C{alias} (the program's C{DeviceAlias}), C{name}
    (the model) and C{partNumber}, its C{ui} settings as written and, for a panel, the path of
    its C{layout} (C{ui.layout_file} in the layout folder).
    """

    alias: str
    name: str | None = None
    partNumber: str | None = None
    ui: Mapping[str, Any] = field(default_factory=dict)
    layout: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Project:
    """
    A Global Scripter project: its C{folder}, project C{file}, C{codeFolder} and C{entryFile}
    (what runs, with the code folder on C{sys.path}), C{layoutFolder}, C{primaryAlias} (the
    processor's alias) and C{devices}; C{system} holds the system table as read.
    """

    folder: Path
    file: Path
    name: str
    codeFolder: Path
    entryFile: Path
    layoutFolder: Path
    primaryAlias: str | None
    devices: tuple[ProjectDevice, ...]
    system: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def layouts(self) -> dict[str, str]:
        """Per device alias, the path of its layout (the panels only)."""
        return {d.alias: str(d.layout) for d in self.devices if d.layout is not None}

    def uiSettings(self) -> dict[str, dict[str, Any]]:
        """Per device alias, its C{ui} settings (the devices that have them)."""
        return {d.alias: dict(d.ui) for d in self.devices if d.ui}

    def device(self, alias: str) -> ProjectDevice | None:
        """The device of that alias, if the project has it."""
        return next((d for d in self.devices if d.alias == alias), None)


def _isProjectData(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("system"), dict)


def _load(path: Path) -> Any:
    try:
        text = readTextFile(path, PROJECT_FILE_LIMIT)
    except FileProblem as e:
        raise ProjectError(path, None, str(e).removeprefix(f"{path}: ")) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(
            path, None, f"not JSON: {e.msg} (line {e.lineno} column {e.colno})"
        ) from None


def _projectFile(folder: Path) -> tuple[Path, Any]:
    """The project file of C{folder} and its data: the one C{*.json} holding a C{system} table."""
    candidates = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    if not candidates:
        raise ProjectError(
            folder, None, "no project file (a Global Scripter <name>.json) in the folder"
        )
    if len(candidates) == 1:
        return candidates[0], _load(candidates[0])
    found: list[tuple[Path, Any]] = []
    for path in candidates:
        try:
            data = _load(path)
        except ProjectError:
            continue
        if _isProjectData(data):
            found.append((path, data))
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in (candidates if not found else [f for f, _ in found]))
    if not found:
        raise ProjectError(
            folder, None, f"none of {names} is a Global Scripter project file (with a system table)"
        )
    named = [(p, d) for p, d in found if p.stem == folder.name]
    if len(named) == 1:
        return named[0]
    raise ProjectError(
        folder, None, f"several project files ({names}): give the one to run, --project FILE.json"
    )


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str | None, problem: str) -> ProjectError:
        return ProjectError(self.path, key, problem)

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected an object, got {_kind(value)}")
        return value

    def text(self, table: Mapping[str, Any], name: str, key: str, required: bool) -> str | None:
        if name not in table or table[name] is None:
            if required:
                raise self.fail(f"{key}.{name}", "missing")
            return None
        value = table[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key}.{name}", f"expected a non-empty text, got {_kind(value)}")
        return value

    def inside(self, base: Path, value: str, key: str) -> Path:
        """C{value} (a relative path, / or \\ separated) under C{base}."""
        relative = PurePosixPath(value.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or ":" in relative.parts[0]:
            raise self.fail(key, f"expected a path inside the project folder, got {value!r}")
        return base.joinpath(*relative.parts)


def _kind(value: object) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else "a long text"
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _regular(path: Path) -> str | None:
    """Why C{path} is not a regular file, or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"no file {str(path)!r} ({e.strerror or e})"
    if not stat.S_ISREG(mode):
        return f"{str(path)!r} is not a regular file"
    return None


def readProject(path: str | os.PathLike[str]) -> Project:
    """
    Read the project at C{path}: a project folder (its C{<name>.json}) or the project file.

    @raise ProjectError: the folder or file is missing, the project file is not a Global
        Scripter project (malformed JSON, no C{system}, a missing entry file or layout).
    """
    given = Path(path)
    if given.is_dir():
        folder = given
        file, data = _projectFile(folder)
    elif given.suffix.lower() == ".json" and given.exists():
        folder, file = given.parent, given
        data = _load(file)
    else:
        raise ProjectError(given, None, "no such project folder (nor a project .json file)")
    c = _Checker(file)
    top = c.table(data, "the project file")
    system = c.table(top.get("system"), "system") if "system" in top else None
    if system is None:
        raise c.fail("system", "missing: this is not a Global Scripter project file")
    codeName = c.text(system, "code_folder_path", "system", True)
    entryName = c.text(system, "code_entry_file", "system", True)
    layoutName = c.text(system, "layout_folder_path", "system", False) or "layout"
    primary = c.text(system, "primary_device_alias", "system", False)
    name = c.text(system, "name", "system", False) or file.stem
    assert codeName is not None and entryName is not None
    codeFolder = c.inside(folder, codeName, "system.code_folder_path")
    if not codeFolder.is_dir():
        raise c.fail("system.code_folder_path", f"no folder {str(codeFolder)!r}")
    entry = c.inside(codeFolder, entryName, "system.code_entry_file")
    problem = _regular(entry)
    if problem is not None:
        raise c.fail("system.code_entry_file", problem)
    layoutFolder = c.inside(folder, layoutName, "system.layout_folder_path")
    devicesValue = top.get("devices", [])
    if not isinstance(devicesValue, list):
        raise c.fail("devices", f"expected a list, got {_kind(devicesValue)}")
    devices: list[ProjectDevice] = []
    aliases: dict[str, int] = {}
    for i, value in enumerate(devicesValue):
        key = f"devices[{i}]"
        table = c.table(value, key)
        alias = c.text(table, "alias", key, True)
        assert alias is not None
        if alias in aliases:
            raise c.fail(f"{key}.alias", f"{alias!r} is also devices[{aliases[alias]}]")
        aliases[alias] = i
        ui = c.table(table["ui"], f"{key}.ui") if table.get("ui") is not None else {}
        layout = None
        layoutFile = c.text(ui, "layout_file", f"{key}.ui", False)
        if layoutFile is not None:
            layout = c.inside(layoutFolder, layoutFile, f"{key}.ui.layout_file")
            problem = _regular(layout)
            if problem is not None:
                raise c.fail(f"{key}.ui.layout_file", problem)
        for setting in ("press_feedback",):
            c.text(ui, setting, f"{key}.ui", False)
        devices.append(
            ProjectDevice(
                alias=alias,
                name=c.text(table, "name", key, False),
                partNumber=c.text(table, "part_number", key, False),
                ui=dict(ui),
                layout=layout,
                raw=dict(table),
            )
        )
    if primary is not None and devices and primary not in aliases:
        raise c.fail("system.primary_device_alias", f"{primary!r} is not the alias of a device")
    return Project(
        folder=folder,
        file=file,
        name=name,
        codeFolder=codeFolder,
        entryFile=entry,
        layoutFolder=layoutFolder,
        primaryAlias=primary,
        devices=tuple(devices),
        system=dict(system),
    )
