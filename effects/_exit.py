"""How an effect ended: the value a bracket's release receives."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import attrs

__all__ = ["Exit", "ExitKind"]

T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)
T = TypeVar("T")
E = TypeVar("E")

ExitKind = Literal["success", "failure", "defect", "cancelled"]


@attrs.frozen
class Exit(Generic[T_co, E_co]):
    """Which of the four outcomes an effect had, with its payload.

    - ``success``: ``value`` holds the result;
    - ``failure``: ``error`` holds the typed failure;
    - ``defect``: ``exception`` holds the exception that escaped;
    - ``cancelled``: trio cancelled the effect (nothing else is set).
    """

    kind: ExitKind
    value: T_co | None = None
    error: E_co | None = None
    exception: BaseException | None = None

    @staticmethod
    def success(value: T) -> Exit[T, Any]:
        return Exit("success", value=value)

    @staticmethod
    def failure(error: E) -> Exit[Any, E]:
        return Exit("failure", error=error)

    @staticmethod
    def defect(exception: BaseException) -> Exit[Any, Any]:
        return Exit("defect", exception=exception)

    @staticmethod
    def cancelled() -> Exit[Any, Any]:
        return Exit("cancelled")
