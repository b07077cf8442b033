"""The typed failures the Effect core itself produces."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from effects._exit import Exit

__all__ = ["BracketError", "ContextError", "RetryExhausted", "Timeout"]

E_co = TypeVar("E_co", covariant=True)


@attrs.frozen
class ContextError(Generic[E_co]):
    """A failure annotated with what was being done when it happened.

    ``trail`` lists the context messages innermost first; ``str()`` reads
    outermost to innermost: ``running agent 3: creating worktree: <error>``.
    """

    error: E_co
    trail: tuple[str, ...]

    def __str__(self) -> str:
        return ": ".join((*reversed(self.trail), str(self.error)))


@attrs.frozen
class Timeout:
    """The effect did not finish within ``seconds`` and was cancelled."""

    seconds: float

    def __str__(self) -> str:
        return f"timed out after {self.seconds:g} s"


@attrs.frozen
class RetryExhausted(Generic[E_co]):
    """Every one of ``attempts`` attempts failed; ``error`` is the last failure."""

    error: E_co
    attempts: int

    def __str__(self) -> str:
        return f"gave up after {self.attempts} attempts: {self.error}"


@attrs.frozen
class BracketError(Generic[E_co]):
    """A bracket's release failed with ``release_error``.

    ``outcome`` is the :class:`Exit` of the ``use`` step, so the caller still
    learns whether the work itself succeeded (and with which value) or failed.
    """

    release_error: E_co
    outcome: Exit[object, object]

    def __str__(self) -> str:
        return f"release failed after {self.outcome.kind}: {self.release_error}"
