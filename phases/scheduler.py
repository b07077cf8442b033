"""The map phase's scheduler: N workers, the error policy, retries, and the job's event log.

``max_parallel`` workers pull assignments one at a time. Before each start
a worker asks :func:`pure.error_policy.admit` (start, wait for the circuit
breaker, or stop); each item runs :func:`phases.agent.execute_agent`, is
retried as ``on_item_failure: retry`` says, and ends merged, unchanged,
failed (dead-letter queue) or skipped. Every step of an item is an event
appended to the job store *before* the next step is taken, so a crash at
any point leaves a log that a resume can fold and reconcile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Never

import attrs
import trio
from returns.result import Success

from effects import Effect
from effects._cancellation import raise_unwrapped
from effects._effect import RawOutcome, from_raw, interpret
from envs.environment import MapEnv
from envs.protocols import MergeOutcome
from phases.agent import OnMerged, execute_agent
from phases.results import AgentResult, AgentStatus, MapResult
from pure.error_policy import (
    PolicyState,
    Stop,
    WaitUntil,
    admit,
    circuit_at,
    failed_item_disposition,
    initial_state,
    item_finished,
    retry_decision,
    started,
)
from pure.job_events import (
    ItemFailed,
    ItemMerged,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemSucceeded,
    JobEvent,
)
from pure.work_planning import WorkAssignment
from pure.workflow import Workflow

__all__ = ["record_event", "schedule_agents"]

OUTPUT_IN_EVENTS = 500


async def record_event(env: MapEnv, event: JobEvent) -> None:
    """Append ``event`` to the job's log; returns once it is stored."""
    await env.services.store.append(env.job.job_id, event)


def _failure_event(result: AgentResult, now: float) -> ItemFailed:
    failure = result.failure
    assert failure is not None, "only failed results have failure events"
    step = failure.step
    return ItemFailed(
        result.item_key,
        failure.summary[:300],
        at=now,
        failure_kind=failure.kind,
        step=None if step is None else step.display,
        exit_code=None if step is None else step.exit_code,
        output=None if step is None else step.output[-OUTPUT_IN_EVENTS:],
    )


@attrs.define
class _Run:
    """The mutable state of one scheduling run (one trio task group, single-threaded)."""

    env: MapEnv
    workflow: Workflow
    variables: Mapping[str, Any]
    keep_failed: bool
    attempts_so_far: Mapping[str, int]
    policy_state: PolicyState
    results: dict[int, AgentResult] = attrs.field(factory=dict)
    finished: trio.Event = attrs.field(factory=trio.Event)

    def now(self) -> float:
        return self.env.services.clock.now()

    def _item_finished(self, result: AgentResult) -> None:
        self.policy_state = item_finished(
            self.workflow.error_policy, self.policy_state, result.succeeded, trio.current_time()
        )
        self.results[result.index] = result
        self.finished.set()
        self.finished = trio.Event()

    def _recorder(self, key: str, landed: list[MergeOutcome]) -> OnMerged:
        """The hook that records an item's merge right after it lands (before cleanup)."""

        def on_merged(commit: str | None, merge: MergeOutcome) -> Effect[None, Never, MapEnv]:
            async def store(env: MapEnv) -> Success[None]:
                # Shielded: once the merge is in git, its record must follow it.
                with trio.CancelScope(shield=True):
                    commits = () if commit is None else (commit,)
                    now = self.now()
                    # Both or neither; an agent that changed nothing merges trivially ("").
                    await env.services.store.append_many(
                        env.job.job_id,
                        [
                            ItemSucceeded(key, commits, at=now),
                            ItemMerged(key, merge.commit or "", at=now),
                        ],
                    )
                landed.append(merge)
                return Success(None)

            return Effect.from_async(store)

        return on_merged

    def _timeout_action(self, result: AgentResult) -> str | None:
        """``timeout_config.timeout_action`` when the item failed by a time limit."""
        failure = result.failure
        timed_out = failure is not None and (
            failure.kind == "timeout" or (failure.step is not None and failure.step.timed_out)
        )
        return self.workflow.map.timeout_config.timeout_action if timed_out else None

    async def run_item(self, assignment: WorkAssignment) -> AgentResult:
        policy = self.workflow.error_policy
        attempt = self.attempts_so_far.get(assignment.item_key, 0) + 1
        key = assignment.item_key
        while True:
            await record_event(self.env, ItemStarted(key, attempt, at=self.now()))
            landed: list[MergeOutcome] = []
            agent = execute_agent(
                assignment,
                self.workflow,
                self.variables,
                # A kept worktree would block the next attempt: keep only the last.
                keep_failed=self.keep_failed and not retry_decision(policy, attempt).retry,
                on_merged=self._recorder(key, landed),
            )
            _, outcome = await interpret(agent, self.env)
            result: AgentResult = attrs.evolve(outcome, attempts=attempt)
            if landed:
                if not result.succeeded:
                    # Cancelled or timed out after its merge landed: the item is merged.
                    merge = landed[0]
                    status: AgentStatus = "merged" if merge.commit is not None else "unchanged"
                    result = attrs.evolve(
                        result, status=status, merge_commit=merge.commit, failure=None
                    )
                return result
            await record_event(self.env, _failure_event(result, self.now()))
            decision = retry_decision(policy, attempt)
            action = self._timeout_action(result)
            if action == "fail":
                # timeout_action: fail — a timed-out item stops the whole job.
                reason = f"item {result.index} timed out (timeout_action: fail)"
                if self.policy_state.stop_reason is None:
                    self.policy_state = attrs.evolve(self.policy_state, stop_reason=reason)
                return result
            if not decision.retry:
                if action == "skip" or failed_item_disposition(policy) == "skip":
                    reason = "on_item_failure: skip"
                    await record_event(
                        self.env, ItemSkipped(result.item_key, reason, at=self.now())
                    )
                return result
            await record_event(self.env, ItemRetried(result.item_key, at=self.now()))
            self.env.services.events.emit(
                {
                    "event": "agent_retrying",
                    "item_key": result.item_key,
                    "index": result.index,
                    "attempt": attempt + 1,
                    "delay": decision.delay,
                }
            )
            await trio.sleep(decision.delay)
            await self._hold_retry()
            attempt += 1

    async def _hold_retry(self) -> None:
        """Before an item's next attempt, wait while the circuit breaker is open (other
        items' failures opened it): a retry is held back like a new item. (The item
        already runs, so it is no half-open probe; a stop rule does not cancel it.)"""
        policy = self.workflow.error_policy
        while self.policy_state.stop_reason is None:
            now = trio.current_time()
            if circuit_at(policy, self.policy_state, now) != "open":
                return
            decision = admit(policy, self.policy_state, now)
            assert isinstance(decision, WaitUntil)  # open: admit names when it half-opens
            with trio.move_on_at(decision.time):
                await self.finished.wait()

    async def worker(self, source: Iterator[WorkAssignment]) -> None:
        policy = self.workflow.error_policy
        while True:
            decision = admit(policy, self.policy_state, trio.current_time())
            if isinstance(decision, Stop):
                return
            if isinstance(decision, WaitUntil):
                # Wake at the time the breaker names, or earlier when an item finishes.
                with trio.move_on_at(decision.time):
                    await self.finished.wait()
                continue
            assignment = next(source, None)
            if assignment is None:
                return
            self.policy_state = started(policy, self.policy_state, trio.current_time())
            self._item_finished(await self.run_item(assignment))


def schedule_agents(
    workflow: Workflow,
    assignments: Sequence[WorkAssignment],
    variables: Mapping[str, Any],
    *,
    max_parallel: int,
    keep_failed: bool = False,
    attempts_so_far: Mapping[str, int] | None = None,
) -> Effect[MapResult, Never, MapEnv]:
    """Run the agents of ``assignments`` under the workflow's error policy; never fails.

    At most ``max_parallel`` agents run at once, and assignments are taken
    in order as workers free up. ``attempts_so_far`` (a resumed job's) makes
    attempt numbers continue. When a stop rule of the error policy holds, no
    further agent starts, the running ones finish, and the result's
    ``stop_reason`` says why; the items not started stay pending in the
    job's log. Cancellation cancels every running agent (each releases its
    worktree) and propagates.
    """
    if max_parallel < 1:
        raise ValueError(f"`max_parallel` must be at least 1, found {max_parallel!r}")

    async def run(env: MapEnv) -> RawOutcome:
        state = _Run(
            env,
            workflow,
            variables,
            keep_failed,
            attempts_so_far or {},
            initial_state(len(assignments)),
        )
        source = iter(assignments)
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(min(max_parallel, max(1, len(assignments)))):
                    nursery.start_soon(state.worker, source)
        except BaseExceptionGroup as group:
            raise_unwrapped(group)
        ordered = tuple(state.results[index] for index in sorted(state.results))
        return True, MapResult(
            ordered, stop_reason=state.policy_state.stop_reason, planned=len(assignments)
        )

    return from_raw(run)
