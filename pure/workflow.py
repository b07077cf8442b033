"""The workflow model: a Prodigy-style MapReduce workflow as plain, immutable data.

A :class:`Workflow` is what :func:`pure.workflow_parsing.parse_workflow` builds
from a YAML file and what the phases plan from. Every default here is the
documented default of the workflow format (docs/workflow-format.md); the
parser fills nothing in that is not visible in these classes.

Mappings (``env``, ``profiles``, ...) are plain ``dict`` objects that nobody
mutates; they keep the source order of their keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, final

import attrs

from pure.workflow_error import Location

__all__ = [
    "DEFAULT_MAX_PARALLEL",
    "Backoff",
    "BackoffStrategy",
    "CaptureFormat",
    "CaptureMultiline",
    "CaptureSource",
    "CircuitBreakerConfig",
    "ClaudeCommand",
    "Command",
    "ErrorCollection",
    "ErrorPolicy",
    "EnvValue",
    "ItemFailureAction",
    "MapConfig",
    "MergeConfig",
    "OnFailure",
    "RetryConfig",
    "SetupCapture",
    "SetupConfig",
    "ShellCommand",
    "Step",
    "TimeoutAction",
    "TimeoutConfig",
    "TimeoutPolicy",
    "Workflow",
    "WriteFileCommand",
    "WriteFileFormat",
]

DEFAULT_MAX_PARALLEL: Final = 10

CaptureFormat = Literal["string", "json", "lines", "number", "boolean"]
WriteFileFormat = Literal["text", "json", "yaml"]
CaptureSource = Literal["stdout", "stderr", "both", "combined"]
CaptureMultiline = Literal["preserve", "join", "first_line", "last_line", "array"]
ItemFailureAction = Literal["dlq", "retry", "skip", "stop"]
BackoffStrategy = Literal["fixed", "linear", "exponential", "fibonacci"]
TimeoutPolicy = Literal["per_agent", "per_command", "hybrid"]
TimeoutAction = Literal["dlq", "skip", "fail", "graceful_terminate"]


# --- commands and steps ---------------------------------------------------------------------


@final
@attrs.frozen
class ShellCommand:
    """``shell:`` — a command line run by ``/bin/sh -c`` after interpolation."""

    text: str


@final
@attrs.frozen
class ClaudeCommand:
    """``claude:`` — an agent command, run through the configured agent executable."""

    text: str


@final
@attrs.frozen
class WriteFileCommand:
    """``write_file:`` — write interpolated ``content`` to ``path`` (relative to the worktree).

    ``format`` ``json``/``yaml`` means the content must parse as that format and
    is written pretty-printed; ``mode`` is the file's permission bits.
    """

    path: str
    content: str
    format: WriteFileFormat = "text"
    create_dirs: bool = False
    mode: int = 0o644


Command = ShellCommand | ClaudeCommand | WriteFileCommand


@final
@attrs.frozen
class OnFailure:
    """What happens when a step fails.

    The step runs up to ``max_attempts`` times in all; after each failed attempt
    the ``handler`` steps run (with ``${shell.output}`` / ``${claude.output}``
    of the failed attempt available). When the last attempt has failed, the
    step counts as failed only if ``fail_workflow`` — otherwise execution goes
    on with the next step (Prodigy's rule: a handler means "handled"). A failing
    handler step stops the handling; it fails the step only if
    ``handler_failure_fatal``. ``handler_timeout`` bounds the handler steps
    together, in seconds.

    ``on_failure: true`` is ``OnFailure(fail_workflow=False)`` with no handler:
    ignore the failure.
    """

    handler: tuple[Step, ...] = ()
    max_attempts: int = 1
    fail_workflow: bool = False
    handler_failure_fatal: bool = False
    handler_timeout: float | None = None


@final
@attrs.frozen
class Step:
    """One command of a phase with everything that says how it runs.

    ``capture`` is the variable the command's output is stored in after
    conversion by ``capture_format``; ``capture_output: true`` in the file
    means the default name, ``shell.output`` or ``claude.output``, which is
    what ``capture`` then holds. ``timeout`` is in seconds. ``when`` is a
    condition, interpolated and evaluated before the step; a false condition
    skips the step. ``on_success`` steps run after the step succeeded.
    ``commit_required`` makes the step fail when it created no commit.

    ``reads`` / ``writes`` are the step's declared footprint (variable names or
    paths) for dependency analysis; ``None`` means "not declared".
    """

    command: Command
    capture: str | None = None
    capture_format: CaptureFormat = "string"
    timeout: float | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)
    working_dir: str | None = None
    when: str | None = None
    on_failure: OnFailure | None = None
    on_success: tuple[Step, ...] = ()
    commit_required: bool = False
    reads: tuple[str, ...] | None = None
    writes: tuple[str, ...] | None = None


# --- environment ------------------------------------------------------------------------------


@final
@attrs.frozen
class EnvValue:
    """A workflow variable: its text and whether it must be masked in every log and error."""

    value: str
    secret: bool = False


# --- setup, map, merge ------------------------------------------------------------------------


@final
@attrs.frozen
class SetupCapture:
    """``setup.capture_outputs.NAME``: which setup step's output becomes variable NAME.

    ``source`` picks the stream; ``pattern`` (a regex; its first group if it has
    one) extracts part of it; ``multiline`` then shapes the lines;
    ``json_path`` selects from the output parsed as JSON; ``default`` replaces
    a failed extraction; at most ``max_size`` characters of output are kept.
    """

    step_index: int
    source: CaptureSource = "stdout"
    pattern: str | None = None
    json_path: str | None = None
    default: str | None = None
    multiline: CaptureMultiline = "preserve"
    max_size: int = 1024 * 1024


@final
@attrs.frozen
class SetupConfig:
    """The setup phase: steps run once in the job worktree before the map phase.

    ``timeout`` bounds the whole phase, in seconds (``None``: no limit).
    """

    steps: tuple[Step, ...] = ()
    timeout: float | None = None
    capture_outputs: Mapping[str, SetupCapture] = attrs.field(factory=dict)


@final
@attrs.frozen
class TimeoutConfig:
    """``map.timeout_config``: how long map agents and their commands may run.

    ``agent_timeout_secs`` is the same value as ``MapConfig.agent_timeout_secs``.
    ``command_timeouts`` maps ``claude``/``shell``/``write_file`` (every step
    of that kind) or ``claude_0`` (the kind and index of one ``agent_template``
    step) to seconds. ``timeout_policy``: ``per_agent`` bounds the whole agent;
    ``per_command`` gives each command the agent timeout unless overridden;
    ``hybrid`` bounds the agent and also applies the command overrides. On a
    timeout, ``timeout_action`` decides the item's fate after
    ``cleanup_grace_period_secs`` of grace for the process to exit.
    """

    agent_timeout_secs: float | None = None
    command_timeouts: Mapping[str, float] = attrs.field(factory=dict)
    timeout_policy: TimeoutPolicy = "per_agent"
    cleanup_grace_period_secs: float = 30.0
    timeout_action: TimeoutAction = "dlq"


@final
@attrs.frozen
class MapConfig:
    """The map phase: which items to process and the steps each agent runs for one item.

    ``input`` is a JSON file path or a shell command printing JSON. Items are
    selected by ``json_path``, then ``filter``, ``sort_by``, ``distinct``,
    ``offset`` and ``max_items``, in that order (see
    :mod:`pure.work_planning`). ``max_parallel`` is an ``int``, or the text of
    an unresolved ``${VAR}``/``$VAR`` reference to a workflow variable (see
    :func:`pure.workflow_resolution.resolve_max_parallel`).
    """

    input: str
    agent_template: tuple[Step, ...]
    json_path: str | None = None
    filter: str | None = None
    sort_by: str | None = None
    distinct: str | None = None
    offset: int = 0
    max_items: int | None = None
    max_parallel: int | str = DEFAULT_MAX_PARALLEL
    agent_timeout_secs: float | None = None
    timeout_config: TimeoutConfig = TimeoutConfig()


@final
@attrs.frozen
class MergeConfig:
    """A custom merge: steps that replace the default merge of the job branch into its parent.

    ``timeout`` bounds all merge steps together, in seconds.
    """

    steps: tuple[Step, ...]
    timeout: float | None = None


# --- error policy -----------------------------------------------------------------------------


@final
@attrs.frozen
class Backoff:
    """The delay before retry number *n* (1-based) of a failed item.

    ``fixed``: ``initial_delay``; ``linear``: ``initial_delay + n * increment``;
    ``exponential``: ``initial_delay * multiplier ** (n - 1)``;
    ``fibonacci``: ``initial_delay * fib(n)`` (1, 1, 2, 3, 5, ...). Seconds.
    """

    strategy: BackoffStrategy = "exponential"
    initial_delay: float = 1.0
    multiplier: float = 2.0
    increment: float = 1.0


@final
@attrs.frozen
class RetryConfig:
    """``error_policy.retry_config``: attempts per item in all (the first one included)."""

    max_attempts: int = 3
    backoff: Backoff = Backoff()


@final
@attrs.frozen
class CircuitBreakerConfig:
    """``error_policy.circuit_breaker``: stop starting items after consecutive failures.

    After ``failure_threshold`` consecutive failures the circuit opens (no new
    items start); after ``timeout`` seconds ``half_open_requests`` items may
    try; ``success_threshold`` successes close it again.
    """

    failure_threshold: int = 5
    success_threshold: int = 3
    timeout: float = 30.0
    half_open_requests: int = 3


@final
@attrs.frozen
class ErrorCollection:
    """How failures are reported: ``aggregate`` (at the end), ``immediate``, or ``batched``."""

    strategy: Literal["aggregate", "immediate", "batched"] = "aggregate"
    batch_size: int | None = None


@final
@attrs.frozen
class ErrorPolicy:
    """What the map phase does when items fail.

    ``on_item_failure``: ``dlq`` (record the item in the dead-letter queue and
    go on), ``retry`` (retry it by ``retry_config``), ``skip`` or ``stop``.
    ``continue_on_failure`` false stops the job at the first failure.
    The job also stops after ``max_failures`` failures or when the failed
    fraction exceeds ``failure_threshold`` (0..1).
    """

    on_item_failure: ItemFailureAction = "dlq"
    continue_on_failure: bool = True
    max_failures: int | None = None
    failure_threshold: float | None = None
    error_collection: ErrorCollection = ErrorCollection()
    retry_config: RetryConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None


# --- the workflow -----------------------------------------------------------------------------


@final
@attrs.frozen
class Workflow:
    """A whole MapReduce workflow file.

    ``profiles`` hold the overrides of named profiles (chosen at run time);
    ``profile_descriptions`` their optional ``description``. ``source`` names
    the file; ``locations`` maps every key path the file contains
    (``map.agent_template[1].shell``) to where it is, so later stages can point
    their errors into the file.
    """

    name: str
    map: MapConfig
    mode: Literal["mapreduce"] = "mapreduce"
    env: Mapping[str, EnvValue] = attrs.field(factory=dict)
    profiles: Mapping[str, Mapping[str, EnvValue]] = attrs.field(factory=dict)
    profile_descriptions: Mapping[str, str] = attrs.field(factory=dict)
    setup: SetupConfig = SetupConfig()
    reduce: tuple[Step, ...] = ()
    merge: MergeConfig | None = None
    error_policy: ErrorPolicy = ErrorPolicy()
    source: str = "<string>"
    locations: Mapping[str, Location] = attrs.field(factory=dict, eq=False, repr=False)
