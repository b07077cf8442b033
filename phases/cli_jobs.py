"""The command line's job subcommands: jobs, status, resume, dlq, events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

import attrs
import trio
from returns.result import Failure

from envs.environment import DEFAULT_AGENT_COMMAND
from envs.job_lock import JobLock, lock_holder
from envs.job_records import JobRecord
from envs.limits import ResourceLimits
from envs.local import StateLayout, state_layout
from envs.orphans import KnownJob, known_jobs
from envs.store import SqliteJobStore
from phases.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Interrupted,
    UsageError,
    finish_run,
    job_env,
    job_events,
    prepare,
    resume_hint,
    run_effect,
)
from phases.jobs import JobProgress, ResumeRefused, resume_job
from phases.metrics import load_run_metrics, save_run_metrics, worktree_usage
from phases.orphan_sweep import sweep_finished_jobs
from pure.job_events import ItemFailed, ItemSkipped, unstructure_event
from pure.job_state import ItemStatus

__all__ = [
    "ResumeOptions",
    "dlq_list_command",
    "dlq_purge_command",
    "dlq_show_command",
    "events_command",
    "jobs_command",
    "resume_command",
    "status_command",
]

T = TypeVar("T")


def _with_store(layout: StateLayout, work: Callable[[SqliteJobStore], Coroutine[Any, Any, T]]) -> T:
    with layout.open_store() as store:
        return trio.run(work, store)


async def _record(store: SqliteJobStore, job_id: str) -> JobRecord:
    record = await store.job(job_id)
    if record is None:
        raise UsageError(f"no job {job_id!r} in this repository (see: python -m phases jobs)")
    return record


async def _progress(store: SqliteJobStore, record: JobRecord) -> JobProgress:
    counts = await store.item_counts(record.job_id)
    return JobProgress(
        record,
        total=sum(counts.values()) or record.total,
        done=counts.get(ItemStatus.MERGED, 0) + counts.get(ItemStatus.SUCCEEDED, 0),
        failed=counts.get(ItemStatus.FAILED, 0),
        skipped=counts.get(ItemStatus.SKIPPED, 0),
        running=counts.get(ItemStatus.RUNNING, 0),
        remaining=counts.get(ItemStatus.PENDING, 0),
    )


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def jobs_command(repo: str, state_dir: str | None, *, as_json: bool, out: TextIO) -> int:
    """``jobs``: every job of the repository, newest first, with its progress."""
    layout = state_layout(repo, state_dir)

    async def read(store: SqliteJobStore) -> list[JobProgress]:
        return [await _progress(store, record) for record in await store.jobs()]

    listed = _with_store(layout, read)
    if as_json:
        out.write(json.dumps([job.to_json() for job in listed], indent=2) + "\n")
        return EXIT_OK
    if not listed:
        out.write("no jobs in this repository\n")
    for job in listed:
        record = job.record
        out.write(
            f"{record.job_id}  {record.status:<11}  {job.done + job.failed + job.skipped}/"
            f"{job.total} ({job.percent:.0f}%), {job.failed} failed  "
            f"{_when(record.created_at)}  {record.runs_duration:.1f} s\n"
        )
    return EXIT_OK


def _live_line(figures: dict[str, Any]) -> str:
    """The running job's pool, as its process last published it."""
    return (
        f"  now: {figures.get('agents_running', 0)} agents and "
        f"{figures.get('processes_running', 0)} commands running, "
        f"{figures.get('pool_slots', 0)} pool worktrees; "
        f"{figures.get('pool_hits', 0)} reused, {figures.get('pool_misses', 0)} created, "
        f"{figures.get('cleanups', 0)} released so far\n"
    )


def _agents_running(job: JobProgress, running: bool, figures: dict[str, Any] | None) -> int:
    """Agents holding a worktree now: the running pool's figure, else the store's count."""
    if not running:
        return 0
    if figures is not None and figures.get("live"):
        return int(figures.get("agents_running", 0))
    return job.running


def status_command(
    repo: str, state_dir: str | None, job_id: str, *, as_json: bool, out: TextIO
) -> int:
    """``status JOB``: one job's progress, phases, dead-letter count and runner."""
    layout = state_layout(repo, state_dir)

    async def read(
        store: SqliteJobStore,
    ) -> tuple[JobProgress, dict[str, str], dict[str, KnownJob]]:
        record = await _record(store, job_id)
        phases = {name: str(status) for name, status in (await store.phases(job_id)).items()}
        return await _progress(store, record), phases, await known_jobs(store)

    job, phases, known = _with_store(layout, read)
    holder = lock_holder(layout.locks, job_id)
    run_figures = load_run_metrics(layout, job_id)
    usage = worktree_usage(layout, known)
    payload = {
        **job.to_json(),
        "phases": phases,
        "dead_letter": job.failed,
        "runner_pid": None if holder is None else holder.pid,
        "metrics": {
            "running": holder is not None,
            "agents_running": _agents_running(job, holder is not None, run_figures),
            "worktrees": usage["jobs"].get(job_id, {"worktrees": 0, "active": 0, "bytes": 0}),
            "repository_worktrees": usage["worktrees"],
            "repository_worktree_bytes": usage["bytes"],
            "last_run": run_figures,
        },
    }
    if as_json:
        out.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_OK
    record = job.record
    out.write(
        f"job {record.job_id} ({record.workflow_name}): {record.status}\n"
        f"  items: {job.total} total, {job.done} done, {job.failed} failed, "
        f"{job.skipped} skipped, {job.running} running, {job.remaining} remaining "
        f"({job.percent:.0f}%)\n"
        f"  phases: {', '.join(f'{k} {v}' for k, v in phases.items()) or 'none started'}\n"
        f"  branch: {record.job_branch}\n"
        f"  time: {record.runs_duration:.1f} s over all runs; created {_when(record.created_at)}\n"
    )
    if holder is not None:
        out.write(f"  running now in process {holder.pid}\n")
        if run_figures is not None and run_figures.get("live"):
            out.write(_live_line(run_figures))
    elif record.status != "completed":
        out.write(f"  resume with: {resume_hint(job_id, layout.repository)}\n")
    return EXIT_OK


@attrs.frozen
class ResumeOptions:
    """What ``resume`` (and ``dlq retry``) was asked to do."""

    job_id: str
    repo: str
    state_dir: str | None = None
    force: bool = False
    retry_failed: bool = False
    max_parallel: int | None = None
    json: bool = False
    merge: bool = False


def resume_command(options: ResumeOptions, out: TextIO, err: TextIO) -> int:
    """``resume JOB``: continue a stopped job; prints what ``run`` prints."""
    layout = state_layout(options.repo, options.state_dir)
    with layout.open_store() as store:
        record = trio.run(_record, store, options.job_id)
        saved = record.options
        # `is None`, not `or`: an explicit --max-parallel 0 is refused, not ignored.
        max_parallel = (
            options.max_parallel if options.max_parallel is not None else saved.get("max_parallel")
        )
        prepared = prepare(record.workflow_path, saved.get("profile"), max_parallel)
        agent_command = tuple(saved.get("agent_command") or DEFAULT_AGENT_COMMAND)
        with (
            JobLock(layout.locks, options.job_id),
            job_events(layout, options.job_id, quiet=options.json, err=err) as events,
        ):
            sweep_finished_jobs(layout, trio.run(known_jobs, store), err)
            limits = ResourceLimits(**saved.get("limits", {}))
            env = job_env(
                layout, store, prepared, agent_command, events, limits, job_id=options.job_id
            )
            effect = resume_job(
                prepared.workflow,
                record,
                workflow_text=prepared.text,
                variables=prepared.env_values,
                max_parallel=prepared.max_parallel,
                force=options.force,
                retry_failed=options.retry_failed,
                keep_failed=bool(saved.get("keep_failed")),
                pool=bool(saved.get("pool", True)),
            )
            try:
                result = run_effect(effect, env)
            except Interrupted:
                err.write(
                    f"interrupted: job {options.job_id} stopped again; resume it with:\n"
                    f"  {resume_hint(options.job_id, layout.repository)}\n"
                )
                return EXIT_INTERRUPTED
    if isinstance(result, Failure):
        error = result.failure()
        if isinstance(error, ResumeRefused):
            raise UsageError(str(error))
        err.write(f"error: {error}\n")
        return EXIT_FAILED
    save_run_metrics(layout, result.unwrap())
    return finish_run(
        result.unwrap(), json_output=options.json, merge=options.merge, repo=options.repo, out=out
    )


def dlq_list_command(
    repo: str, state_dir: str | None, job_id: str, *, as_json: bool, out: TextIO
) -> int:
    """``dlq list JOB``: the items that failed for good, with attempts and error summary."""
    layout = state_layout(repo, state_dir)

    async def read(store: SqliteJobStore) -> list[dict[str, Any]]:
        await _record(store, job_id)
        rows = await store.items(job_id, statuses=[ItemStatus.FAILED])
        return [
            {
                "item_key": row.item_key,
                "index": row.index,
                "attempts": row.attempts,
                "error": row.last_error,
            }
            for row in rows
        ]

    entries = _with_store(layout, read)
    if as_json:
        out.write(json.dumps(entries, indent=2) + "\n")
    elif not entries:
        out.write(f"the dead-letter queue of job {job_id} is empty\n")
    for entry in [] if as_json else entries:
        out.write(
            f"{entry['item_key']}  item {entry['index']}, {entry['attempts']} attempts: "
            f"{entry['error']}\n"
        )
    return EXIT_OK


def dlq_show_command(repo: str, state_dir: str | None, job_id: str, item: str, out: TextIO) -> int:
    """``dlq show JOB ITEM``: the last failure of one item (ITEM: its key or its index)."""
    layout = state_layout(repo, state_dir)

    async def read(store: SqliteJobStore) -> tuple[Any, ItemFailed | None]:
        await _record(store, job_id)
        rows = await store.items(job_id)
        chosen = next((r for r in rows if r.item_key == item or str(r.index) == item), None)
        if chosen is None:
            raise UsageError(f"job {job_id} has no item {item!r} (give its key or its index)")
        failures = [
            event
            for event in await store.events(job_id)
            if isinstance(event, ItemFailed) and event.item_key == chosen.item_key
        ]
        return chosen, failures[-1] if failures else None

    row, failure = _with_store(layout, read)
    out.write(f"item {row.item_key} (index {row.index}): {row.status}, {row.attempts} attempts\n")
    if failure is None:
        out.write("  no failure recorded\n")
        return EXIT_OK
    out.write(f"  error: {failure.error_summary}\n")
    if failure.failure_kind:
        out.write(f"  kind: {failure.failure_kind}\n")
    if failure.step:
        out.write(f"  step: {failure.step}\n")
    if failure.exit_code is not None:
        out.write(f"  exit code: {failure.exit_code}\n")
    if failure.output:
        out.write(
            "  output (end):\n" + "".join(f"    {line}\n" for line in failure.output.splitlines())
        )
    return EXIT_OK


def dlq_purge_command(repo: str, state_dir: str | None, job_id: str, out: TextIO) -> int:
    """``dlq purge JOB``: give up on the failed items (they become skipped, never retried)."""
    layout = state_layout(repo, state_dir)

    async def purge(store: SqliteJobStore) -> int:
        await _record(store, job_id)
        rows = await store.items(job_id, statuses=[ItemStatus.FAILED])
        now = time.time()
        reason = "purged from the dead-letter queue"
        await store.append_many(job_id, [ItemSkipped(row.item_key, reason, now) for row in rows])
        return len(rows)

    # An unknown job (whose id may hold a "/") is refused before its lock file is made.
    _with_store(layout, lambda store: _record(store, job_id))
    with JobLock(layout.locks, job_id):
        count = _with_store(layout, purge)
    out.write(f"purged {count} items from the dead-letter queue of job {job_id}\n")
    return EXIT_OK


def events_command(
    repo: str, state_dir: str | None, job_id: str, *, follow: bool, out: TextIO
) -> int:
    """``events JOB``: the job's events as JSON lines; ``--follow`` waits for new ones
    while a process runs the job."""
    layout = state_layout(repo, state_dir)

    async def stream(store: SqliteJobStore) -> None:
        await _record(store, job_id)
        seen = 0
        while True:
            for number, event in await store.events_since(job_id, seen):
                out.write(json.dumps({"seq": number, **unstructure_event(event)}) + "\n")
                seen = number
            out.flush()
            if not follow:
                return
            runner_gone = lock_holder(layout.locks, job_id) is None
            if runner_gone and not await store.events_since(job_id, seen):
                return
            await trio.sleep(0.5)

    _with_store(layout, stream)
    return EXIT_OK
