"""``parse_workflow``: a Prodigy-style MapReduce workflow to a :class:`~pure.workflow.Workflow`.

The text is loaded with positions (:mod:`pure.yaml_source`) and walked
against the schema of docs/workflow-format.md. Every problem is collected,
with its key path, line and column and what was expected and found; a
feature of Prodigy that forkmerge leaves out is a problem saying
``unsupported:``. Nothing here raises for any input.
"""

from __future__ import annotations

import re
from typing import Final, cast

from returns.result import Failure, Result, Success

from pure.map_parsing import check_max_parallel_values, json_path_text, parse_map
from pure.parse_context import VARIABLE_PATTERN, ParseContext
from pure.policy_parsing import (
    ERROR_POLICY_SHORTCUTS,
    parse_error_policy,
)
from pure.step_parsing import RESERVED_VARIABLES, parse_steps
from pure.workflow import (
    CaptureMultiline,
    CaptureSource,
    EnvValue,
    MergeConfig,
    SetupCapture,
    SetupConfig,
    Step,
    Workflow,
)
from pure.workflow_error import WorkflowError
from pure.yaml_source import YamlMap, YamlValue, child_path, load_yaml

__all__ = ["parse_workflow"]

_TOP_KEYS: Final = frozenset(
    {
        "name",
        "mode",
        "env",
        "profiles",
        "setup",
        "map",
        "reduce",
        "merge",
        "error_policy",
        *ERROR_POLICY_SHORTCUTS,
    }
)
_TOP_UNSUPPORTED: Final = {
    "secrets": "Prodigy secrets blocks; declare a secret in env as {secret: true, value: ...}",
    "env_files": "Prodigy .env files",
    "commands": "standard, non-MapReduce Prodigy workflows",
    "imports": "Prodigy workflow composition",
    "extends": "Prodigy workflow composition",
    "template": "Prodigy workflow templates",
    "parameters": "Prodigy workflow parameters",
}
_SETUP_KEYS: Final = frozenset({"commands", "timeout", "capture_outputs"})
_CAPTURE_KEYS: Final = frozenset(
    {"command_index", "source", "pattern", "json_path", "default", "multiline", "max_size"}
)
_CAPTURE_SOURCES: Final = ("stdout", "stderr", "both", "combined")
_MULTILINE: Final = ("preserve", "join", "first_line", "last_line", "array")


def parse_workflow(text: str, *, source: str = "<string>") -> Result[Workflow, WorkflowError]:
    """Read a workflow; ``Failure(WorkflowError)`` lists every problem found, in source order."""
    root, load_problems = load_yaml(text, source)
    if root is None:
        return Failure(WorkflowError(load_problems))
    ctx = ParseContext(source)
    ctx.problems.extend(load_problems)
    top = ctx.mapping(root, "", "a mapping with name and map")
    workflow = None if top is None else _workflow(ctx, top)
    if workflow is None or ctx.problems:
        ordered = sorted(ctx.problems, key=lambda p: (p.line, p.column))
        return Failure(WorkflowError(tuple(ordered)))
    return Success(workflow)


def _workflow(ctx: ParseContext, top: YamlMap) -> Workflow | None:
    ctx.check_keys(top, "", _TOP_KEYS, _TOP_UNSUPPORTED, what="top-level")
    name_entry = ctx.require(top, "name", "")
    name = None if name_entry is None else ctx.non_empty_string(name_entry.value, "name")
    mode = top.get("mode")
    if mode is not None:
        _mode(ctx, mode.value)
    env: dict[str, EnvValue] = ctx.optional(top, "env", "", lambda v, p: _env(ctx, v, p), {})
    profiles, descriptions = _profiles(ctx, top)
    setup = ctx.optional(top, "setup", "", lambda v, p: _setup(ctx, v, p), SetupConfig())
    map_entry = ctx.require(top, "map", "")
    map_config = None if map_entry is None else parse_map(ctx, map_entry.value, "map")
    reduce: tuple[Step, ...] = ctx.optional(
        top, "reduce", "", lambda v, p: parse_steps(ctx, v, p), ()
    )
    merge = ctx.optional(top, "merge", "", lambda v, p: _merge(ctx, v, p), None)
    policy_entry = top.get("error_policy")
    policy = parse_error_policy(ctx, None if policy_entry is None else policy_entry.value, top)
    if map_config is not None:
        check_max_parallel_values(ctx, map_config, env, profiles)
    if name is None or map_config is None:
        return None
    return Workflow(
        name=name,
        map=map_config,
        env=env,
        profiles=profiles,
        profile_descriptions=descriptions,
        setup=setup,
        reduce=reduce,
        merge=merge,
        error_policy=policy,
        source=ctx.source,
        locations=ctx.locations,
    )


def _mode(ctx: ParseContext, value: YamlValue) -> None:
    text = ctx.string(value, "mode")
    if text is not None and text.lower() != "mapreduce":
        ctx.problem(
            "mode",
            value.location,
            f"unsupported: mode {text!r} (standard, non-MapReduce Prodigy workflows)"
            " is not supported by forkmerge",
            expected="mapreduce",
            found=repr(text),
        )


# --- env and profiles ---------------------------------------------------------------------------


def _env_value(ctx: ParseContext, value: YamlValue, path: str) -> EnvValue | None:
    if not isinstance(value, YamlMap):
        text = ctx.text(value, path)
        return None if text is None else EnvValue(text)
    ctx.check_keys(value, path, {"value", "secret"})
    start = ctx.checkpoint()
    entry = ctx.require(value, "value", path)
    text = None if entry is None else ctx.text(entry.value, child_path(path, "value"))
    secret = ctx.optional(value, "secret", path, ctx.boolean, False)
    return EnvValue(text, secret) if text is not None and ctx.clean_since(start) else None


def _env_entries(
    ctx: ParseContext, mapping: YamlMap, path: str, skip: frozenset[str] = frozenset()
) -> dict[str, EnvValue] | None:
    return ctx.variables(mapping, path, lambda value, at: _env_value(ctx, value, at), skip)


def _env(ctx: ParseContext, value: YamlValue, path: str) -> dict[str, EnvValue] | None:
    mapping = ctx.mapping(value, path, "a mapping of variable names to values")
    return None if mapping is None else _env_entries(ctx, mapping, path)


def _profiles(
    ctx: ParseContext, top: YamlMap
) -> tuple[dict[str, dict[str, EnvValue]], dict[str, str]]:
    entry = top.get("profiles")
    profiles: dict[str, dict[str, EnvValue]] = {}
    descriptions: dict[str, str] = {}
    mapping = None if entry is None else ctx.mapping(entry.value, "profiles")
    if mapping is None:
        return profiles, descriptions
    for profile in mapping.entries:
        path = child_path("profiles", profile.key)
        ctx.locations[path] = profile.key_location
        body = ctx.mapping(profile.value, path, "a mapping of variable overrides")
        if body is None:
            continue
        description = ctx.optional(body, "description", path, ctx.string, None)
        if description is not None:
            descriptions[profile.key] = description
        overrides = _env_entries(ctx, body, path, skip=frozenset({"description"}))
        if overrides is not None:
            profiles[profile.key] = overrides
    return profiles, descriptions


# --- phases -------------------------------------------------------------------------------------


def _setup(ctx: ParseContext, value: YamlValue, path: str) -> SetupConfig | None:
    if not isinstance(value, YamlMap):
        steps = parse_steps(ctx, value, path, allow_commands_form=False)
        return None if steps is None else SetupConfig(steps)
    ctx.check_keys(value, path, _SETUP_KEYS)
    commands = ctx.require(value, "commands", path)
    steps = None
    if commands is not None:
        steps = parse_steps(
            ctx, commands.value, child_path(path, "commands"), allow_commands_form=False
        )
    timeout = ctx.optional(value, "timeout", path, ctx.duration, None)
    captures: dict[str, SetupCapture] = ctx.optional(
        value, "capture_outputs", path, lambda v, p: _capture_outputs(ctx, v, p, steps), {}
    )
    return None if steps is None else SetupConfig(steps, timeout, captures)


def _capture_outputs(
    ctx: ParseContext, value: YamlValue, path: str, steps: tuple[Step, ...] | None
) -> dict[str, SetupCapture] | None:
    mapping = ctx.mapping(value, path, "a mapping of variable names to step indexes")
    if mapping is None:
        return None
    start = ctx.checkpoint()
    result: dict[str, SetupCapture] = {}
    for entry in mapping.entries:
        entry_path = child_path(path, entry.key)
        ctx.locations[entry_path] = entry.key_location
        if (
            VARIABLE_PATTERN.fullmatch(entry.key) is None
            or entry.key.split(".")[0] in RESERVED_VARIABLES
        ):
            ctx.problem(
                entry_path,
                entry.key_location,
                f"expected a variable name outside item, map and merge, found {entry.key!r}",
                expected="a variable name",
                found=repr(entry.key),
            )
            continue
        capture = _capture_output(ctx, entry.value, entry_path, steps)
        if capture is not None:
            result[entry.key] = capture
    return result if ctx.clean_since(start) else None


def _capture_output(
    ctx: ParseContext, value: YamlValue, path: str, steps: tuple[Step, ...] | None
) -> SetupCapture | None:
    start = ctx.checkpoint()
    if isinstance(value, YamlMap):
        ctx.check_keys(value, path, _CAPTURE_KEYS)
        index_entry = ctx.require(value, "command_index", path)
        index_path_ = child_path(path, "command_index")
        index = None if index_entry is None else ctx.integer(index_entry.value, index_path_)
        index_value = value if index_entry is None else index_entry.value
        source = ctx.optional(
            value, "source", path, lambda v, p: ctx.choice(v, p, _CAPTURE_SOURCES), "stdout"
        )
        multiline = ctx.optional(
            value, "multiline", path, lambda v, p: ctx.choice(v, p, _MULTILINE), "preserve"
        )
        capture = SetupCapture(
            step_index=0 if index is None else index,
            source=cast(CaptureSource, source),
            pattern=ctx.optional(value, "pattern", path, lambda v, p: _regex(ctx, v, p), None),
            json_path=ctx.optional(
                value, "json_path", path, lambda v, p: json_path_text(ctx, v, p), None
            ),
            default=ctx.optional(value, "default", path, ctx.text, None),
            multiline=cast(CaptureMultiline, multiline),
            max_size=ctx.optional(value, "max_size", path, ctx.positive_integer, 1024 * 1024),
        )
    else:
        index_path_, index_value = path, value
        index = ctx.integer(value, path)
        capture = SetupCapture(0 if index is None else index)
    if index is not None and steps is not None and index >= len(steps):
        ctx.problem(
            index_path_,
            index_value.location,
            f"setup has {len(steps)} steps; there is no step {index}",
            expected=f"a step index from 0 to {len(steps) - 1}",
            found=str(index),
        )
    return capture if index is not None and ctx.clean_since(start) else None


def _regex(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    text = ctx.string(value, path)
    if text is None:
        return None
    try:
        re.compile(text)
    except re.error as error:
        ctx.problem(
            path,
            value.location,
            f"invalid regular expression: {error}",
            expected="a regular expression",
            found=repr(text),
        )
        return None
    return text


def _merge(ctx: ParseContext, value: YamlValue, path: str) -> MergeConfig | None:
    if isinstance(value, YamlMap):
        ctx.check_keys(value, path, {"commands", "timeout"})
        commands = ctx.require(value, "commands", path)
        timeout = ctx.optional(value, "timeout", path, ctx.duration, None)
        if commands is None:
            return None
        steps = parse_steps(
            ctx, commands.value, child_path(path, "commands"), allow_commands_form=False
        )
        where = commands.value
    else:
        timeout = None
        steps = parse_steps(ctx, value, path, allow_commands_form=False)
        where = value
    if steps == ():
        ctx.problem(
            path,
            where.location,
            "a custom merge needs at least one step (leave merge out for the default merge)",
            expected="a list of steps",
            found="an empty list",
        )
        return None
    return None if steps is None else MergeConfig(steps, timeout)
