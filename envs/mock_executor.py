"""A scripted ``CommandExecutor``: rules say what each command prints, returns and takes.

Durations elapse with ``trio.sleep``, so on ``trio.testing.MockClock`` a test
of many slow commands runs in zero real time, and a running command can be
cancelled like a real process. A rule's side effect can change the mock
worktree the command runs in, so scripted agents "make changes".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeAlias, final

import attrs
import trio

from envs.mock_git import MockWorktreeManager
from envs.mock_store import CallRecorder
from envs.protocols import CommandResult, CommandSpec

__all__ = ["CommandRun", "Rule", "ScriptedExecutor", "delete_in_cwd", "write_in_cwd"]

Matcher: TypeAlias = str | re.Pattern[str] | Callable[[CommandSpec], bool]
"""A substring or regex searched in the command's texts, or a predicate on its spec."""

Text: TypeAlias = str | Callable[[CommandSpec], str]
"""Fixed output, or output computed from the command (``lambda spec: spec.argv[-1]``)."""

SideEffect: TypeAlias = Callable[[CommandSpec], None]


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"`{attribute.name}` must be non-negative, got {value}")


def _at_least_one(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 1:
        raise ValueError(f"`{attribute.name}` must be at least 1 or None, got {value}")


def _texts(spec: CommandSpec) -> tuple[str, ...]:
    """What a string or regex ``when`` is searched in: display, last argument, whole argv."""
    last = spec.argv[-1] if spec.argv else ""
    return (spec.display, last, " ".join(spec.argv))


@attrs.frozen
class Rule:
    """What a matching command does: its output, exit code, duration and side effect.

    ``when`` is a substring (``""`` matches everything) or compiled regex
    looked for in the command's ``display``, its last argument or its whole
    argv joined by spaces, or a predicate on the :class:`CommandSpec`.
    ``duration`` elapses on trio's clock; when the spec's ``timeout`` is
    shorter, the command is "killed" after ``timeout`` seconds with
    ``timed_out=True`` and ``exit_code=None`` (its output kept, as if printed
    before it hung) and its ``effect`` does not happen. ``effect(spec)`` runs
    when the command completes (not when it is cancelled or times out).
    ``times`` limits how many commands the rule answers (``None``: all); an
    exhausted rule is skipped, so ``Rule("test", exit_code=1, times=1)``
    followed by ``Rule("test")`` fails once and then passes.
    """

    when: Matcher
    stdout: Text = ""
    stderr: Text = ""
    exit_code: int = 0
    duration: float = attrs.field(default=0.0, validator=_non_negative)
    effect: SideEffect | None = None
    times: int | None = attrs.field(default=None, validator=_at_least_one)

    def matches(self, spec: CommandSpec) -> bool:
        """Whether this rule is about ``spec`` (ignoring ``times``)."""
        when = self.when
        if isinstance(when, str):
            return any(when in text for text in _texts(spec))
        if isinstance(when, re.Pattern):
            return any(when.search(text) for text in _texts(spec))
        return when(spec)


_UNMATCHED = Rule(when="")


@attrs.frozen
class CommandRun:
    """One command the executor ran: when (trio's clock), by which rule, and how it ended.

    ``rule`` is ``None`` for an unmatched command; ``ended`` and ``result``
    are ``None`` while it runs; a cancelled run has ``cancelled`` set and an
    ``ended`` time but no result.
    """

    spec: CommandSpec
    started: float
    rule: Rule | None
    ended: float | None = None
    result: CommandResult | None = None
    cancelled: bool = False


def _text(text: Text, spec: CommandSpec) -> str:
    return text if isinstance(text, str) else text(spec)


@final
class ScriptedExecutor:
    """A ``CommandExecutor`` that answers each command with the first matching :class:`Rule`.

    An unmatched command succeeds at once with empty output, unless
    ``strict``: then it raises ``AssertionError`` naming the command (a
    defect: the test did not script it). With ``worktrees``, a command whose
    ``cwd`` is neither an active mock worktree nor the repository cannot
    start: exit code 127 and the reason in stderr, as the real executor does.

    Records: ``calls`` (every spec, in order), ``runs`` (:class:`CommandRun`
    with start and end times), ``running`` and ``peak_running`` (how many run
    at once, now and at most), and ``("executor", "run", (spec,))`` in the
    shared ``recorder``.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        strict: bool = False,
        worktrees: MockWorktreeManager | None = None,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self.strict = strict
        self.worktrees = worktrees
        self.recorder = recorder if recorder is not None else CallRecorder()
        self.calls: list[CommandSpec] = []
        self.runs: list[CommandRun] = []
        self.running = 0
        self.peak_running = 0
        self._uses: dict[int, int] = {}

    def add(self, rule: Rule) -> Rule:
        """Append ``rule`` (checked after the rules already there)."""
        self.rules.append(rule)
        return rule

    def on(
        self,
        when: Matcher,
        *,
        stdout: Text = "",
        stderr: Text = "",
        exit_code: int = 0,
        duration: float = 0.0,
        effect: SideEffect | None = None,
        times: int | None = None,
    ) -> Rule:
        """Append a rule built from these fields: ``executor.on("make", exit_code=2)``."""
        return self.add(Rule(when, stdout, stderr, exit_code, duration, effect, times))

    async def run(self, spec: CommandSpec) -> CommandResult:
        self.recorder.record("executor", "run", spec)
        self.calls.append(spec)
        started = trio.current_time()
        problem = self._start_problem(spec)
        rule = None if problem else self._match(spec)
        index = len(self.runs)
        self.runs.append(CommandRun(spec, started, rule))
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            if problem:
                await trio.lowlevel.checkpoint()
                result = CommandResult(127, "", problem, trio.current_time() - started)
            else:
                result = await self._perform(rule or _UNMATCHED, spec, started)
        except trio.Cancelled:
            self.runs[index] = attrs.evolve(
                self.runs[index], ended=trio.current_time(), cancelled=True
            )
            raise
        finally:
            self.running -= 1
        self.runs[index] = attrs.evolve(self.runs[index], ended=trio.current_time(), result=result)
        return result

    def _start_problem(self, spec: CommandSpec) -> str | None:
        if not spec.argv:
            return "cannot start an empty command"
        if self.worktrees is None:
            return None
        places = {worktree.path for worktree in self.worktrees.active_worktrees()}
        if spec.cwd in places or spec.cwd == self.worktrees.repository.path:
            return None
        return f"cannot use working directory {spec.cwd!r}: No such file or directory"

    def _match(self, spec: CommandSpec) -> Rule | None:
        for index, rule in enumerate(self.rules):
            used = self._uses.get(index, 0)
            if (rule.times is None or used < rule.times) and rule.matches(spec):
                self._uses[index] = used + 1
                return rule
        if self.strict:
            raise AssertionError(
                f"no scripted rule matches the command {spec.display!r} "
                f"(argv {list(spec.argv)!r}, cwd {spec.cwd})"
            )
        return None

    async def _perform(self, rule: Rule, spec: CommandSpec, started: float) -> CommandResult:
        timed_out = spec.timeout is not None and spec.timeout < rule.duration
        await trio.sleep(spec.timeout if spec.timeout is not None and timed_out else rule.duration)
        if not timed_out and rule.effect is not None:
            rule.effect(spec)
        return CommandResult(
            exit_code=None if timed_out else rule.exit_code,
            stdout=_text(rule.stdout, spec),
            stderr=_text(rule.stderr, spec),
            duration=trio.current_time() - started,
            timed_out=timed_out,
        )


PathOf: TypeAlias = str | Callable[[CommandSpec], str]
ContentOf: TypeAlias = bytes | str | Callable[[CommandSpec], bytes | str]


def _worktree_path(worktrees: MockWorktreeManager, spec: CommandSpec) -> str:
    active = {worktree.path for worktree in worktrees.active_worktrees()}
    if spec.cwd not in active:
        raise AssertionError(
            f"the command {spec.display!r} ran in {spec.cwd}, which is not an active mock "
            f"worktree; active: {sorted(active)}"
        )
    return spec.cwd


def write_in_cwd(worktrees: MockWorktreeManager, path: PathOf, content: ContentOf) -> SideEffect:
    """A side effect writing ``content`` (``str`` as UTF-8) to ``path`` in the command's worktree.

    ``path`` and ``content`` may be computed from the spec, e.g. from the
    item text passed as the last argument:
    ``write_in_cwd(wts, "out.txt", lambda spec: spec.argv[-1])``.
    """

    def effect(spec: CommandSpec) -> None:
        where = _worktree_path(worktrees, spec)
        target = path if isinstance(path, str) else path(spec)
        data = content(spec) if callable(content) else content
        worktrees.set_file(where, target, data)

    return effect


def delete_in_cwd(worktrees: MockWorktreeManager, path: PathOf) -> SideEffect:
    """A side effect deleting ``path`` from the command's worktree."""

    def effect(spec: CommandSpec) -> None:
        where = _worktree_path(worktrees, spec)
        worktrees.delete_file(where, path if isinstance(path, str) else path(spec))

    return effect
