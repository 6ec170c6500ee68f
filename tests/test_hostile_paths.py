"""
Paths that would hang or eat memory (issue 19 item 8): SSH key files, certificates and IR files
named by a user are read as regular files of bounded size, without blocking, or refused with one
clear error naming the file: a FIFO (nothing ever writes to it), /dev/zero, a symlink to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_extronlib_net import selfSigned

from twisted_ch.endpoints.ssh import MAX_KEY_FILE, parseSSHShellEndpoint
from twisted_ch.extronlib import _files
from twisted_ch.extronlib._irfile import MAX_IR_FILE, IRFileError, findIRFile, loadIRFile
from twisted_ch.extronlib._net import MAX_CERTIFICATE_FILE, GetSSLContext


def hostile(folder: Path, name: str, kind: str, limit: int) -> Path:
    """A file of that C{kind} at C{folder/name}: fifo, zero (a symlink to /dev/zero), large."""
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer comes: none will
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(limit + 1)  # sparse: larger than the bound, nothing written
    return path


KINDS = [
    ("fifo", "it is a FIFO, not a regular file"),
    ("zero", "it is a character device, not a regular file"),
    ("large", r"it holds \d+ bytes, more than the \d+ read"),
]


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_an_ssh_key_file_that_is_not_a_bounded_regular_file_is_one_error(
    tmp_path: Path, kind: str, message: str
) -> None:
    from twisted.internet import reactor

    path = hostile(tmp_path, "id_ed25519", kind, MAX_KEY_FILE)
    with pytest.raises(ValueError, match=f"cannot read key file {path}: {message}"):
        parseSSHShellEndpoint(reactor, "127.0.0.1", username="admin", keys=str(path))


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_a_certificate_that_is_not_a_bounded_regular_file_is_one_error(
    tmp_path: Path, kind: str, message: str
) -> None:
    folder = tmp_path / "data" / "certificates"
    folder.mkdir(parents=True)
    hostile(folder, "evil.pem", kind, MAX_CERTIFICATE_FILE)
    _files.setDataDirectory(tmp_path / "data")
    try:
        with pytest.raises(ValueError, match=f"evil.pem: {message}"):
            GetSSLContext("evil")
    finally:
        _files.setDataDirectory(None)


def test_a_certificate_read_from_its_content_still_verifies(tmp_path: Path) -> None:
    cert, key = selfSigned()
    folder = tmp_path / "data" / "certificates"
    folder.mkdir(parents=True)
    (folder / "ca.pem").write_bytes(cert)
    (folder / "mine.pem").write_bytes(cert + key)
    _files.setDataDirectory(tmp_path / "data")
    try:
        system = GetSSLContext().cert_store_stats()["x509_ca"]
        assert GetSSLContext("ca").cert_store_stats()["x509_ca"] == system + 1
        GetSSLContext("mine")  # a certificate with its key: loaded as the client's
    finally:
        _files.setDataDirectory(None)


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_an_ir_file_that_is_not_a_bounded_regular_file_is_one_error(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = hostile(tmp_path, "projector.eir", kind, MAX_IR_FILE)
    found = findIRFile("projector.eir", [tmp_path])
    assert found == path  # found, then refused by name (not "no such IR file")
    with pytest.raises(IRFileError, match=f"projector.eir: {message}"):
        loadIRFile(found)
