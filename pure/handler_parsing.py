"""Reading ``on_failure`` and ``on_success``: the handler steps of a step, in Prodigy's forms.

``on_failure`` may be ``true``/``false``, a command string, a list of commands
and steps, a step with ``max_attempts``/``fail_workflow``, or the detailed
``{commands: [...], handler_failure_fatal, timeout}`` form. A string handler
starting with ``/`` is an agent (``claude``) command, any other a shell
command, as in Prodigy.
"""

from __future__ import annotations

from typing import Final

import attrs

from pure.parse_context import ParseContext
from pure.step_parsing import STEP_KEYS, UNSUPPORTED_STEP_KEYS, parse_step, step_from
from pure.workflow import ClaudeCommand, OnFailure, ShellCommand, Step
from pure.yaml_source import (
    YamlEntry,
    YamlList,
    YamlMap,
    YamlScalar,
    YamlValue,
    child_path,
    index_path,
)

__all__ = ["parse_handlers", "parse_on_failure"]

_ON_FAILURE_CONTROL: Final = frozenset({"max_attempts", "max_retries", "fail_workflow"})
_ON_FAILURE_UNSUPPORTED: Final = {
    **UNSUPPORTED_STEP_KEYS,
    "retry_original": "a deprecated Prodigy flag; max_attempts > 1 retries",
}
_DETAILED_KEYS: Final = frozenset(
    {"commands", "fail_workflow", "max_attempts", "max_retries", "handler_failure_fatal", "timeout"}
)
_DETAILED_UNSUPPORTED: Final = {
    "strategy": "Prodigy handler strategies",
    "capture": "Prodigy handler capture maps",
}


def _handler_from_string(ctx: ParseContext, value: YamlValue, path: str) -> Step | None:
    text = ctx.non_empty_string(value, path)
    if text is None:
        return None
    ctx.locations[path] = value.location
    return Step(ClaudeCommand(text) if text.startswith("/") else ShellCommand(text))


def _handler(ctx: ParseContext, value: YamlValue, path: str, *, in_commands: bool) -> Step | None:
    """One handler: a command string, or a step (with ``continue_on_error`` in ``commands``)."""
    if isinstance(value, YamlScalar) and isinstance(value.value, str):
        return _handler_from_string(ctx, value, path)
    if not in_commands or not isinstance(value, YamlMap) or value.get("continue_on_error") is None:
        return parse_step(ctx, value, path)
    ctx.locations[path] = value.location
    ctx.check_keys(
        value, path, STEP_KEYS | {"continue_on_error"}, UNSUPPORTED_STEP_KEYS, what="step"
    )
    entry = value.get("continue_on_error")
    assert entry is not None
    keep_going = ctx.boolean(entry.value, child_path(path, "continue_on_error"))
    step = step_from(ctx, value, path)
    if step is None or keep_going is None:
        return None
    if keep_going and step.on_failure is not None:
        ctx.problem(
            child_path(path, "continue_on_error"),
            entry.key_location,
            "give either continue_on_error or on_failure, not both",
            expected="one of continue_on_error, on_failure",
            found="both",
        )
        return None
    return attrs.evolve(step, on_failure=OnFailure()) if keep_going else step


def parse_handlers(
    ctx: ParseContext, value: YamlValue, path: str, *, in_commands: bool = False
) -> tuple[Step, ...] | None:
    """A handler step or a list of them."""
    items = value.items if isinstance(value, YamlList) else None
    if items is None:
        step = _handler(ctx, value, path, in_commands=in_commands)
        return None if step is None else (step,)
    start = ctx.checkpoint()
    steps = [
        _handler(ctx, item, index_path(path, i), in_commands=in_commands)
        for i, item in enumerate(items)
    ]
    if not ctx.clean_since(start):
        return None
    return tuple(step for step in steps if step is not None)


def parse_on_failure(ctx: ParseContext, mapping: YamlMap, path: str) -> OnFailure | None:
    """The ``on_failure`` of the step ``mapping``; ``None`` when absent, ``false`` or invalid."""
    entry = mapping.get("on_failure")
    if entry is None:
        return None
    return _on_failure(ctx, entry, child_path(path, "on_failure"))


def _on_failure(ctx: ParseContext, entry: YamlEntry, path: str) -> OnFailure | None:
    value = entry.value
    if isinstance(value, YamlScalar) and isinstance(value.value, bool):
        return OnFailure() if value.value else None
    if not isinstance(value, YamlMap):
        steps = parse_handlers(ctx, value, path)
        return None if steps is None else OnFailure(steps)
    if value.get("commands") is not None:
        return _detailed_on_failure(ctx, value, path)
    ctx.check_keys(
        value, path, STEP_KEYS | _ON_FAILURE_CONTROL, _ON_FAILURE_UNSUPPORTED, what="step"
    )
    start = ctx.checkpoint()
    attempts = _max_attempts(ctx, value, path)
    fail_workflow = ctx.optional(value, "fail_workflow", path, ctx.boolean, False)
    step_entries = tuple(e for e in value.entries if e.key not in _ON_FAILURE_CONTROL)
    handler: tuple[Step, ...] = ()
    if step_entries:
        ctx.locations[path] = value.location
        step = step_from(ctx, YamlMap(step_entries, value.location), path)
        handler = () if step is None else (step,)
    if not ctx.clean_since(start):
        return None
    return OnFailure(handler, attempts, fail_workflow)


def _detailed_on_failure(ctx: ParseContext, mapping: YamlMap, path: str) -> OnFailure | None:
    ctx.check_keys(mapping, path, _DETAILED_KEYS, _DETAILED_UNSUPPORTED, what="on_failure")
    start = ctx.checkpoint()
    commands = mapping.get("commands")
    assert commands is not None
    handler = parse_handlers(ctx, commands.value, child_path(path, "commands"), in_commands=True)
    attempts = _max_attempts(ctx, mapping, path)
    fail_workflow = ctx.optional(mapping, "fail_workflow", path, ctx.boolean, False)
    fatal = ctx.optional(mapping, "handler_failure_fatal", path, ctx.boolean, False)
    timeout = ctx.optional(mapping, "timeout", path, ctx.duration, None)
    if handler is None or not ctx.clean_since(start):
        return None
    return OnFailure(handler, attempts, fail_workflow, fatal, timeout)


def _max_attempts(ctx: ParseContext, mapping: YamlMap, path: str) -> int:
    if mapping.get("max_attempts") is not None and mapping.get("max_retries") is not None:
        entry = mapping.get("max_retries")
        assert entry is not None
        ctx.problem(
            child_path(path, "max_retries"),
            entry.key_location,
            "max_retries is another name for max_attempts; give only one",
            expected="one of max_attempts, max_retries",
            found="both",
        )
        return 1
    key = "max_retries" if mapping.get("max_retries") is not None else "max_attempts"
    return ctx.optional(mapping, key, path, ctx.positive_integer, 1)
