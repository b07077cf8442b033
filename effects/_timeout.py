"""The timeout combinator."""

from __future__ import annotations

from typing import Any

import trio

from effects._effect import Effect, RawOutcome, from_raw, interpret
from effects._errors import Timeout

__all__ = ["with_timeout"]


def with_timeout(effect: Effect[Any, Any, Any], seconds: float) -> Effect[Any, Any, Any]:
    """The effect behind :meth:`Effect.timeout`; ``seconds`` must be non-negative."""
    if not seconds >= 0:
        raise ValueError(f"`seconds` must be non-negative, found {seconds!r}")

    async def run_with_timeout(env: Any) -> RawOutcome:
        with trio.move_on_after(seconds):
            return await interpret(effect, env)
        return False, Timeout(seconds)

    return from_raw(run_with_timeout)
