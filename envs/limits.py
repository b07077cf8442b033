"""Resource limits: how many worktrees may exist, and how full the disk may get.

A :class:`LimitGuard` is asked before every new worktree and every agent start
(see :class:`envs.pool.WorktreePool`'s ``guard``): above the disk's warning
level it emits a ``disk_warning`` event (at most once a minute) and lets the
work go on; above the hard limit, or at the repository's total worktree limit
(counted across every process working in the repository), it refuses with a
message saying what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time

import attrs
import trio

from envs.protocols import EventSink, WorktreeError

__all__ = ["LimitGuard", "ResourceLimits"]

_WARNING_INTERVAL = 60.0
_RESERVATION_LIFETIME = 3600.0  # no creation takes this long: an older one is stale


def _percent(value: float) -> None:
    if not 0 < value <= 100:
        raise ValueError(f"a disk limit must be a percentage in (0, 100], found {value!r}")


@attrs.frozen
class ResourceLimits:
    """The limits of one run.

    ``max_worktrees_per_job`` caps a job's pool (and so how many agents run at
    once); ``max_worktrees_total`` caps forkmerge's worktrees in the whole
    repository (all jobs). ``disk_warn_percent`` / ``disk_limit_percent``:
    how full the file system holding the worktrees may be before a warning,
    and before no new worktree is started.
    """

    max_worktrees_per_job: int | None = None
    max_worktrees_total: int | None = None
    disk_warn_percent: float = attrs.field(default=90.0)
    disk_limit_percent: float = attrs.field(default=98.0)

    def __attrs_post_init__(self) -> None:
        _percent(self.disk_warn_percent)
        _percent(self.disk_limit_percent)
        for name in ("max_worktrees_per_job", "max_worktrees_total"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be at least 1, found {value!r}")


def _existing(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _worktree_names(worktrees_dir: str) -> set[str]:
    try:
        return {
            entry.name
            for entry in os.scandir(worktrees_dir)
            if entry.is_dir() and entry.name.startswith("fm-")
        }
    except FileNotFoundError:
        return set()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process: alive
    return True


class LimitGuard:
    """The resource limits of the worktrees under ``worktrees_dir``
    (a :class:`~envs.pool.WorktreeAdmission`).

    Reservations make the repository's total (``max_worktrees_total``) hold across
    processes: under an exclusive ``flock`` on ``<worktrees_dir>/.reservations/.lock``
    a reservation counts the worktree directories and the live reservations of every
    process (by worktree name, so a worktree being created counts once), and, with
    room, leaves a file ``<name>.<pid>`` there until the creation ends. A
    reservation whose process is gone, or older than an hour, is ignored and
    deleted. The disk limit is asked on every reservation and every agent start.
    """

    def __init__(self, limits: ResourceLimits, worktrees_dir: str, events: EventSink) -> None:
        self.limits = limits
        self._dir = worktrees_dir
        self._reservations = os.path.join(worktrees_dir, ".reservations")
        self._events = events
        self._warned_at = -_WARNING_INTERVAL

    async def reserve(self, key: str) -> WorktreeError | None:
        """Room for new worktree ``key`` (held until :meth:`release`), or why there is none."""
        return await trio.to_thread.run_sync(self._reserve, key)

    async def release(self, key: str) -> None:
        """End this process's reservation of ``key`` (nothing happens if there is none)."""
        await trio.to_thread.run_sync(self._release, key)

    async def may_start(self) -> WorktreeError | None:
        """Why no agent may start now (the disk limit), or ``None`` (a warning may be emitted)."""
        return await trio.to_thread.run_sync(self._check_disk)

    def _reserve(self, key: str) -> WorktreeError | None:
        refused = self._check_disk()
        total = self.limits.max_worktrees_total
        if refused is not None or total is None:
            return refused
        os.makedirs(self._reservations, exist_ok=True)
        with open(os.path.join(self._reservations, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            taken = _worktree_names(self._dir) | self._live_reservations()
            if key not in taken and len(taken) >= total:
                return WorktreeError(
                    "limits",
                    f"the repository already has {total} forkmerge worktrees "
                    f"(--max-worktrees {total}); wait for other jobs, or clean orphans "
                    "with: python -m phases worktrees clean",
                )
            with open(self._reservation_file(key), "w"):
                pass
        return None

    def _release(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._reservation_file(key))

    def _reservation_file(self, key: str) -> str:
        return os.path.join(self._reservations, f"{key}.{os.getpid()}")

    def _live_reservations(self) -> set[str]:
        """Names of worktrees reserved by living processes; stale reservations are deleted."""
        live: set[str] = set()
        now = time.time()
        for entry in os.scandir(self._reservations):
            name, _dot, pid = entry.name.rpartition(".")
            if not name or not pid.isdigit():
                continue
            try:
                age = now - entry.stat().st_mtime
            except FileNotFoundError:
                continue
            if age < _RESERVATION_LIFETIME and _process_alive(int(pid)):
                live.add(name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)
        return live

    def _check_disk(self) -> WorktreeError | None:
        usage = shutil.disk_usage(_existing(self._dir))
        # As df counts it: space reserved for root is neither used nor available.
        usable = usage.used + usage.free
        percent = 100.0 * usage.used / usable if usable else 0.0
        if percent >= self.limits.disk_limit_percent:
            return WorktreeError(
                "limits",
                f"the disk holding {self._dir} is {percent:.0f}% full (the limit is "
                f"{self.limits.disk_limit_percent:g}%): no new agent is started; free "
                "space (python -m phases worktrees clean) or raise --disk-limit",
            )
        now = time.monotonic()
        if percent >= self.limits.disk_warn_percent and now - self._warned_at >= _WARNING_INTERVAL:
            self._warned_at = now
            self._events.emit(
                {
                    "event": "disk_warning",
                    "path": self._dir,
                    "percent": round(percent, 1),
                    "free_bytes": usage.free,
                }
            )
        return None
