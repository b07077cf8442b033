"""with_cleanups: finalizers in priority then LIFO order, time-limited, never masking the result."""

from __future__ import annotations

from typing import Any, Never

import pytest
import trio
import trio.testing
from returns.result import Failure, Success

from effects import CleanupFailure, CleanupRegistry, Effect, Timeout, with_cleanups
from tests.effects.helpers import record


def registering(log: list[Any], body: Effect[Any, Any, object], *names: tuple[str, int]) -> Any:
    def use(registry: CleanupRegistry) -> Effect[Any, Any, object]:
        for name, priority in names:
            registry.register(name, record(log, name), priority=priority)
        return body

    return use


async def test_finalizers_run_by_priority_then_lifo() -> None:
    log: list[Any] = []
    use = registering(log, Effect.pure("done"), ("a", 0), ("b", 0), ("high", 5), ("c", 0))
    assert await with_cleanups(use).run(None) == Success("done")
    assert log == ["high", "c", "b", "a"]


async def test_finalizers_run_after_failure_and_defect_and_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    assert await with_cleanups(registering(log, Effect.fail("e"), ("x", 0))).run(None) == Failure(
        "e"
    )

    def explode(_: int) -> int:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await with_cleanups(registering(log, Effect.pure(1).map(explode), ("y", 0))).run(None)
    with trio.move_on_after(1):
        await with_cleanups(registering(log, Effect.sleep(10), ("z", 0))).run(None)
    assert log == ["x", "y", "z"]


async def test_a_failing_or_slow_finalizer_is_reported_not_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reported: list[list[CleanupFailure]] = []
    log: list[Any] = []

    def use(registry: CleanupRegistry) -> Effect[str, Never, object]:
        registry.register("after", record(log, "after"))
        registry.register("slow", Effect.sleep(100), timeout=5)
        registry.register("broken", Effect.fail("rm failed"))
        return Effect.pure("result")

    def report(failures: list[CleanupFailure]) -> Effect[None, Never, object]:
        return record(reported, failures)

    assert await with_cleanups(use, report=report).run(None) == Success("result")
    assert reported == [[CleanupFailure("broken", "rm failed"), CleanupFailure("slow", Timeout(5))]]
    assert log == ["after"]


def test_register_validates_timeout() -> None:
    registry = CleanupRegistry()
    with pytest.raises(ValueError, match="`timeout` must be positive"):
        registry.register("x", Effect.pure(None), timeout=0)
    registry.register("first", Effect.pure(None))
    registry.register("urgent", Effect.pure(None), priority=1)
    assert registry.registered() == ["urgent", "first"]
