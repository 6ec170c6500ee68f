"""
ControlScript's C{File} and C{RFile}: files in the program's user area, kept in a directory of
the host (the program data directory).

The data directory is, in order: the one given to L{setDataDirectory}, C{$TWISTED_CH_DATA}, the
one the program runner sets (C{data/} next to the program file), else C{./extronlib-data}.
C{File} uses its C{user/} subdirectory and C{RFile} (restricted files) its C{restricted/}
subdirectory, created private to the user running the program.

When a Global Scripter project runs, the files of its RFile folder (C{system.rfile_folder_path})
are put in the RFile area the first time the program uses it, as a deploy puts them on the
processor: a file of the same name is replaced, the others stay.

Paths follow the processor's rules: C{/} separates, a leading C{/} is the area's root, a relative
path starts at the current directory (L{File.ChangeDir}), and no path may leave the area (not with
C{..} and not through a symbolic link): that raises L{ValueError}.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any, ClassVar

__all__ = ["File", "RFile", "dataDirectory", "setDataDirectory"]

#: the (site, area) pairs whose project files are in their area already (the site kept: its id
#: is never another's)
_deployed: dict[tuple[int, Path], object] = {}
_deployLock = threading.Lock()

_explicit: Path | None = None
_programDefault: Path | None = None


def setDataDirectory(path: str | os.PathLike[str] | None, *, program: bool = False) -> None:
    """
    Use C{path} as the program data directory (None: back to the default).  The program runner
    passes C{program=True}: its choice does not override an explicit one or the environment.
    """
    global _explicit, _programDefault
    value = Path(path).resolve() if path is not None else None
    if program:
        _programDefault = value
    else:
        _explicit = value
    File._cwd = RFile._cwd = PurePosixPath("/")


def dataDirectory() -> Path:
    """The program data directory now in use."""
    if _explicit is not None:
        return _explicit
    env = os.environ.get("TWISTED_CH_DATA")
    if env:
        return Path(env).resolve()
    if _programDefault is not None:
        return _programDefault
    return Path("extronlib-data").resolve()


class File:
    """
    A file in the program's user area; the arguments mean what they mean to C{open()}.
    The directory functions (L{ChangeDir}, L{ListDir}, ...) are class methods.
    """

    _area: ClassVar[str] = "user"
    _private: ClassVar[bool] = False
    _cwd: ClassVar[PurePosixPath] = PurePosixPath("/")

    def __init__(
        self,
        Filename: str,
        mode: str = "r",
        encoding: str | None = None,
        newline: str | None = None,
    ) -> None:
        if not isinstance(Filename, str) or not Filename:
            raise TypeError(f"Filename must be a non-empty str, not {Filename!r}")
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, not {type(mode).__name__}")
        path = self._resolve(Filename)
        self.Filename = Filename
        self.mode = mode
        self.encoding = encoding
        self.newline = newline
        creating = any(c in mode for c in "wax+")
        if creating:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[Any] = open(  # noqa: SIM115 - closed by close() / the context manager
            path, mode, encoding=encoding, newline=newline, opener=self._opener
        )

    @classmethod
    def _opener(cls, path: str, flags: int) -> int:
        return os.open(path, flags, 0o600 if cls._private else 0o666)

    # paths

    @classmethod
    def _root(cls) -> Path:
        root = dataDirectory() / cls._area
        if not root.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            if cls._private:
                root.chmod(0o700)
        cls._deploy(root)
        return root

    @classmethod
    def _projectFolder(cls) -> str | None:
        """The project's folder whose files belong in this area (None: none)."""
        return None

    @classmethod
    def _deploy(cls, root: Path) -> None:
        """Put the project's files in the area (once per program site and area)."""
        folder = cls._projectFolder()
        if folder is None:
            return
        from twisted_ch import _site

        site = _site.current()
        key = (id(site), root.resolve())
        with _deployLock:
            if key in _deployed:
                return
            _deployed[key] = site
            source = Path(folder)
            if not source.is_dir():
                return
            copied = 0
            for path in sorted(source.rglob("*")):
                if not path.is_file() or path.is_symlink():
                    continue
                target = root.joinpath(*path.relative_to(source).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                if cls._private:
                    target.chmod(0o600)
                copied += 1
        from twisted.logger import Logger

        Logger(namespace="twisted_ch.program").info(
            "{area}: {n} files of the project's {folder} put in {root}",
            area=cls.__name__,
            n=copied,
            folder=str(source),
            root=str(root),
        )

    @classmethod
    def _relative(cls, path: str) -> PurePosixPath:
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        given = PurePosixPath(path)
        joined = given if given.is_absolute() else cls._cwd / given
        parts: list[str] = []
        for part in joined.parts[1:]:
            if part == "..":
                if not parts:
                    raise ValueError(f"path {path!r} leaves the {cls.__name__} area")
                parts.pop()
            elif part != ".":
                parts.append(part)
        return PurePosixPath("/", *parts)

    @classmethod
    def _resolve(cls, path: str) -> Path:
        root = cls._root()
        full = root.joinpath(*cls._relative(path).parts[1:])
        real = Path(os.path.realpath(full))
        if real != root.resolve() and root.resolve() not in real.parents:
            raise ValueError(f"path {path!r} leaves the {cls.__name__} area")
        return full

    # directory functions (class methods, as in ControlScript)

    @classmethod
    def ChangeDir(cls, path: str) -> None:
        """Make C{path} the current directory."""
        target = cls._relative(path)
        if not cls._resolve(path).is_dir():
            raise FileNotFoundError(f"no directory {str(target)!r}")
        cls._cwd = target

    @classmethod
    def GetCurrentDir(cls) -> str:
        """The current directory ('/' is the area's root)."""
        return str(cls._cwd)

    @classmethod
    def DeleteDir(cls, path: str) -> None:
        """Remove an empty directory."""
        cls._resolve(path).rmdir()

    @classmethod
    def DeleteDirRecursive(cls, path: str) -> None:
        """Remove a directory and everything in it."""
        target = cls._resolve(path)
        if target == cls._root():
            raise ValueError(f"the {cls.__name__} area's root cannot be removed")
        shutil.rmtree(target)

    @classmethod
    def DeleteFile(cls, filename: str) -> None:
        """Delete a file."""
        cls._resolve(filename).unlink()

    @classmethod
    def Exists(cls, path: str) -> bool:
        """Whether C{path} exists."""
        try:
            return cls._resolve(path).exists()
        except ValueError:
            return False

    @classmethod
    def ListDir(cls, path: str | None = None) -> str:
        """The names in a directory (the current one by default), one a line; directories end
        in C{/}."""
        target = cls._resolve(path if path is not None else str(cls._cwd))
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
        return "".join(n + "\n" for n in names)

    @classmethod
    def MakeDir(cls, path: str) -> None:
        """Make a directory (and its missing parents)."""
        cls._resolve(path).mkdir(parents=True, exist_ok=True)

    @classmethod
    def RenameFile(cls, oldname: str, newname: str) -> None:
        """Rename (move) a file within the area."""
        cls._resolve(oldname).rename(cls._resolve(newname))

    # the open file

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return bool(self._file.closed)

    def read(self, size: int = -1) -> Any:
        """Read up to C{size} characters or bytes (all by default)."""
        return self._file.read(size)

    def readline(self) -> Any:
        """Read one line."""
        return self._file.readline()

    def readlines(self) -> list[Any]:
        """Read every line."""
        return self._file.readlines()

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (as C{io} does)."""
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        """The position."""
        return self._file.tell()

    def write(self, data: str | bytes) -> int:
        """Write text or bytes (as the mode says)."""
        return self._file.write(data)

    def writelines(self, seq: Iterable[Any]) -> None:
        """Write every item of C{seq}."""
        self._file.writelines(seq)

    def flush(self) -> None:
        """Flush what was written to the host's file."""
        self._file.flush()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._file)

    def __enter__(self) -> File:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.Filename!r} mode={self.mode!r}>"


class RFile(File):
    """
    A restricted file: like L{File}, in an area of its own whose directory and files only the
    user running the program can read (a processor keeps them out of reach of SFTP clients).
    """

    _area: ClassVar[str] = "restricted"
    _private: ClassVar[bool] = True
    _cwd: ClassVar[PurePosixPath] = PurePosixPath("/")

    @classmethod
    def _projectFolder(cls) -> str | None:
        from twisted_ch import _site

        site = _site.current()
        return site.rfileFolder if site is not None else None
