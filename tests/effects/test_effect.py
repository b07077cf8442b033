"""Constructors, sequential combinators, the three outcomes and re-runnability."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any, Never

import pytest
import trio
import trio.testing
from returns.result import Failure, Result, Success

from effects import ContextError, Effect
from tests.effects.helpers import record


class Boom(Exception):
    pass


async def test_pure_and_fail() -> None:
    assert await Effect.pure(3).run(None) == Success(3)
    assert await Effect.fail("no").run(None) == Failure("no")


async def test_from_result() -> None:
    assert await Effect.from_result(Success(1)).run(None) == Success(1)
    assert await Effect.from_result(Failure("e")).run(None) == Failure("e")


async def test_from_fn_receives_env_and_is_lazy() -> None:
    calls: list[str] = []

    def fn(env: str) -> Result[str, Never]:
        calls.append(env)
        return Success(env.upper())

    eff = Effect.from_fn(fn)
    assert calls == []
    assert await eff.run("abc") == Success("ABC")
    assert await eff.run("xyz") == Success("XYZ")
    assert calls == ["abc", "xyz"]


async def test_from_fn_must_return_a_result() -> None:
    eff: Effect[Any, Any, object] = Effect.from_fn(lambda env: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="must return a returns Result"):
        await eff.run(None)


async def test_from_async_awaits_with_env() -> None:
    async def fn(env: int) -> Result[int, str]:
        await trio.sleep(0)
        return Success(env * 2) if env > 0 else Failure("negative")

    assert await Effect.from_async(fn).run(4) == Success(8)
    assert await Effect.from_async(fn).run(-1) == Failure("negative")


async def test_attempt_turns_listed_exceptions_into_failures() -> None:
    def parse(env: str) -> int:
        return int(env)

    assert await Effect.attempt(parse, ValueError).run("12") == Success(12)
    result = await Effect.attempt(parse, ValueError).run("x")
    assert isinstance(result.failure(), ValueError)
    mapped = Effect.attempt(parse, (ValueError, KeyError), to_error=lambda e: f"bad: {e}")
    assert (await mapped.run("x")).failure().startswith("bad: invalid literal")


async def test_attempt_accepts_async_functions() -> None:
    async def read(env: dict[str, int]) -> int:
        await trio.sleep(0)
        return env["k"]

    assert await Effect.attempt(read, KeyError).run({"k": 1}) == Success(1)
    assert isinstance((await Effect.attempt(read, KeyError).run({})).failure(), KeyError)


async def test_attempt_keeps_other_exceptions_as_defects() -> None:
    def explode(env: object) -> int:
        raise Boom("boom")

    with pytest.raises(Boom):
        await Effect.attempt(explode, ValueError).run(None)


def test_attempt_refuses_to_catch_base_exceptions() -> None:
    with pytest.raises(TypeError, match="subclasses of Exception"):
        Effect.attempt(lambda env: 1, trio.Cancelled)  # type: ignore[type-var, arg-type, return-value]
    with pytest.raises(TypeError, match="subclasses of Exception"):
        Effect.attempt(lambda env: 1, (ValueError, KeyboardInterrupt))  # type: ignore[type-var, arg-type, return-value]


async def test_ask_and_asks() -> None:
    asked: Effect[dict[str, int], Never, dict[str, int]] = Effect.ask()
    assert await asked.run({"a": 1}) == Success({"a": 1})
    picked: Effect[int, Never, dict[str, int]] = Effect.asks(lambda env: env["a"])
    assert await picked.run({"a": 1}) == Success(1)


async def test_sleep_uses_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    assert await Effect.sleep(5).run(None) == Success(None)
    assert trio.current_time() - start == pytest.approx(5)


def test_sleep_rejects_negative_seconds() -> None:
    with pytest.raises(ValueError, match="`seconds` must be non-negative"):
        Effect.sleep(-1)


async def test_defer_builds_a_fresh_effect_per_run() -> None:
    counter = iter(range(100))
    eff = Effect.defer(lambda: Effect.pure(next(counter)))
    assert await eff.run(None) == Success(0)
    assert await eff.run(None) == Success(1)


async def test_map_and_and_then() -> None:
    eff = Effect.pure(2).map(lambda n: n + 1).and_then(lambda n: Effect.pure(n * 10))
    assert await eff.run(None) == Success(30)


async def test_failure_skips_map_and_and_then() -> None:
    called: list[int] = []
    eff: Effect[int, str, object] = Effect.fail("e")
    chained = eff.tap(lambda n: record(called, n)).and_then(lambda n: Effect.pure(n))
    assert await chained.run(None) == Failure("e")
    assert called == []


async def test_and_then_can_fail() -> None:
    eff = Effect.pure(1).and_then(lambda n: Effect.fail(f"failed at {n}"))
    assert await eff.run(None) == Failure("failed at 1")


async def test_map_err_or_else_recover() -> None:
    failing: Effect[int, str, object] = Effect.fail("e")
    assert await failing.map_err(str.upper).run(None) == Failure("E")
    assert await Effect.pure(1).map_err(lambda e: "never").run(None) == Success(1)
    assert await failing.or_else(lambda e: Effect.pure(len(e))).run(None) == Success(1)
    assert await failing.or_else(lambda e: Effect.fail(e * 2)).run(None) == Failure("ee")
    assert await failing.recover(lambda e: f"recovered {e}").run(None) == Success("recovered e")
    assert await Effect.pure(5).recover(lambda e: 0).run(None) == Success(5)


async def test_recover_then_continue_the_chain() -> None:
    failing: Effect[int, str, object] = Effect.fail("e")
    eff = failing.recover(lambda e: 10).map(lambda n: n + 1)
    assert await eff.run(None) == Success(11)


async def test_tap_keeps_value_and_propagates_its_failure() -> None:
    seen: list[int] = []

    assert await Effect.pure(7).tap(lambda n: record(seen, n)).run(None) == Success(7)
    assert seen == [7]
    assert await Effect.pure(7).tap(lambda n: Effect.fail("tap failed")).run(None) == Failure(
        "tap failed"
    )


async def test_tap_err_runs_then_passes_the_original_failure_on() -> None:
    seen: list[str] = []
    failing: Effect[int, str, object] = Effect.fail("e")
    eff = failing.tap_err(lambda e: record(seen, e))
    assert await eff.run(None) == Failure("e")
    assert seen == ["e"]
    assert await Effect.pure(1).tap_err(lambda e: Effect.fail("x")).run(None) == Success(1)
    replaced = failing.tap_err(lambda e: Effect.fail("tap failed"))
    assert await replaced.run(None) == Failure("tap failed")


async def test_zip() -> None:
    assert await Effect.pure(1).zip(Effect.pure("a")).run(None) == Success((1, "a"))
    assert await Effect.pure(1).zip(Effect.fail("e")).run(None) == Failure("e")


def field_n(env: dict[str, int]) -> int:
    return env["n"]


async def test_local_projects_the_environment_and_restores_it() -> None:
    inner: Effect[int, Never, int] = Effect.asks(lambda env: env * 2)
    outer: Effect[dict[str, int], Never, dict[str, int]] = Effect.ask()
    eff = inner.local(field_n).and_then(lambda doubled: outer.map(lambda env: (doubled, env["n"])))
    assert await eff.run({"n": 21}) == Success((42, 21))


async def test_local_restores_the_environment_after_a_failure() -> None:
    inner_env: Effect[int, Never, int] = Effect.ask()
    failing = inner_env.and_then(lambda n: Effect.fail(f"inner env {n}"))
    outer: Effect[dict[str, int], Never, dict[str, int]] = Effect.ask()
    eff = failing.local(field_n).or_else(
        lambda e: outer.map(lambda env: f"{e}; outer keys {sorted(env)}")
    )
    assert await eff.run({"n": 1}) == Success("inner env 1; outer keys ['n']")


async def test_context_builds_one_trail_innermost_first() -> None:
    eff = Effect.fail("disk full").context("creating worktree").context("running agent 3")
    error = (await eff.run(None)).failure()
    assert error == ContextError("disk full", ("creating worktree", "running agent 3"))
    assert str(error) == "running agent 3: creating worktree: disk full"


async def test_context_leaves_success_alone() -> None:
    assert await Effect.pure(1).context("x").run(None) == Success(1)


async def test_defect_in_user_function_propagates_and_is_not_a_failure() -> None:
    def explode(n: int) -> int:
        raise Boom(str(n))

    with pytest.raises(Boom, match="1"):
        await Effect.pure(1).map(explode).run(None)
    with pytest.raises(Boom):
        await Effect.pure(1).and_then(lambda n: Effect.pure(explode(n))).run(None)
    with pytest.raises(Boom):
        await Effect.pure(1).map(explode).context("never a failure").run(None)
    with pytest.raises(Boom):
        await Effect.pure(1).map(explode).recover(lambda e: 0).run(None)


async def test_defect_in_from_async_propagates() -> None:
    async def explode(env: object) -> Result[int, str]:
        raise Boom("async")

    with pytest.raises(Boom, match="async"):
        await Effect.from_async(explode).or_else(lambda e: Effect.pure(0)).run(None)


async def test_cancellation_is_never_a_failure() -> None:
    handled: list[object] = []
    eff = Effect.sleep(10).or_else(lambda e: record(handled, e))
    with trio.move_on_after(0.01) as scope:
        await eff.run(None)
    assert scope.cancelled_caught
    assert handled == []


async def test_same_effect_runs_concurrently_and_independently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def delayed(env: float) -> Result[float, Never]:
        await trio.sleep(env)
        return Success(env)

    eff = Effect.from_async(delayed).map(lambda v: v * 10)
    results: dict[float, Any] = {}

    async def run_one(delay: float) -> None:
        results[delay] = await eff.run(delay)

    async with trio.open_nursery() as nursery:
        for delay in (3.0, 1.0, 2.0):
            nursery.start_soon(run_one, delay)
    assert results == {1.0: Success(10.0), 2.0: Success(20.0), 3.0: Success(30.0)}


def test_run_sync() -> None:
    assert Effect.pure(1).map(lambda n: n + 1).run_sync(None) == Success(2)
    clock = trio.testing.MockClock(autojump_threshold=0)
    assert Effect.sleep(1000).map(lambda _: "slept").run_sync(None, clock=clock) == Success("slept")


async def test_left_nested_chain_of_a_million_steps() -> None:
    eff: Effect[int, Never, object] = Effect.pure(0)
    for index in range(1_000_000):
        eff = eff.map(lambda n: n + 1) if index % 2 else eff.and_then(lambda n: Effect.pure(n + 1))
    assert await eff.run(None) == Success(1_000_000)


def _countdown(n: int) -> Effect[str, Never, object]:
    return Effect.pure(n).and_then(lambda k: _countdown(k - 1) if k > 0 else Effect.pure("done"))


def _deferred_countdown(n: int) -> Effect[str, Never, object]:
    return Effect.defer(lambda: Effect.pure("done") if n == 0 else _deferred_countdown(n - 1))


async def test_recursive_loops_of_a_million_iterations() -> None:
    assert await _countdown(1_000_000).run(None) == Success("done")
    assert await _deferred_countdown(1_000_000).run(None) == Success("done")


async def test_recursive_loop_memory_does_not_grow_with_iterations() -> None:
    async def peak(iterations: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            await _countdown(iterations).run(None)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = await peak(10_000), await peak(200_000)
    # 20x the iterations: a loop that kept a frame per iteration would need
    # 20x the memory; allow slack for allocator noise only.
    assert large < small * 2 + 64_000
