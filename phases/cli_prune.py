"""The command line's ``jobs prune``: forget finished jobs, so forkmerge's state stays bounded.

Which jobs qualify is :mod:`pure.job_pruning`; surveying and removing is
:mod:`envs.job_pruning`; this module checks the options, runs both, and
prints what was (or, with ``--dry-run``, would be) removed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TextIO

import attrs
import trio
from returns.result import Failure

from envs.job_pruning import JobPruning, PruneReport, prune_jobs, survey_jobs
from envs.local import StateLayout, state_layout
from envs.protocols import JobStore
from envs.store import DATABASE_NAME
from envs.worktree_layout import name_problem
from phases.cli import EXIT_FAILED, EXIT_OK, UsageError, resume_hint
from phases.units import format_age, format_size, parse_duration
from pure.job_pruning import JobFacts, KeepReason, plan_pruning

__all__ = ["PruneOptions", "jobs_prune_command"]


@attrs.frozen
class PruneOptions:
    """What ``jobs prune`` was asked to do (``older_than`` as given: ``30d``)."""

    repo: str
    state_dir: str | None = None
    jobs: tuple[str, ...] = ()
    older_than: str | None = None
    force: bool = False
    delete_branches: bool = False
    dry_run: bool = False
    json: bool = False


def _threshold(options: PruneOptions) -> float | None:
    """``--older-than`` in seconds; :class:`UsageError` for a bad option or none at all."""
    for job in options.jobs:
        problem = name_problem("job id", job)
        if problem is not None:
            raise UsageError(f"--job: {problem}")
    if options.older_than is None:
        if not options.jobs:
            raise UsageError(
                "jobs prune: expected --older-than AGE (such as 30d) or --job JOB, found "
                "neither; give one, so that not every finished job is pruned by mistake"
            )
        return None
    parsed = parse_duration(options.older_than)
    if isinstance(parsed, Failure):
        raise UsageError(f"--older-than: {parsed.failure()}")
    return parsed.unwrap()


async def _prune(
    options: PruneOptions, layout: StateLayout, store: JobStore | None, threshold: float | None
) -> PruneReport:
    try:
        facts = await survey_jobs(layout.repository, layout, store)
    except OSError as error:
        raise UsageError(f"cannot read forkmerge's state in {layout.root}: {error}") from None
    plan = plan_pruning(
        facts,
        now=time.time(),
        older_than=threshold,
        only=options.jobs or None,
        force=options.force,
        delete_branches=options.delete_branches,
    )
    if plan.unknown:
        raise UsageError(
            f"--job: no job {plan.unknown[0]!r} in this repository: neither a record in the job "
            f"database nor files in {layout.root} (see: python -m phases jobs)"
        )
    return await prune_jobs(
        plan,
        repo_path=layout.repository,
        layout=layout,
        store=store,
        dry_run=options.dry_run,
    )


def jobs_prune_command(options: PruneOptions, out: TextIO) -> int:
    """``jobs prune``: remove finished jobs' records, logs, metrics and locks; exit 0, 1 or 2.

    Prunes the jobs the options select (see :mod:`pure.job_pruning`); prints
    every job pruned or kept, every file with its size, and the bytes freed
    (``--json``: one object, see :func:`report_json`). ``dry_run`` prints
    the same and changes nothing. Exit 1 when something could not be removed
    (the rest was still done); :class:`UsageError` (exit 2, nothing changed)
    for a bad option, an unknown ``--job`` or an unreadable state directory.
    Cancellation (Ctrl-C): what was removed stays removed, the job being
    pruned keeps what was not yet removed, and ``KeyboardInterrupt`` propagates.
    """
    threshold = _threshold(options)
    layout = state_layout(options.repo, options.state_dir)
    if os.path.isfile(os.path.join(layout.root, DATABASE_NAME)):
        with layout.open_store() as store:
            report = trio.run(_prune, options, layout, store, threshold)
    else:  # no job database: only stray files can be left, and pruning never creates one
        report = trio.run(_prune, options, layout, None, threshold)
    if options.json:
        out.write(json.dumps(report_json(report, options, layout, threshold), indent=2) + "\n")
    else:
        _print_report(report, options, layout, out)
    return EXIT_FAILED if report.failed else EXIT_OK


# -- what is printed ------------------------------------------------------------------------


def _age(facts: JobFacts, now: float) -> str:
    return format_age(max(0.0, now - facts.last_active))


def _reason_text(
    reason: KeepReason, facts: JobFacts, options: PruneOptions, layout: StateLayout
) -> str:
    if reason == "running":
        return (
            f"process {facts.runner_pid} on {facts.runner_host} is running it, and a running "
            "job is never pruned (stop it first)"
        )
    if reason == "recent":
        return f"it was active within --older-than {options.older_than}"
    if reason == "worktrees":
        return (
            f"{facts.leftovers} of its worktrees or agent branches are still in the repository; "
            f"remove them first: python -m phases worktrees clean --job {facts.job_id}"
        )
    how = "it was interrupted" if facts.status == "interrupted" else "its process died"
    work = (
        f"{facts.remaining_items} of its items are not done"
        if facts.remaining_items
        else "its run did not finish"
    )
    resume = resume_hint(facts.job_id, layout.repository)
    return (
        f"{how} and holds unmerged work: {work}, and `{resume}` would finish it; "
        "--force prunes it anyway"
    )


def _message(job: JobPruning, options: PruneOptions, layout: StateLayout) -> str | None:
    """Why a job was kept or failed, in one line (``None`` for a pruned job)."""
    if job.outcome == "kept":
        facts = job.decision.facts
        return "; ".join(_reason_text(r, facts, options, layout) for r in job.decision.reasons)
    if job.outcome == "failed":
        return "; ".join(job.errors)
    return None


def _title(job: JobPruning, now: float) -> str:
    facts = job.decision.facts
    status = facts.status if facts.recorded else "no record"
    return f"job {facts.job_id} ({status}, last active {_age(facts, now)} ago)"


def _job_lines(
    job: JobPruning, options: PruneOptions, layout: StateLayout, now: float
) -> list[str]:
    facts = job.decision.facts
    removed = "would remove" if options.dry_run else "removed"
    if job.outcome == "kept":
        return [f"kept {_title(job, now)}: {_message(job, options, layout)}"]
    if job.outcome == "failed":
        lines = [f"failed to prune {_title(job, now)}: {_message(job, options, layout)}"]
    elif facts.recorded:
        verb = "would prune" if options.dry_run else "pruned"
        lines = [f"{verb} {_title(job, now)}, {format_size(job.freed_bytes)}"]
    else:
        verb = "would remove" if options.dry_run else "removed"
        lines = [f"{verb} the stray files of {_title(job, now)}, {format_size(job.freed_bytes)}"]
    rows = job.rows
    if rows.jobs:
        lines.append(
            f"  {removed} its record from the job database: {rows.events} events, "
            f"{rows.items} items, {rows.phases} phases"
        )
    lines += [f"  {removed} {file.path} ({format_size(file.size)})" for file in job.removed]
    if job.branch_deleted:
        lines.append(f"  {'would delete' if options.dry_run else 'deleted'} branch {facts.branch}")
    elif facts.branch is not None and job.outcome == "pruned":
        lines.append(
            f"  kept branch {facts.branch}: it holds the job's result (--delete-branches "
            "deletes it)"
        )
    return lines


def _print_report(
    report: PruneReport, options: PruneOptions, layout: StateLayout, out: TextIO
) -> None:
    now = time.time()
    newer = ""
    if report.newer:
        jobs = "job" if report.newer == 1 else "jobs"
        newer = f"; {report.newer} {jobs} active within {options.older_than} left alone"
    if not report.jobs:
        age = "" if options.older_than is None else f" older than {options.older_than}"
        out.write(f"nothing to prune: no job or stray file of forkmerge{age}{newer}\n")
        return
    for job in report.jobs:
        out.write("".join(f"{line}\n" for line in _job_lines(job, options, layout, now)))
    pruned = report.count("pruned")
    counts = (
        f"{pruned} {'job' if pruned == 1 else 'jobs'}, {report.count('kept')} kept, "
        f"{report.count('failed')} failed{newer}"
    )
    if report.dry_run:
        out.write(
            f"dry run, nothing changed: would free {format_size(report.freed_bytes)} "
            f"pruning {counts}\n"
        )
    else:
        out.write(f"freed {format_size(report.freed_bytes)} pruning {counts}\n")


def report_json(
    report: PruneReport, options: PruneOptions, layout: StateLayout, threshold: float | None
) -> dict[str, Any]:
    """The ``--json`` object: the options' effect, every job, and the totals.

    ``jobs``: objects with ``job_id``, ``status`` (``null``: only stray files
    were left of it), ``outcome`` (pruned|kept|failed), ``reasons`` (why it
    was kept: running, recent, worktrees, resumable), ``message``,
    ``last_active`` (seconds since the epoch), ``store_rows`` (the rows
    removed: jobs, events, items, phases), ``files`` (``path`` and
    ``bytes`` of each file removed), ``bytes``, ``branch`` (its job branch,
    if it exists), ``branch_deleted`` and ``errors``.
    """
    jobs: list[dict[str, Any]] = []
    for job in report.jobs:
        facts = job.decision.facts
        jobs.append(
            {
                "job_id": facts.job_id,
                "status": facts.status,
                "outcome": job.outcome,
                "reasons": list(job.decision.reasons),
                "message": _message(job, options, layout),
                "last_active": facts.last_active,
                "store_rows": job.rows.to_json(),
                "files": [{"path": file.path, "bytes": file.size} for file in job.removed],
                "bytes": job.freed_bytes,
                "branch": facts.branch,
                "branch_deleted": job.branch_deleted,
                "errors": list(job.errors),
            }
        )
    return {
        "dry_run": report.dry_run,
        "older_than_seconds": threshold,
        "jobs": jobs,
        "pruned": report.count("pruned"),
        "kept": report.count("kept"),
        "failed": report.count("failed"),
        "newer": report.newer,
        "bytes_freed": report.freed_bytes,
    }
