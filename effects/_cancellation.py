"""Telling cancellation apart from defects, and unwrapping nursery exception groups."""

from __future__ import annotations

import trio

__all__ = ["is_cancellation", "raise_unwrapped"]


def is_cancellation(exc: BaseException) -> bool:
    """True for ``trio.Cancelled`` or an exception group holding only ``Cancelled``."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(inner) for inner in exc.exceptions)
    return False


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> None:
    """Re-raise a nursery's exception group the way the effect combinators promise.

    A group of cancellations only is re-raised as it is (trio's cancel scopes
    handle it); a single defect (beside any cancellations) is raised bare;
    several defects stay a group, without the cancellations.
    """
    if is_cancellation(group):
        raise group
    defects = [leaf for leaf in _leaves(group) if not isinstance(leaf, trio.Cancelled)]
    if len(defects) == 1:
        raise defects[0]
    raise BaseExceptionGroup("several effects raised", defects)
