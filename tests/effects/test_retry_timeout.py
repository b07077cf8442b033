"""retry with RetryPolicy schedules, and timeout, on trio's MockClock."""

from __future__ import annotations

from typing import Any, Never

import pytest
import trio
import trio.testing
from returns.result import Failure, Result, Success

from effects import Effect, RetryExhausted, RetryPolicy, Timeout, bracket
from tests.effects.helpers import record


def flaky(failures: int, log: list[float]) -> Effect[str, str, object]:
    """Fails ``failures`` times, then succeeds; logs the time of each attempt."""

    async def run(env: object) -> Result[str, str]:
        log.append(trio.current_time())
        if len(log) <= failures:
            return Failure(f"failure {len(log)}")
        return Success(f"ok after {len(log)}")

    return Effect.from_async(run)


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (RetryPolicy.constant(2.0, max_attempts=5), [2, 2, 2, 2]),
        (RetryPolicy.linear(1.0, max_attempts=5), [1, 2, 3, 4]),
        (RetryPolicy.exponential(1.0, max_attempts=5), [1, 2, 4, 8]),
        (RetryPolicy.exponential(0.5, factor=3.0, max_attempts=4), [0.5, 1.5, 4.5]),
        (RetryPolicy.fibonacci(1.0, max_attempts=7), [1, 1, 2, 3, 5, 8]),
        (RetryPolicy.exponential(1.0, max_attempts=6, max_delay=5.0), [1, 2, 4, 5, 5]),
    ],
)
def test_policy_delays(policy: RetryPolicy[Any], delays: list[float]) -> None:
    assert [policy.delay(n) for n in range(1, policy.max_attempts)] == pytest.approx(delays)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="`max_attempts` must be at least 1"):
        RetryPolicy.constant(1.0, max_attempts=0)
    with pytest.raises(ValueError, match="`initial` must be non-negative"):
        RetryPolicy.linear(-1.0)
    with pytest.raises(ValueError, match="`jitter` must be between 0 and 1"):
        RetryPolicy.constant(1.0, jitter=2.0)
    with pytest.raises(ValueError, match="`attempt` must be at least 1"):
        RetryPolicy.constant(1.0).delay(0)


def test_jitter_stays_within_its_bounds() -> None:
    policy: RetryPolicy[Any] = RetryPolicy.constant(10.0, jitter=0.2)
    samples = [policy.jittered_delay(1) for _ in range(200)]
    assert all(8.0 <= s <= 12.0 for s in samples)
    assert len(set(samples)) > 1


async def test_retry_succeeds_after_failures_with_delays_between(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[float] = []
    eff = flaky(2, log).retry(RetryPolicy.exponential(1.0, max_attempts=5))
    assert await eff.run(None) == Success("ok after 3")
    start = log[0]
    assert [t - start for t in log] == pytest.approx([0, 1, 3])


async def test_retry_exhausted_counts_every_attempt_and_no_delay_after_last(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[float] = []
    start = trio.current_time()
    eff = flaky(100, log).retry(RetryPolicy.constant(1.0, max_attempts=3))
    assert await eff.run(None) == Failure(RetryExhausted("failure 3", 3))
    assert len(log) == 3
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_retry_if_rejects_an_error_at_once(autojump_clock: trio.testing.MockClock) -> None:
    log: list[float] = []
    policy: RetryPolicy[str] = RetryPolicy.constant(
        1.0, max_attempts=5, retry_if=lambda e: not e.startswith("failure")
    )
    assert await flaky(5, log).retry(policy).run(None) == Failure("failure 1")
    assert len(log) == 1


async def test_each_attempt_reruns_the_whole_effect() -> None:
    built: list[int] = []

    def attempt() -> Effect[int, str, object]:
        built.append(1)
        return Effect.fail("again") if len(built) < 3 else Effect.pure(len(built))

    eff = Effect.defer(attempt).retry(RetryPolicy.constant(0.0, max_attempts=5))
    assert await eff.run(None) == Success(3)


async def test_defect_is_not_retried() -> None:
    calls: list[int] = []

    def explode(env: object) -> Result[int, str]:
        calls.append(1)
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await Effect.from_fn(explode).retry(RetryPolicy.constant(0.0, max_attempts=5)).run(None)
    assert calls == [1]


async def test_timeout_expires_with_timeout_error_and_releases_brackets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[str] = []
    inner = bracket(
        Effect.pure("wt"),
        lambda r: Effect.sleep(100),
        lambda r, exit_: record(released, exit_.kind),
    )
    start = trio.current_time()
    assert await inner.timeout(5).run(None) == Failure(Timeout(5))
    assert trio.current_time() - start == pytest.approx(5)
    assert released == ["cancelled"]
    assert str(Timeout(5)) == "timed out after 5 s"


async def test_timeout_passes_value_and_failure_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert await Effect.sleep(1).map(lambda _: "done").timeout(5).run(None) == Success("done")
    assert await Effect.fail("e").timeout(5).run(None) == Failure("e")


async def test_timeout_does_not_swallow_outer_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.move_on_after(1) as outer:
        await Effect.sleep(100).timeout(50).run(None)
    assert outer.cancelled_caught


def test_timeout_validation() -> None:
    with pytest.raises(ValueError, match="`seconds` must be non-negative"):
        Effect.pure(1).timeout(-1)


async def test_retry_of_a_timed_out_effect(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def slow_then_fast(env: object) -> Result[str, Never]:
        attempts.append(trio.current_time())
        await trio.sleep(10 if len(attempts) < 2 else 1)
        return Success("done")

    eff = (
        Effect.from_async(slow_then_fast)
        .timeout(5)
        .retry(RetryPolicy.constant(1.0, max_attempts=3))
    )
    assert await eff.run(None) == Success("done")
    assert len(attempts) == 2
