"""The workflow's ``error_policy`` is applied by the map phase, not just parsed.

Every test runs the same scripted job twice, with the policy and with the
default (``on_item_failure: dlq``), and shows what the policy changes: which
agents start and when (trio's MockClock), how the job ends, and what the
job store holds.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Mapping

import attrs
import pytest
import trio
import trio.testing

from envs.environment import PhaseEnv
from envs.job_records import JobStatus
from envs.mock import MockKit, mock_kit, mock_phase_env
from envs.protocols import CommandSpec
from phases.jobs import list_resumable_jobs, resume_job
from phases.results import JobResult
from pure.job_events import (
    ItemFailed,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    PhaseFinished,
)
from pure.job_state import ItemStatus
from tests.phases.helpers import record_for, run_new, workflow

JOB = "job-1"

BASE = """\
name: policy
map:
  input: items.json
  agent_template:
    - shell: "work ${{item.name}}"
  max_parallel: {max_parallel}
reduce:
  - shell: "summarize ${{map.successful}}"
"""


def name_of(spec: CommandSpec) -> str:
    """The item name a ``work`` command is about (its quoted last word)."""
    return spec.argv[-1].split()[-1].strip("'")


def is_work(spec: CommandSpec) -> bool:
    return spec.argv[-1].startswith("work ")


def for_item(name: str) -> Callable[[CommandSpec], bool]:
    def matches(spec: CommandSpec) -> bool:
        return is_work(spec) and name_of(spec) == name

    return matches


@attrs.frozen
class Ran:
    """A job run under a policy, and the mocks that watched it."""

    job: JobResult
    kit: MockKit
    env: PhaseEnv
    origin: float

    def starts(self, name: str | None = None) -> list[float]:
        """When the ``work`` commands (of item ``name``, or all) started, in seconds of the job."""
        return [
            run.started - self.origin
            for run in self.kit.executor.runs
            if is_work(run.spec) and (name is None or name_of(run.spec) == name)
        ]

    def started_items(self) -> list[str]:
        return [name_of(run.spec) for run in self.kit.executor.runs if is_work(run.spec)]

    def reduced(self) -> bool:
        return any(run.spec.argv[-1].startswith("summarize") for run in self.kit.executor.runs)

    async def statuses(self) -> dict[int, ItemStatus]:
        return {row.index: row.status for row in await self.kit.store.items(JOB)}

    async def dead_letters(self) -> list[int]:
        rows = await self.kit.store.items(JOB, statuses=[ItemStatus.FAILED])
        return [row.index for row in rows]

    def record_status(self) -> JobStatus:
        return self.kit.store.records[JOB].status

    def log(self) -> list[object]:
        return list(self.kit.store.logs[JOB])


def flow(policy: str = "", *, max_parallel: int = 1) -> str:
    return BASE.format(max_parallel=max_parallel) + policy


async def run_flow(
    text: str,
    *,
    count: int,
    failing: Collection[int] = (),
    flaky: Mapping[int, int] | None = None,
    duration: float = 1.0,
    fail_duration: float | None = None,
) -> Ran:
    """Run ``count`` items ``item0``... whose ``work`` takes ``duration`` seconds.

    Items in ``failing`` always fail (after ``fail_duration``, default
    ``duration``); item ``i`` in ``flaky`` fails its first ``flaky[i]``
    attempts. The others write ``<name>.txt`` and are merged.
    """
    document = json.dumps([{"name": f"item{i}"} for i in range(count)])
    env = mock_phase_env(files={"items.json": document.encode()})
    kit = mock_kit(env)
    failed_for = duration if fail_duration is None else fail_duration
    for index, times in (flaky or {}).items():
        kit.executor.on(
            for_item(f"item{index}"), exit_code=1, stdout="flaky", duration=failed_for, times=times
        )
    for index in failing:
        kit.executor.on(for_item(f"item{index}"), exit_code=1, stdout="broken", duration=failed_for)
    kit.executor.on(
        is_work, duration=duration, effect=kit.writes(lambda s: name_of(s) + ".txt", "done")
    )
    wf = workflow(text)
    assert isinstance(wf.map.max_parallel, int)
    origin = trio.current_time()
    job = await run_new(env, wf, job_id=JOB, max_parallel=wf.map.max_parallel)
    return Ran(job, kit, env, origin)


# --- the default: dlq --------------------------------------------------------------------------


async def test_default_a_failed_item_goes_to_the_dead_letter_queue_and_the_others_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran = await run_flow(flow(max_parallel=2), count=5, failing={2})
    assert sorted(ran.started_items()) == [f"item{i}" for i in range(5)]
    assert ran.job.status == "partial" and ran.job.failure is None
    assert (ran.job.map.successful, ran.job.map.failed) == (4, 1)
    assert ran.reduced()
    assert await ran.statuses() == {
        0: ItemStatus.MERGED,
        1: ItemStatus.MERGED,
        2: ItemStatus.FAILED,
        3: ItemStatus.MERGED,
        4: ItemStatus.MERGED,
    }
    assert await ran.dead_letters() == [2]
    counts = await ran.kit.store.item_counts(JOB)
    assert counts[ItemStatus.FAILED] == 1 and counts[ItemStatus.MERGED] == 4
    assert counts[ItemStatus.SKIPPED] == 0
    failure = next(e for e in ran.log() if isinstance(e, ItemFailed))
    assert failure.exit_code == 1 and failure.output is not None and "broken" in failure.output
    assert failure.step is not None and "work" in failure.step
    # every item was processed: the job is complete, its failure waits in the dead-letter queue
    assert ran.record_status() is JobStatus.COMPLETED
    assert not any(isinstance(e, ItemRetried) for e in ran.log())


# --- stop rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        ("error_policy:\n  on_item_failure: stop\n", "on_item_failure: stop"),
        ("continue_on_failure: false\n", "continue_on_failure: false"),
        ("error_policy:\n  continue_on_failure: false\n", "continue_on_failure: false"),
    ],
)
async def test_stop_after_the_first_failure_lets_running_agents_finish_and_starts_no_more(
    autojump_clock: trio.testing.MockClock, policy: str, rule: str
) -> None:
    default = await run_flow(flow(max_parallel=2), count=6, failing={1}, fail_duration=0.5)
    assert len(default.starts()) == 6 and default.job.status == "partial"

    ran = await run_flow(flow(policy, max_parallel=2), count=6, failing={1}, fail_duration=0.5)
    # item1 fails at 0.5; item0 (started at 0) runs on to 1.0; nothing else starts
    assert sorted(ran.started_items()) == ["item0", "item1"]
    item0 = next(r for r in ran.kit.executor.runs if is_work(r.spec) and name_of(r.spec) == "item0")
    assert not item0.cancelled and item0.ended == pytest.approx(ran.origin + 1.0)
    assert ran.job.status == "failed"
    assert ran.job.failure is not None and ran.job.failure.phase == "map"
    assert rule in ran.job.failure.message
    assert ran.job.map.stop_reason is not None and rule in ran.job.map.stop_reason
    assert [r.status for r in ran.job.map.results] == ["merged", "failed"]
    assert not ran.reduced()
    assert ran.record_status() is JobStatus.FAILED
    statuses = await ran.statuses()
    assert statuses[0] is ItemStatus.MERGED and statuses[1] is ItemStatus.FAILED
    assert [statuses[i] for i in range(2, 6)] == [ItemStatus.PENDING] * 4
    assert PhaseFinished("map", False) in [
        attrs.evolve(e, at=None) for e in ran.log() if isinstance(e, PhaseFinished)
    ]
    resumable = (await list_resumable_jobs().run(ran.env)).unwrap()
    assert [(p.record.job_id, p.remaining, p.failed) for p in resumable] == [(JOB, 4, 1)]


async def test_a_stopped_job_resumes_with_the_items_that_never_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    text = flow("error_policy:\n  on_item_failure: stop\n", max_parallel=2)
    ran = await run_flow(text, count=6, failing={1}, fail_duration=0.5)
    wf = workflow(text)
    resumed = await resume_job(
        wf, record_for(wf, JOB), workflow_text="", variables={}, max_parallel=2
    ).run(ran.env)
    job = resumed.unwrap()
    assert sorted(ran.started_items()[2:]) == ["item2", "item3", "item4", "item5"]
    assert job.status == "partial"  # item1 is still in the dead-letter queue
    assert [r.status for r in job.map.results] == ["merged", "failed"] + ["merged"] * 4
    assert ran.reduced()
    assert await ran.dead_letters() == [1]


@pytest.mark.parametrize(
    "policy", ["max_failures: 2\n", "error_policy:\n  max_failures: 2\n"], ids=["top", "nested"]
)
async def test_max_failures_stops_at_the_nth_failure(
    autojump_clock: trio.testing.MockClock, policy: str
) -> None:
    default = await run_flow(flow(), count=8, failing={1, 3, 5})
    assert len(default.starts()) == 8 and default.job.status == "partial"

    ran = await run_flow(flow(policy), count=8, failing={1, 3, 5})
    assert ran.started_items() == ["item0", "item1", "item2", "item3"]
    assert ran.job.status == "failed" and ran.job.failure is not None
    assert "2 items failed (max_failures: 2)" in ran.job.failure.message
    assert ran.record_status() is JobStatus.FAILED
    assert await ran.dead_letters() == [1, 3]
    statuses = await ran.statuses()
    assert [statuses[i] for i in range(4, 8)] == [ItemStatus.PENDING] * 4


async def test_max_failures_not_reached_lets_the_job_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran = await run_flow(flow("max_failures: 2\n"), count=6, failing={4})
    assert len(ran.starts()) == 6
    assert ran.job.status == "partial" and ran.job.failure is None and ran.reduced()


async def test_failure_threshold_stops_once_the_failed_fraction_is_exceeded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    default = await run_flow(flow(), count=10, failing={0, 1})
    assert len(default.starts()) == 10

    ran = await run_flow(flow("failure_threshold: 0.3\n"), count=10, failing={0, 1})
    # judged from the 5th finished item on (2/5 = 40% > 30%), not at item0's 100%
    assert ran.started_items() == [f"item{i}" for i in range(5)]
    assert ran.job.status == "failed" and ran.job.failure is not None
    assert "40% of finished items failed (failure_threshold: 0.3)" in ran.job.failure.message
    statuses = await ran.statuses()
    assert [statuses[i] for i in range(5, 10)] == [ItemStatus.PENDING] * 5
    assert ran.record_status() is JobStatus.FAILED


async def test_failure_threshold_not_exceeded_lets_the_job_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran = await run_flow(
        flow("error_policy:\n  failure_threshold: 0.3\n"), count=10, failing={0, 9}
    )
    assert len(ran.starts()) == 10  # 1/5 then 2/10: never above 30%
    assert ran.job.status == "partial" and ran.job.failure is None


# --- retry -------------------------------------------------------------------------------------

RETRY = """\
error_policy:
  on_item_failure: retry
  retry_config:
    max_attempts: 3
{backoff}"""


@pytest.mark.parametrize(
    ("backoff", "starts"),
    [
        # item1 fails 1-2, waits 2, fails 4-5, waits 2, succeeds 7-8
        ("    backoff: fixed\n    initial_delay: 2s\n", [1.0, 4.0, 7.0]),
        # waits 1 then 3 (initial 1 s, multiplier 3)
        ("    backoff:\n      exponential: {initial: 1s, multiplier: 3}\n", [1.0, 3.0, 7.0]),
    ],
    ids=["fixed", "exponential"],
)
async def test_retry_runs_a_flaky_item_again_after_the_backoff(
    autojump_clock: trio.testing.MockClock, backoff: str, starts: list[float]
) -> None:
    default = await run_flow(flow(), count=3, flaky={1: 2})
    assert default.starts("item1") == [1.0] and default.job.status == "partial"
    assert await default.dead_letters() == [1]

    ran = await run_flow(flow(RETRY.format(backoff=backoff)), count=3, flaky={1: 2})
    assert ran.starts("item1") == pytest.approx(starts)
    assert ran.starts("item2") == pytest.approx([starts[-1] + 1.0])
    assert ran.job.status == "succeeded" and ran.record_status() is JobStatus.COMPLETED
    assert ran.job.map.results[1].attempts == 3
    rows = {row.index: row for row in await ran.kit.store.items(JOB)}
    assert rows[1].status is ItemStatus.MERGED and rows[1].attempts == 3
    assert rows[1].last_error is None
    assert "item1.txt" in ran.kit.worktrees.branch_files(ran.job.job_branch)

    key = rows[1].item_key
    mine = [e for e in ran.log() if getattr(e, "item_key", None) == key]
    kinds = [type(e).__name__ for e in mine]
    assert kinds == [
        "ItemStarted",
        "ItemFailed",
        "ItemRetried",
        "ItemStarted",
        "ItemFailed",
        "ItemRetried",
        "ItemStarted",
        "ItemSucceeded",
        "ItemMerged",
    ]
    assert [e.attempt for e in mine if isinstance(e, ItemStarted)] == [1, 2, 3]
    # the wall times of the events show the same waits
    retried = [e.at for e in mine if isinstance(e, ItemRetried)]
    restarted = [e.at for e in mine if isinstance(e, ItemStarted)][1:]
    delays = [
        later - earlier
        for earlier, later in zip(retried, restarted, strict=True)
        if earlier is not None and later is not None
    ]
    waits = [later - (earlier + 1.0) for earlier, later in itertools.pairwise(starts)]
    assert len(delays) == 2 and delays == pytest.approx(waits)
    retrying = ran.kit.events.where(event="agent_retrying")
    assert [(e["attempt"], e["index"]) for e in retrying] == [(2, 1), (3, 1)]
    assert not any(isinstance(e, ItemRetried) for e in default.log())


@pytest.mark.parametrize(
    ("policy", "starts"),
    [
        (RETRY.format(backoff="    backoff: fixed\n    initial_delay: 5s\n"), [0.0, 6.0, 12.0]),
        # no retry_config: the default one (3 attempts, exponential from 1 s, multiplier 2)
        ("error_policy:\n  on_item_failure: retry\n", [0.0, 2.0, 5.0]),
    ],
    ids=["configured", "default-config"],
)
async def test_an_item_that_keeps_failing_goes_to_the_dead_letter_queue_after_max_attempts(
    autojump_clock: trio.testing.MockClock, policy: str, starts: list[float]
) -> None:
    ran = await run_flow(flow(policy), count=2, failing={0})
    assert ran.starts("item0") == pytest.approx(starts)
    assert ran.job.status == "partial"
    rows = {row.index: row for row in await ran.kit.store.items(JOB)}
    assert rows[0].status is ItemStatus.FAILED and rows[0].attempts == 3
    assert await ran.dead_letters() == [0]
    assert sum(isinstance(e, ItemRetried) for e in ran.log()) == 2
    assert sum(isinstance(e, ItemFailed) for e in ran.log()) == 3


async def test_retried_attempts_do_not_count_toward_stop_rules(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = RETRY.format(backoff="    backoff: fixed\n    initial_delay: 1s\n") + (
        "  max_failures: 1\n"
    )
    ran = await run_flow(flow(policy), count=4, flaky={0: 2, 1: 1})
    assert ran.job.status == "succeeded"  # three failed attempts, no failed item
    assert len(ran.starts()) == 4 + 3


# --- skip --------------------------------------------------------------------------------------


async def test_skip_marks_the_failed_item_skipped_and_keeps_it_out_of_the_dead_letter_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    default = await run_flow(flow(), count=4, failing={1})
    assert await default.dead_letters() == [1]

    ran = await run_flow(flow("on_item_failure: skip\n"), count=4, failing={1})
    assert len(ran.starts()) == 4 and ran.starts("item1") == [1.0]  # not retried
    statuses = await ran.statuses()
    assert statuses[1] is ItemStatus.SKIPPED
    assert [statuses[i] for i in (0, 2, 3)] == [ItemStatus.MERGED] * 3
    assert await ran.dead_letters() == []
    counts = await ran.kit.store.item_counts(JOB)
    assert (counts[ItemStatus.SKIPPED], counts[ItemStatus.FAILED]) == (1, 0)
    rows = await ran.kit.store.items(JOB, statuses=[ItemStatus.SKIPPED])
    assert [row.skip_reason for row in rows] == ["on_item_failure: skip"]
    skipped = [e for e in ran.log() if isinstance(e, ItemSkipped)]
    assert [e.item_key for e in skipped] == [rows[0].item_key]
    assert ran.reduced()


async def test_skipped_items_do_not_count_toward_max_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    default = await run_flow(flow("max_failures: 1\n"), count=5, failing={0, 2})
    assert default.started_items() == ["item0"] and default.job.status == "failed"

    ran = await run_flow(flow("on_item_failure: skip\nmax_failures: 1\n"), count=5, failing={0, 2})
    assert len(ran.starts()) == 5
    assert ran.job.failure is None and ran.reduced()
    counts = await ran.kit.store.item_counts(JOB)
    assert (counts[ItemStatus.SKIPPED], counts[ItemStatus.MERGED]) == (2, 3)


# --- circuit breaker ---------------------------------------------------------------------------

BREAKER = """\
error_policy:
  circuit_breaker:
    failure_threshold: {failures}
    success_threshold: {successes}
    timeout: {timeout}s
    half_open_requests: {probes}
"""


def breaker(failures: int, successes: int, timeout: float, probes: int) -> str:
    return BREAKER.format(failures=failures, successes=successes, timeout=timeout, probes=probes)


async def test_circuit_breaker_holds_new_items_back_until_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    default = await run_flow(flow(), count=5, failing={0, 1})
    assert default.starts() == [0.0, 1.0, 2.0, 3.0, 4.0]

    ran = await run_flow(flow(breaker(2, 1, 10, 1)), count=5, failing={0, 1})
    # open at 2.0 (two failures in a row); the probe item2 starts at 12 and closes it
    assert ran.starts() == pytest.approx([0.0, 1.0, 12.0, 13.0, 14.0])
    assert ran.job.status == "partial" and ran.job.failure is None  # not a stop rule
    assert await ran.dead_letters() == [0, 1]


async def test_a_failed_probe_opens_the_circuit_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran = await run_flow(flow(breaker(2, 1, 10, 1)), count=5, failing={0, 1, 2})
    # the probe item2 runs 12-13 and fails: open again until 23
    assert ran.starts() == pytest.approx([0.0, 1.0, 12.0, 23.0, 24.0])
    assert ran.job.status == "partial"


async def test_half_open_circuit_runs_at_most_half_open_requests_probes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    default = await run_flow(flow(max_parallel=3), count=8, failing={0}, fail_duration=0.5)
    assert default.starts() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.5, 2.0]

    policy = breaker(1, 2, 5, 1)
    ran = await run_flow(flow(policy, max_parallel=3), count=8, failing={0}, fail_duration=0.5)
    # open at 0.5 until 5.5 (items 1 and 2, already running, finish meanwhile); then one
    # probe at a time (5.5-6.5, 6.5-7.5); the second success closes it and three start at once
    assert ran.starts() == pytest.approx([0.0, 0.0, 0.0, 5.5, 6.5, 7.5, 7.5, 7.5])
    assert ran.started_items()[3:5] == ["item3", "item4"]
    assert ran.kit.executor.peak_running == 3
    assert ran.job.status == "partial"


async def test_an_open_circuit_holds_an_items_retry_back_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = (
        "error_policy:\n"
        "  on_item_failure: retry\n"
        "  retry_config:\n"
        "    max_attempts: 3\n"
        "    backoff: fixed\n"
        "    initial_delay: 2s\n"
        "  circuit_breaker:\n"
        "    failure_threshold: 1\n"
        "    success_threshold: 1\n"
        "    timeout: 10s\n"
        "    half_open_requests: 1\n"
    )
    ran = await run_flow(
        flow(policy, max_parallel=2), count=3, failing={0}, flaky={2: 2}, fail_duration=0.5
    )
    # item0 fails at 0.5, 3.0 and finally 5.5: the circuit opens until 15.5. item2 (after
    # item1, 0-1) fails at 1.5 and 4.0; its third attempt, due at 6.0, waits for 15.5.
    assert ran.starts("item0") == pytest.approx([0.0, 2.5, 5.0])
    assert ran.starts("item2") == pytest.approx([1.0, 3.5, 15.5])
    assert ran.job.map.results[2].status == "merged"
