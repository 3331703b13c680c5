"""Worker processes that die with their owner and leave Ctrl-C to it.

Every process-pool worker runs :func:`tie_to_owner` as its initializer, before any task:

- it ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the
  owner (pytest) is the one that must handle it — by tearing the pool down — instead of
  every worker raising ``KeyboardInterrupt`` in the middle of a task;
- it dies with its owner: on Linux the kernel kills it (``PR_SET_PDEATHSIG``) when the
  process that started it ends, however it ends (``os._exit``, SIGTERM, SIGKILL, an
  xdist worker crash); where the worker's parent is not the owner (``forkserver``) or
  there is no ``prctl``, a daemon thread watches the owner and ends the worker when it
  is gone;
- a *forked* worker closes the descriptors the owner names (an xdist worker's channel
  to its controller), so that a pool worker never keeps that channel open.

Nothing here knows about pytest; the pytest glue says which descriptors to close.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: from <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
#: How often the fallback watchdog looks for its owner (seconds).
_WATCH_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Owner:
    """What a pool's workers are tied to: the starting process and what they must close."""

    pid: int
    #: descriptors a forked worker closes at once (inherited, not its own)
    close_fds: tuple[int, ...] = ()


#: Descriptors of the current process that its forked workers must not keep (set by
#: the glue: an xdist worker's channel). Read when a pool starts.
_foreign_fds: tuple[int, ...] = ()


def set_foreign_fds(fds: Sequence[int]) -> None:
    """Name the descriptors that forked pool workers close (an xdist worker's channel)."""
    global _foreign_fds
    _foreign_fds = tuple(sorted({fd for fd in fds if fd > 2}))


def owner_for(start_method: str) -> Owner:
    """The :class:`Owner` for a pool started now with *start_method*.

    Only a forked worker inherits the owner's descriptors; a spawned one has fresh ones
    whose numbers may be the same, so it closes none.
    """
    return Owner(os.getpid(), _foreign_fds if start_method == "fork" else ())


def tie_to_owner(owner: Owner) -> None:
    """A pool worker's initializer: ignore Ctrl-C, close *owner*'s descriptors, die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in owner.close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if os.getppid() == owner.pid and _set_parent_death_signal(signal.SIGKILL):
        # The owner may have died between the fork and the prctl call: then the worker
        # was reparented already and no signal will come.
        if os.getppid() != owner.pid:
            os._exit(1)
        return
    _watch(owner.pid)


def _set_parent_death_signal(signum: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, signum)``; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def owner_alive(pid: int) -> bool:
    """Whether process *pid* still exists (a zombie counts as gone only once reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(pid: int) -> None:
    """End this process as soon as *pid* is gone: a pidfd where there is one, else polling."""
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]

    def wait_for_owner() -> None:
        if pidfd is not None:
            import select

            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while not poller.poll(None):
                pass
        else:
            while owner_alive(pid):
                time.sleep(_WATCH_INTERVAL_S)
        os.kill(os.getpid(), signal.SIGKILL)

    if pidfd is None and not owner_alive(pid):
        os._exit(1)
    threading.Thread(target=wait_for_owner, name="pytest-parallel-lab-owner", daemon=True).start()
