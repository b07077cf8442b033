"""Resource limits: how many worktrees may exist, and how full the disk may get.

A :class:`LimitGuard` is asked before every new worktree (see
:class:`envs.pool.WorktreePool`'s ``guard``): above the disk's warning level
it emits a ``disk_warning`` event (at most once a minute) and lets the
worktree be made; above the hard limit, or at the repository's total
worktree limit, it refuses with a message saying what to do.
"""

from __future__ import annotations

import os
import shutil
import time

import attrs
import trio

from envs.protocols import EventSink, WorktreeError

__all__ = ["LimitGuard", "ResourceLimits"]

_WARNING_INTERVAL = 60.0


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


def _worktree_count(worktrees_dir: str) -> int:
    try:
        return sum(
            1
            for entry in os.scandir(worktrees_dir)
            if entry.is_dir() and entry.name.startswith("fm-")
        )
    except FileNotFoundError:
        return 0


class LimitGuard:
    """Checks the limits before a new worktree is created under ``worktrees_dir``."""

    def __init__(self, limits: ResourceLimits, worktrees_dir: str, events: EventSink) -> None:
        self.limits = limits
        self._dir = worktrees_dir
        self._events = events
        self._warned_at = -_WARNING_INTERVAL

    def _check(self) -> WorktreeError | None:
        usage = shutil.disk_usage(_existing(self._dir))
        # As df counts it: space reserved for root is neither used nor available.
        usable = usage.used + usage.free
        percent = 100.0 * usage.used / usable if usable else 0.0
        if percent >= self.limits.disk_limit_percent:
            return WorktreeError(
                "limits",
                f"the disk holding {self._dir} is {percent:.0f}% full (the limit is "
                f"{self.limits.disk_limit_percent:g}%): no new worktree is started; free "
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
        total = self.limits.max_worktrees_total
        if total is not None and _worktree_count(self._dir) >= total:
            return WorktreeError(
                "limits",
                f"the repository already has {total} forkmerge worktrees (--max-worktrees "
                f"{total}); wait for other jobs, or clean orphans with: "
                "python -m phases worktrees clean",
            )
        return None

    async def __call__(self) -> WorktreeError | None:
        """Why no new worktree may be created now, or ``None`` (a warning may be emitted)."""
        return await trio.to_thread.run_sync(self._check)
