"""
Non-interactive host key checking against an OpenSSH known_hosts file.

A host is identified by the name it is connected to, written as OpenSSH writes it: C{host} for
port 22, C{[host]:port} otherwise (host names lower-cased).  The address a name resolves to is
neither checked nor recorded (as with OpenSSH's default C{CheckHostIP no}): a device known under
its name that moved to a new IP address is accepted without a prompt and without writing the file.

Policies:
  - C{"reject"}: only keys already in the file are accepted; the file is never written.
  - C{"accept-new"}: trust on first use; a host with no entry at all gets the offered key added
    (hashed, as C{ssh-keygen -H} would) and the file saved.
A host that has entries, none of which matches the offered key (a different key, or only keys of
other types), is refused with L{HostKeyChanged} under either policy.

The file is the only source of trust.  It is read and parsed here, not by Conch's
L{KnownHostsFile} (whose C{iterentries} takes an unreadable file for an empty one, which would
turn a failed read into trust on first use of an attacker's key): a missing file has no entries,
but any other error reading it refuses the connection with L{KnownHostsFileError}.  A new key is
appended with a fresh write, under an advisory lock, after re-reading the file (so that a key
recorded meanwhile by another process is compared first), and is trusted only once it is on
disk: if it cannot be saved the connection is refused and nothing is remembered in memory.

Every read and write is bounded and never blocks the reactor: only a regular file of at most
L{MAX_KNOWN_HOSTS_BYTES} is read (a FIFO, a device such as C{/dev/zero} or a directory is refused
without being opened for reading), files are opened non-blocking, and the lock for appending is
taken without waiting: a file another process holds locked refuses this attempt with a clear
L{KnownHostsFileError} (the next attempt tries again).

Parsed files are cached by path and (device, inode, size, modification and change times), so
repeated connection attempts do not re-parse an unchanged file; only the host-name part of each
line is parsed up front, a host's keys are decoded when it is first looked up.  A key on a
C{@revoked} line is refused for every host (L{HostKeyRevoked}), as OpenSSH says it "must not ever
be accepted", and is never recorded.  Lines that cannot be parsed (comments, C{@cert-authority}
lines, malformed keys) are ignored.
"""

from __future__ import annotations

import binascii
import errno
import hmac
import os
import stat
from collections.abc import Iterable
from typing import Final, Literal, get_args

from twisted.conch.client.knownhosts import HashedEntry, KnownHostsFile
from twisted.conch.ssh.keys import Key
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from twisted_ch._readfile import fileKind

from ._ssh_errors import (
    HostKeyChanged,
    HostKeyError,
    HostKeyRevoked,
    UnknownHostKey,
    fingerprint,
)

try:
    import fcntl
except ImportError:  # pragma: no cover (not POSIX)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "HOST_KEY_POLICIES",
    "HostKeyPolicy",
    "HostKeyVerifier",
    "KnownHostsFileError",
    "MAX_KNOWN_HOSTS_BYTES",
    "knownHostsName",
]

HostKeyPolicy = Literal["reject", "accept-new"]
HOST_KEY_POLICIES: tuple[str, ...] = get_args(HostKeyPolicy)

_RSA_ALGORITHMS = [b"rsa-sha2-512", b"rsa-sha2-256", b"ssh-rsa"]
_HASH_MAGIC: Final = b"|1|"
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)

#: The largest known_hosts file read (about 30,000 hashed entries).
MAX_KNOWN_HOSTS_BYTES = 8 * 1024 * 1024

log = Logger()


def knownHostsName(host: str, port: int) -> str:
    """The name under which OpenSSH records C{host}:C{port} in known_hosts."""
    name = host.lower()
    return name if port == 22 else f"[{name}]:{port}"


def _describe(error: OSError) -> str:
    if error.strerror:
        code = errno.errorcode.get(error.errno or 0)
        return f"{error.strerror} ({code})" if code else error.strerror
    return str(error) or type(error).__name__


class KnownHostsFileError(HostKeyError):
    """
    The known-hosts file could not be read, or a new key could not be saved to it: the host key
    is refused (fail closed).

    @ivar path: the known-hosts file.
    @ivar error: the L{OSError} raised.
    @ivar saving: C{True} if saving a new key failed, C{False} if reading the file failed.
    """

    def __init__(self, message: str, path: str, error: OSError, saving: bool) -> None:
        super().__init__(message)
        self.path = path
        self.error = error
        self.saving = saving

    @classmethod
    def forRead(cls, path: str, error: OSError, host: str, port: int) -> KnownHostsFileError:
        return cls(
            f"cannot check the host key for {host} port {port}: reading the known-hosts file "
            f"{path} failed: {_describe(error)}; the connection is refused until it can be read",
            path,
            error,
            saving=False,
        )

    @classmethod
    def forSave(
        cls, path: str, error: OSError, host: str, port: int, key: Key
    ) -> KnownHostsFileError:
        return cls(
            f"new host key {fingerprint(key)} for {host} port {port} not trusted: it could not "
            f"be saved to the known-hosts file {path}: {_describe(error)}; the connection is "
            "refused",
            path,
            error,
            saving=True,
        )


StatKey = tuple[int, int, int, int, int]


def _statKey(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Parsed:
    """
    One version of a known_hosts file: its host fields, parsed; the keys of a host are decoded
    (and remembered) when it is first looked up.
    """

    def __init__(self, data: bytes, statKey: StatKey | None) -> None:
        self.statKey = statKey
        self._plain: dict[bytes, list[tuple[int, bytes]]] = {}
        self._hashed: list[tuple[bytes, bytes, int, bytes]] = []
        self._found: dict[str, list[tuple[Key, int]]] = {}
        #: key blob -> line number, for every @revoked line
        self.revoked: dict[bytes, int] = {}
        for number, raw in enumerate(data.split(b"\n"), 1):
            fields = raw.split(None, 3)
            if len(fields) == 4 and fields[0] == b"@revoked":
                try:
                    blob = binascii.a2b_base64(fields[3].split(None, 1)[0])
                except (binascii.Error, IndexError):
                    continue
                self.revoked.setdefault(blob, number)
                continue
            if len(fields) < 3 or fields[0].startswith((b"#", b"@")):
                continue
            hosts, _keyType, keyData = fields[:3]
            if hosts.startswith(_HASH_MAGIC):
                saltAndHash = hosts[len(_HASH_MAGIC) :].split(b"|")
                if len(saltAndHash) != 2:
                    continue
                try:
                    salt, digest = (binascii.a2b_base64(part) for part in saltAndHash)
                except binascii.Error:
                    continue
                self._hashed.append((salt, digest, number, keyData))
            else:
                for name in hosts.split(b","):
                    self._plain.setdefault(name, []).append((number, keyData))

    def recorded(self, name: str) -> list[tuple[Key, int]]:
        """The keys recorded for C{name}, with their (1-based) line numbers, in file order."""
        found = self._found.get(name)
        if found is None:
            encoded = name.encode("utf-8")
            lines = list(self._plain.get(encoded, ()))
            lines.extend(
                (number, keyData)
                for salt, digest, number, keyData in self._hashed
                if hmac.compare_digest(hmac.digest(salt, encoded, "sha1"), digest)
            )
            found = []
            for number, keyData in sorted(lines, key=lambda line: line[0]):
                try:
                    found.append((Key.fromString(binascii.a2b_base64(keyData)), number))
                except Exception:  # malformed: ignored, as OpenSSH and Conch do
                    continue
            self._found[name] = found
        return found


_EMPTY: Final = _Parsed(b"", None)

# path -> the last version parsed (invalidated by any change of its stat key)
_cache: dict[str, _Parsed] = {}


def _parse(data: bytes, statKey: StatKey) -> _Parsed:
    return _Parsed(data, statKey)


def _checkRegular(st: os.stat_result) -> None:
    """
    @raise OSError: C{st} is not a regular file of at most L{MAX_KNOWN_HOSTS_BYTES}.
    """
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"it is {fileKind(st.st_mode)}, not a regular file")
    if st.st_size > MAX_KNOWN_HOSTS_BYTES:
        raise OSError(
            errno.EFBIG,
            f"it holds {st.st_size} bytes, more than the {MAX_KNOWN_HOSTS_BYTES} read",
        )


def _openForReading(path: str) -> int:
    return os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)


def _openForAppending(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _CLOEXEC | _NONBLOCK, 0o666)


def _readAll(fd: int, size: int) -> bytes:
    """At most L{MAX_KNOWN_HOSTS_BYTES} of the file (it may have grown since C{size})."""
    chunks: list[bytes] = []
    offset = 0
    while offset <= MAX_KNOWN_HOSTS_BYTES:
        chunk = os.pread(fd, max(size - offset, 0) + 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
    raise OSError(errno.EFBIG, f"it grew past the {MAX_KNOWN_HOSTS_BYTES} bytes read")


def _parsedFrom(path: str, fd: int) -> _Parsed:
    """The file open as C{fd}, from the cache if it has not changed."""
    st = os.fstat(fd)
    _checkRegular(st)
    key = _statKey(st)
    cached = _cache.get(path)
    if cached is not None and cached.statKey == key:
        return cached
    parsed = _parse(_readAll(fd, st.st_size), key)
    _cache[path] = parsed
    return parsed


def _load(path: str) -> _Parsed:
    """
    The current entries of the file at C{path}: none if it does not exist.

    @raise OSError: for any other failure to read it.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _cache.pop(path, None)
        return _EMPTY
    _checkRegular(st)  # before opening: opening a FIFO for reading would wait for a writer
    key = _statKey(st)
    cached = _cache.get(path)
    if cached is not None and cached.statKey == key:
        return cached
    try:
        fd = _openForReading(path)
    except FileNotFoundError:
        _cache.pop(path, None)
        return _EMPTY
    try:
        return _parsedFrom(path, fd)
    finally:
        os.close(fd)


def _lock(fd: int) -> None:
    """
    Serialize appenders, without waiting: a file locked by another process raises L{OSError}
    (this attempt is refused; the next one tries again).  Best effort otherwise: a file system
    without locks still gets the re-read.
    """
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OSError(
            errno.EWOULDBLOCK, "another process holds it locked; the next attempt tries again"
        ) from None
    except OSError as e:
        log.warn("cannot lock the known-hosts file: {error}", error=_describe(e))


def _writeAll(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pathOf(knownHosts: KnownHostsFile | FilePath[str] | str | os.PathLike[str]) -> str:
    if isinstance(knownHosts, KnownHostsFile):
        return knownHosts.savePath.path
    if isinstance(knownHosts, FilePath):
        return knownHosts.path
    return os.fspath(knownHosts)


class HostKeyVerifier:
    """
    Decides, without prompting, whether a server's host key is acceptable.

    Only the file is consulted: given a L{KnownHostsFile}, its C{savePath} is read, and keys
    added to that object but not saved are not trusted.
    """

    log = Logger()

    def __init__(
        self,
        knownHosts: KnownHostsFile | FilePath[str] | str | os.PathLike[str],
        policy: HostKeyPolicy,
    ) -> None:
        if policy not in HOST_KEY_POLICIES:
            raise ValueError(f"hostKeyPolicy must be one of {HOST_KEY_POLICIES}, not {policy!r}")
        self._path = _pathOf(knownHosts)
        self.policy: HostKeyPolicy = policy

    @property
    def path(self) -> str:
        """The known_hosts file's path."""
        return self._path

    def _parsed(self, host: str, port: int) -> _Parsed:
        try:
            return _load(self._path)
        except OSError as e:
            raise KnownHostsFileError.forRead(self._path, e, host, port) from e

    def _recorded(self, host: str, port: int) -> list[tuple[Key, int]]:
        return self._parsed(host, port).recorded(knownHostsName(host, port))

    def preferredAlgorithms(self, host: str, port: int, supported: Iterable[bytes]) -> list[bytes]:
        """
        C{supported} host key algorithms, those of the keys recorded for the host first.

        @raise KnownHostsFileError: the file cannot be read.
        """
        supported = list(supported)
        known: list[bytes] = []
        for key, _line in self._recorded(host, port):
            sshType = key.sshType()
            for algorithm in _RSA_ALGORITHMS if sshType == b"ssh-rsa" else [sshType]:
                if algorithm in supported and algorithm not in known:
                    known.append(algorithm)
        return known + [a for a in supported if a not in known]

    def verify(self, host: str, port: int, key: Key) -> None:
        """
        Accept C{key} for C{host}:C{port} or raise a L{HostKeyError}.

        @raise HostKeyRevoked: the key is on an C{@revoked} line.
        @raise UnknownHostKey: no entry for the host and the policy is C{"reject"}.
        @raise HostKeyChanged: the host has entries but none for this key.
        @raise KnownHostsFileError: the file cannot be read, or (C{"accept-new"}) the new key
            cannot be saved.
        """
        parsed = self._parsed(host, port)
        line = parsed.revoked.get(key.public().blob())
        if line is not None:
            raise HostKeyRevoked(host, port, key, line, self._path)
        if self._check(host, port, key, parsed.recorded(knownHostsName(host, port))):
            return
        if self.policy == "reject":
            raise UnknownHostKey(host, port, key, self._path)
        self._record(host, port, key)

    def _check(self, host: str, port: int, key: Key, recorded: list[tuple[Key, int]]) -> bool:
        """C{True} if C{key} is recorded, C{False} if the host has no entry; else raise."""
        blob = key.public().blob()
        if any(known.blob() == blob for known, _line in recorded):
            return True
        if recorded:
            raise HostKeyChanged(host, port, key, recorded, self._path)
        return False

    def _record(self, host: str, port: int, key: Key) -> None:
        """Append C{key} for the host unless the file, re-read under the lock, has entries."""
        path = self._path
        name = knownHostsName(host, port)
        salt = os.urandom(20)
        entry = HashedEntry(
            salt, hmac.digest(salt, name.encode("utf-8"), "sha1"), key.sshType(), key, None
        )
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            try:
                _checkRegular(os.stat(path))  # (opening a FIFO to write would wait for a reader)
            except FileNotFoundError:
                pass
            fd = _openForAppending(path)
        except OSError as e:
            raise KnownHostsFileError.forSave(path, e, host, port, key) from e
        saved = False
        try:
            try:
                _checkRegular(os.fstat(fd))
                _lock(fd)
            except OSError as e:
                raise KnownHostsFileError.forSave(path, e, host, port, key) from e
            try:
                parsed = _parsedFrom(path, fd)
                size = os.fstat(fd).st_size
            except OSError as e:
                raise KnownHostsFileError.forRead(path, e, host, port) from e
            if self._check(host, port, key, parsed.recorded(name)):
                return  # recorded meanwhile by someone else
            try:
                separator = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
                _writeAll(fd, separator + entry.toString() + b"\n")
                os.fsync(fd)
                saved = True
            except OSError as e:
                try:  # do not leave a partial line behind
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise KnownHostsFileError.forSave(path, e, host, port, key) from e
        finally:
            try:
                os.close(fd)
            except OSError as e:
                if saved:  # (nothing else is being raised)
                    raise KnownHostsFileError.forSave(path, e, host, port, key) from e
        self.log.info(
            "trusted new host key {fingerprint} for {name} (saved to {path})",
            fingerprint=fingerprint(key),
            name=name,
            path=path,
        )
