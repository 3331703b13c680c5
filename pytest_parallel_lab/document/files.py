"""The document's files: written whole or not at all (and checked before the run), read
only when regular and within a size, without ever waiting on what is not a file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from pytest_parallel_lab.document.codec import DocumentError

#: Bytes read from the operating system at a time.
_CHUNK = 1 << 20
#: What a file that is not a regular one is, by its ``st_mode`` type.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write *text* to *path* whole or not at all: a temporary file, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); a report is an ordinary file.
        os.chmod(temporary, 0o666 & ~_current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def output_path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a report cannot be written to *path*, or None when it can.

    Checked before the tests run, so that a typo in an output option does not cost a
    whole run's measurements at the end.
    """
    target = Path(path)
    if target.is_dir():
        return "is a directory"
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the directory {ancestor} is not writable"
    return None


def _current_umask() -> int:
    # os.umask() can only read the mask by setting it, which for a moment changes it for
    # every thread of the process (pool threads may be creating files); Linux shows it.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of the regular file *path*, at most *max_bytes* of them.

    Anything else is refused before a byte is read, and nothing here waits: a FIFO
    would block ``open`` until a writer came, a device (``/dev/zero``) never ends.
    The size is checked from the open file, and no more than *max_bytes* + 1 bytes
    are read, so memory stays bounded even if the file grows meanwhile (issue 14).
    Every failure is a :class:`DocumentError` naming the file.
    """
    source = os.fspath(path)
    try:
        # Decided from stat first, so that a device is not even opened (opening some
        # has effects); fstat below sees the file actually opened, should it change.
        _refuse_irregular(source, os.stat(path).st_mode)
        # O_NONBLOCK: opening a FIFO returns at once; a regular file ignores it, and a
        # special one that would wait (/proc/kmsg) fails instead of hanging.
        fd = os.open(path, os.O_RDONLY | _flag("O_NONBLOCK") | _flag("O_NOCTTY"))
    except FileNotFoundError:
        raise DocumentError(f"{source}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{source}: cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        _refuse_irregular(source, info.st_mode)
        _refuse_larger(source, info.st_size, max_bytes)
        data = _read_at_most(fd, max_bytes + 1)
    except BlockingIOError:
        raise DocumentError(f"{source}: cannot be read without waiting") from None
    except OSError as exc:
        raise DocumentError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise DocumentError(
            f"{source}: grew beyond the {describe_size(max_bytes)} a run document may have "
            "while it was read"
        )
    return data


def _file_kind(mode: int) -> str | None:
    """What a file of *mode* is when it is not a regular file ("a directory"), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "a special file")


def _refuse_irregular(source: str, mode: int) -> None:
    kind = _file_kind(mode)
    if kind is not None:
        raise DocumentError(f"{source}: is {kind}, not a regular file")


def _refuse_larger(source: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DocumentError(
            f"{source}: is {describe_size(size)}, larger than the {describe_size(max_bytes)} "
            "a run document may have"
        )


def describe_size(size: int) -> str:
    """A size in the largest unit that keeps it at least 1: '1 GiB', '256 MiB', '100 bytes'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to *limit* bytes from *fd*, fewer at its end."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _flag(name: str) -> int:
    # O_NONBLOCK and O_NOCTTY exist on POSIX only; Windows has no FIFOs to wait on.
    flag: int = getattr(os, name, 0)
    return flag
