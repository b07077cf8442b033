"""Reading steps (``shell`` / ``claude`` / ``write_file`` and their options) from the YAML tree.

A step is a mapping with exactly one command key and the options of
docs/workflow-format.md; its ``on_failure`` and ``on_success`` handlers are
read by :mod:`pure.handler_parsing`.
"""

from __future__ import annotations

import re
from typing import Final, cast

from pure.parse_context import VARIABLE_PATTERN, ParseContext
from pure.workflow import (
    CaptureFormat,
    ClaudeCommand,
    Command,
    ShellCommand,
    Step,
    WriteFileCommand,
    WriteFileFormat,
)
from pure.yaml_source import (
    YamlList,
    YamlMap,
    YamlScalar,
    YamlValue,
    child_path,
    index_path,
)

__all__ = [
    "RESERVED_VARIABLES",
    "STEP_KEYS",
    "UNSUPPORTED_STEP_KEYS",
    "parse_step",
    "parse_steps",
    "step_from",
]

COMMAND_KEYS: Final = ("shell", "claude", "write_file")
STEP_KEYS: Final = frozenset(
    {
        *COMMAND_KEYS,
        "capture",
        "capture_output",
        "capture_format",
        "timeout",
        "env",
        "working_dir",
        "when",
        "on_failure",
        "on_success",
        "commit_required",
        "reads",
        "writes",
    }
)
UNSUPPORTED_STEP_KEYS: Final = {
    "validate": "Prodigy validation blocks",
    "step_validate": "Prodigy step validation",
    "skip_validation": "Prodigy validation blocks",
    "validation_timeout": "Prodigy validation blocks",
    "ignore_validation_failure": "Prodigy validation blocks",
    "goal_seek": "Prodigy goal-seeking steps",
    "foreach": "Prodigy foreach steps",
    "test": "Prodigy test steps; use shell with on_failure",
    "handler": "Prodigy modular handlers",
    "command": "legacy Prodigy command steps",
    "name": "legacy Prodigy step names",
    "capture_streams": "Prodigy capture_streams",
    "output_file": "Prodigy output_file",
    "on_exit_code": "Prodigy on_exit_code handlers",
    "retry": "Prodigy per-step retry; use on_failure with max_attempts",
    "auto_commit": "Prodigy auto_commit",
    "commit_config": "Prodigy commit_config",
}
_UNSUPPORTED_COMMANDS: Final = frozenset({"goal_seek", "foreach", "test", "handler", "command"})
_CAPTURE_FORMATS: Final = ("string", "json", "lines", "number", "boolean")
_WRITE_FILE_KEYS: Final = frozenset({"path", "content", "format", "create_dirs", "mode"})
_WRITE_FILE_FORMATS: Final = ("text", "json", "yaml")
_FILE_MODE: Final = re.compile(r"0?[0-7]{3}")
RESERVED_VARIABLES: Final = frozenset({"item", "map", "merge"})
_STEP_EXPECTED: Final = "a step (a mapping with shell, claude or write_file)"


def parse_steps(
    ctx: ParseContext, value: YamlValue, path: str, *, allow_commands_form: bool = True
) -> tuple[Step, ...] | None:
    """A list of steps, or (``allow_commands_form``) the older ``{commands: [...]}`` form."""
    if isinstance(value, YamlMap) and allow_commands_form:
        ctx.check_keys(value, path, {"commands"})
        entry = ctx.require(value, "commands", path)
        if entry is None:
            return None
        return parse_steps(
            ctx, entry.value, child_path(path, "commands"), allow_commands_form=False
        )
    if not isinstance(value, YamlList):
        ctx.mismatch(value, path, "a list of steps")
        return None
    start = ctx.checkpoint()
    steps = [parse_step(ctx, item, index_path(path, i)) for i, item in enumerate(value.items)]
    if not ctx.clean_since(start):
        return None
    return tuple(step for step in steps if step is not None)


def parse_step(ctx: ParseContext, value: YamlValue, path: str) -> Step | None:
    """One step; ``None`` after recording its problems."""
    ctx.locations[path] = value.location
    mapping = ctx.mapping(value, path, _STEP_EXPECTED)
    if mapping is None:
        return None
    ctx.check_keys(mapping, path, STEP_KEYS, UNSUPPORTED_STEP_KEYS, what="step")
    return step_from(ctx, mapping, path)


def step_from(ctx: ParseContext, mapping: YamlMap, path: str) -> Step | None:
    """Build a step from a mapping whose keys the caller has checked; ``None`` after problems."""
    start = ctx.checkpoint()
    command = _command(ctx, mapping, path)
    capture = _capture(ctx, mapping, path, command)
    capture_format = cast(
        CaptureFormat,
        ctx.optional(
            mapping,
            "capture_format",
            path,
            lambda v, p: ctx.choice(v, p, _CAPTURE_FORMATS),
            "string",
        ),
    )
    if mapping.get("capture_format") is not None and capture is None and command is not None:
        entry = mapping.get("capture_format")
        assert entry is not None
        ctx.problem(
            child_path(path, "capture_format"),
            entry.key_location,
            "capture_format has no effect without capture or capture_output",
            expected="capture or capture_output",
            found="capture_format alone",
        )
    # Steps and handlers nest in each other; the handler module imports this one.
    from pure.handler_parsing import parse_handlers, parse_on_failure

    on_failure = parse_on_failure(ctx, mapping, path)
    on_success: tuple[Step, ...] = ctx.optional(
        mapping, "on_success", path, lambda v, p: parse_handlers(ctx, v, p), ()
    )
    step = Step(
        command=command or ShellCommand(""),
        capture=capture,
        capture_format=capture_format,
        timeout=ctx.optional(mapping, "timeout", path, ctx.duration, None),
        env=ctx.optional(mapping, "env", path, lambda v, p: _step_env(ctx, v, p), {}),
        working_dir=ctx.optional(mapping, "working_dir", path, ctx.non_empty_string, None),
        when=ctx.optional(mapping, "when", path, ctx.non_empty_string, None),
        on_failure=on_failure,
        on_success=on_success,
        commit_required=ctx.optional(mapping, "commit_required", path, ctx.boolean, False),
        reads=ctx.optional(mapping, "reads", path, ctx.string_list, None),
        writes=ctx.optional(mapping, "writes", path, ctx.string_list, None),
    )
    return step if command is not None and ctx.clean_since(start) else None


def _command(ctx: ParseContext, mapping: YamlMap, path: str) -> Command | None:
    present = [entry for entry in mapping.entries if entry.key in COMMAND_KEYS]
    if len(present) != 1:
        if not present and any(e.key in _UNSUPPORTED_COMMANDS for e in mapping.entries):
            return None  # the unsupported command key was reported already
        found = " and ".join(entry.key for entry in present) or "none of them"
        where = present[1].key_location if present else mapping.location
        ctx.problem(
            path,
            where,
            f"a step needs exactly one of shell, claude or write_file; found {found}",
            expected="exactly one of shell, claude, write_file",
            found=found,
        )
        return None
    entry = present[0]
    entry_path = child_path(path, entry.key)
    if entry.key == "write_file":
        return _write_file(ctx, entry.value, entry_path)
    text = ctx.non_empty_string(entry.value, entry_path)
    if text is None:
        return None
    return ShellCommand(text) if entry.key == "shell" else ClaudeCommand(text)


def _write_file(ctx: ParseContext, value: YamlValue, path: str) -> WriteFileCommand | None:
    mapping = ctx.mapping(value, path, "a mapping with path and content")
    if mapping is None:
        return None
    start = ctx.checkpoint()
    ctx.check_keys(mapping, path, _WRITE_FILE_KEYS)
    target = ctx.require(mapping, "path", path)
    content = ctx.require(mapping, "content", path)
    target_text = (
        None if target is None else ctx.non_empty_string(target.value, child_path(path, "path"))
    )
    content_text = (
        None if content is None else ctx.string(content.value, child_path(path, "content"))
    )
    file_format = ctx.optional(
        mapping, "format", path, lambda v, p: ctx.choice(v, p, _WRITE_FILE_FORMATS), "text"
    )
    create_dirs = ctx.optional(mapping, "create_dirs", path, ctx.boolean, False)
    mode = ctx.optional(mapping, "mode", path, lambda v, p: _file_mode(ctx, v, p), 0o644)
    if target_text is None or content_text is None or not ctx.clean_since(start):
        return None
    return WriteFileCommand(
        target_text, content_text, cast(WriteFileFormat, file_format), create_dirs, mode
    )


def _file_mode(ctx: ParseContext, value: YamlValue, path: str) -> int | None:
    text = ctx.text(value, path)
    if text is not None and _FILE_MODE.fullmatch(text):
        return int(text, 8)
    if text is not None:
        ctx.mismatch(value, path, "permission bits in octal, like '0644'")
    return None


def _capture(ctx: ParseContext, mapping: YamlMap, path: str, command: Command | None) -> str | None:
    capture_entry = mapping.get("capture")
    output_entry = mapping.get("capture_output")
    capture = ctx.optional(mapping, "capture", path, lambda v, p: _variable(ctx, v, p), None)
    from_output: str | None = None
    if output_entry is not None:
        output_path = child_path(path, "capture_output")
        value = output_entry.value
        if isinstance(value, YamlScalar) and isinstance(value.value, bool):
            from_output = _default_capture(command) if value.value else None
        else:
            from_output = _variable(ctx, value, output_path)
    if capture_entry is not None and from_output is not None:
        assert output_entry is not None
        ctx.problem(
            child_path(path, "capture_output"),
            output_entry.key_location,
            "give either capture or capture_output, not both",
            expected="one of capture, capture_output",
            found="both",
        )
        return None
    result = capture if capture is not None else from_output
    if result is not None and isinstance(command, WriteFileCommand):
        entry = capture_entry or output_entry
        assert entry is not None
        ctx.problem(
            child_path(path, entry.key),
            entry.key_location,
            "a write_file step has no output to capture",
            expected="a shell or claude step",
            found="write_file",
        )
        return None
    return result


def _default_capture(command: Command | None) -> str | None:
    """Where ``capture_output: true`` stores the output: ``shell.output`` or ``claude.output``."""
    if command is None:
        return None
    kind = {ShellCommand: "shell", ClaudeCommand: "claude", WriteFileCommand: "write_file"}
    return f"{kind[type(command)]}.output"


def _variable(ctx: ParseContext, value: YamlValue, path: str) -> str | None:
    name = ctx.name(value, path, VARIABLE_PATTERN, "a variable name like 'count' or 'shell.output'")
    if name is not None and name.split(".")[0] in RESERVED_VARIABLES:
        ctx.problem(
            path,
            value.location,
            f"cannot capture into {name!r}: item, map and merge are reserved variables",
            expected="a variable name outside item, map and merge",
            found=repr(name),
        )
        return None
    return name


def _step_env(ctx: ParseContext, value: YamlValue, path: str) -> dict[str, str] | None:
    mapping = ctx.mapping(value, path, "a mapping of variable names to values")
    return None if mapping is None else ctx.variables(mapping, path, ctx.text)
