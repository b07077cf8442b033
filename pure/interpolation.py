"""Interpolation of ``${...}`` and ``$NAME`` references into commands and text, safe for sh.

A template refers to workflow variables the way Prodigy workflows do:

* ``${item}``, ``${item.location.file}``, ``${item.tags[0]}`` (also
  ``${item.tags.0}``), ``${map.results}``, ``${shell.output}``, ``${NAME}``
  and ``$NAME``. The first segment names a variable; the rest is a
  :mod:`pure.field_path` into its value. A key that contains dots, such as a
  capture stored as ``"validation.gaps"``, is looked up whole first: the
  longest dotted prefix that is a variable wins.
* ``${ref:-default}`` (also Prodigy's ``${ref|default:text}``) inserts the
  literal ``default`` when the reference is missing, null or the empty
  string; the default is text, not a template (in the shell it is quoted
  like a value). A ``${...}`` ends at the first ``}``, on the same line.
* ``${ref:json}`` inserts the value as JSON even when it is a string;
  ``${ref:raw}`` inserts it with no shell quoting at all (a deliberate
  opt-out: the value becomes shell syntax).

Values render as themselves when they are strings and as compact JSON
otherwise (``true``, ``null``, ``3``, ``{"a":[1,2]}``).

What is left as written, for the shell: ``$$``; a plain ``$NAME`` or
``${NAME}`` that is no variable (``$HOME``, a loop's ``$i``); special
parameters and other shell syntax (``$?``, ``$1``, ``$@``, ``${#x}``,
``${x%.txt}``, ``${arr[@]}``, ``$(...)``, ``$((...))``); and, in the shell
context only, ``${NAME:-default}`` when ``NAME`` is no variable (the shell
applies the same default, seeing its real environment), a reference whose
``$`` follows an odd number of backslashes (``\\${item}``: the shell's own
escape for a literal ``$``), and a reference inside a ``# comment``.

What is an :class:`InterpolationError`: a dotted reference (one with ``.``
or ``[``) that does not resolve and has no default, naming what is missing;
``:raw``/``:json`` on something that is no variable; an unclosed ``${``;
a reference that cannot be read (``${item.x%y}``); and, in the shell
context, a reference where no escaping is safe (see
:mod:`pure.shell_quoting`), such as one inside the shell's own
``${HOME:-...}``, or a value with a line that would end its heredoc.

``context="text"`` inserts values verbatim (agent prompts, file contents).
``context="shell"`` escapes each value for the quoting context the template
puts it in, so it reaches the command as exactly that text, never as syntax.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from returns.result import Failure, Result, Success

from pure.field_path import MISSING, FieldPath, FieldPathError, Segment, parse_field_path, resolve
from pure.shell_quoting import Heredoc, QuoteKind, escape_for, heredoc_problem, quoting_contexts

__all__ = ["InterpolationError", "interpolate", "referenced_names", "try_interpolate"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*"
    r"""(?:\.[A-Za-z0-9_][A-Za-z0-9_\-]*|\[\s*(?:-?\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\])*"""
)
_DOT_INDEX = re.compile(r"\.(\d+)(?=[.\[]|$)")
_KNOWN_SHOWN = 12


@attrs.frozen
class InterpolationError(Exception):
    """A template that cannot be interpolated; ``str()`` is ``message``, naming the reference.

    ``reference`` is the reference as written (``${item.nope}``) and
    ``column`` its 1-based position in ``template``. Messages never contain
    a variable's value (values may be secrets).
    """

    template: str
    reference: str
    message: str
    column: int = 0

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class _Reference:
    """One ``${...}`` or ``$NAME`` candidate, before it is known to be a forkmerge reference."""

    start: int
    end: int
    text: str
    path: str
    rest: str

    @property
    def name(self) -> str:
        match = _NAME.match(self.path)
        return match.group(0) if match else ""

    @property
    def dotted(self) -> bool:
        return "." in self.path or "[" in self.path


@attrs.frozen
class _Modifier:
    default: str | None = None
    pipe_default: bool = False
    mode: Literal["quote", "raw", "json"] = "quote"
    junk: str = ""


@attrs.frozen
class _Insertion:
    """What replaces a reference, or (shell context) the error to raise unless it is a comment."""

    reference: _Reference
    text: str
    raw: bool
    error: InterpolationError | None = None


def interpolate(
    template: str,
    variables: Mapping[str, Any],
    *,
    context: Literal["shell", "text"] = "text",
) -> str:
    """``template`` with its references replaced by the values in ``variables``.

    Raises :class:`InterpolationError` (see the module documentation for
    what is replaced, what is left for the shell, and what is an error).
    """
    references, unclosed = _scan(template)
    if unclosed is not None:
        shown = template[unclosed : unclosed + 30].split("\n")[0]
        raise InterpolationError(
            template,
            shown,
            f"unclosed reference {shown} at column {unclosed + 1}: "
            "expected '}' to end it on the same line",
            unclosed + 1,
        )
    shell = context == "shell"
    insertions: list[_Insertion] = []
    covered = 0
    for reference in references:
        if reference.start < covered or (shell and _escaped(template, reference.start)):
            continue
        try:
            insertion = _decide(reference, variables, shell, template)
        except InterpolationError as error:
            if not shell:
                raise
            insertion = _Insertion(reference, "", raw=False, error=error)
        if insertion is not None:
            insertions.append(insertion)
            covered = reference.end
    texts = _shell_texts(template, insertions) if shell else [i.text for i in insertions]
    return _splice(template, 0, insertions, texts)


def try_interpolate(
    template: str,
    variables: Mapping[str, Any],
    *,
    context: Literal["shell", "text"] = "text",
) -> Result[str, InterpolationError]:
    """:func:`interpolate`, with its :class:`InterpolationError` as a ``Failure``."""
    try:
        return Success(interpolate(template, variables, context=context))
    except InterpolationError as error:
        return Failure(error)


def referenced_names(template: str) -> frozenset[str]:
    """The variable names ``template`` may refer to, for dependency analysis.

    A superset, never raising: every ``$NAME`` and ``${NAME...}`` name (even
    those that will turn out to be the shell's own), and for a dotted
    reference its first segment and each longer dotted prefix of keys
    (``${validation.gaps}`` gives ``validation`` and ``validation.gaps``,
    since a capture may be stored under the dotted key).
    """
    references, _ = _scan(template)
    names: set[str] = set()
    for reference in references:
        if reference.path:
            names.update(_name_prefixes(reference.path))
        else:
            match = _NAME.match(reference.text[2:].lstrip("#!"))
            if match:
                names.add(match.group(0))
    return frozenset(names)


@functools.lru_cache(maxsize=1024)
def _scan(template: str) -> tuple[tuple[_Reference, ...], int | None]:
    """Every candidate, in order, nested ones included; and where an unclosed ``${`` starts.

    After a ``${...}`` the scan resumes inside it, so that references in
    text left for the shell (``${HOME:-${item}}``) are found too; the caller
    skips candidates inside a reference it replaced.
    """
    references: list[_Reference] = []
    index = 0
    while (dollar := template.find("$", index)) >= 0:
        following = template[dollar + 1 : dollar + 2]
        if following == "$":
            index = dollar + 2
        elif following == "{":
            close = template.find("}", dollar + 2)
            if close < 0 or "\n" in template[dollar:close]:
                return tuple(references), dollar
            content = template[dollar + 2 : close]
            match = _PATH.match(content)
            path = match.group(0) if match else ""
            text = template[dollar : close + 1]
            references.append(_Reference(dollar, close + 1, text, path, content[len(path) :]))
            index = dollar + 2
        else:
            match = _NAME.match(template, dollar + 1)
            if match:
                text = template[dollar : match.end()]
                references.append(_Reference(dollar, match.end(), text, match.group(0), ""))
                index = match.end()
            else:
                index = dollar + 1
    return tuple(references), None


def _modifier(rest: str) -> _Modifier:
    if rest in ("", ":raw", ":json"):
        return _Modifier(mode="raw" if rest == ":raw" else "json" if rest == ":json" else "quote")
    if rest.startswith(":-"):
        return _Modifier(default=rest[2:])
    if rest.startswith("|default:"):
        return _Modifier(default=rest[len("|default:") :], pipe_default=True)
    return _Modifier(junk=rest)


def _escaped(template: str, position: int) -> bool:
    """An odd number of backslashes right before ``position``."""
    count = 0
    while position - count > 0 and template[position - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _decide(
    reference: _Reference, variables: Mapping[str, Any], shell: bool, template: str
) -> _Insertion | None:
    """What replaces ``reference``; ``None`` when it is left as written."""
    name = reference.name
    if not name:
        return None
    modifier = _modifier(reference.rest)
    if modifier.junk.startswith(".") or (
        modifier.junk.startswith("[") and (reference.dotted or name in variables)
    ):
        raise _error(
            reference,
            template,
            f"cannot read reference {reference.text}: expected a field name or an index "
            f"like [0] after {reference.path!r}, found {modifier.junk!r}",
        )
    if modifier.junk and not reference.dotted:
        return None
    if modifier.junk:
        raise _error(
            reference,
            template,
            f"cannot read reference {reference.text}: expected '}}', ':-default', ':raw' or "
            f"':json' after {reference.path!r}, found {modifier.junk!r}",
        )
    if reference.dotted:
        value, why = _lookup(variables, _parse_path(reference, template))
    elif name in variables:
        value, why = variables[name], ""
    else:
        value, why = MISSING, _no_variable(name, variables)
    if modifier.default is not None and (value is MISSING or value is None or value == ""):
        if value is MISSING and shell and not reference.dotted and not modifier.pipe_default:
            return None
        return _Insertion(reference, modifier.default, raw=False)
    if value is MISSING:
        if not reference.dotted and modifier.mode == "quote":
            return None
        raise _error(reference, template, f"unresolved reference {reference.text}: {why}")
    return _Insertion(reference, _render(value, modifier.mode == "json"), modifier.mode == "raw")


def _parse_path(reference: _Reference, template: str) -> FieldPath:
    try:
        return _field_path(reference.path)
    except FieldPathError as error:
        raise _error(
            reference, template, f"cannot read reference {reference.text}: {error}"
        ) from None


@functools.lru_cache(maxsize=1024)
def _field_path(path: str) -> FieldPath:
    """``path`` parsed, ``.0`` read as ``[0]`` (Prodigy's dotted index)."""
    return parse_field_path(_DOT_INDEX.sub(r"[\1]", path))


def _lookup(variables: Mapping[str, Any], path: FieldPath) -> tuple[Any, str]:
    """The value at ``path`` (the longest dotted-key prefix first), or ``MISSING`` and why."""
    keys = _leading_keys(path.segments)
    why = ""
    for count in range(len(keys), 0, -1):
        root = ".".join(keys[:count])
        if root in variables:
            value, reason = _walk(root, variables[root], path.segments[count:])
            if value is not MISSING:
                return value, ""
            why = why or reason
    return MISSING, why or _no_variable(keys[0], variables)


def _walk(shown: str, value: Any, segments: Sequence[Segment]) -> tuple[Any, str]:
    current = value
    for segment in segments:
        following = resolve(current, (segment,))
        if following is MISSING:
            return MISSING, _explain(shown, current, segment)
        current = following
        shown += f".{segment}" if isinstance(segment, str) else f"[{segment}]"
    return current, ""


def _explain(shown: str, value: Any, segment: Segment) -> str:
    if isinstance(segment, str):
        if isinstance(value, Mapping):
            return f"{shown} has no field {segment!r}"
        return f"{shown} is {_kind(value)}, not an object, so it has no field {segment!r}"
    if isinstance(value, list | tuple):
        return f"{shown} has no index {segment} (it has {len(value)} elements)"
    return f"{shown} is {_kind(value)}, not an array, so it has no index {segment}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _no_variable(name: str, variables: Mapping[str, Any]) -> str:
    known = sorted(variables)
    if not known:
        return f"no variable {name!r} (there are no variables)"
    shown = ", ".join(known[:_KNOWN_SHOWN]) + (", ..." if len(known) > _KNOWN_SHOWN else "")
    return f"no variable {name!r} (known: {shown})"


def _leading_keys(segments: Sequence[Segment]) -> list[str]:
    keys: list[str] = []
    for segment in segments:
        if not isinstance(segment, str):
            break
        keys.append(segment)
    return keys


def _name_prefixes(path: str) -> list[str]:
    try:
        keys = _leading_keys(_field_path(path).segments)
    except FieldPathError:
        return [path.split(".")[0].split("[")[0]]
    return [".".join(keys[:count]) for count in range(1, len(keys) + 1)]


def _render(value: Any, as_json: bool) -> str:
    if isinstance(value, str) and not as_json:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error(reference: _Reference, template: str, message: str) -> InterpolationError:
    return InterpolationError(template, reference.text, message, reference.start + 1)


def _shell_texts(template: str, insertions: list[_Insertion]) -> list[str]:
    """The text replacing each insertion, escaped for where the template puts it."""
    scan = quoting_contexts(template, [(i.reference.start, i.reference.end) for i in insertions])
    texts: list[str] = []
    checked: list[bool] = []
    for insertion, context in zip(insertions, scan.contexts, strict=True):
        reference = insertion.reference
        if context.kind is QuoteKind.COMMENT or insertion.raw:
            texts.append(reference.text if context.kind is QuoteKind.COMMENT else insertion.text)
            checked.append(False)
            continue
        if insertion.error is not None:
            raise insertion.error
        escaped = escape_for(insertion.text, context)
        if isinstance(escaped, Failure):
            raise _error(
                reference,
                template,
                f"cannot insert {reference.text} safely at column {reference.start + 1}: "
                f"{escaped.failure()}",
            )
        texts.append(escaped.unwrap())
        checked.append(True)
    for heredoc in scan.heredocs:
        inside = [
            k
            for k, insertion in enumerate(insertions)
            if heredoc.body_start <= insertion.reference.start < heredoc.body_end and checked[k]
        ]
        whole = _heredoc_body(template, heredoc, insertions, texts, inside)
        problem = heredoc_problem(heredoc, whole)
        if problem is None:
            continue
        # blame the insertion that completes the offending line
        blamed = inside[-1]
        for count in range(1, len(inside)):
            if heredoc_problem(
                heredoc, _heredoc_body(template, heredoc, insertions, texts, inside[:count])
            ):
                blamed = inside[count - 1]
                break
        reference = insertions[blamed].reference
        raise _error(
            reference,
            template,
            f"cannot insert {reference.text} safely at column {reference.start + 1}: {problem}",
        )
    return texts


def _heredoc_body(
    template: str,
    heredoc: Heredoc,
    insertions: Sequence[_Insertion],
    texts: Sequence[str],
    chosen: Sequence[int],
) -> str:
    """The body of ``heredoc`` with the ``chosen`` insertions in place."""
    return _splice(
        template[heredoc.body_start : heredoc.body_end],
        heredoc.body_start,
        [insertions[k] for k in chosen],
        [texts[k] for k in chosen],
    )


def _splice(text: str, offset: int, insertions: Sequence[_Insertion], texts: Sequence[str]) -> str:
    """``text`` (which starts at template offset ``offset``) with each insertion replaced."""
    parts: list[str] = []
    position = 0
    for insertion, replacement in zip(insertions, texts, strict=True):
        parts.append(text[position : insertion.reference.start - offset])
        parts.append(replacement)
        position = insertion.reference.end - offset
    parts.append(text[position:])
    return "".join(parts)
