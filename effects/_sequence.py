"""sequence: run effects one after another."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from effects._effect import Effect, RawOutcome, from_raw, interpret

__all__ = ["sequence"]

T = TypeVar("T")
E = TypeVar("E")
Env = TypeVar("Env")


def sequence(effects: Iterable[Effect[T, E, Env]]) -> Effect[list[T], E, Env]:
    """Run ``effects`` in order; succeed with their values, or stop at the first failure.

    The effects after a failure do not run. The iterable is read once, when
    the sequence is built, so the sequence can be run many times.
    """
    items = tuple(effects)

    async def run_sequence(env: Any) -> RawOutcome:
        values: list[Any] = []
        for effect in items:
            ok, value = await interpret(effect, env)
            if not ok:
                return False, value
            values.append(value)
        return True, values

    return from_raw(run_sequence)
