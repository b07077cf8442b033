"""The whole job: setup, map and reduce composed in the job's own worktree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Never

import trio
from returns.result import Success

from effects import BracketError, Effect, Exit, bracket
from effects._service import emit_event
from effects.worktree import create_job_worktree, remove_worktree
from envs.environment import JobContext, MapEnv, PhaseEnv
from envs.protocols import Worktree, WorktreeError
from phases.map_phase import load_work_items, plan_assignments, run_map_phase
from phases.reduce import run_reduce_phase
from phases.results import JobResult, JobStatus, MapResult, PhaseFailure
from phases.setup import SetupOutcome, run_setup_phase
from pure.workflow import Workflow

__all__ = ["JobError", "run_workflow"]

JobError = WorktreeError | BracketError[WorktreeError]


def _now() -> Effect[float, Never, object]:
    return Effect.from_fn(lambda _env: Success(trio.current_time()))


def _status(map_result: MapResult, failure: PhaseFailure | None) -> JobStatus:
    if failure is not None:
        return "failed"
    return "succeeded" if map_result.failed == 0 else "partial"


def _run_phases(
    workflow: Workflow,
    job: JobContext,
    variables: Mapping[str, Any],
    max_parallel: int,
    keep_failed: bool,
    started: float,
) -> Effect[JobResult, Never, MapEnv]:
    def result(
        map_result: MapResult,
        setup: SetupOutcome | None,
        reduce_records: tuple[Any, ...] = (),
        failure: PhaseFailure | None = None,
    ) -> Effect[JobResult, Never, object]:
        return _now().map(
            lambda finished: JobResult(
                job.job_id,
                job.job_branch,
                _status(map_result, failure),
                map_result,
                setup_records=() if setup is None else setup.records,
                reduce_records=reduce_records,
                failure=failure,
                duration=finished - started,
            )
        )

    empty = MapResult(())

    def after_setup(setup: SetupOutcome) -> Effect[JobResult, Never, MapEnv]:
        phase_vars = setup.variables
        planned: Effect[Any, PhaseFailure, MapEnv] = emit_event("phase_started", phase="map")
        items = planned.and_then(lambda _: load_work_items(workflow.map, phase_vars)).and_then(
            lambda document: plan_assignments(workflow.map, document)
        )

        def mapped(assignments: list[Any]) -> Effect[JobResult, Never, MapEnv]:
            announce: Effect[None, Never, MapEnv] = emit_event(
                "map_planned", total=len(assignments), max_parallel=max_parallel
            )
            return announce.and_then(
                lambda _: run_map_phase(
                    workflow,
                    assignments,
                    phase_vars,
                    max_parallel=max_parallel,
                    keep_failed=keep_failed,
                )
            ).and_then(reduce)

        def reduce(map_result: MapResult) -> Effect[JobResult, Never, MapEnv]:
            reduced = run_reduce_phase(workflow.reduce, map_result, phase_vars, job.job_worktree)
            return reduced.and_then(
                lambda outcome: result(map_result, setup, outcome.records)
            ).or_else(lambda failure: result(map_result, setup, failure=failure))

        return items.and_then(mapped).or_else(lambda failure: result(empty, setup, failure=failure))

    setup: Effect[SetupOutcome, PhaseFailure, MapEnv] = run_setup_phase(workflow.setup, variables)
    return setup.and_then(after_setup).or_else(lambda failure: result(empty, None, failure=failure))


def run_workflow(
    workflow: Workflow,
    *,
    job_id: str,
    variables: Mapping[str, Any],
    max_parallel: int,
    keep_failed: bool = False,
) -> Effect[JobResult, JobError, PhaseEnv]:
    """Run a whole job: create its branch and worktree, then setup, map and reduce.

    The job branch ``forkmerge/<job_id>`` starts at the repository's HEAD
    and ends holding the result; the job's worktree is removed on every
    outcome (the branch stays). ``variables`` are the workflow's resolved
    ``env`` values. Success: a :class:`JobResult` (a phase failure is a
    result with status ``failed``, failed items give ``partial``). Failure:
    the job worktree could not be created or removed. Cancellation cancels
    every agent (each releases its worktree), then removes the job worktree.
    """

    def use(worktree: Worktree) -> Effect[JobResult, Never, PhaseEnv]:
        job = JobContext(job_id, worktree.branch, worktree)
        clock: Effect[float, Never, MapEnv] = _now()
        phases = clock.and_then(
            lambda started: _run_phases(
                workflow, job, variables, max_parallel, keep_failed, started
            )
        )
        return phases.local(lambda env: MapEnv.for_job(env, job))

    def release(worktree: Worktree, _exit: Exit[Any, Any]) -> Effect[None, WorktreeError, PhaseEnv]:
        return remove_worktree(worktree, delete_branch=False)

    announce: Effect[None, Never, PhaseEnv] = emit_event(
        "job_started", job_id=job_id, workflow=workflow.name
    )
    job_worktree: Effect[Worktree, WorktreeError, PhaseEnv] = create_job_worktree(job_id)
    run = bracket(job_worktree, use, release).tap(
        lambda result: emit_event(
            "job_finished",
            job_id=job_id,
            status=result.status,
            total=result.map.total,
            successful=result.map.successful,
            failed=result.map.failed,
        )
    )
    return announce.and_then(lambda _: run)
