"""Jobs as records: start a new job, resume a stopped one, list what can be resumed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Never

import attrs
from returns.result import Failure, Result, Success

from effects import Effect, Exit, bracket
from envs.environment import PhaseEnv
from envs.job_records import JobRecord, JobStatus
from phases.prior_run import PriorRun, load_prior_run
from phases.results import JobResult
from phases.workflow import JobError, run_workflow
from pure.job_state import ItemStatus
from pure.workflow import Workflow

__all__ = [
    "JobProgress",
    "ResumeRefused",
    "job_progress",
    "list_jobs",
    "list_resumable_jobs",
    "new_job_record",
    "resume_job",
    "run_new_job",
    "workflow_hash",
]


def workflow_hash(text: str) -> str:
    """The hash a resume compares to notice an edited workflow file."""
    return hashlib.sha256(text.encode()).hexdigest()


def new_job_record(
    workflow: Workflow,
    *,
    job_id: str,
    workflow_path: str,
    workflow_text: str,
    repository: str,
    options: Mapping[str, Any],
    now: float,
) -> JobRecord:
    """The record of a job about to start (status ``running``, nothing planned yet)."""
    return JobRecord(
        job_id=job_id,
        workflow_name=workflow.name,
        workflow_path=workflow_path,
        workflow_hash=workflow_hash(workflow_text),
        input_hash=None,
        repository=repository,
        job_branch=f"forkmerge/{job_id}",
        status=JobStatus.RUNNING,
        created_at=now,
        updated_at=now,
        options=dict(options),
    )


def _final_status(exit_: Exit[JobResult, Any]) -> JobStatus:
    if exit_.kind == "cancelled":
        return JobStatus.INTERRUPTED
    # Every item was processed: the job is complete, its failures wait in the
    # dead-letter queue (``dlq retry``). A phase failure or a stop is resumable.
    if exit_.kind == "success" and exit_.value is not None and exit_.value.status != "failed":
        return JobStatus.COMPLETED
    return JobStatus.FAILED


def _tracked(
    job_id: str, run: Effect[JobResult, JobError, PhaseEnv]
) -> Effect[JobResult, JobError, PhaseEnv]:
    """``run`` with the job's record kept up to date: running, then how it ended and how long.

    The final status — completed, failed (resumable) or interrupted
    (cancelled: Ctrl-C, SIGTERM) — and the run's duration are stored on
    every outcome, shielded from cancellation.
    """

    async def mark_running(env: PhaseEnv) -> Success[float]:
        await env.services.store.update_job(job_id, status=JobStatus.RUNNING)
        return Success(env.services.clock.now())

    def finish(started: float, exit_: Exit[JobResult, Any]) -> Effect[None, Never, PhaseEnv]:
        async def store(env: PhaseEnv) -> Success[None]:
            elapsed = max(0.0, env.services.clock.now() - started)
            await env.services.store.update_job(
                job_id, status=_final_status(exit_), add_duration=elapsed
            )
            return Success(None)

        return Effect.from_async(store)

    started: Effect[float, Never, PhaseEnv] = Effect.from_async(mark_running)
    return bracket(started, lambda _: run, finish)


def run_new_job(
    workflow: Workflow,
    record: JobRecord,
    *,
    variables: Mapping[str, Any],
    max_parallel: int,
    keep_failed: bool = False,
    pool: bool = True,
) -> Effect[JobResult, JobError, PhaseEnv]:
    """Store ``record`` and run the job from scratch; its record follows how it ends."""

    async def create(env: PhaseEnv) -> Success[None]:
        await env.services.store.create_job(record)
        return Success(None)

    created: Effect[None, Never, PhaseEnv] = Effect.from_async(create)
    run = run_workflow(
        workflow,
        job_id=record.job_id,
        variables=variables,
        max_parallel=max_parallel,
        keep_failed=keep_failed,
        pool=pool,
    )
    return created.and_then(lambda _: _tracked(record.job_id, run))


@attrs.frozen
class ResumeRefused:
    """A resume that cannot go ahead, and why (one line)."""

    message: str

    def __str__(self) -> str:
        return self.message


def resume_job(
    workflow: Workflow,
    record: JobRecord,
    *,
    workflow_text: str,
    variables: Mapping[str, Any],
    max_parallel: int,
    force: bool = False,
    retry_failed: bool = False,
    keep_failed: bool = False,
    pool: bool = True,
) -> Effect[JobResult, JobError | ResumeRefused, PhaseEnv]:
    """Continue the job of ``record`` from its events.

    Refused (nothing changed) when the job is complete and nothing is to
    be retried, or when the workflow file changed since the job started,
    unless ``force``. Setup is not re-run if it finished; merged items are
    never re-run; items interrupted while running are reconciled against
    git first; failed items (the dead-letter queue) run again only with
    ``retry_failed``. A changed input is refused by the map phase unless
    ``force``.
    """
    if record.status is JobStatus.COMPLETED and not retry_failed:
        return Effect.fail(ResumeRefused(f"job {record.job_id} is complete: nothing to resume"))
    if workflow_hash(workflow_text) != record.workflow_hash and not force:
        return Effect.fail(
            ResumeRefused(
                f"the workflow file {record.workflow_path} changed since job {record.job_id} "
                "started; resume with --force to run the rest with the new workflow"
            )
        )

    async def load_prior(env: PhaseEnv) -> Success[PriorRun]:
        return Success(
            await load_prior_run(env.services.store, record, retry_failed=retry_failed, force=force)
        )

    prior: Effect[PriorRun, Never, PhaseEnv] = Effect.from_async(load_prior)

    def run(before: PriorRun) -> Effect[JobResult, JobError, PhaseEnv]:
        return _tracked(
            record.job_id,
            run_workflow(
                workflow,
                job_id=record.job_id,
                variables=variables,
                max_parallel=max_parallel,
                keep_failed=keep_failed,
                prior=before,
                pool=pool,
            ),
        )

    return prior.and_then(run)


@attrs.frozen
class JobProgress:
    """A job and how far it is: the ``jobs`` listing and ``status``."""

    record: JobRecord
    total: int
    done: int
    failed: int
    skipped: int
    running: int
    remaining: int

    @property
    def percent(self) -> float:
        finished = self.done + self.failed + self.skipped
        return 100.0 if self.total == 0 else 100.0 * finished / self.total

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "job_id": record.job_id,
            "workflow": record.workflow_name,
            "workflow_path": record.workflow_path,
            "status": str(record.status),
            "job_branch": record.job_branch,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "running": self.running,
            "remaining": self.remaining,
            "percent": round(self.percent, 1),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "duration": round(record.runs_duration, 3),
        }


async def _progress(env: PhaseEnv, record: JobRecord) -> JobProgress:
    counts = await env.services.store.item_counts(record.job_id)
    total = sum(counts.values()) or record.total
    return JobProgress(
        record,
        total=total,
        done=counts.get(ItemStatus.MERGED, 0) + counts.get(ItemStatus.SUCCEEDED, 0),
        failed=counts.get(ItemStatus.FAILED, 0),
        skipped=counts.get(ItemStatus.SKIPPED, 0),
        running=counts.get(ItemStatus.RUNNING, 0),
        remaining=counts.get(ItemStatus.PENDING, 0),
    )


def job_progress(job_id: str) -> Effect[JobProgress, str, PhaseEnv]:
    """One job's progress; failure: no such job (the message says so)."""

    async def read(env: PhaseEnv) -> Result[JobProgress, str]:
        record = await env.services.store.job(job_id)
        if record is None:
            return Failure(f"no job {job_id!r} in this repository")
        return Success(await _progress(env, record))

    return Effect.from_async(read)


def list_jobs(*, resumable_only: bool = False) -> Effect[list[JobProgress], Never, PhaseEnv]:
    """Every job with its progress, newest first (only the not complete ones if asked)."""

    async def read(env: PhaseEnv) -> Success[list[JobProgress]]:
        records = await env.services.store.jobs()
        wanted = [
            record
            for record in records
            if not resumable_only or record.status is not JobStatus.COMPLETED
        ]
        return Success([await _progress(env, record) for record in wanted])

    return Effect.from_async(read)


def list_resumable_jobs() -> Effect[list[JobProgress], Never, PhaseEnv]:
    """Every job that is not complete, with its progress and timings."""
    return list_jobs(resumable_only=True)
