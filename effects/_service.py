"""Turning a service call into an effect: the one bridge from effects to envs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Never, TypeVar

from returns.result import Result, Success

from effects._effect import Effect
from envs.environment import MapEnv, ServiceEnv

__all__ = ["call_map_service", "call_service", "emit_event"]

T = TypeVar("T")
E = TypeVar("E")


def call_service(fn: Callable[[ServiceEnv], Awaitable[Result[T, E]]]) -> Effect[T, E, ServiceEnv]:
    """An effect that awaits ``fn(env)`` — a call on one of the env's services — when run."""
    return Effect.from_async(fn)


def call_map_service(fn: Callable[[MapEnv], Awaitable[Result[T, E]]]) -> Effect[T, E, MapEnv]:
    """:func:`call_service` for calls that need the map phase's job (its branch)."""
    return Effect.from_async(fn)


def emit_event(kind: str, **fields: Any) -> Effect[None, Never, ServiceEnv]:
    """An effect that sends ``{"event": kind, **fields}`` to the environment's event sink."""

    def emit(env: ServiceEnv) -> Result[None, Never]:
        event: Mapping[str, Any] = {"event": kind, **fields}
        env.services.events.emit(event)
        return Success(None)

    return Effect.from_fn(emit)
