"""Writing the files a run asks for: whole or not at all, and checked before the run."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
