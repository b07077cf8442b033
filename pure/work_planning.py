"""Work planning: from the loaded map input to the list of agents' assignments.

``plan_work_assignments(document, config)`` runs, in this order:

1. **json_path** selects the items with `jsonpath-ng` (its extended syntax,
   so ``$.items[?(@.score > 5)]`` works); every match is one item, so
   ``$.items[*]`` gives the elements of ``items`` while ``$.items`` gives the
   whole array as a single item (as in Prodigy). Matching nothing gives no
   items. Without a json_path the document must be an array of items.
2. **filter** keeps the items its expression holds for (:mod:`pure.filters`).
3. **sort_by** orders them, stably (:mod:`pure.sorting`).
4. **distinct** keeps the first item of each value of a field path (null and
   missing count as one value; ``1`` and ``1.0`` are the same value).
5. **offset** skips that many items, then **max_items** keeps at most that many.
6. **assignment** numbers the rest from 0 and names each one
   (:class:`WorkAssignment`).

Everything is linear in the number of items apart from the sort.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import attrs
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from jsonpath_ng.jsonpath import JSONPath
from returns.result import Failure, Result, Success

from pure.expression_error import ExpressionError
from pure.field_path import FieldPath, FieldPathError, parse_field_path
from pure.filter_ast import resolve_item_path
from pure.filters import parse_filter
from pure.json_values import describe_value, order_key
from pure.sorting import parse_sort_by

__all__ = [
    "WORKTREE_NAME_PATTERN",
    "PlanningError",
    "SelectionConfig",
    "WorkAssignment",
    "canonical_json",
    "item_key",
    "plan_work",
    "plan_work_assignments",
    "validate_selection",
    "worktree_name",
]

WORKTREE_NAME_PATTERN: Final = re.compile(r"agent-[0-9]{4,}(?:-[a-z0-9]+)*-[0-9a-f]{8}")
"""Every worktree name matches this (with ``fullmatch``) and is at most 64 characters."""

_HINT_FIELDS = ("name", "id", "file", "path")
_PATH_HINT_FIELDS = frozenset({"file", "path"})
_SLUG_LENGTH = 32
_MAX_NAME_LENGTH = 64
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# One encoder for all calls: json.dumps with options builds a new one each time.
_CANONICAL_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False
)


class SelectionConfig(Protocol):
    """The keys of a ``map:`` block that decide which items run (``MapConfig`` has them)."""

    @property
    def json_path(self) -> str | None: ...

    @property
    def filter(self) -> str | None: ...

    @property
    def sort_by(self) -> str | None: ...

    @property
    def distinct(self) -> str | None: ...

    @property
    def offset(self) -> int: ...

    @property
    def max_items(self) -> int | None: ...


@attrs.frozen
class PlanningError(Exception):
    """Why the items could not be planned: ``key`` names the ``map`` key at fault.

    ``column`` is the 1-based column within that key's expression when the
    problem is a syntax error in it, else ``None``.
    """

    key: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@attrs.frozen
class WorkAssignment:
    """One item of the map phase and the names its agent works under.

    ``index`` is the item's position after planning (0-based); ``item_key`` is
    stable across runs for the same content at the same position, so a resumed
    job recognises finished items; ``worktree_name`` is safe as a directory and
    as a git branch name whatever the item contains.
    """

    index: int
    item: Any
    item_key: str
    worktree_name: str


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, non-ASCII kept as is."""
    return _CANONICAL_ENCODER.encode(value)


def _digest(item: Any) -> str:
    # surrogatepass: json.loads accepts lone surrogates ("\ud800"), UTF-8 does not.
    return hashlib.sha256(canonical_json(item).encode("utf-8", "surrogatepass")).hexdigest()


def item_key(index: int, item: Any) -> str:
    """``00042-3f2a9c1b7e0d``: the position and a digest of the item's canonical JSON."""
    return f"{index:05d}-{_digest(item)[:12]}"


def _slug(text: str, *, room: int, keep_end: bool) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > room:
        # The end of a file path names the file; the start of a name names the thing.
        # Cut at a hyphen when there is one, so that no word is left half.
        if keep_end:
            kept = slug[len(slug) - room :]
            if slug[len(slug) - room - 1] != "-" and "-" in kept:
                kept = kept.split("-", 1)[1]
        else:
            kept = slug[:room]
            if slug[room] != "-" and "-" in kept:
                kept = kept.rsplit("-", 1)[0]
        slug = kept
    return slug.strip("-")


def _hint(item: Any, room: int) -> str:
    if room < 1 or not isinstance(item, dict):
        return ""
    for field in _HINT_FIELDS:
        value = item.get(field)
        if isinstance(value, str):
            slug = _slug(value, room=room, keep_end=field in _PATH_HINT_FIELDS)
            if slug:
                return slug
    return ""


def worktree_name(index: int, item: Any, key: str | None = None) -> str:
    """``agent-0003-src-main-rs-3f2a9c1b``: index, a readable hint, a digest.

    The hint is a slug of the item's ``name``, ``id``, ``file`` or ``path``
    (the first that is a string with letters or digits), reduced to lower-case
    ASCII letters, digits and single hyphens and cut to fit. So the name
    matches :data:`WORKTREE_NAME_PATTERN`, has at most 64 characters (for any
    index below 10**49) and holds no ``/``, ``..``, space, control character,
    leading ``-`` or ``.``, ``.lock`` suffix or ``@{``. It is unique within a
    job because the index is. ``key`` is the item's :func:`item_key`, when
    already computed.
    """
    digest = (key or item_key(index, item)).rpartition("-")[2][:8]
    prefix = f"agent-{index:04d}"
    hint = _hint(item, min(_SLUG_LENGTH, _MAX_NAME_LENGTH - len(prefix) - len(digest) - 2))
    middle = f"-{hint}" if hint else ""
    return f"{prefix}{middle}-{digest}"


@functools.lru_cache(maxsize=128)
def _compiled_json_path(text: str) -> JSONPath:
    return parse_jsonpath(text)


def _json_path_problem(text: str) -> PlanningError | None:
    try:
        _compiled_json_path(text)
    except Exception as error:  # jsonpath-ng raises several unrelated types
        return PlanningError("map.json_path", f"expected a JSONPath like '$.items[*]': {error}")
    return None


def _expression_problem(
    key: str, parse: Callable[[str], object], text: str | None
) -> PlanningError | None:
    if text is None:
        return None
    try:
        parse(text)
    except ExpressionError as error:
        return PlanningError(key, str(error), error.column)
    return None


def _distinct_path(text: str) -> FieldPath:
    return parse_field_path(text.strip())


def validate_selection(config: SelectionConfig) -> list[PlanningError]:
    """Every problem of ``config``'s expressions and counts, without any document.

    The workflow parser reports these at parse time; planning checks them again.
    """
    problems: list[PlanningError] = []
    if config.json_path is not None and config.json_path.strip():
        problem = _json_path_problem(config.json_path)
        if problem is not None:
            problems.append(problem)
    for key, parse, text in (
        ("map.filter", parse_filter, config.filter),
        ("map.sort_by", parse_sort_by, config.sort_by),
    ):
        problem = _expression_problem(key, parse, text)
        if problem is not None:
            problems.append(problem)
    if config.distinct is not None:
        try:
            _distinct_path(config.distinct)
        except FieldPathError as error:
            problems.append(PlanningError("map.distinct", str(error), error.column))
    if config.offset < 0:
        problems.append(
            PlanningError("map.offset", f"expected a non-negative integer, found {config.offset}")
        )
    if config.max_items is not None and config.max_items < 0:
        problems.append(
            PlanningError(
                "map.max_items", f"expected a non-negative integer, found {config.max_items}"
            )
        )
    return problems


def _select(document: Any, json_path: str | None) -> list[Any]:
    if json_path is None or not json_path.strip():
        if not isinstance(document, list | tuple):
            raise PlanningError(
                "map.input",
                f"expected a JSON array of items, found {describe_value(document)}; "
                "set map.json_path to select the items (for example '$.items[*]')",
            )
        return list(document)
    return json_path_values(document, json_path)


def json_path_values(document: Any, json_path: str, *, key: str = "map.json_path") -> list[Any]:
    """The values ``json_path`` (jsonpath-ng's extended syntax) selects in ``document``.

    Parsed paths are cached. Raises :class:`PlanningError` (naming ``key``)
    when the path is invalid or cannot apply to the document.
    """
    try:
        compiled = _compiled_json_path(json_path)
    except Exception as error:  # jsonpath-ng raises several unrelated types
        raise PlanningError(key, f"expected a JSONPath like '$.items[*]': {error}") from None
    try:
        return [match.value for match in compiled.find(document)]
    except Exception as error:  # jsonpath-ng fails on some documents (TypeError)
        raise PlanningError(key, f"could not apply {json_path!r} to the input: {error}") from None


def _distinct(items: list[Any], path: FieldPath) -> list[Any]:
    seen: set[Any] = set()
    kept: list[Any] = []
    for item in items:
        value_key = order_key(resolve_item_path(item, path))
        if value_key not in seen:
            seen.add(value_key)
            kept.append(item)
    return kept


def plan_work_assignments(document: Any, map_config: SelectionConfig) -> list[WorkAssignment]:
    """The assignments of a map phase over ``document`` (any loaded JSON value).

    Raises :class:`PlanningError` for an invalid json_path, filter, sort_by,
    distinct, offset or max_items, or for a document that is no array when
    there is no json_path; :func:`plan_work` returns these as a ``Failure``.
    """
    problems = validate_selection(map_config)
    if problems:
        raise problems[0]
    items = _select(document, map_config.json_path)
    if map_config.filter is not None:
        item_filter = parse_filter(map_config.filter)
        items = [item for item in items if item_filter.matches(item)]
    if map_config.sort_by is not None:
        items = parse_sort_by(map_config.sort_by).sort(items)
    if map_config.distinct is not None:
        items = _distinct(items, _distinct_path(map_config.distinct))
    items = items[map_config.offset :]
    if map_config.max_items is not None:
        items = items[: map_config.max_items]
    return _assign(items)


def _assign(items: Sequence[Any]) -> list[WorkAssignment]:
    assignments = []
    for index, item in enumerate(items):
        key = item_key(index, item)
        assignments.append(WorkAssignment(index, item, key, worktree_name(index, item, key)))
    return assignments


def plan_work(
    document: Any, map_config: SelectionConfig
) -> Result[list[WorkAssignment], PlanningError]:
    """:func:`plan_work_assignments` with its :class:`PlanningError` as a ``Failure``."""
    try:
        return Success(plan_work_assignments(document, map_config))
    except PlanningError as error:
        return Failure(error)
