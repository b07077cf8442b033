"""One map agent: a worktree for one work item, its commands, its commit and its merge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Never

import attrs
import trio
from returns.result import Success

from effects import BracketError, Effect, Timeout
from effects._service import emit_event
from effects.commands import CommandsOutcome, StepFailure, execute_commands
from effects.merge import merge_to_parent
from effects.worktree import WorktreeTimes, commit_changes, worktree_session
from envs.environment import MapEnv
from envs.protocols import MergeConflict, MergeOutcome, Worktree, WorktreeError
from phases.results import AgentFailure, AgentResult
from pure.work_planning import WorkAssignment
from pure.workflow import MergeConfig, Workflow
from pure.workflow_resolution import agent_timeout, command_timeout

__all__ = ["agent_variables", "execute_agent"]

AgentError = AgentFailure | StepFailure | WorktreeError | MergeConflict | Timeout
MERGE_RESOLUTION_ATTEMPTS = 3
OnMerged = Callable[[str | None, MergeOutcome], Effect[None, Never, MapEnv]]


def agent_variables(assignment: WorkAssignment, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The variables an agent's commands see: the job's, plus the item and its identity."""
    return {
        **variables,
        "item": assignment.item,
        "item_key": assignment.item_key,
        "item_id": assignment.item_key,
        "item_index": assignment.index,
    }


def _now() -> Effect[float, Never, object]:
    return Effect.from_fn(lambda _env: Success(trio.current_time()))


def _to_agent_failure(error: object) -> AgentFailure:
    if isinstance(error, AgentFailure):
        return error
    if isinstance(error, StepFailure):
        return AgentFailure("step", str(error), step=error)
    if isinstance(error, MergeConflict):
        return AgentFailure("merge_conflict", str(error), paths=error.paths)
    if isinstance(error, Timeout):
        return AgentFailure("timeout", f"agent {error}")
    return AgentFailure("worktree", str(error))


def _commit(worktree: Worktree, message: str) -> Effect[str | None, WorktreeError, MapEnv]:
    return commit_changes(worktree, message)


def _merge(
    worktree: Worktree, merge: MergeConfig | None, variables: Mapping[str, Any]
) -> Effect[MergeOutcome, AgentError, MapEnv]:
    """Merge into the job branch; on a conflict, let the workflow's ``merge:`` steps resolve it.

    The ``merge:`` steps run in the agent's worktree with
    ``${merge.source_branch}`` (the agent branch), ``${merge.target_branch}``
    (the job branch) and ``${merge.worktree}``; they are expected to bring
    the job branch into the agent branch and resolve the conflict. Whatever
    they leave uncommitted is committed, and the merge is tried again. Other
    agents keep merging meanwhile, so a resolved branch may conflict anew:
    the steps get :data:`MERGE_RESOLUTION_ATTEMPTS` chances in all.
    """
    first: Effect[MergeOutcome, AgentError, MapEnv] = merge_to_parent(worktree)
    if merge is None:
        return first
    steps = merge.steps
    timeout = merge.timeout

    def resolve(error: AgentError, attempt: int) -> Effect[MergeOutcome, AgentError, MapEnv]:
        if not isinstance(error, MergeConflict) or attempt > MERGE_RESOLUTION_ATTEMPTS:
            return Effect.fail(error)
        merge_vars = {
            **variables,
            "merge": {
                "source_branch": error.source_branch,
                "target_branch": error.target_branch,
                "worktree": worktree.name,
            },
        }
        run_steps: Effect[CommandsOutcome, AgentError, MapEnv] = execute_commands(
            steps, worktree, merge_vars
        )
        if timeout is not None:
            run_steps = run_steps.timeout(timeout)
        retried: Effect[MergeOutcome, AgentError, MapEnv] = run_steps.and_then(
            lambda _: commit_changes(worktree, "forkmerge: resolve merge")
        ).and_then(lambda _: merge_to_parent(worktree))
        return retried.or_else(lambda again: resolve(again, attempt + 1))

    return first.or_else(lambda error: resolve(error, 1))


def _agent(
    assignment: WorkAssignment,
    workflow: Workflow,
    variables: Mapping[str, Any],
    *,
    keep_failed: bool = False,
    on_merged: OnMerged | None = None,
) -> Effect[AgentResult, Never, MapEnv]:
    """The agent effect, built afresh per run (its timings are per run)."""
    map_config = workflow.map
    agent_vars = agent_variables(assignment, variables)
    agent_limit = agent_timeout(map_config)
    message = f"forkmerge: {assignment.worktree_name}"

    def use(
        worktree: Worktree,
    ) -> Effect[tuple[CommandsOutcome, str | None, MergeOutcome], AgentError, MapEnv]:
        session_vars = {
            **agent_vars,
            "worktree": {"name": worktree.name, "path": worktree.path, "branch": worktree.branch},
        }
        commands: Effect[CommandsOutcome, AgentError, MapEnv] = execute_commands(
            map_config.agent_template,
            worktree,
            session_vars,
            timeout_of=lambda index, _step: command_timeout(map_config, index),
        )

        def merged_by(
            outcome: CommandsOutcome, commit: str | None
        ) -> Effect[tuple[CommandsOutcome, str | None, MergeOutcome], AgentError, MapEnv]:
            merge = _merge(worktree, workflow.merge, session_vars)
            if on_merged is not None:
                hook = on_merged
                merge = merge.tap(lambda merged: hook(commit, merged))
            return merge.map(lambda merged: (outcome, commit, merged))

        return commands.and_then(
            lambda outcome: _commit(worktree, message).and_then(
                lambda commit: merged_by(outcome, commit)
            )
        )

    times = WorktreeTimes()
    session: Effect[Any, Any, MapEnv] = worktree_session(
        assignment.worktree_name,
        use,
        keep=lambda exit_: keep_failed and exit_.kind == "failure",
        times=times,
    )
    if agent_limit is not None:
        session = session.timeout(agent_limit)
    grace = map_config.timeout_config.cleanup_grace_period_secs
    # A stopped command gets ``cleanup_grace_period_secs`` to exit before it is killed.
    session = session.local(
        lambda env: attrs.evolve(env, config=attrs.evolve(env.config, kill_grace=grace))
    )

    def finish(started: float) -> Effect[AgentResult, Never, MapEnv]:
        def succeeded(done: Any) -> Effect[AgentResult, Never, object]:
            outcome, commit, merged = done
            return _now().map(
                lambda finished: AgentResult(
                    assignment.index,
                    assignment.item_key,
                    assignment.item,
                    assignment.worktree_name,
                    "merged" if merged.commit is not None else "unchanged",
                    commit=commit,
                    merge_commit=merged.commit,
                    records=outcome.records,
                    started=started,
                    finished=finished,
                    worktree_seconds=(times.acquire_seconds, times.release_seconds),
                )
            )

        def failed(error: object) -> Effect[AgentResult, Never, MapEnv]:
            if isinstance(error, BracketError):
                # The worktree could not be removed: report it, but judge the
                # item by what its agent did (its merge may have landed).
                cleanup: Effect[None, Never, MapEnv] = emit_event(
                    "cleanup_failed",
                    item_key=assignment.item_key,
                    error=str(error.release_error),
                )
                outcome = error.outcome
                if outcome.kind == "success":
                    return cleanup.and_then(lambda _: succeeded(outcome.value))
                return cleanup.and_then(lambda _: failed(outcome.error))
            failure = _to_agent_failure(error)
            return _now().map(
                lambda finished: AgentResult(
                    assignment.index,
                    assignment.item_key,
                    assignment.item,
                    assignment.worktree_name,
                    "failed",
                    failure=failure,
                    started=started,
                    finished=finished,
                    worktree_seconds=(times.acquire_seconds, times.release_seconds),
                )
            )

        return session.and_then(succeeded).or_else(failed)

    def report(result: AgentResult) -> Effect[None, Never, MapEnv]:
        return emit_event(
            "agent_finished",
            item_key=result.item_key,
            index=result.index,
            status=result.status,
            duration=round(result.duration, 3),
            error=None if result.failure is None else result.failure.summary,
        )

    started: Effect[None, Never, MapEnv] = emit_event(
        "agent_started", item_key=assignment.item_key, index=assignment.index
    )
    return started.and_then(lambda _: _now()).and_then(finish).tap(report)


def execute_agent(
    assignment: WorkAssignment,
    workflow: Workflow,
    variables: Mapping[str, Any],
    *,
    keep_failed: bool = False,
    on_merged: OnMerged | None = None,
) -> Effect[AgentResult, Never, MapEnv]:
    """Run the agent template for one item in its own worktree and merge its work.

    ``bracket(acquire worktree, run commands -> commit -> merge, release
    worktree)``: the worktree (from the job's pool, or created for the
    agent) is given back on every outcome (kept after a failure only with
    ``keep_failed``). The agent's timeout (``agent_timeout_secs`` /
    ``timeout_config``) cancels the agent, which releases its worktree.
    Never fails: a failed item is an ``AgentResult`` with status ``failed``
    and an :class:`AgentFailure`; defects and cancellation propagate.
    ``on_merged(commit, merge)`` runs right after a successful merge, while
    the worktree is still held: the scheduler records the merge there, so a
    crash during the cleanup cannot lose it. The result records how long the
    worktree took to acquire and release.
    """
    return Effect.defer(
        lambda: _agent(
            assignment, workflow, variables, keep_failed=keep_failed, on_merged=on_merged
        )
    )
