"""Reading ``error_policy`` (with its top-level shortcut keys) and ``map.timeout_config``.

Both follow Prodigy's keys and defaults. Durations are seconds, given as
numbers or as texts like ``"30s"``, ``"500ms"``, ``"5m"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, cast

from pure.parse_context import ParseContext
from pure.workflow import (
    Backoff,
    BackoffStrategy,
    CircuitBreakerConfig,
    ErrorCollection,
    ErrorPolicy,
    ItemFailureAction,
    RetryConfig,
    TimeoutAction,
    TimeoutConfig,
    TimeoutPolicy,
)
from pure.yaml_source import YamlMap, YamlScalar, YamlValue, child_path

__all__ = [
    "COMMAND_TIMEOUT_KEY",
    "ERROR_POLICY_SHORTCUTS",
    "parse_error_policy",
    "parse_timeout_config",
]

ERROR_POLICY_SHORTCUTS: Final = (
    "on_item_failure",
    "continue_on_failure",
    "max_failures",
    "failure_threshold",
    "error_collection",
)
_POLICY_KEYS: Final = frozenset({*ERROR_POLICY_SHORTCUTS, "retry_config", "circuit_breaker"})
_ITEM_ACTIONS: Final = ("dlq", "retry", "skip", "stop")
_BACKOFFS: Final = ("fixed", "linear", "exponential", "fibonacci")
_BACKOFF_FIELDS: Final = {
    "fixed": ("delay",),
    "linear": ("initial", "increment"),
    "exponential": ("initial", "multiplier"),
    "fibonacci": ("initial",),
}
_CIRCUIT_KEYS: Final = frozenset(
    {"failure_threshold", "success_threshold", "timeout", "half_open_requests"}
)
_TIMEOUT_KEYS: Final = frozenset(
    {
        "agent_timeout_secs",
        "command_timeouts",
        "timeout_policy",
        "cleanup_grace_period_secs",
        "timeout_action",
        "enable_monitoring",
    }
)
_TIMEOUT_POLICIES: Final = ("per_agent", "per_command", "hybrid")
_TIMEOUT_POLICY_ALIASES: Final = {
    "PerAgent": "per_agent",
    "PerCommand": "per_command",
    "Hybrid": "hybrid",
}
_TIMEOUT_ACTIONS: Final = ("dlq", "skip", "fail", "graceful_terminate")
_TIMEOUT_ACTION_ALIASES: Final = {
    "Dlq": "dlq",
    "Skip": "skip",
    "Fail": "fail",
    "GracefulTerminate": "graceful_terminate",
}
COMMAND_TIMEOUT_KEY: Final = re.compile(r"(claude|shell|write_file)(?:_(\d+))?")
"""A ``command_timeouts`` key: a step kind, optionally with an ``agent_template`` index."""


def parse_error_policy(
    ctx: ParseContext, policy: YamlValue | None, top: YamlMap, path: str = "error_policy"
) -> ErrorPolicy:
    """The error policy from ``error_policy`` and the top-level shortcut keys of ``top``.

    A shortcut key given at the top level overrides the same key in
    ``error_policy``, as in Prodigy. ``on_item_failure: retry`` without a
    ``retry_config`` retries with the default one.
    """
    mapping = None if policy is None else ctx.mapping(policy, path)
    if mapping is not None:
        ctx.check_keys(mapping, path, _POLICY_KEYS)
    values: dict[str, object] = {}
    for source, source_path in ((mapping, path), (top, "")):
        if source is not None:
            values.update(_policy_values(ctx, source, source_path))
    retry = None if mapping is None else _retry_config(ctx, mapping, path)
    circuit = None
    if mapping is not None:
        circuit = ctx.optional(
            mapping, "circuit_breaker", path, lambda v, p: _circuit_breaker(ctx, v, p), None
        )
    action = cast(ItemFailureAction, values.get("on_item_failure", "dlq"))
    if retry is not None and action != "retry":
        entry = mapping.get("retry_config") if mapping is not None else None
        assert entry is not None
        ctx.problem(
            child_path(path, "retry_config"),
            entry.key_location,
            f"retry_config has no effect unless on_item_failure is retry (it is {action})",
            expected="on_item_failure: retry",
            found=f"on_item_failure: {action}",
        )
    if action == "retry" and retry is None:
        retry = RetryConfig()
    return ErrorPolicy(
        on_item_failure=action,
        continue_on_failure=cast(bool, values.get("continue_on_failure", True)),
        max_failures=cast("int | None", values.get("max_failures")),
        failure_threshold=cast("float | None", values.get("failure_threshold")),
        error_collection=cast(ErrorCollection, values.get("error_collection", ErrorCollection())),
        retry_config=retry,
        circuit_breaker=circuit,
    )


def _policy_values(ctx: ParseContext, mapping: YamlMap, path: str) -> dict[str, object]:
    readers: dict[str, Callable[[YamlValue, str], object]] = {
        "on_item_failure": lambda v, p: _item_action(ctx, v, p),
        "continue_on_failure": ctx.boolean,
        "max_failures": ctx.integer,
        "failure_threshold": ctx.fraction,
        "error_collection": lambda v, p: _error_collection(ctx, v, p),
    }
    values: dict[str, object] = {}
    for key, reader in readers.items():
        value = ctx.optional(mapping, key, path, reader, None)
        if value is not None:
            values[key] = value
    return values


def _item_action(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    text = value.value if isinstance(value, YamlScalar) else None
    if isinstance(text, str) and text.startswith("custom:"):
        ctx.problem(
            path,
            value.location,
            f"unsupported: custom item-failure handler {text!r}"
            " is not supported by forkmerge (nor implemented by Prodigy)",
            expected="one of: " + ", ".join(_ITEM_ACTIONS),
            found=repr(text),
        )
        return None
    return ctx.choice(value, path, _ITEM_ACTIONS)


def _error_collection(ctx: ParseContext, value: YamlValue, path: str) -> ErrorCollection | None:
    expected = "aggregate, immediate, 'batched:N' or {batched: {size: N}}"
    if isinstance(value, YamlScalar) and isinstance(value.value, str):
        text = value.value
        if text == "aggregate":
            return ErrorCollection("aggregate")
        if text == "immediate":
            return ErrorCollection("immediate")
        batched = re.fullmatch(r"batched:\s*(\d+)", text)
        if batched is not None and int(batched.group(1)) >= 1:
            return ErrorCollection("batched", int(batched.group(1)))
    if isinstance(value, YamlMap) and [*value.keys()] == ["batched"]:
        ctx.locations[child_path(path, "batched")] = value.entries[0].key_location
        inner = ctx.mapping(value.entries[0].value, child_path(path, "batched"), "{size: N}")
        if inner is None:
            return None
        ctx.check_keys(inner, child_path(path, "batched"), {"size"})
        size = ctx.require(inner, "size", child_path(path, "batched"))
        count = (
            None
            if size is None
            else ctx.positive_integer(size.value, child_path(path, "batched.size"))
        )
        return None if count is None else ErrorCollection("batched", count)
    ctx.mismatch(value, path, expected)
    return None


def _retry_config(ctx: ParseContext, mapping: YamlMap, path: str) -> RetryConfig | None:
    entry = mapping.get("retry_config")
    if entry is None:
        return None
    retry_path = child_path(path, "retry_config")
    retry = ctx.mapping(entry.value, retry_path)
    if retry is None:
        return None
    ctx.check_keys(retry, retry_path, {"max_attempts", "backoff", "initial_delay"})
    start = ctx.checkpoint()
    attempts = ctx.optional(retry, "max_attempts", retry_path, ctx.positive_integer, 3)
    initial = ctx.optional(retry, "initial_delay", retry_path, ctx.delay, None)
    backoff = Backoff() if initial is None else Backoff(initial_delay=initial)
    backoff_entry = retry.get("backoff")
    if backoff_entry is not None:
        parsed = _backoff(ctx, backoff_entry.value, child_path(retry_path, "backoff"), initial)
        backoff = backoff if parsed is None else parsed
    return RetryConfig(attempts, backoff) if ctx.clean_since(start) else None


def _backoff(
    ctx: ParseContext, value: YamlValue, path: str, initial: float | None
) -> Backoff | None:
    """``exponential`` (delay in ``retry_config.initial_delay``) or ``{exponential: {...}}``."""
    if isinstance(value, YamlScalar):
        strategy = ctx.choice(value, path, _BACKOFFS)
        if strategy is None:
            return None
        return Backoff(
            cast(BackoffStrategy, strategy), initial_delay=1.0 if initial is None else initial
        )
    mapping = ctx.mapping(value, path, "a strategy name or {strategy: {...}}")
    if mapping is None:
        return None
    if len(mapping.entries) != 1 or mapping.entries[0].key not in _BACKOFFS:
        ctx.mismatch(value, path, "exactly one of: " + ", ".join(_BACKOFFS))
        return None
    entry = mapping.entries[0]
    strategy = cast(BackoffStrategy, entry.key)
    inner_path = child_path(path, entry.key)
    ctx.locations[inner_path] = entry.key_location
    if initial is not None:
        ctx.problem(
            inner_path,
            entry.key_location,
            "give the initial delay either in retry_config.initial_delay or here, not both",
            expected="one initial delay",
            found="two",
        )
        return None
    inner = ctx.mapping(entry.value, inner_path)
    if inner is None:
        return None
    ctx.check_keys(inner, inner_path, _BACKOFF_FIELDS[strategy])
    first = "delay" if strategy == "fixed" else "initial"
    return Backoff(
        strategy,
        initial_delay=ctx.optional(inner, first, inner_path, ctx.delay, 1.0),
        multiplier=ctx.optional(inner, "multiplier", inner_path, ctx.positive_number, 2.0),
        increment=ctx.optional(inner, "increment", inner_path, ctx.delay, 1.0),
    )


def _circuit_breaker(ctx: ParseContext, value: YamlValue, path: str) -> CircuitBreakerConfig | None:
    mapping = ctx.mapping(value, path)
    if mapping is None:
        return None
    ctx.check_keys(mapping, path, _CIRCUIT_KEYS)
    return CircuitBreakerConfig(
        failure_threshold=ctx.optional(mapping, "failure_threshold", path, ctx.positive_integer, 5),
        success_threshold=ctx.optional(mapping, "success_threshold", path, ctx.positive_integer, 3),
        timeout=ctx.optional(mapping, "timeout", path, ctx.duration, 30.0),
        half_open_requests=ctx.optional(
            mapping, "half_open_requests", path, ctx.positive_integer, 3
        ),
    )


def parse_timeout_config(ctx: ParseContext, value: YamlValue, path: str) -> TimeoutConfig | None:
    """``map.timeout_config``; ``enable_monitoring: false`` is unsupported (timeouts are events)."""
    mapping = ctx.mapping(value, path)
    if mapping is None:
        return None
    ctx.check_keys(mapping, path, _TIMEOUT_KEYS)
    start = ctx.checkpoint()
    monitoring = ctx.optional(mapping, "enable_monitoring", path, ctx.boolean, True)
    if not monitoring:
        entry = mapping.get("enable_monitoring")
        assert entry is not None
        ctx.problem(
            child_path(path, "enable_monitoring"),
            entry.key_location,
            "unsupported: timeout_config.enable_monitoring: false is not supported by"
            " forkmerge (timeouts are always recorded as events)",
            expected="true or no key",
            found="false",
        )
    config = TimeoutConfig(
        agent_timeout_secs=ctx.optional(mapping, "agent_timeout_secs", path, ctx.duration, None),
        command_timeouts=ctx.optional(
            mapping, "command_timeouts", path, lambda v, p: _command_timeouts(ctx, v, p), {}
        ),
        timeout_policy=cast(
            TimeoutPolicy,
            ctx.optional(
                mapping,
                "timeout_policy",
                path,
                lambda v, p: ctx.choice(v, p, _TIMEOUT_POLICIES, _TIMEOUT_POLICY_ALIASES),
                "per_agent",
            ),
        ),
        cleanup_grace_period_secs=ctx.optional(
            mapping, "cleanup_grace_period_secs", path, ctx.delay, 30.0
        ),
        timeout_action=cast(
            TimeoutAction,
            ctx.optional(
                mapping,
                "timeout_action",
                path,
                lambda v, p: ctx.choice(v, p, _TIMEOUT_ACTIONS, _TIMEOUT_ACTION_ALIASES),
                "dlq",
            ),
        ),
    )
    return config if ctx.clean_since(start) else None


def _command_timeouts(ctx: ParseContext, value: YamlValue, path: str) -> dict[str, float] | None:
    mapping = ctx.mapping(value, path, "a mapping like {claude: 300, shell_2: 60}")
    if mapping is None:
        return None
    start = ctx.checkpoint()
    result: dict[str, float] = {}
    for entry in mapping.entries:
        entry_path = child_path(path, entry.key)
        ctx.locations[entry_path] = entry.key_location
        if COMMAND_TIMEOUT_KEY.fullmatch(entry.key) is None:
            ctx.problem(
                entry_path,
                entry.key_location,
                f"expected a key like claude, shell or claude_0, found {entry.key!r}",
                expected="claude, shell, write_file, or one of them with _INDEX",
                found=repr(entry.key),
            )
            continue
        seconds = ctx.duration(entry.value, entry_path)
        if seconds is not None:
            result[entry.key] = seconds
    return result if ctx.clean_since(start) else None
