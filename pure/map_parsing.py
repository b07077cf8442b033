"""Reading the ``map`` block: item selection, ``agent_template``, parallelism and timeouts.

``filter`` and ``sort_by`` are checked by the expression parsers of
:mod:`pure.filters` and :mod:`pure.sorting`, ``json_path`` by jsonpath-ng's
extended parser, ``distinct`` as a field path, so a mistake in any of them is
a problem at parse time that points at the column inside the expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_json_path

from pure.expression_error import ExpressionError
from pure.field_path import FieldPathError, parse_field_path
from pure.filters import parse_filter
from pure.parse_context import ParseContext
from pure.policy_parsing import COMMAND_TIMEOUT_KEY, parse_timeout_config
from pure.sorting import parse_sort_by
from pure.step_parsing import parse_steps
from pure.workflow import (
    DEFAULT_MAX_PARALLEL,
    ClaudeCommand,
    EnvValue,
    MapConfig,
    ShellCommand,
    Step,
    TimeoutConfig,
)
from pure.workflow_error import Location
from pure.yaml_source import YamlMap, YamlScalar, YamlValue, child_path

__all__ = [
    "MAX_PARALLEL_REFERENCE",
    "check_max_parallel_values",
    "json_path_text",
    "parse_map",
]

MAX_PARALLEL_REFERENCE: Final = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
"""The whole of an unresolved ``max_parallel``: ``${VAR}`` or ``$VAR``."""

_MAP_KEYS: Final = frozenset(
    {
        "input",
        "json_path",
        "filter",
        "sort_by",
        "max_items",
        "offset",
        "distinct",
        "agent_template",
        "max_parallel",
        "agent_timeout_secs",
        "timeout_per_agent",
        "timeout_config",
    }
)
_MAP_UNSUPPORTED: Final = {"retry_on_failure": "Prodigy map retries; use error_policy.retry_config"}


def parse_map(ctx: ParseContext, value: YamlValue, path: str) -> MapConfig | None:
    mapping = ctx.mapping(value, path)
    if mapping is None:
        return None
    ctx.check_keys(mapping, path, _MAP_KEYS, _MAP_UNSUPPORTED, what="map")
    start = ctx.checkpoint()
    input_entry = ctx.require(mapping, "input", path)
    source = None if input_entry is None else ctx.non_empty_string(input_entry.value, "map.input")
    template = _agent_template(ctx, mapping, path)
    json_path = ctx.optional(
        mapping, "json_path", path, lambda v, p: json_path_text(ctx, v, p), None
    )
    timeout = _map_timeouts(ctx, mapping, path)
    given = mapping.get("max_parallel")
    parallel = None if given is None else _max_parallel(ctx, given.value, f"{path}.max_parallel")
    max_parallel: int | str = DEFAULT_MAX_PARALLEL if parallel is None else parallel
    config = MapConfig(
        input=source or "",
        agent_template=template or (),
        json_path=json_path,
        filter=ctx.optional(mapping, "filter", path, lambda v, p: _filter(ctx, v, p), None),
        sort_by=ctx.optional(mapping, "sort_by", path, lambda v, p: _sort_by(ctx, v, p), None),
        distinct=ctx.optional(mapping, "distinct", path, lambda v, p: _field_path(ctx, v, p), None),
        offset=ctx.optional(mapping, "offset", path, ctx.integer, 0),
        max_items=ctx.optional(mapping, "max_items", path, ctx.integer, None),
        max_parallel=max_parallel,
        agent_timeout_secs=None if timeout is None else timeout.agent_timeout_secs,
        timeout_config=timeout or TimeoutConfig(),
    )
    if template is not None and timeout is not None:
        _check_command_timeouts(ctx, timeout, template, child_path(path, "timeout_config"))
    return config if ctx.clean_since(start) else None


def _agent_template(ctx: ParseContext, mapping: YamlMap, path: str) -> tuple[Step, ...] | None:
    entry = ctx.require(mapping, "agent_template", path)
    if entry is None:
        return None
    template_path = child_path(path, "agent_template")
    steps = parse_steps(ctx, entry.value, template_path)
    if steps == ():
        ctx.problem(
            template_path,
            entry.value.location,
            "agent_template needs at least one step",
            expected="a list of steps",
            found="an empty list",
        )
        return None
    return steps


def _map_timeouts(ctx: ParseContext, mapping: YamlMap, path: str) -> TimeoutConfig | None:
    """``timeout_config`` with ``agent_timeout_secs`` (or ``timeout_per_agent``) folded in."""
    config = ctx.optional(
        mapping,
        "timeout_config",
        path,
        lambda v, p: parse_timeout_config(ctx, v, p),
        TimeoutConfig(),
    )
    given: list[tuple[str, float]] = []
    for key in ("agent_timeout_secs", "timeout_per_agent"):
        seconds = ctx.optional(mapping, key, path, ctx.duration, None)
        if seconds is not None:
            given.append((child_path(path, key), seconds))
    if config.agent_timeout_secs is not None:
        given.append((f"{path}.timeout_config.agent_timeout_secs", config.agent_timeout_secs))
    if len({seconds for _, seconds in given}) > 1:
        names = ", ".join(f"{key_path} = {seconds:g}" for key_path, seconds in given)
        ctx.problem(
            given[1][0],
            ctx.locations[given[1][0]],
            f"the agent timeout is given twice with different values: {names}",
            expected="one agent timeout",
            found=names,
        )
        return None
    agent = given[0][1] if given else None
    return TimeoutConfig(
        agent,
        config.command_timeouts,
        config.timeout_policy,
        config.cleanup_grace_period_secs,
        config.timeout_action,
    )


def _check_command_timeouts(
    ctx: ParseContext, config: TimeoutConfig, template: tuple[Step, ...], path: str
) -> None:
    kinds = {ShellCommand: "shell", ClaudeCommand: "claude"}
    for key in config.command_timeouts:
        match = COMMAND_TIMEOUT_KEY.fullmatch(key)
        assert match is not None
        if match.group(2) is None:
            continue
        index = int(match.group(2))
        key_path = child_path(child_path(path, "command_timeouts"), key)
        location = ctx.locations[key_path]
        if index >= len(template):
            ctx.problem(
                key_path,
                location,
                f"agent_template has {len(template)} steps; there is no step {index}",
                expected=f"an index from 0 to {len(template) - 1}",
                found=key,
            )
            continue
        actual = kinds.get(type(template[index].command), "write_file")
        if actual != match.group(1):
            ctx.problem(
                key_path,
                location,
                f"agent_template[{index}] is a {actual} step, not {match.group(1)}",
                expected=f"{actual}_{index}",
                found=key,
            )


def _max_parallel(ctx: ParseContext, value: YamlValue, path: str) -> int | str | None:
    if isinstance(value, YamlScalar) and value.value is None:
        return None
    if isinstance(value, YamlScalar) and isinstance(value.value, str):
        text = value.value.strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
        if MAX_PARALLEL_REFERENCE.fullmatch(text):
            return text
        ctx.mismatch(value, path, "an integer >= 1, or ${VAR} / $VAR naming a workflow variable")
        return None
    return ctx.positive_integer(value, path)


def check_max_parallel_values(
    ctx: ParseContext,
    config: MapConfig,
    env: dict[str, EnvValue],
    profiles: dict[str, dict[str, EnvValue]],
) -> None:
    """A ``${VAR}`` max_parallel: every value the workflow gives VAR must be an integer >= 1."""
    if not isinstance(config.max_parallel, str):
        return
    match = MAX_PARALLEL_REFERENCE.fullmatch(config.max_parallel)
    assert match is not None
    name = match.group("braced") or match.group("bare")
    defined = [("env", env)] + [(child_path("profiles", p), v) for p, v in profiles.items()]
    secret = any(name in variables and variables[name].secret for _, variables in defined)
    for where, variables in defined:
        if name in variables:
            text = variables[name].value.strip()
            if not (text.isdigit() and int(text) >= 1):
                key_path = child_path(where, name)
                shown = "a secret value" if secret else repr(text)
                ctx.problem(
                    key_path,
                    ctx.locations[key_path],
                    f"map.max_parallel is {config.max_parallel}, but {name} is {shown},"
                    " not an integer >= 1",
                    expected="an integer >= 1",
                    found=shown,
                )


# --- expressions --------------------------------------------------------------------------------


def _expression_location(value: YamlValue, column: int) -> Location:
    """Where column ``column`` of a scalar's text is, if the source shows the text verbatim."""
    location = value.location
    if isinstance(value, YamlScalar) and "\n" not in value.raw:
        if value.raw == value.text:
            return Location(location.line, location.column + column - 1)
        if value.raw[1:-1] == value.text and value.raw[:1] in ("'", '"'):
            return Location(location.line, location.column + column)
    return location


def _expression(
    ctx: ParseContext, value: YamlValue, path: str, what: str, parse: Callable[[str], object]
) -> str | None:
    text = ctx.non_empty_string(value, path)
    if text is None:
        return None
    try:
        parse(text)
    except ExpressionError as error:
        ctx.problem(
            path,
            _expression_location(value, error.column),
            f"invalid {what}: {error.message} (column {error.column} of {text!r})",
            expected=f"a valid {what}",
            found=repr(text),
        )
        return None
    return text


def _filter(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    return _expression(ctx, value, path, "filter", parse_filter)


def _sort_by(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    return _expression(ctx, value, path, "sort_by", parse_sort_by)


def json_path_text(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    """A JSONPath for jsonpath-ng's extended parser; the empty text means none (``None``)."""
    text = ctx.string(value, path)
    if not text:
        return None
    try:
        parse_json_path(text)
    except JSONPathError as error:
        ctx.problem(
            path,
            value.location,
            f"invalid json_path: {error}",
            expected="a JSONPath expression like $.items[*]",
            found=repr(text),
        )
        return None
    return text


def _field_path(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    text = ctx.string(value, path)
    if text is None:
        return None
    try:
        parse_field_path(text)
    except FieldPathError as error:
        ctx.problem(
            path,
            _expression_location(value, error.column),
            f"invalid field path: {error.message} at column {error.column}",
            expected="a field path like a.b[0]",
            found=repr(text),
        )
        return None
    return text
