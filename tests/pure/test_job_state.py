"""Job state: transitions, invalid ones as typed errors, queries, and the fold's invariants."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.job_state import (
    InvalidTransition,
    ItemFailed,
    ItemMerged,
    ItemRecord,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    JobState,
    PhaseFinished,
    PhaseStarted,
    PhaseStatus,
    Progress,
    apply,
    awaiting_merge,
    fold,
    progress,
    record_of,
    remaining,
    try_apply,
    try_fold,
)

PLAN = JobPlanned(("a", "b", "c", "d"), at=1.0)


def status(state: JobState, key: str) -> ItemStatus:
    record = record_of(state, key)
    assert record is not None
    return record.status


def test_the_state_before_any_event() -> None:
    state = JobState()
    assert progress(state) == Progress(0, 0, 0, 0, 0, 0, 100.0)
    assert remaining(state) == [] == awaiting_merge(state)
    assert record_of(state, "a") is None
    assert state.phases_done == frozenset()


def test_a_job_run() -> None:
    state = fold(
        [
            PhaseStarted("setup", at=0.5),
            PhaseFinished("setup"),
            PhaseStarted("map"),
            PLAN,
            ItemStarted("a", 1, at=2.0),
            ItemSucceeded("a", ("c1", "c2"), "done"),
            ItemMerged("a", "m1"),
            ItemStarted("b", 1),
            ItemFailed("b", "exit 1"),
            ItemStarted("c", 1),
            ItemSucceeded("c"),
        ]
    )
    assert record_of(state, "a") == ItemRecord(
        "a", ItemStatus.MERGED, 1, ("c1", "c2"), "done", "m1", None, None
    )
    assert record_of(state, "b") == ItemRecord("b", ItemStatus.FAILED, 1, error="exit 1")
    assert status(state, "c") is ItemStatus.SUCCEEDED
    assert status(state, "d") is ItemStatus.PENDING
    assert progress(state) == Progress(
        total=4, done=2, failed=1, skipped=0, running=0, remaining=1, percent=75.0
    )
    assert remaining(state) == ["d"]
    assert remaining(state, include_failed=True) == ["b", "d"]
    assert awaiting_merge(state) == ["c"]
    assert state.phases == {"setup": PhaseStatus.FINISHED, "map": PhaseStatus.RUNNING}
    assert state.phases_done == frozenset({"setup"})
    assert state.item_keys == ("a", "b", "c", "d")


def test_an_item_running_at_a_crash_is_remaining_and_restarts() -> None:
    crashed = fold([PLAN, ItemStarted("b", 1), ItemStarted("a", 1), ItemSucceeded("a", ("x",))])
    assert remaining(crashed) == ["b", "c", "d"]
    assert progress(crashed).running == 1
    restarted = apply(crashed, ItemStarted("b", 2))
    assert record_of(restarted, "b") == ItemRecord("b", ItemStatus.RUNNING, 2)


def test_retry_failure_after_success_and_skips() -> None:
    state = fold(
        [
            PLAN,
            ItemStarted("a", 1),
            ItemFailed("a", "boom"),
            ItemRetried("a"),
            ItemStarted("a", 2),
            ItemSucceeded("a", ("c",), "ok"),
            ItemFailed("a", "merge conflict"),
            ItemSkipped("b", "circuit open"),
            ItemStarted("c", 1),
            ItemRetried("c"),
            ItemStarted("d", 1),
            ItemSkipped("d", "stopped"),
        ]
    )
    assert record_of(state, "a") == ItemRecord(
        "a", ItemStatus.FAILED, 2, ("c",), "ok", error="merge conflict"
    )
    assert record_of(state, "b") == ItemRecord("b", ItemStatus.SKIPPED, skip_reason="circuit open")
    assert record_of(state, "c") == ItemRecord("c", ItemStatus.PENDING, 1)
    assert status(state, "d") is ItemStatus.SKIPPED
    assert progress(state) == Progress(4, 0, 1, 2, 0, 1, 75.0)
    started_again = apply(state, ItemStarted("c", 2))
    assert record_of(started_again, "c") == ItemRecord("c", ItemStatus.RUNNING, 2)
    skipped_after_failure = apply(state, ItemSkipped("a", "policy skip"))
    assert status(skipped_after_failure, "a") is ItemStatus.SKIPPED


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([ItemStarted("a", 1)], "item-started for item 'a' before the job was planned"),
        ([PLAN, ItemStarted("z", 1)], "item-started for unknown item 'z' (the job has 4 items)"),
        (
            [PLAN, ItemMerged("a", "m")],
            "item-merged for item 'a' needs it succeeded, but it is pending",
        ),
        (
            [PLAN, ItemStarted("a", 1), ItemMerged("a", "m")],
            "item-merged for item 'a' needs it succeeded, but it is running",
        ),
        (
            [
                PLAN,
                ItemStarted("a", 1),
                ItemSucceeded("a"),
                ItemMerged("a", "m"),
                ItemMerged("a", "m"),
            ],
            "item-merged for item 'a' needs it succeeded, but it is merged",
        ),
        (
            [PLAN, ItemSucceeded("a")],
            "item-succeeded for item 'a' needs it running, but it is pending",
        ),
        ([PLAN, ItemFailed("a", "x")], "needs it running or succeeded, but it is pending"),
        ([PLAN, ItemRetried("a")], "needs it running or failed, but it is pending"),
        (
            [PLAN, ItemSkipped("a", "r"), ItemSkipped("a", "r")],
            "item-skipped for item 'a' needs it pending or running or failed, but it is skipped",
        ),
        (
            [PLAN, ItemStarted("a", 1), ItemSucceeded("a"), ItemStarted("a", 2)],
            "item-started for item 'a' needs it pending or running, but it is succeeded",
        ),
        (
            [PLAN, ItemStarted("a", 2)],
            "item-started for item 'a' says attempt 2, but it would be attempt 1",
        ),
        ([PLAN, PLAN], "job-planned again: the job already has 4 items"),
        ([JobPlanned(("a", "b", "a"))], "job-planned lists item 'a' twice"),
        ([PhaseFinished("map")], "phase-finished for phase 'map', which is not started"),
        (
            [PhaseStarted("map"), PhaseFinished("map"), PhaseFinished("map")],
            "phase-finished for phase 'map', which is finished",
        ),
    ],
)
def test_invalid_transitions_are_typed_errors(events: list[JobEvent], message: str) -> None:
    with pytest.raises(InvalidTransition) as caught:
        fold(events)
    assert caught.value.message.endswith(message) or message in caught.value.message
    assert caught.value.position == len(events) - 1
    assert caught.value.event == events[-1]
    assert str(caught.value) == f"{caught.value.message} (event {len(events) - 1})"
    # apply, one event at a time, refuses the same event
    state = JobState()
    for event in events[:-1]:
        state = apply(state, event)
    with pytest.raises(InvalidTransition) as applied:
        apply(state, events[-1])
    assert applied.value.position is None
    assert str(applied.value) == applied.value.message == caught.value.message


def test_a_failed_phase_may_start_again() -> None:
    state = fold([PhaseStarted("map"), PhaseFinished("map", success=False), PhaseStarted("map")])
    assert state.phases["map"] is PhaseStatus.RUNNING
    failed = apply(state, PhaseFinished("map", success=False))
    assert failed.phases["map"] is PhaseStatus.FAILED
    assert failed.phases_done == frozenset()


def test_result_twins() -> None:
    assert try_apply(JobState(), PLAN) == Success(apply(JobState(), PLAN))
    refused = try_apply(JobState(), ItemStarted("a", 1))
    assert isinstance(refused, Failure)
    assert refused.failure().position is None
    assert try_fold([PLAN]) == Success(fold([PLAN]))
    folded = try_fold([PLAN, ItemMerged("a", "m")])
    assert isinstance(folded, Failure)
    assert folded.failure().position == 1


def test_fold_continues_from_a_state() -> None:
    first = fold([PLAN, ItemStarted("a", 1)])
    both = fold([ItemSucceeded("a"), PhaseStarted("reduce")], first)
    assert both == fold([PLAN, ItemStarted("a", 1), ItemSucceeded("a"), PhaseStarted("reduce")])
    assert first == fold([PLAN, ItemStarted("a", 1)])


def test_apply_leaves_the_old_state_unchanged() -> None:
    before = fold([PLAN])
    after = apply(before, ItemStarted("a", 1))
    assert status(before, "a") is ItemStatus.PENDING
    assert status(after, "a") is ItemStatus.RUNNING
    assert before.counts != after.counts


def test_a_large_job_folds_in_one_pass() -> None:
    """100,000 events over 20,000 items (a quadratic fold would not finish)."""
    keys = tuple(f"item-{n}" for n in range(20_000))
    events: list[JobEvent] = [JobPlanned(keys)]
    for key in keys:
        events += [
            ItemStarted(key, 1),
            ItemFailed(key, "flaky"),
            ItemRetried(key),
            ItemStarted(key, 2),
            ItemSucceeded(key, ("c",)),
        ]
    assert len(events) == 100_001
    state = fold(events)
    assert progress(state) == Progress(20_000, 20_000, 0, 0, 0, 0, 100.0)
    assert len(awaiting_merge(state)) == 20_000
    # and apply on it copies one path of the record table, not the table
    later = apply(state, ItemMerged("item-19999", "m"))
    assert awaiting_merge(later)[-1] == "item-19998"
    assert later.records.root[0] is state.records.root[0]


# -- properties --------------------------------------------------------------------------------

_NEXT = {
    ItemStatus.PENDING: ("start", "skip"),
    ItemStatus.RUNNING: ("start", "succeed", "fail", "retry", "skip"),
    ItemStatus.SUCCEEDED: ("merge", "fail"),
    ItemStatus.FAILED: ("retry", "skip"),
    ItemStatus.MERGED: (),
    ItemStatus.SKIPPED: (),
}


@st.composite
def valid_runs(draw: st.DrawFn) -> tuple[list[str], list[JobEvent], dict[str, ItemStatus]]:
    """A plan and a valid event sequence for it, with the statuses it should leave."""
    keys = draw(st.lists(st.text(min_size=1, max_size=5), unique=True, max_size=10))
    model = {key: ItemStatus.PENDING for key in keys}
    attempts = dict.fromkeys(keys, 0)
    phases: dict[str, PhaseStatus] = {}
    events: list[JobEvent] = []
    planned = False
    for _ in range(draw(st.integers(0, 60))):
        choice = draw(st.integers(0, 9))
        if not planned and (choice == 0 or not keys):
            events.append(JobPlanned(tuple(keys)))
            planned = True
            continue
        movable = [key for key in keys if _NEXT[model[key]]]
        if choice == 1 or not planned or not movable:
            phase = draw(st.sampled_from(["setup", "map", "reduce"]))
            if phases.get(phase) is PhaseStatus.RUNNING:
                success = draw(st.booleans())
                events.append(PhaseFinished(phase, success))
                phases[phase] = PhaseStatus.FINISHED if success else PhaseStatus.FAILED
            elif phases.get(phase) is not PhaseStatus.FINISHED:
                events.append(PhaseStarted(phase))
                phases[phase] = PhaseStatus.RUNNING
            continue
        key = draw(st.sampled_from(movable))
        move = draw(st.sampled_from(_NEXT[model[key]]))
        if move == "start":
            attempts[key] += 1
            events.append(ItemStarted(key, attempts[key]))
            model[key] = ItemStatus.RUNNING
        elif move == "succeed":
            events.append(ItemSucceeded(key, ("c",)))
            model[key] = ItemStatus.SUCCEEDED
        elif move == "merge":
            events.append(ItemMerged(key, "m"))
            model[key] = ItemStatus.MERGED
        elif move == "fail":
            events.append(ItemFailed(key, "e"))
            model[key] = ItemStatus.FAILED
        elif move == "retry":
            events.append(ItemRetried(key))
            model[key] = ItemStatus.PENDING
        else:
            events.append(ItemSkipped(key, "r"))
            model[key] = ItemStatus.SKIPPED
    if not planned:
        events.append(JobPlanned(tuple(keys)))
    return keys, events, model


@given(valid_runs())
def test_a_valid_run_never_loses_or_doubles_an_item(
    run: tuple[list[str], list[JobEvent], dict[str, ItemStatus]],
) -> None:
    keys, events, model = run
    state = fold(events)
    assert [record.key for record in state.records] == keys
    assert {record.key: record.status for record in state.records} == model
    counted = {s: sum(1 for r in state.records if r.status is s) for s in ItemStatus}
    assert dict(zip(ItemStatus, state.counts, strict=True)) == counted
    p = progress(state)
    assert p.done + p.failed + p.skipped + p.running + p.remaining == p.total == len(keys)
    in_play = (ItemStatus.PENDING, ItemStatus.RUNNING)
    assert remaining(state) == [key for key in keys if model[key] in in_play]
    assert functools.reduce(apply, events, JobState()) == state


EVENTS = st.one_of(
    st.builds(JobPlanned, st.lists(st.sampled_from("abc"), max_size=3).map(tuple)),
    st.builds(ItemStarted, st.sampled_from("abcz"), st.integers(0, 3)),
    st.builds(ItemSucceeded, st.sampled_from("abc")),
    st.builds(ItemMerged, st.sampled_from("abc"), st.just("m")),
    st.builds(ItemFailed, st.sampled_from("abc"), st.just("e")),
    st.builds(ItemRetried, st.sampled_from("abc")),
    st.builds(ItemSkipped, st.sampled_from("abc"), st.just("r")),
    st.builds(PhaseStarted, st.sampled_from(["map", "reduce"])),
    st.builds(PhaseFinished, st.sampled_from(["map", "reduce"]), st.booleans()),
)


@given(st.lists(EVENTS, max_size=25))
def test_any_events_fold_or_fail_with_a_position(events: list[JobEvent]) -> None:
    result = try_fold(events)
    if isinstance(result, Failure):
        error = result.failure()
        assert error.position is not None
        assert error.event == events[error.position]
        assert isinstance(try_fold(events[: error.position]), Success)
    else:
        assert functools.reduce(apply, events, JobState()) == result.unwrap()


@given(valid_runs())
def test_state_of_records_and_phases_equals_the_fold(
    run: tuple[list[str], list[JobEvent], dict[str, ItemStatus]],
) -> None:
    from pure.job_state import state_of

    folded = fold(run[1])
    rebuilt = state_of(list(folded.records), folded.phases, planned=folded.planned)
    assert rebuilt == folded
    assert rebuilt.positions == folded.positions
    assert progress(rebuilt) == progress(folded)


def test_a_finished_phase_may_run_again() -> None:
    # A dead-letter retry runs reduce again once its items are merged.
    state = fold([PhaseStarted("reduce"), PhaseFinished("reduce"), PhaseStarted("reduce")])
    assert state.phases["reduce"] is PhaseStatus.RUNNING
    assert "reduce" not in state.phases_done
    twice: list[JobEvent] = [PhaseStarted("reduce"), PhaseFinished("reduce")] * 2
    again = fold(twice)
    assert "reduce" in again.phases_done
