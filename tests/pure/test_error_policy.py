"""The error policy's state machine: stop rules, circuit breaker, retries, and its invariants."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pure.error_policy import (
    FAILURE_THRESHOLD_MIN_SAMPLE,
    HALF_OPEN_POLL_SECONDS,
    PolicyState,
    RetryDecision,
    Start,
    Stop,
    WaitUntil,
    admit,
    backoff_delay,
    circuit_at,
    failed_item_disposition,
    initial_state,
    item_finished,
    retry_decision,
    started,
)
from pure.workflow import (
    Backoff,
    CircuitBreakerConfig,
    ErrorCollection,
    ErrorPolicy,
    ItemFailureAction,
    RetryConfig,
)

BREAKER = CircuitBreakerConfig(
    failure_threshold=2, success_threshold=2, timeout=10.0, half_open_requests=2
)


def start(policy: ErrorPolicy, state: PolicyState, now: float = 0.0) -> PolicyState:
    assert admit(policy, state, now) == Start()
    return started(policy, state, now)


def run(
    policy: ErrorPolicy, outcomes: Sequence[bool], total: int = 100, now: float = 0.0
) -> PolicyState:
    """Start and finish one item per outcome, in order, at ``now`` or when ``admit`` says."""
    state = initial_state(total)
    for ok in outcomes:
        admission = admit(policy, state, now)
        if isinstance(admission, WaitUntil):
            now = admission.time
        state = item_finished(policy, start(policy, state, now), ok, now)
    return state


# --- counters and the default policy -----------------------------------------------------------


def test_the_initial_state() -> None:
    state = initial_state(4)
    assert state == PolicyState(total=4)
    assert (state.started, state.finished, state.stop_reason, state.circuit) == (
        0,
        0,
        None,
        "closed",
    )
    assert admit(ErrorPolicy(), state, 0.0) == Start()


def test_a_negative_total_is_a_defect() -> None:
    with pytest.raises(ValueError, match="`total` must be non-negative, found -1"):
        initial_state(-1)


def test_counters_follow_outcomes() -> None:
    state = run(ErrorPolicy(), [True, False, False, True, False], total=6)
    assert (state.started, state.finished, state.succeeded, state.failed) == (5, 5, 2, 3)
    assert (state.skipped, state.consecutive_failures, state.stop_reason) == (0, 1, None)
    assert admit(ErrorPolicy(), state, 0.0) == Start()


def test_the_default_policy_never_stops_on_failures() -> None:
    state = run(ErrorPolicy(), [False] * 50, total=50)
    assert state.failed == 50
    assert state.stop_reason is None
    assert circuit_at(ErrorPolicy(), state, 0.0) == "closed"


def test_starting_more_items_than_the_total_is_a_defect() -> None:
    state = start(ErrorPolicy(), initial_state(1))
    with pytest.raises(ValueError, match="all 1 items have started"):
        started(ErrorPolicy(), state, 0.0)


def test_finishing_an_item_that_is_not_running_is_a_defect() -> None:
    with pytest.raises(ValueError, match=r"none is running \(0 started, 0 finished\)"):
        item_finished(ErrorPolicy(), initial_state(3), True, 0.0)


# --- stop rules --------------------------------------------------------------------------------


def test_on_item_failure_stop_stops_at_the_first_failure() -> None:
    policy = ErrorPolicy(on_item_failure="stop")
    state = run(policy, [True, True])
    assert state.stop_reason is None
    state = run(policy, [True, False])
    assert state.stop_reason == "stopping after the first failure (on_item_failure: stop)"
    assert admit(policy, state, 0.0) == Stop(state.stop_reason)


def test_continue_on_failure_false_stops_at_the_first_failure() -> None:
    policy = ErrorPolicy(continue_on_failure=False)
    state = run(policy, [True, False])
    assert state.stop_reason == "stopping after the first failure (continue_on_failure: false)"


def test_on_item_failure_stop_is_named_before_continue_on_failure() -> None:
    policy = ErrorPolicy(on_item_failure="stop", continue_on_failure=False, max_failures=1)
    assert run(policy, [False]).stop_reason == (
        "stopping after the first failure (on_item_failure: stop)"
    )


def test_max_failures_stops_when_reached() -> None:
    policy = ErrorPolicy(max_failures=3)
    assert run(policy, [False, True, False, True]).stop_reason is None
    state = run(policy, [False, True, False, True, False])
    assert state.stop_reason == "stopping: 3 items failed (max_failures: 3)"


def test_max_failures_one_and_zero_stop_at_the_first_failure() -> None:
    assert run(ErrorPolicy(max_failures=1), [True, False]).stop_reason == (
        "stopping: 1 item failed (max_failures: 1)"
    )
    zero = ErrorPolicy(max_failures=0)
    assert run(zero, [True, True]).stop_reason is None
    assert run(zero, [False]).stop_reason == "stopping: 1 item failed (max_failures: 0)"


def test_failure_threshold_waits_for_the_minimum_sample() -> None:
    policy = ErrorPolicy(failure_threshold=0.5)
    assert FAILURE_THRESHOLD_MIN_SAMPLE == 5
    # Four failures out of four: judged only from the fifth finished item on.
    assert run(policy, [False] * 4).stop_reason is None
    state = run(policy, [False, False, False, True, True])
    assert state.stop_reason == "stopping: 60% of finished items failed (failure_threshold: 0.5)"


def test_failure_threshold_is_exceeded_not_reached() -> None:
    policy = ErrorPolicy(failure_threshold=0.4)
    assert run(policy, [False, False, True, True, True]).stop_reason is None  # 40%
    assert run(policy, [False, False, True, True, True, False]).stop_reason == (
        "stopping: 50% of finished items failed (failure_threshold: 0.4)"
    )


def test_failure_threshold_can_stop_on_a_success() -> None:
    """A success makes the sample large enough; the fraction then judged is above the limit."""
    policy = ErrorPolicy(failure_threshold=0.5)
    state = run(policy, [False, False, False, False])
    state = item_finished(policy, start(policy, state), True, 0.0)
    assert state.stop_reason == "stopping: 80% of finished items failed (failure_threshold: 0.5)"


def test_failure_threshold_in_a_small_job_is_judged_when_all_finished() -> None:
    policy = ErrorPolicy(failure_threshold=0.5)
    assert run(policy, [False, False], total=3).stop_reason is None
    state = run(policy, [False, False, True], total=3)
    assert state.stop_reason == "stopping: 66.7% of finished items failed (failure_threshold: 0.5)"


def test_a_stop_is_final() -> None:
    policy = ErrorPolicy(on_item_failure="stop", failure_threshold=0.1)
    state = start(policy, start(policy, initial_state(10)))
    state = item_finished(policy, state, False, 0.0)
    reason = state.stop_reason
    assert reason is not None
    # The running item still finishes and is counted; the reason stays the first one.
    state = item_finished(policy, state, False, 1.0)
    assert state.stop_reason == reason
    assert (state.finished, state.failed) == (2, 2)
    assert admit(policy, state, 1e9) == Stop(reason)
    with pytest.raises(ValueError, match="admit\\(\\) answered Stop"):
        started(policy, state, 2.0)


# --- skipped items -----------------------------------------------------------------------------


def test_skipped_items_do_not_count_toward_the_stop_rules() -> None:
    policy = ErrorPolicy(
        on_item_failure="skip", continue_on_failure=False, max_failures=1, failure_threshold=0.0
    )
    state = run(policy, [False] * 10, total=10)
    assert state.stop_reason is None
    assert (state.failed, state.skipped, state.finished) == (10, 10, 10)


def test_skipped_items_count_for_the_circuit_breaker() -> None:
    policy = ErrorPolicy(on_item_failure="skip", circuit_breaker=BREAKER)
    state = run(policy, [False, False], now=5.0)
    assert state.circuit == "open"
    assert state.opened_at == 5.0


def test_only_skip_skips() -> None:
    actions: tuple[ItemFailureAction, ...] = ("dlq", "retry", "stop")
    for action in actions:
        assert run(ErrorPolicy(on_item_failure=action), [False]).skipped == 0


# --- circuit breaker ---------------------------------------------------------------------------


def test_the_circuit_opens_after_consecutive_failures() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = run(policy, [False, True, False], now=3.0)
    assert state.circuit == "closed"  # the success broke the run
    state = item_finished(policy, start(policy, state, 4.0), False, 4.0)
    assert (state.circuit, state.opened_at) == ("open", 4.0)
    reason = "circuit breaker open: 2 consecutive items failed (failure_threshold: 2)"
    assert state.open_reason == reason
    assert admit(policy, state, 4.0) == WaitUntil(14.0, reason)
    assert admit(policy, state, 13.9) == WaitUntil(14.0, reason)
    assert circuit_at(policy, state, 13.9) == "open"
    assert circuit_at(policy, state, 14.0) == "half_open"
    assert admit(policy, state, 14.0) == Start()
    with pytest.raises(ValueError, match="admit\\(\\) answered WaitUntil"):
        started(policy, state, 5.0)


def test_one_failure_threshold_opens_at_the_first_failure() -> None:
    policy = ErrorPolicy(circuit_breaker=CircuitBreakerConfig(failure_threshold=1))
    state = run(policy, [False])
    assert state.open_reason == (
        "circuit breaker open: 1 consecutive item failed (failure_threshold: 1)"
    )


def half_open(policy: ErrorPolicy) -> PolicyState:
    """A circuit opened at 0 with nothing running, asked at 10 (its timeout passed)."""
    state = run(policy, [False, False], now=0.0)
    assert circuit_at(policy, state, 10.0) == "half_open"
    return state


def test_half_open_admits_a_limited_number_of_probes() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = start(policy, half_open(policy), 10.0)
    assert (state.circuit, state.probes_in_flight) == ("half_open", 1)
    state = start(policy, state, 10.5)
    assert state.probes_in_flight == 2
    assert admit(policy, state, 11.0) == WaitUntil(
        11.0 + HALF_OPEN_POLL_SECONDS,
        "circuit breaker half open: 2 probe items running (half_open_requests: 2)",
    )
    # A successful probe frees its slot without closing the circuit yet.
    state = item_finished(policy, state, True, 12.0)
    assert (state.circuit, state.probes_in_flight, state.probe_successes) == ("half_open", 1, 1)
    assert admit(policy, state, 12.0) == Start()


def test_the_half_open_wait_names_one_probe() -> None:
    one = attrs.evolve(BREAKER, half_open_requests=1)
    policy = ErrorPolicy(circuit_breaker=one)
    state = start(policy, half_open(policy), 10.0)
    assert admit(policy, state, 10.0) == WaitUntil(
        10.0 + HALF_OPEN_POLL_SECONDS,
        "circuit breaker half open: 1 probe item running (half_open_requests: 1)",
    )


def test_enough_half_open_successes_close_the_circuit() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = start(policy, start(policy, half_open(policy), 10.0), 10.0)
    state = item_finished(policy, state, True, 11.0)
    state = item_finished(policy, state, True, 12.0)
    assert state.circuit == "closed"
    assert (state.consecutive_failures, state.probes_in_flight, state.probe_successes) == (0, 0, 0)
    assert admit(policy, state, 12.0) == Start()
    # Closed again, it takes a full run of failures to open it.
    state = item_finished(policy, start(policy, state, 13.0), False, 13.0)
    assert state.circuit == "closed"


def test_a_half_open_failure_opens_the_circuit_again() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = start(policy, start(policy, half_open(policy), 10.0), 10.0)
    state = item_finished(policy, state, True, 11.0)
    state = item_finished(policy, state, False, 12.0)
    reason = "circuit breaker open again: an item failed while it was half open"
    assert (state.circuit, state.opened_at, state.open_reason) == ("open", 12.0, reason)
    assert (state.probes_in_flight, state.probe_successes) == (0, 0)
    assert admit(policy, state, 12.0) == WaitUntil(22.0, reason)


def test_outcomes_while_open_do_not_move_the_circuit() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = initial_state(10)
    for _ in range(4):
        state = start(policy, state, 0.0)
    state = item_finished(policy, state, False, 1.0)
    state = item_finished(policy, state, False, 1.0)
    assert (state.circuit, state.opened_at) == ("open", 1.0)
    state = item_finished(policy, state, True, 2.0)  # no closing while open
    state = item_finished(policy, state, False, 3.0)  # no re-opening either
    assert (state.circuit, state.opened_at) == ("open", 1.0)
    assert admit(policy, state, 3.0) == WaitUntil(11.0, state.open_reason or "")


def test_older_items_finishing_while_half_open_keep_the_probe_slots_taken() -> None:
    """Which finish was a probe is unknown: it is charged to an older item first."""
    policy = ErrorPolicy(circuit_breaker=attrs.evolve(BREAKER, success_threshold=3))
    state = initial_state(10)
    for _ in range(3):
        state = start(policy, state, 0.0)
    state = item_finished(policy, state, False, 0.0)
    state = item_finished(policy, state, False, 0.0)  # open at 0; one older item still runs
    state = start(policy, start(policy, state, 10.0), 10.0)
    assert (state.circuit, state.probes_in_flight) == ("half_open", 2)
    # Three items run: one older, two probes. The first finish is charged to the older one.
    state = item_finished(policy, state, True, 11.0)
    assert (state.probes_in_flight, state.probe_successes) == (2, 1)
    assert isinstance(admit(policy, state, 11.0), WaitUntil)
    state = item_finished(policy, state, True, 12.0)
    assert (state.probes_in_flight, state.probe_successes) == (1, 2)
    assert admit(policy, state, 12.0) == Start()


def test_a_started_item_turns_a_due_open_circuit_half_open() -> None:
    policy = ErrorPolicy(circuit_breaker=BREAKER)
    state = half_open(policy)
    assert state.circuit == "open"  # as recorded; circuit_at tells the state at a time
    assert start(policy, state, 10.0).circuit == "half_open"


def test_a_finish_turns_a_due_open_circuit_half_open() -> None:
    """An older item finishing after the timeout is a half-open outcome."""
    policy = ErrorPolicy(circuit_breaker=attrs.evolve(BREAKER, success_threshold=1))
    state = initial_state(10)
    for _ in range(3):
        state = start(policy, state, 0.0)
    state = item_finished(policy, state, False, 0.0)
    state = item_finished(policy, state, False, 0.0)
    assert item_finished(policy, state, True, 10.0).circuit == "closed"
    reopened = item_finished(policy, state, False, 10.0)
    assert (reopened.circuit, reopened.opened_at) == ("open", 10.0)


def test_without_a_breaker_the_circuit_is_always_closed() -> None:
    state = run(ErrorPolicy(), [False] * 10)
    assert state.circuit == "closed"
    assert circuit_at(ErrorPolicy(), state, 100.0) == "closed"


def test_error_collection_does_not_change_decisions() -> None:
    outcomes = [False, False, True, True, False, False]
    states = {
        run(
            ErrorPolicy(
                max_failures=5, circuit_breaker=BREAKER, error_collection=ErrorCollection(*c)
            ),
            outcomes,
        )
        for c in (("aggregate", None), ("immediate", None), ("batched", 2))
    }
    assert len(states) == 1
    (state,) = states
    # The circuit opened, went half open, closed and opened again on the way.
    assert (state.circuit, state.opened_at, state.failed) == ("open", 10.0, 4)
    assert state.stop_reason is None


# --- retries -----------------------------------------------------------------------------------


def test_only_on_item_failure_retry_retries() -> None:
    actions: tuple[ItemFailureAction, ...] = ("dlq", "skip", "stop")
    for action in actions:
        policy = ErrorPolicy(on_item_failure=action)
        assert retry_decision(policy, 1) == RetryDecision(retry=False, delay=0.0)


def test_retry_with_the_default_retry_config() -> None:
    policy = ErrorPolicy(on_item_failure="retry")
    assert retry_decision(policy, 1) == RetryDecision(retry=True, delay=1.0)
    assert retry_decision(policy, 2) == RetryDecision(retry=True, delay=2.0)
    assert retry_decision(policy, 3) == RetryDecision(retry=False)


def test_retry_with_a_retry_config() -> None:
    config = RetryConfig(max_attempts=4, backoff=Backoff("fixed", initial_delay=0.5))
    policy = ErrorPolicy(on_item_failure="retry", retry_config=config)
    assert [retry_decision(policy, n) for n in (1, 2, 3, 4)] == [
        RetryDecision(True, 0.5),
        RetryDecision(True, 0.5),
        RetryDecision(True, 0.5),
        RetryDecision(False),
    ]
    single = ErrorPolicy(on_item_failure="retry", retry_config=RetryConfig(max_attempts=1))
    assert retry_decision(single, 1) == RetryDecision(False)


def test_an_attempt_number_below_one_is_a_defect() -> None:
    with pytest.raises(ValueError, match="`attempt` must be at least 1, found 0"):
        retry_decision(ErrorPolicy(on_item_failure="retry"), 0)
    with pytest.raises(ValueError, match="`retry` must be at least 1, found 0"):
        backoff_delay(Backoff(), 0)


def test_backoff_strategies() -> None:
    def delays(backoff: Backoff) -> list[float]:
        return [backoff_delay(backoff, n) for n in range(1, 7)]

    assert delays(Backoff("fixed", initial_delay=2.0)) == [2.0] * 6
    assert delays(Backoff("linear", initial_delay=1.0, increment=0.5)) == [
        1.5,
        2.0,
        2.5,
        3.0,
        3.5,
        4.0,
    ]
    assert delays(Backoff("exponential", initial_delay=1.0, multiplier=3.0)) == [
        1.0,
        3.0,
        9.0,
        27.0,
        81.0,
        243.0,
    ]
    assert delays(Backoff("fibonacci", initial_delay=2.0)) == [2.0, 2.0, 4.0, 6.0, 10.0, 16.0]


def test_backoff_beyond_floats_is_infinite_and_zero_stays_zero() -> None:
    assert backoff_delay(Backoff("exponential", multiplier=2.0), 5000) == math.inf
    assert backoff_delay(Backoff("fibonacci"), 5000) == math.inf
    assert backoff_delay(Backoff("exponential", initial_delay=0.0), 5000) == 0.0
    assert backoff_delay(Backoff("fibonacci", initial_delay=0.0), 5000) == 0.0


def test_failed_item_disposition() -> None:
    assert failed_item_disposition(ErrorPolicy(on_item_failure="skip")) == "skip"
    actions: tuple[ItemFailureAction, ...] = ("dlq", "retry", "stop")
    for action in actions:
        assert failed_item_disposition(ErrorPolicy(on_item_failure=action)) == "dlq"


# --- properties --------------------------------------------------------------------------------

breakers = st.builds(
    CircuitBreakerConfig,
    failure_threshold=st.integers(1, 4),
    success_threshold=st.integers(1, 4),
    timeout=st.floats(0.5, 10.0),
    half_open_requests=st.integers(1, 3),
)
policies = st.builds(
    ErrorPolicy,
    on_item_failure=st.sampled_from(["dlq", "retry", "skip", "stop"]),
    continue_on_failure=st.booleans(),
    max_failures=st.none() | st.integers(0, 6),
    failure_threshold=st.none() | st.floats(0.0, 1.0),
    circuit_breaker=st.none() | breakers,
)
# (start?, succeeded, which running item finishes, seconds elapsed before the step)
steps = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.integers(0, 50), st.floats(0.0, 6.0)),
    max_size=80,
)


@attrs.frozen
class Running:
    episode: int
    probe: bool


def simulate(policy: ErrorPolicy, total: int, script: list[tuple[bool, bool, int, float]]) -> None:
    """Drive the state machine as a scheduler would and check its invariants after every step."""
    state = initial_state(total)
    now = 0.0
    running: list[Running] = []
    episode = 0  # numbers the circuit's stays in one state
    outcomes = [0, 0, 0]  # succeeded, failed, skipped
    stop: str | None = None
    limit = policy.circuit_breaker.half_open_requests if policy.circuit_breaker else 0
    for is_start, ok, which, elapsed in script:
        now += elapsed
        before = state
        if is_start and state.started < total:
            admission = admit(policy, state, now)
            if stop is not None:
                assert admission == Stop(stop)
            if isinstance(admission, WaitUntil):
                assert admission.time > now
            if isinstance(admission, Start):
                state = started(policy, state, now)
                episode += state.circuit != before.circuit
                running.append(Running(episode, state.circuit == "half_open"))
        elif not is_start and running:
            running.pop(which % len(running))
            state = item_finished(policy, state, ok, now)
            episode += state.circuit != before.circuit
            outcomes[0 if ok else 1] += 1
            outcomes[2] += not ok and policy.on_item_failure == "skip"
        stop = state.stop_reason if stop is None else stop
        assert state.stop_reason == stop
        assert state.succeeded + state.failed == state.finished <= state.started <= state.total
        assert state.started - state.finished == len(running)
        assert [state.succeeded, state.failed, state.skipped] == outcomes
        if state.circuit == "half_open":
            probes = sum(1 for r in running if r.probe and r.episode == episode)
            assert probes <= state.probes_in_flight <= limit
        else:
            assert state.probes_in_flight == 0
        if policy.circuit_breaker is None:
            assert state.circuit == "closed"


@settings(max_examples=400, deadline=None)
@given(policies, st.integers(0, 30), steps)
def test_any_run_keeps_the_invariants(
    policy: ErrorPolicy, total: int, script: list[tuple[bool, bool, int, float]]
) -> None:
    simulate(policy, total, script)


@settings(max_examples=400, deadline=None)
@given(breakers, st.booleans(), st.integers(10, 40), steps)
def test_the_half_open_probe_limit_holds(
    breaker: CircuitBreakerConfig,
    skip: bool,
    total: int,
    script: list[tuple[bool, bool, int, float]],
) -> None:
    """Without stop rules in the way, the breaker sees long runs of every kind of outcome."""
    action: ItemFailureAction = "skip" if skip else "dlq"
    simulate(ErrorPolicy(on_item_failure=action, circuit_breaker=breaker), total, script)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), steps)
def test_the_default_policy_never_stops_or_waits(
    total: int, script: list[tuple[bool, bool, int, float]]
) -> None:
    policy = ErrorPolicy()
    state = initial_state(total)
    running = 0
    for is_start, ok, _, _ in script:
        if is_start and state.started < total:
            assert admit(policy, state, 0.0) == Start()
            state = started(policy, state, 0.0)
            running += 1
        elif not is_start and running:
            state = item_finished(policy, state, ok, 0.0)
            running -= 1
        assert state.stop_reason is None
        assert state.circuit == "closed"


@settings(max_examples=200, deadline=None)
@given(policies, st.lists(st.booleans(), min_size=1, max_size=30), st.floats(0, 100))
def test_once_stopped_always_stopped(
    policy: ErrorPolicy, outcomes: list[bool], later: float
) -> None:
    state = initial_state(len(outcomes))
    reason: str | None = None
    for ok in outcomes:
        if isinstance(admit(policy, state, 1e6), Start):
            state = item_finished(policy, started(policy, state, 1e6), ok, 1e6)
        if reason is not None:
            assert state.stop_reason == reason
            assert admit(policy, state, 1e6 + later) == Stop(reason)
        reason = state.stop_reason


@functools.cache
def fib(n: int) -> int:
    return 1 if n <= 2 else fib(n - 1) + fib(n - 2)


backoffs = st.builds(
    Backoff,
    strategy=st.sampled_from(["fixed", "linear", "exponential", "fibonacci"]),
    initial_delay=st.floats(0.0, 100.0),
    multiplier=st.floats(0.1, 5.0),
    increment=st.floats(0.0, 10.0),
)


@settings(max_examples=400, deadline=None)
@given(backoffs, st.integers(1, 10), st.integers(1, 40))
def test_retry_delays_follow_the_formulas(
    backoff: Backoff, max_attempts: int, attempt: int
) -> None:
    policy = ErrorPolicy(on_item_failure="retry", retry_config=RetryConfig(max_attempts, backoff))
    decision = retry_decision(policy, attempt)
    assert decision.retry == (attempt < max_attempts)
    if not decision.retry:
        assert decision.delay == 0.0
        return
    expected = {
        "fixed": backoff.initial_delay,
        "linear": backoff.initial_delay + attempt * backoff.increment,
        "exponential": backoff.initial_delay * backoff.multiplier ** (attempt - 1),
        "fibonacci": backoff.initial_delay * fib(attempt),
    }[backoff.strategy]
    assert decision.delay >= 0.0
    assert math.isclose(decision.delay, expected, rel_tol=1e-9, abs_tol=1e-12)
