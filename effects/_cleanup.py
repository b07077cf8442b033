"""A cleanup registry: finalizers registered while a scope runs, run when it ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Never, TypeVar, final

import attrs
import trio

from effects._bracket import bracket
from effects._effect import Effect, RawOutcome, from_raw, interpret
from effects._errors import BracketError, Timeout
from effects._exit import Exit

__all__ = ["CleanupFailure", "CleanupRegistry", "with_cleanups"]

T = TypeVar("T")
E = TypeVar("E")
Env = TypeVar("Env")

DEFAULT_CLEANUP_TIMEOUT = 30.0


@attrs.frozen
class CleanupFailure:
    """A finalizer that failed (``error``) or ran past its time limit (a ``Timeout``)."""

    name: str
    error: object

    def __str__(self) -> str:
        return f"cleanup {self.name!r} failed: {self.error}"


@attrs.frozen
class _Entry:
    name: str
    finalizer: Effect[Any, Any, Any]
    priority: int
    timeout: float
    order: int


@final
class CleanupRegistry:
    """Finalizers to run when the scope of :func:`with_cleanups` ends, however it ends.

    Think of it as a stack of ``finally`` blocks that code deep inside the
    scope can push onto: higher ``priority`` runs first, and among equals the
    last registered runs first (LIFO, like nested brackets). Each finalizer
    has its own time limit.
    """

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def register(
        self,
        name: str,
        finalizer: Effect[Any, Any, Any],
        *,
        priority: int = 0,
        timeout: float = DEFAULT_CLEANUP_TIMEOUT,
    ) -> None:
        """Run ``finalizer`` when the scope ends (see the class docstring for the order)."""
        if not timeout > 0:
            raise ValueError(f"`timeout` must be positive, found {timeout!r}")
        self._entries.append(_Entry(name, finalizer, priority, timeout, len(self._entries)))

    def registered(self) -> list[str]:
        """The names of the finalizers, in the order they will run."""
        return [entry.name for entry in self._ordered()]

    def _ordered(self) -> list[_Entry]:
        return sorted(self._entries, key=lambda entry: (-entry.priority, -entry.order))

    def _run_all(self) -> Effect[list[CleanupFailure], Never, Any]:
        async def run(env: Any) -> RawOutcome:
            failures: list[CleanupFailure] = []
            for entry in self._ordered():
                with trio.move_on_after(entry.timeout) as scope:
                    ok, error = await interpret(entry.finalizer, env)
                    if not ok:
                        failures.append(CleanupFailure(entry.name, error))
                if scope.cancelled_caught:
                    failures.append(CleanupFailure(entry.name, Timeout(entry.timeout)))
            return True, failures

        return from_raw(run)


def with_cleanups(
    use: Callable[[CleanupRegistry], Effect[T, E, Env]],
    *,
    report: Callable[[list[CleanupFailure]], Effect[Any, Never, Env]] | None = None,
) -> Effect[T, E | BracketError[Never], Env]:
    """Run ``use(registry)``, then every finalizer it registered, on every outcome.

    The finalizers run after success, failure, defect and cancellation,
    shielded (as a bracket's release), each within its own timeout. A
    finalizer's failure never replaces the scope's own result: the failures
    go to ``report`` (e.g. an event the orphan cleaner acts on later).
    """

    def release(registry: CleanupRegistry, _exit: Exit[Any, Any]) -> Effect[None, Never, Env]:
        ran = registry._run_all()
        if report is None:
            return ran.map(lambda _: None)
        reporter = report
        return ran.and_then(
            lambda failures: reporter(failures) if failures else Effect.pure(None)
        ).map(lambda _: None)

    acquire: Effect[CleanupRegistry, Never, Env] = Effect.defer(
        lambda: Effect.pure(CleanupRegistry())
    )
    return bracket(acquire, use, release)
