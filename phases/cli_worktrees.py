"""The command line's ``worktrees list`` and ``worktrees clean``: forkmerge's leftovers.

What counts as forkmerge's, active or orphaned, and what cleaning keeps is
described in :mod:`envs.orphans` and :mod:`envs.orphan_cleaning`; this module
reads the job store, filters, and prints.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from typing import TextIO

import trio
from returns.result import Failure

from envs.local import StateLayout, state_layout
from envs.orphan_cleaning import CleanAction, CleanReport, clean_leftovers
from envs.orphans import KnownJob, Leftover, Scan, known_jobs, scan_leftovers, select_leftovers
from envs.store import DATABASE_NAME, StoreError
from envs.worktree_layout import name_problem
from phases.cli import EXIT_FAILED, EXIT_OK, UsageError
from phases.units import count_of as _count
from phases.units import format_age, format_size, parse_duration

__all__ = ["worktrees_clean_command", "worktrees_list_command"]


def _known(layout: StateLayout) -> tuple[dict[str, KnownJob], list[str]]:
    """The jobs of the job store, if there is one (a listing never creates it)."""
    if not os.path.isfile(os.path.join(layout.root, DATABASE_NAME)):
        return {}, []
    try:
        with layout.open_store() as store:
            return trio.run(known_jobs, store), []
    except StoreError as error:
        return {}, [f"{error}; agent branches count as forkmerge's only by their jobs' markers"]


def _scan(repo: str, layout: StateLayout) -> tuple[Scan, list[str]]:
    known, notes = _known(layout)
    scan = scan_leftovers(repo, layout, known)
    return scan, [*notes, *scan.notes]


def _remark(leftover: Leftover) -> str:
    remarks = []
    if leftover.vanished:
        remarks.append("directory gone")
    if leftover.pending:
        remarks.append("checkout interrupted")
    if leftover.holder is not None:
        remarks.append(f"run by process {leftover.holder.pid}")
    if leftover.unrecorded_merge is not None:
        remarks.append("merge not recorded: resume the job")
    if leftover.kept:
        remarks.append("kept to debug a failed agent")
    return f" ({', '.join(remarks)})" if remarks else ""


def worktrees_list_command(repo: str, state_dir: str | None, *, as_json: bool, out: TextIO) -> int:
    """``worktrees list``: forkmerge's worktrees and orphaned agent branches, with their state.

    JSON: a list of objects with ``kind`` (worktree|branch), ``job_id``,
    ``path`` (``null`` for a branch), ``branch``, ``age_seconds``,
    ``size_bytes``, ``state`` (active|orphaned) and a few details
    (:meth:`envs.orphans.Leftover.to_json`).
    """
    layout = state_layout(repo, state_dir)
    scan, notes = _scan(repo, layout)
    now = time.time()
    if as_json:
        out.write(json.dumps([leftover.to_json(now) for leftover in scan.leftovers], indent=2))
        out.write("\n")
        return EXIT_OK
    for note in notes:
        out.write(f"note: {note}\n")
    if not scan.leftovers:
        out.write("no worktrees or agent branches of forkmerge in this repository\n")
        return EXIT_OK
    rows = [("STATE", "KIND", "JOB", "AGE", "SIZE", "BRANCH", "PATH")]
    for leftover in scan.leftovers:
        size = format_size(leftover.size_bytes) if leftover.kind == "worktree" else "-"
        rows.append(
            (
                leftover.state,
                leftover.kind,
                leftover.job_id,
                format_age(leftover.age(now)),
                size,
                leftover.branch,
                (leftover.path or "-") + _remark(leftover),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(6)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[6]]) + "\n")
    worktrees = [leftover for leftover in scan.leftovers if leftover.kind == "worktree"]
    orphaned = sum(1 for leftover in scan.leftovers if leftover.state == "orphaned")
    total = sum(leftover.size_bytes for leftover in worktrees)
    hint = " (python -m phases worktrees clean removes them)" if orphaned else ""
    out.write(
        f"{_count(len(worktrees), 'worktree')} ({format_size(total)}), "
        f"{_count(len(scan.leftovers) - len(worktrees), 'agent branch')} without a worktree; "
        f"{orphaned} orphaned{hint}\n"
    )
    return EXIT_OK


def _action_line(action: CleanAction, dry_run: bool) -> str:
    leftover = action.leftover
    of_job = f"of job {leftover.job_id}"
    if action.outcome == "skipped":
        what = leftover.path if leftover.kind == "worktree" else leftover.branch
        return f"skipped {leftover.kind} {what} {of_job}: {action.reason}"
    if action.outcome == "failed":
        what = leftover.path if leftover.kind == "worktree" else leftover.branch
        return f"failed to remove {leftover.kind} {what} {of_job}: {action.reason}"
    if leftover.kind == "branch":
        return f"{'would delete' if dry_run else 'deleted'} branch {leftover.branch} {of_job}"
    if leftover.vanished:
        verb = "would prune" if dry_run else "pruned"
        line = f"{verb} git's record of vanished worktree {leftover.path} {of_job}"
    else:
        verb = "would remove" if dry_run else "removed"
        kind = "interrupted checkout" if leftover.pending else "worktree"
        line = f"{verb} {kind} {leftover.path} {of_job} ({format_size(action.freed_bytes)})"
    if action.branch_deleted:
        line += f" and its branch {leftover.branch}"
    if action.reason is not None:
        line += f"; {action.reason}"
    return line


def _summary(report: CleanReport) -> str:
    worktrees = report.count("removed", "worktree")
    branches = report.count("removed", "branch") + sum(
        1
        for action in report.actions
        if action.leftover.kind == "worktree" and action.branch_deleted
    )
    counts = (
        f"{_count(worktrees, 'worktree')} and {_count(branches, 'branch')}, "
        f"{report.count('skipped')} skipped, {report.count('failed')} failed"
    )
    if report.dry_run:
        return (
            f"dry run, nothing changed: would free {format_size(report.freed_bytes)} "
            f"removing {counts}\n"
        )
    return f"freed {format_size(report.freed_bytes)} removing {counts}\n"


def worktrees_clean_command(
    repo: str,
    state_dir: str | None,
    *,
    job: str | None,
    older_than: str | None,
    dry_run: bool,
    force: bool,
    out: TextIO,
) -> int:
    """``worktrees clean``: remove orphaned worktrees and agent branches; exit 0, 1 or 2.

    ``job`` keeps to one job's leftovers, ``older_than`` (``2h``, ``3d``) to
    those older than that; ``force`` removes active ones and branches a
    resume still needs too; ``dry_run`` prints the same lines and changes
    nothing. Exit 1 when some removal failed (the others were still done);
    :class:`UsageError` (exit 2) for a bad job id or duration.
    """
    if job is not None:
        problem = name_problem("job id", job)
        if problem is not None:
            raise UsageError(f"--job: {problem}")
    threshold: float | None = None
    if older_than is not None:
        parsed = parse_duration(older_than)
        if isinstance(parsed, Failure):
            raise UsageError(f"--older-than: {parsed.failure()}")
        threshold = parsed.unwrap()
    layout = state_layout(repo, state_dir)
    scan, notes = _scan(repo, layout)
    selected = select_leftovers(scan.leftovers, job_id=job, older_than=threshold, now=time.time())
    for note in notes:
        out.write(f"note: {note}\n")
    if not selected:
        scope = "" if job is None else f" of job {job}"
        age = "" if older_than is None else f" older than {older_than}"
        out.write(f"nothing to clean: no worktrees or agent branches of forkmerge{scope}{age}\n")
        return EXIT_OK
    report = trio.run(partial(clean_leftovers, repo, selected, dry_run=dry_run, force=force))
    for action in report.actions:
        out.write(_action_line(action, report.dry_run) + "\n")
    out.write(_summary(report))
    return EXIT_FAILED if report.failed else EXIT_OK
