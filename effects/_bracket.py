"""bracket: acquire a resource, use it, and always release it exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from effects._cancellation import is_cancellation
from effects._effect import Effect, RawOutcome, from_raw, interpret
from effects._errors import BracketError
from effects._exit import Exit

__all__ = ["bracket"]

R = TypeVar("R")
T = TypeVar("T")
E = TypeVar("E")
E2 = TypeVar("E2")
E3 = TypeVar("E3")
Env = TypeVar("Env")


def bracket(
    acquire: Effect[R, E, Env],
    use: Callable[[R], Effect[T, E2, Env]],
    release: Callable[[R, Exit[T, E2]], Effect[object, E3, Env]],
) -> Effect[T, E | E2 | BracketError[E3], Env]:
    """Acquire a resource, use it, and release it exactly once whatever happens.

    - ``acquire`` runs shielded from cancellation: if the caller is cancelled
      meanwhile, acquire completes, release runs with an ``Exit`` of kind
      ``cancelled`` and the cancellation goes on. If acquire fails, its
      failure is the result and release does not run.
    - ``use(resource)`` may be cancelled.
    - ``release(resource, exit)`` runs after every outcome of ``use`` —
      success, failure, defect, cancellation (``exit.kind`` says which) —
      inside a shielded cancel scope, so it can await while the caller is
      being cancelled.
    - A release that fails is never swallowed: after a success or failure of
      ``use`` the result is ``Failure(BracketError(release_error, outcome))``;
      after a defect the defect propagates with a note naming the release
      failure; after cancellation, cancellation propagates (a cancelled caller
      cannot receive a value) — use a defect in release if it must be seen.

    Nested brackets release in LIFO order (inner first).
    """

    async def run_bracket(env: Any) -> RawOutcome:
        with trio.CancelScope(shield=True):
            acquired, resource = await interpret(acquire, env)
        if not acquired:
            return False, resource
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            ok, value = await interpret(use(resource), env)
        except BaseException as exc:
            exit_: Exit[Any, Any] = Exit.cancelled() if is_cancellation(exc) else Exit.defect(exc)
            with trio.CancelScope(shield=True):
                released, release_error = await interpret(release(resource, exit_), env)
            if not released and exit_.kind == "defect":
                exc.add_note(f"bracket release also failed: {release_error}")
            raise
        exit_ = Exit.success(value) if ok else Exit.failure(value)
        with trio.CancelScope(shield=True):
            released, release_error = await interpret(release(resource, exit_), env)
        if not released:
            return False, BracketError(release_error, exit_)
        return ok, value

    return from_raw(run_bracket)
