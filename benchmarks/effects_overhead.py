"""What the Effect core costs, as ratios against plain trio code and `returns`, side by side.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/effects_overhead.py``).
Contenders run in one process, alternating, over several rounds; a ratio is
the median of the per-round ratios, with best time over best time beside it.
The goals of issue 2 are such ratios and are reported as PASS/MISS lines,
never asserted: the script exits 0 either way. The cyclic garbage collector
stays enabled throughout, as in production; each timed sample starts right
after a full collection. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Literal, Never

import trio
from _common import (
    alternate_async,
    expect,
    gc_runs_while,
    load_average,
    peak_memory,
    peak_tasks,
    step_table,
    timed,
    timed_async,
    timed_checked,
    us_per,
    verdict,
)
from returns.context import RequiresContextFutureResult
from returns.io import IOSuccess
from returns.result import Result, Success

from effects import Effect, par_all_limit
from effects._effect import interpret

ROUNDS = 9
CHAIN_STEPS = 100_000
RETURNS_STEPS = 200
RETURNS_RUNS = 50  # chain runs per timed sample: one 200-step run is too short to time alone
POOL_ITEMS = 100_000
POOL_LIMIT = 64
POOL_ROUNDS = 5
HUGE_STEPS = 1_000_000
LOOP_SMALL = 100_000

IntEffect = Effect[int, Never, object]
Rcfr = RequiresContextFutureResult[int, Never, object]
Variant = Literal["instant", "yielding"]


# -- 1. a long chain against plain awaited coroutines ---------------------------------------


def _inc(n: int) -> int:
    return n + 1


def _inc_effect(n: int) -> IntEffect:
    return Effect.pure(n + 1)


def build_chain(steps: int) -> IntEffect:
    """``steps`` left-nested steps adding 1, alternating ``map`` and ``and_then``."""
    chain: IntEffect = Effect.pure(0)
    for index in range(steps):
        chain = chain.map(_inc) if index % 2 == 0 else chain.and_then(_inc_effect)
    return chain


async def _add_one(n: int) -> int:
    return n + 1


async def _add_one_bound(n: int) -> int:
    return n + 1


def build_plain_steps(steps: int) -> list[Callable[[int], Awaitable[int]]]:
    """The same steps as coroutine functions, to be awaited one after another."""
    return [_add_one if index % 2 == 0 else _add_one_bound for index in range(steps)]


async def run_plain_steps(steps: list[Callable[[int], Awaitable[int]]]) -> int:
    value = 0
    for step in steps:
        value = await step(value)
    return value


async def bench_chain() -> list[bool]:
    print(f"\n## 1. {CHAIN_STEPS:,}-step map/and_then chain vs plain awaited coroutines")
    plain = build_plain_steps(CHAIN_STEPS)
    done: Result[int, Never] = Success(CHAIN_STEPS)

    async def build_only() -> float:
        return timed(lambda: build_chain(CHAIN_STEPS))

    async def run_only() -> float:
        chain = build_chain(CHAIN_STEPS)
        return await timed_checked(lambda: chain.run(None), done, "chain")

    async def build_and_run() -> float:
        return await timed_checked(lambda: build_chain(CHAIN_STEPS).run(None), done, "chain")

    async def coroutines() -> float:
        return await timed_checked(lambda: run_plain_steps(plain), CHAIN_STEPS, "coroutines")

    samples = await alternate_async(
        {
            "plain coroutines, awaited in a loop": coroutines,
            "Effect: build the chain": build_only,
            "Effect: run the pre-built chain": run_only,
            "Effect: build + run": build_and_run,
        },
        ROUNDS,
    )
    base = samples["plain coroutines, awaited in a loop"]
    step_table(samples, CHAIN_STEPS, base, "plain")
    collections = gc_runs_while(lambda: build_chain(CHAIN_STEPS))
    print(f"(gc enabled: building {CHAIN_STEPS:,} nodes ran {collections} gen0/1/2 collections)")
    run = samples["Effect: run the pre-built chain"]
    total = samples["Effect: build + run"]
    return [
        verdict(
            run.ratio_to(base) <= 3,
            "running a 100k-step chain costs at most 3x plain coroutines",
            f"{run.ratios_to(base)}; {us_per(run.median, CHAIN_STEPS)} vs"
            f" {us_per(base.median, CHAIN_STEPS)} per step; build + run {total.ratios_to(base)}",
        )
    ]


# -- 2. a 200-step chain against returns' RequiresContextFutureResult -----------------------


def _inc_rcfr(n: int) -> Rcfr:
    return RequiresContextFutureResult.from_value(n + 1)


def build_rcfr(steps: int) -> Rcfr:
    """The same alternating steps with ``returns``: ``.map`` and ``.bind``."""
    chain: Rcfr = RequiresContextFutureResult.from_value(0)
    for index in range(steps):
        chain = chain.map(_inc) if index % 2 == 0 else chain.bind(_inc_rcfr)
    return chain


async def _rcfr_runs(steps: int) -> bool:
    """Whether a ``steps``-long returns chain runs here without RecursionError."""
    try:
        await build_rcfr(steps)(None).awaitable()
    except RecursionError:
        return False
    return True


async def _rcfr_limit() -> int:
    """The longest returns chain that still runs here (bisection up to 4096 steps)."""
    low, high = 1, 4096
    if await _rcfr_runs(high):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if await _rcfr_runs(middle) else (low, middle)
    return low


async def bench_returns() -> list[bool]:
    print(f"\n## 2. {RETURNS_STEPS}-step chain vs returns' RequiresContextFutureResult, in trio")
    effect_chain = build_chain(RETURNS_STEPS)
    rcfr_chain = build_rcfr(RETURNS_STEPS)
    expect(await effect_chain.run(None), Success(RETURNS_STEPS), "Effect chain")
    expect(await rcfr_chain(None).awaitable(), IOSuccess(RETURNS_STEPS), "returns chain")

    async def effect_runs() -> None:
        for _ in range(RETURNS_RUNS):
            await effect_chain.run(None)

    async def rcfr_runs() -> None:
        for _ in range(RETURNS_RUNS):
            await rcfr_chain(None).awaitable()

    async def effect_builds_and_runs() -> None:
        for _ in range(RETURNS_RUNS):
            await build_chain(RETURNS_STEPS).run(None)

    async def rcfr_builds_and_runs() -> None:
        for _ in range(RETURNS_RUNS):
            await build_rcfr(RETURNS_STEPS)(None).awaitable()

    samples = await alternate_async(
        {
            "Effect: run the pre-built chain": partial(timed_async, effect_runs),
            "returns: run the pre-built chain": partial(timed_async, rcfr_runs),
            "Effect: build + run": partial(timed_async, effect_builds_and_runs),
            "returns: build + run": partial(timed_async, rcfr_builds_and_runs),
        },
        ROUNDS,
    )
    effect_run = samples["Effect: run the pre-built chain"]
    step_table(samples, RETURNS_STEPS * RETURNS_RUNS, effect_run, "Effect run")
    run = samples["returns: run the pre-built chain"]
    total = samples["returns: build + run"]
    effect_total = samples["Effect: build + run"]
    print(
        f"(returns' chain hits RecursionError beyond {await _rcfr_limit()} steps at recursion"
        f" limit {sys.getrecursionlimit()}; section 4 runs a {HUGE_STEPS:,}-step Effect chain)"
    )
    return [
        verdict(
            run.ratio_to(effect_run) >= 10,
            "running a 200-step chain is at least 10x faster than returns",
            f"returns takes {run.ratios_to(effect_run)}",
        ),
        verdict(
            total.ratio_to(effect_total) >= 10,
            "building + running a 200-step chain is at least 10x faster than returns",
            f"returns takes {total.ratios_to(effect_total)}",
        ),
    ]


# -- 3. par_all_limit against a hand-written worker pool ------------------------------------


async def _checkpoint_value(index: int) -> int:
    await trio.sleep(0)
    return index


async def _instant_value(index: int) -> int:
    return index


_TICK: Effect[None, Never, object] = Effect.sleep(0)


def _constant(value: int) -> Callable[[object], int]:
    return lambda _: value


def trivial_effects(variant: Variant) -> Iterator[IntEffect]:
    """A generator of ``POOL_ITEMS`` effects worth their index; "yielding" ones checkpoint once."""
    if variant == "instant":
        return (Effect.pure(index) for index in range(POOL_ITEMS))
    return (_TICK.map(_constant(index)) for index in range(POOL_ITEMS))


async def hand_pool_plain(variant: Variant) -> list[int]:
    """A 64-worker nursery pulling indices from one iterator, awaiting a plain coroutine each."""
    job = _instant_value if variant == "instant" else _checkpoint_value
    results = [-1] * POOL_ITEMS  # -1: never filled in
    source = iter(range(POOL_ITEMS))

    async def worker() -> None:
        for index in source:
            results[index] = await job(index)

    async with trio.open_nursery() as nursery:
        for _ in range(POOL_LIMIT):
            nursery.start_soon(worker)
    return results


async def hand_pool_effects(variant: Variant) -> list[int]:
    """The same pool pulling from the same generator of effects par_all_limit gets.

    It runs each effect with the core's run loop (``interpret``, which
    par_all_limit calls too) rather than ``Effect.run``, which would add a
    ``Success`` per item: what remains between the two is the combinator's
    own bookkeeping.
    """
    results = [-1] * POOL_ITEMS  # -1: never filled in
    source = enumerate(trivial_effects(variant))

    async def worker() -> None:
        for index, effect in source:
            _ok, results[index] = await interpret(effect, None)

    async with trio.open_nursery() as nursery:
        for _ in range(POOL_LIMIT):
            nursery.start_soon(worker)
    return results


async def with_par_all_limit(variant: Variant) -> list[int]:
    return (await par_all_limit(trivial_effects(variant), POOL_LIMIT).run(None)).unwrap()


def _pool_contenders(variant: Variant) -> dict[str, Callable[[], Awaitable[float]]]:
    """Each contender checks its results after every timed run, outside the timing."""
    expected = list(range(POOL_ITEMS))
    contenders: dict[str, Callable[[Variant], Awaitable[list[int]]]] = {
        "hand pool, plain coroutines": hand_pool_plain,
        "hand pool, the same effects": hand_pool_effects,
        "par_all_limit": with_par_all_limit,
    }
    return {
        name: partial(timed_checked, partial(run, variant), expected, f"{name} ({variant})")
        for name, run in contenders.items()
    }


async def bench_pool() -> list[bool]:
    print(f"\n## 3. par_all_limit over {POOL_ITEMS:,} trivial effects at limit {POOL_LIMIT}")
    print("instant: Effect.pure(i); yielding: Effect.sleep(0).map(lambda _: i), one checkpoint")
    verdicts: list[bool] = []
    variants: tuple[Variant, ...] = ("instant", "yielding")
    for variant in variants:
        samples = await alternate_async(_pool_contenders(variant), POOL_ROUNDS)
        print(f"\n{variant}:")
        same = samples["hand pool, the same effects"]
        plain = samples["hand pool, plain coroutines"]
        pool = samples["par_all_limit"]
        step_table(samples, POOL_ITEMS, same, "hand pool of effects")
        before, peak = await peak_tasks(partial(with_par_all_limit, variant))
        print(
            f"peak live tasks during par_all_limit: {peak}"
            f" ({before} alive before it: trio's init, run_sync_soon and main tasks)"
        )
        verdicts += [
            verdict(
                pool.ratio_to(same) <= 1.3,
                f"{variant}: par_all_limit costs at most 1.3x a hand-written 64-worker pool"
                " running the same effects",
                pool.ratios_to(same),
            ),
            verdict(
                pool.ratio_to(plain) <= 1.3,
                f"{variant}: par_all_limit costs at most 1.3x a hand-written 64-worker pool"
                " awaiting plain coroutines",
                pool.ratios_to(plain),
            ),
            verdict(
                peak - before <= POOL_LIMIT + 2,
                f"{variant}: peak live tasks about limit + a small constant",
                f"{peak} = {before} already alive + {peak - before} for limit {POOL_LIMIT}",
            ),
        ]
    return verdicts


# -- 4. stack safety and flat memory --------------------------------------------------------


def count_up(value: int, target: int) -> IntEffect:
    """A recursive loop: one step, then round again through ``and_then`` until ``target``.

    ``and_then`` calls its function only once the step has run, so the
    recursion is lazy: the run loop sees one small effect per round and its
    continuation stack is empty between rounds.
    """
    if value >= target:
        return Effect.pure(value)
    return Effect.pure(value + 1).and_then(partial(_count_up_from, target))


def _count_up_from(target: int, value: int) -> IntEffect:
    return count_up(value, target)


async def _run_to(effect: IntEffect, expected: int) -> None:
    expect(await effect.run(None), Success(expected), "recursive loop")


async def bench_stack() -> list[bool]:
    print(f"\n## 4. Stack safety: {HUGE_STEPS:,} steps (recursion limit {sys.getrecursionlimit()})")
    verdicts: list[bool] = []
    try:
        start = time.perf_counter()
        huge = build_chain(HUGE_STEPS)
        built = time.perf_counter() - start
        result = await huge.run(None)
        ran = time.perf_counter() - start - built
        del huge
        expect(result, Success(HUGE_STEPS), "1M-step chain")
        verdicts.append(
            verdict(
                True,
                f"a {HUGE_STEPS:,}-step left-nested map/and_then chain completes",
                f"built in {built:.2f} s, ran in {ran:.2f} s",
            )
        )
    except RecursionError as error:
        verdicts.append(verdict(False, "a 1,000,000-step chain completes", repr(error)))
    try:
        seconds = await timed_async(partial(_run_to, count_up(0, LOOP_SMALL), LOOP_SMALL))
        small, _ = await peak_memory(partial(_run_to, count_up(0, LOOP_SMALL), LOOP_SMALL))
        start = time.perf_counter()
        large, _ = await peak_memory(partial(_run_to, count_up(0, HUGE_STEPS), HUGE_STEPS))
        traced = time.perf_counter() - start
        verdicts += [
            verdict(
                True,
                f"a {HUGE_STEPS:,}-iteration recursive and_then loop completes",
                f"{us_per(seconds, LOOP_SMALL)} per iteration untraced (over {LOOP_SMALL:,});"
                f" {traced:.1f} s for {HUGE_STEPS:,} under tracemalloc",
            ),
            verdict(
                large <= 1.5 * small,
                "the recursive loop's peak memory is flat (1M within 1.5x of 100k)",
                f"peak {small / 1024:.1f} KiB at {LOOP_SMALL:,}, {large / 1024:.1f} KiB"
                f" at {HUGE_STEPS:,} iterations (tracemalloc)",
            ),
        ]
    except RecursionError as error:
        verdicts.append(verdict(False, "a 1,000,000-iteration loop completes", repr(error)))
    return verdicts


async def run_all() -> list[bool]:
    verdicts = await bench_chain()
    verdicts += await bench_returns()
    verdicts += await bench_pool()
    verdicts += await bench_stack()
    return verdicts


def main() -> int:
    """Run every section, print a summary line and return 0 (goals are reported, not asserted)."""
    start = time.perf_counter()
    print(
        f"Effect core overhead: {ROUNDS} alternating rounds ({POOL_ROUNDS} for par_all_limit),"
        f" gc enabled, Python {sys.version.split()[0]}, trio {trio.__version__},"
        f" load average {load_average()}"
    )
    print("x ...: median of the per-round ratios; best/best: best time over best time")
    verdicts = trio.run(run_all)
    print(
        f"\n{sum(verdicts)}/{len(verdicts)} goals met in {time.perf_counter() - start:.1f} s,"
        f" load average now {load_average()} (a shared machine: rerun if a MISS is close)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
