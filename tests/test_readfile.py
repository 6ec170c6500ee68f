"""Files named by a user are read only as bounded regular files, without blocking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twisted_ch._readfile import FileProblem, readRegularFile, readTextFile


def test_a_regular_file_within_the_bound_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"x" * 100)
    assert readRegularFile(path, 100) == b"x" * 100


def test_a_file_over_the_bound_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileProblem, match=r"big\.json: it holds 101 bytes, more than the 100"):
        readRegularFile(path, 100)


def test_a_character_device_is_refused_before_reading() -> None:
    with pytest.raises(FileProblem, match="a character device, not a regular file"):
        readRegularFile("/dev/zero", 1 << 20)


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "config.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(FileProblem, match="character device"):
        readRegularFile(link, 1 << 20)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "layout.gdl"
    os.mkfifo(fifo)
    with pytest.raises(FileProblem, match="a FIFO, not a regular file"):
        readRegularFile(fifo, 1 << 20)


def test_a_directory_and_a_missing_file_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="a directory"):
        readRegularFile(tmp_path, 100)
    with pytest.raises(FileProblem, match=r"nope\.json: cannot read the file"):
        readRegularFile(tmp_path / "nope.json", 100)


def test_text_drops_one_bom_and_refuses_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b"\xef\xbb\xbf{}")
    assert readTextFile(path, 100) == "{}"
    path.write_bytes(b"\xff{}")
    with pytest.raises(FileProblem, match="not UTF-8 text"):
        readTextFile(path, 100)
