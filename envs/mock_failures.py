"""Failure injection for the mock services: which calls fail, and with which error."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import final

import attrs

from envs.protocols import WorktreeError

__all__ = ["FailureInjector"]


@attrs.define
class _FailureRule:
    operation: str
    name: str | None
    nth: int | None
    remaining: int | None
    error: WorktreeError


@final
class FailureInjector:
    """Decides which calls of a mock service fail, and with which ``WorktreeError``.

    Rules are checked in the order added; the first that applies wins. Calls
    are counted per operation from 1 (the count includes calls no rule fails).
    """

    def __init__(self, operations: Iterable[str]) -> None:
        self._operations = frozenset(operations)
        self._rules: list[_FailureRule] = []
        self._counts: collections.Counter[str] = collections.Counter()

    def add(
        self,
        operation: str,
        *,
        name: str | None = None,
        nth: int | None = None,
        times: int | None = None,
        error: WorktreeError | None = None,
    ) -> None:
        """Fail ``operation`` on ``name`` (any when ``None``), on its ``nth`` call (any when
        ``None``), at most ``times`` times (always when ``None``)."""
        if operation not in self._operations:
            raise ValueError(
                f"`operation` must be one of {sorted(self._operations)}, got {operation!r}"
            )
        if nth is not None and nth < 1:
            raise ValueError(f"`nth` counts calls from 1, got {nth}")
        if times is not None and times < 1:
            raise ValueError(f"`times` must be at least 1, got {times}")
        failure = error or WorktreeError(operation, f"injected failure ({name or 'any'})")
        self._rules.append(_FailureRule(operation, name, nth, times, failure))

    def check(self, operation: str, name: str) -> WorktreeError | None:
        """Count one call of ``operation`` on ``name``; the error it must fail with, if any."""
        self._counts[operation] += 1
        count = self._counts[operation]
        for rule in self._rules:
            if (
                rule.operation == operation
                and rule.name in (None, name)
                and rule.nth in (None, count)
                and rule.remaining != 0
            ):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.error
        return None
