"""The command line's subcommands: validate, plan, run. Exit codes 0, 1, 2.

Every user mistake (bad workflow, unknown profile, not a repository,
missing input) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as random_tokens
import shlex
import signal
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO, TypeVar

import attrs
import trio
from returns.result import Failure, Result, Success

from effects import Effect
from effects._cancellation import raise_unwrapped
from envs.console import ConsoleProgress
from envs.environment import DEFAULT_AGENT_COMMAND, PhaseEnv
from envs.event_log import EventLog, FanoutSink
from envs.job_lock import JobLock
from envs.limits import ResourceLimits
from envs.live_metrics import LiveMetricsFile
from envs.local import StateLayout, local_env, state_layout
from envs.orphans import known_jobs
from envs.protocols import EventSink, JobStore
from envs.user_repository import committed_file_exists, merge_into_current_branch
from phases.jobs import new_job_record, run_new_job
from phases.metrics import metrics_path, save_run_metrics
from phases.orphan_sweep import sweep_finished_jobs
from phases.results import JobResult
from pure.dependency_analysis import analyze_dependencies
from pure.interpolation import interpolate
from pure.step_commands import safe_relative_path
from pure.work_planning import plan_work
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow
from pure.workflow_resolution import (
    effective_env,
    env_text,
    resolve_max_parallel,
    secret_names,
    secret_values,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "RunOptions",
    "UsageError",
    "describe_agent_command",
    "load_workflow",
    "plan_command",
    "run_command",
    "validate_command",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")
E = TypeVar("E")


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


@attrs.frozen
class RunOptions:
    """What ``run`` was asked to do."""

    workflow_path: str
    repo: str
    max_parallel: int | None = None
    agent_command: tuple[str, ...] | None = None
    profile: str | None = None
    merge: bool = False
    json: bool = False
    keep_failed: bool = False
    state_dir: str | None = None
    pool: bool = True
    limits: ResourceLimits = attrs.field(factory=ResourceLimits)


def load_workflow(path: str) -> Workflow:
    """Read and parse a workflow file; :class:`UsageError` listing every problem."""
    return read_workflow(path)[0]


def read_workflow(path: str) -> tuple[Workflow, str]:
    """The parsed workflow and its text; :class:`UsageError` listing every problem."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the workflow: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: the workflow is not UTF-8 text ({error.reason})") from None
    parsed = parse_workflow(text, source=path)
    if isinstance(parsed, Failure):
        raise UsageError(str(parsed.failure()))
    workflow: Workflow = parsed.unwrap()
    return workflow, text


def validate_command(path: str, out: TextIO) -> int:
    """``validate WORKFLOW``: parse and report, exit 0 or 2."""
    workflow = load_workflow(path)
    steps = len(workflow.map.agent_template)
    out.write(
        f"{path}: valid workflow {workflow.name!r}: {len(workflow.setup.steps)} setup, "
        f"{steps} agent and {len(workflow.reduce)} reduce steps\n"
    )
    return EXIT_OK


def _resolved_env(
    workflow: Workflow, profile: str | None
) -> tuple[dict[str, str], tuple[str, ...]]:
    env = effective_env(workflow, profile)
    if isinstance(env, Failure):
        raise UsageError(str(env.failure()))
    # ``value: "${GITHUB_TOKEN}"`` takes the variable from forkmerge's own environment.
    values = {
        name: interpolate(text, os.environ, context="text")
        for name, text in env_text(env.unwrap()).items()
    }
    hidden = secret_names(workflow)
    secrets = {*secret_values(workflow), *(values[name] for name in hidden if name in values)}
    return values, tuple(sorted(secrets))


def _max_parallel(workflow: Workflow, env: Mapping[str, str], override: int | None) -> int:
    if override is not None:
        if override < 1:
            raise UsageError(f"--max-parallel must be at least 1, found {override}")
        return override
    resolved = resolve_max_parallel(workflow, {**os.environ, **env})
    if isinstance(resolved, Failure):
        raise UsageError(str(resolved.failure()))
    count: int = resolved.unwrap()
    return count


def _check_input(workflow: Workflow, repo: str) -> None:
    """Refuse early an input file that the job could never see."""
    text = workflow.map.input.strip()
    if workflow.setup.steps or "$" in text or any(char.isspace() for char in text):
        return  # produced by setup, interpolated, or a command: known only at run time
    relative = safe_relative_path(text)
    if isinstance(relative, Failure):
        raise UsageError(f"{workflow.source}: map.input: {relative.failure()}")
    if not committed_file_exists(repo, relative.unwrap()):
        where = os.path.join(repo, relative.unwrap())
        state = "is not committed" if os.path.exists(where) else "does not exist"
        raise UsageError(
            f"{workflow.source}: map.input file {text!r} {state} in the repository "
            "(jobs start from the committed HEAD: commit it first)"
        )


def _job_id(workflow: Workflow) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", workflow.name.lower()).strip("-")[:40] or "job"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{slug}-{stamp}-{random_tokens.token_hex(2)}"


def plan_command(path: str, repo: str, out: TextIO) -> int:
    """``plan WORKFLOW``: show the setup batches and the work assignments; run nothing."""
    workflow = load_workflow(path)
    env, _ = _resolved_env(workflow, None)
    max_parallel = _max_parallel(workflow, env, None)
    out.write(f"workflow {workflow.name!r}: at most {max_parallel} agents at once\n")
    if workflow.setup.steps:
        batches = analyze_dependencies(workflow.setup.steps).parallel_batches()
        out.write(f"setup: {len(workflow.setup.steps)} steps in {len(batches)} batches\n")
        for number, batch in enumerate(batches, 1):
            out.write(f"  batch {number}: steps {', '.join(str(i + 1) for i in batch)}\n")
    text = workflow.map.input.strip()
    candidate = os.path.join(repo, text)
    if "$" in text or not os.path.isfile(candidate):
        out.write(f"map input {text!r} is produced at run time (a command or a setup output)\n")
        return EXIT_OK
    try:
        with open(candidate, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, ValueError) as error:
        raise UsageError(f"{candidate}: cannot read the map input as JSON: {error}") from None
    planned = plan_work(document, workflow.map)
    if isinstance(planned, Failure):
        raise UsageError(f"{workflow.source}: {planned.failure()}")
    assignments = planned.unwrap()
    out.write(f"map: {len(assignments)} items\n")
    for assignment in assignments:
        item = json.dumps(assignment.item, ensure_ascii=False)
        shown = item if len(item) <= 80 else item[:77] + "..."
        out.write(f"  {assignment.index:4d} {assignment.worktree_name}  {shown}\n")
    return EXIT_OK


def summary_text(result: JobResult, merged: str | None = None) -> str:
    """The plain-text summary ``run`` and ``resume`` print."""
    lines = [
        f"job {result.job_id}: {result.status} — {result.map.successful}/{result.map.total} "
        f"items succeeded, {result.map.failed} failed ({result.duration:.1f} s)",
        f"job branch: {result.job_branch}",
    ]
    if result.failure is not None:
        lines.append(f"error: {result.failure}")
    for agent in result.map.results:
        if agent.failure is not None:
            lines.append(f"  item {agent.index} ({agent.worktree_name}): {agent.failure.message}")
    if merged is not None:
        lines.append(merged)
    return "\n".join(lines) + "\n"


@attrs.frozen
class Prepared:
    """A workflow ready to run: parsed, its env resolved for the profile, its parallelism."""

    workflow: Workflow
    text: str
    env_values: Mapping[str, str]
    secrets: tuple[str, ...]
    max_parallel: int


def prepare(path: str, profile: str | None, max_parallel: int | None) -> Prepared:
    """Load the workflow and resolve what a run needs; :class:`UsageError` on any problem."""
    workflow, text = read_workflow(path)
    env_values, secrets = _resolved_env(workflow, profile)
    return Prepared(
        workflow, text, env_values, secrets, _max_parallel(workflow, env_values, max_parallel)
    )


def job_env(
    layout: StateLayout,
    store: JobStore,
    prepared: Prepared,
    agent_command: tuple[str, ...],
    events: EventSink,
    limits: ResourceLimits | None = None,
    *,
    job_id: str,
) -> PhaseEnv:
    """The production environment of job ``job_id`` in ``layout``'s repository; its pool's
    figures are published to the job's metrics file while it runs."""
    return local_env(
        layout.repository,
        store=store,
        agent_command=agent_command,
        workflow_env=prepared.env_values,
        secrets=prepared.secrets,
        worktrees_dir=layout.worktrees,
        events=events,
        limits=limits,
        live_metrics=LiveMetricsFile(metrics_path(layout, job_id)),
    )


class Interrupted(Exception):
    """The job was stopped by SIGINT or SIGTERM (its worktrees were released)."""


async def _run_until_signal(effect: Effect[T, E, PhaseEnv], env: PhaseEnv) -> Result[T, E]:
    interrupted = False
    results: list[Result[T, E]] = []

    async def watch(signals: Any, job_scope: trio.CancelScope) -> None:
        nonlocal interrupted
        async for _ in signals:
            interrupted = True
            job_scope.cancel()
            return

    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as job_scope:
                    nursery.start_soon(watch, signals, job_scope)
                    results.append(await effect.run(env))
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_unwrapped(group)  # a defect: raise it as itself
    if interrupted or not results:
        raise Interrupted()
    return results[0]


def run_effect(effect: Effect[T, E, PhaseEnv], env: PhaseEnv) -> Result[T, E]:
    """Run a job's effect; Ctrl-C or SIGTERM cancels it (releasing every worktree and
    recording the job as interrupted) and raises :class:`Interrupted`."""
    return trio.run(_run_until_signal, effect, env)


def resume_hint(job_id: str, repo: str) -> str:
    return f"python -m phases resume {job_id} --repo {shlex.quote(repo)}"


def finish_run(job: JobResult, *, json_output: bool, merge: bool, repo: str, out: TextIO) -> int:
    """Print the job's summary or JSON, merge into the user's branch if asked; the exit code."""
    merged: str | None = None
    merge_refused = False
    if merge and job.status != "succeeded":
        merged = f"not merged: the job is {job.status}; merge {job.job_branch} by hand if wanted"
    elif merge:
        outcome = trio.run(merge_into_current_branch, repo, job.job_branch)
        merge_refused = isinstance(outcome, Failure)
        merged = (
            outcome.unwrap() if isinstance(outcome, Success) else f"not merged: {outcome.failure()}"
        )
    if json_output:
        payload = job.to_json()
        if merged is not None:
            payload["merge"] = merged
        out.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        out.write(summary_text(job, merged))
    if job.status == "succeeded":
        return EXIT_FAILED if merge_refused else EXIT_OK
    if (
        job.failure is not None
        and job.failure.phase == "map"
        and "map.input" in job.failure.message
    ):
        return EXIT_USAGE
    return EXIT_FAILED


@contextlib.contextmanager
def job_events(
    layout: StateLayout, job_id: str, *, quiet: bool, err: TextIO
) -> Iterator[EventSink]:
    """The job's event sinks: its bounded JSON-lines log, and the progress display
    unless ``quiet`` (``--json``). The log is closed (flushed) on the way out."""
    with EventLog(layout.logs, name=job_id) as log:
        yield log if quiet else FanoutSink(ConsoleProgress(err), log)


def run_command(options: RunOptions, out: TextIO, err: TextIO) -> int:
    """``run WORKFLOW``: run a new job, print its summary (or JSON), exit 0, 1, 2 or 130."""
    prepared = prepare(options.workflow_path, options.profile, options.max_parallel)
    per_job = options.limits.max_worktrees_per_job
    if per_job is not None and per_job < prepared.max_parallel:
        # A job never holds more worktrees than it runs agents: cap both.
        prepared = attrs.evolve(prepared, max_parallel=per_job)
    _check_input(prepared.workflow, options.repo)
    layout = state_layout(options.repo, options.state_dir)
    agent_command = options.agent_command or DEFAULT_AGENT_COMMAND
    job_id = _job_id(prepared.workflow)
    record = new_job_record(
        prepared.workflow,
        job_id=job_id,
        workflow_path=os.path.abspath(options.workflow_path),
        workflow_text=prepared.text,
        repository=layout.repository,
        options={
            "max_parallel": options.max_parallel,
            "agent_command": list(agent_command),
            "profile": options.profile,
            "keep_failed": options.keep_failed,
            "pool": options.pool,
            "limits": attrs.asdict(options.limits),
        },
        now=time.time(),
    )
    with (
        layout.open_store() as store,
        JobLock(layout.locks, job_id),
        job_events(layout, job_id, quiet=options.json, err=err) as events,
    ):
        sweep_finished_jobs(layout, trio.run(known_jobs, store), err)
        env = job_env(layout, store, prepared, agent_command, events, options.limits, job_id=job_id)
        effect = run_new_job(
            prepared.workflow,
            record,
            variables=prepared.env_values,
            max_parallel=prepared.max_parallel,
            keep_failed=options.keep_failed,
            pool=options.pool,
        )
        try:
            result = run_effect(effect, env)
        except Interrupted:
            err.write(
                f"interrupted: job {job_id} stopped and its worktrees were removed; "
                f"resume it with:\n  {resume_hint(job_id, layout.repository)}\n"
            )
            return EXIT_INTERRUPTED
    if isinstance(result, Failure):
        err.write(f"error: {result.failure()}\n")
        return EXIT_FAILED
    save_run_metrics(layout, result.unwrap())
    return finish_run(
        result.unwrap(),
        json_output=options.json,
        merge=options.merge,
        repo=options.repo,
        out=out,
    )


def describe_agent_command(text: str) -> tuple[str, ...]:
    """Split ``--agent-cmd`` like a shell would; :class:`UsageError` when it is empty or bad."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise UsageError(f"--agent-cmd: cannot split {text!r}: {error}") from None
    if not words:
        raise UsageError("--agent-cmd must name a program")
    return words
