"""The Effect type: a lazy, re-runnable description of a computation, and its run loop.

An ``Effect[T, E, Env]`` needs an environment ``Env`` and ends in one of four
ways: a value ``T``, a typed failure ``E`` (a ``returns`` ``Failure``), a
defect (an exception that propagates out of :meth:`Effect.run`) or
cancellation (``trio.Cancelled``, which is never turned into a failure).

Building an effect performs no I/O. An effect is a small tree of nodes; the
run loop (:func:`interpret`) walks it with an explicit stack of continuation
frames instead of nested closures or recursive awaits, so chains of any length
and recursive loops written with :meth:`Effect.and_then` / :meth:`Effect.defer`
run in constant Python stack depth.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Generic, Never, TypeVar, final, overload

import trio
from returns.result import Failure, Result, Success

from effects._errors import ContextError

if TYPE_CHECKING:
    from effects._errors import BracketError, RetryExhausted, Timeout
    from effects._retry import RetryPolicy

__all__ = ["Effect", "interpret"]

T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)
Env_contra = TypeVar("Env_contra", contravariant=True)
T = TypeVar("T")
U = TypeVar("U")
E = TypeVar("E")
E2 = TypeVar("E2")
Env = TypeVar("Env")
Env2 = TypeVar("Env2")
X = TypeVar("X", bound=Exception)

# Leaf nodes: the run loop evaluates them to an outcome.
_PURE = 0  # a: value
_FAIL = 1  # a: error
_ASK = 2  # the environment itself
_SYNC = 3  # a: env -> Result
_ASYNC = 4  # a: async env -> Result
_RAW = 5  # a: async env -> (ok, value); the core's own combinators
_SLEEP = 6  # a: seconds
# Composite nodes (tag >= _MAP): they push a frame and descend into ``a``.
_MAP = 10  # b: value -> value
_BIND = 11  # b: value -> Effect
_CATCH = 12  # b: error -> Effect
_MAP_ERR = 13  # b: error -> error
_RECOVER = 14  # b: error -> value
_CONTEXT = 15  # b: message
_LOCAL = 16  # b: outer env -> inner env
_DEFER = 17  # a: () -> Effect
# Frame-only tag: restore the outer environment after a ``local`` block.
_RESTORE = 20

RawOutcome = tuple[bool, Any]


@final
class Effect(Generic[T_co, E_co, Env_contra]):
    """An immutable, lazy, re-runnable description of a computation.

    Think of it as an ``async def`` that has not been called yet, whose
    expected failures are values instead of exceptions, and which receives its
    dependencies (``Env``) only when it runs. Running the same effect twice
    runs it twice; nothing is cached.

    Example::

        eff = Effect.pure(20).map(lambda n: n + 1).and_then(lambda n: Effect.pure(n * 2))
        assert eff.run_sync(None) == Success(42)

    Typing: ``T`` and ``E`` are covariant and ``Env`` contravariant, so an
    ``Effect[int, Never, object]`` can stand wherever an
    ``Effect[int, MyError, MapEnv]`` is expected. :meth:`and_then` and the
    other combinators that compose two effects give the union of both error
    types (``E | E2``); narrow it with :meth:`map_err` when one error type is
    wanted.
    """

    __slots__ = ("_a", "_b", "_tag")

    # Immutable by contract: the fields are private, set once here and never
    # again (mypy enforces it through Final). A __setattr__ guard would make
    # every node twice as expensive to build, and building nodes is the hot
    # path of every chain.
    _tag: Final[int]
    _a: Final[Any]
    _b: Final[Any]

    def __init__(self, tag: int, a: Any, b: Any = None) -> None:
        self._tag = tag
        self._a = a
        self._b = b

    def __repr__(self) -> str:
        return f"<Effect node {self._tag}>"

    # -- constructors --------------------------------------------------------

    @staticmethod
    def pure(value: T) -> Effect[T, Never, object]:
        """An effect that succeeds with ``value``."""
        return Effect(_PURE, value)

    @staticmethod
    def fail(error: E) -> Effect[Never, E, object]:
        """An effect that fails with the typed error ``error``."""
        return Effect(_FAIL, error)

    @staticmethod
    def from_result(result: Result[T, E]) -> Effect[T, E, object]:
        """An effect that ends as ``result`` says."""
        if isinstance(result, Success):
            return Effect(_PURE, result.unwrap())
        return Effect(_FAIL, result.failure())

    @staticmethod
    def from_fn(fn: Callable[[Env], Result[T, E]]) -> Effect[T, E, Env]:
        """Call ``fn(env)`` when run; its ``Result`` is the outcome, its exceptions defects."""
        return Effect(_SYNC, fn)

    @staticmethod
    def from_async(fn: Callable[[Env], Awaitable[Result[T, E]]]) -> Effect[T, E, Env]:
        """Await ``fn(env)`` when run; its ``Result`` is the outcome, its exceptions defects.

        ``fn`` may await trio primitives; cancellation propagates through it.
        """
        return Effect(_ASYNC, fn)

    @overload
    @staticmethod
    def attempt(
        fn: Callable[[Env], Awaitable[T]], catch: type[X] | tuple[type[X], ...]
    ) -> Effect[T, X, Env]: ...

    @overload
    @staticmethod
    def attempt(
        fn: Callable[[Env], T], catch: type[X] | tuple[type[X], ...]
    ) -> Effect[T, X, Env]: ...

    @overload
    @staticmethod
    def attempt(
        fn: Callable[[Env], Awaitable[T]],
        catch: type[X] | tuple[type[X], ...],
        to_error: Callable[[X], E],
    ) -> Effect[T, E, Env]: ...

    @overload
    @staticmethod
    def attempt(
        fn: Callable[[Env], T],
        catch: type[X] | tuple[type[X], ...],
        to_error: Callable[[X], E],
    ) -> Effect[T, E, Env]: ...

    @staticmethod
    def attempt(
        fn: Callable[[Any], Any],
        catch: type[Exception] | tuple[type[Exception], ...],
        to_error: Callable[[Any], Any] | None = None,
    ) -> Effect[Any, Any, Any]:
        """Call ``fn(env)`` (sync or async); exceptions of the ``catch`` types become failures.

        A caught exception becomes ``Failure(to_error(exc))`` (or the exception
        itself without ``to_error``); any other exception stays a defect.
        ``catch`` may only name subclasses of ``Exception``, so cancellation,
        ``KeyboardInterrupt`` and ``SystemExit`` can never become failures.
        """
        catch_types = catch if isinstance(catch, tuple) else (catch,)
        for exc_type in catch_types:
            if not (isinstance(exc_type, type) and issubclass(exc_type, Exception)):
                raise TypeError(f"`catch` must name subclasses of Exception, found {exc_type!r}")

        async def run_attempt(env: Any) -> RawOutcome:
            try:
                value = fn(env)
                if inspect.isawaitable(value):
                    value = await value
            except catch_types as exc:
                return False, (to_error(exc) if to_error is not None else exc)
            return True, value

        return Effect(_RAW, run_attempt)

    @staticmethod
    def ask() -> Effect[Env, Never, Env]:
        """An effect whose value is the environment it runs in."""
        return Effect(_ASK, None)

    @staticmethod
    def asks(fn: Callable[[Env], T]) -> Effect[T, Never, Env]:
        """An effect whose value is ``fn(environment)``."""
        return Effect(_MAP, Effect(_ASK, None), fn)

    @staticmethod
    def sleep(seconds: float) -> Effect[None, Never, object]:
        """Sleep on trio's clock; cancellable. ``seconds`` must be non-negative."""
        if not seconds >= 0:
            raise ValueError(f"`seconds` must be non-negative, found {seconds!r}")

        return Effect(_SLEEP, seconds)

    @staticmethod
    def defer(thunk: Callable[[], Effect[T, E, Env]]) -> Effect[T, E, Env]:
        """Build the effect only when it runs (for recursion and fresh values per run)."""
        return Effect(_DEFER, thunk)

    # -- combinators ---------------------------------------------------------

    def map(self, fn: Callable[[T_co], U]) -> Effect[U, E_co, Env_contra]:
        """On success, transform the value with ``fn``; failures pass through."""
        return Effect(_MAP, self, fn)

    def and_then(
        self, fn: Callable[[T_co], Effect[U, E2, Env_contra]]
    ) -> Effect[U, E_co | E2, Env_contra]:
        """On success, continue with the effect ``fn(value)``; failures pass through."""
        return Effect(_BIND, self, fn)

    def map_err(self, fn: Callable[[E_co], E2]) -> Effect[T_co, E2, Env_contra]:
        """On failure, transform the error with ``fn``; values pass through."""
        return Effect(_MAP_ERR, self, fn)

    def or_else(
        self, fn: Callable[[E_co], Effect[U, E2, Env_contra]]
    ) -> Effect[T_co | U, E2, Env_contra]:
        """On failure, continue with the effect ``fn(error)``; values pass through."""
        return Effect(_CATCH, self, fn)

    def recover(self, fn: Callable[[E_co], U]) -> Effect[T_co | U, Never, Env_contra]:
        """On failure, succeed with ``fn(error)`` instead; this effect can no longer fail."""
        return Effect(_RECOVER, self, fn)

    def tap(
        self, fn: Callable[[T_co], Effect[object, E2, Env_contra]]
    ) -> Effect[T_co, E_co | E2, Env_contra]:
        """On success, run ``fn(value)`` for its effect and keep the value.

        If the tapped effect fails, its failure fails the chain.
        """
        return Effect(_BIND, self, lambda value: fn(value).map(lambda _: value))

    def tap_err(
        self, fn: Callable[[E_co], Effect[object, E2, Env_contra]]
    ) -> Effect[T_co, E_co | E2, Env_contra]:
        """On failure, run ``fn(error)`` for its effect, then fail with the original error.

        If the tapped effect itself fails, that failure replaces the original.
        """
        return Effect(
            _CATCH, self, lambda error: fn(error).and_then(lambda _: Effect(_FAIL, error))
        )

    def zip(
        self, other: Effect[U, E2, Env_contra]
    ) -> Effect[tuple[T_co, U], E_co | E2, Env_contra]:
        """Run this effect, then ``other``; succeed with both values as a tuple."""
        return Effect(_BIND, self, lambda a: Effect(_MAP, other, lambda b: (a, b)))

    def local(self, fn: Callable[[Env2], Env_contra]) -> Effect[T_co, E_co, Env2]:
        """Run this effect in the environment ``fn(outer_env)``.

        The outer environment is back in place for whatever follows.
        """
        return Effect(_LOCAL, self, fn)

    def context(self, message: str) -> Effect[T_co, ContextError[Any], Env_contra]:
        """On failure, record ``message`` in a :class:`ContextError` trail.

        The first ``context`` wraps the error; later ones append to the same
        trail (innermost first) instead of nesting wrappers.
        """
        return Effect(_CONTEXT, self, message)

    def retry(
        self, policy: RetryPolicy[Any]
    ) -> Effect[T_co, E_co | RetryExhausted[E_co], Env_contra]:
        """Re-run this effect from scratch after failures, as ``policy`` says.

        Success on any attempt is the result. A failure that
        ``policy.retry_if`` rejects comes back as itself at once; after
        ``policy.max_attempts`` failed attempts the result is
        ``RetryExhausted(last_error, attempts)``. The waits between attempts
        sleep on trio's clock and are cancellable.
        """
        from effects._retry import retrying

        return retrying(self, policy)

    def timeout(self, seconds: float) -> Effect[T_co, E_co | Timeout, Env_contra]:
        """Fail with :class:`Timeout` if this effect does not end within ``seconds``.

        On expiry the effect is cancelled first (its brackets release).
        """
        from effects._timeout import with_timeout

        return with_timeout(self, seconds)

    def ensuring(
        self, finalizer: Effect[object, E2, Env_contra]
    ) -> Effect[T_co, E_co | BracketError[E2], Env_contra]:
        """Run ``finalizer`` after this effect on every outcome, shielded from cancellation.

        A failing finalizer gives :class:`BracketError`; see :func:`bracket`.
        """
        from effects._bracket import bracket

        return bracket(Effect.pure(None), lambda _: self, lambda _r, _exit: finalizer)

    # -- running -------------------------------------------------------------

    async def run(self, env: Env_contra) -> Result[T_co, E_co]:
        """Run the effect in ``env`` inside trio: ``Success(value)`` or ``Failure(error)``.

        A defect propagates as its exception (after every finalizer ran);
        cancellation propagates as ``trio.Cancelled``.
        """
        ok, value = await interpret(self, env)
        return Success(value) if ok else Failure(value)

    def run_sync(
        self, env: Env_contra, *, clock: trio.abc.Clock | None = None
    ) -> Result[T_co, E_co]:
        """Run the effect in a fresh ``trio.run`` (optionally on ``clock``)."""
        return trio.run(self.run, env, clock=clock)


def _split(result: object) -> RawOutcome:
    if isinstance(result, Success):
        return True, result.unwrap()
    if isinstance(result, Failure):
        return False, result.failure()
    raise TypeError(f"an effect function must return a returns Result, found {result!r}")


def _with_context(error: Any, message: str) -> ContextError[Any]:
    if isinstance(error, ContextError):
        return ContextError(error.error, (*error.trail, message))
    return ContextError(error, (message,))


async def interpret(effect: Effect[Any, Any, Any], env: Any) -> RawOutcome:
    """Run ``effect`` in ``env`` and return ``(True, value)`` or ``(False, error)``.

    The explicit run loop behind :meth:`Effect.run`: composite nodes push a
    continuation frame and descend; a leaf produces an outcome, which is fed
    to the frames popped off the stack until one of them yields a new effect
    to run (``and_then``, ``or_else``) or the stack is empty.
    """
    # The stack holds the composite nodes themselves as continuation frames
    # (tag + function in one object, no allocation per frame), plus
    # _RESTORE nodes carrying the outer environment of a ``local`` block.
    tag = effect._tag
    if tag == _PURE:  # fast paths for leaves: par_all runs many of them
        return True, effect._a
    if tag == _RAW:
        return await effect._a(env)  # type: ignore[no-any-return]
    stack: list[Effect[Any, Any, Any]] = []
    push = stack.append
    pop = stack.pop
    current: Effect[Any, Any, Any] = effect
    ok: bool
    value: Any
    while True:
        tag = current._tag
        while tag >= _MAP:
            if tag == _DEFER:
                current = current._a()
            elif tag == _LOCAL:
                push(Effect(_RESTORE, None, env))
                env = current._b(env)
                current = current._a
            else:
                push(current)
                current = current._a
            tag = current._tag
        if tag == _PURE:
            ok, value = True, current._a
        elif tag == _RAW:
            ok, value = await current._a(env)
        elif tag == _FAIL:
            ok, value = False, current._a
        elif tag == _ASYNC:
            ok, value = _split(await current._a(env))
        elif tag == _SYNC:
            ok, value = _split(current._a(env))
        elif tag == _SLEEP:
            await trio.sleep(current._a)
            ok, value = True, None
        else:  # _ASK
            ok, value = True, env
        while stack:
            frame = pop()
            tag = frame._tag
            if ok:
                if tag == _MAP:
                    value = frame._b(value)
                elif tag == _BIND:
                    current = frame._b(value)
                    break
                elif tag == _RESTORE:
                    env = frame._b
            elif tag == _CATCH:
                current = frame._b(value)
                break
            elif tag == _MAP_ERR:
                value = frame._b(value)
            elif tag == _RECOVER:
                ok, value = True, frame._b(value)
            elif tag == _CONTEXT:
                value = _with_context(value, frame._b)
            elif tag == _RESTORE:
                env = frame._b
        else:
            return ok, value


def from_raw(fn: Callable[[Any], Awaitable[RawOutcome]]) -> Effect[Any, Any, Any]:
    """An effect from an async ``env -> (ok, value)`` function (the core's combinators)."""
    return Effect(_RAW, fn)
