"""par_all, par_all_limit, par_all_settled, race and sequence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Never

import pytest
import trio
import trio.testing
from returns.result import Failure, Result, Success

from effects import Effect, Exit, bracket, par_all, par_all_limit, par_all_settled, race, sequence
from tests.effects.helpers import record


class Boom(Exception):
    pass


def after(delay: float, value: Any, *, fail: bool = False) -> Effect[Any, Any, object]:
    async def run(env: object) -> Result[Any, Any]:
        await trio.sleep(delay)
        return Failure(value) if fail else Success(value)

    return Effect.from_async(run)


def tracked(delay: float, value: Any, released: list[tuple[Any, str]]) -> Effect[Any, Any, object]:
    """A bracketed sleep whose release records (value, exit kind)."""

    def release(r: Any, exit_: Exit[Any, Any]) -> Effect[None, Never, object]:
        return record(released, (value, exit_.kind))

    return bracket(Effect.pure(value), lambda r: after(delay, value), release)


async def test_par_all_keeps_input_order(autojump_clock: trio.testing.MockClock) -> None:
    effects = [after(3, "a"), after(1, "b"), after(2, "c")]
    assert await par_all(effects).run(None) == Success(["a", "b", "c"])


async def test_par_all_runs_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    await par_all([after(1, i) for i in range(10)]).run(None)
    assert trio.current_time() - start == pytest.approx(1)


async def test_par_all_empty() -> None:
    nothing: list[Effect[int, str, object]] = []
    assert await par_all(nothing).run(None) == Success([])
    assert await par_all_limit(nothing, 4).run(None) == Success([])
    assert await par_all_settled(nothing).run(None) == Success([])


async def test_accumulate_runs_everything_and_reports_errors_in_input_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran: list[str] = []
    effects = [
        after(3, "e0", fail=True),
        after(1, "v1").tap(lambda v: record(ran, v)),
        after(2, "e2", fail=True),
        after(5, "v3").tap(lambda v: record(ran, v)),
    ]
    assert await par_all(effects).run(None) == Failure(["e0", "e2"])
    assert ran == ["v1", "v3"]


async def test_fail_fast_cancels_siblings_and_releases_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[tuple[Any, str]] = []
    effects = [
        tracked(10, "slow", released),
        after(1, "bad", fail=True),
        tracked(0.5, "quick", released),
    ]
    start = trio.current_time()
    assert await par_all(effects, mode="fail_fast").run(None) == Failure(["bad"])
    assert trio.current_time() - start == pytest.approx(1)
    assert sorted(released) == [("quick", "success"), ("slow", "cancelled")]


async def test_fail_fast_with_limit_starts_nothing_after_the_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[int] = []

    def item(i: int) -> Effect[int, str, object]:
        mark: Effect[None, Never, object] = record(started, i)
        # item 0 is still running when item 1 fails; nothing else may start
        return mark.and_then(lambda _: after(2 if i == 0 else 1, i, fail=(i == 1)))

    result = await par_all_limit((item(i) for i in range(100)), 2, mode="fail_fast").run(None)
    assert result == Failure([1])
    assert started == [0, 1]


async def test_defect_cancels_the_rest_and_propagates_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[tuple[Any, str]] = []

    async def explode(env: object) -> Result[int, Never]:
        await trio.sleep(1)
        raise Boom("defect")

    effects = [tracked(10, "a", released), Effect.from_async(explode), tracked(10, "b", released)]
    with pytest.raises(Boom, match="defect"):
        await par_all(effects).run(None)
    assert sorted(released) == [("a", "cancelled"), ("b", "cancelled")]


async def test_simultaneous_defects_give_an_exception_group() -> None:
    go = trio.Event()

    async def explode(env: object) -> Result[int, Never]:
        await go.wait()  # both wake with a value in the same batch: neither is cancelled
        raise Boom("defect")

    async def start(env: object) -> Success[None]:
        await trio.sleep(0)
        go.set()
        return Success(None)

    effects = [Effect.from_async(explode), Effect.from_async(explode), Effect.from_async(start)]
    with pytest.raises(BaseExceptionGroup) as info:
        await par_all(effects).run(None)
    assert [type(e) for e in info.value.exceptions] == [Boom, Boom]


async def test_outer_cancellation_cancels_every_effect_and_releases(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[tuple[Any, str]] = []
    eff = par_all_limit([tracked(10, i, released) for i in range(6)], 3)
    with trio.move_on_after(1) as scope:
        await eff.run(None)
    assert scope.cancelled_caught
    assert sorted(released) == [(0, "cancelled"), (1, "cancelled"), (2, "cancelled")]


async def test_ten_one_second_effects_at_limit_five_take_two_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    result = await par_all_limit([after(1, i) for i in range(10)], 5).run(None)
    assert result == Success(list(range(10)))
    assert trio.current_time() - start == pytest.approx(2)


async def test_par_all_limit_pulls_a_generator_lazily() -> None:
    active = 0
    peak = 0
    pulled = 0

    def effect(i: int) -> Effect[int, Never, object]:
        async def run(env: object) -> Success[int]:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await trio.sleep(0)
            active -= 1
            return Success(i)

        return Effect.from_async(run)

    def generate() -> Iterator[Effect[int, Never, object]]:
        nonlocal pulled
        for i in range(5_000):
            pulled += 1
            # never more than ``limit`` effects pulled ahead of the finished ones
            assert pulled - (i - active) <= 4 + 1
            yield effect(i)

    result = await par_all_limit(generate(), 4).run(None)
    assert result == Success(list(range(5_000)))
    assert peak == 4


def test_limit_and_mode_validation() -> None:
    with pytest.raises(ValueError, match="`limit` must be an integer of at least 1"):
        par_all_limit([], 0)
    with pytest.raises(ValueError, match="`mode` must be"):
        par_all([], mode="eventually")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`limit`"):
        par_all_settled([], limit=-2)


async def test_par_all_with_limit_delegates(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    assert await par_all([after(1, i) for i in range(4)], limit=2).run(None) == Success(
        [0, 1, 2, 3]
    )
    assert trio.current_time() - start == pytest.approx(2)


async def test_par_all_settled_never_fails(autojump_clock: trio.testing.MockClock) -> None:
    effects = [after(2, "a"), after(1, "e", fail=True), after(3, "c")]
    expected = Success([Success("a"), Failure("e"), Success("c")])
    assert await par_all_settled(effects).run(None) == expected
    assert await par_all_settled(iter(effects), limit=1).run(None) == expected


async def test_list_inputs_are_rerunnable() -> None:
    eff = par_all_limit([Effect.pure(1), Effect.pure(2)], 1)
    assert await eff.run(None) == Success([1, 2])
    assert await eff.run(None) == Success([1, 2])


async def test_race_first_success_wins_and_cancels_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[tuple[Any, str]] = []
    effects = [tracked(5, "slow", released), after(1, "quick fail", fail=True), after(2, "winner")]
    start = trio.current_time()
    assert await race(effects).run(None) == Success("winner")
    assert trio.current_time() - start == pytest.approx(2)
    assert released == [("slow", "cancelled")]


async def test_race_all_fail_gives_errors_in_input_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    effects = [after(2, "e0", fail=True), after(1, "e1", fail=True)]
    assert await race(effects).run(None) == Failure(["e0", "e1"])


def test_race_of_nothing_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        race([])


async def test_race_defect_propagates(autojump_clock: trio.testing.MockClock) -> None:
    async def explode(env: object) -> Result[int, Never]:
        raise Boom("race")

    with pytest.raises(Boom):
        await race([after(5, "x"), Effect.from_async(explode)]).run(None)


async def test_sequence_runs_in_order_and_stops_at_the_first_failure() -> None:
    ran: list[int] = []

    def step(i: int, *, fail: bool = False) -> Effect[int, str, object]:
        mark: Effect[None, Never, object] = record(ran, i)
        return mark.and_then(lambda _: Effect.fail(f"step {i}") if fail else Effect.pure(i))

    assert await sequence([step(0), step(1), step(2)]).run(None) == Success([0, 1, 2])
    ran.clear()
    assert await sequence([step(0), step(1, fail=True), step(2)]).run(None) == Failure("step 1")
    assert ran == [0, 1]
    seq = sequence(step(i) for i in range(3))
    ran.clear()
    assert await seq.run(None) == Success([0, 1, 2])
    assert await seq.run(None) == Success([0, 1, 2])
