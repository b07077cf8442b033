"""Small effects shared by the Effect core tests."""

from __future__ import annotations

from typing import Any, Never

from returns.result import Success

from effects import Effect


def record(log: list[Any], entry: Any) -> Effect[None, Never, object]:
    """An effect that appends ``entry`` to ``log`` when it runs."""

    def append(env: object) -> Success[None]:
        log.append(entry)
        return Success(None)

    return Effect.from_fn(append)
