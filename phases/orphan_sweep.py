"""Cleaning up after earlier jobs when a job starts: the automatic orphan cleaner.

A cleanup that failed or timed out at the end of a job (a worktree that could not be
deleted, a pool slot left behind, a process killed before it removed its job
worktree) leaves a worktree or agent branch with forkmerge's marker. Every ``run``
and ``resume`` first sweeps the leftovers of *completed* jobs: nothing can resume
them, so they are only debt. It keeps everything else as ``worktrees clean`` would
(leftovers of a job whose lock a live process holds, agent branches a resume still
needs) and, beyond that, leftovers of jobs that are not complete (``resume`` settles
those) and worktrees handed over to debug a failed agent (``--keep-failed``); the
operator removes those with ``worktrees clean``. A sweep that cannot clean something
says so and never stops the job from starting.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TextIO

import pygit2
import trio

from envs.git_repository import GitProblem
from envs.job_records import JobStatus
from envs.local import StateLayout
from envs.orphan_cleaning import CleanReport, clean_leftovers
from envs.orphans import KnownJob, Leftover, Scan, scan_leftovers
from phases.units import count_of, format_size

__all__ = ["sweep_finished_jobs", "sweepable"]


def sweepable(scan: Scan, known: Mapping[str, KnownJob]) -> list[Leftover]:
    """The leftovers a starting job removes: of completed jobs, orphaned, not kept."""
    return [
        leftover
        for leftover in scan.leftovers
        if (job := known.get(leftover.job_id)) is not None
        and job.status is JobStatus.COMPLETED
        and leftover.holder is None
        and not leftover.kept
    ]


def sweep_finished_jobs(
    layout: StateLayout, known: Mapping[str, KnownJob], err: TextIO
) -> CleanReport | None:
    """Remove the :func:`sweepable` leftovers of ``layout``'s repository; one line on
    ``err`` for what was removed, one per failure. ``None`` when there was nothing, or
    when the repository could not be scanned (a warning line says why).

    Blocking (runs its own trio loop for the removals): call it before the job's.
    """
    try:
        selected = sweepable(scan_leftovers(layout.repository, layout, known), known)
        if not selected:
            return None
        report = trio.run(
            partial(clean_leftovers, layout.repository, selected, dry_run=False, force=False)
        )
    except (OSError, pygit2.GitError, GitProblem) as error:
        # Another job's leftovers must not keep this one from starting.
        err.write(
            f"warning: could not look for leftovers of completed jobs: {error}; "
            "retry with: python -m phases worktrees clean\n"
        )
        return None
    removed = [action for action in report.actions if action.outcome == "removed"]
    if removed:
        jobs = sorted({action.leftover.job_id for action in removed})
        worktrees = sum(1 for action in removed if action.leftover.kind == "worktree")
        err.write(
            f"cleaned up after completed job{'s' if len(jobs) > 1 else ''} {', '.join(jobs)}: "
            f"removed {count_of(worktrees, 'worktree')} and "
            f"{count_of(len(removed) - worktrees, 'branch')} left by failed cleanups "
            f"({format_size(report.freed_bytes)} freed)\n"
        )
    for action in report.actions:
        if action.outcome == "failed":
            err.write(
                f"warning: could not clean {action.leftover.path or action.leftover.branch} "
                f"of completed job {action.leftover.job_id}: {action.reason}; "
                "retry with: python -m phases worktrees clean\n"
            )
    return report
