"""Hypothesis properties: monad laws, map fusion, par_all order and limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from effects import Effect, par_all, par_all_limit

Outcome = Result[int, str]
# An effect built from data: succeed with a value or fail with an error.
effect_outcomes = st.one_of(
    st.integers().map(lambda n: ("ok", n)), st.text(max_size=5).map(lambda e: ("err", e))
)


def build(spec: tuple[str, Any]) -> Effect[int, str, object]:
    kind, payload = spec
    return Effect.pure(payload) if kind == "ok" else Effect.fail(payload)


def kleisli(
    table: dict[int, tuple[str, Any]], default: tuple[str, Any]
) -> Callable[[int], Effect[int, str, object]]:
    return lambda n: build(table.get(n % 7, default))


functions = st.builds(
    kleisli, st.dictionaries(st.integers(0, 6), effect_outcomes, max_size=7), effect_outcomes
)


def run(eff: Effect[Any, Any, Any]) -> Result[Any, Any]:
    return eff.run_sync(None)


@given(st.integers(), functions)
def test_left_identity(value: int, f: Callable[[int], Effect[int, str, object]]) -> None:
    assert run(Effect.pure(value).and_then(f)) == run(f(value))


@given(effect_outcomes)
def test_right_identity(spec: tuple[str, Any]) -> None:
    assert run(build(spec).and_then(Effect.pure)) == run(build(spec))


@given(effect_outcomes, functions, functions)
def test_associativity(
    spec: tuple[str, Any],
    f: Callable[[int], Effect[int, str, object]],
    g: Callable[[int], Effect[int, str, object]],
) -> None:
    left = build(spec).and_then(f).and_then(g)
    right = build(spec).and_then(lambda x: f(x).and_then(g))
    assert run(left) == run(right)


@given(effect_outcomes, st.integers(-5, 5), st.integers(-5, 5))
def test_map_fusion(spec: tuple[str, Any], a: int, b: int) -> None:
    def f(x: int) -> int:
        return x * a

    def g(x: int) -> int:
        return x + b

    assert run(build(spec).map(f).map(g)) == run(build(spec).map(lambda x: g(f(x))))


def _delayed(delay: float, value: int, fail: bool) -> Effect[int, int, object]:
    async def body(env: object) -> Result[int, int]:
        await trio.sleep(delay)
        return Failure(value) if fail else Success(value)

    return Effect.from_async(body)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.booleans()), max_size=30))
def test_par_all_returns_input_order(items: list[tuple[float, bool]]) -> None:
    effects = [_delayed(delay, i, fail) for i, (delay, fail) in enumerate(items)]
    result = par_all(effects).run_sync(None, clock=trio.testing.MockClock(autojump_threshold=0))
    failed = [i for i, (_, fail) in enumerate(items) if fail]
    assert result == (Failure(failed) if failed else Success(list(range(len(items)))))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 5), max_size=40), st.integers(1, 8))
def test_par_all_limit_never_exceeds_limit_and_reaches_it(delays: list[float], limit: int) -> None:
    active = 0
    peak = 0

    def tracked(delay: float) -> Effect[None, None, object]:
        async def body(env: object) -> Success[None]:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await trio.sleep(delay)
            await trio.sleep(0)
            active -= 1
            return Success(None)

        return Effect.from_async(body)

    clock = trio.testing.MockClock(autojump_threshold=0)
    par_all_limit((tracked(d) for d in delays), limit).run_sync(None, clock=clock)
    assert peak <= limit
    assert peak == min(limit, len(delays))
