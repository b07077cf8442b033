"""Retry policies and the retrying combinator."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, final

import attrs
import trio

from effects._effect import Effect, RawOutcome, from_raw, interpret
from effects._errors import RetryExhausted

__all__ = ["RetryPolicy", "retrying"]

E_contra = TypeVar("E_contra", contravariant=True)
T = TypeVar("T")
E = TypeVar("E")
Env = TypeVar("Env")

Schedule = Literal["constant", "linear", "exponential", "fibonacci"]

_jitter_source = random.Random()


def _retry_everything(_error: object) -> bool:
    return True


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"`{attribute.name}` must be at least 1, found {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"`{attribute.name}` must be non-negative, found {value!r}")


def _fraction(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"`{attribute.name}` must be between 0 and 1, found {value!r}")


@final
@attrs.frozen
class RetryPolicy(Generic[E_contra]):
    """When to try again, and how long to wait first.

    ``max_attempts`` counts every attempt, the first included. The delay
    after failed attempt ``n`` (1-based) is, before the ``max_delay`` cap:
    constant ``initial``; linear ``initial * n``; exponential
    ``initial * factor ** (n - 1)``; fibonacci ``initial * (1, 1, 2, 3, 5, ...)[n-1]``.
    There is no delay after the last attempt. ``jitter`` (0..1) scales each
    delay by a random factor in ``[1 - jitter, 1 + jitter]``. ``retry_if``
    decides whether an error is worth another attempt at all.

    Example::

        policy = RetryPolicy.exponential(0.5, max_attempts=4, max_delay=5.0)
        [policy.delay(n) for n in (1, 2, 3)]  # [0.5, 1.0, 2.0]
    """

    schedule: Schedule
    initial: float = attrs.field(validator=_non_negative)
    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    factor: float = attrs.field(default=2.0, validator=_non_negative)
    max_delay: float | None = attrs.field(default=None, validator=_non_negative)
    jitter: float = attrs.field(default=0.0, validator=_fraction)
    retry_if: Callable[[E_contra], bool] = _retry_everything

    @staticmethod
    def constant(
        delay: float,
        *,
        max_attempts: int = 3,
        max_delay: float | None = None,
        jitter: float = 0.0,
        retry_if: Callable[[E], bool] = _retry_everything,
    ) -> RetryPolicy[E]:
        """The same ``delay`` before every retry."""
        return RetryPolicy("constant", delay, max_attempts, 1.0, max_delay, jitter, retry_if)

    @staticmethod
    def linear(
        initial: float,
        *,
        max_attempts: int = 3,
        max_delay: float | None = None,
        jitter: float = 0.0,
        retry_if: Callable[[E], bool] = _retry_everything,
    ) -> RetryPolicy[E]:
        """Delays ``initial``, ``2 * initial``, ``3 * initial``, ..."""
        return RetryPolicy("linear", initial, max_attempts, 1.0, max_delay, jitter, retry_if)

    @staticmethod
    def exponential(
        initial: float,
        *,
        factor: float = 2.0,
        max_attempts: int = 3,
        max_delay: float | None = None,
        jitter: float = 0.0,
        retry_if: Callable[[E], bool] = _retry_everything,
    ) -> RetryPolicy[E]:
        """Delays ``initial``, ``initial * factor``, ``initial * factor ** 2``, ..."""
        return RetryPolicy(
            "exponential", initial, max_attempts, factor, max_delay, jitter, retry_if
        )

    @staticmethod
    def fibonacci(
        initial: float,
        *,
        max_attempts: int = 3,
        max_delay: float | None = None,
        jitter: float = 0.0,
        retry_if: Callable[[E], bool] = _retry_everything,
    ) -> RetryPolicy[E]:
        """Delays ``initial`` times 1, 1, 2, 3, 5, 8, ..."""
        return RetryPolicy("fibonacci", initial, max_attempts, 1.0, max_delay, jitter, retry_if)

    def delay(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (1-based), capped, without jitter."""
        if attempt < 1:
            raise ValueError(f"`attempt` must be at least 1, found {attempt!r}")
        if self.schedule == "constant":
            raw = self.initial
        elif self.schedule == "linear":
            raw = self.initial * attempt
        elif self.schedule == "exponential":
            raw = self.initial * self.factor ** (attempt - 1)
        else:
            previous, current = 0, 1
            for _ in range(attempt - 1):
                previous, current = current, previous + current
            raw = self.initial * current
        return raw if self.max_delay is None else min(raw, self.max_delay)

    def jittered_delay(self, attempt: int) -> float:
        """:meth:`delay` scaled by a random factor within ``jitter``."""
        base = self.delay(attempt)
        if self.jitter == 0:
            return base
        return base * _jitter_source.uniform(1 - self.jitter, 1 + self.jitter)


def retrying(effect: Effect[T, E, Env], policy: RetryPolicy[Any]) -> Effect[Any, Any, Any]:
    """The effect behind :meth:`Effect.retry`."""

    async def run_retrying(env: Any) -> RawOutcome:
        attempt = 1
        while True:
            ok, value = await interpret(effect, env)
            if ok or not policy.retry_if(value):
                return ok, value
            if attempt >= policy.max_attempts:
                return False, RetryExhausted(value, attempt)
            await trio.sleep(policy.jittered_delay(attempt))
            attempt += 1

    return from_raw(run_retrying)
