"""What a step will do, decided before anything runs: argv, display text, or a file write."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

import attrs
import yaml
from returns.result import Failure, Result, Success

from pure.capture import json_problem
from pure.interpolation import InterpolationError, try_interpolate
from pure.masking import mask
from pure.workflow import ClaudeCommand, ShellCommand, Step, WriteFileCommand, WriteFileFormat

__all__ = [
    "FileWrite",
    "ProcessCommand",
    "StepPlanError",
    "command_kind",
    "file_content",
    "plan_step_command",
    "safe_relative_path",
]


@attrs.frozen
class ProcessCommand:
    """Run ``argv``; ``display`` is the command as shown in logs (secrets masked)."""

    argv: tuple[str, ...]
    display: str


@attrs.frozen
class FileWrite:
    """Write ``content`` to ``path`` (relative to the worktree, already checked)."""

    path: str
    content: bytes
    create_dirs: bool
    display: str
    mode: int = 0o644


@attrs.frozen
class StepPlanError:
    """A step that cannot run as written: bad interpolation, path or file content."""

    message: str

    def __str__(self) -> str:
        return self.message


def command_kind(step: Step) -> str:
    """``shell``, ``claude`` or ``write_file``: the key the step was written with."""
    if isinstance(step.command, ShellCommand):
        return "shell"
    if isinstance(step.command, ClaudeCommand):
        return "claude"
    return "write_file"


def safe_relative_path(path: str) -> Result[str, str]:
    """Normalise a worktree-relative path; refuse one that is absolute or climbs out.

    The check is lexical; the environment additionally refuses symlinks that
    lead out of the worktree.
    """
    if not path or "\x00" in path:
        return Failure(f"expected a relative path inside the worktree, found {path!r}")
    if path.startswith("/"):
        return Failure(f"expected a relative path inside the worktree, found absolute {path!r}")
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return Failure(f"path {path!r} leaves the worktree")
    return Success(normal)


def file_content(content: str, file_format: WriteFileFormat) -> Result[bytes, str]:
    """The bytes ``write_file`` writes: text as is; json/yaml validated and pretty-printed.

    JSON is strict: ``NaN`` and ``Infinity``, which Python would accept, are refused.
    """
    if file_format == "text":
        return Success(content.encode())
    if file_format == "json":
        try:
            value: Any = json.loads(content, parse_constant=_not_json)
        except json.JSONDecodeError as error:
            return Failure(f"content is not valid JSON: {error.msg} at line {error.lineno}")
        except (ValueError, RecursionError) as error:
            return Failure(f"content is not valid JSON: {json_problem(error)}")
        return Success((json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())
    try:
        value = yaml.safe_load(content)
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        # ValueError: a date that does not exist, such as 2024-02-30.
        return Failure(f"content is not valid YAML: {_yaml_problem(error)}")
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    if "\x85" in text:  # PyYAML writes NEL raw in quoted scalars, where it reads back as a space
        text = yaml.safe_dump(value, sort_keys=False)
    return Success(text.encode())


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _yaml_problem(error: Exception) -> str:
    # Only the problem and its line: PyYAML's full message quotes the content, which may
    # hold a secret.
    if isinstance(error, yaml.MarkedYAMLError) and error.problem is not None:
        context = f"{error.context}: " if error.context else ""
        mark = error.problem_mark
        return f"{context}{error.problem}" + (f" at line {mark.line + 1}" if mark else "")
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).split("\n")[0] or type(error).__name__


def _interpolation_problem(error: InterpolationError, secrets: tuple[str, ...]) -> StepPlanError:
    return StepPlanError(mask(str(error), secrets))


def plan_step_command(
    step: Step,
    variables: Mapping[str, Any],
    *,
    agent_command: tuple[str, ...],
    shell: tuple[str, ...],
    secrets: tuple[str, ...] = (),
) -> Result[ProcessCommand | FileWrite, StepPlanError]:
    """Interpolate ``step`` against ``variables`` into what to run or write.

    ``shell:`` text is interpolated with shell quoting (values stay data) and
    run as ``shell + (text,)``; ``claude:`` text is interpolated as plain text
    and passed as one argument after ``agent_command``, never through a
    shell; ``write_file:`` interpolates path and content as text.
    """
    command = step.command
    if isinstance(command, ShellCommand):
        return (
            try_interpolate(command.text, variables, context="shell")
            .map(lambda text: ProcessCommand((*shell, text), mask(text, secrets)))
            .alt(lambda error: _interpolation_problem(error, secrets))
        )
    if isinstance(command, ClaudeCommand):
        return (
            try_interpolate(command.text, variables, context="text")
            .map(
                lambda text: ProcessCommand(
                    (*agent_command, text), mask(f"claude: {text}", secrets)
                )
            )
            .alt(lambda error: _interpolation_problem(error, secrets))
        )
    return _plan_write(command, variables, secrets)


def _plan_write(
    command: WriteFileCommand, variables: Mapping[str, Any], secrets: tuple[str, ...]
) -> Result[ProcessCommand | FileWrite, StepPlanError]:
    path = try_interpolate(command.path, variables, context="text")
    if isinstance(path, Failure):
        return Failure(_interpolation_problem(path.failure(), secrets))
    checked = safe_relative_path(path.unwrap())
    if isinstance(checked, Failure):
        return Failure(StepPlanError(mask(f"write_file: {checked.failure()}", secrets)))
    if checked.unwrap() == ".":
        problem = f"write_file: expected a file path, found {path.unwrap()!r}, the worktree itself"
        return Failure(StepPlanError(mask(problem, secrets)))
    content = try_interpolate(command.content, variables, context="text")
    if isinstance(content, Failure):
        return Failure(_interpolation_problem(content.failure(), secrets))
    data = file_content(content.unwrap(), command.format)
    if isinstance(data, Failure):
        problem = f"write_file {checked.unwrap()}: {data.failure()}"
        return Failure(StepPlanError(mask(problem, secrets)))
    return Success(
        FileWrite(
            checked.unwrap(),
            data.unwrap(),
            command.create_dirs,
            mask(f"write_file: {checked.unwrap()}", secrets),
            command.mode,
        )
    )
