"""One-line summaries of a failing command's output, and bounded excerpts of long text.

:func:`summarize_error` recognises the output of the tools a workflow most
often runs — pytest, ruff/flake8/pylint, mypy, cargo/rustc (builds and
tests), a Python traceback — and says in one line what went wrong
(``"53 lint errors: 40x F401, 10x F841, 3x F541"``); any other output is
summarised by its last meaningful line. :func:`excerpt` keeps the head and
tail of a long text with the hash of the whole, for logs that must stay small.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence

import attrs

__all__ = ["MAX_SUMMARY_LENGTH", "Excerpt", "excerpt", "summarize_error"]

MAX_SUMMARY_LENGTH = 200
# Outputs longer than this are summarised from their head and tail, as the executor keeps them.
_ANALYSED_CHARS = 1_000_000
_MAX_CODES_SHOWN = 8


@attrs.frozen
class Excerpt:
    """A long text cut to its head and tail, with the length and SHA-256 of the whole.

    ``head_and_tail`` is the text itself when it fits the limit; otherwise
    its first and last characters around a ``... [N characters omitted] ...``
    line. ``sha256`` (hex, of the UTF-8 text) identifies the whole text, so
    two excerpts with the same hash came from the same text.
    """

    head_and_tail: str
    total_length: int
    sha256: str


def excerpt(text: str, limit: int = 500) -> Excerpt:
    """``text`` cut to at most ``limit`` characters (plus the omission line) around its middle.

    The head gets the odd character. Raises ``ValueError`` when ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"`limit` must be non-negative, got {limit}")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if len(text) <= limit:
        return Excerpt(text, len(text), digest)
    head = (limit + 1) // 2
    tail = limit - head
    omitted = len(text) - limit
    kept = text[:head] + f"\n... [{omitted} characters omitted] ...\n" + text[len(text) - tail :]
    return Excerpt(kept, len(text), digest)


def summarize_error(
    output: str, *, exit_code: int | None = None, command: str | None = None
) -> str:
    """One line (at most ``MAX_SUMMARY_LENGTH`` characters) saying why a command failed.

    Recognised: pytest (counts and the first failing test, or the collection
    error), ruff/flake8/pylint (error counts by code, most frequent first),
    mypy (errors, files and the first error), cargo/rustc (compile errors by
    code and the first; failed tests and the first), a Python traceback (its
    exception line). Otherwise the last non-empty line (a trailing
    ``make: ***`` line is skipped); ``"exit code N"`` when there is no output
    (``"no output"`` without an exit code, e.g. after a timeout).
    ``command`` only decides which tool is tried first. Never raises.
    """
    lines = _lines(output)
    if not lines:
        return "no output" if exit_code is None else f"exit code {exit_code}"
    for detect in _detectors(command):
        found = detect(lines)
        if found is not None:
            return _one_line(found)
    return _one_line(_last_line(lines))


# ---- text clean-up ---------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _lines(output: str) -> list[str]:
    """The output's lines as a terminal shows them (no colours, ``\\r`` rewrites resolved);
    an output of blank lines only gives no lines."""
    if len(output) > _ANALYSED_CHARS:
        half = _ANALYSED_CHARS // 2
        output = output[:half] + "\n" + output[-half:]
    text = _ANSI.sub("", output).replace("\r\n", "\n")
    if "\r" in text:
        text = "\n".join(_shown(raw) for raw in text.split("\n"))
    lines = [line.rstrip() for line in _CONTROL.sub(" ", text).split("\n")]
    return lines if any(lines) else []


def _shown(raw: str) -> str:
    """What a terminal shows of a line that ``\\r`` rewrote: its last non-blank part."""
    shown = [part for part in raw.split("\r") if part.strip()]
    return shown[-1] if shown else ""


def _one_line(text: str, limit: int = MAX_SUMMARY_LENGTH) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space, cut to
    ``limit`` characters with ``...``."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 3].rstrip() + "..."


def _with_first(headline: str, detail: str | None) -> str:
    """``headline: first: detail`` (``;`` instead when the headline has a colon already)."""
    if not detail:
        return headline
    joint = "; " if ": " in headline else ": "
    return f"{headline}{joint}first: {detail}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _by_code(codes: Sequence[str], total: int) -> str:
    """``40x F401, 10x F841, ...``: most frequent first (ties by code); the codes past the
    first few, and any of ``total`` not seen in the output, are counted together."""
    ranked = sorted(Counter(codes).items(), key=lambda pair: (-pair[1], pair[0]))
    parts = [f"{count}x {code}" for code, count in ranked[:_MAX_CODES_SHOWN]]
    rest = ranked[_MAX_CODES_SHOWN:]
    if rest:
        parts.append(f"{sum(count for _, count in rest)}x in {len(rest)} more codes")
    if total > len(codes):
        parts.append(f"{total - len(codes)}x not shown")
    return ", ".join(parts)


# ---- pytest ----------------------------------------------------------------------------------

_PYTEST_COUNT = r"\d+ (?:failed|passed|skipped|deselected|xfailed|xpassed|warnings?|errors?|rerun)"
_PYTEST_SUMMARY = re.compile(
    rf"^=*\s*(?P<counts>{_PYTEST_COUNT}(?:, {_PYTEST_COUNT})*|no tests ran)"
    r" in \d+(?:\.\d+)?(?:s| seconds)\b.*?=*$"
)
_PYTEST_PROBLEM = re.compile(r"^\d+ (?:failed|errors?)\b")
_PYTEST_SHORT = re.compile(r"^(?:FAILED|ERROR) (?P<node>\S.*?)(?: - (?P<reason>.+))?$")
_PYTEST_INTERRUPTED = re.compile(r"Interrupted: (?P<what>\d+ errors? during collection)")
_PYTEST_SECTION = re.compile(r"^_{3,} (?P<name>.+?) _{3,}$")
_PYTEST_E_LINE = re.compile(r"^E\s+(?P<reason>\S.*)$")
_PYTEST_OTHER_FAILURE = re.compile(r"^(?:FAIL Required test coverage|ERROR: )")


def _pytest(lines: Sequence[str]) -> str | None:
    summaries = [m for m in map(_PYTEST_SUMMARY.match, lines) if m is not None]
    if not summaries:
        return None
    counts = summaries[-1]["counts"]
    interrupted = next(filter(None, map(_PYTEST_INTERRUPTED.search, lines)), None)
    headline = counts if interrupted is None else interrupted["what"]
    if not _PYTEST_PROBLEM.search(counts) and interrupted is None:
        # Every test passed, yet the command failed: say what else failed (coverage, usage).
        other = [line.strip() for line in lines if _PYTEST_OTHER_FAILURE.match(line)]
        return f"{other[-1]} ({counts})" if other else None
    short = next(filter(None, map(_PYTEST_SHORT.match, lines)), None)
    if short is not None:
        reason = short["reason"] or _pytest_reason(lines, short["node"])
        return _with_first(headline, short["node"] + (f" - {reason}" if reason else ""))
    section = next(filter(None, map(_PYTEST_SECTION.match, lines)), None)
    if section is not None:
        reason = _pytest_reason(lines, section["name"])
        return _with_first(headline, section["name"] + (f" - {reason}" if reason else ""))
    return headline


def _pytest_reason(lines: Sequence[str], node: str) -> str | None:
    """The first ``E   ...`` line of the report section of test ``node``."""
    name = node.split("::")[-1]
    inside = False
    for line in lines:
        section = _PYTEST_SECTION.match(line)
        if section is not None:
            title = section["name"]
            inside = title == name or title.endswith(" " + name) or title.endswith(" " + node)
            continue
        reason = _PYTEST_E_LINE.match(line) if inside else None
        if reason is not None:
            return reason["reason"]
    return None


# ---- cargo test ------------------------------------------------------------------------------

_CARGO_RESULT = re.compile(r"^test result: (?:ok|FAILED)\. (?P<passed>\d+) passed; (?P<failed>\d+)")
_CARGO_FAILED_TEST = re.compile(r"^test (?P<name>.+?) \.\.\. FAILED$")
_CARGO_PANIC = re.compile(r"^thread '(?P<name>[^']*)'(?: \(\d+\))? panicked at (?P<rest>.*)$")
_CARGO_OLD_PANIC = re.compile(r"^'(?P<message>.*)', \S+$")


def _cargo_test(lines: Sequence[str]) -> str | None:
    results = [m for m in map(_CARGO_RESULT.match, lines) if m is not None]
    failed = sum(int(m["failed"]) for m in results)
    if failed == 0:
        return None
    passed = sum(int(m["passed"]) for m in results)
    headline = f"{failed} failed, {passed} passed"
    first = next(filter(None, map(_CARGO_FAILED_TEST.match, lines)), None)
    if first is None:
        return headline
    name = first["name"]
    message = _cargo_panic_message(lines, name)
    return _with_first(headline, name + (f" - {message}" if message else ""))


def _cargo_panic_message(lines: Sequence[str], name: str) -> str | None:
    """What test ``name`` panicked with: the line after ``panicked at <where>:`` (Rust 1.73+)
    or the quoted message of ``panicked at '<message>', <where>``."""
    for index, line in enumerate(lines):
        panic = _CARGO_PANIC.match(line)
        if panic is None or panic["name"] != name:
            continue
        old = _CARGO_OLD_PANIC.match(panic["rest"])
        if old is not None:
            return old["message"]
        return next((text.strip() for text in lines[index + 1 :] if text.strip()), None)
    return None


# ---- mypy ------------------------------------------------------------------------------------

_MYPY_FOUND = re.compile(r"^Found (?P<errors>\d+) errors? in (?P<files>\d+) files?\b")
_MYPY_ERROR = re.compile(r"^(?P<path>[^\s:][^:]*)(?P<where>(?::\d+){0,2}): error: (?P<message>.+)$")
_MYPY_CODE = re.compile(r"\s\s\[[a-z][a-z0-9-]*\]$")


def _mypy(lines: Sequence[str], *, hinted: bool = False) -> str | None:
    found = next(filter(None, map(_MYPY_FOUND.match, lines)), None)
    errors = [m for line in lines if ": error: " in line and (m := _MYPY_ERROR.match(line))]
    typed = hinted or any(_MYPY_CODE.search(m["message"]) for m in errors)
    if found is None and not (errors and typed):
        return None
    if found is not None:
        count, files = int(found["errors"]), int(found["files"])
    else:
        count, files = len(errors), len({m["path"] for m in errors})
    headline = f"{_plural(count, 'type error')} in {_plural(files, 'file')}"
    return _with_first(headline, errors[0].group(0) if errors else None)


def _mypy_hinted(lines: Sequence[str]) -> str | None:
    return _mypy(lines, hinted=True)


# ---- ruff / flake8 / pylint ------------------------------------------------------------------

_LINT_CODE = r"(?P<code>[A-Z]{1,10}\d{1,5}|invalid-syntax|SyntaxError)"
_LINT_CONCISE = re.compile(rf"^[^\s:][^:]*:\d+(?::\d+)?: {_LINT_CODE}(?::| |$)")
_LINT_FULL = re.compile(rf"^{_LINT_CODE}(?: \[\*\])?:? \S")
_LINT_ARROW = re.compile(r"^\s*--> \S+:\d+:\d+")
_LINT_FOUND = re.compile(r"^Found (?P<errors>\d+) errors?\.")


def _lint(lines: Sequence[str]) -> str | None:
    codes: list[str] = []
    for index, line in enumerate(lines):
        # Cheap substring tests first: most lines of a long output are neither form.
        match = _LINT_CONCISE.match(line) if ":" in line else None
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if match is None and "-->" in following and _LINT_ARROW.match(following):
            match = _LINT_FULL.match(line)
        if match is not None:
            codes.append(match["code"])
    if not codes:
        return None
    found = next(filter(None, map(_LINT_FOUND.match, reversed(lines))), None)
    total = max(len(codes), int(found["errors"]) if found is not None else 0)
    return f"{_plural(total, 'lint error')}: {_by_code(codes, total)}"


# ---- cargo / rustc build ---------------------------------------------------------------------

_RUST_ERROR = re.compile(r"^error(?:\[(?P<code>E\d{4})\])?: (?P<message>.+)$")
_RUST_TRAILER = re.compile(r"^(?:aborting due to|could not compile|test failed|build failed)")
_RUST_PREVIOUS = re.compile(r"due to (?:(?P<count>\d+) )?previous errors?")


def _rust(lines: Sequence[str], *, hinted: bool = False) -> str | None:
    errors: list[tuple[str | None, str, str | None]] = []
    total = 0
    signed = hinted
    for index, line in enumerate(lines):
        error = _RUST_ERROR.match(line)
        if error is None:
            continue
        message = error["message"]
        if _RUST_TRAILER.match(message):
            signed = True
            previous = _RUST_PREVIOUS.search(message)
            if previous is not None:
                total = max(total, int(previous["count"] or 1))
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        arrow = _LINT_ARROW.match(following)
        location = following.strip()[4:] if arrow is not None else None
        signed = signed or error["code"] is not None or arrow is not None
        errors.append((error["code"], message, location))
    if not signed or not errors:
        return None
    total = max(total, len(errors))
    codes = [code or "other" for code, _, _ in errors]
    headline = _plural(total, "compile error")
    if any(code is not None for code, _, _ in errors):
        headline += ": " + _by_code(codes, total)
    code, message, location = errors[0]
    detail = f"error[{code}]: {message}" if code else f"error: {message}"
    return _with_first(headline, f"{location}: {detail}" if location else detail)


def _rust_hinted(lines: Sequence[str]) -> str | None:
    return _rust(lines, hinted=True)


# ---- Python traceback ------------------------------------------------------------------------

_TRACEBACK = re.compile(r"^(?P<group>(?:Exception Group )?)Traceback \(most recent call last\):$")
_DECORATION = re.compile(r"^\s*(?:\| ?|\+ |\+-[-+]*(?: \d+ -+| \.\.\.)?.*$)")
_GROUP_LINE = re.compile(r"\(\d+ sub-exceptions?\)$")


def _undecorated(line: str) -> tuple[bool, str]:
    """Whether ``line`` is inside an exception group's drawing, and its text without it."""
    match = _DECORATION.match(line)
    if match is None:
        return False, line
    return True, line[match.end() :]


def _traceback(lines: Sequence[str]) -> str | None:
    if not any("Traceback (most recent call last):" in line for line in lines):
        return None
    bodies = [_undecorated(line) for line in lines]
    # The exception that ended the program: the last traceback not nested in a group's drawing.
    headers = [
        index
        for index, (decorated, body) in enumerate(bodies)
        if _TRACEBACK.match(body) and not (decorated and lines[index].lstrip().startswith("|"))
    ]
    if not headers:
        return None
    header = headers[-1]
    exception_at = _exception_line(bodies, header + 1)
    if exception_at is None:
        return None
    exception = bodies[exception_at][1]
    group = _TRACEBACK.match(bodies[header][1])
    if group is None or not group["group"]:
        return exception
    leaf_at = next(
        (
            index
            for index in range(exception_at + 1, len(bodies))
            if _is_exception_text(bodies[index][1])
            and not _TRACEBACK.match(bodies[index][1])
            and not _GROUP_LINE.search(bodies[index][1])
        ),
        None,
    )
    return _with_first(exception, None if leaf_at is None else bodies[leaf_at][1])


def _exception_line(bodies: Sequence[tuple[bool, str]], start: int) -> int | None:
    """The first line from ``start`` that is not a frame (frames and code are indented)."""
    return next(
        (index for index in range(start, len(bodies)) if _is_exception_text(bodies[index][1])),
        None,
    )


def _is_exception_text(body: str) -> bool:
    return bool(body.strip()) and not body[0].isspace()


# ---- fallback --------------------------------------------------------------------------------

_MAKE_TRAILER = re.compile(r"^make(?:\[\d+\])?: \*\*\* ")


def _last_line(lines: Sequence[str]) -> str:
    """The last non-empty line, skipping make's own ``*** [target] Error N`` lines."""
    meaningful = [line for line in reversed(lines) if line.strip()]
    telling = (line for line in meaningful if not _MAKE_TRAILER.match(line))
    return next(telling, meaningful[0]).strip()


_Detector = Callable[[Sequence[str]], "str | None"]
_DEFAULT_ORDER: tuple[_Detector, ...] = (_pytest, _cargo_test, _mypy, _lint, _rust, _traceback)
_HINTS: tuple[tuple[re.Pattern[str], tuple[_Detector, ...]], ...] = (
    (re.compile(r"\bpy\.?test\b"), (_pytest,)),
    (re.compile(r"\bd?mypy\b"), (_mypy_hinted,)),
    (re.compile(r"\b(?:ruff|flake8|pylint|pycodestyle|pyflakes)\b"), (_lint,)),
    (re.compile(r"\bcargo\b"), (_cargo_test, _rust_hinted)),
    (re.compile(r"\brustc\b"), (_rust_hinted,)),
)


def _detectors(command: str | None) -> tuple[_Detector, ...]:
    """The recognisers in the order to try: those the command names first."""
    if not command:
        return _DEFAULT_ORDER
    hinted = tuple(
        detector
        for pattern, detectors in _HINTS
        if pattern.search(command)
        for detector in detectors
    )
    return hinted + tuple(detector for detector in _DEFAULT_ORDER if detector not in hinted)
