"""Shared helpers for benchmark scripts: side-by-side timing, ratios, task and memory peaks.

Benchmarks here never trust one absolute time: the machines that run them are
shared and noisy. Contenders are measured in the same process, alternating,
over several rounds (the order rotates each round so no contender always runs
first, right after a garbage collection or a cache-warming neighbour). Times
are reported as the median and the best of the rounds; ratios as the median
of per-round ratios (see :meth:`Samples.ratio_to`) and as the ratio of bests.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs
import trio

__all__ = [
    "Samples",
    "TaskCounter",
    "alternate_async",
    "expect",
    "gc_runs_while",
    "live_tasks",
    "load_average",
    "peak_memory",
    "peak_tasks",
    "print_table",
    "step_table",
    "timed",
    "timed_async",
    "timed_checked",
    "us_per",
    "verdict",
]

T = TypeVar("T")


@attrs.frozen
class Samples:
    """The times (seconds) one contender took, one per round."""

    name: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    def ratio_to(self, base: Samples) -> float:
        """The median over rounds of this time divided by ``base``'s time in the same round.

        Pairing by round cancels most of the load drift of a shared machine:
        both samples of a pair ran moments apart, under the same neighbours.
        """
        return statistics.median(
            mine / theirs for mine, theirs in zip(self.seconds, base.seconds, strict=True)
        )

    def best_ratio_to(self, base: Samples) -> float:
        """This contender's best time over ``base``'s best (noise only ever adds time)."""
        return self.best / base.best

    def ratios_to(self, base: Samples) -> str:
        """Both ratios, formatted: ``2.10x (best/best 2.05x)``."""
        return f"{self.ratio_to(base):.2f}x (best/best {self.best_ratio_to(base):.2f}x)"


# -- timing ---------------------------------------------------------------------------------


def expect(found: object, expected: object, what: str) -> None:
    """Stop if a contender computed the wrong thing: that is a bug, not a slow run."""
    if found != expected:
        raise RuntimeError(f"{what}: expected {expected!r}, found {found!r}")


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by ``fn()``, measured after a full collection (gc stays enabled)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def timed_async(fn: Callable[[], Awaitable[object]]) -> float:
    """Seconds taken by ``await fn()``, measured after a full collection (gc stays enabled)."""
    gc.collect()
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def timed_checked(fn: Callable[[], Awaitable[T]], expected: T, what: str) -> float:
    """:func:`timed_async`, then check (untimed) that ``fn`` computed ``expected``."""
    gc.collect()
    start = time.perf_counter()
    found = await fn()
    seconds = time.perf_counter() - start
    expect(found, expected, what)
    return seconds


async def alternate_async(
    contenders: dict[str, Callable[[], Awaitable[float]]], rounds: int
) -> dict[str, Samples]:
    """Run every contender once per round, rotating the order; each returns its own time.

    A contender returns the seconds it measured itself, so it can leave its
    set-up out of the timing (see :func:`timed_async`).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            times[name].append(await contenders[name]())
    return {name: Samples(name, tuple(seconds)) for name, seconds in times.items()}


def gc_runs_while(fn: Callable[[], object]) -> str:
    """How many collections of each generation ``fn()`` triggered, as ``gen0/gen1/gen2``."""
    before = [stats["collections"] for stats in gc.get_stats()]
    fn()
    after = [stats["collections"] for stats in gc.get_stats()]
    return "/".join(str(late - early) for early, late in zip(before, after, strict=True))


# -- tasks and memory -----------------------------------------------------------------------


class TaskCounter(trio.abc.Instrument):
    """A trio instrument counting live tasks and remembering the peak."""

    def __init__(self, live: int) -> None:
        self.live = live
        self.peak = live

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.live += 1
        self.peak = max(self.peak, self.live)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live -= 1


def live_tasks() -> int:
    """Every task alive in this trio run, found by walking the nurseries from the root task."""
    root = trio.lowlevel.current_root_task()
    pending = [] if root is None else [root]
    count = 0
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


async def peak_tasks(run: Callable[[], Awaitable[object]]) -> tuple[int, int]:
    """The number of live tasks before ``await run()``, and the peak while it runs."""
    before = live_tasks()
    counter = TaskCounter(before)
    trio.lowlevel.add_instrument(counter)
    try:
        await run()
    finally:
        trio.lowlevel.remove_instrument(counter)
    return before, counter.peak


async def peak_memory(run: Callable[[], Awaitable[T]]) -> tuple[int, T]:
    """Peak bytes allocated (tracemalloc) above the starting point during ``await run()``.

    Tracing slows every allocation several times over: never time under it.
    """
    tracemalloc.start()
    try:
        floor = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = await run()
        return tracemalloc.get_traced_memory()[1] - floor, result
    finally:
        tracemalloc.stop()


# -- reporting ------------------------------------------------------------------------------


def us_per(seconds: float, count: int) -> str:
    """``seconds`` spread over ``count`` operations, in microseconds, formatted."""
    return f"{seconds * 1e6 / count:.3f} µs"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how shared the machine was."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` as a left-aligned text table under ``headers``."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in [headers, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def step_table(samples: dict[str, Samples], count: int, base: Samples, unit: str) -> None:
    """One row per contender: time per step (median, best) and both ratios to ``base``."""
    rows = [
        [
            name,
            us_per(one.median, count),
            us_per(one.best, count),
            f"{one.ratio_to(base):.2f}x",
            f"{one.best_ratio_to(base):.2f}x",
        ]
        for name, one in samples.items()
    ]
    print_table(["contender", "median/step", "best/step", f"x {unit}", "best/best"], rows)


def verdict(met: bool, goal: str, measured: str) -> bool:
    """Print one ``PASS``/``MISS`` line for ``goal``; return ``met`` (goals are not asserted)."""
    print(f"{'PASS' if met else 'MISS'}  {goal}: {measured}")
    return met


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the architecture when unknown)."""
    model = platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        model = names[0] if names else model
    return model


def file_system(path: str) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    real = os.path.realpath(path)
    found = (-1, "unknown")
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            _device, point, kind, *_rest = line.split()
            if real == point or real.startswith(point.rstrip("/") + "/"):
                found = max(found, (len(point), kind))
    return found[1]
