"""Files: hashing them, writing them so that a reader, or a crash, never sees half of one, keeping
them private to their owner, and saying clearly what is wrong with a path.

Privacy: a workspace holds custody images, probe crops and face embeddings, so everything the
workbench creates in it is owner-only, whatever the process umask: folders 0700
(:func:`make_private_dir`), files 0600 (:func:`atomic_write`, :func:`open_private`,
:func:`private_umask` around third-party code that creates files itself, such as SQLite and
Annoy). :func:`permission_problems` names what others can read in an existing workspace.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shlex
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import WorkbenchError


class PathProblem(OSError):
    """An OSError whose ``strerror`` already says plainly what is wrong with the path."""


#: permissions of every file and folder the workbench creates.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

_umask_lock = threading.Lock()
_umask_depth = 0
_umask_saved = 0


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (streamed: memory stays flat for large videos)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or creation inside ``path`` durable (POSIX needs the folder synced too)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- privacy -----------------------------------------------------------------------------------


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block with group and other permission bits masked (umask ``| 0o077``), so files
    that third-party code creates (SQLite's database, WAL and SHM; Annoy and numpy files) are
    owner-only. The umask is process-wide: nested and concurrent uses keep the strictest mask
    until the last one leaves, then the saved umask comes back."""
    global _umask_depth, _umask_saved
    with _umask_lock:
        if _umask_depth == 0:
            _umask_saved = os.umask(0o077)
            os.umask(_umask_saved | 0o077)
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)


def make_private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and any missing parents as owner-only (0700) folders; return it.

    Folders that exist already keep their permissions (see :func:`permission_problems`).

    Raises:
        OSError: a part of the path is a file, or a folder cannot be created.
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not folder.is_dir():
                why = input_problem(folder) or "a file is in the way of a folder"
                if why == "no such file":
                    why = "a file is in the way of a folder"
                raise PathProblem(errno.ENOTDIR, why, str(folder)) from None
            continue  # another process made it meanwhile
        os.chmod(folder, PRIVATE_DIR)  # whatever the umask took away or left
    return path


def open_private(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open()`` for writing a new file (or replacing one) with owner-only permissions (0600).

    ``mode`` is "w", "wb", "a" or "ab"; keyword arguments go to :func:`os.fdopen` (encoding,
    newline). Parent folders are created owner-only.
    """
    path = Path(path)
    if mode.rstrip("b") not in {"w", "a"}:
        raise ValueError(f"open_private writes only (w or a), got {mode!r}")
    make_private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def permission_problems(home: str | os.PathLike) -> list[str]:
    """What in a workspace folder other users can reach: the folder itself, and the files and
    folders directly in it (symbolic links are not followed). Empty when all is owner-only."""
    home = Path(home)
    found = []
    try:
        mode = home.stat().st_mode
    except OSError:
        return []
    if mode & 0o077:
        found.append(f"{home} is {stat.S_IMODE(mode):o}")
    try:
        entries = sorted(home.iterdir())
    except OSError:
        return found
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & 0o077:
            found.append(f"{entry.name} is {stat.S_IMODE(info.st_mode):o}")
    return found


def permission_warning(home: str | os.PathLike) -> str | None:
    """The warning for a workspace other users can read, with the command that fixes it; None if private."""
    problems = permission_problems(home)
    if not problems:
        return None
    shown = ", ".join(problems[:4]) + (f" and {len(problems) - 4} more" if len(problems) > 4 else "")
    return (
        f"{home}: the workspace is readable by other users of this machine ({shown}); it holds custody images and "
        f"face embeddings: run `chmod -R go-rwx {shlex.quote(str(home))}`"
    )


# -- writing -------------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The rename is atomic on POSIX: readers see the old file or the new one, never a mix, and
    a crash leaves at most a stray ``.<name>.*.tmp`` file. Missing parent folders are created
    owner-only (0700).

    Args:
        mode: file permissions; default 0o600 (owner only, as mkstemp creates it), right for
            files that hold custody images or case data.

    Raises:
        OSError: the folder cannot be created or written (disk full, file size limit...); the
            previous file, if any, is left as it was.
    """
    path = Path(path)
    make_private_dir(path.parent)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, PRIVATE_FILE if mode is None else mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- checking paths before work starts -----------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def checked_output_path(path: str | os.PathLike, *, what: str = "output file") -> Path:
    """``path`` as a file the caller may write (created or replaced), checked before any work
    starts so that a bad ``--out`` fails at once with a clear message.

    Raises:
        WorkbenchError: the path is empty, names a folder or something that is not a regular
            file, lies under a file, or its folder cannot be written.
    """
    if path is None or not str(path).strip():
        raise WorkbenchError(f"the {what} name is empty")
    path = Path(path)
    if path.is_dir():
        raise WorkbenchError(f"{path}: is a folder; give a file name for the {what} (e.g. {path / 'out'}{path.suffix})")
    if os.path.lexists(path):
        try:
            info = path.stat()
        except OSError as exc:
            raise WorkbenchError(f"{path}: cannot be used as the {what} ({os_reason(exc)})") from exc
        if not stat.S_ISREG(info.st_mode):
            raise WorkbenchError(f"{path}: is not a regular file; give a file name for the {what}")
        if not os.access(path, os.W_OK):
            raise WorkbenchError(f"{path}: cannot be written (permission denied)")
        return path
    _check_creatable(path.parent, what=what)
    return path


def checked_output_dir(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """``path`` as a folder the caller may create or write into (checked before work starts).

    Raises:
        WorkbenchError: the path is empty, names a file, lies under a file, or cannot be written.
    """
    if path is None or not str(path).strip():
        raise WorkbenchError(f"the {what} name is empty")
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise WorkbenchError(f"{path}: is a file, not a folder; give a folder for the {what}")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise WorkbenchError(f"{path}: the {what} cannot be written (permission denied)")
        return path
    _check_creatable(path, what=what)
    return path


def _check_creatable(folder: Path, *, what: str) -> None:
    """The folder exists and is writable, or can be created under its nearest existing parent."""
    folder = Path(folder) if str(folder) else Path(".")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise WorkbenchError(f"{folder}: cannot hold the {what}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WorkbenchError(f"{folder}: cannot hold the {what}: {existing} cannot be written (permission denied)")


# -- saying what is wrong ---------------------------------------------------------------------------

_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ELOOP: "symlink loop (symbolic links that point at each other)",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "file too large (the file size limit was reached)",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "already exists",
    errno.EIO: "input/output error (failing disk?)",
    errno.EMFILE: "too many open files",
    errno.ENXIO: "no such device",
}


def os_reason(exc: OSError) -> str:
    """A plain description of an OSError, without the path."""
    if isinstance(exc, PathProblem) and exc.strerror:
        return exc.strerror
    return _REASONS.get(exc.errno, exc.strerror or str(exc))


def os_error_message(exc: OSError) -> str:
    """``"<path>: <problem>"`` for an OSError (the path as the error names it, if it does)."""
    reason = os_reason(exc)
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def input_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as an input file or folder, or None when it can be stat'ed:
    "no such file", "broken symbolic link", "symlink loop", "permission denied"..."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (it points to {os.readlink(path)!r}, which does not exist)"
        return "no such file"
    except OSError as exc:
        return os_reason(exc)
    return None
