"""The files forkmerge keeps per job in its state directory, recognised by name.

Under the state directory (:class:`~envs.local.StateLayout`) each job may
have, by its job id ``<job>``:

- in ``logs/``: its event log ``<job>.jsonl``, the archives
  ``<job>.<n>.jsonl.gz``, a log set aside for compression
  ``<job>.jsonl.rotating`` and a half-written archive
  ``<job>.<n>.jsonl.gz.tmp`` (:mod:`envs.event_log`, :mod:`envs.log_archives`),
  its last run's metrics ``<job>.metrics.json`` and a half-written
  ``<job>.metrics.json.tmp`` (:mod:`phases.metrics`);
- in ``locks/``: its lock ``<job>.lock``, the lock's guard
  ``<job>.lock.guard`` and a half-written lock ``<job>.lock.<pid>.tmp``
  (:mod:`envs.job_lock`).

A file counts as a job's only when its whole name has one of these forms
and the part before the suffix is a valid job id
(:func:`~envs.worktree_layout.name_problem`); anything else in those
directories is someone else's and is never listed. The forms cannot be
confused: a job id never ends in ``.lock``, and each suffix ends the name.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from envs.local import StateLayout
from envs.worktree_layout import name_problem
from pure.job_pruning import StateFile

__all__ = ["StateDirectory", "job_of_file", "job_state_files"]

StateDirectory = Literal["logs", "locks"]

_FORMS: dict[StateDirectory, tuple[re.Pattern[str], ...]] = {
    "logs": tuple(
        re.compile(rf"(?P<job>.+){suffix}")
        for suffix in (
            r"\.jsonl",
            r"\.jsonl\.rotating",
            r"\.\d+\.jsonl\.gz",
            r"\.\d+\.jsonl\.gz\.tmp",
            r"\.metrics\.json",
            r"\.metrics\.json\.tmp",
        )
    ),
    "locks": tuple(
        re.compile(rf"(?P<job>.+){suffix}")
        for suffix in (r"\.lock", r"\.lock\.guard", r"\.lock\.\d+\.tmp")
    ),
}


def job_of_file(directory: StateDirectory, name: str) -> str | None:
    """The job id whose file ``name`` (in ``logs/`` or ``locks/``) is, or ``None``."""
    for form in _FORMS[directory]:
        found = form.fullmatch(name)
        if found is not None and name_problem("job id", found["job"]) is None:
            return found["job"]
    return None


def job_state_files(layout: StateLayout) -> dict[str, tuple[StateFile, ...]]:
    """Every job's files in ``layout``'s ``logs/`` and ``locks/``, by job id, sorted by path.

    Only regular files are listed (a symbolic link or a directory with such a
    name is left alone); a file that vanishes while it is looked at is
    skipped; missing directories list nothing; a directory that cannot be
    read is an ``OSError``. Blocking: call it from a worker thread in async
    code.
    """
    found: dict[str, list[StateFile]] = {}
    roots: tuple[tuple[StateDirectory, str], ...] = (("logs", layout.logs), ("locks", layout.locks))
    for directory, root in roots:
        try:
            entries = list(os.scandir(root))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            job_id = job_of_file(directory, entry.name)
            if job_id is None:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                status = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.setdefault(job_id, []).append(
                StateFile(entry.path, status.st_size, status.st_mtime)
            )
    return {
        job_id: tuple(sorted(files, key=lambda file: file.path))
        for job_id, files in sorted(found.items())
    }
