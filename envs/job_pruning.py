"""Carrying out ``jobs prune``: what is known of each job, and removing what the plan says.

:func:`survey_jobs` gathers the :class:`~pure.job_pruning.JobFacts` of every
job: its record in the job store, its files in the state directory
(:mod:`envs.state_files`), the live holder of its lock, its worktrees and
agent branches still in the repository (:mod:`envs.orphans`) and whether its
job branch exists. :func:`~pure.job_pruning.plan_pruning` decides;
:func:`prune_jobs` removes, job by job:

1. it takes the job's lock (:class:`~envs.job_lock.JobLock`), so that no
   ``resume`` can start the job meanwhile; a job a live process started since
   the survey is kept;
2. with ``delete_branch``, it deletes the job branch ``forkmerge/<job>``,
   unless a worktree (the main one included) has it checked out: then the
   job fails and nothing else of it is removed, so a later prune can retry;
3. it deletes the job's rows from the job store, in one transaction (a
   failure keeps the job whole);
4. it removes the job's files, then releases the lock and removes the lock
   files (the guard last).

A file that cannot be removed is reported and the others still go; a job
whose record is gone but some file of which is left is found again by the
next prune as stray files. Only names :mod:`envs.state_files` recognises
and the job branch of a recorded job are ever removed.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from collections.abc import Iterable
from typing import Literal, final

import attrs
import trio
from returns.result import Failure

from envs.git_repository import (
    GitProblem,
    RepositoryLocation,
    locate_repository,
    open_repository,
    run_git,
)
from envs.job_lock import JobLock, JobLocked, lock_holder
from envs.job_records import JobStatus
from envs.local import StateLayout
from envs.orphans import checked_out_branches, known_jobs, scan_leftovers
from envs.protocols import JobStore
from envs.state_files import job_state_files
from envs.store_pruning import JobRows
from envs.store_schema import StoreError
from envs.worktree_layout import job_branch
from pure.job_pruning import JobDecision, JobFacts, PrunePlan, StateFile
from pure.job_state import ItemStatus

__all__ = ["JobPruning", "PruneOutcome", "PruneReport", "prune_jobs", "survey_jobs"]

PruneOutcome = Literal["pruned", "kept", "failed"]


@final
@attrs.frozen
class JobPruning:
    """What pruning did (in a dry run: would do) with one job.

    ``outcome``: ``pruned`` (everything of it went), ``kept`` (the plan, or a
    process that started it since the survey, kept it: see
    ``decision.reasons``) or ``failed`` (``errors`` say what could not be
    removed and why). ``rows`` are the job store rows removed, ``removed``
    the files, ``branch_deleted`` whether its job branch went.
    """

    decision: JobDecision
    outcome: PruneOutcome
    rows: JobRows = attrs.field(factory=JobRows)
    removed: tuple[StateFile, ...] = ()
    branch_deleted: bool = False
    errors: tuple[str, ...] = ()

    @property
    def freed_bytes(self) -> int:
        return sum(file.size for file in self.removed)


@final
@attrs.frozen
class PruneReport:
    """Every job's pruning, in the plan's order; how many jobs were too recent to look at."""

    jobs: tuple[JobPruning, ...]
    dry_run: bool
    newer: int = 0

    @property
    def freed_bytes(self) -> int:
        return sum(job.freed_bytes for job in self.jobs)

    @property
    def failed(self) -> bool:
        return any(job.outcome == "failed" for job in self.jobs)

    def count(self, outcome: PruneOutcome) -> int:
        return sum(1 for job in self.jobs if job.outcome == outcome)


# -- the survey -----------------------------------------------------------------------------


def _existing_branches(repo_path: str, branches: Iterable[str]) -> set[str]:
    repo = open_repository(locate_repository(repo_path))
    return {branch for branch in branches if repo.lookup_branch(branch) is not None}


def _holders(lock_dir: str, job_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    held: dict[str, tuple[int, str]] = {}
    for job_id in job_ids:
        holder = lock_holder(lock_dir, job_id)
        if holder is not None:
            held[job_id] = (holder.pid, holder.host)
    return held


async def survey_jobs(
    repo_path: str, layout: StateLayout, store: JobStore | None
) -> tuple[JobFacts, ...]:
    """The facts of every job of ``store`` (``None``: there is no job database) and of
    every job id that only files in ``layout`` are left of. Reads only.

    Raises ``NotARepositoryError``, :class:`StoreError` and ``OSError`` (a
    state directory that cannot be read). Cancellation: the blocking reads run
    in worker threads and finish first; nothing is changed either way.
    """
    records = [] if store is None else await store.jobs()
    known = {} if store is None else await known_jobs(store)
    remaining: dict[str, int] = {}
    for record in records:
        if record.status is not JobStatus.COMPLETED and store is not None:
            counts = await store.item_counts(record.job_id)
            remaining[record.job_id] = counts[ItemStatus.PENDING] + counts[ItemStatus.RUNNING]
    files = await trio.to_thread.run_sync(job_state_files, layout)
    scan = await trio.to_thread.run_sync(scan_leftovers, repo_path, layout, known)
    leftovers = Counter(leftover.job_id for leftover in scan.leftovers)
    ours = [r.job_branch for r in records if r.job_branch == job_branch(r.job_id)]
    branches = await trio.to_thread.run_sync(_existing_branches, repo_path, ours)
    ids = {record.job_id for record in records} | set(files)
    holders = await trio.to_thread.run_sync(_holders, layout.locks, sorted(ids))
    facts = [
        JobFacts(
            record.job_id,
            str(record.status),
            updated_at=record.updated_at,
            files=files.get(record.job_id, ()),
            leftovers=leftovers[record.job_id],
            remaining_items=remaining.get(record.job_id, 0),
            branch=record.job_branch if record.job_branch in branches else None,
        )
        for record in records
    ]
    recorded = {record.job_id for record in records}
    facts += [
        JobFacts(job_id, None, files=found, leftovers=leftovers[job_id])
        for job_id, found in files.items()
        if job_id not in recorded
    ]
    return tuple(
        attrs.evolve(job, runner_pid=holders[job.job_id][0], runner_host=holders[job.job_id][1])
        if job.job_id in holders
        else job
        for job in facts
    )


# -- removing -------------------------------------------------------------------------------


def _checked_out(branch: str) -> str:
    return (
        f"branch {branch} is checked out in a worktree of the repository; switch that "
        "worktree to another branch, or prune with --keep-branches"
    )


def _delete_branch(location: RepositoryLocation, branch: str) -> bool:
    """Delete ``branch`` unless a worktree has it checked out; whether it existed."""
    if branch in checked_out_branches(location):
        raise GitProblem(_checked_out(branch))
    reference = open_repository(location).lookup_branch(branch)
    if reference is None:
        return False  # deleted by someone else since the survey
    reference.delete()
    return True


def _remove(path: str) -> str | None:
    """Remove the file ``path`` (already gone is fine); why it could not be removed, or None."""
    try:
        os.remove(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot remove {path}: {error.strerror or error}"
    return None


def _is_lock_file(layout: StateLayout, file: StateFile) -> bool:
    return os.path.dirname(file.path) == os.path.normpath(layout.locks)


@attrs.define
class _Removal:
    """What the removal of one job has done so far."""

    rows: JobRows = attrs.field(factory=JobRows)
    removed: list[StateFile] = attrs.field(factory=list)
    branch_deleted: bool = False
    errors: list[str] = attrs.field(factory=list)

    def remove(self, file: StateFile) -> None:
        problem = _remove(file.path)
        if problem is None:
            self.removed.append(file)
        else:
            self.errors.append(problem)

    def result(self, decision: JobDecision) -> JobPruning:
        return JobPruning(
            decision,
            "failed" if self.errors else "pruned",
            self.rows,
            tuple(self.removed),
            self.branch_deleted,
            tuple(self.errors),
        )


async def _remove_locked(
    decision: JobDecision,
    *,
    layout: StateLayout,
    location: RepositoryLocation,
    store: JobStore | None,
    done: _Removal,
) -> None:
    """Steps 2 and 3 and the files of step 4, while holding the job's lock."""
    facts = decision.facts
    if decision.delete_branch and facts.branch is not None:
        branch = facts.branch
        deleted = await run_git(
            "prune", f"branch {branch}", functools.partial(_delete_branch, location, branch)
        )
        if isinstance(deleted, Failure):
            done.errors.append(deleted.failure().message)
            return
        done.branch_deleted = deleted.unwrap()
    if facts.recorded and store is not None:
        try:
            done.rows = await store.delete_job(facts.job_id)
        except StoreError as error:
            done.errors.append(str(error))
            return
    for file in facts.files:
        if not _is_lock_file(layout, file):
            done.remove(file)


async def _prune_one(
    decision: JobDecision,
    *,
    layout: StateLayout,
    location: RepositoryLocation,
    store: JobStore | None,
) -> JobPruning:
    facts = decision.facts
    lock = JobLock(layout.locks, facts.job_id)
    try:
        lock.acquire()
    except JobLocked as locked:
        holder = locked.holder
        started = attrs.evolve(facts, runner_pid=holder.pid, runner_host=holder.host)
        return JobPruning(attrs.evolve(decision, facts=started, reasons=("running",)), "kept")
    except OSError as error:
        problem = f"cannot take the lock of job {facts.job_id} in {layout.locks}: {error}"
        return JobPruning(decision, "failed", errors=(problem,))
    done = _Removal()
    try:
        await _remove_locked(decision, layout=layout, location=location, store=store, done=done)
    finally:
        try:
            lock.release()
        except OSError as error:
            done.errors.append(f"cannot release the lock of job {facts.job_id}: {error}")
    guard = os.path.join(layout.locks, f"{facts.job_id}.lock.guard")
    lock_files = [file for file in facts.files if _is_lock_file(layout, file)]
    if not done.errors or done.removed or done.rows != JobRows():
        # Something of the job went: its lock files go too (the guard last). Else the job
        # is whole and keeps them.
        for file in sorted(lock_files, key=lambda file: file.path == guard):
            done.remove(file)
    if guard not in {file.path for file in lock_files}:
        with contextlib.suppress(OSError):  # the guard taking the lock made: not the job's
            os.remove(guard)
    return done.result(decision)


async def prune_jobs(
    plan: PrunePlan,
    *,
    repo_path: str,
    layout: StateLayout,
    store: JobStore | None,
    dry_run: bool,
) -> PruneReport:
    """Remove the jobs ``plan`` prunes (see the module docstring); with ``dry_run``, only say
    what would go (the store rows are counted, nothing is changed; a job branch checked out
    in a worktree fails the job, as it would then).

    A job that cannot be removed whole is ``failed`` with its reasons; the
    others go on. Cancellation: a store or git call already started finishes
    (the job's lock is released), then ``trio.Cancelled`` propagates; what
    was removed stays removed, and what is left of a job whose record went is
    found as stray files by the next prune.
    """
    location = locate_repository(repo_path)
    done: list[JobPruning] = []
    for decision in plan.decisions:
        facts = decision.facts
        if not decision.prune:
            done.append(JobPruning(decision, "kept"))
        elif dry_run:
            branch = facts.branch if decision.delete_branch else None
            if branch is not None and branch in checked_out_branches(location):
                done.append(JobPruning(decision, "failed", errors=(_checked_out(branch),)))
                continue
            rows = JobRows()
            if facts.recorded and store is not None:
                rows = await store.job_rows(facts.job_id)
            done.append(JobPruning(decision, "pruned", rows, facts.files, decision.delete_branch))
        else:
            done.append(await _prune_one(decision, layout=layout, location=location, store=store))
    return PruneReport(tuple(done), dry_run, plan.newer)
