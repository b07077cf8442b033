"""Running many effects at once: par_all, par_all_limit, par_all_settled, race."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Never, TypeVar

import trio
from returns.result import Failure, Result, Success

from effects._cancellation import raise_unwrapped
from effects._effect import Effect, RawOutcome, from_raw, interpret

__all__ = ["Mode", "par_all", "par_all_limit", "par_all_settled", "race"]

T = TypeVar("T")
E = TypeVar("E")
Env = TypeVar("Env")

Mode = Literal["accumulate", "fail_fast"]


def _check_limit(limit: int) -> None:
    if not (isinstance(limit, int) and limit >= 1):
        raise ValueError(f"`limit` must be an integer of at least 1, found {limit!r}")


def _check_mode(mode: str) -> None:
    if mode not in ("accumulate", "fail_fast"):
        raise ValueError(f"`mode` must be 'accumulate' or 'fail_fast', found {mode!r}")


async def _run_pool(
    effects: Iterable[Effect[Any, Any, Any]], limit: int, fail_fast: bool, env: Any
) -> tuple[list[Any], dict[int, Any], Any]:
    """Run ``effects`` on ``limit`` worker tasks pulling from one shared iterator.

    Returns the values in input order (``None`` where an effect failed or
    never ran), the failures by input index, and the first failure (in time)
    when ``fail_fast`` stopped the pool.
    """
    values: list[Any] = []
    errors: dict[int, Any] = {}
    first_failure: list[Any] = []
    source = enumerate(effects)

    async def worker(cancel_scope: trio.CancelScope) -> None:
        for index, effect in source:
            values.append(None)
            ok, value = await interpret(effect, env)
            if ok:
                values[index] = value
                continue
            errors[index] = value
            if fail_fast:
                if not first_failure:
                    first_failure.append(value)
                cancel_scope.cancel()
                return
            if cancel_scope.cancel_called:
                return

    try:
        async with trio.open_nursery() as nursery:
            for _ in range(limit):
                nursery.start_soon(worker, nursery.cancel_scope)
    except BaseExceptionGroup as group:
        raise_unwrapped(group)
    return values, errors, first_failure[0] if first_failure else None


def _collect(values: list[Any], errors: dict[int, Any], first: Any, fail_fast: bool) -> RawOutcome:
    if not errors:
        return True, values
    if fail_fast:
        return False, [first]
    return False, [errors[index] for index in sorted(errors)]


def par_all_limit(
    effects: Iterable[Effect[T, E, Env]], limit: int, *, mode: Mode = "accumulate"
) -> Effect[list[T], list[E], Env]:
    """Run ``effects`` concurrently, at most ``limit`` at a time; values in input order.

    ``limit`` worker tasks pull effects lazily from ``effects`` (any iterable,
    a generator included: a one-shot iterable makes a one-shot effect), so
    never more than ``limit`` are started but unfinished.

    - ``mode="accumulate"``: every effect runs; ``Failure(errors in input
      order)`` if any failed, else ``Success(values in input order)``.
    - ``mode="fail_fast"``: the first failure cancels the running siblings
      (their brackets release), starts no more, and gives ``Failure([error])``.
    - A defect cancels the rest and propagates as that bare exception;
      several simultaneous defects propagate as an ``ExceptionGroup``.
    - Cancellation from outside cancels every running effect.
    """
    _check_limit(limit)
    _check_mode(mode)
    fail_fast = mode == "fail_fast"
    source = effects if not isinstance(effects, list | tuple) else tuple(effects)

    async def run_par_all_limit(env: Any) -> RawOutcome:
        values, errors, first = await _run_pool(source, limit, fail_fast, env)
        return _collect(values, errors, first, fail_fast)

    return from_raw(run_par_all_limit)


def par_all(
    effects: Iterable[Effect[T, E, Env]], *, limit: int | None = None, mode: Mode = "accumulate"
) -> Effect[list[T], list[E], Env]:
    """Run all ``effects`` concurrently in one nursery; values in input order.

    Same semantics as :func:`par_all_limit`; without ``limit`` every effect
    starts at once.
    """
    if limit is not None:
        return par_all_limit(effects, limit, mode=mode)
    _check_mode(mode)
    fail_fast = mode == "fail_fast"
    items = tuple(effects)

    async def run_par_all(env: Any) -> RawOutcome:
        values, errors, first = await _run_pool(items, max(1, len(items)), fail_fast, env)
        return _collect(values, errors, first, fail_fast)

    return from_raw(run_par_all)


def par_all_settled(
    effects: Iterable[Effect[T, E, Env]], *, limit: int | None = None
) -> Effect[list[Result[T, E]], Never, Env]:
    """Run every effect concurrently and report each one's ``Result``; never fails.

    Results are in input order. Defects and cancellation behave as in
    :func:`par_all_limit`.
    """
    if limit is not None:
        _check_limit(limit)
    source = effects if not isinstance(effects, list | tuple) else tuple(effects)

    async def run_par_all_settled(env: Any) -> RawOutcome:
        if limit is None:
            items = tuple(source)
            values, errors, _ = await _run_pool(items, max(1, len(items)), False, env)
        else:
            values, errors, _ = await _run_pool(source, limit, False, env)
        settled: list[Result[Any, Any]] = [
            Failure(errors[index]) if index in errors else Success(value)
            for index, value in enumerate(values)
        ]
        return True, settled

    return from_raw(run_par_all_settled)


def race(effects: Iterable[Effect[T, E, Env]]) -> Effect[T, list[E], Env]:
    """Run ``effects`` concurrently; the first to *succeed* wins and the rest are cancelled.

    If every effect fails, the result is ``Failure(errors in input order)``.
    A defect in any of them cancels the rest and propagates. An empty input
    is a ``ValueError`` when the race is built.
    """
    items = tuple(effects)
    if not items:
        raise ValueError("`effects` must not be empty: a race needs at least one effect")

    async def run_race(env: Any) -> RawOutcome:
        winner: list[Any] = []
        errors: list[Any] = [None] * len(items)

        async def contestant(
            index: int, effect: Effect[Any, Any, Any], scope: trio.CancelScope
        ) -> None:
            ok, value = await interpret(effect, env)
            if ok:
                if not winner:
                    winner.append(value)
                scope.cancel()
            else:
                errors[index] = value

        try:
            async with trio.open_nursery() as nursery:
                for index, effect in enumerate(items):
                    nursery.start_soon(contestant, index, effect, nursery.cancel_scope)
        except BaseExceptionGroup as group:
            raise_unwrapped(group)
        if winner:
            return True, winner[0]
        return False, errors

    return from_raw(run_race)
