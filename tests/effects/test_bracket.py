"""bracket and ensuring: release exactly once, on every outcome, shielded."""

from __future__ import annotations

from typing import Any, Never

import pytest
import trio
import trio.testing
from returns.result import Failure, Success

from effects import BracketError, Effect, Exit, bracket
from tests.effects.helpers import record


class Boom(Exception):
    pass


class Recorder:
    """Acquire/use/release effects that log what happened, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def acquire(self, name: str = "r", *, delay: float = 0) -> Effect[str, Never, object]:
        async def run(env: object) -> Success[str]:
            if delay:
                await trio.sleep(delay)
            self.log.append(("acquire", name))
            return Success(name)

        return Effect.from_async(run)

    def release(self, resource: str, exit_: Exit[Any, Any]) -> Effect[None, Never, object]:
        async def run(env: object) -> Success[None]:
            await trio.sleep(0)  # releasing may await even while cancelled
            self.log.append(("release", (resource, exit_.kind)))
            return Success(None)

        return Effect.from_async(run)


async def test_release_after_success_gets_the_value() -> None:
    exits: list[Exit[Any, Any]] = []

    def release(resource: str, exit_: Exit[Any, Any]) -> Effect[None, Never, object]:
        exits.append(exit_)
        return Effect.pure(None)

    eff = bracket(Effect.pure("r"), lambda r: Effect.pure(f"used {r}"), release)
    assert await eff.run(None) == Success("used r")
    assert exits == [Exit.success("used r")]


async def test_release_after_failure_gets_the_error() -> None:
    rec = Recorder()
    eff = bracket(rec.acquire(), lambda r: Effect.fail("use failed"), rec.release)
    assert await eff.run(None) == Failure("use failed")
    assert rec.log == [("acquire", "r"), ("release", ("r", "failure"))]


async def test_release_after_defect_then_the_defect_propagates() -> None:
    rec = Recorder()

    def use(resource: str) -> Effect[int, Never, object]:
        raise Boom("in use")

    with pytest.raises(Boom, match="in use"):
        await bracket(rec.acquire(), use, rec.release).run(None)
    assert rec.log == [("acquire", "r"), ("release", ("r", "defect"))]


async def test_release_after_cancellation_from_outside_while_in_use(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder()
    eff = bracket(rec.acquire(), lambda r: Effect.sleep(100), rec.release)
    with trio.move_on_after(5) as scope:
        await eff.run(None)
    assert scope.cancelled_caught
    assert rec.log == [("acquire", "r"), ("release", ("r", "cancelled"))]


async def test_acquire_is_shielded_and_release_sees_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder()
    used: list[str] = []

    def use(resource: str) -> Effect[None, Never, object]:
        return record(used, resource)

    eff = bracket(rec.acquire(delay=10), use, rec.release)
    with trio.move_on_after(1) as scope:
        await eff.run(None)
    assert scope.cancelled_caught
    assert used == []
    assert rec.log == [("acquire", "r"), ("release", ("r", "cancelled"))]


async def test_failed_acquire_skips_use_and_release() -> None:
    rec = Recorder()
    used: list[str] = []
    eff = bracket(
        Effect.fail("no resource"),
        lambda r: record(used, r),
        rec.release,
    )
    assert await eff.run(None) == Failure("no resource")
    assert used == [] and rec.log == []


async def test_failing_release_is_a_bracket_error_with_the_use_outcome() -> None:
    eff = bracket(
        Effect.pure("r"), lambda r: Effect.pure(1), lambda r, exit_: Effect.fail("rm failed")
    )
    error = (await eff.run(None)).failure()
    assert error == BracketError("rm failed", Exit.success(1))
    failed_use = bracket(
        Effect.pure("r"), lambda r: Effect.fail("use"), lambda r, exit_: Effect.fail("rm")
    )
    assert (await failed_use.run(None)).failure() == BracketError("rm", Exit.failure("use"))


async def test_failing_release_after_defect_is_noted_on_the_defect() -> None:
    def use(resource: str) -> Effect[int, Never, object]:
        raise Boom("in use")

    eff = bracket(Effect.pure("r"), use, lambda r, exit_: Effect.fail("rm failed"))
    with pytest.raises(Boom) as info:
        await eff.run(None)
    assert any("rm failed" in note for note in info.value.__notes__)


async def test_release_runs_exactly_once_per_run() -> None:
    rec = Recorder()
    eff = bracket(rec.acquire(), lambda r: Effect.pure(r), rec.release)
    for _ in range(3):
        await eff.run(None)
    assert [entry[0] for entry in rec.log] == ["acquire", "release"] * 3


async def test_nested_brackets_release_in_lifo_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder()
    eff = bracket(
        rec.acquire("outer"),
        lambda outer: bracket(rec.acquire("inner"), lambda inner: Effect.sleep(50), rec.release),
        rec.release,
    )
    with trio.move_on_after(1):
        await eff.run(None)
    assert rec.log == [
        ("acquire", "outer"),
        ("acquire", "inner"),
        ("release", ("inner", "cancelled")),
        ("release", ("outer", "cancelled")),
    ]


async def test_ensuring_runs_on_every_outcome(autojump_clock: trio.testing.MockClock) -> None:
    ran: list[str] = []
    finalizer: Effect[None, Never, object] = record(ran, "fin")

    assert await Effect.pure(1).ensuring(finalizer).run(None) == Success(1)
    assert await Effect.fail("e").ensuring(finalizer).run(None) == Failure("e")
    with pytest.raises(Boom):
        await (
            Effect.pure(1)
            .map(lambda n: (_ for _ in ()).throw(Boom()))
            .ensuring(finalizer)
            .run(None)
        )
    with trio.move_on_after(1):
        await Effect.sleep(10).ensuring(finalizer).run(None)
    assert ran == ["fin"] * 4


async def test_ensuring_with_a_failing_finalizer() -> None:
    eff = Effect.pure(1).ensuring(Effect.fail("cleanup failed"))
    assert (await eff.run(None)).failure() == BracketError("cleanup failed", Exit.success(1))
