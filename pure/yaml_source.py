"""YAML text to a small tree of values that remember where they are in the source.

PyYAML composes the node tree (``yaml.compose`` with the safe loader), which
keeps a mark on every node; this module turns it into :class:`YamlMap`,
:class:`YamlList` and :class:`YamlScalar` values with 1-based
:class:`~pure.workflow_error.Location` s, so that a schema walker can report
every problem at its line and column.

Hostile input is data, never a traceback: invalid YAML is one problem with
its line; duplicate keys, non-string keys, unknown tags and bad merge keys are
problems; recursive aliases, nesting deeper than :data:`MAX_DEPTH` and alias
expansion beyond :data:`MAX_NODES` values stop loading with a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, final

import attrs
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pure.workflow_error import Location, Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlEntry",
    "YamlList",
    "YamlMap",
    "YamlScalar",
    "YamlValue",
    "child_path",
    "describe",
    "index_path",
    "load_yaml",
]

MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000

_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@final
@attrs.frozen
class YamlScalar:
    """A scalar: ``value`` as YAML typed it (str, int, float, bool, None, ...), ``text`` as written.

    ``text`` is the content after unquoting; ``raw`` the exact source slice
    (quotes, escapes and anchors included). ``style`` is ``None`` for a plain
    scalar, else the quote or block indicator (``'``, ``"``, ``|``, ``>``).
    """

    value: Any
    text: str
    style: str | None
    location: Location
    raw: str = ""


@final
@attrs.frozen
class YamlEntry:
    """One ``key: value`` pair of a mapping, with where its key is."""

    key: str
    key_location: Location
    value: YamlValue


@final
@attrs.frozen
class YamlMap:
    """A mapping with string keys, in source order, without duplicates."""

    entries: tuple[YamlEntry, ...]
    location: Location

    def get(self, key: str) -> YamlEntry | None:
        """The entry for ``key``, if present."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None

    def keys(self) -> Iterator[str]:
        """The keys, in source order."""
        return (entry.key for entry in self.entries)


@final
@attrs.frozen
class YamlList:
    """A sequence."""

    items: tuple[YamlValue, ...]
    location: Location


YamlValue = YamlScalar | YamlMap | YamlList


def child_path(path: str, key: str) -> str:
    """The key path of ``key`` inside the mapping at ``path`` (``map`` + ``input``)."""
    return f"{path}.{key}" if path else key


def index_path(path: str, index: int) -> str:
    """The key path of item ``index`` of the list at ``path`` (``reduce[2]``)."""
    return f"{path}[{index}]"


def describe(value: YamlValue) -> str:
    """What a value is, for "found ..." in messages: ``an integer (42)``, ``a mapping``."""
    if isinstance(value, YamlMap):
        return "a mapping"
    if isinstance(value, YamlList):
        return "a list"
    raw = value.value
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return f"a boolean ({value.text})"
    if isinstance(raw, int):
        return f"an integer ({value.text})"
    if isinstance(raw, float):
        return f"a number ({value.text})"
    if isinstance(raw, str):
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        return f"a string ({shown!r})"
    return f"a {type(raw).__name__} ({value.text})"


def _location(node: Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_location(text: str, offset: int) -> Location:
    before = text[:offset]
    line = before.count("\n") + 1
    return Location(line, offset - (before.rfind("\n") + 1) + 1)


class _TooBig(Exception):
    """Loading stops: the document is recursive, too deep or expands to too many values."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Converter:
    """Turns composed nodes into values, collecting problems on the way."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.problems: list[Problem] = []
        self.count = 0
        self.stack: set[int] = set()
        self.constructor = SafeConstructor()

    def problem(
        self, path: str, location: Location, message: str, expected: str, found: str
    ) -> None:
        self.problems.append(
            Problem(path, location.line, location.column, expected, found, message, self.source)
        )

    def convert(self, node: Node, path: str, depth: int) -> YamlValue:
        location = _location(node)
        if id(node) in self.stack:
            raise _TooBig(
                self._fatal(path, location, "a recursive alias (an anchor used inside itself)")
            )
        if depth > MAX_DEPTH:
            raise _TooBig(self._fatal(path, location, f"nesting deeper than {MAX_DEPTH} levels"))
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(
                self._fatal(path, location, f"more than {MAX_NODES} values after alias expansion")
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node, path, location)
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self.check_tag(node, _SEQ_TAG, path, location)
                items = tuple(
                    self.convert(child, index_path(path, index), depth + 1)
                    for index, child in enumerate(node.value)
                )
                return YamlList(items, location)
            assert isinstance(node, MappingNode)
            self.check_tag(node, _MAP_TAG, path, location)
            return YamlMap(self.entries(node, path, depth), location)
        finally:
            self.stack.discard(id(node))

    def _fatal(self, path: str, location: Location, what: str) -> Problem:
        return Problem(
            path,
            location.line,
            location.column,
            "a workflow document of reasonable size",
            what,
            f"cannot load the document: {what}",
            self.source,
        )

    def check_tag(self, node: Node, standard: str, path: str, location: Location) -> None:
        if node.tag != standard:
            self.problem(
                path, location, f"unsupported YAML tag {node.tag!r}", "no tag", repr(node.tag)
            )

    def scalar(self, node: ScalarNode, path: str, location: Location) -> YamlScalar:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception as error:  # PyYAML's converters raise many kinds
            # A plain scalar that merely looks like a date or number ("2024-13-45")
            # is the text itself; a value with an explicit tag ("!!int x") is wrong.
            value = str(node.value)
            if self.explicitly_tagged(node):
                reason = error.problem if isinstance(error, ConstructorError) else str(error)
                self.problem(
                    path,
                    location,
                    f"invalid YAML value: {reason}",
                    "a plain YAML value",
                    repr(node.value),
                )
        raw = self.text[node.start_mark.index : node.end_mark.index]
        return YamlScalar(value, str(node.value), node.style, location, raw)

    def explicitly_tagged(self, node: ScalarNode) -> bool:
        """Whether the scalar's source starts with a tag (after an anchor, if any)."""
        words = self.text[node.start_mark.index : node.end_mark.index].split(maxsplit=2)
        if words and words[0].startswith("&"):
            words = words[1:]
        return bool(words) and words[0].startswith("!")

    def entries(self, node: MappingNode, path: str, depth: int) -> tuple[YamlEntry, ...]:
        explicit: dict[str, YamlEntry] = {}
        merged: list[YamlEntry] = []
        for key_node, value_node in node.value:
            key_location = _location(key_node)
            if key_node.tag == _MERGE_TAG:
                merged.extend(self.merge_entries(value_node, path, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(
                    path,
                    key_location,
                    "a mapping key must be a plain string",
                    "a string key",
                    "a list" if isinstance(key_node, SequenceNode) else "a mapping",
                )
                continue
            key = str(key_node.value)
            if key in explicit:
                first = explicit[key].key_location
                self.problem(
                    child_path(path, key),
                    key_location,
                    f"duplicate key {key!r} (first at line {first.line})",
                    "each key once",
                    f"{key!r} again",
                )
                continue
            value = self.convert(value_node, child_path(path, key), depth + 1)
            explicit[key] = YamlEntry(key, key_location, value)
        for entry in merged:
            if entry.key not in explicit:
                explicit[entry.key] = entry
        return tuple(explicit.values())

    def merge_entries(self, node: Node, path: str, depth: int) -> list[YamlEntry]:
        """The entries a ``<<:`` merge key brings in; earlier sources win, as YAML says."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        result: dict[str, YamlEntry] = {}
        for source_node in sources:
            value = self.convert(source_node, path, depth + 1)
            if not isinstance(value, YamlMap):
                self.problem(
                    child_path(path, "<<"),
                    _location(source_node),
                    "a merge key (<<) must refer to a mapping or a list of mappings",
                    "a mapping",
                    describe(value),
                )
                continue
            for entry in value.entries:
                result.setdefault(entry.key, entry)
        return list(result.values())


def _syntax_problem(error: yaml.YAMLError, text: str, source: str) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        location = Location(mark.line + 1, mark.column + 1)
        what = error.problem or "invalid syntax"
        if error.context and error.context_mark is not None:
            what = f"{what} ({error.context} at line {error.context_mark.line + 1})"
    else:
        assert isinstance(error, yaml.reader.ReaderError)
        location = _offset_location(text, error.position)
        what = f"unacceptable character #x{error.character:04x}: {error.reason}"
    return Problem(
        "", location.line, location.column, "valid YAML", what, f"invalid YAML: {what}", source
    )


def load_yaml(text: str, source: str) -> tuple[YamlValue | None, tuple[Problem, ...]]:
    """Load one YAML document; ``(None, problems)`` when there is nothing usable.

    A value comes back together with the problems of its parts (a duplicate
    key, an unknown tag): the caller reports them along with its own.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        return None, (_syntax_problem(error, text, source),)
    except RecursionError:
        return None, (
            Problem(
                "",
                1,
                1,
                "a workflow document of reasonable size",
                "nesting too deep to read",
                "cannot load the document: nesting too deep to read",
                source,
            ),
        )
    if root is None:
        return None, (
            Problem(
                "",
                1,
                1,
                "a mapping with name and map",
                "an empty document",
                "the workflow is empty",
                source,
            ),
        )
    converter = _Converter(source, text)
    try:
        value = converter.convert(root, "", 0)
    except _TooBig as stop:
        return None, (*converter.problems, stop.problem)
    return value, tuple(converter.problems)
