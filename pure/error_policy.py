"""Applying ``error_policy`` during a map phase: a pure state machine the scheduler consults.

The scheduler keeps one :class:`PolicyState` per map phase and asks before
each start and tells after each final outcome::

    state = initial_state(len(items))
    # whenever a slot is free and an item waits:
    match admit(policy, state, now):
        case Start():            state = started(policy, state, now); start the item
        case WaitUntil(time, _): sleep until ``time`` or until an item finishes, then ask again
        case Stop(reason):       start nothing more; let running items finish; end the job
                                 failed-but-resumable with ``reason``
    # when an item has failed attempt n:   retry_decision(policy, n)
    # when an item has finally finished:   state = item_finished(policy, state, ok, now)
    # a finally failed item goes to:       failed_item_disposition(policy)

Nothing here reads a clock: ``now`` is passed in (seconds, any origin, never
decreasing). Breaking the protocol (starting an item ``admit`` refuses,
finishing more items than started) is a defect and raises ``ValueError``.

**What an outcome is.** ``item_finished`` is called once per item, when it
has succeeded or has failed for the last time; the failed attempts that are
retried (``on_item_failure: retry``) are invisible to the counters and to
the circuit breaker. ``failed`` counts every item that finally failed.

**Skipped items** (``on_item_failure: skip``) are "handled": they do not
count toward the job's stop rules (``continue_on_failure: false``,
``max_failures``, ``failure_threshold``), which is why ``skip`` with those
keys never stops the job. They do count for the circuit breaker, because
they did fail: a run of failures says something is broken whatever happens
to the items afterwards. ``skipped`` counts them (they are also in ``failed``).

**Stop rules**, checked after each outcome; the first that holds sets
``stop_reason``, which is final for the phase (``admit`` answers ``Stop``
from then on):

- ``on_item_failure: stop`` or ``continue_on_failure: false``: the first
  counted failure;
- ``max_failures: N``: N counted failures;
- ``failure_threshold: r``: more than ``r`` of the finished items failed,
  judged only once at least ``min(total, 5)`` items have finished
  (:data:`FAILURE_THRESHOLD_MIN_SAMPLE`), so that a 100-item job does not stop
  on its first item's failure. In a job of fewer than 5 items the rule is
  judged when all have finished: nothing more starts then, but the job still
  ends failed with the reason.

**The circuit breaker** (``circuit_breaker`` present) is ``closed`` until
``failure_threshold`` consecutive final failures (a success resets the run);
then ``open`` at that time: ``admit`` waits until ``timeout`` seconds after it
opened (outcomes meanwhile, of items started before, move only the counters).
From then on it is ``half_open`` (:func:`circuit_at`): at most
``half_open_requests`` probe items may run at once; a further ``admit`` waits
:data:`HALF_OPEN_POLL_SECONDS` (a slot is freed only by a finishing item, so
the scheduler should also ask again whenever one finishes). Every outcome in
``half_open`` counts: ``success_threshold`` successes close the circuit
(counters reset); one failure opens it again at that time. Items still
running when the circuit opened may finish while it is half open; which
finished item was a probe is unknown, so a finish is charged to those older
items first. ``probes_in_flight`` is thus never below the number of probes
really running, and the limit holds.

``error_collection`` only shapes how failures are reported; it plays no
part in scheduling and is not read here.
"""

from __future__ import annotations

import math
from typing import Final, Literal, final

import attrs

from pure.workflow import Backoff, CircuitBreakerConfig, ErrorPolicy, RetryConfig

__all__ = [
    "FAILURE_THRESHOLD_MIN_SAMPLE",
    "HALF_OPEN_POLL_SECONDS",
    "Admission",
    "CircuitState",
    "PolicyState",
    "RetryDecision",
    "Start",
    "Stop",
    "WaitUntil",
    "admit",
    "backoff_delay",
    "circuit_at",
    "failed_item_disposition",
    "initial_state",
    "item_finished",
    "retry_decision",
    "started",
]

FAILURE_THRESHOLD_MIN_SAMPLE: Final = 5
"""``failure_threshold`` is judged once ``min(total, this)`` items have finished."""

HALF_OPEN_POLL_SECONDS: Final = 1.0
"""How long ``admit`` asks to wait while every half-open probe slot is taken."""

CircuitState = Literal["closed", "open", "half_open"]


@final
@attrs.frozen
class PolicyState:
    """What the error policy remembers during one map phase.

    ``succeeded + failed == finished <= started <= total`` always holds;
    ``skipped`` is the part of ``failed`` that ``on_item_failure: skip``
    handled. ``consecutive_failures`` is the current run of final failures.
    ``circuit`` is the breaker's state as last recorded: an ``open`` circuit
    whose timeout has passed is already half open (see :func:`circuit_at`).
    ``opened_at`` / ``open_reason`` describe its last opening (``None`` while
    it never opened). ``probes_in_flight`` / ``probe_successes`` count the
    half-open probes running and the successes seen while half open.
    ``stop_reason`` is set once a stop rule holds and never cleared.
    """

    total: int
    started: int = 0
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    consecutive_failures: int = 0
    circuit: CircuitState = "closed"
    opened_at: float | None = None
    open_reason: str | None = None
    probes_in_flight: int = 0
    probe_successes: int = 0
    stop_reason: str | None = None


@final
@attrs.frozen
class Start:
    """Start the next item now (then record it with :func:`started`)."""


@final
@attrs.frozen
class WaitUntil:
    """Start nothing before ``time`` (the circuit breaker holds new items back), then ask again."""

    time: float
    reason: str


@final
@attrs.frozen
class Stop:
    """Start no more items: running ones finish and the job ends failed-but-resumable."""

    reason: str


Admission = Start | WaitUntil | Stop


@final
@attrs.frozen
class RetryDecision:
    """Whether a failed attempt of an item is retried, and after how many seconds."""

    retry: bool
    delay: float = 0.0


def initial_state(total: int) -> PolicyState:
    """The state before any of the phase's ``total`` items has started."""
    if total < 0:
        raise ValueError(f"`total` must be non-negative, found {total}")
    return PolicyState(total=total)


def circuit_at(policy: ErrorPolicy, state: PolicyState, now: float) -> CircuitState:
    """The circuit breaker's state at ``now``: ``open`` turns ``half_open`` once its timeout passed.

    Always ``closed`` without a ``circuit_breaker``.
    """
    breaker = policy.circuit_breaker
    if breaker is None:
        return "closed"
    return _at(breaker, state, now).circuit


def admit(policy: ErrorPolicy, state: PolicyState, now: float) -> Admission:
    """May the next item start at ``now``?

    ``Stop`` once a stop rule has held (and forever after); ``WaitUntil``
    while the circuit breaker is open, or half open with every probe slot
    taken; ``Start`` otherwise. Asked only when an item is waiting to start.
    """
    if state.stop_reason is not None:
        return Stop(state.stop_reason)
    breaker = policy.circuit_breaker
    if breaker is None:
        return Start()
    current = _at(breaker, state, now)
    if current.circuit == "closed":
        return Start()
    if current.circuit == "open":
        assert current.opened_at is not None and current.open_reason is not None
        return WaitUntil(current.opened_at + breaker.timeout, current.open_reason)
    if current.probes_in_flight < breaker.half_open_requests:
        return Start()
    return WaitUntil(
        now + HALF_OPEN_POLL_SECONDS,
        f"circuit breaker half open: {_count(current.probes_in_flight, 'probe item')} running"
        f" (half_open_requests: {breaker.half_open_requests})",
    )


def started(policy: ErrorPolicy, state: PolicyState, now: float) -> PolicyState:
    """Record that an item started at ``now``, as ``admit`` allowed; half open, it is a probe.

    Call it right after ``admit`` answered ``Start`` (no ``await`` between):
    starting an item ``admit`` would refuse now is a defect (``ValueError``).
    """
    admission = admit(policy, state, now)
    if not isinstance(admission, Start):
        raise ValueError(f"an item was started although admit() answered {admission!r}")
    if state.started >= state.total:
        raise ValueError(f"an item was started although all {state.total} items have started")
    after = attrs.evolve(state, started=state.started + 1)
    breaker = policy.circuit_breaker
    if breaker is None:
        return after
    after = _at(breaker, after, now)
    if after.circuit == "half_open":
        after = attrs.evolve(after, probes_in_flight=after.probes_in_flight + 1)
    return after


def item_finished(
    policy: ErrorPolicy, state: PolicyState, succeeded: bool, now: float
) -> PolicyState:
    """Record an item's final outcome at ``now``: counters, circuit breaker, stop rules."""
    if state.finished >= state.started:
        raise ValueError(
            f"an item finished although none is running"
            f" ({state.started} started, {state.finished} finished)"
        )
    skipped = not succeeded and policy.on_item_failure == "skip"
    after = attrs.evolve(
        state,
        finished=state.finished + 1,
        succeeded=state.succeeded + succeeded,
        failed=state.failed + (not succeeded),
        skipped=state.skipped + skipped,
        consecutive_failures=0 if succeeded else state.consecutive_failures + 1,
    )
    if policy.circuit_breaker is not None:
        in_flight = state.started - state.finished
        after = _breaker_after(policy.circuit_breaker, after, succeeded, now, in_flight)
    if after.stop_reason is None:
        counted_failure = not succeeded and not skipped
        after = attrs.evolve(after, stop_reason=_stop_reason(policy, after, counted_failure))
    return after


def retry_decision(policy: ErrorPolicy, attempt: int) -> RetryDecision:
    """After attempt number ``attempt`` (1-based) of an item failed: retry it, and when?

    Only ``on_item_failure: retry`` retries, up to ``retry_config.max_attempts``
    attempts in all (the default :class:`RetryConfig` when none is given),
    waiting :func:`backoff_delay` for retry number ``attempt``.
    """
    if attempt < 1:
        raise ValueError(f"`attempt` must be at least 1, found {attempt}")
    if policy.on_item_failure != "retry":
        return RetryDecision(retry=False)
    config = policy.retry_config if policy.retry_config is not None else RetryConfig()
    if attempt >= config.max_attempts:
        return RetryDecision(retry=False)
    return RetryDecision(retry=True, delay=backoff_delay(config.backoff, attempt))


def backoff_delay(backoff: Backoff, retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1-based), by the rules of :class:`Backoff`.

    ``fixed``: ``initial_delay``; ``linear``: ``initial_delay + retry * increment``;
    ``exponential``: ``initial_delay * multiplier ** (retry - 1)``;
    ``fibonacci``: ``initial_delay * fib(retry)`` with fib 1, 1, 2, 3, 5, ...
    A delay too large for a float is ``math.inf``; a zero initial delay stays 0.
    """
    if retry < 1:
        raise ValueError(f"`retry` must be at least 1, found {retry}")
    initial = backoff.initial_delay
    if backoff.strategy == "fixed":
        return initial
    if backoff.strategy == "linear":
        return initial + retry * backoff.increment
    if initial == 0.0:
        # 0 * inf would be nan; zero times any growth is still no delay.
        return 0.0
    if backoff.strategy == "exponential":
        try:
            return initial * backoff.multiplier ** (retry - 1)
        except OverflowError:
            return math.inf
    return initial * _fibonacci(retry)


def failed_item_disposition(policy: ErrorPolicy) -> Literal["dlq", "skip"]:
    """Where a finally failed item goes: ``skip`` (recorded as skipped) or the dead-letter queue.

    ``dlq``, ``retry`` (once its attempts are exhausted) and ``stop`` all put
    the item in the dead-letter queue, so a resumed job can retry it.
    """
    return "skip" if policy.on_item_failure == "skip" else "dlq"


# --- internals ---------------------------------------------------------------------------------


def _at(breaker: CircuitBreakerConfig, state: PolicyState, now: float) -> PolicyState:
    """``state`` with an open circuit whose timeout has passed turned half open."""
    if state.circuit != "open":
        return state
    assert state.opened_at is not None
    if now < state.opened_at + breaker.timeout:
        return state
    return attrs.evolve(state, circuit="half_open")


def _breaker_after(
    breaker: CircuitBreakerConfig,
    state: PolicyState,
    succeeded: bool,
    now: float,
    in_flight: int,
) -> PolicyState:
    """The circuit after one outcome; ``in_flight`` counts the items running before it."""
    state = _at(breaker, state, now)
    if state.circuit == "closed":
        if state.consecutive_failures >= breaker.failure_threshold:
            reason = (
                f"circuit breaker open: {_count(state.consecutive_failures, 'consecutive item')}"
                f" failed (failure_threshold: {breaker.failure_threshold})"
            )
            return _opened(state, now, reason)
        return state
    if state.circuit == "open":
        return state
    # Half open: charge the finish to an item older than the probes while any runs.
    older = in_flight - state.probes_in_flight
    probes = state.probes_in_flight if older > 0 else state.probes_in_flight - 1
    if not succeeded:
        return _opened(
            state, now, "circuit breaker open again: an item failed while it was half open"
        )
    successes = state.probe_successes + 1
    if successes >= breaker.success_threshold:
        return attrs.evolve(
            state, circuit="closed", consecutive_failures=0, probes_in_flight=0, probe_successes=0
        )
    return attrs.evolve(state, probes_in_flight=probes, probe_successes=successes)


def _opened(state: PolicyState, now: float, reason: str) -> PolicyState:
    return attrs.evolve(
        state,
        circuit="open",
        opened_at=now,
        open_reason=reason,
        probes_in_flight=0,
        probe_successes=0,
    )


def _stop_reason(policy: ErrorPolicy, state: PolicyState, counted_failure: bool) -> str | None:
    """The first stop rule that holds after an outcome, or ``None``."""
    failures = state.failed - state.skipped
    if counted_failure:
        if policy.on_item_failure == "stop":
            return "stopping after the first failure (on_item_failure: stop)"
        if not policy.continue_on_failure:
            return "stopping after the first failure (continue_on_failure: false)"
        if policy.max_failures is not None and failures >= policy.max_failures:
            return (
                f"stopping: {_count(failures, 'item')} failed (max_failures: {policy.max_failures})"
            )
    threshold = policy.failure_threshold
    if threshold is None:
        return None
    if state.finished < min(state.total, FAILURE_THRESHOLD_MIN_SAMPLE):
        return None
    fraction = failures / state.finished
    if fraction <= threshold:
        return None
    return (
        f"stopping: {fraction * 100:.3g}% of finished items failed"
        f" (failure_threshold: {threshold:g})"
    )


def _fibonacci(n: int) -> float:
    """fib(n) for n >= 1 (1, 1, 2, 3, 5, ...), as a float that may reach ``inf``."""
    previous, current = 0.0, 1.0
    for _ in range(n - 1):
        previous, current = current, previous + current
        if math.isinf(current):
            return math.inf
    return current


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
