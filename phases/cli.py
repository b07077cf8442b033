"""The command line's subcommands: validate, plan, run. Exit codes 0, 1, 2.

Every user mistake (bad workflow, unknown profile, not a repository,
missing input) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import secrets as random_tokens
import shlex
import signal
import time
from collections.abc import Mapping
from typing import Any, TextIO

import attrs
import trio
from returns.result import Failure, Result, Success

from envs.console import ConsoleProgress, NullSink
from envs.git_repository import NotARepositoryError
from envs.local import local_env
from envs.mock_store import MemoryJobStore
from envs.protocols import EventSink
from envs.user_repository import committed_file_exists, merge_into_current_branch
from phases.results import JobResult
from phases.workflow import run_workflow
from pure.dependency_analysis import analyze_dependencies
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


def load_workflow(path: str) -> Workflow:
    """Read and parse a workflow file; :class:`UsageError` listing every problem."""
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
    return workflow


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
    values = env_text(env.unwrap())
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


def _summary(result: JobResult, merged: str | None) -> str:
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


async def _run_job(options: RunOptions, workflow: Workflow, events: EventSink) -> Result[Any, Any]:
    env_values, secrets = _resolved_env(workflow, options.profile)
    max_parallel = _max_parallel(workflow, env_values, options.max_parallel)
    env = local_env(
        options.repo,
        store=MemoryJobStore(),
        agent_command=options.agent_command or ("claude", "--print"),
        workflow_env=env_values,
        secrets=secrets,
        state_dir=options.state_dir,
        events=events,
    )
    job_id = _job_id(workflow)
    effect = run_workflow(
        workflow,
        job_id=job_id,
        variables=env_values,
        max_parallel=max_parallel,
        keep_failed=options.keep_failed,
    )
    interrupted = False
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def watch_signals(job_scope: trio.CancelScope) -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    job_scope.cancel()
                    return

            with trio.CancelScope() as job_scope:
                nursery.start_soon(watch_signals, job_scope)
                result = await effect.run(env)
            nursery.cancel_scope.cancel()
    if interrupted:
        raise KeyboardInterrupt(job_id)
    return result


def run_command(options: RunOptions, out: TextIO, err: TextIO) -> int:
    """``run WORKFLOW``: run the job, print its summary (or JSON), exit 0, 1 or 2."""
    workflow = load_workflow(options.workflow_path)
    try:
        _check_input(workflow, options.repo)
    except NotARepositoryError as error:
        raise UsageError(str(error)) from None
    events: EventSink = NullSink() if options.json else ConsoleProgress(err)
    try:
        result = trio.run(_run_job, options, workflow, events)
    except KeyboardInterrupt as interrupt:
        err.write(
            f"interrupted: job {interrupt.args[0] if interrupt.args else ''} stopped; "
            "its worktrees were removed\n"
        )
        return 130
    if isinstance(result, Failure):
        err.write(f"error: {result.failure()}\n")
        return EXIT_FAILED
    job: JobResult = result.unwrap()
    merged: str | None = None
    if options.merge and job.status == "succeeded":
        outcome = trio.run(merge_into_current_branch, options.repo, job.job_branch)
        merged = (
            outcome.unwrap() if isinstance(outcome, Success) else f"not merged: {outcome.failure()}"
        )
    if options.json:
        payload = job.to_json()
        if merged is not None:
            payload["merge"] = merged
        out.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        out.write(_summary(job, merged))
    if job.status == "succeeded":
        return EXIT_OK
    if (
        job.failure is not None
        and job.failure.phase == "map"
        and "map.input" in job.failure.message
    ):
        return EXIT_USAGE
    return EXIT_FAILED


def describe_agent_command(text: str) -> tuple[str, ...]:
    """Split ``--agent-cmd`` like a shell would; :class:`UsageError` when it is empty or bad."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise UsageError(f"--agent-cmd: cannot split {text!r}: {error}") from None
    if not words:
        raise UsageError("--agent-cmd must name a program")
    return words
