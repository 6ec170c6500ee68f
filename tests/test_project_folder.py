"""A Global Scripter project folder read: its <name>.json, code folder, entry file and layouts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from twisted_ch.project import ProjectError, readProject


def projectData(**system: Any) -> dict[str, Any]:
    return {
        "system": {
            "name": "Boardroom",
            "code_folder_path": "src",
            "code_entry_file": "main.py",
            "layout_folder_path": "layout",
            "sound_folder_path": "sound",
            "rfile_folder_path": "rfile",
            "irfile_folder_path": "ir",
            "system_id": "Boardroom",
            "author": {"name": "A. Programmer", "email": "a@example.com"},
            "version": "0.0.1",
            "primary_device_alias": "Processor",
            **system,
        },
        "devices": [
            {
                "name": "IPCP Pro 350",
                "part_number": "60-1417-01",
                "alias": "Processor",
                "network": {"interfaces": [{"address": "192.168.1.2", "type": "LAN"}]},
            },
            {
                "name": "TLP Pro 725T",
                "part_number": "60-1562-02",
                "alias": "PodiumTLP",
                "ui": {
                    "layout_file": "PodiumTLP.gdl",
                    "press_feedback": "state",
                    "thumb_change_report_interval": 250,
                },
            },
        ],
        "schemaVersion": "1.0.0",
    }


def writeProject(folder: Path, data: Any = None, name: str = "Boardroom.json") -> Path:
    (folder / "src" / "modules").mkdir(parents=True, exist_ok=True)
    (folder / "layout").mkdir(exist_ok=True)
    (folder / "src" / "main.py").write_text("print('hello')\n")
    (folder / "layout" / "PodiumTLP.gdl").write_text("<gdl/>\n")
    path = folder / name
    path.write_text(json.dumps(projectData() if data is None else data))
    return path


def test_a_project_folder_is_read(tmp_path: Path) -> None:
    writeProject(tmp_path)
    (tmp_path / "settings.json").write_text('{"not": "a project"}')  # another JSON file
    project = readProject(tmp_path)
    assert project.file == tmp_path / "Boardroom.json"
    assert project.name == "Boardroom"
    assert project.codeFolder == tmp_path / "src"
    assert project.entryFile == tmp_path / "src" / "main.py"
    assert project.primaryAlias == "Processor"
    assert [d.alias for d in project.devices] == ["Processor", "PodiumTLP"]
    assert project.layouts() == {"PodiumTLP": str(tmp_path / "layout" / "PodiumTLP.gdl")}
    assert project.uiSettings() == {
        "PodiumTLP": {
            "layout_file": "PodiumTLP.gdl",
            "press_feedback": "state",
            "thumb_change_report_interval": 250,
        }
    }
    tlp = project.device("PodiumTLP")
    assert tlp is not None and tlp.partNumber == "60-1562-02"
    # the project file itself names the project too
    assert readProject(tmp_path / "Boardroom.json") == project


def test_windows_separators_and_a_missing_optional_key(tmp_path: Path) -> None:
    data = projectData(code_entry_file="app\\main.py")
    del data["system"]["layout_folder_path"], data["system"]["primary_device_alias"]
    writeProject(tmp_path, data)
    (tmp_path / "src" / "app").mkdir()
    (tmp_path / "src" / "app" / "main.py").write_text("")
    project = readProject(tmp_path)
    assert project.entryFile == tmp_path / "src" / "app" / "main.py"
    assert project.layoutFolder == tmp_path / "layout"
    assert project.primaryAlias is None


def test_of_several_json_files_the_project_one_is_chosen_or_the_choice_refused(
    tmp_path: Path,
) -> None:
    writeProject(tmp_path)
    (tmp_path / "broken.json").write_text("{")
    assert readProject(tmp_path).file.name == "Boardroom.json"
    (tmp_path / "Other.json").write_text(json.dumps(projectData()))
    with pytest.raises(ProjectError) as e:
        readProject(tmp_path)
    assert str(e.value) == (
        f"{tmp_path}: several project files (Boardroom.json, Other.json): "
        "give the one to run, --project FILE.json"
    )
    # the one named as the folder is the project's
    named = tmp_path / "proj"
    writeProject(named, name="proj.json")
    (named / "proj-copy.json").write_text(json.dumps(projectData()))
    assert readProject(named).file.name == "proj.json"


def _mutate(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = data
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value


BROKEN = [
    ("system", KeyError, "system: missing: this is not a Global Scripter project file"),
    ("system.code_entry_file", KeyError, "system.code_entry_file: missing"),
    ("system.code_folder_path", 3, "system.code_folder_path: expected a non-empty text, got a"),
    ("system.code_folder_path", "../elsewhere", "expected a path inside the project folder"),
    ("system.code_folder_path", "/etc", "expected a path inside the project folder"),
    ("system.code_folder_path", "code", "system.code_folder_path: no folder"),
    ("system.code_entry_file", "start.py", "system.code_entry_file: no file"),
    ("system.code_entry_file", "modules", "system.code_entry_file: '"),
    ("system.primary_device_alias", "CP", "'CP' is not the alias of a device"),
    ("devices", {}, "devices: expected a list, got an object"),
    ("devices.1.alias", KeyError, "devices[1].alias: missing"),
    ("devices.1.alias", "Processor", "devices[1].alias: 'Processor' is also devices[0]"),
    ("devices.1.ui", [], "devices[1].ui: expected an object, got a list"),
    ("devices.1.ui.layout_file", "Lobby.gdl", "devices[1].ui.layout_file: no file"),
    ("devices.1.ui.layout_file", 7, "devices[1].ui.layout_file: expected a non-empty text"),
    ("devices.1.ui.press_feedback", 1, "devices[1].ui.press_feedback: expected a non-empty"),
]


@pytest.mark.parametrize(("key", "value", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_project_file_is_one_error_naming_file_and_key(
    tmp_path: Path, key: str, value: Any, message: str
) -> None:
    data = projectData()
    _mutate(data, key, value)
    path = writeProject(tmp_path, data)
    with pytest.raises(ProjectError) as e:
        readProject(tmp_path)
    text = str(e.value)
    assert text.startswith(f"{path}: "), text
    assert message in text
    assert "\n" not in text


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such project folder"):
        readProject(tmp_path / "nowhere")
    with pytest.raises(ProjectError, match="no project file"):
        readProject(tmp_path)
    path = writeProject(tmp_path, data=[])
    with pytest.raises(ProjectError, match=r"the project file: expected an object, got a list"):
        readProject(tmp_path)
    path.write_text('{"system": {,}}')
    with pytest.raises(ProjectError) as e:
        readProject(tmp_path)
    assert str(e.value).startswith(f"{path}: not JSON: ") and "line 1 column" in str(e.value)
    path.write_bytes(b'{"system": "\xff"}')
    with pytest.raises(ProjectError, match="not UTF-8 text"):
        readProject(tmp_path)
    path.unlink()
    os.mkfifo(path)  # never blocks: a FIFO is refused before it is read
    with pytest.raises(ProjectError, match="a FIFO, not a regular file"):
        readProject(tmp_path)
