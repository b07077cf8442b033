"""The whole job: setup, map and reduce composed in the job's own worktree, and recorded.

A job's every step is an event in the job store (phase started/finished,
planned, item started/succeeded/merged/failed), written before the step it
enables is reported done. :func:`run_workflow` runs a new job from scratch
or, given the :class:`PriorRun` of a stopped job, resumes it: finished
phases are not repeated, merged items are not re-run, interrupted items are
reconciled against git first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Never

import attrs
import trio
from returns.result import Failure, Success

from effects import BracketError, Effect, Exit, bracket, race
from effects._service import emit_event
from effects.worktree import create_job_worktree, remove_worktree
from envs.environment import JobContext, MapEnv, PhaseEnv
from envs.pool import PoolMetrics, WorktreePool
from envs.protocols import Worktree, WorktreeError
from phases.map_phase import load_work_items, plan_assignments, run_map_phase
from phases.metrics import live_snapshot
from phases.prior_run import PriorRun, input_hash
from phases.reconcile import reconcile_interrupted
from phases.reduce import run_reduce_phase
from phases.results import JobResult, JobStatus, MapResult, PhaseFailure
from phases.setup import SetupOutcome, run_setup_phase
from pure.job_events import JobEvent, JobPlanned, PhaseFinished, PhaseStarted
from pure.work_planning import WorkAssignment
from pure.workflow import Workflow

__all__ = ["JobError", "record", "run_workflow"]

JobError = WorktreeError | BracketError[WorktreeError]


def _now() -> Effect[float, Never, object]:
    return Effect.from_fn(lambda _env: Success(trio.current_time()))


def record(make: Callable[[float], JobEvent]) -> Effect[None, Never, MapEnv]:
    """Append the event ``make(wall time)`` to the job's log; done once it is stored."""

    async def append(env: MapEnv) -> Success[None]:
        await env.services.store.append(env.job.job_id, make(env.services.clock.now()))
        return Success(None)

    return Effect.from_async(append)


def _status(map_result: MapResult, failure: PhaseFailure | None) -> JobStatus:
    if failure is not None:
        return "failed"
    return "succeeded" if map_result.failed == 0 else "partial"


def _setup(
    workflow: Workflow, variables: Mapping[str, Any], prior: PriorRun
) -> Effect[SetupOutcome, PhaseFailure, MapEnv]:
    """Run setup (recorded), or take a finished setup's outputs from the prior run."""
    if prior.setup_outputs is not None:
        return Effect.pure(SetupOutcome({**variables, **prior.setup_outputs}, (), None))
    captured_names = set(variables)

    def finished(outcome: SetupOutcome) -> Effect[SetupOutcome, Never, MapEnv]:
        # Only what setup added is stored: the workflow env may hold secrets.
        outputs = {k: v for k, v in outcome.variables.items() if k not in captured_names}
        return record(lambda at: PhaseFinished("setup", True, at, outputs)).map(lambda _: outcome)

    def failed(failure: PhaseFailure) -> Effect[Never, PhaseFailure, MapEnv]:
        return record(lambda at: PhaseFinished("setup", False, at)).and_then(
            lambda _: Effect.fail(failure)
        )

    started: Effect[None, Never, MapEnv] = record(lambda at: PhaseStarted("setup", at))
    return (
        started.and_then(lambda _: run_setup_phase(workflow.setup, variables))
        .or_else(failed)
        .and_then(finished)
    )


def _planned(
    workflow: Workflow, variables: Mapping[str, Any], prior: PriorRun
) -> Effect[list[WorkAssignment], PhaseFailure, MapEnv]:
    """Load and plan the items; record the plan, or check it against the prior run's."""

    def check(document: Any) -> Effect[list[WorkAssignment], PhaseFailure, MapEnv]:
        digest = input_hash(document)
        if prior.planned and prior.input_hash not in (None, digest) and not prior.force:
            return Effect.fail(
                PhaseFailure.of_input(
                    "map.input changed since the job started (its content hash differs); "
                    "resume with --force to go on if its work items are still the same",
                )
            )
        planned: Effect[list[WorkAssignment], PhaseFailure, MapEnv] = plan_assignments(
            workflow.map, document
        )
        return planned.and_then(lambda assignments: remember(assignments, digest))

    def remember(
        assignments: list[WorkAssignment], digest: str
    ) -> Effect[list[WorkAssignment], PhaseFailure, MapEnv]:
        keys = tuple(assignment.item_key for assignment in assignments)
        if prior.planned:
            if keys != prior.state.item_keys:
                # Even with --force: an item that changed is another item, and a
                # job's items are fixed when it is planned. Nothing was run.
                old, new = set(prior.state.item_keys), set(keys)
                return Effect.fail(
                    PhaseFailure.of_input(
                        f"the work items differ from those the job was planned with "
                        f"({len(new - old)} new or changed, {len(old - new)} gone); "
                        "start a new job for the new input",
                    )
                )
            return Effect.pure(assignments)

        async def store_plan(env: MapEnv) -> Success[list[WorkAssignment]]:
            store = env.services.store
            await store.append(env.job.job_id, JobPlanned(keys, env.services.clock.now()))
            await store.update_job(env.job.job_id, total=len(keys), input_hash=digest)
            return Success(assignments)

        return Effect.from_async(store_plan)

    return load_work_items(workflow.map, variables).and_then(check)


def _run_phases(
    workflow: Workflow,
    job: JobContext,
    variables: Mapping[str, Any],
    max_parallel: int,
    keep_failed: bool,
    started: float,
    prior: PriorRun,
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
        announce: Effect[None, Never, MapEnv] = emit_event("phase_started", phase="map")

        def mapped(assignments: list[WorkAssignment]) -> Effect[JobResult, PhaseFailure, MapEnv]:
            return reconcile_interrupted(prior, assignments).and_then(
                lambda current: run_map(current, assignments)
            )

        def run_map(
            current: PriorRun, assignments: list[WorkAssignment]
        ) -> Effect[JobResult, Never, MapEnv]:
            to_run = current.to_run(assignments)
            earlier = current.earlier_results(assignments)
            planned: Effect[None, Never, MapEnv] = emit_event(
                "map_planned",
                total=len(assignments),
                to_run=len(to_run),
                max_parallel=max_parallel,
            )
            # A finished map phase (a dead-letter retry) runs its items without
            # opening the phase again.
            map_done = current.phase_done("map")
            scheduled = (
                planned.and_then(
                    lambda _: (
                        Effect.pure(None)
                        if map_done
                        else record(lambda at: PhaseStarted("map", at))
                    )
                )
                .and_then(
                    lambda _: run_map_phase(
                        workflow,
                        to_run,
                        phase_vars,
                        max_parallel=max_parallel,
                        keep_failed=keep_failed,
                        attempts_so_far=current.attempts(),
                    )
                )
                .map(
                    lambda ran: MapResult(
                        tuple(sorted((*earlier, *ran.results), key=lambda r: r.index)),
                        ran.stop_reason,
                        planned=len(assignments),
                    )
                )
            )

            def close_map(map_result: MapResult) -> Effect[None, Never, MapEnv]:
                if map_done:
                    return Effect.pure(None)
                finished = map_result.stop_reason is None
                return record(lambda at: PhaseFinished("map", finished, at))

            # A dead-letter retry after the map phase finished: an item it makes succeed
            # makes a finished reduce run again, so that its summary sees the item.
            retried = {assignment.item_key for assignment in to_run} if map_done else set()
            return scheduled.tap(close_map).and_then(
                lambda map_result: reduce(map_result, current, retried)
            )

        def reduce(
            map_result: MapResult, current: PriorRun, retried: set[str]
        ) -> Effect[JobResult, Never, MapEnv]:
            if map_result.stop_reason is not None:
                return result(
                    map_result, setup, failure=PhaseFailure("map", map_result.stop_reason)
                )
            succeeded_anew = any(
                agent.item_key in retried and agent.succeeded for agent in map_result.results
            )
            if current.phase_done("reduce") and not succeeded_anew:
                return result(map_result, setup)
            reduced = (
                record(lambda at: PhaseStarted("reduce", at))
                .and_then(
                    lambda _: run_reduce_phase(
                        workflow.reduce, map_result, phase_vars, job.job_worktree
                    )
                )
                .or_else(
                    lambda failure: record(lambda at: PhaseFinished("reduce", False, at)).and_then(
                        lambda _: Effect.fail(failure)
                    )
                )
                .tap(lambda _: record(lambda at: PhaseFinished("reduce", True, at)))
            )
            return reduced.and_then(
                lambda outcome: result(map_result, setup, outcome.records)
            ).or_else(lambda failure: result(map_result, setup, failure=failure))

        items = announce.and_then(lambda _: _planned(workflow, phase_vars, prior))
        return items.and_then(mapped).or_else(lambda failure: result(empty, setup, failure=failure))

    return (
        _setup(workflow, variables, prior)
        .and_then(after_setup)
        .or_else(lambda failure: result(empty, None, failure=failure))
    )


def _close_pool(pool: WorktreePool, _exit: Exit[Any, Any]) -> Effect[None, Never, PhaseEnv]:
    """Remove every pooled worktree; a failure is reported (the orphan cleaner retries it),
    never raised over the job's own result."""

    async def close(env: PhaseEnv) -> Success[None]:
        closed = await pool.close()
        if isinstance(closed, Failure):
            env.services.events.emit({"event": "cleanup_failed", "error": str(closed.failure())})
        if env.services.live_metrics is not None:
            env.services.live_metrics.flush()
        return Success(None)

    return Effect.from_async(close)


def _metrics_observer(env: PhaseEnv, job_id: str) -> Callable[[PoolMetrics], None] | None:
    """Publishes the pool's figures as the running job's metrics, if the env wants them."""
    publisher = env.services.live_metrics
    if publisher is None:
        return None
    executor = env.services.executor

    def observe(metrics: PoolMetrics) -> None:
        publisher.publish(live_snapshot(job_id, metrics, processes_running=executor.running))

    return observe


METRICS_FLUSH_SECONDS = 1.0
"""How often a running job's figures are published anew and written."""


def _publishing_metrics(
    phases: Effect[JobResult, Never, PhaseEnv], job_id: str, pool: WorktreePool
) -> Effect[JobResult, Never, PhaseEnv]:
    """``phases``, with the job's figures published and written every
    :data:`METRICS_FLUSH_SECONDS` while they run: the pool publishes on every change,
    but the publisher holds back a change that comes too soon after its last write,
    and processes start and end between the pool's changes."""

    def publish(env: PhaseEnv) -> Success[None]:
        observe = _metrics_observer(env, job_id)
        if observe is not None and env.services.live_metrics is not None:
            observe(pool.metrics)
            env.services.live_metrics.flush()
        return Success(None)

    def ticks() -> Effect[JobResult, Never, PhaseEnv]:
        tick: Effect[None, Never, PhaseEnv] = Effect.sleep(METRICS_FLUSH_SECONDS)
        return tick.and_then(lambda _: Effect.from_fn(publish)).and_then(lambda _: ticks())

    def choose(env: PhaseEnv) -> Effect[JobResult, Never, PhaseEnv]:
        if env.services.live_metrics is None:
            return phases
        return race([phases, ticks()]).map_err(_never)

    asked: Effect[PhaseEnv, Never, PhaseEnv] = Effect.ask()
    return asked.and_then(choose)


def _never(error: object) -> Never:  # pragma: no cover - _close_pool never fails
    raise AssertionError(f"closing the worktree pool failed as a value: {error}")


def run_workflow(
    workflow: Workflow,
    *,
    job_id: str,
    variables: Mapping[str, Any],
    max_parallel: int,
    keep_failed: bool = False,
    prior: PriorRun | None = None,
    pool: bool = True,
) -> Effect[JobResult, JobError, PhaseEnv]:
    """Run a job: create (or reuse) its branch and worktree, then setup, map and reduce.

    The job branch ``forkmerge/<job_id>`` starts at the repository's HEAD
    and ends holding the result; the job's worktree is removed on every
    outcome (the branch stays). ``variables`` are the workflow's resolved
    ``env`` values. The job's record must already be in the store; every
    step is recorded there. With ``prior`` (a resumed job) finished phases
    and items are not repeated. Agents borrow their worktrees from a pool of
    ``max_parallel`` worktrees reused across items (``pool=False``: one
    worktree per agent, created and removed); the pool is emptied when the
    job ends, however it ends. Success: a :class:`JobResult` (a phase
    failure or an error-policy stop is a result with status ``failed``;
    failed items give ``partial``). Failure: the job worktree could not be
    created or removed. Cancellation cancels every agent (each releases its
    worktree), then removes the job worktree.
    """
    before = prior if prior is not None else PriorRun()

    def use(worktree: Worktree) -> Effect[JobResult, Never, PhaseEnv]:
        job = JobContext(job_id, worktree.branch, worktree)

        def open_pool(env: PhaseEnv) -> WorktreePool:
            return WorktreePool(
                env.services.worktrees,
                job_id,
                worktree.branch,
                max_parallel,
                reuse=pool,
                guard=env.services.limits,
                observer=_metrics_observer(env, job_id),
            )

        def with_pool(worktrees: WorktreePool) -> Effect[JobResult, Never, PhaseEnv]:
            clock: Effect[float, Never, MapEnv] = _now()
            phases = clock.and_then(
                lambda started: _run_phases(
                    workflow, job, variables, max_parallel, keep_failed, started, before
                )
            ).map(lambda result: attrs.evolve(result, pool=worktrees.metrics))
            return _publishing_metrics(
                phases.local(lambda env: MapEnv.for_job(env, job, worktrees)), job_id, worktrees
            )

        opened: Effect[WorktreePool, Never, PhaseEnv] = Effect.asks(open_pool)
        return bracket(opened, with_pool, _close_pool).recover(_never)

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
